// Object compaction against a real Redis and a real file store (docs/architecture.md §4.5):
// which runs the job rewrites and when, that reads, ListOffsets by timestamp and the time index
// answer the same afterwards, that a swap finding its runs gone changes nothing, that a read
// racing a swap never repeats a batch, and that a catch-up read of a compacted partition costs
// about one GET per block.
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { partitionKeys } from '../../src/coordination/keys.js';
import { ObjectCompactionJob, planCompaction, type CompactionLog, type CompactionPolicy } from '../../src/log/object-compaction.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import { formatRun, parseRun, type PartitionRef, type PartitionStore, type Run } from '../../src/log/partition-store.js';
import { readSegmentFooter } from '../../src/log/segment.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { decodeBatchSync, encodeBatchSync, RecordBatchView, splitBatches } from '../../wire/records/index.js';
import { withPartitionLogs } from '../helpers/partition-log.js';
import { freshPartition, zsetWithScores } from '../helpers/partition-store.js';

const NODE_ID = 7;
const BLOCK_BYTES = 4096;

let redis: Redis;
let state: PartitionStore;
let store: FileObjectStore;
/** The log that writes (its write cache holds what it flushed) and compacts. */
let writer: PartitionLog;
let partitionLog: (writeCacheBytes: number) => PartitionLog;
withPartitionLogs({ nodeId: NODE_ID, blockSizeBytes: BLOCK_BYTES, dirPrefix: 'strata-compaction-' }, (env) => ({ redis, state, store, writer, partitionLog } = env));

/** A log with cold caches over the same Redis and store: what another broker would read. */
function coldLog(): PartitionLog {
  return partitionLog(0);
}

/** Record i of a partition: three records stamped ts, ts+1, ts+2, all batches the same size. */
function batchOf(partition: number, i: number, ts: number, valueBytes = 12): RecordBatchView[] {
  const n = String(i).padStart(4, '0');
  const records = [0, 1, 2].map((j) => ({
    key: Buffer.from(`k-${partition}-${n}`),
    value: Buffer.from(`v-${partition}-${n}-${j}-`.padEnd(valueBytes, 'x')),
    timestamp: ts + j,
  }));
  return splitBatches(encodeBatchSync(records));
}

/**
 * Timestamps that rise by 100 per flush, with some older batches (no tidx entry) and some
 * spikes (a tidx entry, then none until the spike is passed).
 */
function timestampOf(i: number): number {
  if (i % 7 === 3) return 10_000 + 100 * i - 450;
  if (i % 11 === 5) return 10_000 + 100 * i + 1000;
  return 10_000 + 100 * i;
}

/** `flushes` flushes, each one object holding one batch of every partition in `refs`. */
async function produce(refs: readonly PartitionRef[], from: number, flushes: number, valueBytes?: number): Promise<void> {
  for (let i = from; i < from + flushes; i++) {
    const outcomes = await Promise.all(refs.map((ref) => writer.append(ref, batchOf(ref.partition, i, timestampOf(i), valueBytes))));
    for (const o of outcomes) expect(o.results).toEqual([{ errorCode: 0, baseOffset: 3 * i, duplicate: false }]);
  }
}

async function runsOf(ref: PartitionRef): Promise<Run[]> {
  return (await writer.indexedRuns(ref, 0, 10_000)).runs;
}

/** Every batch of a partition read from its log start, in small reads: its offset and bytes. */
async function readAll(log: PartitionLog, ref: PartitionRef, maxBytes = 1500): Promise<{ offset: number; bytes: Buffer }[]> {
  const { hw, logStart } = (await log.offsets([ref]))[0]!;
  const out: { offset: number; bytes: Buffer }[] = [];
  for (let offset = logStart; offset < hw; ) {
    const res = await log.read({ ref, fetchOffset: offset, maxBytes, minOneBatch: true, readCommitted: false });
    expect(res.errorCode).toBe(0);
    for (const b of res.records) {
      const view = new RecordBatchView(b);
      out.push({ offset: view.baseOffset, bytes: Buffer.from(b) });
      offset = view.nextOffset;
    }
  }
  return out;
}

/** The keys of the records read, in order, with their offsets. */
function keysOf(batches: readonly { bytes: Buffer }[]): string[] {
  return batches.flatMap(({ bytes }) => decodeBatchSync(bytes).records.map((r) => `${r.offset}:${r.key!.toString()}`));
}

