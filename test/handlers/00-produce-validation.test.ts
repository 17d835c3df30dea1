/**
 * Record-level validation on produce (issue 14, finding 1): batches whose records contradict
 * their header, or break Kafka's per-record rules, are refused with Kafka's error on their
 * partition and store nothing; the high watermark stays put and the good records produced
 * before and after are read back exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, concatFrame, encodeRequest, type ProduceRequestPartitionProduceData, type ProduceRequest, type ProduceResponsePartitionProduceResponse } from '../../wire/index.js';
import {
  Compression,
  encodeBatch,
  encodeBatchSync,
  splitBatches,
  TimestampType,
  type CompressionCodec,
} from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, fetchFrom, oneFetchRequest, partitionOffsets } from '../helpers/topics.js';
import { claimingBatch, lyingBatchCases, rawRecord, recordBody } from '../helpers/records.js';
import { waitFor } from '../helpers/wait.js';

/** The broker's decompression limit in this file, low enough to hit with a small batch. */
const DECOMPRESSED_LIMIT = 8 * 1024 * 1024;

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--max-decompressed-batch-bytes', String(DECOMPRESSED_LIMIT)] });
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'lies', 2);
  await createTopic(client, 'compacted', 1, { 'cleanup.policy': 'compact,delete' });
  await createTopic(client, 'bounded', 1, { 'message.timestamp.before.max.ms': '86400000' });
  await createTopic(client, 'difference', 1, { 'message.timestamp.difference.max.ms': '60000' });
  await createTopic(client, 'appended', 1, { 'message.timestamp.type': 'LogAppendTime' });
  await createTopic(client, 'ordered', 1);
  await createTopic(client, 'flip', 1);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(topic: string, parts: { partition: number; records: Buffer }[], acks = -1): ProduceRequest {
  const partitionData: ProduceRequestPartitionProduceData[] = parts.map((p) => ({ index: p.partition, records: p.records }));
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData }] };
}

async function produce(topic: string, partition: number, records: Buffer, version = 9): Promise<ProduceResponsePartitionProduceResponse> {
  const res = await client.send(0, version, request(topic, [{ partition, records }]));
  return res.responses[0]!.partitionResponses[0]!;
}

/** The fields of a partition's answer a refusal is about. */
function refusal(p: ProduceResponsePartitionProduceResponse): unknown {
  return { errorCode: p.errorCode, errorMessage: p.errorMessage, recordErrors: p.recordErrors, baseOffset: p.baseOffset };
}

function good(values: string[], timestamp = Date.now()): Buffer {
  return encodeBatchSync(values.map((v) => ({ key: Buffer.from(`key-${v}`), value: Buffer.from(v), timestamp })));
}

/** A batch claiming `count` records over a hand-made region, headed like a good batch. */
function claiming(count: number, region: Buffer, codec: CompressionCodec = Compression.NONE): Buffer {
  return claimingBatch(good(['template']), count, region, codec);
}

const ONE = rawRecord(recordBody(0, 0, 'k', 'v'));

describe('Produce refuses lying batches', () => {
  it('answers each with INVALID_RECORD, stores nothing, and keeps every good record before and after', async () => {
    const before = await produce('lies', 0, good(['before-1', 'before-2']));
    expect(before).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    for (const { name, bytes, message } of await lyingBatchCases(good(['template']))) {
      const answer = await produce('lies', 0, bytes);
      // Kafka gives no record errors for malformed records (its record iterator throws).
      expect([name, refusal(answer)]).toEqual([name, { errorCode: ErrorCode.INVALID_RECORD, errorMessage: message, recordErrors: [], baseOffset: -1n }]);
      expect([name, (await partitionOffsets(client, 'lies', 0)).hw]).toEqual([name, 2n]);
    }
    const after = await produce('lies', 0, good(['after-1']));
    expect(after).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 2n });
    expect(await fetchFrom(client, 'lies', 0, 0n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [0, 1, 2], values: ['before-1', 'before-2', 'after-1'] });
  });

  it('refuses only the lying partition of a request; the others are stored', async () => {
    const res = await client.send(0, 9, request('lies', [
      { partition: 1, records: claiming(2 ** 31 - 1, ONE) },
      { partition: 0, records: good(['beside']) },
    ]));
    const [lie, honest] = res.responses[0]!.partitionResponses;
    expect(lie).toMatchObject({ index: 1, errorCode: ErrorCode.INVALID_RECORD });
    expect(honest).toMatchObject({ index: 0, errorCode: ErrorCode.NONE, baseOffset: 3n });
    expect((await partitionOffsets(client, 'lies', 1)).hw).toBe(0n);
    expect((await fetchFrom(client, 'lies', 0, 3n)).values).toEqual(['beside']);
  });

  it('answers Produce v7 (no record errors or message in that version) with the same code', async () => {
    const answer = await produce('lies', 1, claiming(5, ONE), 7);
    expect(refusal(answer)).toEqual({ errorCode: ErrorCode.INVALID_RECORD, errorMessage: null, recordErrors: [], baseOffset: -1n });
  });

  it('closes an acks=0 connection whose batch lies, as for any failed acks=0 produce', async () => {
    const c = await RawClient.connect(cluster.bootstrap);
    c.sendNoReply(0, 9, request('lies', [{ partition: 1, records: claiming(1, Buffer.from('garbage garbage garbage')) }], 0));
    await c.waitClosed();
    expect((await partitionOffsets(client, 'lies', 1)).hw).toBe(0n);
  });
});

