/**
 * The log cleaner (docs/architecture.md §4.6): Kafka's log compaction, `cleanup.policy=compact`
 * (and `compact,delete`). On such a topic the latest record of each key survives; older ones,
 * records of aborted transactions, tombstones once their delete horizon has passed (KIP-534)
 * and transaction markers whose transaction has no records left go. Offsets stay: the
 * rewritten batches keep their base offsets and offset deltas, and the reader serves the
 * gaps (their runs are indexed with `ownOffsets`).
 *
 * Three parts: {@link planCleaning} decides whether a partition is due and what a pass covers
 * (pure); {@link PartitionCleaner} runs one pass on one partition (the partition log owns it and
 * the job reaches it through {@link PartitionLog.cleanPartition}); {@link LogCleanerJob} walks
 * the compacted topics' partitions this broker leads every `--log-cleaner-interval-ms`.
 *
 * A pass works on the cleanable part of the log, [log start, clean point): the clean point is
 * below the last stable offset and below the first run holding a batch younger than
 * `min.compaction.lag.ms`. It reads the dirty part (from `cleanedTo`, the meta field the last
 * pass left) to map every key to its latest offset, at most `--log-cleaner-max-keys` keys (a
 * prefix when there are more), then rewrites the runs from the log start to where the map
 * ends, one segment object per group of runs of up to the target size, each swapped in for its
 * runs by idx-swap.lua only if they are all still indexed. Old objects go to object GC.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WireError } from '../../wire/index.js';
import {
  Compression,
  ControlRecordType,
  decodeBatch,
  decodeControlBatch,
  encodeBatch,
  isXerialSnappy,
  RecordBatchView,
  TimestampType,
  type DecodedBatch,
  type RecordInput,
} from '../../wire/records/index.js';
import { effectiveTopicConfig } from '../cluster/topic-configs.js';
import type { BrokerConfig } from '../config.js';
import { BrokerTimeoutError } from '../errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { commitByOnRedisClock, commitDeadlinePassed, DEFAULT_COMMIT_DEADLINE_MS } from './commit-deadline.js';
import { eachPartition, PeriodicJob } from './job-timer.js';
import { batchesOf, DEFAULT_COMPACTION_TARGET_BYTES } from './object-compaction.js';
import type { AbortedRange, PartitionOffsets, PartitionRef, PartitionStore, Run } from './partition-store.js';
import { buildSegment } from './segment.js';

/** `--log-cleaner-max-keys` by default: the keys one pass maps. */
export const DEFAULT_CLEANER_MAX_KEYS = 1_000_000;
/** Partitions cleaned at once by default: each pass holds a key map and a group of runs. */
export const DEFAULT_CLEANER_CONCURRENCY = 1;
/** Most index entries one pass reads; a longer cleanable part is cleaned a prefix at a time. */
const MAX_RUNS_READ = 16_384;

// ---- planning ----

/** A topic's compaction settings, with the time a pass is judged at. */
export interface CleanerPolicy {
  nowMs: number;
  /** `delete.retention.ms`: how long a tombstone or marker stays once a pass has kept it. */
  deleteRetentionMs: number;
  /** `min.compaction.lag.ms`: runs holding a batch younger than this are not cleaned. */
  minCompactionLagMs: number;
  /** `max.compaction.lag.ms`: dirty records older than this are cleaned whatever the ratio. */
  maxCompactionLagMs: number;
  /** `min.cleanable.dirty.ratio`: a pass is due when the dirty share of the bytes exceeds it. */
  minCleanableDirtyRatio: number;
  /** `--log-cleaner-max-keys`. */
  maxKeys: number;
  /** The input bytes one rewritten object takes at most (a single bigger run is taken alone). */
  targetBytes: number;
}

/** What the cleaner keeps of a partition, from its meta hash. */
export interface CleanerState {
  offsets: PartitionOffsets;
  /** The first offset no pass has cleaned (0 before the first pass). */
  cleanedTo: number;
  /** When the earliest tombstone or marker kept by the last pass may go; null for none. */
  cleanHorizon: number | null;
}

