// Size retention and bounded partition metadata against a real Redis and a real file store
// (docs/architecture.md §4.3): where retention.bytes moves the log start (Kafka's rule, with
// runs for segments), how it combines with time retention, what the retention job applies it
// to, what PartitionLog.usage counts, and that moving the log start drops the aborted-
// transaction entries no read_committed fetch can need any more.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '../../src/config.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import type { BatchCommitInput, PartitionRef, PartitionStore } from '../../src/log/partition-store.js';
import { RetentionJob, retentionLimits, retentionMaxBytes, type RetentionTopic } from '../../src/log/retention.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { ErrorCode } from '../../wire/index.js';
import { decodeBatchSync, encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { freshPartition, idem, plain, withPartitionStore, zsetWithScores } from '../helpers/partition-store.js';

let redis: Redis;
let state: PartitionStore;
let log: PartitionLog;
let store: FileObjectStore;
const root = mkdtempSync(path.join(os.tmpdir(), 'strata-retention-bytes-'));

withPartitionStore((env) => {
  ({ redis, state } = env);
});

beforeAll(() => {
  store = new FileObjectStore(pathToFileURL(root).href);
  log = new PartitionLog({
    partitions: state,
    store,
    // Reads go to the file store, not to the objects this process just wrote.
    writeCacheBytes: 0,
    blockCacheBytes: 1 << 20,
    blockSizeBytes: 4096,
    maxDecompressedBatchBytes: 1 << 20,
    // One flush per awaited append: each append is one run in its own object.
    flushMs: 1,
    flushBytes: 1 << 20,
  });
  log.start(1, silentLogger());
});

afterAll(async () => {
  await log?.drain();
  log?.close();
  await store?.close();
  rmSync(root, { recursive: true, force: true });
});

const broker = parseBrokerConfig(['--redis', 'redis://127.0.0.1:1', '--storage', 'memory://retention-bytes-test'], {});

/** Appends one batch of records with these values through the facade; returns its byte length. */
async function appendBatch(ref: PartitionRef, values: string[]): Promise<number> {
  const bytes = encodeBatchSync(values.map((v, i) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1_000 + i })));
  const outcome = await log.append(ref, splitBatches(bytes));
  expect(outcome.results.map((r) => r.errorCode)).toEqual([ErrorCode.NONE]);
  return bytes.length;
}

