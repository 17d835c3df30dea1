/**
 * TxnOffsetCommit (key 28), versions 0–4.
 *
 * v1 quota semantics; v2 committed leader epoch (KIP-320); v3 flexible, and the consumer's
 * generation, member id and instance id so the group coordinator can fence zombies
 * (KIP-447); v4 TRANSACTION_ABORTABLE may be answered (KIP-890).
 *
 * Served by the group's coordinator: the offsets are staged under the group and become
 * committed only when the transaction commits (OffsetFetch with requireStable answers
 * UNSTABLE_OFFSET_COMMIT meanwhile).
 */
import { ErrorCode, type TxnOffsetCommitResponseTopic } from '../../wire/index.js';
import { wireToNumber } from '../offsets.js';
import { checkCommittedOffsets, failRemaining } from './offset-commits.js';
import { defineHandler } from './handler.js';

export const txnOffsetCommitHandler = defineHandler({
  apiKey: 28,
  versions: [0, 4],
  async handle(ctx, req) {
    const { services } = ctx;
    const v = ctx.header.apiVersion;
    const { answer: topics, accepted: staged } = await checkCommittedOffsets(services, req.topics, v >= 2);
    const setAll = (code: number): { throttleTimeMs: number; topics: TxnOffsetCommitResponseTopic[] } => ({ throttleTimeMs: 0, topics: failRemaining(topics, code) });
    if (req.groupId === '') return setAll(ErrorCode.INVALID_GROUP_ID);
    // The producer must be the current instance of the transactional id, inside a transaction
    // that added this group (AddOffsetsToTxn) — otherwise a fenced zombie could stage offsets.
    const producerId = wireToNumber(req.producerId) ?? -1;
    let txn;
    try {
      txn = await services.txns.describe(req.transactionalId);
    } catch {
      return setAll(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    }
    if (!txn || txn.producerId !== producerId) return setAll(ErrorCode.INVALID_PRODUCER_ID_MAPPING);
    if (req.producerEpoch < txn.producerEpoch) return setAll(v >= 2 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH);
    if (req.producerEpoch > txn.producerEpoch) return setAll(ErrorCode.INVALID_PRODUCER_EPOCH);
    if (txn.state !== 'Ongoing' || !txn.groups.includes(req.groupId)) return setAll(ErrorCode.INVALID_TXN_STATE);
    const code = await services.groups.stageTransactionalOffsets(
      req.groupId,
      producerId,
      req.producerEpoch,
      v >= 3 ? req.memberId : '',
      v >= 3 ? req.groupInstanceId : null,
      v >= 3 ? req.generationId : -1,
      staged,
    );
    return code === ErrorCode.NONE ? { throttleTimeMs: 0, topics } : setAll(code);
  },
});
