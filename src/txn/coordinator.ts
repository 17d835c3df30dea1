/**
 * The transaction coordinator (docs/architecture.md §7): ownership and I/O around the state
 * machine of transaction.ts. A transactional id is owned by the broker holding
 * `{x:<id>}:lease` (coordination/lease-owner.ts); the owner applies each request to the
 * id's record and performs what the machine asks — persisting the record under the lease
 * (txn-store.ts), writing COMMIT or ABORT markers through the partition log, having the groups
 * side settle staged offsets, allocating producer ids.
 *
 * A new owner that finds a decided (Prepare*) transaction finishes it before anything else,
 * and every broker's sweep retries decided-but-unfinished transactions until their markers
 * are written. Transactions open longer than their timeout are aborted (and their producer
 * fenced by an epoch bump) by whichever broker owns them — or, if the owner died, by any
 * broker's sweep.
 *
 * Operations on one transactional id are serialised (a promise chain per id).
 */
import { ErrorCode } from '../../wire/index.js';
import { ControlRecordType, RecordBatchView, encodeControlBatch } from '../../wire/records/index.js';
import type { BrokerRegistry } from '../cluster/broker-store.js';
import type { TopicStore } from '../cluster/topic-store.js';
import { txnKeys } from '../coordination/keys.js';
import type { LeaseClient } from '../coordination/lease.js';
import { LeaseOwner, type Loaded } from '../coordination/lease-owner.js';
import { LostLeaseError } from '../errors.js';
import type { PartitionLog } from '../log/partition-log.js';
import type { Logger } from '../observability/logger.js';
import type { ProducerIdAllocator } from './producer-id-store.js';
import {
  addOffsets,
  addPartitions,
  checkTransactionTimeout,
  endTxn,
  expire,
  finish,
  initProducerId,
  type AddPartitionsRequest,
  type InitProducerIdRequest,
  type InitResult,
  type TxnAction,
  type TxnRecord,
} from './transaction.js';
import type { TxnStore } from './txn-store.js';

/** How often every broker looks for transactions past their deadline. */
const SWEEP_INTERVAL_MS = 1000;
/** Transactions looked at per sweep. */
const SWEEP_BATCH = 20;
/** A decided transaction whose finish failed in the sweep is tried again after this long. */
const FINISH_RETRY_MS = 1000;

/**
 * What the transaction coordinator needs of the groups domain, which owns the groups' keys:
 * settling the offsets a transaction staged (TxnOffsetCommit) when it ends.
 */
export interface StagedOffsets {
  /** Materialises (`commit`) or drops the offsets `producerId` staged at `producerEpoch` in `groupId`. */
  endTransactionalOffsets(groupId: string, producerId: number, producerEpoch: number, commit: boolean): Promise<void>;
}

/** A transactional id this broker owns. */
interface Owned {
  /** The record as last decided (the last `persist` action's, written or being written). */
  record: TxnRecord | null;
  readonly leaseValue: string;
  /** Serialises operations on this id. */
  chain: Promise<unknown>;
}

export interface TxnCoordinatorDeps {
  store: TxnStore;
  leases: LeaseClient;
  registry: BrokerRegistry;
  topics: Pick<TopicStore, 'byName'>;
  /** The partition log: transactions are opened there, and markers appended. */
  log: Pick<PartitionLog, 'append' | 'flushSoon' | 'openTransaction'>;
  producerIds: Pick<ProducerIdAllocator, 'allocate'>;
  /** The groups side (the group coordinator). */
  offsets: StagedOffsets;
  maxTimeoutMs: number;
  logger: Logger;
}

export class TransactionCoordinator {
  readonly #d: TxnCoordinatorDeps;
  readonly #owner: LeaseOwner<Owned>;
  #sweep: NodeJS.Timeout | null = null;

