/**
 * Redis keys of cluster-wide state. They share the `{strata}` hash tag so that multi-key
 * scripts over them (topic creation) stay on one Redis Cluster slot.
 */
export const GLOBAL_KEYS = {
  /** Hash: topic name → topic id. */
  topics: '{strata}:topics',
  /** Hash of one topic: name, partitions, rf, createdAt, and `c:<config>` per topic config. */
  topic: (topicId: string): string => `{strata}:topic:${topicId}`,
  /** The prefix of every topic hash key (`topic(id)` is this plus the id), for scripts that walk them. */
  topicPrefix: '{strata}:topic:',
  /**
   * Integer: partitions over all topics, changed by the same script that creates a topic,
   * raises its partition count or deletes it, so `--max-partitions` is checked atomically.
   * Absent on clusters older than it; the first change then counts the topics.
   */
  partitionCount: '{strata}:partitions',
  /** Sorted set: node id scored by lease expiry (ms). */
  brokers: '{strata}:brokers',
  /** Hash of one broker: host, port, zone, rack, startedAt. */
  broker: (nodeId: number): string => `{strata}:broker:${nodeId}`,
  nodeIdCounter: '{strata}:nodeid',
  /** Pub/sub channel announcing topic changes (payload: topic id). */
  topicsChanged: 'strata:topics-changed',
} as const;
