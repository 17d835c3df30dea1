import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { HIGH_WATERMARK_CHANNEL, partitionKeys } from '../../../src/coordination/keys.js';
import {
  decodeHighWatermarks,
  encodeHighWatermarks,
  parseRun,
  PartitionStore,
  type PartitionRef,
  type Run,
} from '../../../src/log/partition-store.js';
import { createSubscriberClient, waitReady } from '../../../src/coordination/redis.js';
import { ErrorCode } from '../../../wire/index.js';
import type { RedisServer } from '../../helpers/redis.js';
import { freshPartition, withPartitionStore, plain, zsetWithScores } from '../../helpers/partition-store.js';

let server: RedisServer;
let redis: Redis;
let state: PartitionStore;
withPartitionStore((env) => ({ server, redis, state } = env));

/**
 * Five runs in separate objects, 10 records each (offsets 0-9, 10-19, …, 40-49), with max
 * timestamps 100, 300, 200, 300, 500 unless given. Running max: 100, 300, 300, 300, 500.
 */
async function fiveRuns(ref: PartitionRef, timestamps = [100, 300, 200, 300, 500]): Promise<Run[]> {
  for (const [i, ts] of timestamps.entries()) {
    await state.commit(`seg-${i}`, [{ ref, batches: [plain(i * 7, 7, 9, ts)] }]);
  }
  return timestamps.map((ts, i) => ({
    base: i * 10,
    last: i * 10 + 9,
    maxTimestamp: ts,
    byteStart: i * 7,
    byteLength: 7,
    batchCount: 1,
    objectKey: `seg-${i}`,
  }));
}

describe('offsets', () => {
  it('answers zeros for a partition never written, then hw and logStart', async () => {
    const fresh = freshPartition();
    const written = freshPartition();
    await state.commit('o', [{ ref: written, batches: [plain(0, 10, 41)] }]);
    await redis.hset(partitionKeys(written).meta, 'logStart', '5');
    expect(await state.offsets([fresh, written, fresh])).toEqual([
      { hw: 0, logStart: 0, lso: 0 },
      { hw: 42, logStart: 5, lso: 42 },
      { hw: 0, logStart: 0, lso: 0 },
    ]);
    expect(await state.offsets([])).toEqual([]);
  });
});

describe('commit', () => {
  it('runs commits issued back to back, without awaiting, in the order they were called', async () => {
    const ref = freshPartition();
    await state.commit('warm-up', [{ ref: freshPartition(), batches: [plain(0, 1, 0)] }]);
    const pending = Array.from({ length: 20 }, (_, i) => state.commit(`seg-${i}`, [{ ref, batches: [plain(0, 5, i)] }]));
    const results = await Promise.all(pending);
    // Commit i holds i + 1 records, so each base offset is the sum of the sizes before it.
    let next = 0;
    results.forEach(([r], i) => {
      expect(r.results).toEqual([{ errorCode: ErrorCode.NONE, baseOffset: next, duplicate: false }]);
      next += i + 1;
      expect(r.hw).toBe(next);
    });
    const { runs } = await state.runsFrom(ref, 0, 100);
    expect(runs.map((run) => run.objectKey)).toEqual(Array.from({ length: 20 }, (_, i) => `seg-${i}`));
  });
});

