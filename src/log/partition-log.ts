/**
 * The partition log: the one door to everything Strata keeps per partition (docs/architecture.md
 * §4). Handlers and coordinators append, read, look up offsets, delete records and ask about
 * producers and transactions here; behind it the ingest buffer writes segment objects, the
 * partition state in Redis assigns offsets and indexes runs, the reader serves bytes from the
 * caches and the object store, and the notifier wakes long-polls. Retention moves the
 * log start here (the job that decides when is `retention.ts`); compaction, the log cleaner
 * and object garbage collection belong here too.
 */
import type { RecordBatchView } from '../../wire/records/index.js';
import { ObjectNotFoundError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { CountedObjectStore } from '../storage/counted.js';
import type { ObjectStore, ObjectStoreStats } from '../storage/object-store.js';
import { ByteLru, type CacheStats } from './cache.js';
import { IngestBuffer, type AppendOutcome } from './ingest.js';
import { PartitionCleaner, type CleanerPolicy, type CleanOutcome } from './log-cleaner.js';
import { HighWatermarkNotifier, partitionKey } from './notifier.js';
import { RunRewriter, type CompactionOutcome } from './object-compaction.js';
import {
  type PartitionStore,
  type PartitionOffsets,
  type PartitionRef,
  type PartitionUsage,
  type ProducerStateSummary,
  type Run,
} from './partition-store.js';
import { LogReader, type ReadPlan, type ReadRequest, type ReadResult } from './reader.js';
import type { RetentionLimits, RetentionOutcome } from './retention.js';
import type { SegmentPieces } from './segment.js';
import { findInRun, type OffsetAndTimestamp } from './timestamps.js';

export type { AppendOutcome } from './ingest.js';
export type { CompactionOutcome } from './object-compaction.js';
export type { CleanerPolicy, CleanOutcome } from './log-cleaner.js';
export type { PartitionOffsets, PartitionRef, PartitionUsage, ProducerStateSummary } from './partition-store.js';
export type { ReadPlan, ReadRequest, ReadResult } from './reader.js';
export type { RetentionLimits, RetentionOutcome } from './retention.js';
export type { OffsetAndTimestamp } from './timestamps.js';

export interface PartitionLogOptions {
  /** The partition state in Redis (the composition root builds it over its Redis client). */
  partitions: PartitionStore;
  store: ObjectStore;
  writeCacheBytes: number;
  blockCacheBytes: number;
  blockSizeBytes: number;
  /** The most a batch may decompress to when a timestamp lookup decodes it. */
  maxDecompressedBatchBytes: number;
  flushMs: number;
  flushBytes: number;
  /** The longest time from a flush's upload start to its commit (`--commit-deadline-ms`, §4.4). */
  commitDeadlineMs?: number;
}

/**
 * How many times a read is planned and tried when a run's object is missing: object GC may
 * delete an object between a read's index lookup and its GET, once the index no longer
 * references it (DeleteRecords, retention, compaction), and planning again finds where the
 * records went, or that they are gone.
 */
const READ_ATTEMPTS = 3;

/**
 * A place in one writer's queue of appends (see {@link PartitionLog.appendTurn}). `ready`
 * resolves when every earlier turn of the same writer has queued its batches or given up;
 * `release` must be called exactly once, after queuing, whatever happened.
 */
export interface AppendTurn {
  readonly ready: Promise<void>;
  release(): void;
}

/** Counters for /metrics. */
export interface PartitionLogStats {
  segmentsFlushed: number;
  ingestPendingBytes: number;
  writeCache: CacheStats;
  blockCache: CacheStats;
  /** Object-store requests of the background rewrites, apart from produce and fetch traffic. */
  jobStores: { compaction: ObjectStoreStats; cleaner: ObjectStoreStats };
}

export class PartitionLog {
  readonly #opts: PartitionLogOptions;
  readonly #state: PartitionStore;
  readonly #writeCache: ByteLru<SegmentPieces>;
  /** Object compaction's and the log cleaner's views of the store, counting their requests. */
  readonly #compactionStore: CountedObjectStore;
  readonly #cleanerStore: CountedObjectStore;
  readonly #blockCache: ByteLru;
  readonly #reader: LogReader;
  readonly #notifier = new HighWatermarkNotifier();
  /** Per writer (a connection), the tail of its queue of appends. */
  readonly #turns = new WeakMap<object, Promise<void>>();
  #ingest: IngestBuffer | null = null;
  #rewriter: RunRewriter | null = null;
  #cleaner: PartitionCleaner | null = null;

  constructor(opts: PartitionLogOptions) {
    this.#opts = opts;
    this.#compactionStore = new CountedObjectStore(opts.store);
    this.#cleanerStore = new CountedObjectStore(opts.store);
    this.#state = opts.partitions;
    this.#writeCache = new ByteLru<SegmentPieces>(opts.writeCacheBytes);
    this.#blockCache = new ByteLru(opts.blockCacheBytes);
    this.#reader = new LogReader(opts.store, this.#state, this.#writeCache, this.#blockCache, opts.blockSizeBytes);
  }

  /**
   * Starts the write path once the broker has its node id (object keys carry it). Commits wake
   * this broker's long-polls directly and other brokers' through Redis.
   */
  start(nodeId: number, log: Logger): void {
    const ingest = new IngestBuffer(
      this.#opts.store,
      this.#state,
      this.#writeCache,
      { nodeId, flushMs: this.#opts.flushMs, flushBytes: this.#opts.flushBytes, commitDeadlineMs: this.#opts.commitDeadlineMs },
      log,
    );
    ingest.onCommit((updates) => {
      this.#notifier.notify(updates.map((u) => partitionKey(u.ref)));
      this.#state.publishHighWatermarks(updates).catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'could not announce new high watermarks; remote long-polls wake at their deadline');
      });
    });
    this.#ingest = ingest;
    this.#rewriter = new RunRewriter({
      store: this.#compactionStore,
      state: this.#state,
      cached: (run) => this.#writeCache.get(run.objectKey)?.range(run.byteStart, run.byteLength),
      nodeId,
      commitDeadlineMs: this.#opts.commitDeadlineMs,
    });
    this.#cleaner = new PartitionCleaner({
      store: this.#cleanerStore,
      state: this.#state,
      cached: (run) => this.#writeCache.get(run.objectKey)?.range(run.byteStart, run.byteLength),
      nodeId,
      maxDecompressedBytes: this.#opts.maxDecompressedBatchBytes,
      commitDeadlineMs: this.#opts.commitDeadlineMs,
    });
  }

  get #writer(): IngestBuffer {
    if (!this.#ingest) throw new Error('partition log not started');
    return this.#ingest;
  }

  /** Another broker committed: a message of the high-watermark channel. */
  onRemoteCommits(payload: string): void {
    this.#notifier.onMessage(payload);
  }

  // ---- writes ----

  /**
   * Claims the writer's next turn to queue appends. A writer's requests run concurrently, and
   * each awaits lookups and validation before queuing; without turns a later pipelined request
   * could queue first and reorder a partition's batches (fatal for idempotent producers, which
   * pipeline up to five requests). Claim when the request starts, validate, await `ready`,
   * append, release: the turn is held until the batches are queued, not until they commit.
   */
  appendTurn(writer: object): AppendTurn {
    const previous = this.#turns.get(writer) ?? Promise.resolve();
    let release!: () => void;
    this.#turns.set(writer, new Promise<void>((r) => (release = r)));
    return { ready: previous, release };
  }

  /**
   * Queues validated batches of one partition and resolves once they are committed (offsets
   * assigned, or a per-batch error). Rejects with the storage or Redis failure if the flush
   * fails; nothing was acknowledged then.
   */
  append(ref: PartitionRef, batches: readonly RecordBatchView[]): Promise<AppendOutcome> {
    return this.#writer.append(ref, batches);
  }

  /** Starts a flush now instead of at the next deadline (transaction markers). */
  flushSoon(): void {
    void this.#writer.flush();
  }

  /** Flushes and commits everything queued (shutdown). */
  async drain(): Promise<void> {
    await this.#ingest?.drain();
  }

  /** Wakes every long-poll at once (shutdown). */
  close(): void {
    this.#notifier.close();
  }

  // ---- reads ----

  /** Log start, high watermark and last stable offset, per partition in input order. */
  offsets(refs: readonly PartitionRef[]): Promise<PartitionOffsets[]> {
    return this.#state.offsets(refs);
  }

  /** Reads one partition from an offset, at most `maxBytes` (see {@link plan}). */
  read(req: ReadRequest): Promise<ReadResult> {
    return this.#reader.read(req).catch((err: unknown) => this.#readAgain(err, req, req.maxBytes, req.minOneBatch));
  }

  /** The first step of a read: offsets and index entries, no record bytes. */
  plan(req: Pick<ReadRequest, 'ref' | 'fetchOffset' | 'readCommitted'>): Promise<ReadPlan> {
    return this.#reader.plan(req);
  }

  /** Reads a planned partition within `maxBytes` (the first batch regardless with `minOneBatch`). */
  readPlanned(plan: ReadPlan, maxBytes: number, minOneBatch: boolean): Promise<ReadResult> {
    return this.#reader.readPlanned(plan, maxBytes, minOneBatch).catch((err: unknown) => this.#readAgain(err, plan, maxBytes, minOneBatch));
  }

  /**
   * After a read failed with `err`: when a run's object was missing, plans the read again from
   * the same fetch offset and retries, up to {@link READ_ATTEMPTS} tries in all. A fetch
   * offset now below the log start is answered OFFSET_OUT_OF_RANGE by the new plan, as
   * usual; any other failure is rethrown.
   */
  async #readAgain(err: unknown, req: Pick<ReadRequest, 'ref' | 'fetchOffset' | 'readCommitted'>, maxBytes: number, minOneBatch: boolean): Promise<ReadResult> {
    const again = { ref: req.ref, fetchOffset: req.fetchOffset, readCommitted: req.readCommitted };
    for (let attempt = 2; err instanceof ObjectNotFoundError && attempt <= READ_ATTEMPTS; attempt++) {
      try {
        return await this.#reader.readPlanned(await this.#reader.plan(again), maxBytes, minOneBatch);
      } catch (next) {
        err = next;
      }
    }
    throw err;
  }

  /**
   * Resolves when any of the partitions commits, after `timeoutMs`, or at shutdown, whichever
   * comes first (a long-polling Fetch).
   */
  waitForCommit(refs: readonly PartitionRef[], timeoutMs: number): Promise<void> {
    return this.#notifier.wait(refs.map(partitionKey), timeoutMs);
  }

  /**
   * The first record at or after `timestampMs` below the high watermark (the last stable
   * offset with `readCommitted`), or null when there is none.
   */
  async offsetForTimestamp(ref: PartitionRef, timestampMs: number, readCommitted: boolean): Promise<OffsetAndTimestamp | null> {
    // The run first, then the offsets that bound it, as ListOffsets has always read them.
    const run = await this.#state.runAtTimestamp(ref, timestampMs);
    const [o] = await this.#state.offsets([ref]);
    // The run may straddle the log start after DeleteRecords: records below it are gone.
    const found = run ? await findInRun(this.#reader, run, timestampMs, false, o!.logStart, this.#opts.maxDecompressedBatchBytes) : null;
    const upper = readCommitted ? o!.lso : o!.hw;
    return found && found.offset < upper ? found : null;
  }

  /** The offset and timestamp of the record with the largest timestamp, or null when empty. */
  async maxTimestampOffset(ref: PartitionRef): Promise<OffsetAndTimestamp | null> {
    const run = await this.#state.maxTimestampRun(ref);
    return run ? findInRun(this.#reader, run, run.maxTimestamp, true) : null;
  }

  /**
   * What each partition keeps (log start, hw, and the bytes, runs and segment objects of its
   * run index), in input order: for describing topics and log directories.
   */
  usage(refs: readonly PartitionRef[]): Promise<PartitionUsage[]> {
    return this.#state.usage(refs);
  }

  /**
   * Calls `visit(i, run)` for every run indexed for `refs[i]` (object garbage collection's
   * scan; see {@link PartitionStore.forEachRun} for what a concurrent change may do to it).
   */
  forEachRun(refs: readonly PartitionRef[], visit: (index: number, run: Run) => void): Promise<void> {
    return this.#state.forEachRun(refs, visit);
  }

  /** Aborted transactions overlapping [fromOffset, toOffset), for read_committed fetches. */
  abortedTransactions(ref: PartitionRef, fromOffset: number, toOffset: number): Promise<{ producerId: number; firstOffset: number }[]> {
    return this.#state.abortedTransactions(ref, fromOffset, toOffset);
  }

  /** Transactions open on the partition. */
  openTransactions(ref: PartitionRef): Promise<{ producerId: number; epoch: number; firstOffset: number }[]> {
    return this.#state.openTransactions(ref);
  }

  /** The idempotent and transactional producers the partition remembers. */
  producers(ref: PartitionRef): Promise<ProducerStateSummary[]> {
    return this.#state.producers(ref);
  }

  // ---- changes other than appends ----

  /** Moves the log start up to `target` (-1: the high watermark); DeleteRecords. */
  deleteRecords(ref: PartitionRef, target: number): Promise<{ errorCode: number; logStart: number }> {
    return this.#state.deleteRecords(ref, target);
  }

  /**
   * Retention (docs/architecture.md §4.3). By time (`cutoffMs`): moves the log start past
   * every run whose batches all have a max timestamp below the cutoff, stopping at the first
   * run that has a newer batch, as Kafka deletes expired segments from the start of the log.
   * By size (`maxBytes`): moves it past the oldest runs while the runs left hold at least
   * `maxBytes`. With both, the log start moves to the further of the two. Answers the log
   * start afterwards and whether this call moved it.
   *
   * Reading the targets and then deleting, in two steps, is safe without a script of its own:
   * a committed run never changes, so a run found older than the cutoff stays so, newer runs
   * only add to the size kept, and delete-records.lua only moves the log start forward (a
   * target at or below it, say after a concurrent DeleteRecords or another broker's pass,
   * changes nothing).
   */
  async applyRetention(ref: PartitionRef, limits: RetentionLimits): Promise<RetentionOutcome> {
    let offsets: PartitionOffsets;
    let target = 0;
    if (limits.cutoffMs !== undefined) ({ offsets, target } = await this.#state.retentionTarget(ref, limits.cutoffMs));
    else [offsets] = (await this.#state.offsets([ref])) as [PartitionOffsets];
    if (limits.maxBytes !== undefined) {
      const keepFrom = await this.#state.sizeRetentionTarget(ref, limits.maxBytes);
      if (keepFrom !== null) target = Math.max(target, keepFrom);
    }
    if (target <= offsets.logStart) return { logStart: offsets.logStart, advanced: false };
    const { logStart } = await this.#state.deleteRecords(ref, target);
    return { logStart, advanced: logStart > offsets.logStart };
  }

  /**
   * The runs whose last offset is ≥ `fromOffset`, in offset order, read a page at a time until
   * at least `max` or the end, with the offsets read with the first page (runs of later pages
   * may lie above that hw): object compaction's view of the index.
   */
  indexedRuns(ref: PartitionRef, fromOffset: number, max: number): Promise<{ offsets: PartitionOffsets; runs: Run[] }> {
    return this.#state.runsPaged(ref, fromOffset, max);
  }

  /**
   * Object compaction (docs/architecture.md §4.5): rewrites consecutive runs, as read by
   * {@link indexedRuns}, into one segment object and swaps them for its one run in the index,
   * unless the index changed underneath. Readers holding the old runs go on reading the old
   * objects, which garbage collection keeps for its grace period.
   */
  compactRuns(ref: PartitionRef, runs: readonly Run[]): Promise<CompactionOutcome> {
    if (!this.#rewriter) throw new Error('partition log not started');
    return this.#rewriter.rewrite(ref, runs);
  }

  /**
   * The log cleaner (docs/architecture.md §4.6): one pass on the partition if it is due under
   * `policy` — the latest record of each key kept, offsets kept — each rewritten group of runs
   * swapped in unless the index changed underneath. Readers holding the old runs go on reading
   * the old objects, which garbage collection keeps for its grace period.
   */
  cleanPartition(ref: PartitionRef, policy: CleanerPolicy): Promise<CleanOutcome> {
    if (!this.#cleaner) throw new Error('partition log not started');
    return this.#cleaner.clean(ref, policy);
  }

  /** Forgets a deleted topic's partition. */
  deletePartition(ref: PartitionRef): Promise<void> {
    return this.#state.deletePartition(ref);
  }

  /**
   * Registers the partitions in a producer's transaction; per partition NONE or the error
   * (the commit script then accepts its transactional batches there).
   */
  openTransaction(refs: readonly PartitionRef[], producerId: number, producerEpoch: number): Promise<number[]> {
    return this.#state.openTransaction(refs, producerId, producerEpoch);
  }

  stats(): PartitionLogStats {
    return {
      segmentsFlushed: this.#ingest?.flushCount ?? 0,
      ingestPendingBytes: this.#ingest?.pendingBytes ?? 0,
      writeCache: this.#writeCache.stats(),
      blockCache: this.#blockCache.stats(),
      jobStores: { compaction: this.#compactionStore.stats(), cleaner: this.#cleanerStore.stats() },
    };
  }
}
