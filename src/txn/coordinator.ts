/**
 * The transaction coordinator (ARCHITECTURE §9). A transactional id is owned by the broker
 * holding `{x:<id>}:lease`; the owner runs the state machine
 *
 *   Empty → Ongoing → PrepareCommit | PrepareAbort → CompleteCommit | CompleteAbort → (Ongoing …)
 *
 * persisting `{x:<id>}:state` under the lease on every transition. Ending a transaction writes
 * a COMMIT or ABORT marker into every partition of the transaction through the normal ingest
 * and commit path, and commits or drops the offsets staged for its groups; a new owner that
 * finds a Prepare state finishes that work before anything else, and every broker's sweep
 * retries decided-but-unfinished transactions until their markers are written. Transactions
 * open longer than their timeout are aborted (and their producer fenced by an epoch bump) by whichever
 * broker owns them — or, if the owner died, by any broker's sweep.
 *
 * Operations on one transactional id are serialised (a promise chain per id).
 */
import type { Redis } from 'ioredis';
import { ErrorCode } from '../../wire/index.js';
import { ControlRecordType, RecordBatchView, encodeControlBatch } from '../../wire/records/index.js';
import type { BrokerRegistry } from '../cluster/broker-store.js';
import type { TopicStore } from '../cluster/topic-store.js';
import { LeaseClient, type LeaseKeys } from '../coordination/lease.js';
import type { PartitionLog, PartitionRef } from '../log/partition-log.js';
import { ScriptRunner, redisCall } from '../coordination/redis.js';
import { LostLeaseError } from '../errors.js';
import { groupKeys } from '../groups/coordinator.js';
import type { Logger } from '../observability/logger.js';
import type { ProducerIdAllocator } from './producer-ids.js';

export type TxnStateName = 'Empty' | 'Ongoing' | 'PrepareCommit' | 'PrepareAbort' | 'CompleteCommit' | 'CompleteAbort';

/** One transactional id's persisted state. */
export interface TxnRecord {
  producerId: number;
  producerEpoch: number;
  /** The id/epoch before the last bump (KIP-360 lets a producer that missed the answer retry). */
  lastProducerId: number;
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnStateName;
  partitions: { topic: string; topicId: string; partition: number }[];
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
const MAX_EPOCH = 32766;

export const TXNS_SET = '{strata}:txns';
/** Sorted set: transactional id → time its ongoing transaction times out. */
export const TXN_DEADLINES = '{strata}:txn-deadlines';

export function txnKeys(transactionalId: string): LeaseKeys & { state: string } {
  const tag = `{x:${transactionalId}}`;
  return { lease: `${tag}:lease`, fence: `${tag}:fence`, state: `${tag}:state` };
}

interface Owned {
  record: TxnRecord | null;
  leaseValue: string;
  /** Serialises operations on this id. */
  chain: Promise<unknown>;
}

export interface TxnCoordinatorDeps {
  redis: Redis;
  registry: BrokerRegistry;
  topics: TopicStore;
  /** The partition log: transactions are opened there, and markers appended. */
  log: PartitionLog;
  producerIds: ProducerIdAllocator;
  leaseMs: number;
  maxTimeoutMs: number;
  logger: Logger;
}

/** Answers of the coordinator's operations. */
export interface InitResult {
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

export class TransactionCoordinator {
  readonly #d: TxnCoordinatorDeps;
  #lease: LeaseClient | null = null;
  readonly #scripts: ScriptRunner;
  readonly #owned = new Map<string, Owned>();
  readonly #loading = new Map<string, Promise<Owned | number>>();
  #timers: NodeJS.Timeout[] = [];

  constructor(deps: TxnCoordinatorDeps) {
    this.#d = deps;
    this.#scripts = new ScriptRunner(deps.redis);
  }

