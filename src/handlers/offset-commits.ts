/**
 * What OffsetCommit and TxnOffsetCommit share: the per-partition checks of the offsets a
 * client commits, and the answer shape they fill in.
 */
import { ErrorCode } from '../../wire/index.js';
import type { Services } from './services.js';
import type { CommittedOffset } from '../groups/coordinator.js';
import { wireToNumber } from '../offsets.js';

/** A request's topics as both commit APIs carry them. */
export interface CommitRequestTopic {
  name: string;
  partitions: { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: string | null }[];
}

/** One answer topic; errorCode NONE until a check or the commit says otherwise. */
export interface CommitAnswerTopic {
  name: string;
  partitions: { partitionIndex: number; errorCode: number }[];
}

/** An offset that passed the checks. */
export interface AcceptedOffset {
  topic: string;
  partition: number;
  offset: CommittedOffset;
}

/**
 * Checks each partition of a commit: the topic and partition exist (UNKNOWN_TOPIC_OR_PARTITION),
 * the metadata fits offset.metadata.max.bytes (OFFSET_METADATA_TOO_LARGE), the offset fits a
 * broker offset (INVALID_COMMIT_OFFSET_SIZE). Returns the answer (with those errors set) and
 * the accepted offsets. `withLeaderEpoch` says whether the request version carries epochs.
 */
export async function checkCommittedOffsets(
  services: Services,
  topics: readonly CommitRequestTopic[],
  withLeaderEpoch: boolean,
): Promise<{ answer: CommitAnswerTopic[]; accepted: AcceptedOffset[] }> {
  const answer: CommitAnswerTopic[] = topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE })) }));
  const accepted: AcceptedOffset[] = [];
  for (let i = 0; i < topics.length; i++) {
    const t = topics[i]!;
    const topic = await services.topics.byName(t.name);
    t.partitions.forEach((p, j) => {
      const out = answer[i]!.partitions[j]!;
      const offset = wireToNumber(p.committedOffset);
      const metadata = p.committedMetadata ?? '';
      if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      else if (Buffer.byteLength(metadata) > services.config.offsetMetadataMaxBytes) out.errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE;
      else if (offset === null) out.errorCode = ErrorCode.INVALID_COMMIT_OFFSET_SIZE;
      else accepted.push({ topic: t.name, partition: p.partitionIndex, offset: { offset, leaderEpoch: withLeaderEpoch ? p.committedLeaderEpoch : -1, metadata } });
    });
  }
  return { answer, accepted };
}

/** Sets `code` on every partition still without an error; returns the topics. */
export function failRemaining<T extends CommitAnswerTopic>(topics: T[], code: number): T[] {
  for (const t of topics) for (const p of t.partitions) if (p.errorCode === ErrorCode.NONE) p.errorCode = code;
  return topics;
}
