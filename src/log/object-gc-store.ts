/**
 * What object garbage collection remembers between cycles (docs/architecture.md §4.4): one
 * Redis hash, `{strata}:gc:unreferenced`, from a segment object's key to when a cycle first
 * found it unreferenced (ms since the epoch). Nothing else is kept: losing the hash only makes
 * GC wait one more grace period before deleting.
 */
import type { Redis } from 'ioredis';
import { GLOBAL_KEYS } from '../coordination/keys.js';
import { mapRedisError, redisCall, redisTimeMs } from '../coordination/redis.js';

/** Fields sent per HSETNX pipeline or HDEL call, so one call never holds Redis long. */
const CHUNK = 1000;

/** The first sightings of unreferenced segment objects, in Redis. */
export class ObjectGcStore {
  readonly #redis: Redis;

  /** @param redis the command client (see `createCommandClient`). */
  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Redis's clock (TIME), in ms since the epoch: what first sightings are measured on. */
  timeMs(): Promise<number> {
    return redisTimeMs(this.#redis);
  }

  /** Every remembered object and when it was first found unreferenced. */
  async firstSeen(): Promise<Map<string, number>> {
    const all = await redisCall('read unreferenced objects', () => this.#redis.hgetall(GLOBAL_KEYS.gcUnreferenced));
    const out = new Map<string, number>();
    for (const [key, ms] of Object.entries(all)) out.set(key, Number(ms));
    return out;
  }

  /**
   * Remembers that `keys` were found unreferenced at `atMs`. An object another broker already
   * remembers keeps its earlier time (HSETNX): either is a valid first sighting.
   */
  async remember(keys: readonly string[], atMs: number): Promise<void> {
    for (let i = 0; i < keys.length; i += CHUNK) {
      const pipeline = this.#redis.pipeline();
      for (const key of keys.slice(i, i + CHUNK)) pipeline.hsetnx(GLOBAL_KEYS.gcUnreferenced, key, String(atMs));
      const replies = (await redisCall('remember unreferenced objects', () => pipeline.exec())) ?? [];
      for (const [err] of replies) if (err) throw mapRedisError(err, 'remember unreferenced objects');
    }
  }

  /** Forgets `keys` (deleted, found referenced, or no longer listed). */
  async forget(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      await redisCall('forget unreferenced objects', () => this.#redis.hdel(GLOBAL_KEYS.gcUnreferenced, ...chunk));
    }
  }
}
