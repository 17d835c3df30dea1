/**
 * Wire microbenchmark (`npm run bench:wire`): decode and encode throughput for a 1 MiB
 * Produce request and a 1 MiB Fetch response. Decoding a Produce request includes what the
 * broker does on its hot path before buffering: split the records region into batches and
 * verify every batch CRC. Records stay opaque: nothing is decompressed.
 */
import { performance } from 'node:perf_hooks';
import {
  concatFrame,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  type FetchResponse,
  type ProduceRequest,
} from '../wire/index.js';
import { encodeBatchSync, splitBatches } from '../wire/records/index.js';

const MiB = 1024 * 1024;
const RECORD_BYTES = 1024;

/** Two shapes of about 1 MiB: few large batches (CRC-bound) and many small ones (header-bound). */
const SHAPES = [
  { partitions: 16, recordsPerBatch: 63 },
  { partitions: 960, recordsPerBatch: 1 },
];

function makeBatch(partition: number, recordsPerBatch: number): Buffer {
  const value = Buffer.alloc(RECORD_BYTES, partition);
  const records = Array.from({ length: recordsPerBatch }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value,
    timestamp: 1_700_000_000_000 + i,
  }));
  return encodeBatchSync(records, { producerId: 1000, producerEpoch: 0, baseSequence: 0 });
}

function produceRequest(batches: Buffer[]): ProduceRequest {
  return {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30000,
    topicData: [
      {
        name: 'bench',
        partitionData: batches.map((records, index) => ({ index, records })),
      },
    ],
  };
}

function fetchResponse(batches: Buffer[]): FetchResponse {
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [
      {
        topic: 'bench',
        topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
        partitions: batches.map((records, partitionIndex) => ({
          partitionIndex,
          errorCode: 0,
          highWatermark: 1_000_000n,
          lastStableOffset: 1_000_000n,
          logStartOffset: 0n,
          divergingEpoch: { epoch: -1, endOffset: -1n },
          currentLeader: { leaderId: -1, leaderEpoch: -1 },
          snapshotId: { endOffset: -1n, epoch: -1 },
          abortedTransactions: null,
          preferredReadReplica: -1,
          records,
        })),
      },
    ],
    nodeEndpoints: [],
  };
}

/** Runs `fn` repeatedly for about `ms` milliseconds after a warm-up; returns MB/s for `bytes` per call. */
function measure(bytes: number, fn: () => void, ms = 1000): number {
  for (let i = 0; i < 50; i++) fn();
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 20; i++) fn();
    iterations += 20;
    elapsed = performance.now() - start;
  }
  return (bytes * iterations) / (elapsed / 1000) / 1e6;
}

function verifyAll(records: Buffer): number {
  let count = 0;
  for (const batch of splitBatches(records)) {
    if (!batch.verifyCrc()) throw new Error('CRC mismatch');
    count += batch.recordCount;
  }
  return count;
}

function runShape(partitions: number, recordsPerBatch: number): void {
  const batches = Array.from({ length: partitions }, (_, p) => makeBatch(p, recordsPerBatch));
  const produceVersion = 9;
  const fetchVersion = 12;

  const produceFrame = concatFrame(
    encodeRequest({ apiKey: 0, apiVersion: produceVersion, correlationId: 1, clientId: 'bench' }, produceRequest(batches)),
  ).subarray(4);
  const fetchFrame = concatFrame(encodeResponse(1, fetchVersion, 1, fetchResponse(batches))).subarray(4);

  let sink = 0;
  const results: [string, number, number][] = [];

  results.push([
    `Produce v${produceVersion} request decode + batch split + CRC32C`,
    produceFrame.length,
    measure(produceFrame.length, () => {
      const { body } = decodeRequest(produceFrame);
      for (const topic of (body as ProduceRequest).topicData) {
        for (const p of topic.partitionData) sink += verifyAll(p.records as Buffer);
      }
    }),
  ]);
  results.push([
    `Produce v${produceVersion} request encode (records as chunks)`,
    produceFrame.length,
    measure(produceFrame.length, () => {
      sink += encodeRequest({ apiKey: 0, apiVersion: produceVersion, correlationId: 1, clientId: 'bench' }, produceRequest(batches)).length;
    }),
  ]);
  results.push([
    `Fetch v${fetchVersion} response decode`,
    fetchFrame.length,
    measure(fetchFrame.length, () => {
      sink += decodeResponse(fetchFrame, 1, fetchVersion).body.responses.length;
    }),
  ]);
  results.push([
    `Fetch v${fetchVersion} response decode + batch split + CRC32C`,
    fetchFrame.length,
    measure(fetchFrame.length, () => {
      for (const topic of decodeResponse(fetchFrame, 1, fetchVersion).body.responses) {
        for (const p of topic.partitions) sink += verifyAll(p.records as Buffer);
      }
    }),
  ]);
  results.push([
    `Fetch v${fetchVersion} response encode (records as chunks)`,
    fetchFrame.length,
    measure(fetchFrame.length, () => {
      sink += encodeResponse(1, fetchVersion, 1, fetchResponse(batches)).length;
    }),
  ]);

  console.log(`${partitions} partitions × one batch of ${recordsPerBatch} records of ${RECORD_BYTES} B`);
  for (const [name, bytes, mbps] of results) {
    console.log(`  ${name.padEnd(58)} ${(bytes / MiB).toFixed(2)} MiB frame  ${mbps.toFixed(0).padStart(7)} MB/s`);
  }
  if (sink === -1) console.log('unreachable');
}

console.log(`wire benchmark (node ${process.version})`);
for (const shape of SHAPES) runShape(shape.partitions, shape.recordsPerBatch);