describe('runsFrom', () => {
  it('returns the runs whose last offset is at or above the fetch offset, up to the limit', async () => {
    const ref = freshPartition();
    const runs = await fiveRuns(ref);
    const offsets = { hw: 50, logStart: 0, lso: 50 };
    expect(await state.runsFrom(ref, 0, 100)).toEqual({ offsets, runs });
    expect(await state.runsFrom(ref, 15, 2)).toEqual({ offsets, runs: runs.slice(1, 3) });
    expect(await state.runsFrom(ref, 19, 1)).toEqual({ offsets, runs: [runs[1]] });
    expect(await state.runsFrom(ref, 20, 1)).toEqual({ offsets, runs: [runs[2]] });
    expect(await state.runsFrom(ref, 49, 10)).toEqual({ offsets, runs: [runs[4]] });
    expect(await state.runsFrom(ref, 50, 10)).toEqual({ offsets, runs: [] });
    expect(await state.runsFrom(freshPartition(), 0, 10)).toEqual({ offsets: { hw: 0, logStart: 0, lso: 0 }, runs: [] });
  });

  it('drops runs at or above the hw it read (a commit landing between the two reads)', async () => {
    const ref = freshPartition();
    const runs = await fiveRuns(ref);
    // What a concurrent commit's index entry looks like before this reader sees its hw.
    await redis.zadd(partitionKeys(ref).idx, '59', '50|59|900|0|10|1|later');
    expect(await state.runsFrom(ref, 40, 10)).toEqual({ offsets: { hw: 50, logStart: 0, lso: 50 }, runs: [runs[4]] });
  });

  it('parses object keys holding every character but the separator', () => {
    expect(parseRun('7|8|-1|0|10|2|data/2024-01-01/3-ab:cd-9.seg')).toEqual({
      base: 7,
      last: 8,
      maxTimestamp: -1,
      byteStart: 0,
      byteLength: 10,
      batchCount: 2,
      objectKey: 'data/2024-01-01/3-ab:cd-9.seg',
    });
    expect(() => parseRun('1|2|3')).toThrow(/malformed run index entry "1\|2\|3"/);
  });
});

describe('runAtTimestamp, maxTimestampRun, lastRun', () => {
  it('finds the first run whose running max reaches the target', async () => {
    const ref = freshPartition();
    const runs = await fiveRuns(ref);
    // Only runs raising the running max are in tidx.
    expect(await zsetWithScores(redis, partitionKeys(ref).tidx)).toEqual([
      ['9', '100'],
      ['19', '300'],
      ['49', '500'],
    ]);
    expect(await state.runAtTimestamp(ref, 0)).toEqual(runs[0]);
    expect(await state.runAtTimestamp(ref, 100)).toEqual(runs[0]);
    expect(await state.runAtTimestamp(ref, 101)).toEqual(runs[1]);
    // Run 2 (max 200) comes after run 1, which already reached 300: the answer is run 1.
    expect(await state.runAtTimestamp(ref, 200)).toEqual(runs[1]);
    expect(await state.runAtTimestamp(ref, 300)).toEqual(runs[1]);
    expect(await state.runAtTimestamp(ref, 301)).toEqual(runs[4]);
    expect(await state.runAtTimestamp(ref, 500)).toEqual(runs[4]);
    expect(await state.runAtTimestamp(ref, 501)).toBeNull();
    expect(await state.maxTimestampRun(ref)).toEqual(runs[4]);
    expect(await state.lastRun(ref)).toEqual(runs[4]);
  });

  it('regression: equal running maxima resolve to the earlier run, not the lexically smaller offset', async () => {
    const ref = freshPartition();
    // Runs ending at offsets 9 and 10 with the same max timestamp: as strings "10" < "9".
    await state.commit('a', [{ ref, batches: [plain(0, 10, 9, 1000)] }]);
    await state.commit('b', [{ ref, batches: [plain(0, 10, 0, 1000)] }]);
    expect(await state.runAtTimestamp(ref, 1000)).toMatchObject({ base: 0, last: 9, objectKey: 'a' });
    expect(await state.maxTimestampRun(ref)).toMatchObject({ base: 0, last: 9, objectKey: 'a' });
    expect(await state.lastRun(ref)).toMatchObject({ base: 10, last: 10, objectKey: 'b' });
  });

  it('answers null for an empty partition and for batches without timestamps', async () => {
    const empty = freshPartition();
    expect(await state.runAtTimestamp(empty, 0)).toBeNull();
    expect(await state.maxTimestampRun(empty)).toBeNull();
    expect(await state.lastRun(empty)).toBeNull();
    const noTimestamps = freshPartition();
    await state.commit('o', [{ ref: noTimestamps, batches: [plain(0, 10, 0, -1)] }]);
    expect(await state.runAtTimestamp(noTimestamps, 0)).toBeNull();
    expect(await state.maxTimestampRun(noTimestamps)).toBeNull();
    expect(await state.lastRun(noTimestamps)).toMatchObject({ base: 0, last: 0, maxTimestamp: -1 });
  });
});

