/**
 * Object compaction (docs/architecture.md §4.5): a flush writes one segment object holding a
 * small run of every partition it had batches for, so a busy cluster leaves each partition
 * with many small runs scattered over many objects — a large index in Redis, and one GET or
 * more per run for a consumer catching up. Every `--object-compaction-interval-ms`, each
 * broker takes the partitions whose leader hint it is, picks groups of consecutive small runs
 * and rewrites each group into one single-partition segment object of up to
 * `--object-compaction-target-bytes`; an atomic index swap (`lua/idx-swap.lua`) then replaces
 * the group's index entries with one. The old objects stay until object garbage collection
 * finds them unreferenced.
 *
 * Two parts: {@link planCompaction} decides which runs to rewrite (pure), and
 * {@link RunRewriter} rewrites one group (the partition log owns it; the job reaches it
 * through {@link PartitionLog.compactRuns}). The job between them keeps, per partition, only
 * what it saw on earlier cycles: when each high watermark was first seen (a run's age) and
 * where the settled part of the index ends (so a long index is not read again every cycle).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WireError } from '../../wire/index.js';
import { splitBatches, type RecordBatchView } from '../../wire/records/index.js';
import { BrokerTimeoutError } from '../errors.js';
import { StorageError, type ObjectStore } from '../storage/object-store.js';
import { commitByOnRedisClock, commitDeadlinePassed, DEFAULT_COMMIT_DEADLINE_MS } from './commit-deadline.js';
import type { PartitionOffsets, PartitionRef, PartitionStore, Run } from './partition-store.js';
import { buildSegment } from './segment.js';
import { eachPartition, PeriodicJob } from './job-timer.js';

/**
 * `--object-compaction-target-bytes` by default: 16 MiB. A merged run is read from its start
 * to find a batch inside it (the reader walks batch headers; ListOffsets by timestamp loads
 * the run), so the target bounds what a consumer resuming mid-run, or a timestamp lookup,
 * reads from a cold cache: at most 16 blocks, against about one GET per MiB for a catch-up.
 */
export const DEFAULT_COMPACTION_TARGET_BYTES = 16 * 1024 * 1024;
/** Partitions compacted at once by default: each holds up to a target's worth of bytes. */
export const DEFAULT_COMPACTION_CONCURRENCY = 2;
/**
 * Most runs one rewrite merges. Bounds the swap script's arguments and running time in Redis
 * (it looks every old run up), and the GETs of one rewrite; tiny runs take several rounds.
 */
export const MAX_RUNS_PER_GROUP = 1024;
/** Most index entries a cycle reads per partition; the rest wait for the next cycle. */
const MAX_RUNS_READ = 8192;
/** Ranged GETs one rewrite keeps in flight while reading its runs. */
const READ_CONCURRENCY = 8;

// ---- planning ----

/** What {@link planCompaction} decides by. */
export interface CompactionPolicy {
  nowMs: number;
  /** Runs seen for less than this long are left alone (tailing readers still read them). */
  minAgeMs: number;
  /** A group that could still grow is rewritten once its newest run was seen this long ago. */
  windowMs: number;
  targetBytes: number;
  maxRunsPerGroup: number;
}

/** Which runs to rewrite, and from where the next cycle needs to read the index. */
export interface CompactionPlan {
  /** Groups of consecutive runs, oldest first, each to become one run. */
  groups: Run[][];
  /**
   * The base offset of the first run that a later cycle might still rewrite, or null when
   * every run read is settled (the next cycle starts after the last run read).
   */
  openFrom: number | null;
}

/**
 * Picks the groups to rewrite from `runs` (consecutive runs of one partition, oldest first).
 * `seenAtMs(run)` is when the job first saw the run (null: not yet). Only runs seen at least
 * `minAgeMs` ago are considered, and the walk stops at the first younger one (runs are seen in
 * offset order). A run of `targetBytes` or more is left as it is. The others form maximal
 * sequences, split greedily into groups of at most `targetBytes` and `maxRunsPerGroup` runs.
 *
 * A group of two runs or more is rewritten when it cannot grow any more — the run after it
 * does not fit, is too big to join, or the group has its most runs — or when its newest run
 * was seen `windowMs` ago or more. In the second case the group could still grow, and its
 * result may be merged again later; so leading runs bigger than the rest of the group
 * together are left out (size tiers, as LSM trees merge): otherwise a slow partition would
 * rewrite one growing run every window, its bytes over and over, until it reached the target.
 */
