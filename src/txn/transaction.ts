/**
 * One transactional id's state machine (docs/architecture.md §7), as Kafka's transaction
 * coordinator runs it:
 *
 *   Empty → Ongoing → PrepareCommit | PrepareAbort → CompleteCommit | CompleteAbort → (Ongoing …)
 *
 * Each request is a function of the persisted record, the request and the time. It answers
 * with a step: a reply that changes nothing, a change (the new record, the I/O the
 * coordinator performs in order, and the reply once that I/O succeeded), or a question only
 * I/O can answer — a producer id to allocate, topic ids to look up, partitions to open, a
 * decided transaction to finish first. The coordinator answers the question and applies the
 * same request again with the answer attached; operations on one id are serialised, so the
 * record cannot change in between.
 *
 * Pure: no timers, no Redis, no clock. The coordinator (coordinator.ts) owns the id, runs the
 * actions and keeps the record the last `persist` action carried.
 */
import { ErrorCode } from '../../wire/index.js';

export type TxnStateName = 'Empty' | 'Ongoing' | 'PrepareCommit' | 'PrepareAbort' | 'CompleteCommit' | 'CompleteAbort';

/** A partition of the open transaction. */
export interface TxnPartition {
  topic: string;
  topicId: string;
  partition: number;
}

/** One transactional id's persisted state (JSON in `{x:<id>}:state`). Never mutated here. */
export interface TxnRecord {
  producerId: number;
  producerEpoch: number;
  /** The id/epoch before the last bump (KIP-360 lets a producer that missed the answer retry). */
  lastProducerId: number;
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnStateName;
  partitions: TxnPartition[];
  groups: string[];
  /**
   * The producer id and epoch the open transaction runs under (set when it starts). Fencing
   * bumps the producer's epoch before the transaction is aborted; staged offsets and the
   * partitions' open entries still belong to this pair.
   */
  txnProducerId: number;
  txnProducerEpoch: number;
  startedAtMs: number;
  updatedAtMs: number;
}

/** The int16 epoch stops one short of its maximum, leaving room for a fencing bump. */
export const MAX_PRODUCER_EPOCH = 32766;

/**
 * One piece of I/O a change needs, performed in order; when one fails, the rest are not
 * performed (a later request, the next owner or the timeout sweep finishes the work).
 */
export type TxnAction =
  /** Add the id to the cluster's list of transactional ids (a new id). */
  | { type: 'register' }
  /**
   * Keep `record` as the id's state and write it under the lease, with the id's entry in the
   * deadline set at `deadlineMs` (null: no entry).
   */
  | { type: 'persist'; record: TxnRecord; deadlineMs: number | null }
  /** Append a COMMIT or ABORT control batch to every partition; each must be accepted. */
  | { type: 'writeMarkers'; commit: boolean; producerId: number; producerEpoch: number; timestampMs: number; partitions: TxnPartition[] }
  /** Make the group materialise (commit) or drop (abort) the offsets this producer staged. */
  | { type: 'endOffsets'; commit: boolean; groupId: string; producerId: number; producerEpoch: number };

/** A step that changes nothing: answer `reply`. */
export interface Reply<R> {
  type: 'reply';
  reply: R;
}

/** A step that changes the record: perform `actions`, then answer `reply`. */
export interface Change<R> {
  type: 'change';
  reply: R;
  /** The record once every action succeeded (the last `persist` action's). */
  record: TxnRecord;
  actions: TxnAction[];
}

/** The record is PrepareCommit or PrepareAbort: run {@link finish} first, then apply the request again. */
export interface FinishPrepared {
  type: 'finishPrepared';
}

/** A producer id is needed: allocate one and apply the request again with it. */
export interface AllocateProducerId {
  type: 'allocateProducerId';
}

/** Look up every requested partition's topic and apply the request again with them. */
export interface ResolveTopics {
  type: 'resolveTopics';
}

/** Open the producer's transaction on `partitions` and apply the request again with the outcomes. */
export interface OpenPartitions {
  type: 'openPartitions';
  partitions: TxnPartition[];
}

