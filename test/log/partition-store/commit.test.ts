import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { partitionKeys } from '../../../src/coordination/keys.js';
import { luaScripts } from '../../../src/coordination/redis.js';
import { PartitionStore, type BatchCommitInput, type PartitionRef } from '../../../src/log/partition-store.js';
import { ErrorCode } from '../../../wire/index.js';
import type { RedisServer } from '../../helpers/redis.js';
import { commandClient, freshPartition, withPartitionStore, idem, plain, zsetWithScores } from '../../helpers/partition-store.js';

let server: RedisServer;
let redis: Redis;
let state: PartitionStore;
withPartitionStore((env) => ({ server, redis, state } = env));

/** Commits one partition's batches and returns that partition's result. */
async function commitOne(ref: PartitionRef, objectKey: string, batches: BatchCommitInput[]) {
  const [result] = await state.commit(objectKey, [{ ref, batches }]);
  return result;
}

/** Like {@link commitOne}, with a commit-by time on Redis's clock. */
async function commitOneBy(ref: PartitionRef, objectKey: string, batches: BatchCommitInput[], commitByMs: number) {
  const [result] = await state.commit(objectKey, [{ ref, batches }], commitByMs);
  return result;
}

const stored = (baseOffset: number) => ({ errorCode: 0, baseOffset, duplicate: false });
const duplicateOf = (baseOffset: number) => ({ errorCode: 0, baseOffset, duplicate: true });
const rejected = (errorCode: number) => ({ errorCode, baseOffset: -1, duplicate: false });

describe('commit: the commit deadline, on Redis\'s clock', () => {
  it('writes nothing for a partition whose commit-by time has passed, and commits before it', async () => {
    const ref = freshPartition();
    const other = freshPartition();
    const now = await state.timeMs();
    const late = await state.commit('data/late.seg', [{ ref, batches: [plain(0, 100, 4)] }, { ref: other, batches: [plain(100, 50, 0)] }], now - 1);
    expect(late).toEqual([
      { pastDeadline: true, results: [], hw: -1, logStart: -1 },
      { pastDeadline: true, results: [], hw: -1, logStart: -1 },
    ]);
    for (const r of [ref, other]) {
      const k = partitionKeys(r);
      expect(await redis.exists(k.meta, k.idx, k.tidx)).toBe(0);
    }
    const inTime = await commitOneBy(ref, 'data/in-time.seg', [plain(0, 100, 4)], now + 60_000);
    expect(inTime).toEqual({ results: [stored(0)], hw: 5, logStart: 0 });
    expect(await redis.zrange(partitionKeys(ref).idx, 0, -1)).toEqual(['0|4|1000|0|100|1|data/in-time.seg']);
  });
});