function expectedKeys(partition: number, flushes: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < flushes; i++) for (let j = 0; j < 3; j++) out.push(`${3 * i + j}:k-${partition}-${String(i).padStart(4, '0')}`);
  return out;
}

/** ListOffsets by timestamp for timestamps across the partition's range, and MAX_TIMESTAMP. */
async function timestampAnswers(log: PartitionLog, ref: PartitionRef): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let ts = 9_900; ts <= 16_000; ts += 37) out.push([ts, await log.offsetForTimestamp(ref, ts, false)]);
  out.push(['max', await log.maxTimestampOffset(ref)]);
  return out;
}

/** The time index expected after the groups' swaps: per group, only its top entry, at its last offset. */
function trimmedTidx(before: [string, string][], groups: readonly [number, number][]): [string, string][] {
  const out: [string, string][] = [];
  for (const [member, score] of before) {
    const offset = Number(member);
    const group = groups.find(([base, last]) => offset >= base && offset <= last);
    if (!group) {
      out.push([member, score]);
      continue;
    }
    const top = before.filter(([m]) => Number(m) >= group[0] && Number(m) <= group[1]).at(-1)!;
    if (top[0] === member) out.push([String(group[1]), score]);
  }
  return out;
}

function job(log: CompactionLog, topicId: string, partitions: number, opts: { now: () => number; minAgeMs?: number; windowMs?: number; targetBytes: number }): ObjectCompactionJob {
  return new ObjectCompactionJob({
    topics: { all: async () => [{ name: 'compacted', topicId, partitions, replicationFactor: 1 }] },
    leads: () => true,
    log,
    intervalMs: 60_000,
    minAgeMs: opts.minAgeMs ?? 0,
    windowMs: opts.windowMs ?? 0,
    targetBytes: opts.targetBytes,
    now: opts.now,
  });
}

const OBJECT_KEY = new RegExp(`^data/\\d{4}-\\d\\d-\\d\\d/${NODE_ID}-[0-9a-f]{8}-c\\d{8}\\.seg$`);

