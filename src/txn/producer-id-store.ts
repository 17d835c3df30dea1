/**
 * The producer id store (docs/architecture.md §7): blocks of ids from one Redis counter
 * (`strata:pid`), handed out one at a time, so InitProducerId costs a Redis round trip only
 * once per block.
 */
import type { Redis } from 'ioredis';
import { PRODUCER_ID_KEY } from '../coordination/keys.js';
import { redisCall } from '../coordination/redis.js';

/** Ids taken from Redis per round trip. */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

/**
 * Hands out producer ids unique across all brokers. Each refill takes the block
 * `[n - size, n)` where `n = INCRBY strata:pid size`; so the first block of a fresh Redis is
 * 0…999, as Kafka's first block. Ids of a block a broker did not use before it stopped are
 * never reused — a gap, not a collision.
 */
export class ProducerIdAllocator {
  readonly #redis: Redis;
  readonly #blockSize: number;
  #next = 0;
  #end = 0;
  /** The refill in flight: concurrent callers share it instead of each taking a block. */
  #refill: Promise<void> | null = null;

  constructor(redis: Redis, blockSize = PRODUCER_ID_BLOCK_SIZE) {
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`producer id block size ${blockSize} must be a positive integer`);
    this.#redis = redis;
    this.#blockSize = blockSize;
  }

  /** The next unused producer id. Rejects with `RedisUnavailableError` if a refill fails. */
  async allocate(): Promise<number> {
    // A loop, not an if: a refill's ids may all be taken by callers that were already
    // waiting for it before this caller gets to run.
    while (this.#next >= this.#end) {
      this.#refill ??= this.#takeBlock().finally(() => {
        this.#refill = null;
      });
      await this.#refill;
    }
    return this.#next++;
  }

  /** True when `producerId` has been handed out by some broker (ids are never reused). */
  async isAllocated(producerId: number): Promise<boolean> {
    // Ids below the counter have been taken in blocks by some broker.
    const counter = Number((await redisCall('read producer id counter', () => this.#redis.get(PRODUCER_ID_KEY))) ?? 0);
    return producerId < counter;
  }

  async #takeBlock(): Promise<void> {
    const end = await redisCall('allocate producer ids', () => this.#redis.incrby(PRODUCER_ID_KEY, this.#blockSize));
    this.#next = end - this.#blockSize;
    this.#end = end;
  }
}
