/**
 * Unit tests of the transaction state machine (src/txn/transaction.ts): every request in
 * every state (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort),
 * every error code it answers, fencing by a newer InitProducerId (epoch bump, KIP-360
 * retries, epoch exhaustion moving to a new producer id), the timeout sweep, and the records
 * and actions each change hands the coordinator. Pure: no Redis, no timers; input records
 * are deep-frozen, so a mutation would throw.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import {
  MAX_PRODUCER_EPOCH,
  addOffsets,
  addPartitions,
  checkProducer,
  checkTransactionTimeout,
  deadlineOf,
  endTxn,
  expire,
  finish,
  initProducerId,
  type AddPartitionsRequest,
  type Change,
  type TxnAction,
  type TxnPartition,
  type TxnRecord,
  type TxnStateName,
} from '../../src/txn/transaction.js';

const NOW = 1_700_000_000_000;
const EARLIER = NOW - 5_000;
const TIMEOUT_MS = 60_000;
const FENCED = ErrorCode.PRODUCER_FENCED;
const PID = 7;
const EPOCH = 3;
const NEW_PID = 1000;

const P0: TxnPartition = { topic: 't', topicId: 'topic-id-t', partition: 0 };
const P1: TxnPartition = { topic: 't', topicId: 'topic-id-t', partition: 1 };
const U0: TxnPartition = { topic: 'u', topicId: 'topic-id-u', partition: 0 };
const TOPIC_T = { topicId: 'topic-id-t', partitionCount: 2 };
const TOPIC_U = { topicId: 'topic-id-u', partitionCount: 1 };

const ALL_STATES: TxnStateName[] = ['Empty', 'Ongoing', 'PrepareCommit', 'PrepareAbort', 'CompleteCommit', 'CompleteAbort'];
const PREPARED: TxnStateName[] = ['PrepareCommit', 'PrepareAbort'];

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A record of producer 7 at epoch 3 (previously epoch 2), frozen. */
function record(over: Partial<TxnRecord> = {}): TxnRecord {
  return deepFreeze({
    producerId: PID,
    producerEpoch: EPOCH,
    lastProducerId: PID,
    lastProducerEpoch: EPOCH - 1,
    timeoutMs: TIMEOUT_MS,
    state: 'Empty' as TxnStateName,
    partitions: [],
    groups: [],
    txnProducerId: PID,
    txnProducerEpoch: EPOCH - 1,
    startedAtMs: EARLIER - 60_000,
    updatedAtMs: EARLIER,
    ...over,
  });
}

/** A record with a transaction open on P0 and P1 and offsets staged for group g, started at EARLIER. */
function inTxn(state: TxnStateName, over: Partial<TxnRecord> = {}): TxnRecord {
  return record({ state, partitions: [P0, P1], groups: ['g'], txnProducerId: PID, txnProducerEpoch: EPOCH, startedAtMs: EARLIER, ...over });
}

/** The record in `state` as a test starting there needs it (open partitions while Ongoing or Prepare*). */
function inState(state: TxnStateName): TxnRecord {
  return state === 'Ongoing' || state === 'PrepareCommit' || state === 'PrepareAbort' ? inTxn(state) : record({ state });
}

function persist(rec: TxnRecord, deadlineMs: number | null): TxnAction {
  return { type: 'persist', record: rec, deadlineMs };
}

function markers(commit: boolean, producerId: number, producerEpoch: number, partitions: TxnPartition[] = [P0, P1]): TxnAction {
  return { type: 'writeMarkers', commit, producerId, producerEpoch, timestampMs: NOW, partitions };
}

function endOffsets(commit: boolean, producerId: number, producerEpoch: number, groupId = 'g'): TxnAction {
  return { type: 'endOffsets', commit, groupId, producerId, producerEpoch };
}

/** The change a step must be, with its record and actions. */
function changeOf<R>(step: { type: string }): Change<R> {
  expect(step.type).toBe('change');
  return step as Change<R>;
}

describe('checkTransactionTimeout', () => {
  it.each([
    [1, ErrorCode.NONE],
    [TIMEOUT_MS, ErrorCode.NONE],
    [TIMEOUT_MS + 1, ErrorCode.INVALID_TRANSACTION_TIMEOUT],
    [0, ErrorCode.INVALID_TRANSACTION_TIMEOUT],
    [-1, ErrorCode.INVALID_TRANSACTION_TIMEOUT],
  ])('a timeout of %i ms with a maximum of 60000 ms is %i', (timeoutMs, code) => {
    expect(checkTransactionTimeout(timeoutMs, TIMEOUT_MS)).toBe(code);
  });
});