describe('ObjectCompactionJob', () => {
  it('rewrites small runs of partitions sharing objects into one run per target-sized group; reads and ListOffsets answer as before', async () => {
    const topicId = freshPartition().topicId;
    const refs = [0, 1].map((partition) => ({ topicId, partition }));
    await produce(refs, 0, 40);
    const before = await Promise.all(refs.map(runsOf));
    // Each flush wrote one object holding a run of both partitions.
    expect(before[0]!.map((r) => r.objectKey)).toEqual(before[1]!.map((r) => r.objectKey));
    expect(new Set(before[0]!.map((r) => r.objectKey)).size).toBe(40);
    const size = before[0]![0]!.byteLength;
    expect(before.flat().every((r) => r.byteLength === size && r.batchCount === 1)).toBe(true);
    const reads = await Promise.all(refs.map((ref) => readAll(coldLog(), ref)));
    expect(keysOf(reads[1]!)).toEqual(expectedKeys(1, 40));
    const answers = await Promise.all(refs.map((ref) => timestampAnswers(coldLog(), ref)));
    const tidx = await Promise.all(refs.map((ref) => zsetWithScores(redis, partitionKeys(ref).tidx)));

    // Eight runs fit the target, a ninth does not: groups of eight runs, 24 offsets each.
    let clock = 1_000_000;
    const compaction = job(writer, topicId, 2, { now: () => clock, windowMs: 600_000, targetBytes: 8 * size + Math.floor(size / 2) });
    await compaction.runOnce();
    // The last group (runs 32–39) could still grow: it waits for the window.
    expect(compaction.stats()).toEqual({ cycles: 1, objectsWritten: 8, bytesRewritten: 2 * 4 * 8 * size, runsMerged: 64, swapsAborted: 0, backlogRuns: 0 });
    for (const [p, ref] of refs.entries()) {
      const runs = await runsOf(ref);
      expect(runs.map((r) => [r.base, r.last, r.batchCount, r.byteStart, r.byteLength])).toEqual([
        ...[0, 1, 2, 3].map((g) => [24 * g, 24 * g + 23, 8, 8, 8 * size]),
        ...before[p]!.slice(32).map((r) => [r.base, r.last, 1, r.byteStart, size]),
      ]);
      runs.slice(0, 4).forEach((r, g) => {
        expect(r.objectKey).toMatch(OBJECT_KEY);
        expect(r.maxTimestamp).toBe(Math.max(...before[p]!.slice(8 * g, 8 * g + 8).map((b) => b.maxTimestamp)));
      });
      expect(await readAll(coldLog(), ref)).toEqual(reads[p]);
      expect(await timestampAnswers(coldLog(), ref)).toEqual(answers[p]);
      const groups: [number, number][] = [0, 1, 2, 3].map((g) => [24 * g, 24 * g + 23]);
      expect(await zsetWithScores(redis, partitionKeys(ref).tidx)).toEqual(trimmedTidx(tidx[p]!, groups));
      // From inside the last merged run into the runs not compacted, in one read.
      const across = await coldLog().read({ ref, fetchOffset: 91, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
      expect(across.records.map((b) => Buffer.from(b))).toEqual(reads[p]!.slice(30).map((r) => r.bytes));
    }
    // The two partitions' groups went to separate objects.
    const [a, b] = await Promise.all(refs.map(runsOf));
    expect(new Set([...a!.slice(0, 4), ...b!.slice(0, 4)].map((r) => r.objectKey)).size).toBe(8);

    // Nothing more is due until the window has passed since the last group's newest run.
    clock += 599_999;
    await compaction.runOnce();
    expect(compaction.stats().objectsWritten).toBe(8);
    clock += 1;
    await compaction.runOnce();
    expect(compaction.stats()).toEqual({ cycles: 3, objectsWritten: 10, bytesRewritten: 2 * 5 * 8 * size, runsMerged: 80, swapsAborted: 0, backlogRuns: 0 });
    for (const [p, ref] of refs.entries()) {
      const runs = await runsOf(ref);
      expect(runs.map((r) => [r.base, r.last, r.batchCount])).toEqual([0, 1, 2, 3, 4].map((g) => [24 * g, 24 * g + 23, 8]));
      expect(await readAll(coldLog(), ref)).toEqual(reads[p]);
      expect(await timestampAnswers(coldLog(), ref)).toEqual(answers[p]);
      const groups: [number, number][] = [0, 1, 2, 3, 4].map((g) => [24 * g, 24 * g + 23]);
      expect(await zsetWithScores(redis, partitionKeys(ref).tidx)).toEqual(trimmedTidx(tidx[p]!, groups));
      // Every index entry is what formatRun writes for it.
      for (const member of await redis.zrange(partitionKeys(ref).idx, 0, -1)) expect(formatRun(parseRun(member))).toBe(member);
    }

    // A compacted object describes itself: one chunk, its batches at their real offsets.
    const merged = (await runsOf(refs[1]!))[2]!;
    const object = await store.get(merged.objectKey);
    const [chunk, ...others] = readSegmentFooter(object);
    expect(others).toEqual([]);
    expect(chunk).toMatchObject({ topicId, partition: 1, byteStart: 8, byteLength: 8 * size });
    expect(chunk!.batches.map((x) => [x.recordCount, x.maxTimestamp])).toEqual(before[1]!.slice(16, 24).map((r) => [3, r.maxTimestamp]));
    expect(splitBatches(object.subarray(8, 8 + 8 * size)).map((v) => v.baseOffset)).toEqual([48, 51, 54, 57, 60, 63, 66, 69]);
  });

  it('leaves runs alone until it has seen them for the minimum age', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 4);
    let clock = 5_000_000;
    const compaction = job(writer, ref.topicId, 1, { now: () => clock, minAgeMs: 1000, targetBytes: 1 << 20 });
    await compaction.runOnce();
    clock += 999;
    await produce([ref], 4, 4);
    await compaction.runOnce();
    expect(compaction.stats().objectsWritten).toBe(0);
    expect((await runsOf(ref)).length).toBe(8);
    // The first four were seen 1000 ms ago; the next four only 1 ms ago.
    clock += 1;
    await compaction.runOnce();
    expect((await runsOf(ref)).map((r) => [r.base, r.last])).toEqual([[0, 11], [12, 14], [15, 17], [18, 20], [21, 23]]);
    clock += 999;
    await compaction.runOnce();
    expect((await runsOf(ref)).map((r) => [r.base, r.last])).toEqual([[0, 23]]);
    expect(compaction.stats()).toMatchObject({ objectsWritten: 2, runsMerged: 9 });
    expect(keysOf(await readAll(coldLog(), ref))).toEqual(expectedKeys(0, 8));
  });

  it('abandons a swap whose runs DeleteRecords removed meanwhile, and compacts what is left next cycle', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 6);
    const before = await runsOf(ref);
    let deleted = false;
    const racing: CompactionLog = {
      indexedRuns: (r, from, limit) => writer.indexedRuns(r, from, limit),
      async compactRuns(r, runs) {
        if (!deleted) {
          deleted = true;
          expect(await writer.deleteRecords(r, 3)).toEqual({ errorCode: 0, logStart: 3 });
        }
        return writer.compactRuns(r, runs);
      },
    };
    const compaction = job(racing, ref.topicId, 1, { now: () => 0, targetBytes: 1 << 20 });
    await compaction.runOnce();
    expect(compaction.stats()).toEqual({ cycles: 1, objectsWritten: 1, bytesRewritten: 6 * before[0]!.byteLength, runsMerged: 0, swapsAborted: 1, backlogRuns: 6 });
    expect(await runsOf(ref)).toEqual(before.slice(1));
    await compaction.runOnce();
    expect((await runsOf(ref)).map((r) => [r.base, r.last, r.batchCount])).toEqual([[3, 17, 5]]);
    expect(compaction.stats()).toMatchObject({ cycles: 2, objectsWritten: 2, runsMerged: 5, swapsAborted: 1, backlogRuns: 0 });
    expect(keysOf(await readAll(coldLog(), ref)).slice(0, 3)).toEqual(['3:k-0-0001', '4:k-0-0001', '5:k-0-0001']);
  });

  it('compacts nothing on a partition it does not lead, and forgets it', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 3);
    const compaction = new ObjectCompactionJob({
      topics: { all: async () => [{ name: 'other', topicId: ref.topicId, partitions: 1, replicationFactor: 1 }] },
      leads: () => false,
      log: writer,
      intervalMs: 60_000,
      minAgeMs: 0,
      windowMs: 0,
      targetBytes: 1 << 20,
    });
    await compaction.runOnce();
    expect(compaction.stats()).toEqual({ cycles: 1, objectsWritten: 0, bytesRewritten: 0, runsMerged: 0, swapsAborted: 0, backlogRuns: 0 });
    expect((await runsOf(ref)).length).toBe(3);
  });

  it('logs one line for a failing cycle and goes on with the other partitions', async () => {
    const good = freshPartition();
    await produce([good], 0, 3);
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((obj: unknown) => void warnings.push(obj)) as typeof logger.warn;
    const compaction = new ObjectCompactionJob({
      topics: {
        all: async () => [
          { name: 'broken', topicId: 'x', partitions: 2, replicationFactor: 1 },
          { name: 'good', topicId: good.topicId, partitions: 1, replicationFactor: 1 },
        ],
      },
      leads: () => true,
      log: {
        indexedRuns: (ref, from, limit) => (ref.topicId === 'x' ? Promise.reject(new Error('Redis is down')) : writer.indexedRuns(ref, from, limit)),
        compactRuns: (ref, runs) => writer.compactRuns(ref, runs),
      },
      intervalMs: 60_000,
      minAgeMs: 0,
      windowMs: 0,
      targetBytes: 1 << 20,
    });
    compaction.start(logger);
    await compaction.runOnce();
    await compaction.stop();
    expect(warnings).toEqual([{ topic: 'broken', partition: 0, err: 'Redis is down', failed: 2, partitions: 3 }]);
    expect(compaction.stats()).toMatchObject({ cycles: 1, objectsWritten: 1, runsMerged: 3 });
    expect((await runsOf(good)).map((r) => [r.base, r.last])).toEqual([[0, 8]]);
  });
});