  start(): void {
    this.#lease = new LeaseClient(this.#d.redis, this.#d.registry.nodeId, this.#d.leaseMs);
    const renew = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#d.leaseMs / 3)));
    const sweep = setInterval(() => void this.#sweepTimeouts(), 1000);
    renew.unref();
    sweep.unref();
    this.#timers = [renew, sweep];
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const [id, o] of [...this.#owned]) {
      this.#owned.delete(id);
      try {
        await o.chain;
        await this.#lease!.release(txnKeys(id).lease, o.leaseValue);
      } catch (err) {
        this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not release a transaction lease; it expires by itself');
      }
    }
  }

  async #renew(): Promise<void> {
    for (const [id, o] of [...this.#owned]) {
      try {
        if (!(await this.#lease!.renew(txnKeys(id).lease, o.leaseValue))) this.#owned.delete(id);
      } catch (err) {
        this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not renew a transaction lease');
      }
    }
  }

  /** Takes ownership (lease + state) of a transactional id, finishing any half-ended transaction. */
  async #own(id: string): Promise<Owned | number> {
    const have = this.#owned.get(id);
    if (have) return have;
    let loading = this.#loading.get(id);
    if (!loading) {
      loading = this.#load(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }

  async #load(id: string): Promise<Owned | number> {
    const keys = txnKeys(id);
    try {
      const acquired = await this.#lease!.acquire(keys);
      if (!acquired.held) {
        const live = this.#d.registry.live().some((b) => b.nodeId === acquired.holder);
        return live ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
      }
      const raw = await this.#d.redis.get(keys.state);
      const owned: Owned = { record: raw ? (JSON.parse(raw) as TxnRecord) : null, leaseValue: acquired.value, chain: Promise.resolve() };
      this.#owned.set(id, owned);
      const r = owned.record;
      if (r && (r.state === 'PrepareCommit' || r.state === 'PrepareAbort')) {
        // The previous owner died while ending this transaction: finish it, as decided.
        owned.chain = this.#complete(id, owned, r.state === 'PrepareCommit').catch((err: unknown) => {
          this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not finish a transaction taken over');
        });
        await owned.chain;
      }
      return owned;
    } catch (err) {
      this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not load transaction state');
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }

  /** Runs `fn` exclusively for `id` (after ownership); maps failures to error codes. */
  async #run<T>(id: string, fail: (code: number) => T, fn: (o: Owned) => Promise<T>): Promise<T> {
    const o = await this.#own(id);
    if (typeof o === 'number') return fail(o);
    const result = o.chain.then(
      () => fn(o),
      () => fn(o),
    );
    o.chain = result.catch(() => undefined);
    try {
      return await result;
    } catch (err) {
      if (err instanceof LostLeaseError) {
        this.#owned.delete(id);
        return fail(ErrorCode.NOT_COORDINATOR);
      }
      this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'transaction operation failed');
      // Clients treat unexpected codes on transactional APIs as fatal; a failure inside the
      // coordinator (storage, Redis) is retriable from the client's side.
      return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    }
  }

  async #save(id: string, o: Owned): Promise<void> {
    const r = o.record!;
    r.updatedAtMs = Date.now();
    await this.#lease!.fencedSet(txnKeys(id).lease, o.leaseValue, txnKeys(id).state, JSON.stringify(r));
    // Ongoing: due at its timeout. Prepare*: due now — the decision is made and its markers
    // must be written even if the client never comes back (the sweep retries until done).
    if (r.state === 'Ongoing') await this.#d.redis.zadd(TXN_DEADLINES, r.startedAtMs + r.timeoutMs, id);
    else if (r.state === 'PrepareCommit' || r.state === 'PrepareAbort') await this.#d.redis.zadd(TXN_DEADLINES, Date.now(), id);
    else await this.#d.redis.zrem(TXN_DEADLINES, id);
  }

  /** Moves the record to Ongoing if it is not already, noting the transaction's id and epoch. */
  #begin(r: TxnRecord): void {
    if (r.state === 'Ongoing') return;
    r.state = 'Ongoing';
    r.startedAtMs = Date.now();
    r.txnProducerId = r.producerId;
    r.txnProducerEpoch = r.producerEpoch;
  }

  /** The error for a request carrying `producerId`/`producerEpoch`, or NONE. */
  #checkProducer(r: TxnRecord | null, producerId: number, producerEpoch: number, fencedCode: number): number {
    if (!r || r.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    if (producerEpoch < r.producerEpoch) return fencedCode;
    if (producerEpoch > r.producerEpoch) return ErrorCode.INVALID_PRODUCER_EPOCH;
    return ErrorCode.NONE;
  }

