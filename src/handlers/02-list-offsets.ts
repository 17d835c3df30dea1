/**
 * ListOffsets (key 2), versions 0–10.
 *
 * v0 answers a list of offsets (old style; Strata gives the one offset asked for); v1 single
 * offset and timestamp; v2 isolation level (latest = LSO under read_committed); v4 leader
 * epoch (KIP-320; always 0); v6 flexible; v7 max timestamp (-3, KIP-734); v8 earliest local
 * (-4, KIP-405: all of Strata's log is "local", so it equals earliest); v9 latest tiered
 * (-5, KIP-1005) and v10 earliest pending upload (-6, KIP-1023): Strata has no tiering, so
 * both answer offset -1 as Kafka does without tiered storage.
 *
 * By timestamp: the offset of the first record whose timestamp is at or after the target,
 * found through the partition's time index; -1 when there is none. A batch that cannot be
 * decoded (over `--max-decompressed-batch-bytes`, e.g. stored before the limit was lowered) is
 * answered with its first offset and its header's maxTimestamp, with one warning: an offset
 * that never skips a record, where an error would repeat for as long as the batch is kept.
 */
import { ErrorCode, type ListOffsetsResponseListOffsetsPartitionResponse, type ListOffsetsResponseListOffsetsTopicResponse } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import type { OffsetAndTimestamp } from '../log/partition-log.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler, lookUpTopic } from './handler.js';

export const ListOffsetsTimestamp = {
  LATEST: -1,
  EARLIEST: -2,
  MAX_TIMESTAMP: -3,
  EARLIEST_LOCAL: -4,
  LATEST_TIERED: -5,
  EARLIEST_PENDING_UPLOAD: -6,
} as const;

const READ_COMMITTED = 1;

export const listOffsetsHandler = defineHandler({
  apiKey: 2,
  versions: [0, 10],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const topics: ListOffsetsResponseListOffsetsTopicResponse[] = [];
    const warnUndecodable = (found: OffsetAndTimestamp, topic: string, partition: number): void => {
      if (found.undecodable === undefined) return;
      ctx.log.warn(
        { topic, partition, offset: found.offset, timestamp: found.timestamp, err: found.undecodable },
        'list offsets could not decode the batch holding the answer; answered its first offset and header maxTimestamp ' +
          '(raise --max-decompressed-batch-bytes for exact offsets)',
      );
    };
    for (const t of req.topics) {
      const { topic, failure } = await lookUpTopic(services.topics.byName(t.name));
      const partitions = await Promise.all(
        t.partitions.map(async (p): Promise<ListOffsetsResponseListOffsetsPartitionResponse> => {
          const out: ListOffsetsResponseListOffsetsPartitionResponse = {
            partitionIndex: p.partitionIndex,
            errorCode: ErrorCode.NONE,
            oldStyleOffsets: [],
            timestamp: -1n,
            offset: -1n,
            leaderEpoch: -1,
          };
          if (failure) {
            out.errorCode = failure.errorCode;
            return out;
          }
          if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
            out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
            return out;
          }
          if (p.currentLeaderEpoch > 0) {
            out.errorCode = ErrorCode.UNKNOWN_LEADER_EPOCH;
            return out;
          }
          const ref = { topicId: topic.topicId, partition: p.partitionIndex };
          try {
            const target = wireToNumber(p.timestamp) ?? Number.MAX_SAFE_INTEGER;
            let offset = -1;
            let timestamp = -1;
            if (target === ListOffsetsTimestamp.LATEST || target === ListOffsetsTimestamp.EARLIEST || target === ListOffsetsTimestamp.EARLIEST_LOCAL) {
              const [o] = await services.log.offsets([ref]);
              offset = target === ListOffsetsTimestamp.LATEST ? (req.isolationLevel === READ_COMMITTED ? o!.lso : o!.hw) : o!.logStart;
            } else if (target === ListOffsetsTimestamp.MAX_TIMESTAMP) {
              const found = await services.log.maxTimestampOffset(ref);
              if (found) {
                ({ offset, timestamp } = found);
                warnUndecodable(found, t.name, p.partitionIndex);
              }
            } else if (target >= 0) {
              const found = await services.log.offsetForTimestamp(ref, target, req.isolationLevel === READ_COMMITTED);
              if (found) {
                ({ offset, timestamp } = found);
                warnUndecodable(found, t.name, p.partitionIndex);
              }
            }
            // Each field exists only in some versions; the encoder refuses values a version lacks.
            if (v === 0) out.oldStyleOffsets = offset >= 0 ? [BigInt(offset)] : [];
            else {
              out.offset = BigInt(offset);
              out.timestamp = BigInt(timestamp);
            }
            if (v >= 4 && offset >= 0) out.leaderEpoch = 0;
          } catch (err) {
            ctx.log.warn({ err: (err as Error).message }, 'list offsets failed');
            out.errorCode = toKafkaErrorCode(err);
          }
          return out;
        }),
      );
      topics.push({ name: t.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  },
});
