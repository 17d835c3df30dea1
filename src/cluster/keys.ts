/**
 * Redis keys of cluster-wide state. They share the `{strata}` hash tag so that multi-key
 * scripts over them (topic creation) stay on one Redis Cluster slot.
 */
export const GLOBAL_KEYS = {
  /** Hash: topic name → topic id. */
  topics: '{strata}:topics',
  /** Hash of one topic: name, partitions, rf, createdAt, and `c:<config>` per topic config. */
  topic: (topicId: string): string => `{strata}:topic:${topicId}`,
  /** Sorted set: node id scored by lease expiry (ms). */
  brokers: '{strata}:brokers',
  /** Hash of one broker: host, port, zone, rack, startedAt. */
  broker: (nodeId: number): string => `{strata}:broker:${nodeId}`,
  nodeIdCounter: '{strata}:nodeid',
  /** Pub/sub channel announcing topic changes (payload: topic id). */
  topicsChanged: 'strata:topics-changed',
} as const;