export function planCompaction(runs: readonly Run[], seenAtMs: (run: Run) => number | null, policy: CompactionPolicy): CompactionPlan {
  const groups: Run[][] = [];
  let openFrom: number | null = null;
  let group: Run[] = [];
  let bytes = 0;
  /** Ends the current group; `closedBy` says why it cannot grow, null when it could. */
  const finish = (closedBy: 'full' | 'count' | null): void => {
    if (group.length === 0) return;
    let due: Run[] = [];
    if (closedBy !== null) due = group;
    else if (seenAtMs(group[group.length - 1]!)! <= policy.nowMs - policy.windowMs) due = withoutLeadingLarge(group);
    if (due.length >= 2) groups.push(due);
    // A group that the next run does not fit beside is settled, rewritten or a single run:
    // neither it nor its result will ever fit beside that run. One closed by its count may
    // merge again, as may anything left open.
    if (closedBy !== 'full') openFrom ??= group[0]!.base;
    group = [];
    bytes = 0;
  };
  for (const run of runs) {
    const seen = seenAtMs(run);
    if (seen === null || seen > policy.nowMs - policy.minAgeMs) {
      finish(null);
      openFrom ??= run.base;
      return { groups, openFrom };
    }
    if (run.byteLength >= policy.targetBytes) {
      finish('full');
      continue;
    }
    if (bytes + run.byteLength > policy.targetBytes) finish('full');
    else if (group.length === policy.maxRunsPerGroup) finish('count');
    group.push(run);
    bytes += run.byteLength;
  }
  finish(null);
  return { groups, openFrom };
}

/** The group from its first run that is no bigger than all the runs after it together. */
function withoutLeadingLarge(group: readonly Run[]): Run[] {
  let after = 0;
  for (const run of group) after += run.byteLength;
  for (let i = 0; i < group.length; i++) {
    after -= group[i]!.byteLength;
    if (group[i]!.byteLength <= after) return group.slice(i);
  }
  return [];
}

// ---- rewriting ----

/** What rewriting one group did. */
export interface CompactionOutcome {
  /** Whether the index now holds the merged run in place of the group. */
  swapped: boolean;
  /**
   * Why not: the index changed underneath (a run was deleted or already compacted elsewhere),
   * or the swap would have come after the commit deadline. The object written is left to
   * garbage collection either way.
   */
  aborted?: 'index-changed' | 'deadline';
  objectKey: string;
  /** Bytes of records rewritten (the merged run's length). */
  bytes: number;
}

/** What a {@link RunRewriter} works with; the partition log supplies it. */
export interface RunRewriterOptions {
  store: ObjectStore;
  state: Pick<PartitionStore, 'swapRuns' | 'timeMs'>;
  /** A run's bytes when they are in memory already (the write cache), as whole batches. */
  cached(run: Run): Buffer[] | undefined;
  /** Goes into object keys, as the ingest buffer's do. */
  nodeId: number;
  /** `--commit-deadline-ms`: the longest time from the start of the upload to the swap. */
  commitDeadlineMs?: number;
}

/**
 * Rewrites groups of consecutive runs of one partition into one segment object each, then
 * swaps the index. The object has a single chunk, its batches carry their real base offsets
 * (so it describes itself without Redis, and its run is indexed with `ownOffsets`), and its key
 * is `data/<yyyy-mm-dd>/<nodeId>-<session>-c<seq>.seg`. Runs the log cleaner left gaps in or
 * between are merged like any others: the merged run spans from the first one's base to the
 * last one's last offset.
 */
export class RunRewriter {
  readonly #opts: RunRewriterOptions;
  readonly #deadlineMs: number;
  readonly #sessionId = randomBytes(4).toString('hex');
  #seq = 0;

  constructor(opts: RunRewriterOptions) {
    this.#opts = opts;
    this.#deadlineMs = opts.commitDeadlineMs ?? DEFAULT_COMMIT_DEADLINE_MS;
  }

