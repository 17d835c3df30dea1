/**
 * DeleteRecords (key 21), versions 0–2.
 *
 * v1 changes only quota behaviour; v2 is flexible.
 *
 * Moves each partition's log start offset forward to the given offset, or to the high
 * watermark for -1, atomically in Redis (delete-records.lua), and answers the new log start
 * offset as `lowWatermark`. From then on fetches below it get OFFSET_OUT_OF_RANGE and
 * ListOffsets EARLIEST answers it. An offset beyond the high watermark is OFFSET_OUT_OF_RANGE;
 * one at or below the current log start changes nothing and answers the current one, as
 * Kafka does. Errors answer `lowWatermark` -1, as Kafka does.
 *
 * Index entries of runs wholly below the new log start are dropped at once; object GC
 * deletes the segment objects holding their bytes once no partition references them, a
 * grace period later (docs/architecture.md §4.4). `timeoutMs` is not needed: the change is
 * complete when answered (there are no followers to wait for).
 */
import { ErrorCode, type DeleteRecordsResponseDeleteRecordsPartitionResult, type DeleteRecordsResponseDeleteRecordsTopicResult } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler, lookUpTopic } from './handler.js';

export const deleteRecordsHandler = defineHandler({
  apiKey: 21,
  versions: [0, 2],
  async handle(ctx, req) {
    const { services } = ctx;
    const topics: DeleteRecordsResponseDeleteRecordsTopicResult[] = [];
    for (const t of req.topics) {
      const { topic, failure } = await lookUpTopic(services.topics.byName(t.name));
      const partitions = await Promise.all(
        t.partitions.map(async (p): Promise<DeleteRecordsResponseDeleteRecordsPartitionResult> => {
          const out: DeleteRecordsResponseDeleteRecordsPartitionResult = { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.NONE };
          if (failure) {
            out.errorCode = failure.errorCode;
            return out;
          }
          if (!topic || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
            out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
            return out;
          }
          const target = wireToNumber(p.offset);
          if (target === null) {
            out.errorCode = ErrorCode.OFFSET_OUT_OF_RANGE;
            return out;
          }
          try {
            const result = await services.log.deleteRecords({ topicId: topic.topicId, partition: p.partitionIndex }, target);
            out.errorCode = result.errorCode;
            if (result.errorCode === ErrorCode.NONE) out.lowWatermark = BigInt(result.logStart);
          } catch (err) {
            ctx.log.warn({ err: (err as Error).message, topic: t.name, partition: p.partitionIndex }, 'delete records failed');
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
