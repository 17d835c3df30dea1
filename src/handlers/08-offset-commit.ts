/**
 * OffsetCommit (key 8), versions 0–9.
 *
 * v1 generation and member id (and a per-partition commit timestamp, ignored as in Kafka
 * since v2); v2–4 retention time (ignored: offsets live until the group is deleted); v3
 * throttle time; v6 committed leader epoch (KIP-320); v7 static membership (KIP-345); v8
 * flexible; v9 is for the new consumer protocol (KIP-848), whose member epochs Strata does not
 * have: a v9 commit is validated like a classic one (generation = member epoch).
 *
 * Committed offsets are written to Redis under the group's lease, with their metadata string
 * and leader epoch, and are readable from any broker. A commit without a generation (-1) is
 * accepted only while the group has no members (admin tools, assign()-based consumers).
 */
import { ErrorCode, type OffsetCommitResponseTopic } from '../../wire/index.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler } from './handler.js';

export const offsetCommitHandler = defineHandler({
  apiKey: 8,
  versions: [0, 9],
  async handle(ctx, req) {
    const { broker, header } = ctx;
    const v = header.apiVersion;
    const topics: OffsetCommitResponseTopic[] = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE })),
    }));
    const setAll = (code: number): { throttleTimeMs: number; topics: OffsetCommitResponseTopic[] } => {
      for (const t of topics) for (const p of t.partitions) if (p.errorCode === ErrorCode.NONE) p.errorCode = code;
      return { throttleTimeMs: 0, topics };
    };
    // An empty group id is accepted, as Kafka does for old clients' offset storage.
    const valid: { topic: string; partition: number; offset: { offset: number; leaderEpoch: number; metadata: string } }[] = [];
    for (let i = 0; i < req.topics.length; i++) {
      const t = req.topics[i]!;
      const topic = await broker.topics.byName(t.name);
      t.partitions.forEach((p, j) => {
        const out = topics[i]!.partitions[j]!;
        const offset = wireToNumber(p.committedOffset);
        const metadata = p.committedMetadata ?? '';
        if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (Buffer.byteLength(metadata) > broker.config.offsetMetadataMaxBytes) out.errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE;
        else if (offset === null) out.errorCode = ErrorCode.INVALID_COMMIT_OFFSET_SIZE;
        else valid.push({ topic: t.name, partition: p.partitionIndex, offset: { offset, leaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1, metadata } });
      });
    }
    const code = await broker.groups.commitOffsets(
      req.groupId,
      v >= 1 ? req.memberId : '',
      v >= 7 ? req.groupInstanceId : null,
      v >= 1 ? req.generationIdOrMemberEpoch : -1,
      valid,
      // A generation for a group that does not exist: ILLEGAL_GENERATION, or from v9 (KIP-848)
      // GROUP_ID_NOT_FOUND, as Kafka answers.
      v >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION,
    );
    return code === ErrorCode.NONE ? { throttleTimeMs: 0, topics } : setAll(code);
  },
});