  /**
   * Rewrites `runs` (at least two, consecutive entries of the partition's index, in offset
   * order) into one object and swaps them for its run. Throws when a run's bytes cannot be read
   * or do not hold exactly the batches the index says (nothing is written then).
   */
  async rewrite(ref: PartitionRef, runs: readonly Run[]): Promise<CompactionOutcome> {
    if (runs.length < 2) throw new RangeError(`compaction needs at least two runs, got ${runs.length}`);
    for (let i = 1; i < runs.length; i++) {
      if (runs[i]!.base <= runs[i - 1]!.last) throw new RangeError(`runs ending at ${runs[i - 1]!.last} and starting at ${runs[i]!.base} are not in offset order`);
    }
    const bytes = await this.#read(runs);
    const batches: RecordBatchView[] = [];
    let maxTimestamp = -1;
    runs.forEach((run, i) => {
      for (const view of batchesOf(run, bytes[i]!)) batches.push(view);
      maxTimestamp = Math.max(maxTimestamp, run.maxTimestamp);
    });
    const layout = buildSegment([{ topicId: ref.topicId, partition: ref.partition, batches }]);
    const chunk = layout.chunks[0]!;
    const objectKey = `data/${new Date().toISOString().slice(0, 10)}/${this.#opts.nodeId}-${this.#sessionId}-c${String(this.#seq++).padStart(8, '0')}.seg`;
    const merged: Run = {
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
    // Past the deadline, garbage collection may already count the object as unreferenced
    // garbage (commit-deadline.ts): leave it to GC rather than reference it now. The swap
    // checks again on Redis's clock.
    if (commitDeadlinePassed(uploadStarted, this.#deadlineMs, performance.now())) {
      return { swapped: false, aborted: 'deadline', objectKey, bytes: merged.byteLength };
    }
    const result = await this.#opts.state.swapRuns(ref, runs, merged, await commitBy);
    if (result === 'swapped') return { swapped: true, objectKey, bytes: merged.byteLength };
    return { swapped: false, aborted: result === 'past-deadline' ? 'deadline' : 'index-changed', objectKey, bytes: merged.byteLength };
  }

  /**
   * Every run's bytes: from the write cache, or one ranged GET each, a few at a time. The
   * block cache is bypassed on purpose: a rewrite reads each byte once, and up to a target's
   * worth of them would push out the blocks consumers are reading.
   */
  async #read(runs: readonly Run[]): Promise<Buffer[][]> {
    const out: Buffer[][] = new Array(runs.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < runs.length) {
        const i = next++;
        const run = runs[i]!;
        out[i] = this.#opts.cached(run) ?? [await this.#opts.store.get(run.objectKey, { start: run.byteStart, end: run.byteStart + run.byteLength })];
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, runs.length) }, worker));
    return out;
  }
}

/**
 * The batches of one run, each given its real base offset (and leader epoch 0, as readers
 * see it), after checking that the bytes hold exactly the batches and offsets the index says.
 * Writing into cached bytes is what readers do too: a batch's offset never changes. An
 * ownOffsets run's batches already carry theirs, in order within the run, perhaps with gaps.
 */
export function batchesOf(run: Run, pieces: readonly Buffer[]): RecordBatchView[] {
  const views: RecordBatchView[] = [];
  let offset = run.base;
  let length = 0;
  let inOrder = true;
  try {
    for (const piece of pieces) {
      length += piece.length;
      for (const view of splitBatches(piece)) {
        if (run.ownOffsets) {
          if (view.baseOffset < offset) inOrder = false;
          offset = view.baseOffset;
        } else {
          view.setBaseOffset(offset);
        }
        view.setPartitionLeaderEpoch(0);
        offset += view.lastOffsetDelta + 1;
        views.push(view);
      }
    }
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    throw new StorageError(`object ${run.objectKey} has no whole batches at ${run.byteStart}+${run.byteLength}: ${err.message}`, { cause: err });
  }
  // An ownOffsets run may end in a gap: its last batch ends at or before its last offset.
  const endsRight = run.ownOffsets ? offset <= run.last + 1 && inOrder : offset === run.last + 1;
  if (length !== run.byteLength || views.length !== run.batchCount || !endsRight) {
    throw new StorageError(
      `object ${run.objectKey} at ${run.byteStart}+${run.byteLength} holds ${length} bytes, ${views.length} batches and offsets ${run.base}..${offset - 1}; the index says ${run.byteLength} bytes, ${run.batchCount} batches and ${run.base}..${run.last}`,
    );
  }
  return views;
}

// ---- the job ----

/** What the job needs of a topic (the topic store's `TopicInfo` has it). */
export interface CompactionTopic {
  name: string;
  topicId: string;
  partitions: number;
  replicationFactor: number;
}