/** What {@link planCleaning} decides. */
export interface CleaningPlan {
  /** Why a pass is due; null when it is not. */
  due: 'dirty-ratio' | 'max-compaction-lag' | 'delete-horizon' | null;
  /** The cleanable runs, from the one holding the log start, in offset order. */
  runs: Run[];
  /** The offset after the last cleanable run: a pass cleans below it. */
  cleanPoint: number;
  /** Where the dirty part starts: `cleanedTo`, or the log start if that is further. */
  firstDirty: number;
  dirtyBytes: number;
  cleanBytes: number;
}

/**
 * Decides whether a partition is due for a pass. `runs` are its runs from the log start on
 * (as many as were read), in offset order. The cleanable ones are a prefix: each lies wholly
 * below the last stable offset (an open transaction's records are never touched) and, with a
 * `min.compaction.lag.ms`, has a max timestamp at least that old. Runs ending below
 * `cleanedTo` are clean, the others dirty. A pass is due when the dirty share of their bytes
 * exceeds `min.cleanable.dirty.ratio`, when a dirty run's max timestamp is older than
 * `max.compaction.lag.ms` (a run's max stands in for Kafka's first batch timestamp of a
 * segment), or when the delete horizon the last pass recorded has passed.
 */
export function planCleaning(state: CleanerState, runs: readonly Run[], policy: CleanerPolicy): CleaningPlan {
  const { offsets } = state;
  const youngFrom = policy.minCompactionLagMs > 0 ? policy.nowMs - policy.minCompactionLagMs : Number.POSITIVE_INFINITY;
  const cleanable: Run[] = [];
  for (const run of runs) {
    if (run.last < offsets.logStart) continue;
    if (run.last >= offsets.lso || run.maxTimestamp > youngFrom) break;
    cleanable.push(run);
  }
  const firstDirty = Math.max(state.cleanedTo, offsets.logStart);
  const cleanPoint = cleanable.length > 0 ? cleanable[cleanable.length - 1]!.last + 1 : offsets.logStart;
  let dirtyBytes = 0;
  let cleanBytes = 0;
  let oldestDirty = Number.POSITIVE_INFINITY;
  for (const run of cleanable) {
    if (run.last < firstDirty) {
      cleanBytes += run.byteLength;
      continue;
    }
    dirtyBytes += run.byteLength;
    if (run.maxTimestamp >= 0 && run.maxTimestamp < oldestDirty) oldestDirty = run.maxTimestamp;
  }
  let due: CleaningPlan['due'] = null;
  if (cleanable.length > 0) {
    if (dirtyBytes > 0 && dirtyBytes / (dirtyBytes + cleanBytes) > policy.minCleanableDirtyRatio) due = 'dirty-ratio';
    else if (dirtyBytes > 0 && oldestDirty < policy.nowMs - policy.maxCompactionLagMs) due = 'max-compaction-lag';
    else if (state.cleanHorizon !== null && state.cleanHorizon <= policy.nowMs) due = 'delete-horizon';
  }
  return { due, runs: cleanable, cleanPoint, firstDirty, dirtyBytes, cleanBytes };
}

// ---- one pass ----

/** The latest offset of each key in the dirty part, and where the mapped part ends. */
interface KeyMap {
  latest: Map<string, number>;
  /** Offsets from here on were not mapped: a pass leaves them as they are. */
  end: number;
}

/** A partition's aborted transactions, by producer: whose records never count. */
class AbortedTransactions {
  readonly #byProducer = new Map<number, AbortedRange[]>();

  constructor(ranges: readonly AbortedRange[]) {
    for (const a of ranges) {
      let list = this.#byProducer.get(a.producerId);
      if (!list) this.#byProducer.set(a.producerId, (list = []));
      list.push(a);
    }
  }

