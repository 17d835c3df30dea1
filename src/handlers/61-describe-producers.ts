/**
 * DescribeProducers (key 61), version 0 (KIP-664).
 *
 * Per partition, the producers the commit script knows: epoch, last sequence, the first
 * offset of its open transaction on the partition, and as last timestamp the broker time its
 * latest batch was committed (Kafka shows the batch's own max timestamp). Coordinator epochs
 * are not tracked: 0.
 */
import { ErrorCode, type DescribeProducersResponsePartitionResponse } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

export const describeProducersHandler = defineHandler({
  apiKey: 61,
  versions: [0, 0],
  async handle(ctx, req) {
    const { services } = ctx;
    const topics = await Promise.all(
      req.topics.map(async (t) => {
        const topic = await services.topics.byName(t.name).catch(() => null);
        const partitions = await Promise.all(
          t.partitionIndexes.map(async (p): Promise<DescribeProducersResponsePartitionResponse> => {
            const out: DescribeProducersResponsePartitionResponse = { partitionIndex: p, errorCode: ErrorCode.NONE, errorMessage: null, activeProducers: [] };
            if (!topic || p < 0 || p >= topic.partitions) return { ...out, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
            try {
              const ref = { topicId: topic.topicId, partition: p };
              const [producers, open] = await Promise.all([services.log.producers(ref), services.log.openTransactions(ref)]);
              out.activeProducers = producers.map((s) => ({
                producerId: BigInt(s.producerId),
                producerEpoch: s.epoch,
                lastSequence: s.lastSequence,
                lastTimestamp: BigInt(s.lastCommitMs),
                coordinatorEpoch: 0,
                currentTxnStartOffset: BigInt(open.find((x) => x.producerId === s.producerId)?.firstOffset ?? -1),
              }));
            } catch (err) {
              out.errorCode = toKafkaErrorCode(err);
              out.errorMessage = (err as Error).message;
            }
            return out;
          }),
        );
        return { name: t.name, partitions };
      }),
    );
    return { throttleTimeMs: 0, topics };
  },
});
