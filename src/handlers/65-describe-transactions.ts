/**
 * DescribeTransactions (key 65), version 0 (KIP-664).
 *
 * Any broker answers from the persisted coordinator state. An unknown id answers
 * TRANSACTIONAL_ID_NOT_FOUND.
 */
import { ErrorCode, type DescribeTransactionsResponseTransactionState } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

export const describeTransactionsHandler = defineHandler({
  apiKey: 65,
  versions: [0, 0],
  async handle(ctx, req) {
    const transactionStates = await Promise.all(
      req.transactionalIds.map(async (id): Promise<DescribeTransactionsResponseTransactionState> => {
        const base = { errorCode: ErrorCode.NONE, transactionalId: id, transactionState: '', transactionTimeoutMs: 0, transactionStartTimeMs: -1n, producerId: -1n, producerEpoch: -1, topics: [] };
        try {
          const r = await ctx.services.txns.describe(id);
          if (!r) return { ...base, errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND };
          const byTopic = new Map<string, number[]>();
          for (const p of r.partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
          return {
            ...base,
            transactionState: r.state,
            transactionTimeoutMs: r.timeoutMs,
            transactionStartTimeMs: r.state === 'Ongoing' ? BigInt(r.startedAtMs) : -1n,
            producerId: BigInt(r.producerId),
            producerEpoch: r.producerEpoch,
            topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
          };
        } catch (err) {
          return { ...base, errorCode: toKafkaErrorCode(err) };
        }
      }),
    );
    return { throttleTimeMs: 0, transactionStates };
  },
});
