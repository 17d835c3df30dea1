/**
 * Coordinator ownership (ARCHITECTURE §1 rule 5): one broker at a time owns a group or a
 * transactional id, under a Redis lease whose value carries a monotonically increasing token.
 * Every write the owner makes is a script that first checks the lease still holds exactly its
 * value, so a paused or partitioned former owner cannot overwrite its successor's state.
 */
import type { Redis } from 'ioredis';
import { LostLeaseError } from '../errors.js';
import { ScriptRunner } from './redis.js';

/** Keys of one lease: the lease string and its fencing-token counter (same hash tag). */
export interface LeaseKeys {
  lease: string;
  fence: string;
}

/** The outcome of an acquire attempt. */
export type AcquireResult = { held: true; value: string } | { held: false; holder: number };

export class LeaseClient {
  readonly #scripts: ScriptRunner;
  readonly #nodeId: number;
  readonly #ttlMs: number;

  constructor(redis: Redis, nodeId: number, ttlMs: number) {
    this.#scripts = new ScriptRunner(redis);
    this.#nodeId = nodeId;
    this.#ttlMs = ttlMs;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Takes the lease if free (or renews it if already ours); otherwise names the holder. */
  async acquire(keys: LeaseKeys): Promise<AcquireResult> {
    const reply = (await this.#scripts.run({ script: 'lease-acquire', keys: [keys.lease, keys.fence], args: [this.#nodeId, this.#ttlMs] })) as [number, number];
    if (reply[0] === 1) return { held: true, value: `${this.#nodeId}:${reply[1]}` };
    return { held: false, holder: reply[1] };
  }

  /** Extends the lease; false when it is no longer ours. */
  async renew(lease: string, value: string): Promise<boolean> {
    return (await this.#scripts.run({ script: 'lease-renew', keys: [lease], args: [value, this.#ttlMs] })) === 1;
  }

  /** Releases the lease if it is still ours. */
  async release(lease: string, value: string): Promise<void> {
    await this.#scripts.run({ script: 'lease-release', keys: [lease], args: [value] });
  }

  /** Sets (or with `undefined`, deletes) `key` under the lease; throws LostLeaseError if not ours. */
  async fencedSet(lease: string, value: string, key: string, data: string | undefined): Promise<void> {
    const args = data === undefined ? [value] : [value, data];
    const ok = await this.#scripts.run({ script: 'fenced-set', keys: [lease, key], args });
    if (ok !== 1) throw new LostLeaseError(`lease ${lease} is no longer held by this broker`);
  }

  /** Sets and deletes hash fields under the lease; throws LostLeaseError if not ours. */
  async fencedHashUpdate(lease: string, value: string, hash: string, set: readonly [string, string][], del: readonly string[] = []): Promise<void> {
    const args: (string | number)[] = [value, set.length];
    for (const [f, v] of set) args.push(f, v);
    args.push(...del);
    const ok = await this.#scripts.run({ script: 'fenced-hset', keys: [lease, hash], args });
    if (ok !== 1) throw new LostLeaseError(`lease ${lease} is no longer held by this broker`);
  }
}
