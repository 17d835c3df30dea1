/**
 * EndTxn (key 26), versions 0–4.
 *
 * v1 quota semantics; v2 PRODUCER_FENCED (KIP-588); v3 flexible; v4 TRANSACTION_ABORTABLE
 * may be answered (KIP-890). v5 (KIP-890 part 2: a new epoch with every EndTxn) is not
 * advertised.
 *
 * Commits or aborts: writes a marker into every partition of the transaction, settles the
 * staged offsets of its groups, and answers once all of that is durable.
 */
import { ErrorCode } from '../../wire/index.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler } from './handler.js';

export const endTxnHandler = defineHandler({
  apiKey: 26,
  versions: [0, 4],
  async handle(ctx, req) {
    const fenced = ctx.header.apiVersion >= 2 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
    const errorCode = await ctx.services.txns.endTxn(req.transactionalId, wireToNumber(req.producerId) ?? -1, req.producerEpoch, req.committed, fenced);
    return { throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 };
  },
});