  /** Whether a data batch belongs to an aborted transaction. */
  contains(view: RecordBatchView): boolean {
    if (!view.isTransactional || view.isControl) return false;
    const offset = view.baseOffset;
    for (const a of this.#byProducer.get(view.producerId) ?? []) if (a.firstOffset <= offset && offset < a.markerOffset) return true;
    return false;
  }

  /** The aborted transaction whose marker is at `offset`, when it had records. */
  closedAt(producerId: number, offset: number): AbortedRange | undefined {
    return this.#byProducer.get(producerId)?.find((a) => a.markerOffset === offset);
  }
}

/**
 * The record-level rules of one pass, applied batch by batch in offset order from the log
 * start: which records and markers stay, and the delete horizons the batches kept carry.
 * Pure; the pass around it reads, decodes and writes.
 */
class PassFilter {
  readonly #keys: KeyMap;
  readonly #logStart: number;
  readonly #policy: CleanerPolicy;
  /** Producers with transactional records kept since their last marker (so the marker stays). */
  readonly #liveTransactions = new Set<number>();
  /** The earliest delete horizon of a tombstone or marker kept (Infinity: none). */
  horizon = Number.POSITIVE_INFINITY;

  constructor(keys: KeyMap, logStart: number, policy: CleanerPolicy) {
    this.#keys = keys;
    this.#logStart = logStart;
    this.#policy = policy;
  }

  /** Notes a transactional data batch that stays with records. */
  keptTransactional(view: RecordBatchView): void {
    if (view.isTransactional && !view.isControl) this.#liveTransactions.add(view.producerId);
  }

