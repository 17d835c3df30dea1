/**
 * Redis key names. The layout is shared by every broker (and by every version of it that may
 * run side by side), so it changes only together with the Lua scripts that read it.
 *
 * Per partition, every key carries the hash tag `{p:<topicId>:<partition>}`: Redis Cluster
 * places them in one slot, which is what lets one Lua script change them atomically
 * (ARCHITECTURE §1 rule 3).
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
