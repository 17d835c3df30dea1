/**
 * The key catalogue: every Redis key and pub/sub channel Strata uses is named here, and
 * nowhere else (docs/architecture.md §5). The layout is shared by every broker (and by every
 * version of it that may run side by side), so it changes only together with the Lua scripts
 * that read it.
 *
 * Per partition, every key carries the hash tag `{p:<topicId>:<partition>}`: Redis Cluster
 * places them in one slot, which is what lets one Lua script change them atomically.
 * Per consumer group, every key carries `{g:<groupId>}`, and per transactional id
 * `{x:<transactionalId>}`, for the same reason.
 */

/** One partition of one topic, by topic id (22-character base64url Kafka UUID). */
export interface PartitionRef {
  topicId: string;
  partition: number;
}

/** The keys of one partition, in the order the partition scripts take them. */
export interface PartitionKeys {
  /** Hash: `hw` (next offset to assign), `logStart`, `maxts` (running max batch timestamp), `lso` (while a transaction is open). */
  meta: string;
  /** Sorted set of runs: score = last offset, member = `base|last|maxTs|byteStart|byteLength|batchCount|objectKey`. */
  idx: string;
  /** Sorted set: score = running max timestamp, member = last offset of the run that raised it. */
  tidx: string;
  /** Hash: producer id → producer state string (see `producer-state` in commit.lua). */
  producers: string;
  /** Hash: producer id → `epoch|firstOffset` of its transaction open on this partition. */
  txn: string;
  /** Sorted set: score = when the producer's latest batch was committed (ms), member = producer id. */
  producersSeen: string;
  /** Sorted set of aborted transactions: score = marker offset, member = `pid|first|marker`. */
  aborted: string;
}

/** Global counter that producer-id blocks are taken from (`INCRBY`). */
export const PRODUCER_ID_KEY = 'strata:pid';

/** Pub/sub channel carrying high-watermark updates after each commit. */
export const HIGH_WATERMARK_CHANNEL = 'strata:hw';

/** The hash tag shared by every key of the partition: `{p:<topicId>:<partition>}`. */
export function partitionTag(ref: PartitionRef): string {
  return `{p:${ref.topicId}:${ref.partition}}`;
}

/** The partition's keys (see {@link PartitionKeys}). */
export function partitionKeys(ref: PartitionRef): PartitionKeys {
  const tag = partitionTag(ref);
  return {
    meta: `${tag}:meta`,
    idx: `${tag}:idx`,
    tidx: `${tag}:tidx`,
    producers: `${tag}:producers`,
    txn: `${tag}:txn`,
    aborted: `${tag}:aborted`,
    producersSeen: `${tag}:pseen`,
  };
}

/** Set of every group id that has persisted state (ListGroups reads it). */
export const GROUPS_SET = '{strata}:groups';

/** The keys of one consumer group, all under its hash tag `{g:<groupId>}` (see {@link groupKeys}). */
export interface GroupKeys {
  /** String: the owner's lease `<nodeId>:<token>`. */
  lease: string;
  /** Counter the lease tokens come from. */
  fence: string;
  /**
   * String: the group record, JSON (generation, protocol, leader, state). Before format 2 it
   * held the whole group, members included (still read when found).
   */
  state: string;
  /** Hash: `m:<memberId>` → member record, `a:<memberId>` → its assignment (absent when empty). */
  members: string;
  /** Hash: `topic:partition` → `offset|leaderEpoch|commitTimestamp|metadata`. */
  offsets: string;
  /** Hash: `topic:partition` → producer id whose transaction staged an offset there (requireStable). */
  pending: string;
  /**
   * Hash of the offsets staged by one producer's open transaction (TxnOffsetCommit), moved on
   * EndTxn. Keyed by epoch too, so a fenced instance's late commit can never be materialised.
   */
  staged: (producerId: number, producerEpoch: number) => string;
}

/** The group's keys (see {@link GroupKeys}). */
export function groupKeys(groupId: string): GroupKeys {
  const tag = `{g:${groupId}}`;
  return {
    lease: `${tag}:lease`,
    fence: `${tag}:fence`,
    state: `${tag}:state`,
    members: `${tag}:members`,
    offsets: `${tag}:offsets`,
    pending: `${tag}:pending`,
    staged: (producerId: number, producerEpoch: number) => `${tag}:staged:${producerId}:${producerEpoch}`,
  };
}

/** Set of every transactional id that has persisted state (ListTransactions reads it). */
export const TXNS_SET = '{strata}:txns';

/**
 * Sorted set: transactional id → when the coordinator must act on it (ms): an ongoing
 * transaction's timeout, or "now" for one decided but not yet finished.
 */
export const TXN_DEADLINES = '{strata}:txn-deadlines';

/** The keys of one transactional id, all under its hash tag `{x:<transactionalId>}`. */
export interface TxnKeys {
  /** String: the owner's lease (see {@link leaseValue}). */
  lease: string;
  /** Counter the lease tokens come from. */
  fence: string;
  /** String: the transaction record, JSON (see `TxnRecord` in src/txn/transaction.ts). */
  state: string;
}

/** The transactional id's keys (see {@link TxnKeys}). */
export function txnKeys(transactionalId: string): TxnKeys {
  const tag = `{x:${transactionalId}}`;
  return { lease: `${tag}:lease`, fence: `${tag}:fence`, state: `${tag}:state` };
}

/**
 * The value of a coordinator lease (`{g:…}:lease`, `{x:…}:lease`): `<nodeId>:<token>`, the
 * token taken from the lease's fence counter so that it only grows. lease-acquire.lua builds
 * and reads the same format.
 */
export function leaseValue(nodeId: number, token: number): string {
  return `${nodeId}:${token}`;
}

/** The holder and token of a lease value; null when `value` is not one. */
export function parseLeaseValue(value: string): { nodeId: number; token: number } | null {
  const match = /^(\d+):(\d+)$/.exec(value);
  return match === null ? null : { nodeId: Number(match[1]), token: Number(match[2]) };
}

/**
 * Cluster-wide keys. They share the `{strata}` hash tag so that multi-key scripts over them
 * (topic creation) stay on one Redis Cluster slot.
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
  /**
   * Hash: segment object key → when object garbage collection first found it unreferenced
   * (ms since the epoch; docs/architecture.md §4.4).
   */
  gcUnreferenced: '{strata}:gc:unreferenced',
  /** Pub/sub channel announcing topic changes (payload: topic id). */
  topicsChanged: 'strata:topics-changed',
} as const;