describe('Produce enforces the per-record rules with record errors', () => {
  it('refuses keyless records on a compacted topic: INVALID_RECORD, one record error per keyless record', async () => {
    const now = Date.now();
    const bytes = encodeBatchSync([
      { key: Buffer.from('a'), value: Buffer.from('1'), timestamp: now },
      { key: null, value: Buffer.from('2'), timestamp: now },
      { key: Buffer.from('c'), value: Buffer.from('3'), timestamp: now },
    ]);
    const keyError = 'Compacted topic cannot accept message without key in topic partition compacted-0';
    expect(refusal(await produce('compacted', 0, bytes))).toEqual({
      errorCode: ErrorCode.INVALID_RECORD,
      errorMessage: `One or more records have been rejected due to 1 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=1, message='${keyError}')]`,
      recordErrors: [{ batchIndex: 1, batchIndexErrorMessage: keyError }],
      baseOffset: -1n,
    });
    expect((await partitionOffsets(client, 'compacted', 0)).hw).toBe(0n);
    expect(await produce('compacted', 0, good(['keyed']))).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
  });

  it('follows a topic turned compacted by IncrementalAlterConfigs', async () => {
    const keyless = (): Buffer => encodeBatchSync([{ key: null, value: Buffer.from('no key'), timestamp: Date.now() }]);
    expect((await produce('flip', 0, keyless())).errorCode).toBe(ErrorCode.NONE);
    const altered = await client.send(44, 1, {
      resources: [{ resourceType: 2, resourceName: 'flip', configs: [{ name: 'cleanup.policy', configOperation: 0, value: 'compact' }] }],
      validateOnly: false,
    });
    expect(altered.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await produce('flip', 0, keyless())).errorCode).toBe(ErrorCode.INVALID_RECORD);
    expect((await partitionOffsets(client, 'flip', 0)).hw).toBe(1n);
  });

  it('refuses a timestamp more than an hour ahead (Kafka 4.0 default) with INVALID_TIMESTAMP', async () => {
    const future = Date.now() + 2 * 3_600_000;
    const answer = await produce('lies', 1, good(['from the future'], future));
    expect(answer).toMatchObject({ errorCode: ErrorCode.INVALID_TIMESTAMP, errorMessage: 'One or more records have been rejected due to invalid timestamp' });
    expect(answer.recordErrors).toHaveLength(1);
    expect(answer.recordErrors[0]!.batchIndex).toBe(0);
    expect(answer.recordErrors[0]!.batchIndexErrorMessage).toMatch(new RegExp(`^Timestamp ${future} of message with offset 0 is out of range\\. The timestamp should be within \\[-?\\d+, \\d+\\]$`));
  });

  it('applies message.timestamp.before.max.ms, and difference.max.ms where the side is unset', async () => {
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    expect((await produce('bounded', 0, good(['old'], twoDaysAgo))).errorCode).toBe(ErrorCode.INVALID_TIMESTAMP);
    expect((await produce('bounded', 0, good(['recent'], Date.now() - 3_600_000))).errorCode).toBe(ErrorCode.NONE);
    expect((await produce('difference', 0, good(['two minutes old'], Date.now() - 120_000))).errorCode).toBe(ErrorCode.INVALID_TIMESTAMP);
    expect((await produce('difference', 0, good(['fresh'], Date.now()))).errorCode).toBe(ErrorCode.NONE);
    expect((await fetchFrom(client, 'bounded', 0, 0n)).values).toEqual(['recent']);
    expect((await fetchFrom(client, 'difference', 0, 0n)).values).toEqual(['fresh']);
  });

  it('refuses the LogAppendTime bit from a producer on a LogAppendTime topic', async () => {
    const bytes = encodeBatchSync([{ value: Buffer.from('x'), timestamp: Date.now() }], { timestampType: TimestampType.LOG_APPEND_TIME, maxTimestamp: Date.now() });
    const answer = await produce('appended', 0, bytes);
    expect(answer.errorCode).toBe(ErrorCode.INVALID_TIMESTAMP);
    expect(answer.recordErrors.map((e) => e.batchIndex)).toEqual([0]);
  });

  it('stores the largest record timestamp as maxTimestamp, whatever the producer wrote', async () => {
    const now = Date.now();
    const bytes = encodeBatchSync(
      [
        { key: Buffer.from('a'), value: Buffer.from('early'), timestamp: now - 10 },
        { key: Buffer.from('b'), value: Buffer.from('late'), timestamp: now },
      ],
      { maxTimestamp: now - 5_000 },
    );
    const answer = await produce('ordered', 0, bytes);
    expect(answer.errorCode).toBe(ErrorCode.NONE);
    const res = await client.send(1, 12, oneFetchRequest('ordered', 0, answer.baseOffset, 0));
    const [stored] = splitBatches(res.responses[0]!.partitions[0]!.records as Buffer);
    expect([stored!.maxTimestamp, stored!.timestampType, stored!.verifyCrc()]).toEqual([now, TimestampType.CREATE_TIME, true]);
  });
});

