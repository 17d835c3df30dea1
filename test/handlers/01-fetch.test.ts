import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type FetchRequest } from '../../wire/index.js';
import { encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, oneFetchRequest, partitionOffsets } from '../helpers/topics.js';

const MiB = 1024 * 1024;
/** The broker's --fetch-max-bytes in this file: a request asking for more gets this much. */
const FETCH_MAX_BYTES = 8 * MiB;
/** One record of this many value bytes per batch: about 1 MB a batch, under max.message.bytes. */
const VALUE_BYTES = 1_000_000;
/** Batches produced to the big partition: ~600 MB. */
const BIG_BATCHES = 600;

let cluster: Cluster;
/** Produces through the first broker. */
let producer: RawClient;
/** Reads through the second broker, whose write cache holds none of the data. */
let reader: RawClient;
let batchBytes = 0;

/** A Fetch v12 of `partitions` of `topic` from the given offsets, answered at once. */
function fetchRequest(topic: string, partitions: { partition: number; offset: bigint; partitionMaxBytes: number }[], maxBytes: number): FetchRequest {
  const req = oneFetchRequest(topic, 0, 0n, 0);
  const template = req.topics[0]!.partitions[0]!;
  req.maxBytes = maxBytes;
  req.topics[0]!.partitions = partitions.map((p) => ({ ...template, partition: p.partition, fetchOffset: p.offset, partitionMaxBytes: p.partitionMaxBytes }));
  return req;
}

/** What one partition of a Fetch answer holds: error, first offsets of its batches, bytes. */
function summary(p: { errorCode: number; highWatermark: bigint; records: unknown }): { errorCode: number; hw: bigint; baseOffsets: number[]; bytes: number } {
  const records = (p.records as Buffer | null) ?? Buffer.alloc(0);
  return { errorCode: p.errorCode, hw: p.highWatermark, baseOffsets: splitBatches(records).map((b) => b.baseOffset), bytes: records.length };
}

/** The second broker's object-store counters across `action`. */
async function readsDuring<T>(action: () => Promise<T>): Promise<{ result: T; gets: number; bytesRead: number }> {
  const store = cluster.brokers[1]!.memoryStore!;
  const before = store.stats();
  const result = await action();
  const after = store.stats();
  return { result, gets: after.gets - before.gets, bytesRead: after.bytesRead - before.bytesRead };
}

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, storage: 'memory', brokerArgs: ['--flush-ms', '5', '--fetch-max-bytes', String(FETCH_MAX_BYTES)] });
  producer = await RawClient.connect(`127.0.0.1:${cluster.brokers[0]!.port}`);
  reader = await RawClient.connect(`127.0.0.1:${cluster.brokers[1]!.port}`);
  await createTopic(producer, 'big', 1);
  await createTopic(producer, 'pair', 2);
  const batch = encodeBatchSync([{ key: null, value: Buffer.alloc(VALUE_BYTES, 7), timestamp: 1_700_000_000_000 }]);
  batchBytes = batch.length;
  const produceOne = async (topic: string, partition: number): Promise<void> => {
    const res = await producer.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 30000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }] });
    const p = res.responses[0]!.partitionResponses[0]!;
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`produce to ${topic}/${partition} failed with error ${p.errorCode}: ${p.errorMessage}`);
  };
  // One request at a time, so each batch is its own object and every cold read below starts
  // at a run's first byte: the counts of blocks read are then exact, not up to how flushes fell.
  for (let i = 0; i < BIG_BATCHES; i++) await produceOne('big', 0);
  for (let i = 0; i < 4; i++) await Promise.all([produceOne('pair', 0), produceOne('pair', 1)]);
}, 600_000);

afterAll(async () => {
  producer?.close();
  reader?.close();
  await cluster?.stop();
});