describe('deleteRecords', () => {
  it('moves logStart inside a run, keeping the straddling run', async () => {
    const ref = freshPartition();
    const runs = await fiveRuns(ref);
    const k = partitionKeys(ref);
    expect(await state.deleteRecords(ref, 15)).toEqual({ errorCode: 0, logStart: 15 });
    expect(await state.runsFrom(ref, 0, 10)).toEqual({ offsets: { hw: 50, logStart: 15, lso: 50 }, runs: runs.slice(1) });
    expect(await zsetWithScores(redis, k.tidx)).toEqual([
      ['9', '100'],
      ['19', '300'],
      ['49', '500'],
    ]);
    expect(await state.runAtTimestamp(ref, 0)).toEqual(runs[1]);
    // At a run boundary: runs 1 and 2 go, and of tidx's stale entries the newest stays.
    expect(await state.deleteRecords(ref, 30)).toEqual({ errorCode: 0, logStart: 30 });
    expect((await state.runsFrom(ref, 0, 10)).runs).toEqual(runs.slice(3));
    expect(await zsetWithScores(redis, k.tidx)).toEqual([
      ['19', '300'],
      ['49', '500'],
    ]);
    expect(await state.runAtTimestamp(ref, 50)).toEqual(runs[3]);
    expect(await state.runAtTimestamp(ref, 300)).toEqual(runs[3]);
    expect(await state.runAtTimestamp(ref, 301)).toEqual(runs[4]);
    expect(await state.maxTimestampRun(ref)).toEqual(runs[4]);
  });

  it('answers exact timestamp lookups after deleting the run that raised the running max', async () => {
    const ref = freshPartition();
    const runs = await fiveRuns(ref, [100, 900, 200, 250, 240]);
    expect(await state.maxTimestampRun(ref)).toEqual(runs[1]);
    expect(await state.deleteRecords(ref, 20)).toEqual({ errorCode: 0, logStart: 20 });
    expect(await zsetWithScores(redis, partitionKeys(ref).tidx)).toEqual([['19', '900']]);
    // The stale entry resolves to run 2 (max 200); the lookups walk on to the real answer.
    expect(await state.runAtTimestamp(ref, 0)).toEqual(runs[2]);
    expect(await state.runAtTimestamp(ref, 200)).toEqual(runs[2]);
    expect(await state.runAtTimestamp(ref, 201)).toEqual(runs[3]);
    expect(await state.runAtTimestamp(ref, 250)).toEqual(runs[3]);
    expect(await state.runAtTimestamp(ref, 251)).toBeNull();
    expect(await state.runAtTimestamp(ref, 901)).toBeNull();
    expect(await state.maxTimestampRun(ref)).toEqual(runs[3]);
  });

  it('ignores a target below logStart and answers the current logStart', async () => {
    const ref = freshPartition();
    await fiveRuns(ref);
    expect(await state.deleteRecords(ref, 25)).toEqual({ errorCode: 0, logStart: 25 });
    expect(await state.deleteRecords(ref, 10)).toEqual({ errorCode: 0, logStart: 25 });
    expect(await state.deleteRecords(ref, 25)).toEqual({ errorCode: 0, logStart: 25 });
    expect((await state.runsFrom(ref, 0, 10)).runs.map((r) => r.base)).toEqual([20, 30, 40]);
  });

  it('answers OFFSET_OUT_OF_RANGE beyond hw or below -1, changing nothing', async () => {
    const ref = freshPartition();
    await fiveRuns(ref);
    await state.deleteRecords(ref, 5);
    expect(await state.deleteRecords(ref, 51)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, logStart: 5 });
    expect(await state.deleteRecords(ref, -2)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, logStart: 5 });
    expect(await state.deleteRecords(freshPartition(), 1)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, logStart: 0 });
    expect(await state.offsets([ref])).toEqual([{ hw: 50, logStart: 5, lso: 50 }]);
    expect((await state.runsFrom(ref, 0, 10)).runs).toHaveLength(5);
  });

  it('deletes everything with -1 (hw); later runs are still found by timestamp', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    await fiveRuns(ref);
    expect(await state.deleteRecords(ref, -1)).toEqual({ errorCode: 0, logStart: 50 });
    expect(await zsetWithScores(redis, k.idx)).toEqual([]);
    expect(await zsetWithScores(redis, k.tidx)).toEqual([['49', '500']]);
    expect(await state.runAtTimestamp(ref, 0)).toBeNull();
    expect(await state.lastRun(ref)).toBeNull();
    expect(await state.runsFrom(ref, 0, 10)).toEqual({ offsets: { hw: 50, logStart: 50, lso: 50 }, runs: [] });
    // A new run below the old running max (500), found through the stale entry.
    const [after] = await state.commit('after', [{ ref, batches: [plain(0, 10, 0, 400)] }]);
    expect(after).toEqual({ results: [{ errorCode: 0, baseOffset: 50, duplicate: false }], hw: 51, logStart: 50 });
    const run = { base: 50, last: 50, maxTimestamp: 400, byteStart: 0, byteLength: 10, batchCount: 1, objectKey: 'after' };
    expect(await state.runAtTimestamp(ref, 0)).toEqual(run);
    expect(await state.runAtTimestamp(ref, 400)).toEqual(run);
    expect(await state.runAtTimestamp(ref, 401)).toBeNull();
    expect(await state.maxTimestampRun(ref)).toEqual(run);
    expect(await state.deleteRecords(ref, -1)).toEqual({ errorCode: 0, logStart: 51 });
    expect(await state.deleteRecords(ref, -1)).toEqual({ errorCode: 0, logStart: 51 });
  });

  it('trims a long stale prefix of tidx in pages', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    // 300 runs, each raising the running max: 300 tidx entries.
    const batches = Array.from({ length: 300 }, (_, i) => plain(i * 10 + i, 10, 0, 1000 + i));
    await state.commit('many', [{ ref, batches }]);
    expect(await redis.zcard(k.tidx)).toBe(300);
    expect(await state.deleteRecords(ref, 290)).toEqual({ errorCode: 0, logStart: 290 });
    expect(await redis.zcard(k.idx)).toBe(10);
    expect((await zsetWithScores(redis, k.tidx)).slice(0, 2)).toEqual([
      ['289', '1289'],
      ['290', '1290'],
    ]);
    expect(await redis.zcard(k.tidx)).toBe(11);
    expect(await state.runAtTimestamp(ref, 0)).toMatchObject({ base: 290, last: 290 });
  });
});