describe('idx-swap.lua', () => {
  it('changes nothing and answers index-changed when an old run is gone (DeleteRecords in between)', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 5);
    const runs = await runsOf(ref);
    expect(await writer.deleteRecords(ref, 3)).toEqual({ errorCode: 0, logStart: 3 });
    const k = partitionKeys(ref);
    const idx = await zsetWithScores(redis, k.idx);
    const tidx = await zsetWithScores(redis, k.tidx);
    const merged: Run = { ...runs[0]!, last: runs[2]!.last, byteLength: 3 * runs[0]!.byteLength, batchCount: 3, objectKey: 'data/never-written.seg' };
    expect(await state.swapRuns(ref, runs.slice(0, 3), merged)).toBe('index-changed');
    expect(await zsetWithScores(redis, k.idx)).toEqual(idx);
    expect(await zsetWithScores(redis, k.tidx)).toEqual(tidx);
    // Through the partition log: the object is written, the swap is not applied.
    const outcome = await writer.compactRuns(ref, runs.slice(0, 3));
    expect(outcome).toMatchObject({ swapped: false, aborted: 'index-changed', bytes: 3 * runs[0]!.byteLength });
    expect(await zsetWithScores(redis, k.idx)).toEqual(idx);
  });

  it('changes nothing and answers past-deadline once Redis\'s clock is past the commit-by time', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 3);
    const runs = await runsOf(ref);
    const k = partitionKeys(ref);
    const idx = await zsetWithScores(redis, k.idx);
    const tidx = await zsetWithScores(redis, k.tidx);
    const merged: Run = { ...runs[0]!, last: runs[2]!.last, byteLength: 3 * runs[0]!.byteLength, batchCount: 3, objectKey: 'data/too-late.seg' };
    const now = await state.timeMs();
    expect(await state.swapRuns(ref, runs, merged, now - 1)).toBe('past-deadline');
    expect(await zsetWithScores(redis, k.idx)).toEqual(idx);
    expect(await zsetWithScores(redis, k.tidx)).toEqual(tidx);
    expect(await state.swapRuns(ref, runs, merged, now + 60_000)).toBe('swapped');
    expect((await runsOf(ref)).map((r) => [r.base, r.last, r.objectKey])).toEqual([[0, runs[2]!.last, 'data/too-late.seg']]);
  });

  it('names old runs by the member read from idx, even when formatting would print it differently', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    // A max timestamp beyond 2^53 prints differently in Lua (%.0f) and JavaScript (String).
    const huge = '4611686018427387904';
    expect(String(Number(huge))).not.toBe(huge);
    await redis.hset(k.meta, 'hw', '2');
    await redis.zadd(k.idx, '0', `0|0|${huge}|0|10|1|data/a.seg`, '1', `1|1|${huge}|0|10|1|data/b.seg`);
    const runs = await runsOf(ref);
    const merged: Run = { base: 0, last: 1, maxTimestamp: runs[0]!.maxTimestamp, byteStart: 0, byteLength: 20, batchCount: 2, objectKey: 'data/merged.seg' };
    expect(await state.swapRuns(ref, runs, merged)).toBe('swapped');
    expect((await runsOf(ref)).map((r) => [r.base, r.last, r.objectKey])).toEqual([[0, 1, 'data/merged.seg']]);
  });

  it('refuses runs that do not cover the merged run exactly, before writing anything', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 3);
    const runs = await runsOf(ref);
    const idx = await zsetWithScores(redis, partitionKeys(ref).idx);
    const merged: Run = { ...runs[0]!, last: runs[2]!.last, objectKey: 'data/never-written.seg' };
    await expect(state.swapRuns(ref, [runs[0]!, runs[2]!], merged)).rejects.toThrow(/idx-swap: old run .* does not start at offset 3/);
    await expect(state.swapRuns(ref, runs.slice(0, 2), merged)).rejects.toThrow(/idx-swap: old runs end at 5, not at the merged run's last offset 8/);
    expect(await zsetWithScores(redis, partitionKeys(ref).idx)).toEqual(idx);
  });
});

