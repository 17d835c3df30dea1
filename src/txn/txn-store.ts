/**
 * How transactions lie in Redis (docs/architecture.md §5, §7): the record of each
 * transactional id (`{x:<id>}:state`, JSON, written under the id's lease), the set of every
 * id (`{strata}:txns`) and the deadline set the timeout sweep reads (`{strata}:txn-deadlines`).
 */
import type { Redis } from 'ioredis';
import { TXNS_SET, TXN_DEADLINES, txnKeys } from '../coordination/keys.js';
import { fencedSet } from '../coordination/lease.js';
import { ScriptRunner, redisCall } from '../coordination/redis.js';
import type { TxnRecord } from './transaction.js';

/** Reads and writes transaction records and their deadlines. */
export class TxnStore {
  readonly #redis: Redis;
  readonly #scripts: ScriptRunner;

  constructor(redis: Redis) {
    this.#redis = redis;
    this.#scripts = new ScriptRunner(redis);
  }

  /** The record of `transactionalId`, or null (the owner's read on load; errors unmapped). */
  async load(transactionalId: string): Promise<TxnRecord | null> {
    const raw = await this.#redis.get(txnKeys(transactionalId).state);
    return raw ? (JSON.parse(raw) as TxnRecord) : null;
  }

  /** The record of `transactionalId` for any broker (DescribeTransactions), or null. */
  async read(transactionalId: string): Promise<TxnRecord | null> {
    const raw = await redisCall('read transaction', () => this.#redis.get(txnKeys(transactionalId).state));
    return raw ? (JSON.parse(raw) as TxnRecord) : null;
  }

  /** Adds the id to the set of all transactional ids. */
  async register(transactionalId: string): Promise<void> {
    await this.#redis.sadd(TXNS_SET, transactionalId);
  }

  /** Every transactional id known to the cluster. */
  listIds(): Promise<string[]> {
    return redisCall('list transactions', () => this.#redis.smembers(TXNS_SET));
  }

  /**
   * Writes the record under the lease (LostLeaseError if `leaseValue` no longer holds it),
   * then puts the id in the deadline set at `deadlineMs`, or takes it out when null.
   */
  async save(transactionalId: string, leaseValue: string, record: TxnRecord, deadlineMs: number | null): Promise<void> {
    const keys = txnKeys(transactionalId);
    await fencedSet(this.#scripts, keys.lease, leaseValue, keys.state, JSON.stringify(record));
    if (deadlineMs === null) await this.#redis.zrem(TXN_DEADLINES, transactionalId);
    else await this.#redis.zadd(TXN_DEADLINES, deadlineMs, transactionalId);
  }

  /** Moves the id's deadline to `deadlineMs` (a finish that failed is retried then). */
  async setDeadline(transactionalId: string, deadlineMs: number): Promise<void> {
    await this.#redis.zadd(TXN_DEADLINES, deadlineMs, transactionalId);
  }

  /** Up to `limit` ids whose deadline is at or before `nowMs`. */
  due(nowMs: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(TXN_DEADLINES, '-inf', nowMs, 'LIMIT', 0, limit);
  }
}
