/**
 * AddOffsetsToTxn (key 25), versions 0–4.
 *
 * v1 quota semantics; v2 PRODUCER_FENCED (KIP-588); v3 flexible; v4 TRANSACTION_ABORTABLE
 * may be answered (KIP-890; never needed here). Records the group whose offsets the
 * transaction will commit (staged by TxnOffsetCommit).
 */
import { ErrorCode } from '../../wire/index.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler } from './handler.js';

export const addOffsetsToTxnHandler = defineHandler({
  apiKey: 25,
  versions: [0, 4],
  async handle(ctx, req) {
    const fenced = ctx.header.apiVersion >= 2 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
    if (req.groupId === '') return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_GROUP_ID };
    const errorCode = await ctx.services.txns.addOffsets(req.transactionalId, wireToNumber(req.producerId) ?? -1, req.producerEpoch, req.groupId, fenced);
    return { throttleTimeMs: 0, errorCode };
  },
});