describe('commit: offsets and runs', () => {
  it('assigns offsets contiguously across batches and calls, one run per adjacent byte range', async () => {
    const ref = freshPartition();
    const first = await commitOne(ref, 'data/a.seg', [plain(10, 100, 0, 500), plain(110, 50, 4, 700), plain(160, 30, 9, 600)]);
    expect(first).toEqual({ results: [stored(0), stored(1), stored(6)], hw: 16, logStart: 0 });
    const second = await commitOne(ref, 'data/b.seg', [plain(0, 20, 2, 650)]);
    expect(second).toEqual({ results: [stored(16)], hw: 19, logStart: 0 });

    const k = partitionKeys(ref);
    expect(await zsetWithScores(redis, k.idx)).toEqual([
      ['0|15|700|10|180|3|data/a.seg', '15'],
      ['16|18|650|0|20|1|data/b.seg', '18'],
    ]);
    // The second run does not raise the running max (650 < 700): no tidx entry.
    expect(await zsetWithScores(redis, k.tidx)).toEqual([['15', '700']]);
    expect(await redis.hgetall(k.meta)).toEqual({ hw: '19', maxts: '700' });
    expect(await redis.exists(k.producers)).toBe(0);
  });

  it('splits runs where byte ranges are not adjacent', async () => {
    const ref = freshPartition();
    const result = await commitOne(ref, 'o', [plain(0, 100, 0, 1), plain(100, 100, 1, 5), plain(300, 10, 0, 3), plain(310, 10, 0, 9)]);
    expect(result).toEqual({ results: [stored(0), stored(1), stored(3), stored(4)], hw: 5, logStart: 0 });
    const k = partitionKeys(ref);
    expect(await zsetWithScores(redis, k.idx)).toEqual([
      ['0|2|5|0|200|2|o', '2'],
      ['3|4|9|300|20|2|o', '4'],
    ]);
    expect(await zsetWithScores(redis, k.tidx)).toEqual([
      ['2', '5'],
      ['4', '9'],
    ]);
  });

  it('commits several partitions in one call, results in input order', async () => {
    const a = freshPartition(0);
    const b = { topicId: a.topicId, partition: 1 };
    await commitOne(b, 'warm', [plain(0, 10, 6)]);
    const results = await state.commit('multi', [
      { ref: a, batches: [plain(0, 10, 1)] },
      { ref: b, batches: [plain(10, 10, 0), plain(20, 10, 0)] },
      { ref: freshPartition(), batches: [] },
    ]);
    expect(results).toEqual([
      { results: [stored(0)], hw: 2, logStart: 0 },
      { results: [stored(7), stored(8)], hw: 9, logStart: 0 },
      { results: [], hw: 0, logStart: 0 },
    ]);
  });

  it('formats offsets near 2^50 without exponent notation', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const start = 2 ** 50; // 1125899906842624
    await redis.hset(k.meta, 'hw', String(start), 'logStart', String(start));
    const ts = 1_700_000_000_123;
    const result = await commitOne(ref, 'big', [plain(0, 10, 9, ts), idem(10, 10, 4, 2 ** 40, 3, 2_000_000_000, ts + 1)]);
    expect(result).toEqual({ results: [stored(start), stored(start + 10)], hw: start + 15, logStart: start });
    expect(await zsetWithScores(redis, k.idx)).toEqual([
      ['1125899906842624|1125899906842638|1700000000124|0|20|2|big', '1125899906842638'],
    ]);
    expect(await zsetWithScores(redis, k.tidx)).toEqual([['1125899906842638', '1700000000124']]);
    expect(await redis.hgetall(k.meta)).toEqual({ hw: '1125899906842639', logStart: '1125899906842624', maxts: '1700000000124' });
    expect(await redis.hgetall(k.producers)).toEqual({ '1099511627776': '3;2000000000,2000000004,1125899906842634,0' });
    // A duplicate answers the large original offset exactly.
    expect(await commitOne(ref, 'big2', [idem(0, 10, 4, 2 ** 40, 3, 2_000_000_000)])).toEqual({
      results: [duplicateOf(start + 10)],
      hw: start + 15,
      logStart: start,
    });
  });

  it('never assigns one offset twice under concurrent commits from several clients', async () => {
    const ref = freshPartition();
    const clients = await Promise.all([0, 1, 2, 3].map(() => commandClient(server.url)));
    try {
      const services = clients.map((c) => new PartitionStore(c));
      const commits = Array.from({ length: 20 }, (_, i) =>
        services[i % services.length].commit(`obj-${i}`, [{ ref, batches: [plain(0, 100, 4)] }]),
      );
      const results = await Promise.all(commits);
      const bases = results.map(([r]) => r.results[0].baseOffset).sort((x, y) => x - y);
      expect(bases).toEqual(Array.from({ length: 20 }, (_, i) => i * 5));
      const members = await redis.zrange(partitionKeys(ref).idx, 0, -1);
      expect(members.map((m) => m.split('|').slice(0, 2).join('-'))).toEqual(
        Array.from({ length: 20 }, (_, i) => `${i * 5}-${i * 5 + 4}`),
      );
      expect(await redis.hget(partitionKeys(ref).meta, 'hw')).toBe('100');
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  it('rejects a malformed argument list with a reply error and writes nothing', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const commit = luaScripts().get('commit');
    if (commit === undefined) throw new Error('commit.lua missing');
    await expect(redis.eval(commit.source, 4, k.meta, k.idx, k.tidx, k.producers, 'o', '2', '0', '1')).rejects.toThrow(
      /expected objectKey, batch count, now, expiry cut-off, commit-by time and 9 values per batch, got 4 arguments/,
    );
    expect(await redis.exists(k.meta, k.idx, k.tidx, k.producers)).toBe(0);
  });
});

describe('commit: idempotent producers', () => {
  const pid = 4242;

  it('stores the producer state as epoch;firstSeq,lastSeq,baseOffset,flags entries, keeping the last five', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    // The second batch is transactional, so the producer's transaction must be open here.
    expect(await state.openTransaction([ref], pid, 2)).toEqual([0]);
    await commitOne(ref, 'o', [idem(0, 10, 1, pid, 2, 0), { ...idem(10, 10, 2, pid, 2, 2), flags: 1 }]);
    expect(await redis.hget(k.producers, String(pid))).toBe('2;0,1,0,0;2,4,2,1');
    await commitOne(ref, 'p', [5, 6, 7, 8].map((n, i) => idem(i * 10, 10, 0, pid, 2, n)));
    expect(await redis.hget(k.producers, String(pid))).toBe('2;2,4,2,1;5,5,5,0;6,6,6,0;7,7,7,0;8,8,8,0');
  });

  it('answers a retry of each of the last five batches with its original offset and stores nothing', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    // Six batches of two records each; sequences 0-1, 2-3, …, 10-11 at offsets 0, 2, …, 10.
    const six = Array.from({ length: 6 }, (_, i) => idem(i * 10, 10, 1, pid, 0, i * 2));
    await commitOne(ref, 'first', [plain(0, 0, 0)]); // offset 0 taken by someone else
    const first = await commitOne(ref, 'six', six);
    expect(first.results).toEqual([1, 3, 5, 7, 9, 11].map(stored));
    expect(first.hw).toBe(13);
    const idxBefore = await zsetWithScores(redis, k.idx);
    const stateBefore = await redis.hgetall(k.producers);

    for (let i = 1; i < 6; i++) {
      const retry = await commitOne(ref, `retry-${i}`, [idem(0, 10, 1, pid, 0, i * 2)]);
      expect(retry).toEqual({ results: [duplicateOf(1 + i * 2)], hw: 13, logStart: 0 });
    }
    // The oldest batch has left the five-entry window: Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER.
    expect(await commitOne(ref, 'retry-0', [idem(0, 10, 1, pid, 0, 0)])).toEqual({
      results: [rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)],
      hw: 13,
      logStart: 0,
    });
    expect(await zsetWithScores(redis, k.idx)).toEqual(idxBefore);
    expect(await redis.hgetall(k.producers)).toEqual(stateBefore);
  });

  it('ends a run at a duplicate and at a rejected batch', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const a = idem(0, 10, 4, pid, 0, 0, 100); // seq 0-4
    const b = idem(10, 10, 4, pid, 0, 5, 200); // seq 5-9
    const aAgain = idem(20, 10, 4, pid, 0, 0, 100);
    const c = idem(30, 10, 4, pid, 0, 10, 300); // seq 10-14
    const gap = idem(40, 10, 0, pid, 0, 99, 999);
    const d = idem(50, 10, 0, pid, 0, 15, 250); // seq 15
    const e = plain(60, 10, 0, 260);
    const result = await commitOne(ref, 'obj', [a, b, aAgain, c, gap, d, e]);
    expect(result).toEqual({
      results: [stored(0), stored(5), duplicateOf(0), stored(10), rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER), stored(15), stored(16)],
      hw: 17,
      logStart: 0,
    });
    expect(await zsetWithScores(redis, k.idx)).toEqual([
      ['0|9|200|0|20|2|obj', '9'],
      ['10|14|300|30|10|1|obj', '14'],
      ['15|16|260|50|20|2|obj', '16'],
    ]);
    expect(await zsetWithScores(redis, k.tidx)).toEqual([
      ['9', '200'],
      ['14', '300'],
    ]);
    expect(await redis.hget(k.producers, String(pid))).toBe('0;0,4,0,0;5,9,5,0;10,14,10,0;15,15,15,0');
  });

  it('rejects a sequence gap with OUT_OF_ORDER_SEQUENCE_NUMBER without using offsets', async () => {
    const ref = freshPartition();
    expect((await commitOne(ref, 'o', [idem(0, 10, 0, pid, 0, 7)])).results).toEqual([stored(0)]); // new producer: any sequence
    expect(await commitOne(ref, 'o', [idem(0, 10, 0, pid, 0, 9)])).toEqual({
      results: [rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)],
      hw: 1,
      logStart: 0,
    });
    expect(await commitOne(ref, 'o', [idem(0, 10, 0, pid, 0, 8)])).toEqual({ results: [stored(1)], hw: 2, logStart: 0 });
  });

  it('wraps sequences after 2147483647 to 0', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const max = 2147483647;
    const result = await commitOne(ref, 'o', [
      idem(0, 10, 1, pid, 1, max - 1), // max-1 .. max
      idem(10, 10, 2, pid, 1, 0), // 0 .. 2
      idem(20, 10, 0, pid, 1, 3),
    ]);
    expect(result.results).toEqual([stored(0), stored(2), stored(5)]);
    // A batch spanning the wrap: its last sequence is (base + delta) mod 2^31.
    const other = pid + 1;
    const spanning = await commitOne(ref, 'p', [idem(30, 10, 2, other, 0, max), idem(40, 10, 0, other, 0, 2)]);
    expect(spanning.results).toEqual([stored(6), stored(9)]);
    expect(await redis.hget(k.producers, String(other))).toBe('0;2147483647,1,6,0;2,2,9,0');
    expect((await commitOne(ref, 'q', [idem(0, 10, 2, other, 0, max)])).results).toEqual([duplicateOf(6)]);
    expect((await commitOne(ref, 'q', [idem(0, 10, 0, other, 0, 0)])).results).toEqual([
      rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),
    ]);
  });

  it('accepts a bumped epoch starting at sequence 0 and fences the old epoch', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    await commitOne(ref, 'o', [idem(0, 10, 4, pid, 3, 0), idem(10, 10, 4, pid, 3, 5)]);
    expect((await commitOne(ref, 'o', [idem(0, 10, 0, pid, 4, 1)])).results).toEqual([
      rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),
    ]);
    expect(await redis.hget(k.producers, String(pid))).toBe('3;0,4,0,0;5,9,5,0');
    expect((await commitOne(ref, 'o', [idem(0, 10, 1, pid, 4, 0)])).results).toEqual([stored(10)]);
    expect(await redis.hget(k.producers, String(pid))).toBe('4;0,1,10,0');
    // The old epoch's batches are neither duplicates nor accepted now.
    expect(await commitOne(ref, 'o', [idem(0, 10, 4, pid, 3, 5), idem(10, 10, 4, pid, 3, 10)])).toEqual({
      results: [rejected(ErrorCode.INVALID_PRODUCER_EPOCH), rejected(ErrorCode.INVALID_PRODUCER_EPOCH)],
      hw: 12,
      logStart: 0,
    });
    // The new epoch continues from its own entries.
    expect((await commitOne(ref, 'o', [idem(0, 10, 0, pid, 4, 2)])).results).toEqual([stored(12)]);
  });

  it('requires sequence 0 after a state reset to an epoch with no entries', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    await redis.hset(k.producers, String(pid), '5');
    expect((await commitOne(ref, 'o', [idem(0, 10, 0, pid, 5, 3)])).results).toEqual([
      rejected(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),
    ]);
    expect((await commitOne(ref, 'o', [idem(0, 10, 0, pid, 5, 0)])).results).toEqual([stored(0)]);
  });

  it('refuses to commit anything when a producer state is unreadable', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    await redis.hset(k.producers, String(pid), '1;{"json":true}');
    await expect(commitOne(ref, 'o', [plain(0, 10, 0), idem(10, 10, 0, pid, 1, 0)])).rejects.toThrow(/unreadable state/);
    expect(await redis.exists(k.meta, k.idx, k.tidx)).toBe(0);
  });

  it('keeps producers independent', async () => {
    const ref = freshPartition();
    const result = await commitOne(ref, 'o', [idem(0, 10, 0, 1, 0, 0), idem(10, 10, 0, 2, 0, 50), idem(20, 10, 0, 1, 0, 1), idem(30, 10, 0, 2, 0, 50)]);
    expect(result.results).toEqual([stored(0), stored(1), stored(2), duplicateOf(1)]);
    expect(await redis.hgetall(partitionKeys(ref).producers)).toEqual({ 1: '0;0,0,0,0;1,1,2,0', 2: '0;50,50,1,0' });
  });
});

