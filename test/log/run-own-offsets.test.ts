// Runs whose batches carry their own offsets, with gaps (docs/architecture.md §4.2, §4.6), against
// a real Redis and a real file store: what the log cleaner leaves. A fetch offset inside a gap
// answers the next batch, exact offsets answer their batch, from the block cache and from
// the write cache alike; ListOffsets by timestamp skips removed records, also when the record
// holding the partition's max timestamp went; object compaction merges runs across a gap.
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { partitionKeys } from '../../src/coordination/keys.js';
import { ByteLru } from '../../src/log/cache.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import { formatRun, parseRun, type PartitionRef, type PartitionStore, type Run } from '../../src/log/partition-store.js';
import { LogReader } from '../../src/log/reader.js';
import { buildSegment, SegmentPieces } from '../../src/log/segment.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { decodeBatchSync, encodeBatchSync, RecordBatchView, splitBatches } from '../../wire/records/index.js';
import { withPartitionLogs } from '../helpers/partition-log.js';
import { freshPartition } from '../helpers/partition-store.js';

const NODE_ID = 3;
const BLOCK_BYTES = 4096;
const T0 = 1_000;

let redis: Redis;
let state: PartitionStore;
let store: FileObjectStore;
let writer: PartitionLog;
let partitionLog: (writeCacheBytes: number) => PartitionLog;
withPartitionLogs({ nodeId: NODE_ID, blockSizeBytes: BLOCK_BYTES, dirPrefix: 'strata-own-offsets-' }, (env) => ({ redis, state, store, writer, partitionLog } = env));

/** A log with cold caches over the same Redis and store: what another broker would read. */
function coldLog(): PartitionLog {
  return partitionLog(0);
}

/** Timestamp of the record at `offset`; offset 30 is a spike (the partition's max). */
function timestampAt(offset: number): number {
  return offset === 30 ? 50_000 : T0 + offset;
}

/** One batch per flush (one run each) of `count` records from `from`, keyed `k<offset>`. */
async function produceRuns(ref: PartitionRef, sizes: readonly number[]): Promise<Run[]> {
  let from = (await writer.offsets([ref]))[0]!.hw;
  for (const count of sizes) {
    const records = Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`k${from + i}`), value: Buffer.from(`v${from + i}`), timestamp: timestampAt(from + i) }));
    const outcome = await writer.append(ref, splitBatches(encodeBatchSync(records)));
    expect(outcome.results).toEqual([{ errorCode: 0, baseOffset: from, duplicate: false }]);
    from += count;
  }
  return (await writer.indexedRuns(ref, 0, 1000)).runs;
}

/** A batch at `base` spanning `lastOffsetDelta + 1` offsets that keeps only the records at `offsets`. */
function gapped(base: number, lastOffsetDelta: number, offsets: readonly number[]): Buffer {
  const records = offsets.map((o) => ({ key: Buffer.from(`k${o}`), value: Buffer.from(`v${o}`), timestamp: timestampAt(o), offsetDelta: o - base }));
  return encodeBatchSync(records, { baseOffset: base, partitionLeaderEpoch: 0, lastOffsetDelta });
}

/** Writes `batches` as one single-partition object and swaps its ownOffsets run in for `old`. */
async function replaceWithOwnRun(ref: PartitionRef, old: readonly Run[], batches: readonly Buffer[], name: string): Promise<Run> {
  const views = batches.flatMap((b) => splitBatches(b));
  const layout = buildSegment([{ topicId: ref.topicId, partition: ref.partition, batches: views }]);
  const objectKey = `data/own/${name}-${ref.topicId}.seg`;
  await store.put(objectKey, layout.pieces, { fresh: true });
  const run: Run = {
    base: old[0]!.base,
    last: old[old.length - 1]!.last,
    maxTimestamp: Math.max(...views.map((v) => v.maxTimestamp)),
    byteStart: layout.chunks[0]!.byteStart,
    byteLength: layout.chunks[0]!.byteLength,
    batchCount: views.length,
    objectKey,
    ownOffsets: true,
  };
  expect(await state.replaceRuns(ref, old, run, {})).toBe('swapped');
  return run;
}

/** What one read returns: per batch, its base offset and the offsets of its records. */
function shape(records: readonly Buffer[]): [number, number[]][] {
  return records.map((b) => [new RecordBatchView(b).baseOffset, decodeBatchSync(b).records.map((r) => r.offset)]);
}

