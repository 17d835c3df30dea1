/**
 * Rendezvous (highest-random-weight) hashing of partitions onto live brokers: the partition's
 * leader hint is the broker with the highest score, its replicas the next ones. Adding or
 * removing a broker moves only the partitions that scored highest on it, so caches stay warm.
 */

import { groupKeys, txnKeys } from '../coordination/keys.js';
import type { BrokerInfo } from './broker-store.js';

/** A 32-bit FNV-1a hash of `text`, then a murmur3 finaliser for better high-bit spread. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Orders `nodeIds` by rendezvous score for (topicId, partition), best first. Ties (vanishingly
 * rare) break by node id so every broker computes the same order.
 */
export function rendezvousOrder(topicId: string, partition: number, nodeIds: readonly number[]): number[] {
  const key = `${topicId}:${partition}:`;
  return nodeIds
    .map((id) => ({ id, score: hash32(key + id) }))
    .sort((a, b) => b.score - a.score || a.id - b.id)
    .map((e) => e.id);
}

/** What placement needs from the broker registry. */
export interface LiveBrokers {
  readonly nodeId: number;
  live(): BrokerInfo[];
}

/** Who holds a coordinator lease (see `coordination/lease.ts`). */
export interface LeaseHolders {
  /** The node id holding the lease key, or null when none does. */
  holder(lease: string): Promise<number | null>;
}

/**
 * Which brokers a client is shown, which of them leads each partition, and which coordinates
 * each consumer group and transactional id.
 */
export class Placement {
  readonly #brokers: LiveBrokers;
  readonly #leases: LeaseHolders;

  constructor(brokers: LiveBrokers, leases: LeaseHolders) {
    this.#brokers = brokers;
    this.#leases = leases;
  }

  /**
   * The broker a client should talk to about a consumer group (`kind` 'g') or a
   * transactional id ('x'): the holder of its lease when that broker is alive, else the
   * rendezvous choice over live brokers, which takes the lease on its first request.
   */
  async coordinatorFor(key: string, kind: 'g' | 'x'): Promise<BrokerInfo> {
    const live = this.#brokers.live();
    const holder = await this.#leases.holder(kind === 'g' ? groupKeys(key).lease : txnKeys(key).lease);
    if (holder !== null) {
      const b = live.find((x) => x.nodeId === holder);
      if (b) return b;
    }
    const order = rendezvousOrder(`${kind}:${key}`, 0, live.map((b) => b.nodeId));
    return live.find((b) => b.nodeId === order[0])!;
  }

  /** Live brokers a client in `zone` should see: those of its zone when there are any. */
  brokersFor(zone: string | null): BrokerInfo[] {
    const live = this.#brokers.live();
    if (zone === null) return live;
    const inZone = live.filter((b) => b.zone === zone);
    return inZone.length > 0 ? inZone : live;
  }

  /** Replicas of a partition for a client in `zone`, leader hint first. */
  replicasFor(topicId: string, partition: number, replicationFactor: number, zone: string | null): number[] {
    const ids = this.brokersFor(zone).map((b) => b.nodeId);
    return rendezvousOrder(topicId, partition, ids).slice(0, Math.max(1, Math.min(replicationFactor, ids.length)));
  }

  /**
   * Whether this broker runs the cluster-wide job `name` (object garbage collection): it wins
   * rendezvous for the name among live brokers. Brokers that disagree about who is live may
   * both run it for a while, so a job must be safe to run twice at once.
   */
  ownsJob(name: string): boolean {
    const order = rendezvousOrder(`job:${name}`, 0, this.#brokers.live().map((b) => b.nodeId));
    return order[0] === this.#brokers.nodeId;
  }

  /** The node id Metadata names as controller: the lowest live one a client can see. */
  controllerId(zone: string | null): number {
    return this.brokersFor(zone)[0]?.nodeId ?? this.#brokers.nodeId;
  }
}