/** What the job needs of the partition log. */
export interface CompactionLog {
  /** Up to `limit` runs whose last offset is ≥ `fromOffset`, with the partition's offsets. */
  indexedRuns(ref: PartitionRef, fromOffset: number, max: number): Promise<{ offsets: PartitionOffsets; runs: Run[] }>;
  /** Rewrites consecutive runs into one object and swaps the index (see {@link RunRewriter}). */
  compactRuns(ref: PartitionRef, runs: readonly Run[]): Promise<CompactionOutcome>;
}

/** What the job is given. */
export interface ObjectCompactionJobOptions {
  topics: { all(): Promise<readonly CompactionTopic[]> };
  /** Whether this broker handles a partition: it is the partition's leader hint. */
  leads(topicId: string, partition: number, replicationFactor: number): boolean;
  log: CompactionLog;
  /** Time between the end of one cycle and the start of the next. */
  intervalMs: number;
  /** See {@link CompactionPolicy}. */
  minAgeMs: number;
  windowMs: number;
  targetBytes: number;
  /** Partitions in flight at once (default {@link DEFAULT_COMPACTION_CONCURRENCY}). */
  concurrency?: number;
  /** Most runs per rewrite (default {@link MAX_RUNS_PER_GROUP}). */
  maxRunsPerGroup?: number;
  /** The clock ages are measured by (tests may move it). */
  now?: () => number;
}

/** Counters for /metrics. */
export interface ObjectCompactionStats {
  /** Cycles completed. */
  cycles: number;
  /** Segment objects written by compaction, swapped in or not. */
  objectsWritten: number;
  /** Bytes of records written into those objects. */
  bytesRewritten: number;
  /** Runs replaced in the index by merged runs. */
  runsMerged: number;
  /** Rewrites whose swap was not applied (index changed underneath, or past the deadline). */
  swapsAborted: number;
  /** Runs in groups that were due at the end of the last cycle but not rewritten. */
  backlogRuns: number;
}

/** What the job remembers of one partition between cycles. */
interface PartitionMemory {
  /**
   * High watermarks with when they were first seen, oldest first. A run was first seen at the
   * first of these above its last offset. Only the newest entry older than the horizon both
   * ages are measured against is kept from before it: every run below it is old enough.
   */
  seen: { hw: number; atMs: number }[];
  /** Where the next cycle starts reading the index: runs before it are settled. */
  readFrom: number;
  /** The cycle that last led this partition (memory of partitions led elsewhere is dropped). */
  cycle: number;
}

/** One partition a cycle compacts. */
interface Due {
  topic: string;
  ref: PartitionRef;
  memory: PartitionMemory;
}

/**
 * The periodic object compaction job of one broker. Start it once the broker knows its node
 * id; a broker restarted forgets what it saw, so runs become old enough again only after
 * `minAgeMs` of its own watching (never sooner than they really are).
 */
export class ObjectCompactionJob extends PeriodicJob {
  readonly #opts: ObjectCompactionJobOptions;
  readonly #concurrency: number;
  readonly #maxRunsPerGroup: number;
  readonly #now: () => number;
  readonly #memory = new Map<string, PartitionMemory>();
  #stats: ObjectCompactionStats = { cycles: 0, objectsWritten: 0, bytesRewritten: 0, runsMerged: 0, swapsAborted: 0, backlogRuns: 0 };