/** Every record from `fetchOffset` to the high watermark, read through the facade. */
async function readFrom(ref: PartitionRef, fetchOffset: number): Promise<{ offset: number; value: string }[]> {
  const out: { offset: number; value: string }[] = [];
  let at = fetchOffset;
  for (;;) {
    const r = await log.read({ ref, fetchOffset: at, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(r.errorCode).toBe(ErrorCode.NONE);
    if (r.records.length === 0) return out;
    for (const view of splitBatches(Buffer.concat(r.records))) {
      for (const rec of decodeBatchSync(view).records) {
        if (rec.offset >= fetchOffset) out.push({ offset: rec.offset, value: rec.value?.toString() ?? '' });
        at = rec.offset + 1;
      }
    }
  }
}

/** Commits one run per entry through the store: ten records each, run i at offsets 10i..10i+9. */
async function commitRuns(ref: PartitionRef, runs: { bytes: number; ts?: number }[]): Promise<void> {
  for (const [i, r] of runs.entries()) {
    await state.commit(`data/run-${i}.seg`, [{ ref, batches: [plain(0, r.bytes, 9, r.ts ?? 1000)] }]);
  }
}

/** The byte lengths of the runs a partition's index holds, oldest first. */
async function runSizes(ref: PartitionRef): Promise<number[]> {
  return (await state.runsFrom(ref, 0, 10_000)).runs.map((r) => r.byteLength);
}

describe('size retention through the facade', () => {
  it('keeps the newest runs whose total reaches the limit, and the records there read back intact', async () => {
    const ref = freshPartition();
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) sizes.push(await appendBatch(ref, [`record-${i}-`.padEnd(40 + 30 * i, 'x')]));
    // Six runs of different, known sizes, each in its own object.
    expect(await runSizes(ref)).toEqual(sizes);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(await log.usage([ref])).toEqual([{ logStart: 0, hw: 6, storedBytes: total, runs: 6, objects: 6 }]);

    // One byte more than the newest two runs: the third newest must stay too.
    const limit = sizes[5]! + sizes[4]! + 1;
    expect(await log.applyRetention(ref, { maxBytes: limit })).toEqual({ logStart: 3, advanced: true });
    const kept = sizes[3]! + sizes[4]! + sizes[5]!;
    expect(await log.usage([ref])).toEqual([{ logStart: 3, hw: 6, storedBytes: kept, runs: 3, objects: 3 }]);
    // Kafka's bound: at least the limit, and less than the limit plus the oldest run kept.
    expect(kept).toBeGreaterThanOrEqual(limit);
    expect(kept - sizes[3]!).toBeLessThan(limit);
    expect(await readFrom(ref, 3)).toEqual([3, 4, 5].map((i) => ({ offset: i, value: `record-${i}-`.padEnd(40 + 30 * i, 'x') })));

    // Applying it again changes nothing; neither does a limit the partition already keeps.
    expect(await log.applyRetention(ref, { maxBytes: limit })).toEqual({ logStart: 3, advanced: false });
    expect(await log.applyRetention(ref, { maxBytes: kept })).toEqual({ logStart: 3, advanced: false });
    // A limit exactly the newest two runs keeps exactly those.
    expect(await log.applyRetention(ref, { maxBytes: sizes[4]! + sizes[5]! })).toEqual({ logStart: 4, advanced: true });
    // Limit 0 keeps the newest run, as Kafka keeps its active segment.
    expect(await log.applyRetention(ref, { maxBytes: 0 })).toEqual({ logStart: 5, advanced: true });
    expect(await log.usage([ref])).toEqual([{ logStart: 5, hw: 6, storedBytes: sizes[5], runs: 1, objects: 1 }]);
    expect(await readFrom(ref, 5)).toEqual([{ offset: 5, value: 'record-5-'.padEnd(190, 'x') }]);
  });

  it('keeps everything when the partition is within the limit, and for a partition never written', async () => {
    const ref = freshPartition();
    await commitRuns(ref, [{ bytes: 100 }, { bytes: 200 }]);
    expect(await log.applyRetention(ref, { maxBytes: 301 })).toEqual({ logStart: 0, advanced: false });
    expect(await log.applyRetention(ref, { maxBytes: 300 })).toEqual({ logStart: 0, advanced: false });
    expect(await log.applyRetention(ref, {})).toEqual({ logStart: 0, advanced: false });
    expect(await runSizes(ref)).toEqual([100, 200]);

    const empty = freshPartition();
    expect(await log.applyRetention(empty, { maxBytes: 0 })).toEqual({ logStart: 0, advanced: false });
    expect(await log.usage([empty])).toEqual([{ logStart: 0, hw: 0, storedBytes: 0, runs: 0, objects: 0 }]);
    const k = partitionKeys(empty);
    expect(await redis.exists(k.meta, k.idx, k.tidx, k.aborted)).toBe(0);
  });

  it('moves the log start to the further of the time and size targets', async () => {
    const runs = [100, 200, 300, 400, 500].map((ts) => ({ bytes: 100, ts }));
    const bothTime = freshPartition();
    await commitRuns(bothTime, runs);
    // Time: runs 0 and 1 are older than 250 (target 20). Size: 150 bytes keep runs 3 and 4 (target 30).
    expect(await log.applyRetention(bothTime, { cutoffMs: 250, maxBytes: 150 })).toEqual({ logStart: 30, advanced: true });

    const bothSize = freshPartition();
    await commitRuns(bothSize, runs);
    // Time: everything older than 450 but run 4 (target 40). Size as before (target 30).
    expect(await log.applyRetention(bothSize, { cutoffMs: 450, maxBytes: 150 })).toEqual({ logStart: 40, advanced: true });

    const sizeOnly = freshPartition();
    await commitRuns(sizeOnly, runs);
    // Nothing is older than the cutoff; size alone decides.
    expect(await log.applyRetention(sizeOnly, { cutoffMs: 50, maxBytes: 350 })).toEqual({ logStart: 10, advanced: true });
    expect(await runSizes(sizeOnly)).toEqual([100, 100, 100, 100]);
  });

  it('counts a run straddling the log start whole, and never moves the log start back into it', async () => {
    const ref = freshPartition();
    await commitRuns(ref, [{ bytes: 100 }, { bytes: 200 }, { bytes: 300 }, { bytes: 400 }, { bytes: 500 }]);
    expect(await log.deleteRecords(ref, 25)).toEqual({ errorCode: ErrorCode.NONE, logStart: 25 });
    // Run 2 (offsets 20–29, 300 bytes) straddles the log start and is counted whole.
    expect(await log.usage([ref])).toEqual([{ logStart: 25, hw: 50, storedBytes: 1200, runs: 3, objects: 3 }]);
    // 901 bytes reach back into run 2, whose base lies below the log start: nothing moves.
    expect(await log.applyRetention(ref, { maxBytes: 901 })).toEqual({ logStart: 25, advanced: false });
    // 900 bytes are runs 3 and 4 alone.
    expect(await log.applyRetention(ref, { maxBytes: 900 })).toEqual({ logStart: 30, advanced: true });
    expect(await log.usage([ref])).toEqual([{ logStart: 30, hw: 50, storedBytes: 900, runs: 2, objects: 2 }]);
  });

  it('walks partitions of more runs than one script call or one page reads', async () => {
    const ref = freshPartition();
    // 3000 runs of 10 bytes in one object: byte ranges with gaps make each batch its own run.
    const batches: BatchCommitInput[] = Array.from({ length: 3000 }, (_, i) => plain(20 * i, 10, 0));
    await state.commit('data/many.seg', [{ ref, batches }]);
    expect(await log.usage([ref])).toEqual([{ logStart: 0, hw: 3000, storedBytes: 30_000, runs: 3000, objects: 1 }]);
    // 2500 runs make 25,000 bytes, one byte short: the 2501st newest (offset 499) stays.
    expect(await log.applyRetention(ref, { maxBytes: 25_001 })).toEqual({ logStart: 499, advanced: true });
    expect(await log.usage([ref])).toEqual([{ logStart: 499, hw: 3000, storedBytes: 25_010, runs: 2501, objects: 1 }]);
  });

  it('answers usage for several partitions at once, in input order', async () => {
    const a = freshPartition();
    const b = freshPartition();
    await state.commit('data/shared.seg', [
      { ref: a, batches: [plain(0, 100, 4), plain(300, 50, 0)] },
      { ref: b, batches: [plain(100, 200, 9)] },
    ]);
    await state.commit('data/second.seg', [{ ref: a, batches: [plain(0, 25, 0)] }]);
    expect(await log.usage([b, freshPartition(), a])).toEqual([
      { logStart: 0, hw: 10, storedBytes: 200, runs: 1, objects: 1 },
      { logStart: 0, hw: 0, storedBytes: 0, runs: 0, objects: 0 },
      { logStart: 0, hw: 7, storedBytes: 175, runs: 3, objects: 2 },
    ]);
    expect(await log.usage([])).toEqual([]);
  });
});

describe('size retention in the retention job', () => {
  it('applies retention.bytes on delete-policy topics, the topic override over --log-retention-bytes, with retention.ms -1', async () => {
    const sized = freshPartition().topicId;
    const inherits = freshPartition().topicId;
    const unlimited = freshPartition().topicId;
    const compacted = freshPartition().topicId;
    for (const topicId of [sized, inherits, unlimited, compacted]) {
      await commitRuns({ topicId, partition: 0 }, [{ bytes: 100 }, { bytes: 100 }, { bytes: 100 }, { bytes: 100 }]);
    }
    const flagged = parseBrokerConfig(['--redis', 'redis://127.0.0.1:1', '--storage', 'memory://x', '--log-retention-ms', '-1', '--log-retention-bytes', '300'], {});
    const topics: RetentionTopic[] = [
      { name: 'sized', topicId: sized, partitions: 1, replicationFactor: 1, configs: { 'retention.bytes': '150' } },
      { name: 'inherits', topicId: inherits, partitions: 1, replicationFactor: 1, configs: {} },
      { name: 'unlimited', topicId: unlimited, partitions: 1, replicationFactor: 1, configs: { 'retention.bytes': '-1' } },
      { name: 'compacted', topicId: compacted, partitions: 1, replicationFactor: 1, configs: { 'cleanup.policy': 'compact', 'retention.bytes': '150' } },
    ];
    const job = new RetentionJob({ topics: { all: async () => topics }, leads: () => true, log, broker: flagged, intervalMs: 60_000 });
    await job.runOnce();
    expect(job.stats()).toEqual({ cycles: 1, logStartAdvances: 2 });
    const starts = await log.offsets([sized, inherits, unlimited, compacted].map((topicId) => ({ topicId, partition: 0 })));
    expect(starts.map((o) => o.logStart)).toEqual([20, 10, 0, 0]);
  });

  it('limits a topic by the retention.bytes and retention.ms that apply to it', () => {
    const now = 10_000_000;
    expect(retentionMaxBytes({}, broker)).toBeNull();
    expect(retentionMaxBytes({ 'retention.bytes': '0' }, broker)).toBe(0);
    expect(retentionMaxBytes({}, { ...broker, logRetentionBytes: 4096 })).toBe(4096);
    expect(retentionMaxBytes({ 'retention.bytes': '-1' }, { ...broker, logRetentionBytes: 4096 })).toBeNull();
    expect(retentionMaxBytes({ 'cleanup.policy': 'compact', 'retention.bytes': '10' }, broker)).toBeNull();
    expect(retentionLimits({ 'retention.bytes': '10' }, broker, now)).toEqual({ cutoffMs: now - 604_800_000, maxBytes: 10 });
    expect(retentionLimits({ 'retention.bytes': '10', 'retention.ms': '-1' }, broker, now)).toEqual({ maxBytes: 10 });
    expect(retentionLimits({ 'retention.ms': '-1' }, broker, now)).toBeNull();
    expect(retentionLimits({ 'cleanup.policy': 'compact', 'retention.bytes': '10', 'retention.ms': '1' }, broker, now)).toBeNull();
  });
});

describe('aborted-transaction entries below the log start', () => {
  const TRANSACTIONAL = 1;
  const CONTROL = 2;
  const ABORT = 4;
  const txnBatch = (pid: number, seq: number, records: number): BatchCommitInput => ({ ...idem(0, 10, records - 1, pid, 0, seq), flags: TRANSACTIONAL });
  const abortMarker = (pid: number): BatchCommitInput => ({ ...idem(0, 10, 0, pid, 0, -1), flags: TRANSACTIONAL | CONTROL | ABORT });

  /** Three aborted transactions with markers at 2, 8 and 10; plain records at 3–4; hw 11. */
  async function threeAborted(ref: PartitionRef): Promise<void> {
    const commit = (batches: BatchCommitInput[]) => state.commit('data/txn.seg', [{ ref, batches }]);
    expect(await state.openTransaction([ref], 9001, 0)).toEqual([ErrorCode.NONE]);
    await commit([txnBatch(9001, 0, 2)]); // 0–1
    await commit([abortMarker(9001)]); // 2
    await commit([plain(0, 10, 1)]); // 3–4
    expect(await state.openTransaction([ref], 9002, 0)).toEqual([ErrorCode.NONE]);
    await commit([txnBatch(9002, 0, 3)]); // 5–7
    await commit([abortMarker(9002)]); // 8
    expect(await state.openTransaction([ref], 9003, 0)).toEqual([ErrorCode.NONE]);
    await commit([txnBatch(9003, 0, 1)]); // 9
    await commit([abortMarker(9003)]); // 10
    expect(await zsetWithScores(redis, partitionKeys(ref).aborted)).toEqual([
      ['9001|0|2', '2'],
      ['9002|5|8', '8'],
      ['9003|9|10', '10'],
    ]);
  }

  it('DeleteRecords drops those whose abort marker is below the new log start and keeps the rest', async () => {
    const ref = freshPartition();
    await threeAborted(ref);
    expect(await log.deleteRecords(ref, 8)).toEqual({ errorCode: ErrorCode.NONE, logStart: 8 });
    // The marker at 8 is at the log start: a read_committed fetch from 8 is still told of it.
    expect(await zsetWithScores(redis, partitionKeys(ref).aborted)).toEqual([
      ['9002|5|8', '8'],
      ['9003|9|10', '10'],
    ]);
    expect(await log.abortedTransactions(ref, 8, 11)).toEqual([
      { producerId: 9002, firstOffset: 5 },
      { producerId: 9003, firstOffset: 9 },
    ]);
    expect(await log.deleteRecords(ref, -1)).toEqual({ errorCode: ErrorCode.NONE, logStart: 11 });
    expect(await redis.exists(partitionKeys(ref).aborted)).toBe(0);
  });

  it('retention drops them too, and a refused DeleteRecords drops nothing', async () => {
    const ref = freshPartition();
    await threeAborted(ref);
    expect(await log.deleteRecords(ref, 12)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, logStart: 0 });
    expect(await zsetWithScores(redis, partitionKeys(ref).aborted)).toHaveLength(3);
    // Seven runs of 10 bytes; 30 bytes keep the last three (offsets 8–10).
    expect(await log.applyRetention(ref, { maxBytes: 30 })).toEqual({ logStart: 8, advanced: true });
    expect(await zsetWithScores(redis, partitionKeys(ref).aborted)).toEqual([
      ['9002|5|8', '8'],
      ['9003|9|10', '10'],
    ]);
  });
});