describe('Fetch byte limits', () => {
  it('holds the ~600 MB the test produced', async () => {
    expect(await partitionOffsets(reader, 'big', 0)).toEqual({ logStart: 0n, hw: BigInt(BIG_BATCHES) });
    expect(BIG_BATCHES * batchBytes).toBeGreaterThan(600_000_000);
  });

  it('max_bytes 1 MiB on the 600 MB partition answers one batch and reads at most a few blocks', async () => {
    for (const offset of [0n, 8n, 200n]) {
      const { result, gets, bytesRead } = await readsDuring(() => reader.send(1, 12, fetchRequest('big', [{ partition: 0, offset, partitionMaxBytes: 0x7fffffff }], MiB)));
      expect(summary(result.responses[0]!.partitions[0]!), `from ${offset}`).toEqual({ errorCode: ErrorCode.NONE, hw: BigInt(BIG_BATCHES), baseOffsets: [Number(offset)], bytes: batchBytes });
      // A ~1 MB batch lies in at most two 1 MiB blocks; a cold read may also need the block
      // holding its header. Before reads stopped at the limit, this read the whole partition.
      expect(gets, `GETs from ${offset}`).toBeLessThanOrEqual(3);
      expect(bytesRead, `bytes read from ${offset}`).toBeLessThanOrEqual(3 * MiB);
    }
  });

  it('a consumer reading the partition 1 MiB at a time reads about what it is answered', async () => {
    let offset = 300n;
    let answered = 0;
    const { gets, bytesRead } = await readsDuring(async () => {
      for (let i = 0; i < 40; i++) {
        const res = await reader.send(1, 12, fetchRequest('big', [{ partition: 0, offset, partitionMaxBytes: MiB }], 50 * MiB));
        const s = summary(res.responses[0]!.partitions[0]!);
        expect(s.baseOffsets, `fetch ${i}`).toEqual([Number(offset)]);
        answered += s.bytes;
        offset += 1n;
      }
    });
    expect(answered).toBe(40 * batchBytes);
    // Blocks are fetched once and shared by neighbouring batches: no more blocks than the
    // answered bytes span, plus the one holding the first header and the one straddled last.
    expect(bytesRead).toBeLessThanOrEqual(answered + 2 * MiB);
    expect(gets).toBeLessThanOrEqual(Math.ceil(answered / MiB) + 2);
  });

  it('a Fetch asking for 2 GiB gets at most --fetch-max-bytes, from the block cache and from the write cache', async () => {
    // The writing broker's write cache holds the newest batches: offset 560 on is read there.
    for (const [name, client, from] of [['fresh broker', reader, 100n], ['writing broker', producer, 560n]] as const) {
      const res = await client.send(1, 12, fetchRequest('big', [{ partition: 0, offset: from, partitionMaxBytes: 0x7fffffff }], 0x7fffffff));
      const s = summary(res.responses[0]!.partitions[0]!);
      const fits = Math.floor(FETCH_MAX_BYTES / batchBytes);
      expect(s, name).toEqual({ errorCode: ErrorCode.NONE, hw: BigInt(BIG_BATCHES), baseOffsets: Array.from({ length: fits }, (_, i) => Number(from) + i), bytes: fits * batchBytes });
    }
  });

  it('returns the first batch whole even when it is larger than max_bytes (KIP-74), and only that', async () => {
    for (const [name, client] of [['fresh broker', reader], ['writing broker', producer]] as const) {
      const res = await client.send(1, 12, fetchRequest('big', [{ partition: 0, offset: 590n, partitionMaxBytes: 1000 }], 1000));
      expect(summary(res.responses[0]!.partitions[0]!), name).toEqual({ errorCode: ErrorCode.NONE, hw: BigInt(BIG_BATCHES), baseOffsets: [590], bytes: batchBytes });
    }
  });

  it('counts the KIP-74 batch against max_bytes: a later partition gets only what is left after it', async () => {
    // Partition 0's limit is below its first batch, which it returns anyway; that batch uses
    // up most of max_bytes, so partition 1 (read at the same time) returns nothing.
    for (const [name, client] of [['fresh broker', reader], ['writing broker', producer]] as const) {
      const res = await client.send(1, 12, fetchRequest('pair', [
        { partition: 0, offset: 0n, partitionMaxBytes: 1000 },
        { partition: 1, offset: 0n, partitionMaxBytes: 10 * MiB },
      ], Math.floor(1.5 * batchBytes)));
      expect(res.responses[0]!.partitions.map(summary), name).toEqual([
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [0], bytes: batchBytes },
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [], bytes: 0 },
      ]);
    }
  });

  it('shares max_bytes across partitions in request order: a later partition gets what the earlier ones leave', async () => {
    for (const [name, client] of [['fresh broker', reader], ['writing broker', producer]] as const) {
      const both = (maxBytes: number) =>
        client.send(1, 12, fetchRequest('pair', [
          { partition: 0, offset: 0n, partitionMaxBytes: 10 * MiB },
          { partition: 1, offset: 0n, partitionMaxBytes: 10 * MiB },
        ], maxBytes));
      // Room for three batches: partition 0 takes all three, partition 1 none but its offsets.
      let res = await both(3 * batchBytes + 10);
      expect(res.responses[0]!.partitions.map(summary), name).toEqual([
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [0, 1, 2], bytes: 3 * batchBytes },
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [], bytes: 0 },
      ]);
      // Room for six: partition 0's four, then two of partition 1's.
      res = await both(6 * batchBytes + 10);
      expect(res.responses[0]!.partitions.map(summary), name).toEqual([
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [0, 1, 2, 3], bytes: 4 * batchBytes },
        { errorCode: ErrorCode.NONE, hw: 4n, baseOffsets: [0, 1], bytes: 2 * batchBytes },
      ]);
    }
  });
});