/** The answer of InitProducerId. */
export interface InitResult {
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

/** InitProducerId with a transactional id. */
export interface InitProducerIdRequest {
  timeoutMs: number;
  /** KIP-360 (v3+): the producer's current id and epoch, or -1. */
  producerId: number;
  producerEpoch: number;
  /** What a fenced producer is told at its version: PRODUCER_FENCED or INVALID_PRODUCER_EPOCH. */
  fencedCode: number;
  /** The id allocated after an {@link AllocateProducerId} step. */
  newProducerId?: number;
}

/** AddPartitionsToTxn for one transactional id. */
export interface AddPartitionsRequest {
  producerId: number;
  producerEpoch: number;
  fencedCode: number;
  partitions: { topic: string; partition: number }[];
  /** KIP-890 v4: only check that the partitions are in the ongoing transaction. */
  verifyOnly: boolean;
  /** After {@link ResolveTopics}: per requested partition, its topic, or null when unknown. */
  topics?: ({ topicId: string; partitionCount: number } | null)[];
  /** After {@link OpenPartitions}: the partition log's code per partition it named. */
  opened?: number[];
}

/** AddOffsetsToTxn. */
export interface AddOffsetsRequest {
  producerId: number;
  producerEpoch: number;
  fencedCode: number;
  groupId: string;
}

/** EndTxn. */
export interface EndTxnRequest {
  producerId: number;
  producerEpoch: number;
  fencedCode: number;
  commit: boolean;
}

export type InitStep = Reply<InitResult> | Change<InitResult> | FinishPrepared | AllocateProducerId;
export type AddPartitionsStep = Reply<number[]> | Change<number[]> | ResolveTopics | OpenPartitions;
export type ExpireStep = Reply<null> | Change<null> | FinishPrepared | AllocateProducerId;

const isPrepared = (r: TxnRecord): boolean => r.state === 'PrepareCommit' || r.state === 'PrepareAbort';

/** INVALID_TRANSACTION_TIMEOUT unless `timeoutMs` is in (0, maxTimeoutMs]; else NONE. */
export function checkTransactionTimeout(timeoutMs: number, maxTimeoutMs: number): number {
  return timeoutMs <= 0 || timeoutMs > maxTimeoutMs ? ErrorCode.INVALID_TRANSACTION_TIMEOUT : ErrorCode.NONE;
}

/** The error for a request carrying `producerId`/`producerEpoch`, or NONE. */
export function checkProducer(r: TxnRecord | null, producerId: number, producerEpoch: number, fencedCode: number): number {
  if (!r || r.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
  if (producerEpoch < r.producerEpoch) return fencedCode;
  if (producerEpoch > r.producerEpoch) return ErrorCode.INVALID_PRODUCER_EPOCH;
  return ErrorCode.NONE;
}

/**
 * When the coordinator must next act on the record (its entry in the deadline set), or null.
 * Ongoing: at its timeout. Prepare*: now — the decision is made and its markers must be
 * written even if the client never comes back (the sweep retries until done).
 */
export function deadlineOf(r: TxnRecord, nowMs: number): number | null {
  if (r.state === 'Ongoing') return r.startedAtMs + r.timeoutMs;
  if (isPrepared(r)) return nowMs;
  return null;
}

function persist(record: TxnRecord, nowMs: number): TxnAction {
  return { type: 'persist', record, deadlineMs: deadlineOf(record, nowMs) };
}

/** The record with its epoch bumped (a new id at epoch 0 once the epoch is exhausted); null if that needs an id not given. */
function bump(r: TxnRecord, newProducerId: number | undefined): TxnRecord | null {
  const last = { lastProducerId: r.producerId, lastProducerEpoch: r.producerEpoch };
  if (r.producerEpoch + 1 > MAX_PRODUCER_EPOCH) {
    if (newProducerId === undefined) return null;
    return { ...r, ...last, producerId: newProducerId, producerEpoch: 0 };
  }
  return { ...r, ...last, producerEpoch: r.producerEpoch + 1 };
}

/** The record moved to Ongoing if it is not already, noting the transaction's id and epoch. */
function begin(r: TxnRecord, nowMs: number): TxnRecord {
  if (r.state === 'Ongoing') return r;
  return { ...r, state: 'Ongoing', startedAtMs: nowMs, txnProducerId: r.producerId, txnProducerEpoch: r.producerEpoch };
}

/**
 * The actions that finish a decided transaction (`r` is PrepareCommit/PrepareAbort and
 * persisted, so a crash part-way is finished by the next owner): markers, then the groups'
 * staged offsets, then the Complete state.
 */
function finishActions(r: TxnRecord, nowMs: number): { record: TxnRecord; actions: TxnAction[] } {
  const commit = r.state === 'PrepareCommit';
  // Markers carry the transaction's producer id; their epoch is the producer's current one,
  // which after a fencing bump is higher and so fences the old instance on the partition.
  // (Should the bump have moved to a new producer id, the old id is fenced one epoch up.)
  const markerPid = r.txnProducerId >= 0 ? r.txnProducerId : r.producerId;
  const markerEpoch = markerPid === r.producerId ? r.producerEpoch : r.txnProducerEpoch + 1;
  // Offsets were staged under the epoch the transaction ran with, before any fencing bump.
  const stagedEpoch = r.txnProducerEpoch >= 0 ? r.txnProducerEpoch : r.producerEpoch;
  const actions: TxnAction[] = [];
  if (r.partitions.length > 0) {
    actions.push({ type: 'writeMarkers', commit, producerId: markerPid, producerEpoch: markerEpoch, timestampMs: nowMs, partitions: r.partitions });
  }
  for (const groupId of r.groups) actions.push({ type: 'endOffsets', commit, groupId, producerId: markerPid, producerEpoch: stagedEpoch });
  const record: TxnRecord = { ...r, state: commit ? 'CompleteCommit' : 'CompleteAbort', partitions: [], groups: [], updatedAtMs: nowMs };
  actions.push(persist(record, nowMs));
  return { record, actions };
}

/**
 * Finishes a decided transaction: a record in PrepareCommit or PrepareAbort goes to
 * CompleteCommit/CompleteAbort once its markers are written and its groups' staged offsets
 * settled. Null for any other state (nothing to finish).
 */
export function finish(r: TxnRecord | null, nowMs: number): Change<null> | null {
  if (!r || !isPrepared(r)) return null;
  return { type: 'change', reply: null, ...finishActions(r, nowMs) };
}

/** The actions that abort `bumped`'s ongoing transaction with its new epoch; the record ends CompleteAbort. */
function abortOngoing(bumped: TxnRecord, nowMs: number): { record: TxnRecord; actions: TxnAction[] } {
  const prepared: TxnRecord = { ...bumped, state: 'PrepareAbort', updatedAtMs: nowMs };
  const finished = finishActions(prepared, nowMs);
  return { record: finished.record, actions: [persist(prepared, nowMs), ...finished.actions] };
}

/**
 * InitProducerId with a transactional id: a new producer id at epoch 0, or the existing one
 * with its epoch bumped (fencing older instances; a new id once the epoch is exhausted). An
 * ongoing transaction of the previous instance is aborted with the new epoch, whose markers
 * fence it on every partition it touched. A decided transaction is finished first.
 * (The timeout is checked before, with {@link checkTransactionTimeout}.)
 */
export function initProducerId(r: TxnRecord | null, req: InitProducerIdRequest, nowMs: number): InitStep {
  if (r && isPrepared(r)) return { type: 'finishPrepared' };
  if (r && req.producerId >= 0) {
    // KIP-360: a producer that names its id/epoch must be the current or previous instance.
    const current = req.producerId === r.producerId && req.producerEpoch === r.producerEpoch;
    const previous = req.producerId === r.lastProducerId && req.producerEpoch === r.lastProducerEpoch;
    if (!current && !previous) return { type: 'reply', reply: { errorCode: req.fencedCode, producerId: -1, producerEpoch: -1 } };
    // A retry from the previous epoch (its answer was lost) gets the current pair, unbumped.
    if (previous && !current && r.state !== 'Ongoing') {
      return { type: 'reply', reply: { errorCode: ErrorCode.NONE, producerId: r.producerId, producerEpoch: r.producerEpoch } };
    }
  }
  if (!r) {
    if (req.newProducerId === undefined) return { type: 'allocateProducerId' };
    const record: TxnRecord = {
      producerId: req.newProducerId,
      producerEpoch: 0,
      lastProducerId: -1,
      lastProducerEpoch: -1,
      timeoutMs: req.timeoutMs,
      state: 'Empty',
      partitions: [],
      groups: [],
      txnProducerId: -1,
      txnProducerEpoch: -1,
      startedAtMs: 0,
      updatedAtMs: nowMs,
    };
    return { type: 'change', reply: { errorCode: ErrorCode.NONE, producerId: req.newProducerId, producerEpoch: 0 }, record, actions: [{ type: 'register' }, persist(record, nowMs)] };
  }
  const bumped = bump(r, req.newProducerId);
  if (bumped === null) return { type: 'allocateProducerId' };
  const actions: TxnAction[] = [];
  let base = bumped;
  if (r.state === 'Ongoing') {
    const aborted = abortOngoing(bumped, nowMs);
    actions.push(...aborted.actions);
    base = aborted.record;
  }
  const record: TxnRecord = { ...base, timeoutMs: req.timeoutMs, state: 'Empty', partitions: [], groups: [], updatedAtMs: nowMs };
  actions.push(persist(record, nowMs));
  return { type: 'change', reply: { errorCode: ErrorCode.NONE, producerId: record.producerId, producerEpoch: record.producerEpoch }, record, actions };
}

/**
 * AddPartitionsToTxn: per requested partition, an error code. Adding a partition opens the
 * producer's transaction there (the commit script then accepts its transactional batches);
 * the transaction becomes Ongoing. Kafka refuses the whole request when any partition is
 * unknown: the others are OPERATION_NOT_ATTEMPTED.
 */
export function addPartitions(r: TxnRecord | null, req: AddPartitionsRequest, nowMs: number): AddPartitionsStep {
  const all = (code: number): Reply<number[]> => ({ type: 'reply', reply: req.partitions.map(() => code) });
  const check = checkProducer(r, req.producerId, req.producerEpoch, req.fencedCode);
  if (check !== ErrorCode.NONE) return all(check);
  const rec = r!;
  if (isPrepared(rec)) return all(ErrorCode.CONCURRENT_TRANSACTIONS);
  const has = (t: string, p: number): boolean => rec.partitions.some((x) => x.topic === t && x.partition === p);
  if (req.verifyOnly) {
    const ongoing = rec.state === 'Ongoing';
    return { type: 'reply', reply: req.partitions.map((w) => (ongoing && has(w.topic, w.partition) ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE)) };
  }
  if (req.topics === undefined) return { type: 'resolveTopics' };
  const refs: TxnPartition[] = [];
  const codes = req.partitions.map((w, i) => {
    const t = req.topics![i];
    if (!t || w.partition < 0 || w.partition >= t.partitionCount) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    refs.push({ topic: w.topic, topicId: t.topicId, partition: w.partition });
    return ErrorCode.NONE;
  });
  if (codes.some((c) => c !== ErrorCode.NONE)) return { type: 'reply', reply: codes.map((c) => (c === ErrorCode.NONE ? ErrorCode.OPERATION_NOT_ATTEMPTED : c)) };
  const fresh = refs.filter((x) => !has(x.topic, x.partition));
  if (req.opened === undefined) return { type: 'openPartitions', partitions: fresh };
  const opened = req.opened;
  // Record every partition that is now open, even if others failed: the end marker must
  // reach each of them.
  const added = fresh.filter((_, i) => opened[i] === ErrorCode.NONE);
  const record: TxnRecord = { ...begin(rec, nowMs), updatedAtMs: nowMs };
  record.partitions = [...rec.partitions, ...added];
  const byKey = new Map(fresh.map((x, i) => [`${x.topic}:${x.partition}`, opened[i]!]));
  const reply = req.partitions.map((w) => {
    const code = byKey.get(`${w.topic}:${w.partition}`) ?? ErrorCode.NONE;
    return code === ErrorCode.INVALID_PRODUCER_EPOCH ? req.fencedCode : code;
  });
  return { type: 'change', reply, record, actions: [persist(record, nowMs)] };
}

/** AddOffsetsToTxn: the group's staged offsets will be committed or dropped with the transaction. */
export function addOffsets(r: TxnRecord | null, req: AddOffsetsRequest, nowMs: number): Reply<number> | Change<number> {
  const check = checkProducer(r, req.producerId, req.producerEpoch, req.fencedCode);
  if (check !== ErrorCode.NONE) return { type: 'reply', reply: check };
  const rec = r!;
  if (isPrepared(rec)) return { type: 'reply', reply: ErrorCode.CONCURRENT_TRANSACTIONS };
  const record: TxnRecord = { ...begin(rec, nowMs), updatedAtMs: nowMs };
  if (!rec.groups.includes(req.groupId)) record.groups = [...rec.groups, req.groupId];
  return { type: 'change', reply: ErrorCode.NONE, record, actions: [persist(record, nowMs)] };
}

/**
 * EndTxn: commits or aborts the ongoing transaction (PrepareCommit/PrepareAbort, persisted
 * before any marker is written, then finished). A retry whose answer was lost is answered
 * NONE when it asks for the outcome already reached, and finishes a decided transaction a
 * failed attempt left behind.
 */
export function endTxn(r: TxnRecord | null, req: EndTxnRequest, nowMs: number): Reply<number> | Change<number> {
  const check = checkProducer(r, req.producerId, req.producerEpoch, req.fencedCode);
  if (check !== ErrorCode.NONE) return { type: 'reply', reply: check };
  const rec = r!;
  const reply = (code: number): Reply<number> => ({ type: 'reply', reply: code });
  switch (rec.state) {
    case 'Ongoing': {
      const prepared: TxnRecord = { ...rec, state: req.commit ? 'PrepareCommit' : 'PrepareAbort', updatedAtMs: nowMs };
      const finished = finishActions(prepared, nowMs);
      return { type: 'change', reply: ErrorCode.NONE, record: finished.record, actions: [persist(prepared, nowMs), ...finished.actions] };
    }
    case 'CompleteCommit':
      return reply(req.commit ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE);
    case 'CompleteAbort':
      return reply(req.commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE);
    case 'PrepareCommit':
    case 'PrepareAbort': {
      // A previous attempt decided but could not finish (e.g. a marker write failed): finish
      // it now if the retry asks for the same outcome.
      if ((rec.state === 'PrepareCommit') !== req.commit) return reply(ErrorCode.INVALID_TXN_STATE);
      return { type: 'change', reply: ErrorCode.NONE, ...finishActions(rec, nowMs) };
    }
    case 'Empty':
      return reply(ErrorCode.INVALID_TXN_STATE);
  }
}

/**
 * The timeout sweep's look at an id: a decided transaction is finished; an ongoing one past
 * `transaction.timeout.ms` is aborted with a bumped epoch, so that its producer's late
 * requests are fenced, as Kafka does. Anything else is left alone.
 */
export function expire(r: TxnRecord | null, nowMs: number, newProducerId?: number): ExpireStep {
  if (r && isPrepared(r)) return { type: 'finishPrepared' };
  if (!r || r.state !== 'Ongoing' || nowMs < r.startedAtMs + r.timeoutMs) return { type: 'reply', reply: null };
  const bumped = bump(r, newProducerId);
  if (bumped === null) return { type: 'allocateProducerId' };
  return { type: 'change', reply: null, ...abortOngoing(bumped, nowMs) };
}