  constructor(opts: ObjectCompactionJobOptions) {
    super(opts.intervalMs, 'object compaction');
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? DEFAULT_COMPACTION_CONCURRENCY);
    this.#maxRunsPerGroup = Math.max(2, opts.maxRunsPerGroup ?? MAX_RUNS_PER_GROUP);
    this.#now = opts.now ?? Date.now;
  }

  stats(): ObjectCompactionStats {
    return { ...this.#stats };
  }


  /**
   * One cycle over every partition this broker leads. Never rejects: a failure is logged once
   * per cycle (the first failure and how many partitions failed) and tried again next cycle.
   */
  override async runOnce(): Promise<void> {
    const cycle = this.#stats.cycles + 1;
    let topics: readonly CompactionTopic[];
    try {
      topics = await this.#opts.topics.all();
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'object compaction could not list topics; retrying next cycle');
      return;
    }
    const due: Due[] = [];
    for (const t of topics) {
      for (let p = 0; p < t.partitions; p++) {
        if (!this.#opts.leads(t.topicId, p, t.replicationFactor)) continue;
        const key = `${t.topicId}:${p}`;
        let memory = this.#memory.get(key);
        if (!memory) this.#memory.set(key, (memory = { seen: [], readFrom: 0, cycle }));
        memory.cycle = cycle;
        due.push({ topic: t.name, ref: { topicId: t.topicId, partition: p }, memory });
      }
    }
    for (const [key, memory] of this.#memory) if (memory.cycle !== cycle) this.#memory.delete(key);

    let backlog = 0;
    await eachPartition(due, { concurrency: this.#concurrency, stopped: () => this.stopped, log: this.log, failed: 'object compaction failed on some partitions; retrying next cycle' }, async (d) => {
        backlog += await this.#compact(d);
      });
    this.#stats.backlogRuns = backlog;
    if (!this.stopped) this.#stats.cycles = cycle;
  }

  /** Compacts one partition; answers how many runs of due groups were left as they were. */
  async #compact(d: Due): Promise<number> {
    const nowMs = this.#now();
    const { offsets, runs } = await this.#readIndex(d.ref, d.memory.readFrom);
    const memory = d.memory;
    remember(memory, offsets.hw, nowMs, Math.max(this.#opts.minAgeMs, this.#opts.windowMs));
    const live = runs.filter((r) => r.base >= offsets.logStart);
    const plan = planCompaction(live, (run) => seenAt(memory, run), {
      nowMs,
      minAgeMs: this.#opts.minAgeMs,
      windowMs: this.#opts.windowMs,
      targetBytes: this.#opts.targetBytes,
      maxRunsPerGroup: this.#maxRunsPerGroup,
    });
    let readFrom = plan.openFrom ?? (live.length > 0 ? live[live.length - 1]!.last + 1 : Math.max(memory.readFrom, offsets.logStart));
    let left = 0;
    let failure: unknown = null;
    for (const group of plan.groups) {
      if (this.stopped || failure !== null) {
        left += group.length;
        readFrom = Math.min(readFrom, group[0]!.base);
        continue;
      }
      try {
        const outcome = await this.#opts.log.compactRuns(d.ref, group);
        this.#stats.objectsWritten++;
        this.#stats.bytesRewritten += outcome.bytes;
        if (outcome.swapped) {
          this.#stats.runsMerged += group.length;
          this.log?.debug({ topic: d.topic, partition: d.ref.partition, runs: group.length, bytes: outcome.bytes, objectKey: outcome.objectKey }, 'compacted runs into one object');
          continue;
        }
        this.#stats.swapsAborted++;
        if (outcome.aborted === 'deadline') {
          failure = new BrokerTimeoutError(`object ${outcome.objectKey} finished uploading past --commit-deadline-ms; its swap was abandoned and the object is left to garbage collection (is the object store slow?)`);
        }
      } catch (err) {
        failure = err;
      }
      // Read this group again next cycle: a changed index is re-planned there.
      left += group.length;
      readFrom = Math.min(readFrom, group[0]!.base);
    }
    memory.readFrom = readFrom;
    if (failure !== null) throw failure;
    return left;
  }

  /** Up to {@link MAX_RUNS_READ} runs from `fromOffset` on, with the offsets read first. */
  async #readIndex(ref: PartitionRef, fromOffset: number): Promise<{ offsets: PartitionOffsets; runs: Run[] }> {
    return this.#opts.log.indexedRuns(ref, fromOffset, MAX_RUNS_READ);
  }
}

/** Records `hw` as seen at `nowMs`, dropping what no age measured against `horizonMs` needs. */
function remember(memory: PartitionMemory, hw: number, nowMs: number, horizonMs: number): void {
  const seen = memory.seen;
  if (seen.length === 0 || hw > seen[seen.length - 1]!.hw) seen.push({ hw, atMs: nowMs });
  let oldEnough = 0;
  while (oldEnough + 1 < seen.length && seen[oldEnough + 1]!.atMs <= nowMs - horizonMs) oldEnough++;
  if (oldEnough > 0) seen.splice(0, oldEnough);
}

/** When the job first saw `run`: the first high watermark above its last offset. */
function seenAt(memory: PartitionMemory, run: Run): number | null {
  for (const s of memory.seen) if (s.hw > run.last) return s.atMs;
  return null;
}