  /**
   * A transaction marker in the cleaned part: 'drop' once its transaction has no records left
   * (an abort's are all removed by this pass; a commit's when none was kept) and its delete
   * horizon has passed; 'stamp' to give it a horizon, the first time it could go; 'keep'
   * otherwise.
   */
  marker(view: RecordBatchView, type: number): 'drop' | 'stamp' | 'keep' {
    const producerId = view.producerId;
    const empty = type === ControlRecordType.ABORT || !this.#liveTransactions.has(producerId);
    this.#liveTransactions.delete(producerId);
    if (!empty) return 'keep';
    const horizon = view.deleteHorizonMs;
    if (horizon === null) {
      this.horizon = Math.min(this.horizon, this.#policy.nowMs + this.#policy.deleteRetentionMs);
      return 'stamp';
    }
    if (horizon <= this.#policy.nowMs) return 'drop';
    this.horizon = Math.min(this.horizon, horizon);
    return 'keep';
  }

  /**
   * The records of a data batch in the cleaned part that stay, and the delete horizon the
   * batch must carry (its own, or a new one when it first keeps a tombstone; undefined for
   * none). A record stays when it has a key, is at or after the log start, is its key's latest
   * (or its key is unmapped: a record of the clean part no dirty record replaced), and is not a
   * tombstone past the batch's horizon.
   */
  records(view: RecordBatchView, decoded: DecodedBatch): { kept: DecodedBatch['records']; deleteHorizonMs: number | undefined } {
    const horizon = view.deleteHorizonMs;
    const now = this.#policy.nowMs;
    const kept: DecodedBatch['records'] = [];
    let tombstones = false;
    for (const rec of decoded.records) {
      if (rec.offset < this.#logStart) continue;
      if (rec.offset >= this.#keys.end) {
        kept.push(rec);
        continue;
      }
      // Kafka drops keyless records too (they cannot be produced to a compacted topic, but a
      // topic may have been switched to compact).
      if (rec.key === null) continue;
      const latest = this.#keys.latest.get(rec.key.toString('latin1'));
      if (latest !== undefined && latest > rec.offset) continue;
      if (rec.value === null) {
        if (horizon !== null && horizon <= now) continue;
        tombstones = true;
      }
      kept.push(rec);
    }
    let deleteHorizonMs = horizon ?? undefined;
    if (tombstones) {
      deleteHorizonMs ??= now + this.#policy.deleteRetentionMs;
      this.horizon = Math.min(this.horizon, deleteHorizonMs);
    }
    return { kept, deleteHorizonMs };
  }
}

/** What one pass on one partition did. */
export interface CleanOutcome {
  /** Whether a pass ran, and why. */
  due: CleaningPlan['due'];
  /** Whether it ran to the end (every changed group swapped in and the state recorded). */
  completed: boolean;
  /**
   * Why it stopped early: a group's runs left the index underneath (retention,
   * DeleteRecords, object compaction), or a swap would have come after the commit deadline.
   */
  aborted?: 'index-changed' | 'deadline';
  recordsRemoved: number;
  /** Bytes of the runs replaced less the bytes written in their place. */
  bytesReclaimed: number;
  objectsWritten: number;
  /** The partition's first dirty offset afterwards (when completed). */
  cleanedTo?: number;
}

/** What a {@link PartitionCleaner} works with; the partition log supplies it. */
export interface PartitionCleanerOptions {
  store: ObjectStore;
  state: Pick<PartitionStore, 'cleanerState' | 'runsPaged' | 'abortedRanges' | 'replaceRuns' | 'timeMs'>;
  /** A run's bytes when they are in memory already (the write cache), as whole batches. */
  cached(run: Run): Buffer[] | undefined;
  /** Goes into object keys, as the ingest buffer's do. */
  nodeId: number;
  /** The most a batch may decompress to when the cleaner decodes it. */
  maxDecompressedBytes: number;
  /** `--commit-deadline-ms`: the longest time from the start of an upload to its swap. */
  commitDeadlineMs?: number;
}

/** The batches of one group of runs as a pass rewrites them. */
interface GroupResult {
  batches: RecordBatchView[];
  changed: boolean;
  recordsRemoved: number;
  abortedRemoved: AbortedRange[];
}

/**
 * Runs passes of the log cleaner on single partitions. Objects it writes hold one chunk of
 * batches carrying their real offsets, under `data/<yyyy-mm-dd>/<nodeId>-<session>-k<seq>.seg`.
 */
export class PartitionCleaner {
  readonly #opts: PartitionCleanerOptions;
  readonly #deadlineMs: number;
  readonly #sessionId = randomBytes(4).toString('hex');
  #seq = 0;

  constructor(opts: PartitionCleanerOptions) {
    this.#opts = opts;
    this.#deadlineMs = opts.commitDeadlineMs ?? DEFAULT_COMMIT_DEADLINE_MS;
  }

  /**
   * One pass on `ref` if it is due under `policy`. Throws when a run cannot be read or does not
   * hold what the index says; groups swapped in before that stay (each is a valid cleaning on
   * its own), and the next pass starts over.
   */
  async clean(ref: PartitionRef, policy: CleanerPolicy): Promise<CleanOutcome> {
    const state = await this.#opts.state.cleanerState(ref);
    const outcome: CleanOutcome = { due: null, completed: false, recordsRemoved: 0, bytesReclaimed: 0, objectsWritten: 0 };
    // Nothing dirty below the LSO and no horizon passed: not due, without reading the index.
    const { offsets, cleanedTo, cleanHorizon } = state;
    if (Math.max(cleanedTo, offsets.logStart) >= offsets.lso && (cleanHorizon === null || cleanHorizon > policy.nowMs)) return outcome;
    const plan = planCleaning(state, await this.#readIndex(ref, offsets.logStart), policy);
    outcome.due = plan.due;
    if (plan.due === null) return outcome;
    const logStart = state.offsets.logStart;
    const aborted = new AbortedTransactions(await this.#opts.state.abortedRanges(ref, logStart, plan.cleanPoint));
    const keys = await this.#mapKeys(plan, aborted, policy);
    const filter = new PassFilter(keys, logStart, policy);

    const groups = groupRuns(plan.runs.filter((r) => r.base < keys.end), policy.targetBytes);
    const finalState = (): { cleanedTo: number; cleanHorizon: number | null } => ({
      cleanedTo: keys.end,
      cleanHorizon: Number.isFinite(filter.horizon) ? filter.horizon : null,
    });
    let stateRecorded = false;
    for (const [i, runs] of groups.entries()) {
      const result = await this.#rewriteGroup(runs, filter, aborted, keys.end, logStart, offsets.hw, policy);
      if (!result.changed) continue;
      const last = i === groups.length - 1;
      const changes = { ...(last ? finalState() : {}), abortedRemoved: result.abortedRemoved };
      const oldBytes = runs.reduce((sum, r) => sum + r.byteLength, 0);
      let replacement: Run | null = null;
      let commitByMs = -1;
      if (result.batches.length > 0) {
        const written = await this.#write(ref, runs, result.batches);
        outcome.objectsWritten++;
        if (written.deadlinePassed) return { ...outcome, aborted: 'deadline' };
        replacement = written.run;
        commitByMs = written.commitByMs;
      }
      const swap = await this.#opts.state.replaceRuns(ref, runs, replacement, changes, commitByMs);
      if (swap !== 'swapped') return { ...outcome, aborted: swap === 'past-deadline' ? 'deadline' : 'index-changed' };
      outcome.recordsRemoved += result.recordsRemoved;
      outcome.bytesReclaimed += Math.max(0, oldBytes - (replacement?.byteLength ?? 0));
      stateRecorded = last;
    }
    if (!stateRecorded) await this.#opts.state.replaceRuns(ref, [], null, finalState());
    return { ...outcome, completed: true, cleanedTo: keys.end };
  }

  /** Up to {@link MAX_RUNS_READ} runs from the log start on. */
  async #readIndex(ref: PartitionRef, logStart: number): Promise<Run[]> {
    return (await this.#opts.state.runsPaged(ref, logStart, MAX_RUNS_READ)).runs;
  }

  /**
   * Maps every key of the dirty part to its latest offset, skipping aborted transactions'
   * records and markers. Stops after the batch that brings the map to `maxKeys` keys: the map
   * then covers a prefix, and the pass cleans only up to where it ends.
   */
  async #mapKeys(plan: CleaningPlan, aborted: AbortedTransactions, policy: CleanerPolicy): Promise<KeyMap> {
    const latest = new Map<string, number>();
    for (const run of plan.runs) {
      if (run.last < plan.firstDirty) continue;
      for (const view of batchesOf(run, await this.#read(run))) {
        if (view.lastOffset < plan.firstDirty || view.isControl || aborted.contains(view)) continue;
        const decoded = await this.#decode(view);
        // An undecodable batch is kept whole; its keys stay unmapped, so older records of
        // them stay too (never fewer records than Kafka, only more).
        if (decoded) for (const rec of decoded.records) if (rec.key !== null && rec.offset >= plan.firstDirty) latest.set(rec.key.toString('latin1'), rec.offset);
        if (latest.size >= policy.maxKeys) return { latest, end: Math.min(view.lastOffset + 1, plan.cleanPoint) };
      }
    }
    return { latest, end: plan.cleanPoint };
  }

  /** The batches of a group of runs as they stay, in offset order. */
  async #rewriteGroup(
    runs: readonly Run[],
    filter: PassFilter,
    aborted: AbortedTransactions,
    end: number,
    logStart: number,
    hw: number,
    policy: CleanerPolicy,
  ): Promise<GroupResult> {
    const out: GroupResult = { batches: [], changed: false, recordsRemoved: 0, abortedRemoved: [] };
    const drop = (records: number): void => {
      out.changed = true;
      out.recordsRemoved += records;
    };
    for (const run of runs) {
      for (const view of batchesOf(run, await this.#read(run))) {
        if (view.lastOffset < logStart) {
          drop(view.recordCount);
          continue;
        }
        // The batch that ends the log stays as it is, as Kafka never cleans its active segment
        // and keeps the last batch (KAFKA-17076): without it a consumer positioned before the
        // high watermark would get nothing back and never reach the end.
        if (view.baseOffset >= end || view.lastOffset + 1 >= hw) {
          filter.keptTransactional(view);
          out.batches.push(view);
          continue;
        }
        if (view.isControl) {
          let type: number;
          try {
            type = decodeControlBatch(view).type;
          } catch (err) {
            if (!(err instanceof WireError)) throw err;
            out.batches.push(view);
            continue;
          }
          const verdict = filter.marker(view, type);
          if (verdict === 'keep') out.batches.push(view);
          else if (verdict === 'stamp') {
            const stamped = await this.#reencode(view, null, policy.nowMs + policy.deleteRetentionMs);
            if (stamped !== view) out.changed = true;
            out.batches.push(stamped);
          } else {
            drop(view.recordCount);
            // Its aborted-transaction entry goes with it: a read_committed consumer told of
            // the entry skips the producer's batches until it meets the marker.
            const closed = type === ControlRecordType.ABORT ? aborted.closedAt(view.producerId, view.baseOffset) : undefined;
            if (closed) out.abortedRemoved.push(closed);
          }
          continue;
        }
        if (aborted.contains(view)) {
          drop(view.recordCount);
          continue;
        }
        const decoded = await this.#decode(view);
        if (!decoded) {
          filter.keptTransactional(view);
          out.batches.push(view);
          continue;
        }
        const { kept, deleteHorizonMs } = filter.records(view, decoded);
        if (kept.length === decoded.records.length && deleteHorizonMs === (view.deleteHorizonMs ?? undefined)) {
          filter.keptTransactional(view);
          out.batches.push(view);
          continue;
        }
        drop(decoded.records.length - kept.length);
        // A batch left without records goes: Strata keeps producer state in Redis, not in the
        // log, so unlike Kafka it needs no empty batch to remember a producer's last sequence.
        if (kept.length === 0) continue;
        filter.keptTransactional(view);
        out.batches.push(await this.#reencode(view, kept, deleteHorizonMs));
      }
    }
    return out;
  }

  /**
   * The batch rebuilt with `records` (all of its records when null) and a delete horizon: same
   * codec, base offset, last offset delta, producer fields and attributes, leader epoch 0,
   * records copied byte for byte with their offset deltas and timestamps, CRC recomputed. With
   * null records, a batch that cannot be decoded is answered as it is.
   */
  async #reencode(view: RecordBatchView, records: DecodedBatch['records'] | null, deleteHorizonMs: number | undefined): Promise<RecordBatchView> {
    const source = records ?? (await this.#decode(view))?.records;
    if (source === undefined) return view;
    const inputs: RecordInput[] = source.map((r) => ({ timestamp: r.timestamp, offsetDelta: r.offsetDelta, attributes: r.attributes, encodedFields: r.encodedFields! }));
    const logAppendTime = view.timestampType === TimestampType.LOG_APPEND_TIME;
    const bytes = await encodeBatch(inputs, {
      baseOffset: view.baseOffset,
      partitionLeaderEpoch: 0,
      compression: view.compression,
      compressOptions: view.compression === Compression.SNAPPY && isXerialSnappy(view.payload) ? { snappyXerial: true } : undefined,
      timestampType: view.timestampType,
      // Under LogAppendTime every record's timestamp is the batch's max; under CreateTime the
      // max of the records kept, as Kafka's rebuilt batches have.
      maxTimestamp: logAppendTime ? view.maxTimestamp : undefined,
      deleteHorizonMs,
      producerId: view.producerId,
      producerEpoch: view.producerEpoch,
      baseSequence: view.baseSequence,
      isTransactional: view.isTransactional,
      isControl: view.isControl,
      lastOffsetDelta: view.lastOffsetDelta,
    });
    return new RecordBatchView(bytes);
  }

  /** A batch's records with their encoded fields, or null when it cannot be decoded. */
  async #decode(view: RecordBatchView): Promise<DecodedBatch | null> {
    try {
      return await decodeBatch(view, { maxDecompressedBytes: this.#opts.maxDecompressedBytes, withEncodedFields: true });
    } catch (err) {
      if (err instanceof WireError) return null;
      throw err;
    }
  }

  /** Writes `batches` into a fresh object; the run it would be indexed as, unless too late. */
  async #write(ref: PartitionRef, runs: readonly Run[], batches: RecordBatchView[]): Promise<{ run: Run; deadlinePassed: boolean; commitByMs: number }> {
    const layout = buildSegment([{ topicId: ref.topicId, partition: ref.partition, batches }]);
    const chunk = layout.chunks[0]!;
    const objectKey = `data/${new Date().toISOString().slice(0, 10)}/${this.#opts.nodeId}-${this.#sessionId}-k${String(this.#seq++).padStart(8, '0')}.seg`;
    let maxTimestamp = -1;
    for (const b of batches) if (b.maxTimestamp > maxTimestamp) maxTimestamp = b.maxTimestamp;
    const run: Run = {
      base: runs[0]!.base,
      last: runs[runs.length - 1]!.last,
      maxTimestamp,
      byteStart: chunk.byteStart,
      byteLength: chunk.byteLength,
      batchCount: batches.length,
      objectKey,
      ownOffsets: true,
    };
    const uploadStarted = performance.now();
    const commitBy = commitByOnRedisClock(() => this.#opts.state.timeMs(), this.#deadlineMs);
    await this.#opts.store.put(objectKey, layout.pieces, { fresh: true });
    // Past the deadline, object GC may already count the object as garbage (commit-deadline.ts);
    // the swap checks again on Redis's clock.
    return { run, deadlinePassed: commitDeadlinePassed(uploadStarted, this.#deadlineMs, performance.now()), commitByMs: await commitBy };
  }

  /** A run's bytes: from the write cache, or one ranged GET that bypasses the block cache. */
  async #read(run: Run): Promise<Buffer[]> {
    return this.#opts.cached(run) ?? [await this.#opts.store.get(run.objectKey, { start: run.byteStart, end: run.byteStart + run.byteLength })];
  }
}

/** Consecutive runs in groups of at most `targetBytes` (a bigger run makes a group alone). */
function groupRuns(runs: readonly Run[], targetBytes: number): Run[][] {
  const groups: Run[][] = [];
  let group: Run[] = [];
  let bytes = 0;
  for (const run of runs) {
    if (group.length > 0 && bytes + run.byteLength > targetBytes) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(run);
    bytes += run.byteLength;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

// ---- the job ----

/** What the job needs of a topic (the topic store's `TopicInfo` has it). */
export interface CleanerTopic {
  name: string;
  topicId: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level overrides only. */
  configs: Readonly<Record<string, string>>;
}

/** What the job is given. */
export interface LogCleanerJobOptions {
  topics: { all(): Promise<readonly CleanerTopic[]> };
  /** Whether this broker handles a partition: it is the partition's leader hint. */
  leads(topicId: string, partition: number, replicationFactor: number): boolean;
  log: { cleanPartition(ref: PartitionRef, policy: CleanerPolicy): Promise<CleanOutcome> };
  /** For topic config defaults. */
  broker: BrokerConfig;
  /** Time between the end of one cycle and the start of the next (`--log-cleaner-interval-ms`). */
  intervalMs: number;
  /** `--log-cleaner-max-keys` (default {@link DEFAULT_CLEANER_MAX_KEYS}). */
  maxKeys?: number;
  /** Input bytes per rewritten object (default {@link DEFAULT_COMPACTION_TARGET_BYTES}). */
  targetBytes?: number;
  /** Partitions in flight at once (default {@link DEFAULT_CLEANER_CONCURRENCY}). */
  concurrency?: number;
  /** The clock passes are judged by (tests move it). */
  now?: () => number;
}

/** Counters for /metrics. */
export interface LogCleanerStats {
  /** Cycles completed. */
  cycles: number;
  /** Passes run (partitions that were due). */
  passes: number;
  recordsRemoved: number;
  bytesReclaimed: number;
  objectsWritten: number;
  /** Passes stopped because a swap found its runs gone or came past the commit deadline. */
  swapsAborted: number;
}

/** A topic's cleaner policy at `nowMs`, or null when its `cleanup.policy` lacks `compact`. */
export function cleanerPolicy(configs: Readonly<Record<string, string>>, broker: BrokerConfig, nowMs: number, maxKeys: number, targetBytes: number): CleanerPolicy | null {
  const compacts = effectiveTopicConfig('cleanup.policy', configs, broker)
    .split(',')
    .some((p) => p.trim() === 'compact');
  if (!compacts) return null;
  // LONGs up to 2^63-1: as numbers they lose precision, which at those sizes changes nothing.
  const value = (name: string): number => Number(effectiveTopicConfig(name, configs, broker));
  return {
    nowMs,
    deleteRetentionMs: value('delete.retention.ms'),
    minCompactionLagMs: value('min.compaction.lag.ms'),
    maxCompactionLagMs: value('max.compaction.lag.ms'),
    minCleanableDirtyRatio: value('min.cleanable.dirty.ratio'),
    maxKeys,
    targetBytes,
  };
}

/** One partition a cycle looks at. */
interface Due {
  topic: string;
  ref: PartitionRef;
  policy: CleanerPolicy;
}

/** The periodic log cleaner of one broker. Start it once the broker knows its node id. */
export class LogCleanerJob extends PeriodicJob {
  readonly #opts: LogCleanerJobOptions;
  readonly #concurrency: number;
  readonly #now: () => number;
  #stats: LogCleanerStats = { cycles: 0, passes: 0, recordsRemoved: 0, bytesReclaimed: 0, objectsWritten: 0, swapsAborted: 0 };

  constructor(opts: LogCleanerJobOptions) {
    super(opts.intervalMs, 'log cleaner');
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CLEANER_CONCURRENCY);
    this.#now = opts.now ?? Date.now;
  }

  stats(): LogCleanerStats {
    return { ...this.#stats };
  }

  /**
   * One cycle over every partition of a compacted topic this broker leads. Never rejects: a
   * failure is logged once per cycle (the first failure and how many partitions failed) and
   * the partitions are tried again next cycle.
   */
  override async runOnce(): Promise<void> {
    const nowMs = this.#now();
    let topics: readonly CleanerTopic[];
    try {
      topics = await this.#opts.topics.all();
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'log cleaner could not list topics; retrying next cycle');
      return;
    }
    const maxKeys = this.#opts.maxKeys ?? DEFAULT_CLEANER_MAX_KEYS;
    const targetBytes = this.#opts.targetBytes ?? DEFAULT_COMPACTION_TARGET_BYTES;
    const due: Due[] = [];
    for (const t of topics) {
      const policy = cleanerPolicy(t.configs, this.#opts.broker, nowMs, maxKeys, targetBytes);
      if (policy === null) continue;
      for (let p = 0; p < t.partitions; p++) {
        if (this.#opts.leads(t.topicId, p, t.replicationFactor)) due.push({ topic: t.name, ref: { topicId: t.topicId, partition: p }, policy });
      }
    }

    await eachPartition(due, { concurrency: this.#concurrency, stopped: () => this.stopped, log: this.log, failed: 'log cleaner failed on some partitions; retrying next cycle' }, (d) => this.#cleanOne(d));
    if (!this.stopped) this.#stats.cycles++;
  }

  async #cleanOne(d: Due): Promise<void> {
    // The clock is read again for each partition: passes run one after another, and a cycle's
    // start would stamp delete horizons early by however long the cycle has run.
    const outcome = await this.#opts.log.cleanPartition(d.ref, { ...d.policy, nowMs: this.#now() });
    if (outcome.due === null) return;
    const s = this.#stats;
    s.passes++;
    s.recordsRemoved += outcome.recordsRemoved;
    s.bytesReclaimed += outcome.bytesReclaimed;
    s.objectsWritten += outcome.objectsWritten;
    if (outcome.aborted) s.swapsAborted++;
    if (outcome.aborted === 'deadline') {
      throw new BrokerTimeoutError('a log cleaner object finished uploading past --commit-deadline-ms; its swap was abandoned and the object is left to garbage collection (is the object store slow?)');
    }
    this.log?.debug({ topic: d.topic, partition: d.ref.partition, due: outcome.due, completed: outcome.completed, recordsRemoved: outcome.recordsRemoved, cleanedTo: outcome.cleanedTo }, 'log cleaner pass');
  }
}
