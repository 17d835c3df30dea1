/**
 * Shared pieces of the PartitionStore tests (test/log/partition-store/ and the log tests that
 * commit through a store): a Redis server per test file, clients on it, and builders for
 * commit input.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createCommandClient, waitReady, type RedisClientOptions } from '../../src/coordination/redis.js';
import { PartitionStore, type BatchCommitInput, type PartitionRef } from '../../src/log/partition-store.js';
import { startRedis, type RedisServer } from './redis.js';

/** A fresh partition of a random topic id, so tests sharing one server never collide. */
export function freshPartition(partition = 0): PartitionRef {
  return { topicId: randomBytes(16).toString('base64url'), partition };
}

/** A connected command client; the caller quits it. */
export async function commandClient(url: string, options: RedisClientOptions = {}): Promise<Redis> {
  const client = createCommandClient(url, options);
  await waitReady(client, 5000);
  return client;
}

/** What {@link withPartitionStore} hands a test file once its server is up. */
export interface PartitionStoreEnv {
  server: RedisServer;
  redis: Redis;
  state: PartitionStore;
}

/**
 * For the calling test file: a redis-server without AOF, a command client on it and a
 * PartitionStore, started before its tests and stopped after them. `ready` receives them.
 */
export function withPartitionStore(ready: (env: PartitionStoreEnv) => void): void {
  let server: RedisServer | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis({ appendOnly: false });
    redis = await commandClient(server.url);
    ready({ server, redis, state: new PartitionStore(redis) });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });
}

/** A non-idempotent batch (producerId -1) of `lastOffsetDelta + 1` records at `byteStart`. */
export function plain(byteStart: number, byteLength: number, lastOffsetDelta: number, maxTimestamp = 1000): BatchCommitInput {
  return {
    byteStart,
    byteLength,
    lastOffsetDelta,
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
    maxTimestamp,
    flags: 0,
    recordCount: lastOffsetDelta + 1,
  };
}

/** An idempotent batch of producer `producerId`/`producerEpoch` starting at `baseSequence`. */
export function idem(
  byteStart: number,
  byteLength: number,
  lastOffsetDelta: number,
  producerId: number,
  producerEpoch: number,
  baseSequence: number,
  maxTimestamp = 1000,
): BatchCommitInput {
  return { ...plain(byteStart, byteLength, lastOffsetDelta, maxTimestamp), producerId, producerEpoch, baseSequence };
}

/** A sorted set as `[member, score]` pairs in rank order, scores as the strings Redis stores. */
export async function zsetWithScores(redis: Redis, key: string): Promise<[string, string][]> {
  const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
  const pairs: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
  return pairs;
}
