/**
 * Rendezvous (highest-random-weight) hashing of partitions onto live brokers: the partition's
 * leader hint is the broker with the highest score, its replicas the next ones. Adding or
 * removing a broker moves only the partitions that scored highest on it, so caches stay warm.
 */

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

/** Which brokers a client is shown and which of them leads each partition. */
export class Placement {
  readonly #brokers: LiveBrokers;

  constructor(brokers: LiveBrokers) {
    this.#brokers = brokers;
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

  /** The node id Metadata names as controller: the lowest live one a client can see. */
  controllerId(zone: string | null): number {
    return this.brokersFor(zone)[0]?.nodeId ?? this.#brokers.nodeId;
  }
}
