/**
 * ListTransactions (key 66), versions 0–1 (KIP-664; v1 adds the duration filter, KIP-994).
 *
 * Admin clients send it to every broker and merge the answers, so each transactional id is
 * listed by one broker only: the one FindCoordinator would name for it.
 */
import { ErrorCode } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

const STATES = ['Empty', 'Ongoing', 'PrepareCommit', 'PrepareAbort', 'CompleteCommit', 'CompleteAbort', 'Dead', 'PrepareEpochFence'];

export const listTransactionsHandler = defineHandler({
  apiKey: 66,
  versions: [0, 1],
  async handle(ctx, req) {
    const { services } = ctx;
    const unknownStateFilters = req.stateFilters.filter((s) => !STATES.includes(s));
    try {
      const ids = await services.txns.listIds();
      const pids = req.producerIdFilters.map((p) => Number(p));
      const minDuration = ctx.header.apiVersion >= 1 ? Number(req.durationFilter) : -1;
      const transactionStates = [];
      for (const id of ids.sort()) {
        const coordinator = await services.placement.coordinatorFor(id, 'x');
        if (coordinator.nodeId !== services.nodeId) continue;
        const r = await services.txns.describe(id);
        if (!r) continue;
        if (req.stateFilters.length > 0 && !req.stateFilters.includes(r.state)) continue;
        if (pids.length > 0 && !pids.includes(r.producerId)) continue;
        if (minDuration >= 0 && !(r.state === 'Ongoing' && Date.now() - r.startedAtMs >= minDuration)) continue;
        transactionStates.push({ transactionalId: id, producerId: BigInt(r.producerId), transactionState: r.state });
      }
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, unknownStateFilters, transactionStates };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err), unknownStateFilters, transactionStates: [] };
    }
  },
});
