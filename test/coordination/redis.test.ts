import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionKeys } from '../../src/coordination/keys.js';
import { PartitionStore } from '../../src/log/partition-store.js';
import {
  createCommandClient,
  isRedisUnavailable,
  luaScripts,
  redisCall,
  waitReady,
} from '../../src/coordination/redis.js';
import { ConfigError, RedisUnavailableError } from '../../src/errors.js';
import { ErrorCode } from '../../wire/index.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';
import { commandClient, freshPartition, idem, plain } from '../helpers/partition-store.js';

let server: RedisServer;
let redis: Redis;
let state: PartitionStore;

beforeAll(async () => {
  server = await startRedis(); // AOF, appendfsync always
  redis = await commandClient(server.url);
  state = new PartitionStore(redis);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

/** Measures how long `promise` takes to settle and returns its rejection. */
async function rejection(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected a rejection');
}

describe('script registry', () => {
  it('loads every .lua file of src/*/lua with its SHA1', async () => {
    const scripts = luaScripts();
    const src = path.join(import.meta.dirname, '..', '..', 'src');
    const files = readdirSync(src)
      .filter((d) => existsSync(path.join(src, d, 'lua')))
      .flatMap((d) => readdirSync(path.join(src, d, 'lua')))
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4))
      .sort();
    expect(files).toContain('commit');
    expect([...scripts.keys()]).toEqual(files);
    for (const script of scripts.values()) {
      expect(await redis.script('LOAD', script.source)).toBe(script.sha);
    }
  });

  it('recovers from NOSCRIPT after SCRIPT FLUSH, in a pipeline of several partitions', async () => {
    const a = freshPartition();
    const b = freshPartition();
    await state.commit('o1', [{ ref: a, batches: [plain(0, 10, 0)] }]);
    expect(await redis.script('FLUSH')).toBe('OK');
    expect(await redis.script('EXISTS', luaScripts().get('commit')?.sha ?? '')).toEqual([0]);
    const results = await state.commit('o2', [
      { ref: a, batches: [plain(0, 10, 1)] },
      { ref: b, batches: [plain(0, 10, 2)] },
    ]);
    expect(results.map((r) => [r.results[0].baseOffset, r.hw])).toEqual([
      [1, 3],
      [0, 3],
    ]);
    // The retried calls ran exactly once.
    expect(await redis.zcard(partitionKeys(a).idx)).toBe(2);
    expect(await redis.zcard(partitionKeys(b).idx)).toBe(1);
    await redis.script('FLUSH');
    expect(await state.deleteRecords(a, 1)).toEqual({ errorCode: 0, logStart: 1 });
    await redis.script('FLUSH');
    expect(await state.runAtTimestamp(a, 0)).toMatchObject({ base: 1, last: 2, objectKey: 'o2' });
  });
});