describe('checkProducer', () => {
  it.each([
    ['no record', null, PID, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['another producer id', record(), PID + 1, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['an older epoch (a fenced instance)', record(), PID, EPOCH - 1, FENCED],
    ['a newer epoch', record(), PID, EPOCH + 1, ErrorCode.INVALID_PRODUCER_EPOCH],
    ['the current pair', record(), PID, EPOCH, ErrorCode.NONE],
  ])('%s', (_, rec, producerId, producerEpoch, code) => {
    expect(checkProducer(rec, producerId, producerEpoch, FENCED)).toBe(code);
  });

  it('answers a fenced instance with the code its version understands', () => {
    expect(checkProducer(record(), PID, EPOCH - 1, ErrorCode.INVALID_PRODUCER_EPOCH)).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
  });
});

describe('deadlineOf', () => {
  it.each([
    ['Empty', null],
    ['Ongoing', EARLIER + TIMEOUT_MS],
    ['PrepareCommit', NOW],
    ['PrepareAbort', NOW],
    ['CompleteCommit', null],
    ['CompleteAbort', null],
  ] as [TxnStateName, number | null][])('%s: %s', (state, deadline) => {
    expect(deadlineOf(inState(state), NOW)).toBe(deadline);
  });
});

describe('initProducerId', () => {
  const init = { timeoutMs: 30_000, producerId: -1, producerEpoch: -1, fencedCode: FENCED };

  it('a new transactional id asks for a producer id, then registers and persists it at epoch 0', () => {
    expect(initProducerId(null, init, NOW)).toEqual({ type: 'allocateProducerId' });
    const created: TxnRecord = {
      producerId: NEW_PID,
      producerEpoch: 0,
      lastProducerId: -1,
      lastProducerEpoch: -1,
      timeoutMs: 30_000,
      state: 'Empty',
      partitions: [],
      groups: [],
      txnProducerId: -1,
      txnProducerEpoch: -1,
      startedAtMs: 0,
      updatedAtMs: NOW,
    };
    expect(initProducerId(null, { ...init, newProducerId: NEW_PID }, NOW)).toEqual({
      type: 'change',
      reply: { errorCode: ErrorCode.NONE, producerId: NEW_PID, producerEpoch: 0 },
      record: created,
      actions: [{ type: 'register' }, persist(created, null)],
    });
  });

  it('a new transactional id ignores a KIP-360 id and epoch (nothing to check them against)', () => {
    expect(initProducerId(null, { ...init, producerId: 42, producerEpoch: 9 }, NOW)).toEqual({ type: 'allocateProducerId' });
  });

  it.each(PREPARED)('%s: the decided transaction is finished first', (state) => {
    expect(initProducerId(inTxn(state), init, NOW)).toEqual({ type: 'finishPrepared' });
    expect(initProducerId(inTxn(state), { ...init, producerId: 99, producerEpoch: 99 }, NOW)).toEqual({ type: 'finishPrepared' });
  });

  it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: the epoch is bumped and the new timeout kept', (state) => {
    const bumped: TxnRecord = { ...record({ state }), producerEpoch: EPOCH + 1, lastProducerId: PID, lastProducerEpoch: EPOCH, timeoutMs: 30_000, state: 'Empty', updatedAtMs: NOW };
    expect(initProducerId(record({ state }), init, NOW)).toEqual({
      type: 'change',
      reply: { errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: EPOCH + 1 },
      record: bumped,
      actions: [persist(bumped, null)],
    });
  });

  it('Ongoing: fences the previous instance — bumps the epoch, aborts its transaction with markers at the new epoch, then starts Empty', () => {
    const ongoing = inTxn('Ongoing');
    const bumpedBase = { ...ongoing, producerEpoch: EPOCH + 1, lastProducerId: PID, lastProducerEpoch: EPOCH, updatedAtMs: NOW };
    const prepared: TxnRecord = { ...bumpedBase, state: 'PrepareAbort' };
    const aborted: TxnRecord = { ...bumpedBase, state: 'CompleteAbort', partitions: [], groups: [] };
    const empty: TxnRecord = { ...aborted, state: 'Empty', timeoutMs: 30_000 };
    expect(initProducerId(ongoing, init, NOW)).toEqual({
      type: 'change',
      reply: { errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: EPOCH + 1 },
      record: empty,
      actions: [
        persist(prepared, NOW),
        // Markers at the new epoch fence the old instance on each partition; its offsets were
        // staged under the epoch it ran with.
        markers(false, PID, EPOCH + 1),
        endOffsets(false, PID, EPOCH),
        persist(aborted, null),
        persist(empty, null),
      ],
    });
  });

  it('Ongoing without partitions or groups: nothing to write but the records', () => {
    const ongoing = inTxn('Ongoing', { partitions: [], groups: [] });
    const step = changeOf(initProducerId(ongoing, init, NOW));
    expect(step.actions.map((a) => (a.type === 'persist' ? a.record.state : a.type))).toEqual(['PrepareAbort', 'CompleteAbort', 'Empty']);
  });

  describe('KIP-360: a producer naming its id and epoch', () => {
    it.each(['Empty', 'Ongoing', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: the current pair is bumped', (state) => {
      const step = changeOf<{ producerEpoch: number }>(initProducerId(inState(state), { ...init, producerId: PID, producerEpoch: EPOCH }, NOW));
      expect(step.reply).toEqual({ errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: EPOCH + 1 });
      expect(step.record).toMatchObject({ state: 'Empty', producerEpoch: EPOCH + 1, lastProducerEpoch: EPOCH });
    });

    it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: the previous pair (its answer was lost) gets the current pair, unbumped', (state) => {
      expect(initProducerId(record({ state }), { ...init, producerId: PID, producerEpoch: EPOCH - 1 }, NOW)).toEqual({
        type: 'reply',
        reply: { errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: EPOCH },
      });
    });

    it('Ongoing: the previous pair still fences and aborts the transaction', () => {
      const step = changeOf(initProducerId(inTxn('Ongoing'), { ...init, producerId: PID, producerEpoch: EPOCH - 1 }, NOW));
      expect(step.reply).toEqual({ errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: EPOCH + 1 });
      expect(step.actions[1]).toEqual(markers(false, PID, EPOCH + 1));
    });

    it.each([
      ['an unknown producer id', PID + 1, EPOCH],
      ['an epoch older than the previous one', PID, EPOCH - 2],
      ['an epoch newer than the current one', PID, EPOCH + 1],
    ])('%s is fenced, with the code of its version', (_, producerId, producerEpoch) => {
      const fenced = { errorCode: FENCED, producerId: -1, producerEpoch: -1 };
      expect(initProducerId(record(), { ...init, producerId, producerEpoch }, NOW)).toEqual({ type: 'reply', reply: fenced });
      expect(initProducerId(record(), { ...init, producerId, producerEpoch, fencedCode: ErrorCode.INVALID_PRODUCER_EPOCH }, NOW)).toEqual({
        type: 'reply',
        reply: { ...fenced, errorCode: ErrorCode.INVALID_PRODUCER_EPOCH },
      });
    });
  });

  describe('epoch exhaustion', () => {
    it('the last usable epoch moves the id to a new producer id at epoch 0', () => {
      const last = record({ producerEpoch: MAX_PRODUCER_EPOCH });
      expect(initProducerId(last, init, NOW)).toEqual({ type: 'allocateProducerId' });
      const moved: TxnRecord = { ...last, producerId: NEW_PID, producerEpoch: 0, lastProducerId: PID, lastProducerEpoch: MAX_PRODUCER_EPOCH, timeoutMs: 30_000, updatedAtMs: NOW };
      expect(initProducerId(last, { ...init, newProducerId: NEW_PID }, NOW)).toEqual({
        type: 'change',
        reply: { errorCode: ErrorCode.NONE, producerId: NEW_PID, producerEpoch: 0 },
        record: moved,
        actions: [persist(moved, null)],
      });
    });

    it('one epoch before it is still a bump, with no new id', () => {
      const step = changeOf(initProducerId(record({ producerEpoch: MAX_PRODUCER_EPOCH - 1 }), init, NOW));
      expect(step.reply).toEqual({ errorCode: ErrorCode.NONE, producerId: PID, producerEpoch: MAX_PRODUCER_EPOCH });
    });

    it('Ongoing: the old producer id is fenced one epoch up (the int16 maximum), offsets at the epoch it ran with', () => {
      const last = inTxn('Ongoing', { producerEpoch: MAX_PRODUCER_EPOCH, txnProducerEpoch: MAX_PRODUCER_EPOCH });
      const step = changeOf(initProducerId(last, { ...init, newProducerId: NEW_PID }, NOW));
      expect(step.actions.slice(1, 3)).toEqual([markers(false, PID, MAX_PRODUCER_EPOCH + 1), endOffsets(false, PID, MAX_PRODUCER_EPOCH)]);
      expect(step.reply).toEqual({ errorCode: ErrorCode.NONE, producerId: NEW_PID, producerEpoch: 0 });
    });
  });
});