  constructor(deps: TxnCoordinatorDeps) {
    this.#d = deps;
    this.#owner = new LeaseOwner<Owned>({
      leases: deps.leases,
      noun: 'transaction',
      idField: 'transactionalId',
      keys: txnKeys,
      isLive: (nodeId) => deps.registry.live().some((b) => b.nodeId === nodeId),
      load: (id, leaseValue) => this.#load(id, leaseValue),
      onStop: async (_, o) => {
        await o.chain;
      },
      logger: deps.logger,
    });
  }

  /** Starts lease renewal and the timeout sweep (after the broker has its node id). */
  start(): void {
    this.#owner.start(this.#d.registry.nodeId);
    this.#sweep = setInterval(() => void this.#sweepTimeouts(), SWEEP_INTERVAL_MS);
    this.#sweep.unref();
  }

  /** Lets each owned id's operations finish and releases its lease. */
  async stop(): Promise<void> {
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    await this.#owner.stop();
  }

  async #load(id: string, leaseValue: string): Promise<Loaded<Owned>> {
    const owned: Owned = { record: await this.#d.store.load(id), leaseValue, chain: Promise.resolve() };
    const afterOwned = async (): Promise<void> => {
      if (finish(owned.record, Date.now()) === null) return;
      // The previous owner died while ending this transaction: finish it, as decided.
      owned.chain = this.#finishPrepared(id, owned).catch((err: unknown) => {
        this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not finish a transaction taken over');
      });
      await owned.chain;
    };
    return { entry: owned, afterOwned };
  }

  /** Runs `fn` exclusively for `id` (after ownership); maps failures to error codes. */
  async #run<T>(id: string, fail: (code: number) => T, fn: (o: Owned) => Promise<T>): Promise<T> {
    const o = await this.#owner.own(id);
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
        this.#owner.lose(id, o, 'state write fenced');
        return fail(ErrorCode.NOT_COORDINATOR);
      }
      this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'transaction operation failed');
      // Clients treat unexpected codes on transactional APIs as fatal; a failure inside the
      // coordinator (storage, Redis) is retriable from the client's side.
      return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    }
  }

  /** Performs a change's actions in order; the first failure stops the rest and is thrown. */
  async #perform(id: string, o: Owned, actions: readonly TxnAction[]): Promise<void> {
    for (const a of actions) {
      switch (a.type) {
        case 'register':
          await this.#d.store.register(id);
          break;
        case 'persist':
          // Adopted before the write: should the write fail, this owner still acts on what it
          // decided (a decided transaction is finished by the next request or the sweep).
          o.record = a.record;
          await this.#d.store.save(id, o.leaseValue, a.record, a.deadlineMs);
          if (a.record.state === 'CompleteCommit' || a.record.state === 'CompleteAbort') {
            this.#d.logger.debug({ transactionalId: id, commit: a.record.state === 'CompleteCommit' }, 'transaction ended');
          }
          break;
        case 'writeMarkers':
          await this.#writeMarkers(a);
          break;
        case 'endOffsets':
          await this.#d.offsets.endTransactionalOffsets(a.groupId, a.producerId, a.producerEpoch, a.commit);
          break;
      }
    }
  }

  /** Appends a marker to every partition through the ingest buffer and commit script, like any batch. */
  async #writeMarkers(a: Extract<TxnAction, { type: 'writeMarkers' }>): Promise<void> {
    const log = this.#d.log;
    const appended = a.partitions.map((p) => {
      // One control batch per partition: a stored batch's offsets are rewritten in place.
      const bytes = encodeControlBatch({
        type: a.commit ? ControlRecordType.COMMIT : ControlRecordType.ABORT,
        coordinatorEpoch: 0,
        producerId: a.producerId,
        producerEpoch: a.producerEpoch,
        timestamp: a.timestampMs,
      });
      return log.append({ topicId: p.topicId, partition: p.partition }, [new RecordBatchView(bytes)]).then((outcome) => outcome.results[0]!.errorCode);
    });
    // Markers hold up the transaction's readers (the LSO): write them now, not at flush.ms.
    if (appended.length > 0) log.flushSoon();
    const results = await Promise.all(appended);
    const failed = results.find((c) => c !== ErrorCode.NONE);
    if (failed !== undefined) throw new Error(`a transaction marker was refused with error ${failed}`);
  }

  /** Finishes the decided transaction of `o`, if it has one. */
  async #finishPrepared(id: string, o: Owned): Promise<void> {
    const step = finish(o.record, Date.now());
    if (step !== null) await this.#perform(id, o, step.actions);
  }

  /**
   * InitProducerId with a transactional id: a new producer id, or the existing one with its
   * epoch bumped (fencing older instances); an ongoing transaction of the previous instance is
   * aborted first.
   */
  initProducerId(id: string, timeoutMs: number, producerId: number, producerEpoch: number, fencedCode: number): Promise<InitResult> {
    const fail = (errorCode: number): InitResult => ({ errorCode, producerId: -1, producerEpoch: -1 });
    const timeoutCheck = checkTransactionTimeout(timeoutMs, this.#d.maxTimeoutMs);
    if (timeoutCheck !== ErrorCode.NONE) return Promise.resolve(fail(timeoutCheck));
    return this.#run(id, fail, async (o) => {
      const req: InitProducerIdRequest = { timeoutMs, producerId, producerEpoch, fencedCode };
      for (;;) {
        const step = initProducerId(o.record, req, Date.now());
        switch (step.type) {
          case 'finishPrepared':
            // The previous instance's transaction is decided: finish it before anything else,
            // and if that cannot be done now, let the client retry (as Kafka does).
            try {
              await this.#finishPrepared(id, o);
            } catch (err) {
              this.#d.logger.warn({ err: (err as Error).message, transactionalId: id }, 'could not finish the previous transaction yet');
              return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
            }
            break;
          case 'allocateProducerId':
            req.newProducerId = await this.#d.producerIds.allocate();
            break;
          case 'reply':
            return step.reply;
          case 'change':
            await this.#perform(id, o, step.actions);
            return step.reply;
        }
      }
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
      const req: AddPartitionsRequest = { producerId, producerEpoch, fencedCode, partitions: wanted, verifyOnly };
      for (;;) {
        const step = addPartitions(o.record, req, Date.now());
        switch (step.type) {
          case 'resolveTopics':
            req.topics = [];
            for (const w of wanted) {
              const t = await this.#d.topics.byName(w.topic);
              req.topics.push(t ? { topicId: t.topicId, partitionCount: t.partitions } : null);
            }
            break;
          case 'openPartitions':
            req.opened = await this.#d.log.openTransaction(
              step.partitions.map((x) => ({ topicId: x.topicId, partition: x.partition })),
              producerId,
              producerEpoch,
            );
            break;
          case 'reply':
            return step.reply;
          case 'change':
            await this.#perform(id, o, step.actions);
            return step.reply;
        }
      }
    });
  }

  /** AddOffsetsToTxn: the group's offsets will be committed or dropped with the transaction. */
  addOffsets(id: string, producerId: number, producerEpoch: number, groupId: string, fencedCode: number): Promise<number> {
    return this.#run(
      id,
      (c) => c,
      async (o) => {
        const step = addOffsets(o.record, { producerId, producerEpoch, groupId, fencedCode }, Date.now());
        if (step.type === 'change') await this.#perform(id, o, step.actions);
        return step.reply;
      },
    );
  }

  /** EndTxn: commit or abort the ongoing transaction. */
  endTxn(id: string, producerId: number, producerEpoch: number, commit: boolean, fencedCode: number): Promise<number> {
    return this.#run(
      id,
      (c) => c,
      async (o) => {
        const step = endTxn(o.record, { producerId, producerEpoch, commit, fencedCode }, Date.now());
        if (step.type === 'change') await this.#perform(id, o, step.actions);
        return step.reply;
      },
    );
  }

  /**
   * Aborts transactions past their timeout, and finishes decided ones: those this broker
   * owns, and those whose owner is gone (any broker may take them over).
   */
  async #sweepTimeouts(): Promise<void> {
    let due: string[];
    try {
      due = await this.#d.store.due(Date.now(), SWEEP_BATCH);
    } catch {
      return; // Redis unavailable: the next sweep tries again.
    }
    for (const id of due) {
      await this.#run(
        id,
        () => undefined,
        async (o) => {
          let newProducerId: number | undefined;
          for (;;) {
            const step = expire(o.record, Date.now(), newProducerId);
            switch (step.type) {
              case 'reply':
                return;
              case 'finishPrepared':
                try {
                  await this.#finishPrepared(id, o);
                } catch (err) {
                  // Try again in a second (the deadline entry stays due).
                  await this.#d.store.setDeadline(id, Date.now() + FINISH_RETRY_MS);
                  throw err;
                }
                return;
              case 'allocateProducerId':
                newProducerId = await this.#d.producerIds.allocate();
                break;
              case 'change':
                this.#d.logger.info({ transactionalId: id, producerId: o.record!.producerId }, 'transaction timed out; aborting it');
                await this.#perform(id, o, step.actions);
                return;
            }
          }
        },
      );
    }
  }

  /** The persisted state of a transactional id (any broker may read it), or null. */
  describe(id: string): Promise<TxnRecord | null> {
    return this.#d.store.read(id);
  }

  /** All transactional ids known to the cluster. */
  listIds(): Promise<string[]> {
    return this.#d.store.listIds();
  }
}