describe('commit: producer state expiry', () => {
  const TRANSACTIONAL = 1;

  it('records when each producer last had a batch committed, duplicates included', async () => {
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const before = Date.now();
    await commitOne(ref, 'o1', [idem(0, 10, 0, 7, 0, 0), plain(10, 10, 0)]);
    const after = Date.now();
    const [[member, score]] = await zsetWithScores(redis, k.producersSeen);
    expect(member).toBe('7');
    expect(Number(score)).toBeGreaterThanOrEqual(before);
    expect(Number(score)).toBeLessThanOrEqual(after);
    await sleep(5);
    const retried = await commitOne(ref, 'o2', [idem(0, 10, 0, 7, 0, 0)]);
    expect(retried.results).toEqual([duplicateOf(0)]);
    expect(Number(await redis.zscore(k.producersSeen, '7'))).toBeGreaterThan(Number(score));
  });

  it('forgets a producer silent for the expiration time at a later commit, which then accepts any sequence', async () => {
    const expiring = new PartitionStore(redis, { producerIdExpirationMs: 100 });
    const ref = freshPartition();
    const k = partitionKeys(ref);
    const [first] = await expiring.commit('o1', [{ ref, batches: [idem(0, 10, 4, 11, 0, 0), idem(10, 10, 0, 12, 0, 0)] }]);
    expect(first!.results).toEqual([stored(0), stored(5)]);
    await sleep(150);
    // Producer 12 writes again; 11 has been silent past the expiration and is forgotten.
    const [second] = await expiring.commit('o2', [{ ref, batches: [idem(0, 10, 0, 12, 0, 1)] }]);
    expect(second!.results).toEqual([stored(6)]);
    expect(await redis.hgetall(k.producers)).toEqual({ 12: '0;0,0,5,0;1,1,6,0' });
    expect((await zsetWithScores(redis, k.producersSeen)).map(([m]) => m)).toEqual(['12']);
    // Like Kafka for a producer it has no state of, any sequence is accepted next.
    const [third] = await expiring.commit('o3', [{ ref, batches: [idem(0, 10, 0, 11, 0, 9)] }]);
    expect(third!.results).toEqual([stored(7)]);
    expect(await redis.hget(k.producers, '11')).toBe('0;9,9,7,0');
  });

  it('keeps an expired producer while its transaction is open on the partition', async () => {
    const expiring = new PartitionStore(redis, { producerIdExpirationMs: 100 });
    const ref = freshPartition();
    const k = partitionKeys(ref);
    expect(await expiring.openTransaction([ref], 21, 3)).toEqual([ErrorCode.NONE]);
    const txnBatch = { ...idem(0, 10, 1, 21, 3, 0), flags: TRANSACTIONAL };
    const [first] = await expiring.commit('o1', [{ ref, batches: [txnBatch] }]);
    expect(first!.results).toEqual([stored(0)]);
    await sleep(150);
    await expiring.commit('o2', [{ ref, batches: [plain(0, 10, 0)] }]);
    expect(await redis.hget(k.producers, '21')).toBe('3;0,1,0,1');
    // Still there, and its next batch continues the sequence.
    const [third] = await expiring.commit('o3', [{ ref, batches: [{ ...idem(10, 10, 0, 21, 3, 2), flags: TRANSACTIONAL }] }]);
    expect(third!.results).toEqual([stored(3)]);
  });
});