describe('addPartitions', () => {
  const base: AddPartitionsRequest = {
    producerId: PID,
    producerEpoch: EPOCH,
    fencedCode: FENCED,
    partitions: [
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
    ],
    verifyOnly: false,
  };
  const resolved: AddPartitionsRequest = { ...base, topics: [TOPIC_T, TOPIC_T] };

  it.each([
    ['no record', null, PID, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['another producer id', record(), PID + 1, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['a fenced epoch', record(), PID, EPOCH - 1, FENCED],
    ['a newer epoch', record(), PID, EPOCH + 1, ErrorCode.INVALID_PRODUCER_EPOCH],
  ])('%s: every partition gets the error', (_, rec, producerId, producerEpoch, code) => {
    expect(addPartitions(rec, { ...base, producerId, producerEpoch }, NOW)).toEqual({ type: 'reply', reply: [code, code] });
  });

  it.each(PREPARED)('%s: CONCURRENT_TRANSACTIONS until the decided transaction is finished', (state) => {
    expect(addPartitions(inTxn(state), resolved, NOW)).toEqual({ type: 'reply', reply: [ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.CONCURRENT_TRANSACTIONS] });
  });

  it.each(['Empty', 'Ongoing', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: asks for the topics first', (state) => {
    expect(addPartitions(inState(state), base, NOW)).toEqual({ type: 'resolveTopics' });
  });

  it('an unknown topic or partition refuses the whole request: the others are OPERATION_NOT_ATTEMPTED', () => {
    const wanted = [
      { topic: 't', partition: 0 },
      { topic: 'missing', partition: 0 },
      { topic: 't', partition: 2 },
      { topic: 't', partition: -1 },
    ];
    expect(addPartitions(record(), { ...base, partitions: wanted, topics: [TOPIC_T, null, TOPIC_T, TOPIC_T] }, NOW)).toEqual({
      type: 'reply',
      reply: [ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    });
  });

  it('asks to open the producer transaction on the partitions not yet in it', () => {
    expect(addPartitions(record(), resolved, NOW)).toEqual({ type: 'openPartitions', partitions: [P0, P1] });
    expect(addPartitions(inTxn('Ongoing', { partitions: [P0] }), resolved, NOW)).toEqual({ type: 'openPartitions', partitions: [P1] });
    expect(addPartitions(inTxn('Ongoing'), resolved, NOW)).toEqual({ type: 'openPartitions', partitions: [] });
  });

  it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: opened partitions start a transaction (Ongoing) under the current id and epoch', (state) => {
    const rec = record({ state });
    const started: TxnRecord = { ...rec, state: 'Ongoing', partitions: [P0, P1], startedAtMs: NOW, txnProducerId: PID, txnProducerEpoch: EPOCH, updatedAtMs: NOW };
    expect(addPartitions(rec, { ...resolved, opened: [ErrorCode.NONE, ErrorCode.NONE] }, NOW)).toEqual({
      type: 'change',
      reply: [ErrorCode.NONE, ErrorCode.NONE],
      record: started,
      actions: [persist(started, NOW + TIMEOUT_MS)],
    });
  });

  it('Ongoing: adds to the transaction; partitions already in it answer NONE; the start time stays', () => {
    const ongoing = inTxn('Ongoing', { partitions: [P0] });
    const req: AddPartitionsRequest = {
      ...base,
      partitions: [
        { topic: 't', partition: 0 },
        { topic: 'u', partition: 0 },
      ],
      topics: [TOPIC_T, TOPIC_U],
      opened: [ErrorCode.NONE],
    };
    expect(addPartitions(ongoing, { ...req, opened: undefined }, NOW)).toEqual({ type: 'openPartitions', partitions: [U0] });
    const added: TxnRecord = { ...ongoing, partitions: [P0, U0], updatedAtMs: NOW };
    expect(addPartitions(ongoing, req, NOW)).toEqual({ type: 'change', reply: [ErrorCode.NONE, ErrorCode.NONE], record: added, actions: [persist(added, EARLIER + TIMEOUT_MS)] });
  });

  it('keeps only the partitions that opened; a newer epoch on a partition is the fenced code, others pass through', () => {
    const req: AddPartitionsRequest = {
      ...base,
      partitions: [
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1 },
        { topic: 'u', partition: 0 },
      ],
      topics: [TOPIC_T, TOPIC_T, TOPIC_U],
      opened: [ErrorCode.NONE, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.CONCURRENT_TRANSACTIONS],
    };
    const step = changeOf<number[]>(addPartitions(record(), req, NOW));
    expect(step.reply).toEqual([ErrorCode.NONE, FENCED, ErrorCode.CONCURRENT_TRANSACTIONS]);
    expect(step.record).toMatchObject({ state: 'Ongoing', partitions: [P0] });
  });

  it('a transaction starts even when no partition opened (its record is persisted Ongoing)', () => {
    const step = changeOf<number[]>(addPartitions(record(), { ...resolved, opened: [ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.CONCURRENT_TRANSACTIONS] }, NOW));
    expect(step.reply).toEqual([ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.CONCURRENT_TRANSACTIONS]);
    expect(step.record).toMatchObject({ state: 'Ongoing', partitions: [], startedAtMs: NOW });
  });

  describe('verifyOnly (KIP-890 v4)', () => {
    const verify = { ...base, verifyOnly: true };

    it('Ongoing: NONE for partitions in the transaction, INVALID_TXN_STATE for the others', () => {
      expect(addPartitions(inTxn('Ongoing', { partitions: [P0] }), verify, NOW)).toEqual({ type: 'reply', reply: [ErrorCode.NONE, ErrorCode.INVALID_TXN_STATE] });
    });

    it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: INVALID_TXN_STATE for every partition', (state) => {
      expect(addPartitions(record({ state, partitions: [P0, P1] }), verify, NOW)).toEqual({ type: 'reply', reply: [ErrorCode.INVALID_TXN_STATE, ErrorCode.INVALID_TXN_STATE] });
    });

    it.each(PREPARED)('%s: CONCURRENT_TRANSACTIONS', (state) => {
      expect(addPartitions(inTxn(state), verify, NOW)).toEqual({ type: 'reply', reply: [ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.CONCURRENT_TRANSACTIONS] });
    });

    it('a fenced producer is still fenced', () => {
      expect(addPartitions(inTxn('Ongoing'), { ...verify, producerEpoch: EPOCH - 1 }, NOW)).toEqual({ type: 'reply', reply: [FENCED, FENCED] });
    });
  });
});