  #bump(r: TxnRecord, newId: () => Promise<number>): Promise<void> {
    r.lastProducerId = r.producerId;
    r.lastProducerEpoch = r.producerEpoch;
    if (r.producerEpoch + 1 > MAX_EPOCH) {
      return newId().then((pid) => {
        r.producerId = pid;
        r.producerEpoch = 0;
      });
    }
    r.producerEpoch++;
    return Promise.resolve();
  }

  /**
   * InitProducerId with a transactional id: a new producer id, or the existing one with its
   * epoch bumped (fencing older instances); an ongoing transaction of the previous instance is
   * aborted first.
   */
  initProducerId(id: string, timeoutMs: number, producerId: number, producerEpoch: number, fencedCode: number): Promise<InitResult> {
    const fail = (errorCode: number): InitResult => ({ errorCode, producerId: -1, producerEpoch: -1 });
    if (timeoutMs <= 0 || timeoutMs > this.#d.maxTimeoutMs) return Promise.resolve(fail(ErrorCode.INVALID_TRANSACTION_TIMEOUT));
    return this.#run(id, fail, async (o) => {
      let r = o.record;
      if (r && (r.state === 'PrepareCommit' || r.state === 'PrepareAbort')) {
        // The previous instance's transaction is decided: finish it before anything else, and
        // if that cannot be done now, let the client retry (as Kafka does).
        try {
          await this.#complete(id, o, r.state === 'PrepareCommit');
        } catch (err) {
          this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not finish the previous transaction yet');
          return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
        }
      }
      if (r && producerId >= 0) {
        // KIP-360: a producer that names its id/epoch must be the current or previous instance.
        const current = producerId === r.producerId && producerEpoch === r.producerEpoch;
        const previous = producerId === r.lastProducerId && producerEpoch === r.lastProducerEpoch;
        if (!current && !previous) return fail(fencedCode);
        // A retry from the previous epoch (its answer was lost) gets the current pair, unbumped.
        if (previous && !current && r.state !== 'Ongoing') {
          return { errorCode: ErrorCode.NONE, producerId: r.producerId, producerEpoch: r.producerEpoch };
        }
      }
      if (!r) {
        const pid = await this.#d.producerIds.allocate();
        r = {
          producerId: pid,
          producerEpoch: 0,
          lastProducerId: -1,
          lastProducerEpoch: -1,
          timeoutMs,
          state: 'Empty',
          partitions: [],
          groups: [],
          txnProducerId: -1,
          txnProducerEpoch: -1,
          startedAtMs: 0,
          updatedAtMs: 0,
        };
        o.record = r;
        await this.#d.redis.sadd(TXNS_SET, id);
        await this.#save(id, o);
        return { errorCode: ErrorCode.NONE, producerId: pid, producerEpoch: 0 };
      }
      await this.#bump(r, () => this.#d.producerIds.allocate());
      if (r.state === 'Ongoing') {
        // Abort the previous instance's transaction with the new epoch: the markers fence it
        // on every partition it touched.
        r.state = 'PrepareAbort';
        await this.#save(id, o);
        await this.#complete(id, o, false);
      }
      r.timeoutMs = timeoutMs;
      r.state = 'Empty';
      r.partitions = [];
      r.groups = [];
      await this.#save(id, o);
      return { errorCode: ErrorCode.NONE, producerId: r.producerId, producerEpoch: r.producerEpoch };
    });
  }

  /** AddPartitionsToTxn: per partition, an error code. */
  addPartitions(
    id: string,
    producerId: number,
    producerEpoch: number,
    wanted: { topic: string; partition: number }[],
    fencedCode: number,
    verifyOnly = false,
  ): Promise<number[]> {
    const all = (code: number): number[] => wanted.map(() => code);
    return this.#run(id, all, async (o) => {
      const r = o.record;
      const check = this.#checkProducer(r, producerId, producerEpoch, fencedCode);
      if (check !== ErrorCode.NONE) return all(check);
      if (r!.state === 'PrepareCommit' || r!.state === 'PrepareAbort') return all(ErrorCode.CONCURRENT_TRANSACTIONS);
      const has = (t: string, p: number): boolean => r!.partitions.some((x) => x.topic === t && x.partition === p);
      if (verifyOnly) {
        const ongoing = r!.state === 'Ongoing';
        return wanted.map((w) => (ongoing && has(w.topic, w.partition) ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE));
      }
      // Kafka refuses the whole request when any partition is unknown.
      const refs: { topic: string; topicId: string; partition: number }[] = [];
      const codes: number[] = [];
      for (const w of wanted) {
        const t = await this.#d.topics.byName(w.topic);
        if (!t || w.partition < 0 || w.partition >= t.partitions) codes.push(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        else {
          codes.push(ErrorCode.NONE);
          refs.push({ topic: w.topic, topicId: t.topicId, partition: w.partition });
        }
      }
      if (codes.some((c) => c !== ErrorCode.NONE)) return codes.map((c) => (c === ErrorCode.NONE ? ErrorCode.OPERATION_NOT_ATTEMPTED : c));
      const fresh = refs.filter((x) => !has(x.topic, x.partition));
      const opened = await this.#d.log.openTransaction(
        fresh.map((x) => ({ topicId: x.topicId, partition: x.partition })),
        producerId,
        producerEpoch,
      );
      // Record every partition that is now open, even if others failed: the end marker must
      // reach each of them.
      fresh.forEach((x, i) => {
        if (opened[i] === ErrorCode.NONE) r!.partitions.push(x);
      });
      this.#begin(r!);
      await this.#save(id, o);
      const byKey = new Map(fresh.map((x, i) => [`${x.topic}:${x.partition}`, opened[i]!]));
      return wanted.map((w) => {
        const code = byKey.get(`${w.topic}:${w.partition}`) ?? ErrorCode.NONE;
        return code === ErrorCode.INVALID_PRODUCER_EPOCH ? fencedCode : code;
      });
    });
  }

  /** AddOffsetsToTxn: the group's offsets will be committed or dropped with the transaction. */
  addOffsets(id: string, producerId: number, producerEpoch: number, groupId: string, fencedCode: number): Promise<number> {
    return this.#run(
      id,
      (c) => c,
      async (o) => {
        const r = o.record;
        const check = this.#checkProducer(r, producerId, producerEpoch, fencedCode);
        if (check !== ErrorCode.NONE) return check;
        if (r!.state === 'PrepareCommit' || r!.state === 'PrepareAbort') return ErrorCode.CONCURRENT_TRANSACTIONS;
        if (!r!.groups.includes(groupId)) r!.groups.push(groupId);
        this.#begin(r!);
        await this.#save(id, o);
        return ErrorCode.NONE;
      },
    );
  }

  /** EndTxn: commit or abort the ongoing transaction. */
  endTxn(id: string, producerId: number, producerEpoch: number, commit: boolean, fencedCode: number): Promise<number> {
    return this.#run(
      id,
      (c) => c,
      async (o) => {
        const r = o.record;
        const check = this.#checkProducer(r, producerId, producerEpoch, fencedCode);
        if (check !== ErrorCode.NONE) return check;
        switch (r!.state) {
          case 'Ongoing':
            r!.state = commit ? 'PrepareCommit' : 'PrepareAbort';
            await this.#save(id, o);
            await this.#complete(id, o, commit);
            return ErrorCode.NONE;
          case 'CompleteCommit':
            // A retried EndTxn whose answer was lost.
            return commit ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE;
          case 'CompleteAbort':
            return commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE;
          case 'PrepareCommit':
          case 'PrepareAbort':
            // A previous attempt decided but could not finish (e.g. a marker write failed):
            // finish it now if the retry asks for the same outcome.
            if ((r!.state === 'PrepareCommit') !== commit) return ErrorCode.INVALID_TXN_STATE;
            await this.#complete(id, o, commit);
            return ErrorCode.NONE;
          default:
            return ErrorCode.INVALID_TXN_STATE;
        }
      },
    );
  }

  /**
   * Writes the markers and settles staged offsets, then completes. Called with the record
   * already in PrepareCommit/PrepareAbort and persisted, so a crash here is finished by the
   * next owner. Markers go through the ingest buffer and commit script like any batch.
   */
  async #complete(id: string, o: Owned, commit: boolean): Promise<void> {
    const r = o.record!;
    const timestamp = Date.now();
    const log = this.#d.log;
    // Markers carry the transaction's producer id; their epoch is the producer's current one,
    // which after a fencing bump is higher and so fences the old instance on the partition.
    // (Should the bump have moved to a new producer id, the old id is fenced one epoch up.)
    const markerPid = r.txnProducerId >= 0 ? r.txnProducerId : r.producerId;
    const markerEpoch = markerPid === r.producerId ? r.producerEpoch : r.txnProducerEpoch + 1;
    const appended = r.partitions.map((p) => {
      const bytes = encodeControlBatch({
        type: commit ? ControlRecordType.COMMIT : ControlRecordType.ABORT,
        coordinatorEpoch: 0,
        producerId: markerPid,
        producerEpoch: markerEpoch,
        timestamp,
      });
      const ref: PartitionRef = { topicId: p.topicId, partition: p.partition };
      return log.append(ref, [new RecordBatchView(bytes)]).then((outcome) => outcome.results[0]!.errorCode);
    });
    // Markers hold up the transaction's readers (the LSO): write them now, not at flush.ms.
    if (appended.length > 0) log.flushSoon();
    const results = await Promise.all(appended);
    const failed = results.find((c) => c !== ErrorCode.NONE);
    if (failed !== undefined) throw new Error(`a transaction marker was refused with error ${failed}`);
    for (const groupId of r.groups) {
      const g = groupKeys(groupId);
      const staged = g.staged(markerPid, r.txnProducerEpoch >= 0 ? r.txnProducerEpoch : r.producerEpoch);
      await this.#scripts.run({ script: 'txn-offsets-end', keys: [g.offsets, staged, g.pending], args: [markerPid, commit ? 1 : 0] });
    }
    r.state = commit ? 'CompleteCommit' : 'CompleteAbort';
    r.partitions = [];
    r.groups = [];
    await this.#save(id, o);
    this.#d.logger.debug({ transactionalId: id, commit }, 'transaction ended');
  }

  /**
   * Aborts transactions past their timeout: those this broker owns, and those whose owner is
   * gone (any broker may take them over). The producer's epoch is bumped so that its late
   * requests are fenced, as Kafka does.
   */
  async #sweepTimeouts(): Promise<void> {
    let due: string[];
    try {
      due = await this.#d.redis.zrangebyscore(TXN_DEADLINES, '-inf', Date.now(), 'LIMIT', 0, 20);
    } catch {
      return; // Redis unavailable: the next sweep tries again.
    }
    for (const id of due) {
      await this.#run(
        id,
        () => undefined,
        async (o) => {
          const r = o.record;
          if (r && (r.state === 'PrepareCommit' || r.state === 'PrepareAbort')) {
            try {
              await this.#complete(id, o, r.state === 'PrepareCommit');
            } catch (err) {
              // Try again in a second (the deadline entry stays due).
              await this.#d.redis.zadd(TXN_DEADLINES, Date.now() + 1000, id);
              throw err;
            }
            return;
          }
          if (!r || r.state !== 'Ongoing' || Date.now() < r.startedAtMs + r.timeoutMs) return;
          this.#d.logger.info({ transactionalId: id, producerId: r.producerId }, 'transaction timed out; aborting it');
          await this.#bump(r, () => this.#d.producerIds.allocate());
          r.state = 'PrepareAbort';
          await this.#save(id, o);
          await this.#complete(id, o, false);
        },
      );
    }
  }

  /** The persisted state of a transactional id (any broker may read it), or null. */
  async describe(id: string): Promise<TxnRecord | null> {
    const raw = await redisCall('read transaction', () => this.#d.redis.get(txnKeys(id).state));
    return raw ? (JSON.parse(raw) as TxnRecord) : null;
  }

  /** All transactional ids known to the cluster. */
  async listIds(): Promise<string[]> {
    return redisCall('list transactions', () => this.#d.redis.smembers(TXNS_SET));
  }
}
