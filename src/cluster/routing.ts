/**
 * Rendezvous (highest-random-weight) hashing of partitions onto live brokers: the partition's
 * leader hint is the broker with the highest score, its replicas the next ones. Adding or
 * removing a broker moves only the partitions that scored highest on it, so caches stay warm.
 */

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