describe('deletePartition', () => {
  it('removes all four keys', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    await state.commit('o', [{ ref, batches: [{ ...plain(0, 10, 0), producerId: 1, producerEpoch: 0, baseSequence: 0 }] }]);
    expect(await redis.exists(k.meta, k.idx, k.tidx, k.producers)).toBe(4);
    await state.deletePartition(ref);
    expect(await redis.exists(k.meta, k.idx, k.tidx, k.producers)).toBe(0);
    expect(await state.offsets([ref])).toEqual([{ hw: 0, logStart: 0, lso: 0 }]);
  });
});

describe('high-watermark notifications', () => {
  it('round-trips updates through strata:hw', async () => {
    const subscriber = createSubscriberClient(server.url);
    try {
      await waitReady(subscriber, 5000);
      const received = new Promise<string>((resolve) => {
        subscriber.on('message', (channel: string, message: string) => {
          if (channel === HIGH_WATERMARK_CHANNEL) resolve(message);
        });
      });
      await subscriber.subscribe(HIGH_WATERMARK_CHANNEL);
      const updates = [
        { ref: { topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partition: 0 }, hw: 17 },
        { ref: { topicId: 'q-_zZ09aAbBcCdDeEfFgGh', partition: 12 }, hw: 2 ** 50 },
      ];
      await state.publishHighWatermarks(updates);
      const payload = await received;
      expect(payload).toBe('AAAAAAAAAAAAAAAAAAAAAA:0:17;q-_zZ09aAbBcCdDeEfFgGh:12:1125899906842624');
      expect(decodeHighWatermarks(payload)).toEqual(updates);
    } finally {
      subscriber.disconnect();
    }
  });

  it('encodes nothing as an empty payload and rejects malformed entries', () => {
    expect(encodeHighWatermarks([])).toBe('');
    expect(decodeHighWatermarks('')).toEqual([]);
    expect(() => decodeHighWatermarks('abc:1')).toThrow(/malformed high-watermark entry "abc:1"/);
    expect(() => decodeHighWatermarks('abc:1:x')).toThrow(/malformed high-watermark entry "abc:1:x"/);
    expect(() => decodeHighWatermarks('abc:1:2:3')).toThrow(/malformed high-watermark entry "abc:1:2:3"/);
  });
});
