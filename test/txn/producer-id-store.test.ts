import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCER_ID_KEY } from '../../src/coordination/keys.js';
import { waitReady } from '../../src/coordination/redis.js';
import { RedisUnavailableError } from '../../src/errors.js';
import { PRODUCER_ID_BLOCK_SIZE, ProducerIdAllocator } from '../../src/txn/producer-id-store.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { commandClient } from '../helpers/partition-store.js';

let server: RedisServer;
let redis: Redis;
let other: Redis;

beforeAll(async () => {
  server = await startRedis({ appendOnly: false });
  redis = await commandClient(server.url);
  other = await commandClient(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  other?.disconnect();
  await server?.stop();
});

describe('ProducerIdAllocator', () => {
  it('takes one block per refill, even for concurrent callers, and never repeats an id', async () => {
    const a = new ProducerIdAllocator(redis, 10);
    const ids = await Promise.all(Array.from({ length: 25 }, () => a.allocate()));
    expect([...ids].sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(await redis.get(PRODUCER_ID_KEY)).toBe('30');

    // Another broker's allocator takes the next block; this one finishes its own first.
    const b = new ProducerIdAllocator(other, 10);
    expect(await b.allocate()).toBe(30);
    const rest = [];
    for (let i = 0; i < 6; i++) rest.push(await a.allocate());
    expect(rest).toEqual([25, 26, 27, 28, 29, 40]);
    expect(await redis.get(PRODUCER_ID_KEY)).toBe('50');
  });

  it('uses blocks of 1000 by default', async () => {
    await redis.del(PRODUCER_ID_KEY);
    const allocator = new ProducerIdAllocator(redis);
    expect(PRODUCER_ID_BLOCK_SIZE).toBe(1000);
    expect(await allocator.allocate()).toBe(0);
    expect(await allocator.allocate()).toBe(1);
    expect(await redis.get(PRODUCER_ID_KEY)).toBe('1000');
    expect(() => new ProducerIdAllocator(redis, 0)).toThrow(/block size 0 must be a positive integer/);
  });

  it('fails every waiting caller with RedisUnavailableError when a refill fails, and refills later', async () => {
    await redis.del(PRODUCER_ID_KEY);
    const allocator = new ProducerIdAllocator(redis, 5);
    await server.kill('SIGTERM');
    try {
      const outcomes = await Promise.allSettled([allocator.allocate(), allocator.allocate()]);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(RedisUnavailableError);
      }
    } finally {
      await server.start();
    }
    await waitReady(redis, 10_000);
    // appendOnly is off in this file, so the counter restarted from nothing.
    expect(await Promise.all([allocator.allocate(), allocator.allocate()])).toEqual([0, 1]);
  });
});