/**
 * A partition of 5 flushes (offsets 0–4, 5–11, 12–13, 14–19, 20–29) whose runs are replaced by
 * one ownOffsets run: batch 0–4 keeping 1 and 4, the gap 5–11, batch 12–13, the gap 14–19,
 * batch 20–29.
 */
async function gappedPartition(): Promise<{ ref: PartitionRef; run: Run }> {
  const ref = freshPartition();
  const runs = await produceRuns(ref, [5, 7, 2, 6, 10]);
  const all = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const run = await replaceWithOwnRun(ref, runs, [gapped(0, 4, [1, 4]), gapped(12, 1, [12, 13]), gapped(20, 9, all(20, 29))], 'five');
  return { ref, run };
}

const ALL_BATCHES: [number, number[]][] = [
  [0, [1, 4]],
  [12, [12, 13]],
  [20, [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]],
];

/** The batches a read from `fetchOffset` must return: those ending at or after it. */
function expectedFrom(fetchOffset: number): [number, number[]][] {
  const lasts = [4, 13, 29];
  return ALL_BATCHES.filter((_, i) => lasts[i]! >= fetchOffset);
}

describe('reading an ownOffsets run with gaps', () => {
  it('is indexed with a negative batch count that parseRun reads back', async () => {
    const { ref, run } = await gappedPartition();
    const [member] = await redis.zrange(partitionKeys(ref).idx, 0, -1);
    expect(member).toBe(`0|29|1029|8|${run.byteLength}|-3|${run.objectKey}`);
    expect(parseRun(member!)).toEqual({ ...run });
    expect(formatRun(parseRun(member!))).toBe(member);
    expect(parseRun('0|29|1029|8|10|3|o')).toEqual({ base: 0, last: 29, maxTimestamp: 1029, byteStart: 8, byteLength: 10, batchCount: 3, objectKey: 'o' });
  });

  it('answers every fetch offset with the batches from the one holding it, a gap with the next batch (block cache)', async () => {
    const { ref } = await gappedPartition();
    for (let offset = 0; offset < 30; offset++) {
      const res = await coldLog().read({ ref, fetchOffset: offset, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
      expect([offset, res.errorCode, shape(res.records)]).toEqual([offset, 0, expectedFrom(offset)]);
    }
    const end = await coldLog().read({ ref, fetchOffset: 30, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect([end.errorCode, end.records, end.offsets.hw]).toEqual([0, [], 30]);
  });

  it('answers the same from the write cache, and keeps the byte limit', async () => {
    const { ref, run } = await gappedPartition();
    const pieces = new ByteLru<SegmentPieces>(1 << 20);
    pieces.set(run.objectKey, new SegmentPieces([await store.get(run.objectKey)]));
    const reader = new LogReader(store, state, pieces, new ByteLru(0), BLOCK_BYTES);
    store.resetStats();
    for (let offset = 0; offset < 30; offset++) {
      const res = await reader.read({ ref, fetchOffset: offset, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
      expect([offset, shape(res.records)]).toEqual([offset, expectedFrom(offset)]);
    }
    expect(store.stats().gets).toBe(0);
    // Only the first batch fits: the gap after it does not make the read stop short of it.
    const first = await reader.read({ ref, fetchOffset: 3, maxBytes: 100, minOneBatch: true, readCommitted: false });
    expect(shape(first.records)).toEqual([[0, [1, 4]]]);
    const second = (await reader.read({ ref, fetchOffset: 12, maxBytes: 1, minOneBatch: true, readCommitted: false })).records[0]!;
    const fromGap = await coldLog().read({ ref, fetchOffset: 5, maxBytes: second.length, minOneBatch: false, readCommitted: false });
    expect(shape(fromGap.records)).toEqual([[12, [12, 13]]]);
  });

  it('reads on from a gapped run into ordinary runs after it, and across a run-level gap', async () => {
    const { ref } = await gappedPartition();
    const more = await produceRuns(ref, [3, 3, 3]);
    expect(more.slice(1).map((r) => [r.base, r.last, r.ownOffsets])).toEqual([
      [30, 32, undefined],
      [33, 35, undefined],
      [36, 38, undefined],
    ]);
    // The middle one goes entirely, as the cleaner removes a run whose records all went.
    expect(await state.replaceRuns(ref, [more[2]!], null, {})).toBe('swapped');
    const res = await coldLog().read({ ref, fetchOffset: 25, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(shape(res.records)).toEqual([ALL_BATCHES[2]!, [30, [30, 31, 32]], [36, [36, 37, 38]]]);
    const inGap = await coldLog().read({ ref, fetchOffset: 34, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(shape(inGap.records)).toEqual([[36, [36, 37, 38]]]);
  });
});

describe('ListOffsets by timestamp on ownOffsets runs', () => {
  it('finds the first kept record at or after a timestamp, skipping removed ones', async () => {
    const { ref } = await gappedPartition();
    const log = coldLog();
    const at = async (ts: number): Promise<number | null> => (await log.offsetForTimestamp(ref, ts, false))?.offset ?? null;
    expect(await at(0)).toBe(1);
    expect(await at(T0 + 2)).toBe(4);
    expect(await at(T0 + 4)).toBe(4);
    expect(await at(T0 + 5)).toBe(12);
    expect(await at(T0 + 14)).toBe(20);
    expect(await at(T0 + 29)).toBe(29);
    expect(await at(T0 + 30)).toBeNull();
    expect(await log.maxTimestampOffset(ref)).toEqual({ offset: 29, timestamp: T0 + 29 });
  });

  it('answers MAX_TIMESTAMP and later timestamps from what remains once the record with the max went', async () => {
    const { ref } = await gappedPartition();
    // Offset 30 holds the spike (50000): the time index's last entry.
    const runs = (await produceRuns(ref, [2, 3])).slice(1);
    expect(await coldLog().maxTimestampOffset(ref)).toEqual({ offset: 30, timestamp: 50_000 });
    await replaceWithOwnRun(ref, runs, [gapped(30, 1, [31]), gapped(32, 2, [32, 33, 34])], 'spike');
    const log = coldLog();
    expect(await log.maxTimestampOffset(ref)).toEqual({ offset: 34, timestamp: T0 + 34 });
    expect(await log.offsetForTimestamp(ref, T0 + 30, false)).toEqual({ offset: 31, timestamp: T0 + 31 });
    expect(await log.offsetForTimestamp(ref, 2_000, false)).toBeNull();
    // A later run with a higher max is found through the old spike's stale entry.
    await produceRuns(ref, [1]);
    expect(await log.offsetForTimestamp(ref, 2_000, false)).toBeNull();
    expect(await log.maxTimestampOffset(ref)).toEqual({ offset: 35, timestamp: T0 + 35 });
  });
});

describe('object compaction over ownOffsets runs', () => {
  it('merges runs across a gap no run covers into one ownOffsets run that reads the same', async () => {
    const { ref } = await gappedPartition();
    const more = await produceRuns(ref, [3, 4, 3]);
    expect(await state.replaceRuns(ref, [more[2]!], null, {})).toBe('swapped');
    const [own, first, last] = (await writer.indexedRuns(ref, 0, 100)).runs;
    expect([own!.last, first!.base, first!.last, last!.base]).toEqual([29, 30, 32, 37]);
    const before = await coldLog().read({ ref, fetchOffset: 0, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });

    // A run the caller skipped is refused; the three consecutive entries are merged.
    await expect(state.swapRuns(ref, [own!, last!], { ...own!, last: last!.last, objectKey: 'data/never.seg' })).rejects.toThrow(
      /idx-swap: old run 37\|.* does not start at offset 30 and idx holds runs between offsets 29 and 37/,
    );
    const outcome = await writer.compactRuns(ref, [own!, first!, last!]);
    expect(outcome).toMatchObject({ swapped: true });
    const [merged, ...rest] = (await writer.indexedRuns(ref, 0, 100)).runs;
    expect(rest).toEqual([]);
    expect([merged!.base, merged!.last, merged!.batchCount, merged!.ownOffsets]).toEqual([0, 39, 5, true]);
    const after = await coldLog().read({ ref, fetchOffset: 0, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(after.records.map((b) => Buffer.from(b))).toEqual(before.records.map((b) => Buffer.from(b)));
    expect(shape(after.records)).toEqual([...ALL_BATCHES, [30, [30, 31, 32]], [37, [37, 38, 39]]]);
    const inGap = await coldLog().read({ ref, fetchOffset: 33, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(shape(inGap.records)).toEqual([[37, [37, 38, 39]]]);
    expect(await coldLog().maxTimestampOffset(ref)).toEqual({ offset: 30, timestamp: 50_000 });
    expect(await coldLog().offsetForTimestamp(ref, 50_001, false)).toBeNull();
  });
});
