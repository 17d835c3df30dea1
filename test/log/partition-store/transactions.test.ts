/**
 * The partition side of transactions, against a real redis-server: opening a transaction on a
 * partition, the server-side check of transactional batches, markers, the aborted index and
 * the LSO.
 */
import { describe, expect, it } from 'vitest';
import type { BatchCommitInput, PartitionRef, PartitionStore } from '../../../src/log/partition-store.js';
import { ErrorCode } from '../../../wire/index.js';
import { freshPartition, withPartitionStore, idem, plain } from '../../helpers/partition-store.js';

let state: PartitionStore;
withPartitionStore((env) => ({ state } = env));

const TRANSACTIONAL = 1;
const CONTROL = 2;
const ABORT = 4;

async function commitOne(ref: PartitionRef, batches: BatchCommitInput[]) {
  const [result] = await state.commit('data/t.seg', [{ ref, batches }]);
  return result!;
}

function txnBatch(pid: number, epoch: number, seq: number, records: number): BatchCommitInput {
  return { ...idem(0, 10, records - 1, pid, epoch, seq), flags: TRANSACTIONAL };
}

function marker(pid: number, epoch: number, abort: boolean): BatchCommitInput {
  return { ...idem(0, 10, 0, pid, epoch, -1), flags: TRANSACTIONAL | CONTROL | (abort ? ABORT : 0) };
}

async function offsets(ref: PartitionRef) {
  const [o] = await state.offsets([ref]);
  return o!;
}

describe('transactions on a partition', () => {
  it('refuses a transactional batch whose producer has not opened a transaction here', async () => {
    const ref = freshPartition();
    const r = await commitOne(ref, [txnBatch(7001, 0, 0, 2)]);
    expect(r.results).toEqual([{ errorCode: ErrorCode.INVALID_TXN_STATE, baseOffset: -1, duplicate: false }]);
    expect(r.hw).toBe(0);
  });

  it('holds the LSO at the first offset of an open transaction until its commit marker', async () => {
    const ref = freshPartition();
    await commitOne(ref, [plain(0, 10, 1)]); // offsets 0-1, non-transactional
    expect(await state.openTransaction([ref], 7002, 3)).toEqual([ErrorCode.NONE]);
    expect(await offsets(ref)).toEqual({ hw: 2, logStart: 0, lso: 2 });
    await commitOne(ref, [txnBatch(7002, 3, 0, 3)]); // offsets 2-4
    await commitOne(ref, [plain(0, 10, 0)]); // offset 5
    expect(await offsets(ref)).toEqual({ hw: 6, logStart: 0, lso: 2 });
    expect(await state.openTransactions(ref)).toEqual([{ producerId: 7002, epoch: 3, firstOffset: 2 }]);
    const m = await commitOne(ref, [marker(7002, 3, false)]); // offset 6
    expect(m.results).toEqual([{ errorCode: ErrorCode.NONE, baseOffset: 6, duplicate: false }]);
    expect(await offsets(ref)).toEqual({ hw: 7, logStart: 0, lso: 7 });
    expect(await state.openTransactions(ref)).toEqual([]);
    expect(await state.abortedTransactions(ref, 0, 7)).toEqual([]);
  });

  it('records an aborted transaction and returns it for overlapping fetch ranges only', async () => {
    const ref = freshPartition();
    await state.openTransaction([ref], 7003, 0);
    await commitOne(ref, [txnBatch(7003, 0, 0, 2)]); // 0-1
    await commitOne(ref, [marker(7003, 0, true)]); // abort marker at 2
    await commitOne(ref, [plain(0, 10, 1)]); // 3-4
    expect(await offsets(ref)).toEqual({ hw: 5, logStart: 0, lso: 5 });
    expect(await state.abortedTransactions(ref, 0, 5)).toEqual([{ producerId: 7003, firstOffset: 0 }]);
    expect(await state.abortedTransactions(ref, 2, 5)).toEqual([{ producerId: 7003, firstOffset: 0 }]);
    // A fetch starting after the marker does not need the entry.
    expect(await state.abortedTransactions(ref, 3, 5)).toEqual([]);
  });

  it('keeps the LSO at the oldest of several open transactions', async () => {
    const ref = freshPartition();
    await state.openTransaction([ref], 7004, 0);
    await state.openTransaction([ref], 7005, 0);
    await commitOne(ref, [txnBatch(7004, 0, 0, 1)]); // 0
    await commitOne(ref, [txnBatch(7005, 0, 0, 1)]); // 1
    expect((await offsets(ref)).lso).toBe(0);
    await commitOne(ref, [marker(7004, 0, false)]); // 2
    expect((await offsets(ref)).lso).toBe(1);
    await commitOne(ref, [marker(7005, 0, true)]); // 3
    expect(await offsets(ref)).toEqual({ hw: 4, logStart: 0, lso: 4 });
  });

  it('fences a zombie: a marker with a newer epoch rejects the old epoch on this partition', async () => {
    const ref = freshPartition();
    await state.openTransaction([ref], 7006, 1);
    await commitOne(ref, [txnBatch(7006, 1, 0, 1)]);
    // The coordinator aborts the transaction with a bumped epoch (a new producer instance).
    await commitOne(ref, [marker(7006, 2, true)]);
    const zombie = await commitOne(ref, [txnBatch(7006, 1, 1, 1)]);
    expect(zombie.results[0]!.errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    expect(await state.openTransaction([ref], 7006, 1)).toEqual([ErrorCode.INVALID_PRODUCER_EPOCH]);
    expect(await state.openTransaction([ref], 7006, 2)).toEqual([ErrorCode.NONE]);
  });

  it('refuses to open a new epoch while the older epoch’s transaction is still open', async () => {
    const ref = freshPartition();
    await state.openTransaction([ref], 7007, 0);
    expect(await state.openTransaction([ref], 7007, 1)).toEqual([ErrorCode.CONCURRENT_TRANSACTIONS]);
    expect(await state.openTransaction([ref], 7007, 0)).toEqual([ErrorCode.NONE]);
  });
});