describe('addOffsets', () => {
  const req = { producerId: PID, producerEpoch: EPOCH, fencedCode: FENCED, groupId: 'g2' };

  it.each([
    ['no record', null, PID, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['another producer id', record(), PID + 1, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['a fenced epoch', record(), PID, EPOCH - 1, FENCED],
    ['a newer epoch', record(), PID, EPOCH + 1, ErrorCode.INVALID_PRODUCER_EPOCH],
  ])('%s', (_, rec, producerId, producerEpoch, code) => {
    expect(addOffsets(rec, { ...req, producerId, producerEpoch }, NOW)).toEqual({ type: 'reply', reply: code });
  });

  it.each(PREPARED)('%s: CONCURRENT_TRANSACTIONS', (state) => {
    expect(addOffsets(inTxn(state), req, NOW)).toEqual({ type: 'reply', reply: ErrorCode.CONCURRENT_TRANSACTIONS });
  });

  it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: starts a transaction holding the group', (state) => {
    const rec = record({ state });
    const started: TxnRecord = { ...rec, state: 'Ongoing', groups: ['g2'], startedAtMs: NOW, txnProducerId: PID, txnProducerEpoch: EPOCH, updatedAtMs: NOW };
    expect(addOffsets(rec, req, NOW)).toEqual({ type: 'change', reply: ErrorCode.NONE, record: started, actions: [persist(started, NOW + TIMEOUT_MS)] });
  });

  it('Ongoing: adds the group once; adding it again changes nothing but is persisted', () => {
    const ongoing = inTxn('Ongoing');
    const added: TxnRecord = { ...ongoing, groups: ['g', 'g2'], updatedAtMs: NOW };
    expect(addOffsets(ongoing, req, NOW)).toEqual({ type: 'change', reply: ErrorCode.NONE, record: added, actions: [persist(added, EARLIER + TIMEOUT_MS)] });
    const again: TxnRecord = { ...ongoing, updatedAtMs: NOW };
    expect(addOffsets(ongoing, { ...req, groupId: 'g' }, NOW)).toEqual({ type: 'change', reply: ErrorCode.NONE, record: again, actions: [persist(again, EARLIER + TIMEOUT_MS)] });
  });
});

