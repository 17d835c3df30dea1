/**
 * OffsetForLeaderEpoch (key 23), versions 0–4.
 *
 * v1 adds the leader epoch to the answer (KIP-279); v2 the current leader epoch, for fencing,
 * and throttle time (KIP-320); v3 the replica id; v4 is flexible.
 *
 * Strata's leader epoch is always 0: Metadata names it, Produce stamps it into every batch,
 * and no leader ever changes. A consumer validating its position (KIP-320) asks for epoch 0
 * and gets epoch 0 with its end offset, the high watermark (here also the log end offset,
 * which Kafka answers for the leader's current epoch). Any other epoch is unknown: for an
 * epoch above every epoch it knows, and for -1 (undefined), Kafka answers no error with leader
 * epoch -1 and end offset -1 (LeaderEpochFileCache.endOffsetFor), and so does Strata. A
 * current leader epoch above 0 is UNKNOWN_LEADER_EPOCH (the client believes in a newer
 * leader than exists), as in Fetch and ListOffsets.
 *
 * Every request is treated as a consumer's: Strata has no follower replicas, so `replicaId`
 * is not used.
 */
import { ErrorCode, type OffsetForLeaderEpochResponseEpochEndOffset, type OffsetForLeaderEpochResponseOffsetForLeaderTopicResult } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler, lookUpTopic } from './handler.js';

/** The one leader epoch Strata has. */
const LEADER_EPOCH = 0;

export const offsetForLeaderEpochHandler = defineHandler({
  apiKey: 23,
  versions: [0, 4],
  async handle(ctx, req) {
    const { services } = ctx;
    const topics: OffsetForLeaderEpochResponseOffsetForLeaderTopicResult[] = [];
    for (const t of req.topics) {
      const { topic, failure } = await lookUpTopic(services.topics.byName(t.topic));
      const partitions = await Promise.all(
        t.partitions.map(async (p): Promise<OffsetForLeaderEpochResponseEpochEndOffset> => {
          const out: OffsetForLeaderEpochResponseEpochEndOffset = { errorCode: ErrorCode.NONE, partition: p.partition, leaderEpoch: -1, endOffset: -1n };
          if (failure) out.errorCode = failure.errorCode;
          else if (!topic || p.partition < 0 || p.partition >= topic.partitions) out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          else if (p.currentLeaderEpoch > LEADER_EPOCH) out.errorCode = ErrorCode.UNKNOWN_LEADER_EPOCH;
          else if (p.leaderEpoch === LEADER_EPOCH) {
            try {
              const [offsets] = await services.log.offsets([{ topicId: topic.topicId, partition: p.partition }]);
              out.endOffset = BigInt(offsets!.hw);
              out.leaderEpoch = LEADER_EPOCH;
            } catch (err) {
              ctx.log.warn({ err: (err as Error).message, topic: t.topic, partition: p.partition }, 'offset for leader epoch failed');
              out.errorCode = toKafkaErrorCode(err);
            }
          }
          return out;
        }),
      );
      topics.push({ topic: t.topic, partitions });
    }
    return { throttleTimeMs: 0, topics };
  },
});