describe('reads racing a swap', () => {
  it('a read planned before the swap reads the old objects, then the merged run, without repeating a batch', async () => {
    const ref = freshPartition();
    // More runs than one index lookup reads (32), so the read looks the index up again.
    await produce([ref], 0, 40);
    const expected = await readAll(coldLog(), ref);
    const reader = coldLog();
    const plan = await reader.plan({ ref, fetchOffset: 0, readCommitted: false });
    expect(plan.runs.length).toBe(32);
    expect(await writer.compactRuns(ref, await runsOf(ref))).toMatchObject({ swapped: true });
    const res = await reader.readPlanned(plan, 1 << 20, true);
    expect(res.records.map((b) => ({ offset: new RecordBatchView(b).baseOffset, bytes: Buffer.from(b) }))).toEqual(expected);
  });
});

describe('catch-up reads of a compacted partition', () => {
  it('take about one GET per two blocks instead of one per run', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 200, 200);
    const runs = await runsOf(ref);
    expect(runs.length).toBe(200);
    store.resetStats();
    const expected = await readAll(coldLog(), ref, 1 << 20);
    expect(store.stats().gets).toBe(200);

    const compaction = job(writer, ref.topicId, 1, { now: () => 0, targetBytes: 1 << 20 });
    await compaction.runOnce();
    const [merged, ...rest] = await runsOf(ref);
    expect(rest).toEqual([]);
    store.resetStats();
    expect(await readAll(coldLog(), ref, 1 << 20)).toEqual(expected);
    // Reads with budget to spare take two blocks per GET (read-ahead), and nothing past the run.
    expect(store.stats().gets).toBeLessThanOrEqual(Math.ceil(merged!.byteLength / (2 * BLOCK_BYTES)) + 1);
    expect(store.stats().bytesRead).toBeLessThanOrEqual(merged!.byteStart + merged!.byteLength + BLOCK_BYTES);
  });

  it('read one block per GET when the byte budget ends before the next block', async () => {
    const ref = freshPartition();
    await produce([ref], 0, 200, 200);
    await job(writer, ref.topicId, 1, { now: () => 0, targetBytes: 1 << 20 }).runOnce();
    const [merged] = await runsOf(ref);
    store.resetStats();
    // 1500-byte reads: each stops inside the block it is in, so read-ahead would fetch unused bytes.
    await readAll(coldLog(), ref, 1500);
    expect(store.stats().gets).toBeGreaterThan(0);
    expect(store.stats().bytesRead).toBeLessThanOrEqual(store.stats().gets * BLOCK_BYTES);
    expect(store.stats().bytesRead).toBeLessThanOrEqual(merged!.byteStart + merged!.byteLength + BLOCK_BYTES);
  });
});

