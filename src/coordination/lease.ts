/**
 * Coordinator leases (docs/architecture.md §5): one broker at a time owns a group or a
 * transactional id, under a Redis lease whose value (`<nodeId>:<token>`, see `leaseValue` in
 * keys.ts) carries a token that only grows. Every write the owner makes is a script that first
 * checks the lease still holds exactly its value, so a paused or partitioned former owner
 * cannot overwrite its successor's state.
 */
import type { Redis } from 'ioredis';
import { LostLeaseError } from '../errors.js';
import { leaseValue, parseLeaseValue } from './keys.js';
import { ScriptRunner } from './redis.js';

/** Keys of one lease: the lease string and its fencing-token counter (same hash tag). */
export interface LeaseKeys {
  lease: string;
  fence: string;
}

/** The outcome of an acquire attempt. */
export type AcquireResult = { held: true; value: string } | { held: false; holder: number };

/** Takes, renews, releases and reads coordinator leases of one length. */
export class LeaseClient {
  readonly #redis: Redis;
  readonly #scripts: ScriptRunner;
  readonly #ttlMs: number;

  constructor(redis: Redis, ttlMs: number) {
    this.#redis = redis;
    this.#scripts = new ScriptRunner(redis);
    this.#ttlMs = ttlMs;
  }

  /** How long a lease lasts without renewal. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Takes the lease for `nodeId` if free (or renews it if already its own); otherwise names the holder. */
  async acquire(keys: LeaseKeys, nodeId: number): Promise<AcquireResult> {
    const reply = (await this.#scripts.run({ script: 'lease-acquire', keys: [keys.lease, keys.fence], args: [nodeId, this.#ttlMs] })) as [number, number];
    if (reply[0] === 1) return { held: true, value: leaseValue(nodeId, reply[1]) };
    return { held: false, holder: reply[1] };
  }

  /** Extends the lease; false when it is no longer held with `value`. */
  async renew(lease: string, value: string): Promise<boolean> {
    return (await this.#scripts.run({ script: 'lease-renew', keys: [lease], args: [value, this.#ttlMs] })) === 1;
  }

  /** Releases the lease if it is still held with `value`. */
  async release(lease: string, value: string): Promise<void> {
    await this.#scripts.run({ script: 'lease-release', keys: [lease], args: [value] });
  }

  /** The node id holding `lease`, or null when nobody does. Redis errors are not mapped. */
  async holder(lease: string): Promise<number | null> {
    const value = await this.#redis.get(lease);
    return value === null ? null : (parseLeaseValue(value)?.nodeId ?? null);
  }
}

/** Sets (or with `undefined`, deletes) `key` under the lease; throws LostLeaseError if not held with `value`. */
export async function fencedSet(scripts: ScriptRunner, lease: string, value: string, key: string, data: string | undefined): Promise<void> {
  const args = data === undefined ? [value] : [value, data];
  const ok = await scripts.run({ script: 'fenced-set', keys: [lease, key], args });
  if (ok !== 1) throw new LostLeaseError(`lease ${lease} is no longer held by this broker`);
}

/** Sets and deletes hash fields under the lease; throws LostLeaseError if not held with `value`. */
export async function fencedHashUpdate(
  scripts: ScriptRunner,
  lease: string,
  value: string,
  hash: string,
  set: readonly [string, string][],
  del: readonly string[] = [],
): Promise<void> {
  const args: (string | number)[] = [value, set.length];
  for (const [f, v] of set) args.push(f, v);
  args.push(...del);
  const ok = await scripts.run({ script: 'fenced-hset', keys: [lease, hash], args });
  if (ok !== 1) throw new LostLeaseError(`lease ${lease} is no longer held by this broker`);
}