describe('client settings', () => {
  it('rejects URLs that are not redis:// or rediss://', () => {
    expect(() => createCommandClient('http://127.0.0.1:6379')).toThrow(ConfigError);
    expect(() => createCommandClient('http://127.0.0.1:6379')).toThrow(/scheme "http:"; expected redis:\/\/ or rediss:\/\//);
    expect(() => createCommandClient('redis://127.0.0.1:6379/abc')).toThrow(/names database "abc"/);
    expect(() => createCommandClient('not a url')).toThrow(/is not a URL/);
    expect(() => createCommandClient('http://strata:s3cret@127.0.0.1:6379')).toThrow(
      'Redis URL "http://strata:***@127.0.0.1:6379" has scheme "http:"; expected redis:// or rediss://',
    );
  });

  it('selects the database named in the URL', async () => {
    const db3 = await commandClient(`${server.url}/3`);
    try {
      await db3.set('strata:test:db', 'three');
      expect(await redis.get('strata:test:db')).toBeNull();
      expect(await db3.get('strata:test:db')).toBe('three');
    } finally {
      db3.disconnect();
    }
  });

  it('waitReady gives up with RedisUnavailableError when nothing listens', async () => {
    const client = createCommandClient(`redis://127.0.0.1:${await freePort()}`);
    try {
      const { error, ms } = await rejection(waitReady(client, 300));
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect((error as RedisUnavailableError).code).toBe(ErrorCode.REQUEST_TIMED_OUT);
      expect((error as RedisUnavailableError).retriable).toBe(true);
      expect(ms).toBeLessThan(1000);
    } finally {
      client.disconnect();
    }
  });

  it('leaves reply errors that retrying cannot fix unmapped', async () => {
    const ref = freshPartition();
    await redis.set(partitionKeys(ref).meta, 'not a hash');
    const { error } = await rejection(state.offsets([ref]));
    expect(error).not.toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toMatch(/^WRONGTYPE/);
    expect(isRedisUnavailable(error)).toBe(false);
  });

  it('times a command out when Redis stops answering without closing the socket', async () => {
    const impatient = await commandClient(server.url, { commandTimeoutMs: 300 });
    try {
      expect(await redis.call('CLIENT', 'PAUSE', '1500', 'ALL')).toBe('OK');
      const { error, ms } = await rejection(new PartitionStore(impatient).offsets([freshPartition()]));
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect((error as Error).message).toMatch(/Command timed out/);
      expect(ms).toBeLessThan(1000);
      await redis.call('CLIENT', 'UNPAUSE');
      expect(await impatient.ping()).toBe('PONG');
    } finally {
      impatient.disconnect();
    }
  });
});

describe('Redis restarts', () => {
  it('keeps committed state across a restart (AOF) and still detects duplicates', async () => {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const ref = freshPartition();
      const k = partitionKeys(ref);
      const first = await state.commit('seg-1', [{ ref, batches: [idem(0, 10, 4, 77, 2, 0, 100), idem(10, 10, 4, 77, 2, 5, 200)] }]);
      expect(first[0].results.map((r) => r.baseOffset)).toEqual([0, 5]);
      expect(await state.deleteRecords(ref, 3)).toEqual({ errorCode: 0, logStart: 3 });
      const before = {
        meta: await redis.hgetall(k.meta),
        idx: await redis.zrange(k.idx, 0, -1, 'WITHSCORES'),
        tidx: await redis.zrange(k.tidx, 0, -1, 'WITHSCORES'),
        producers: await redis.hgetall(k.producers),
      };

      await server.restart({ signal });
      await waitReady(redis, 10_000);

      expect({
        meta: await redis.hgetall(k.meta),
        idx: await redis.zrange(k.idx, 0, -1, 'WITHSCORES'),
        tidx: await redis.zrange(k.tidx, 0, -1, 'WITHSCORES'),
        producers: await redis.hgetall(k.producers),
      }).toEqual(before);
      expect(before.producers).toEqual({ 77: '2;0,4,0,0;5,9,5,0' });
      expect(await state.runsFrom(ref, 0, 10)).toEqual({
        offsets: { hw: 10, logStart: 3, lso: 10 },
        runs: [{ base: 0, last: 9, maxTimestamp: 200, byteStart: 0, byteLength: 20, batchCount: 2, objectKey: 'seg-1' }],
      });
      // The script cache did not survive the restart: this commit goes through NOSCRIPT → load.
      const retry = await state.commit('seg-2', [{ ref, batches: [idem(0, 10, 4, 77, 2, 5), idem(10, 10, 0, 77, 2, 10)] }]);
      expect(retry).toEqual([
        {
          results: [
            { errorCode: 0, baseOffset: 5, duplicate: true },
            { errorCode: 0, baseOffset: 10, duplicate: false },
          ],
          hw: 11,
          logStart: 3,
        },
      ]);
    }
  });

  it('fails fast with RedisUnavailableError while Redis is down, then recovers', async () => {
    const ref = freshPartition();
    await state.commit('before', [{ ref, batches: [plain(0, 10, 0)] }]);
    await server.kill('SIGKILL');
    try {
      const commit = await rejection(state.commit('during', [{ ref, batches: [plain(0, 10, 0)] }]));
      expect(commit.error).toBeInstanceOf(RedisUnavailableError);
      expect((commit.error as RedisUnavailableError).code).toBe(ErrorCode.REQUEST_TIMED_OUT);
      expect(commit.ms).toBeLessThan(2000);
      const read = await rejection(state.runsFrom(ref, 0, 10));
      expect(read.error).toBeInstanceOf(RedisUnavailableError);
      expect(read.ms).toBeLessThan(2000);
      const publish = await rejection(state.publishHighWatermarks([{ ref, hw: 1 }]));
      expect(publish.error).toBeInstanceOf(RedisUnavailableError);
      expect(publish.ms).toBeLessThan(2000);
    } finally {
      await server.start();
    }
    await waitReady(redis, 10_000);
    expect(await state.commit('after', [{ ref, batches: [plain(0, 10, 0)] }])).toEqual([
      { results: [{ errorCode: 0, baseOffset: 1, duplicate: false }], hw: 2, logStart: 0 },
    ]);
  });

  it('fails a command in flight when the connection drops and never replays it', async () => {
    const key = `strata:test:inflight:${Date.now()}`;
    const victim = await commandClient(server.url);
    const admin = await commandClient(server.url);
    try {
      const victimId = await victim.client('ID');
      // WRITE pause: the INCR below is received and held; CLIENT KILL (not a write) proceeds.
      expect(await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE')).toBe('OK');
      const incr = rejection(redisCall('incr', () => victim.incr(key)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const killedAt = Date.now();
      expect(await admin.call('CLIENT', 'KILL', 'ID', String(victimId))).toBe(1);
      const { error } = await incr;
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(Date.now() - killedAt).toBeLessThan(1000);
      // The victim reconnects at once (Redis is up). With ioredis' defaults it would now send
      // the INCR again, and it would run as soon as the pause ends.
      await waitReady(victim, 5000);
      expect(await admin.call('CLIENT', 'UNPAUSE')).toBe('OK');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await admin.get(key)).toBeNull();
      expect(await victim.incr(key)).toBe(1);
    } finally {
      victim.disconnect();
      admin.disconnect();
    }
  });
});
