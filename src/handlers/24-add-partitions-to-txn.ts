/**
 * AddPartitionsToTxn (key 24), versions 0–4.
 *
 * v1 is v0 with quota semantics; v2 lets the broker answer PRODUCER_FENCED (KIP-588); v3
 * flexible; v4 the batched, broker-to-broker form with `verifyOnly` (KIP-890 part 1), served
 * for completeness. v5 (KIP-890 part 2, epoch bump per transaction) is not advertised.
 *
 * Adding a partition also opens the producer's transaction on that partition, which is what
 * lets the commit script accept its transactional batches there (and refuse them elsewhere).
 */
import { ErrorCode, type AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult } from '../../wire/index.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler } from './handler.js';

function results(topics: { name: string; partitions: number[] }[], codes: number[]): AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult[] {
  let i = 0;
  return topics.map((t) => ({ name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: codes[i++]! })) }));
}

export const addPartitionsToTxnHandler = defineHandler({
  apiKey: 24,
  versions: [0, 4],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    const fenced = v >= 2 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
    const run = async (id: string, pidWire: bigint, epoch: number, topics: { name: string; partitions: number[] }[], verifyOnly: boolean) => {
      const wanted = topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p })));
      const pid = wireToNumber(pidWire) ?? -1;
      const codes = await ctx.services.txns.addPartitions(id, pid, epoch, wanted, fenced, verifyOnly);
      return results(topics, codes);
    };
    if (v <= 3) {
      const r = await run(req.v3AndBelowTransactionalId, req.v3AndBelowProducerId, req.v3AndBelowProducerEpoch, req.v3AndBelowTopics, false);
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction: [], resultsByTopicV3AndBelow: r };
    }
    const resultsByTransaction = await Promise.all(
      req.transactions.map(async (t) => ({ transactionalId: t.transactionalId, topicResults: await run(t.transactionalId, t.producerId, t.producerEpoch, t.topics, t.verifyOnly) })),
    );
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction, resultsByTopicV3AndBelow: [] };
  },
});