describe('Produce bounds decompression', () => {
  it('refuses a batch that expands past --max-decompressed-batch-bytes with MESSAGE_TOO_LARGE', async () => {
    const bytes = await encodeBatch([{ key: Buffer.from('k'), value: Buffer.alloc(DECOMPRESSED_LIMIT, 'a'), timestamp: Date.now() }], { compression: Compression.GZIP });
    expect(refusal(await produce('lies', 1, bytes))).toEqual({
      errorCode: ErrorCode.MESSAGE_TOO_LARGE,
      errorMessage: `gzip record batch expands past the broker's ${DECOMPRESSED_LIMIT}-byte limit for validating records; send smaller batches (or raise --max-decompressed-batch-bytes)`,
      recordErrors: [],
      baseOffset: -1n,
    });
    expect((await partitionOffsets(client, 'lies', 1)).hw).toBe(0n);
  });

  it('queues pipelined requests in order while a compressed one is validated off the main thread', async () => {
    // The first request's gzip batch takes the thread pool milliseconds to expand; the second,
    // uncompressed, is walked at once. Both frames go out in one write so that the broker reads
    // them together (two writes would be split by Nagle's algorithm). The records must still
    // be stored in request order.
    const now = Date.now();
    const block = Buffer.from(Array.from({ length: 4_000 }, (_, i) => 0x61 + ((i * 7919) % 26)));
    const slow = await encodeBatch(
      Array.from({ length: 1_500 }, (_, i) => ({ key: Buffer.from(`z${i}`), value: block, timestamp: now })),
      { compression: Compression.GZIP },
    );
    const start = (await partitionOffsets(client, 'ordered', 0)).hw;
    const frame = (correlationId: number, records: Buffer): Buffer =>
      concatFrame(encodeRequest({ apiKey: 0, apiVersion: 9, correlationId, clientId: 'pipelined' }, request('ordered', [{ partition: 0, records }])));
    const c = await RawClient.connect(cluster.bootstrap);
    try {
      // The answers go to correlation ids the client does not wait for; the log is what counts.
      c.writeBytes(Buffer.concat([frame(1_000_001, slow), frame(1_000_002, good(['next'], now))]));
      await waitFor('both pipelined batches in the log', () => partitionOffsets(client, 'ordered', 0), (o) => o.hw >= start + 1_501n, 20_000, 20);
    } finally {
      c.close();
    }
    const stored = await fetchFrom(client, 'ordered', 0, start);
    expect(stored.offsets).toEqual(Array.from({ length: 1_501 }, (_, i) => Number(start) + i));
    expect([stored.values[0]!.length, stored.values[1_499]!.length, stored.values[1_500]]).toEqual([4_000, 4_000, 'next']);
  });
});
