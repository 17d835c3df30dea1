/**
 * InitProducerId (key 22), versions 0–5, for idempotent producers.
 *
 * v1 changes only quota behaviour; v2 is flexible; v3 lets a producer send its current
 * producer id and epoch to continue with a bumped epoch (KIP-360); v4 and v5 only allow new
 * error codes (PRODUCER_FENCED, KIP-588; TRANSACTION_ABORTABLE, KIP-890) that concern
 * transactional ids.
 *
 * A null transactional id gets a fresh producer id from the cluster-wide allocator
 * (txn/producer-id-store.ts) with epoch 0. With v3+, a producer that names its current id and
 * epoch keeps the id with the epoch bumped by one (a fresh id at epoch 0 once the epoch would
 * pass 32767, the int16 limit): KIP-360's way to recover from a sequence error without a new
 * id. Kafka itself ignores the pair for idempotent producers and always hands out a new id
 * (TransactionCoordinator.handleInitProducerId); clients accept either answer, and the commit
 * script accepts a higher epoch whose sequences start again at 0. An id this cluster has not
 * handed out yet is never bumped, since a later allocation would give it to another producer:
 * it gets a fresh id instead.
 *
 * A transactional id goes to its transaction coordinator (src/txn/coordinator.ts): a new
 * producer id, or the same id with its epoch bumped, fencing older instances and aborting
 * their ongoing transaction; `transaction.timeout.ms` above transaction.max.timeout.ms is
 * INVALID_TRANSACTION_TIMEOUT. An empty transactional id is INVALID_REQUEST, as in Kafka.
 */
import { ErrorCode } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { wireToNumber } from '../offsets.js';
import { defineHandler } from './handler.js';

/** The largest producer epoch (int16). */
const MAX_EPOCH = 32767;

const failed = (errorCode: number) => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 });

export const initProducerIdHandler = defineHandler({
  apiKey: 22,
  versions: [0, 5],
  async handle(ctx, req) {
    const { services, header } = ctx;
    if (req.transactionalId === '') return failed(ErrorCode.INVALID_REQUEST);
    if (req.transactionalId !== null) {
      const v = header.apiVersion;
      const r = await services.txns.initProducerId(
        req.transactionalId,
        req.transactionTimeoutMs,
        v >= 3 ? (wireToNumber(req.producerId) ?? -1) : -1,
        v >= 3 ? req.producerEpoch : -1,
        v >= 4 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH,
      );
      return { throttleTimeMs: 0, errorCode: r.errorCode, producerId: BigInt(r.producerId), producerEpoch: r.producerEpoch };
    }
    try {
      const current = header.apiVersion >= 3 ? wireToNumber(req.producerId) : null;
      const epoch = req.producerEpoch;
      if (current !== null && current >= 0 && epoch >= 0 && epoch < MAX_EPOCH) {
        if (await services.producerIds.isAllocated(current)) return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: BigInt(current), producerEpoch: epoch + 1 };
      }
      const producerId = await services.producerIds.allocate();
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: BigInt(producerId), producerEpoch: 0 };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'could not allocate a producer id');
      return failed(toKafkaErrorCode(err));
    }
  },
});