describe('endTxn', () => {
  const req = { producerId: PID, producerEpoch: EPOCH, fencedCode: FENCED, commit: true };

  it.each([
    ['no record', null, PID, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['another producer id', inTxn('Ongoing'), PID + 1, EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING],
    ['a fenced epoch', inTxn('Ongoing'), PID, EPOCH - 1, FENCED],
    ['a newer epoch', inTxn('Ongoing'), PID, EPOCH + 1, ErrorCode.INVALID_PRODUCER_EPOCH],
  ])('%s', (_, rec, producerId, producerEpoch, code) => {
    expect(endTxn(rec, { ...req, producerId, producerEpoch }, NOW)).toEqual({ type: 'reply', reply: code });
  });

  it.each([true, false])('Ongoing, commit=%s: persists the decision, writes markers, settles offsets, completes', (commit) => {
    const ongoing = inTxn('Ongoing', { groups: ['g', 'h'] });
    const prepared: TxnRecord = { ...ongoing, state: commit ? 'PrepareCommit' : 'PrepareAbort', updatedAtMs: NOW };
    const completed: TxnRecord = { ...prepared, state: commit ? 'CompleteCommit' : 'CompleteAbort', partitions: [], groups: [] };
    expect(endTxn(ongoing, { ...req, commit }, NOW)).toEqual({
      type: 'change',
      reply: ErrorCode.NONE,
      record: completed,
      actions: [persist(prepared, NOW), markers(commit, PID, EPOCH), endOffsets(commit, PID, EPOCH, 'g'), endOffsets(commit, PID, EPOCH, 'h'), persist(completed, null)],
    });
  });

  // Every state × outcome that answers without a change.
  it.each([
    ['Empty', true, ErrorCode.INVALID_TXN_STATE],
    ['Empty', false, ErrorCode.INVALID_TXN_STATE],
    ['CompleteCommit', true, ErrorCode.NONE],
    ['CompleteCommit', false, ErrorCode.INVALID_TXN_STATE],
    ['CompleteAbort', true, ErrorCode.INVALID_TXN_STATE],
    ['CompleteAbort', false, ErrorCode.NONE],
    ['PrepareCommit', false, ErrorCode.INVALID_TXN_STATE],
    ['PrepareAbort', true, ErrorCode.INVALID_TXN_STATE],
  ] as [TxnStateName, boolean, number][])('%s, commit=%s: %i', (state, commit, code) => {
    expect(endTxn(inState(state), { ...req, commit }, NOW)).toEqual({ type: 'reply', reply: code });
  });

  it.each([
    ['PrepareCommit', true],
    ['PrepareAbort', false],
  ] as [TxnStateName, boolean][])('%s retried with the same outcome: finishes it', (state, commit) => {
    const rec = inTxn(state);
    const completed: TxnRecord = { ...rec, state: commit ? 'CompleteCommit' : 'CompleteAbort', partitions: [], groups: [], updatedAtMs: NOW };
    expect(endTxn(rec, { ...req, commit }, NOW)).toEqual({
      type: 'change',
      reply: ErrorCode.NONE,
      record: completed,
      actions: [markers(commit, PID, EPOCH), endOffsets(commit, PID, EPOCH), persist(completed, null)],
    });
  });

  it('the instance fenced while its transaction was being aborted cannot end it', () => {
    const fenced = inTxn('PrepareAbort', { producerEpoch: EPOCH + 1, lastProducerEpoch: EPOCH });
    expect(endTxn(fenced, { ...req, commit: false }, NOW)).toEqual({ type: 'reply', reply: FENCED });
  });
});

describe('finish', () => {
  it.each(['Empty', 'Ongoing', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: nothing to finish', (state) => {
    expect(finish(inState(state), NOW)).toBeNull();
  });

  it('no record: nothing to finish', () => {
    expect(finish(null, NOW)).toBeNull();
  });

  it.each([
    ['PrepareCommit', true],
    ['PrepareAbort', false],
  ] as [TxnStateName, boolean][])('%s: markers, offsets, then Complete', (state, commit) => {
    const rec = inTxn(state);
    const completed: TxnRecord = { ...rec, state: commit ? 'CompleteCommit' : 'CompleteAbort', partitions: [], groups: [], updatedAtMs: NOW };
    expect(finish(rec, NOW)).toEqual({
      type: 'change',
      reply: null,
      record: completed,
      actions: [markers(commit, PID, EPOCH), endOffsets(commit, PID, EPOCH), persist(completed, null)],
    });
  });

  it('without partitions no markers are written, without groups no offsets settled', () => {
    const rec = inTxn('PrepareCommit', { partitions: [], groups: [] });
    expect(finish(rec, NOW)!.actions).toEqual([persist({ ...rec, state: 'CompleteCommit', updatedAtMs: NOW }, null)]);
  });

  it('after a fencing bump: markers at the producer current epoch, offsets at the epoch the transaction ran with', () => {
    const rec = inTxn('PrepareAbort', { producerEpoch: EPOCH + 1, lastProducerEpoch: EPOCH });
    expect(finish(rec, NOW)!.actions.slice(0, 2)).toEqual([markers(false, PID, EPOCH + 1), endOffsets(false, PID, EPOCH)]);
  });

  it('after a bump to a new producer id: the old id is fenced one epoch above the transaction', () => {
    const rec = inTxn('PrepareAbort', { producerId: NEW_PID, producerEpoch: 0, lastProducerEpoch: MAX_PRODUCER_EPOCH, txnProducerEpoch: MAX_PRODUCER_EPOCH });
    expect(finish(rec, NOW)!.actions.slice(0, 2)).toEqual([markers(false, PID, MAX_PRODUCER_EPOCH + 1), endOffsets(false, PID, MAX_PRODUCER_EPOCH)]);
  });

  it('a record without a transaction id (written before it was kept) uses the producer id and epoch', () => {
    const rec = inTxn('PrepareCommit', { txnProducerId: -1, txnProducerEpoch: -1 });
    expect(finish(rec, NOW)!.actions.slice(0, 2)).toEqual([markers(true, PID, EPOCH), endOffsets(true, PID, EPOCH)]);
  });
});

describe('expire (the timeout sweep)', () => {
  it('no record: nothing to do', () => {
    expect(expire(null, NOW)).toEqual({ type: 'reply', reply: null });
  });

  it.each(['Empty', 'CompleteCommit', 'CompleteAbort'] as TxnStateName[])('%s: nothing to do', (state) => {
    expect(expire(record({ state }), NOW)).toEqual({ type: 'reply', reply: null });
  });

  it.each(PREPARED)('%s: the decided transaction is finished', (state) => {
    expect(expire(inTxn(state), NOW)).toEqual({ type: 'finishPrepared' });
  });

  it('Ongoing before its timeout: nothing to do', () => {
    expect(expire(inTxn('Ongoing', { startedAtMs: NOW - TIMEOUT_MS + 1 }), NOW)).toEqual({ type: 'reply', reply: null });
  });

  it('Ongoing at its timeout: aborted with a bumped epoch, fencing the producer', () => {
    const ongoing = inTxn('Ongoing', { startedAtMs: NOW - TIMEOUT_MS });
    const bumped = { ...ongoing, producerEpoch: EPOCH + 1, lastProducerId: PID, lastProducerEpoch: EPOCH, updatedAtMs: NOW };
    const prepared: TxnRecord = { ...bumped, state: 'PrepareAbort' };
    const aborted: TxnRecord = { ...bumped, state: 'CompleteAbort', partitions: [], groups: [] };
    expect(expire(ongoing, NOW)).toEqual({
      type: 'change',
      reply: null,
      record: aborted,
      actions: [persist(prepared, NOW), markers(false, PID, EPOCH + 1), endOffsets(false, PID, EPOCH), persist(aborted, null)],
    });
  });

  it('Ongoing at the last usable epoch: asks for a producer id, then moves to it', () => {
    const ongoing = inTxn('Ongoing', { producerEpoch: MAX_PRODUCER_EPOCH, txnProducerEpoch: MAX_PRODUCER_EPOCH, startedAtMs: NOW - TIMEOUT_MS });
    expect(expire(ongoing, NOW)).toEqual({ type: 'allocateProducerId' });
    const step = changeOf(expire(ongoing, NOW, NEW_PID));
    expect(step.record).toMatchObject({ state: 'CompleteAbort', producerId: NEW_PID, producerEpoch: 0, lastProducerId: PID, lastProducerEpoch: MAX_PRODUCER_EPOCH });
    expect(step.actions[1]).toEqual(markers(false, PID, MAX_PRODUCER_EPOCH + 1));
  });

  it('the timed-out producer is fenced afterwards', () => {
    const aborted = changeOf(expire(inTxn('Ongoing'), EARLIER + TIMEOUT_MS)).record;
    expect(endTxn(aborted, { producerId: PID, producerEpoch: EPOCH, fencedCode: FENCED, commit: true }, NOW)).toEqual({ type: 'reply', reply: FENCED });
  });
});

describe('a transactional id through its life', () => {
  it('init → add partitions → add offsets → commit → next transaction → fenced by a new instance', () => {
    const fencedCode = FENCED;
    let rec = changeOf(initProducerId(null, { timeoutMs: TIMEOUT_MS, producerId: -1, producerEpoch: -1, fencedCode, newProducerId: NEW_PID }, NOW)).record;
    const producer = { producerId: NEW_PID, producerEpoch: 0, fencedCode };
    const states: TxnStateName[] = [rec.state];

    rec = changeOf(addPartitions(rec, { ...producer, partitions: [{ topic: 't', partition: 0 }], verifyOnly: false, topics: [TOPIC_T], opened: [ErrorCode.NONE] }, NOW)).record;
    states.push(rec.state);
    rec = changeOf(addOffsets(rec, { ...producer, groupId: 'g' }, NOW)).record;
    states.push(rec.state);
    const commit = changeOf(endTxn(rec, { ...producer, commit: true }, NOW));
    expect(commit.actions.map((a) => a.type)).toEqual(['persist', 'writeMarkers', 'endOffsets', 'persist']);
    rec = commit.record;
    states.push(rec.state);

    rec = changeOf(addPartitions(rec, { ...producer, partitions: [{ topic: 't', partition: 1 }], verifyOnly: false, topics: [TOPIC_T], opened: [ErrorCode.NONE] }, NOW + 1)).record;
    states.push(rec.state);
    const fence = changeOf<{ producerEpoch: number }>(initProducerId(rec, { timeoutMs: TIMEOUT_MS, producerId: -1, producerEpoch: -1, fencedCode }, NOW + 2));
    expect(fence.actions.slice(1, 2)).toEqual([{ type: 'writeMarkers', commit: false, producerId: NEW_PID, producerEpoch: 1, timestampMs: NOW + 2, partitions: [P1] }]);
    rec = fence.record;
    states.push(rec.state);

    expect(states).toEqual(['Empty', 'Ongoing', 'Ongoing', 'CompleteCommit', 'Ongoing', 'Empty']);
    expect(addPartitions(rec, { ...producer, partitions: [{ topic: 't', partition: 0 }], verifyOnly: false }, NOW + 3)).toEqual({ type: 'reply', reply: [FENCED] });
  });
});

describe('every state answers every request', () => {
  // The kind of step each request gets in each state, for the current producer.
  const producer = { producerId: PID, producerEpoch: EPOCH, fencedCode: FENCED };
  const table: [TxnStateName, string, string, string, string, string][] = [
    // state,          init,             addPartitions,    addOffsets, endTxn(commit), expire
    ['Empty', 'change', 'resolveTopics', 'change', 'reply', 'reply'],
    ['Ongoing', 'change', 'resolveTopics', 'change', 'change', 'change'],
    ['PrepareCommit', 'finishPrepared', 'reply', 'reply', 'change', 'finishPrepared'],
    ['PrepareAbort', 'finishPrepared', 'reply', 'reply', 'reply', 'finishPrepared'],
    ['CompleteCommit', 'change', 'resolveTopics', 'change', 'reply', 'reply'],
    ['CompleteAbort', 'change', 'resolveTopics', 'change', 'reply', 'reply'],
  ];

  it('covers every state', () => {
    expect(table.map((row) => row[0])).toEqual(ALL_STATES);
  });

  it.each(table)('%s: init %s, addPartitions %s, addOffsets %s, endTxn %s, expire %s', (state, init, add, offsets, end, exp) => {
    const rec = inState(state);
    expect(initProducerId(rec, { timeoutMs: TIMEOUT_MS, producerId: -1, producerEpoch: -1, fencedCode: FENCED }, NOW).type).toBe(init);
    expect(addPartitions(rec, { ...producer, partitions: [{ topic: 't', partition: 0 }], verifyOnly: false }, NOW).type).toBe(add);
    expect(addOffsets(rec, { ...producer, groupId: 'g' }, NOW).type).toBe(offsets);
    expect(endTxn(rec, { ...producer, commit: true }, NOW).type).toBe(end);
    expect(expire(rec, NOW + TIMEOUT_MS).type).toBe(exp);
  });
});