describe('planCompaction', () => {
  /** Runs of the given sizes, three offsets each, seen at `seen[i]` (default 0). */
  function runsOfSizes(sizes: number[]): Run[] {
    return sizes.map((byteLength, i) => ({ base: 3 * i, last: 3 * i + 2, maxTimestamp: 0, byteStart: 8, byteLength, batchCount: 1, objectKey: `o${i}` }));
  }
  const policy: CompactionPolicy = { nowMs: 10_000, minAgeMs: 100, windowMs: 1000, targetBytes: 100, maxRunsPerGroup: 3 };
  const seenLongAgo = (): number => 0;
  const bases = (plan: { groups: Run[][] }): number[][] => plan.groups.map((g) => g.map((r) => r.base));

  it('rewrites a group the next run does not fit beside at once, and settles it', () => {
    const plan = planCompaction(runsOfSizes([40, 40, 40, 40]), () => 9_500, policy);
    expect(bases(plan)).toEqual([[0, 3]]);
    expect(plan.openFrom).toBe(6);
  });

  it('treats a run of the target size or more as a wall that closes the group before it', () => {
    const plan = planCompaction(runsOfSizes([10, 10, 100, 10, 10]), () => 9_500, policy);
    expect(bases(plan)).toEqual([[0, 3]]);
    expect(plan.openFrom).toBe(9);
  });

  it('rewrites a group closed by its run count but keeps it open for merging again', () => {
    const plan = planCompaction(runsOfSizes([1, 1, 1, 1, 1, 1, 1]), () => 9_500, policy);
    expect(bases(plan)).toEqual([[0, 3, 6], [9, 12, 15]]);
    expect(plan.openFrom).toBe(0);
  });

  it('after the window, leaves out leading runs bigger than the rest of the group together', () => {
    const plan = planCompaction(runsOfSizes([60, 20, 5, 5, 5]), seenLongAgo, { ...policy, maxRunsPerGroup: 10 });
    expect(bases(plan)).toEqual([[6, 9, 12]]);
    expect(plan.openFrom).toBe(0);
    // Nothing at all when every run outweighs the ones after it.
    expect(bases(planCompaction(runsOfSizes([40, 20, 10, 5]), seenLongAgo, { ...policy, maxRunsPerGroup: 10 }))).toEqual([]);
  });

  it('stops at the first run seen less than the minimum age ago, or not seen yet', () => {
    const seen = [0, 0, 9_950, 0];
    const runs = runsOfSizes([10, 10, 10, 10]);
    const plan = planCompaction(runs, (r) => seen[r.base / 3]!, policy);
    expect(bases(plan)).toEqual([[0, 3]]);
    expect(plan.openFrom).toBe(0);
    expect(planCompaction(runs, (r) => (r.base < 6 ? 0 : null), { ...policy, windowMs: 100_000 })).toEqual({ groups: [], openFrom: 0 });
  });
});
