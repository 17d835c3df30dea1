/**
 * The partition store: each partition's order in Redis — offsets, the run index and producer
 * state (docs/architecture.md §4.1, §4.2, §7). Only the partition log calls it; it knows Redis
 * keys and Lua scripts (`src/log/lua/`), not segment formats or Kafka requests.
 *
 * Offsets are JS numbers: they stay below 2^53 by construction, and the Lua scripts format
 * them with `%.0f` so large values never reach Redis in exponent notation.
 */
import type { Redis } from 'ioredis';
import { partitionKeys, HIGH_WATERMARK_CHANNEL, type PartitionRef } from '../coordination/keys.js';
import { mapRedisError, redisCall, redisTimeMs, ScriptRunner, type ScriptCall } from '../coordination/redis.js';

export type { PartitionRef } from '../coordination/keys.js';

/** One batch of a commit, as read from its RecordBatch v2 header and its place in the object. */
export interface BatchCommitInput {
  /** Offset of the batch's first byte inside the segment object. */
  byteStart: number;
  byteLength: number;
  lastOffsetDelta: number;
  /** -1 for a non-idempotent producer (no sequence checks). */
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  maxTimestamp: number;
  /** Bit 0 transactional, bit 1 control (the RecordBatch attributes bits 4 and 5). */
  flags: number;
  recordCount: number;
}

/** Outcome of one batch: stored, duplicate of an earlier batch, or a Kafka error code. */
export interface BatchCommitResult {
  /** 0, OUT_OF_ORDER_SEQUENCE_NUMBER or INVALID_PRODUCER_EPOCH. */
  errorCode: number;
  /** Offset of the batch's first record; the original one for a duplicate; -1 on error. */
  baseOffset: number;
  /** True when the batch was already stored: nothing new was written for it. */
  duplicate: boolean;
}

/** One partition's result of {@link PartitionStore.commit}. */
export interface PartitionCommitResult {
  /**
   * Set when Redis refused the commit because its commit-by time had passed: nothing was
   * written for this partition (results empty, hw and logStart -1).
   */
  pastDeadline?: true;
  /** Per batch, in input order. */
  results: BatchCommitResult[];
  /** High watermark after the commit. */
  hw: number;
  logStart: number;
}

/** One partition's part of a commit: its batches in log order. */
export interface PartitionCommitInput {
  ref: PartitionRef;
  batches: BatchCommitInput[];
}

/**
 * A run: adjacent batches of one partition inside one segment object, covering the offsets
 * `base` to `last`. A run committed by a flush holds batches with consecutive offsets, its
 * first at `base`: readers give each batch its offset by counting from there. A run written by
 * object compaction or the log cleaner (docs/architecture.md §4.5, §4.6) has `ownOffsets`: its
 * batches carry their real base offsets, and may leave gaps (records the cleaner removed)
 * anywhere between `base` and `last`.
 */
export interface Run {
  /** First offset of the run. */
  base: number;
  /** Last offset of the run (the idx score). */
  last: number;
  maxTimestamp: number;
  byteStart: number;
  byteLength: number;
  batchCount: number;
  objectKey: string;
  /**
   * Set (true) when the batches carry their own base offsets, with gaps allowed; absent for a
   * run of consecutive offsets. Stored as a negative batch count in the idx member.
   */
  ownOffsets?: true;
}

/** An aborted transaction of a partition: its producer, first offset and abort marker's offset. */
export interface AbortedRange {
  producerId: number;
  firstOffset: number;
  markerOffset: number;
}

/** What a log cleaner swap records besides the runs (see {@link PartitionStore.replaceRuns}). */
export interface CleanerStateChange {
  /** The new first dirty offset; never lowers the stored one. */
  cleanedTo?: number;
  /** When the earliest kept tombstone or marker may go; null removes it. */
  cleanHorizon?: number | null;
  /** Aborted transactions whose markers the rewrite removed. */
  abortedRemoved?: readonly AbortedRange[];
}

/** A partition's offsets, from its meta hash. */
export interface PartitionOffsets {
  /** High watermark: the next offset to assign. */
  hw: number;
  logStart: number;
  /** Last stable offset; equal to hw until transactions exist. */
  lso: number;
}

/** What a partition keeps, as {@link PartitionStore.usage} counts it from the run index. */
export interface PartitionUsage {
  logStart: number;
  hw: number;
  /** Bytes of the runs kept, in segment objects (a run straddling `logStart` counts whole). */
  storedBytes: number;
  /** Runs kept. */
  runs: number;
  /** Distinct segment objects holding them. */
  objects: number;
}

/** A high-watermark change, as published on {@link HIGH_WATERMARK_CHANNEL}. */
export interface HighWatermarkUpdate {
  ref: PartitionRef;
  hw: number;
}

/** Partitions whose usage one pipeline reads. */
const USAGE_CHUNK = 128;

/** Runs read per round trip when walking the index. */
const SCAN_PAGE = 256;
/** Runs read per partition and round trip when {@link PartitionStore.forEachRun} walks whole indexes. */
const WALK_PAGE = 1024;
/** Partitions whose index pages share one pipeline in {@link PartitionStore.forEachRun}. */
const WALK_PARTITIONS = 128;

/** Runs one retention-bytes.lua call reads at most: bounds how long it holds Redis. */
const SIZE_WALK_RUNS = 2048;

/** Values per batch in commit.lua's ARGV. */
const ARGS_PER_BATCH = 9;
/** Kafka's default producer.id.expiration.ms: one day. */
export const DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000;

/** One producer's state on a partition, as DescribeProducers shows it. */
export interface ProducerStateSummary {
  producerId: number;
  epoch: number;
  /** Last sequence of its newest batch, -1 if none is remembered. */
  lastSequence: number;
  /** Base offset of its newest batch, -1 if none is remembered. */
  lastOffset: number;
  /** When its latest batch was committed (ms since the epoch), -1 if unknown. */
  lastCommitMs: number;
}

/**
 * Parses an idx member `base|last|maxTimestamp|byteStart|byteLength|batchCount|objectKey`. A
 * negative batchCount marks a run whose batches carry their own offsets ({@link Run.ownOffsets}).
 */
/**
 * The idx member a parsed run was read from, exactly as stored, when formatting the run again
 * might not give the same string (a timestamp beyond 2^53 prints differently in JavaScript and
 * in Lua): swaps name old runs by it. Offsets and byte positions stay below 2^53 by
 * construction. Copies of a run are formatted afresh.
 */
const storedMembers = new WeakMap<Run, string>();

/** The idx member of `run`: as stored when it was read from idx, else {@link formatRun}. */
export function memberOf(run: Run): string {
  return storedMembers.get(run) ?? formatRun(run);
}

/** What an index swap did (idx-swap.lua). */
export type SwapResult = 'swapped' | 'index-changed' | 'past-deadline';

export function parseRun(member: string): Run {
  const fields = member.split('|', 7);
  if (fields.length !== 7) throw new Error(`malformed run index entry "${member}"`);
  // objectKey is the last field and never contains '|', so split's limit cannot cut it short.
  const batchCount = Number(fields[5]);
  const run: Run = {
    base: Number(fields[0]),
    last: Number(fields[1]),
    maxTimestamp: Number(fields[2]),
    byteStart: Number(fields[3]),
    byteLength: Number(fields[4]),
    batchCount: Math.abs(batchCount),
    objectKey: fields[6],
  };
  if (batchCount < 0) run.ownOffsets = true;
  // Only a number of 16 digits or more can print back differently (today's timestamps have 13),
  // so the common run costs no map entry (parseRun is on every Fetch's path).
  if (fields[2]!.length > 15) storedMembers.set(run, member);
  return run;
}

/**
 * The idx member of a run, as commit.lua writes it: the inverse of {@link parseRun} (Lua's
 * `%.0f` and JavaScript's `String` print a safe integer with the same digits).
 */
export function formatRun(run: Run): string {
  const count = run.ownOffsets ? -run.batchCount : run.batchCount;
  return `${run.base}|${run.last}|${run.maxTimestamp}|${run.byteStart}|${run.byteLength}|${count}|${run.objectKey}`;
}

/** Reads a meta hash field: absent means `absent`. */
function metaNumber(value: string | null | undefined, absent: number): number {
  return value === null || value === undefined ? absent : Number(value);
}

function toOffsets(values: (string | null)[]): PartitionOffsets {
  const hw = metaNumber(values[0], 0);
  // `lso` is stored only while a transaction is open on the partition; otherwise it is hw.
  return { hw, logStart: metaNumber(values[1], 0), lso: Math.min(hw, metaNumber(values[2], hw)) };
}

/** Encodes updates as `topicId:partition:hw;…` (topic ids are base64url: no `:` or `;`). */
export function encodeHighWatermarks(updates: readonly HighWatermarkUpdate[]): string {
  return updates.map((u) => `${u.ref.topicId}:${u.ref.partition}:${u.hw}`).join(';');
}

/** Decodes {@link encodeHighWatermarks}' payload; throws on a malformed entry. */
export function decodeHighWatermarks(payload: string): HighWatermarkUpdate[] {
  if (payload === '') return [];
  return payload.split(';').map((entry) => {
    const [topicId, partition, hw] = entry.split(':');
    const p = Number(partition);
    const h = Number(hw);
    if (topicId === undefined || topicId === '' || !Number.isInteger(p) || !Number.isInteger(h) || entry.split(':').length !== 3) {
      throw new Error(`malformed high-watermark entry "${entry}" on ${HIGH_WATERMARK_CHANNEL}`);
    }
    return { ref: { topicId, partition: p }, hw: h };
  });
}

/**
 * Partition state in Redis: commits, offsets, the run index, DeleteRecords and high-watermark
 * notifications. Stateless apart from the client; one instance per broker.
 */
export class PartitionStore {
  readonly #redis: Redis;
  readonly #scripts: ScriptRunner;
  readonly #producerIdExpirationMs: number;

  /**
   * @param redis the command client (see `createCommandClient`).
   * @param options.producerIdExpirationMs a producer's state on a partition is forgotten once
   *   no batch of it has been committed there for this long (Kafka's producer.id.expiration.ms;
   *   default one day). It is removed by a later commit to that partition.
   */
  constructor(redis: Redis, options: { producerIdExpirationMs?: number } = {}) {
    this.#redis = redis;
    this.#scripts = new ScriptRunner(redis);
    this.#producerIdExpirationMs = options.producerIdExpirationMs ?? DEFAULT_PRODUCER_ID_EXPIRATION_MS;
  }

  /**
   * Commits one flush: for every partition, checks each batch's producer state and assigns
   * offsets, adding one index entry per run of adjacent accepted batches. One commit.lua call
   * per partition, all in one pipeline; results in input order. A partition whose script
   * runs after `commitByMs` (Redis's clock; -1: no deadline) writes nothing and answers
   * `pastDeadline`.
   *
   * The pipeline is written to the connection before this returns (the promise only waits for
   * the answers), so commits called one after another run in Redis in call order.
   *
   * Throws `RedisUnavailableError` when Redis cannot be reached; then some partitions may or
   * may not have committed, and producers' retries resolve it through idempotence.
   */
  async commit(objectKey: string, parts: readonly PartitionCommitInput[], commitByMs = -1): Promise<PartitionCommitResult[]> {
    if (objectKey.includes('|')) throw new Error(`object key "${objectKey}" contains "|", which the run index uses as separator`);
    const now = Date.now();
    const expireBefore = now - this.#producerIdExpirationMs;
    const calls: ScriptCall[] = parts.map(({ ref, batches }) => {
      const k = partitionKeys(ref);
      const args: (string | number)[] = new Array(5 + batches.length * ARGS_PER_BATCH);
      args[0] = objectKey;
      args[1] = batches.length;
      args[2] = now;
      args[3] = expireBefore;
      args[4] = commitByMs;
      let at = 5;
      for (const b of batches) {
        args[at++] = b.byteStart;
        args[at++] = b.byteLength;
        args[at++] = b.lastOffsetDelta;
        args[at++] = b.producerId;
        args[at++] = b.producerEpoch;
        args[at++] = b.baseSequence;
        args[at++] = b.maxTimestamp;
        args[at++] = b.flags;
        args[at++] = b.recordCount;
      }
      return { script: 'commit', keys: [k.meta, k.idx, k.tidx, k.producers, k.txn, k.aborted, k.producersSeen], args };
    });
    const replies = await this.#scripts.runMany(calls);
    return replies.map((reply, i) => {
      const flat = reply as number[];
      if (flat.length === 1) return { pastDeadline: true, results: [], hw: -1, logStart: -1 };
      const n = parts[i].batches.length;
      const results: BatchCommitResult[] = new Array(n);
      for (let j = 0; j < n; j++) {
        results[j] = { errorCode: flat[3 * j], baseOffset: flat[3 * j + 1], duplicate: flat[3 * j + 2] === 1 };
      }
      return { results, hw: flat[3 * n], logStart: flat[3 * n + 1] };
    });
  }

  /** Redis's clock (TIME), in ms since the epoch: the one clock commit deadlines use. */
  timeMs(): Promise<number> {
    return redisTimeMs(this.#redis);
  }

  /** Offsets of several partitions in one round trip (pipelined HMGETs), in input order. */
  async offsets(refs: readonly PartitionRef[]): Promise<PartitionOffsets[]> {
    if (refs.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const ref of refs) pipeline.hmget(partitionKeys(ref).meta, 'hw', 'logStart', 'lso');
    const replies = await redisCall('read offsets', () => pipeline.exec());
    return (replies ?? []).map(([err, values]) => {
      if (err) throw mapRedisError(err, 'read offsets');
      return toOffsets(values as (string | null)[]);
    });
  }

  /**
   * Up to `limit` runs whose last offset is ≥ `fromOffset`, in offset order, with the
   * partition's offsets, in one round trip. The meta hash is read first in the pipeline, and
   * runs at or above that hw (committed in between) are dropped, so every run returned lies
   * below the hw returned.
   */
  /**
   * The runs from `fromOffset` on, read a page at a time until at least `max` or the end of the
   * index (the jobs' walk: object compaction, the log cleaner), with the offsets read with the
   * first page.
   */
  async runsPaged(ref: PartitionRef, fromOffset: number, max: number): Promise<{ offsets: PartitionOffsets; runs: Run[] }> {
    const first = await this.runsFrom(ref, fromOffset, SCAN_PAGE);
    const runs = first.runs;
    // Later pages may hold runs committed after `first.offsets` was read: newer than that hw.
    for (let page = first.runs; page.length === SCAN_PAGE && runs.length < max; ) {
      page = (await this.runsFrom(ref, runs[runs.length - 1]!.last + 1, SCAN_PAGE)).runs;
      runs.push(...page);
    }
    return { offsets: first.offsets, runs };
  }

  /**
   * Up to `limit` runs whose last offset is ≥ `fromOffset`, in offset order, with the
   * partition's offsets, in one round trip (see {@link runsFrom}).
   */
  async runsFrom(ref: PartitionRef, fromOffset: number, limit: number): Promise<{ offsets: PartitionOffsets; runs: Run[] }> {
    const k = partitionKeys(ref);
    const pipeline = this.#redis.pipeline();
    pipeline.hmget(k.meta, 'hw', 'logStart', 'lso');
    pipeline.zrangebyscore(k.idx, fromOffset, '+inf', 'LIMIT', 0, limit);
    const replies = await redisCall('read runs', () => pipeline.exec());
    const [[metaErr, meta], [idxErr, members]] = replies ?? [];
    if (metaErr) throw mapRedisError(metaErr, 'read offsets');
    if (idxErr) throw mapRedisError(idxErr, 'read runs');
    const offsets = toOffsets(meta as (string | null)[]);
    const runs: Run[] = [];
    for (const member of members as string[]) {
      const run = parseRun(member);
      if (run.base >= offsets.hw) break;
      runs.push(run);
    }
    return { offsets, runs };
  }

  /**
   * The first run holding a batch whose max timestamp is ≥ `timestampMs` — where ListOffsets
   * by timestamp finds its offset by reading the run's batch headers — or null. The run may
   * straddle logStart; the caller clamps.
   */
  async runAtTimestamp(ref: PartitionRef, timestampMs: number): Promise<Run | null> {
    const found = await this.#runByTimestamp(ref, String(timestampMs));
    if (found === null) return null;
    if (found.run.maxTimestamp >= timestampMs) return found.run;
    // Only after DeleteRecords removed the run that raised the running max to its tidx score:
    // the first remaining run may lie below the target, so walk forward. The walk ends at the
    // latest at the next tidx entry's run, whose own max is its score.
    for await (const run of this.#runsAfter(ref, found.run.last)) {
      if (run.maxTimestamp >= timestampMs) return run;
    }
    return null;
  }

  /**
   * The first run holding the partition's max timestamp (ListOffsets MAX_TIMESTAMP, KIP-734),
   * or null when no remaining batch carries a timestamp ≥ 0.
   */
  async maxTimestampRun(ref: PartitionRef): Promise<Run | null> {
    const found = await this.#runByTimestamp(ref, 'max');
    if (found === null) return null;
    if (found.run.last === found.tidxLast && found.run.maxTimestamp === found.score) return found.run;
    // The run with the max was removed (DeleteRecords, the log cleaner) or the cleaner lowered
    // its max: the max of what remains may lie in any run, so scan them all.
    let best: Run | null = null;
    for await (const run of this.#runsAfter(ref, -1)) {
      if (best === null || run.maxTimestamp > best.maxTimestamp) best = run;
    }
    return best !== null && best.maxTimestamp >= 0 ? best : null;
  }

  async #runByTimestamp(ref: PartitionRef, target: string): Promise<{ tidxLast: number; score: number; run: Run } | null> {
    const k = partitionKeys(ref);
    const reply = await this.#scripts.run({ script: 'run-by-timestamp', keys: [k.idx, k.tidx], args: [target] });
    if (!Array.isArray(reply)) return null;
    const [tidxMember, idxMember, score] = reply as [string, string, string];
    return { tidxLast: Number(tidxMember), score: Number(score), run: parseRun(idxMember) };
  }

  /** The runs after the one ending at `last`, in offset order, read in pages. */
  async *#runsAfter(ref: PartitionRef, last: number): AsyncGenerator<Run> {
    const idx = partitionKeys(ref).idx;
    let after = last;
    for (;;) {
      const members = await redisCall('read runs', () => this.#redis.zrangebyscore(idx, `(${after}`, '+inf', 'LIMIT', 0, SCAN_PAGE));
      for (const member of members) {
        const run = parseRun(member);
        after = run.last;
        yield run;
      }
      if (members.length < SCAN_PAGE) return;
    }
  }

  /**
   * Where time retention would move the log start for records whose batches' max timestamps
   * are all below `cutoffMs`, with the partition's offsets: the base offset of the first run
   * holding a batch with max timestamp ≥ `cutoffMs` (every run before it is wholly older), or
   * the high watermark when there is no such run. The target may lie at or below `logStart`,
   * which means nothing is due.
   *
   * The high watermark is read before the run: when no run qualifies, everything below that
   * hw was older than the cutoff, whereas a hw read afterwards could include a fresh run
   * committed in between.
   */
  async retentionTarget(ref: PartitionRef, cutoffMs: number): Promise<{ offsets: PartitionOffsets; target: number }> {
    const [offsets] = await this.offsets([ref]);
    const run = await this.runAtTimestamp(ref, cutoffMs);
    return { offsets: offsets!, target: run ? run.base : offsets!.hw };
  }

  /**
   * Where size retention would move the log start so that the partition keeps at least
   * `maxBytes` (≥ 0): the base offset of the oldest run to keep — the first run, walking back
   * from the newest, at which the runs' byte lengths add up to `maxBytes` — or null when all
   * its runs together stay below it. Sizes are whole runs, a run straddling `logStart`
   * included. The walk (retention-bytes.lua) reads at most {@link SIZE_WALK_RUNS} runs per
   * call and goes on below the last run read.
   */
  async sizeRetentionTarget(ref: PartitionRef, maxBytes: number): Promise<number | null> {
    const idx = partitionKeys(ref).idx;
    let max = '+inf';
    let sum = 0;
    for (;;) {
      const reply = (await this.#scripts.run({ script: 'retention-bytes', keys: [idx], args: [maxBytes, max, sum, SIZE_WALK_RUNS] })) as number[];
      if (reply[0] === 1) return reply[1]!;
      if (reply[0] === 0) return null;
      max = `(${reply[1]}`;
      sum = reply[2]!;
    }
  }

  /**
   * What each partition keeps, from its index, in input order: the runs from `logStart` below
   * the hw (a run straddling `logStart` counted whole), their bytes and their distinct segment
   * objects. Meta and the first page of every partition are read in one pipeline, then further
   * pages of the partitions that have more, pipelined likewise.
   */
  async usage(refs: readonly PartitionRef[]): Promise<PartitionUsage[]> {
    // A bounded number of partitions per round trip, so that describing a whole cluster
    // (DescribeLogDirs with topics null) never builds one huge pipeline.
    const out: PartitionUsage[] = [];
    for (let i = 0; i < refs.length; i += USAGE_CHUNK) out.push(...(await this.#usageOf(refs.slice(i, i + USAGE_CHUNK))));
    return out;
  }

  async #usageOf(refs: readonly PartitionRef[]): Promise<PartitionUsage[]> {
    if (refs.length === 0) return [];
    const out: PartitionUsage[] = [];
    const objects: Set<string>[] = [];
    const pipeline = this.#redis.pipeline();
    for (const ref of refs) {
      const k = partitionKeys(ref);
      pipeline.hmget(k.meta, 'hw', 'logStart', 'lso');
      pipeline.zrangebyscore(k.idx, '-inf', '+inf', 'LIMIT', 0, SCAN_PAGE);
    }
    let replies = (await redisCall('read usage', () => pipeline.exec())) ?? [];
    /** Per partition with a full page, where its next page starts. */
    let more: { i: number; after: number }[] = [];
    const add = (i: number, members: string[]): void => {
      const u = out[i]!;
      let last = -1;
      for (const member of members) {
        const run = parseRun(member);
        last = run.last;
        // Runs committed after meta was read lie at or above its hw.
        if (run.last < u.logStart || run.base >= u.hw) continue;
        u.storedBytes += run.byteLength;
        u.runs++;
        objects[i]!.add(run.objectKey);
      }
      if (members.length === SCAN_PAGE) more.push({ i, after: last });
    };
    refs.forEach((_, i) => {
      const [[metaErr, meta], [idxErr, members]] = [replies[2 * i]!, replies[2 * i + 1]!];
      if (metaErr) throw mapRedisError(metaErr, 'read offsets');
      if (idxErr) throw mapRedisError(idxErr, 'read runs');
      const offsets = toOffsets(meta as (string | null)[]);
      out.push({ logStart: offsets.logStart, hw: offsets.hw, storedBytes: 0, runs: 0, objects: 0 });
      objects.push(new Set());
      add(i, members as string[]);
    });
    while (more.length > 0) {
      const round = more;
      more = [];
      const next = this.#redis.pipeline();
      for (const { i, after } of round) next.zrangebyscore(partitionKeys(refs[i]!).idx, `(${after}`, '+inf', 'LIMIT', 0, SCAN_PAGE);
      replies = (await redisCall('read usage', () => next.exec())) ?? [];
      round.forEach(({ i }, j) => {
        const [err, members] = replies[j]!;
        if (err) throw mapRedisError(err, 'read runs');
        add(i, members as string[]);
      });
    }
    out.forEach((u, i) => (u.objects = objects[i]!.size));
    return out;
  }

  /**
   * Calls `visit(i, run)` for every run in the index of `refs[i]`, each index in offset order,
   * reading pages of many partitions in one pipeline (object garbage collection's scan).
   * Pages continue by score after the last run seen, not by rank: runs removed from the front
   * meanwhile (DeleteRecords, retention) would shift ranks and make a rank walk skip runs that
   * stay, whereas a run present for the whole walk is always visited (scores are last
   * offsets, unique within a partition). A run added during the walk may or may not be.
   */
  async forEachRun(refs: readonly PartitionRef[], visit: (index: number, run: Run) => void): Promise<void> {
    let todo: { index: number; after: string }[] = refs.map((_, index) => ({ index, after: '-inf' }));
    while (todo.length > 0) {
      const batch = todo.slice(0, WALK_PARTITIONS);
      const next = todo.slice(WALK_PARTITIONS);
      const pipeline = this.#redis.pipeline();
      for (const c of batch) pipeline.zrangebyscore(partitionKeys(refs[c.index]).idx, c.after, '+inf', 'LIMIT', 0, WALK_PAGE);
      const replies = (await redisCall('walk run index', () => pipeline.exec())) ?? [];
      batch.forEach((c, i) => {
        const [err, members] = replies[i] ?? [new Error('no reply')];
        if (err) throw mapRedisError(err, 'walk run index');
        let last = -1;
        for (const member of members as string[]) {
          const run = parseRun(member);
          last = run.last;
          visit(c.index, run);
        }
        if ((members as string[]).length === WALK_PAGE) next.push({ index: c.index, after: `(${last}` });
      });
      todo = next;
    }
  }

  /** The partition's newest run, or null when its index is empty. */
  async lastRun(ref: PartitionRef): Promise<Run | null> {
    const members = await redisCall('read last run', () => this.#redis.zrange(partitionKeys(ref).idx, -1, -1));
    return members.length === 0 ? null : parseRun(members[0]);
  }

  /**
   * DeleteRecords: moves logStart to `max(logStart, target)` and drops the runs entirely below
   * it, and the aborted transactions whose abort marker is below it. `target` -1 means hw. A target beyond hw answers OFFSET_OUT_OF_RANGE with the current
   * logStart.
   */
  async deleteRecords(ref: PartitionRef, target: number): Promise<{ errorCode: number; logStart: number }> {
    const k = partitionKeys(ref);
    const reply = (await this.#scripts.run({ script: 'delete-records', keys: [k.meta, k.idx, k.tidx, k.aborted], args: [target] })) as number[];
    return { errorCode: reply[0], logStart: reply[1] };
  }

  /**
   * Object compaction's index swap (docs/architecture.md §4.5, idx-swap.lua): replaces the
   * consecutive runs `old` (as read from idx, in offset order) with `merged`, which spans
   * exactly their offsets, and trims the time index to match, in one step. 'index-changed'
   * when any of `old` is no longer in idx (retention, DeleteRecords or another compaction got
   * there first), 'past-deadline' when Redis's clock is past `commitByMs` (-1: none); then
   * nothing changed.
   */
  async swapRuns(ref: PartitionRef, old: readonly Run[], merged: Run, commitByMs = -1): Promise<SwapResult> {
    return this.replaceRuns(ref, old, merged, {}, commitByMs);
  }

  /**
   * The log cleaner's index swap (docs/architecture.md §4.6, idx-swap.lua): replaces the
   * consecutive runs `old` with `replacement` (spanning exactly their offsets), or with none,
   * and in the same step records the partition's cleaner state and drops the aborted
   * transactions whose markers the rewrite removed. `old` may be empty to record the state
   * alone. 'index-changed' or 'past-deadline', with nothing changed, as {@link swapRuns}.
   */
  async replaceRuns(ref: PartitionRef, old: readonly Run[], replacement: Run | null, changes: CleanerStateChange, commitByMs = -1): Promise<SwapResult> {
    if (replacement?.objectKey.includes('|')) throw new Error(`object key "${replacement.objectKey}" contains "|", which the run index uses as separator`);
    const k = partitionKeys(ref);
    const args: (string | number)[] = [commitByMs, replacement ? formatRun(replacement) : '', old.length, ...old.map(memberOf)];
    const aborted = changes.abortedRemoved ?? [];
    if (changes.cleanedTo !== undefined || changes.cleanHorizon !== undefined || aborted.length > 0) {
      args.push(changes.cleanedTo ?? '', changes.cleanHorizon === undefined ? '' : (changes.cleanHorizon ?? '-'));
      for (const a of aborted) args.push(`${a.producerId}|${a.firstOffset}|${a.markerOffset}`);
    }
    const reply = await this.#scripts.run({ script: 'idx-swap', keys: [k.meta, k.idx, k.tidx, k.aborted], args });
    return reply === 1 ? 'swapped' : reply === -1 ? 'past-deadline' : 'index-changed';
  }

  /**
   * What the log cleaner keeps in the partition's meta hash, with its offsets: `cleanedTo`,
   * the first offset no pass has cleaned yet (0 before the first), and `cleanHorizon`, when
   * the earliest tombstone or transaction marker kept by the last pass may be removed (null:
   * none is waiting).
   */
  async cleanerState(ref: PartitionRef): Promise<{ offsets: PartitionOffsets; cleanedTo: number; cleanHorizon: number | null }> {
    const values = await redisCall('read cleaner state', () => this.#redis.hmget(partitionKeys(ref).meta, 'hw', 'logStart', 'lso', 'cleanedTo', 'cleanHorizon'));
    const horizon = values[4];
    return { offsets: toOffsets(values), cleanedTo: metaNumber(values[3], 0), cleanHorizon: horizon === null || horizon === undefined ? null : Number(horizon) };
  }

  /** Removes all of the partition's keys (topic deletion). */
  async deletePartition(ref: PartitionRef): Promise<void> {
    const k = partitionKeys(ref);
    await redisCall('delete partition', () => this.#redis.del(k.meta, k.idx, k.tidx, k.producers, k.txn, k.aborted, k.producersSeen));
  }

  /**
   * Opens a producer's transaction on partitions (AddPartitionsToTxn), so that its
   * transactional batches are accepted there; one script call per partition, pipelined.
   * Returns an error code per partition: NONE, INVALID_PRODUCER_EPOCH or CONCURRENT_TRANSACTIONS.
   */
  async openTransaction(refs: readonly PartitionRef[], producerId: number, producerEpoch: number): Promise<number[]> {
    const calls: ScriptCall[] = refs.map((ref) => {
      const k = partitionKeys(ref);
      return { script: 'txn-open', keys: [k.producers, k.txn], args: [producerId, producerEpoch] };
    });
    return (await this.#scripts.runMany(calls)) as number[];
  }

  /** Whether a producer's transaction is open on a partition with the given epoch. */
  async isTransactionOpen(ref: PartitionRef, producerId: number, producerEpoch: number): Promise<boolean> {
    const raw = await redisCall('read transaction', () => this.#redis.hget(partitionKeys(ref).txn, String(producerId)));
    return raw !== null && Number(raw.slice(0, raw.indexOf('|'))) === producerEpoch;
  }

  /**
   * Aborted transactions overlapping offsets [fromOffset, toOffset): those whose abort marker
   * is at or after `fromOffset` and whose first offset is below `toOffset` — what a
   * read_committed Fetch returns so the client can drop their records.
   */
  async abortedTransactions(ref: PartitionRef, fromOffset: number, toOffset: number): Promise<{ producerId: number; firstOffset: number }[]> {
    const members = await redisCall('read aborted transactions', () => this.#redis.zrangebyscore(partitionKeys(ref).aborted, fromOffset, '+inf'));
    const out: { producerId: number; firstOffset: number }[] = [];
    for (const m of members) {
      const [pid, first] = m.split('|');
      const firstOffset = Number(first);
      if (firstOffset < toOffset) out.push({ producerId: Number(pid), firstOffset });
    }
    return out;
  }

  /**
   * Aborted transactions whose abort marker is at or after `fromOffset` and whose first offset
   * is below `toOffset`, with their marker offsets, in marker order: the ranges whose records
   * the log cleaner removes.
   */
  async abortedRanges(ref: PartitionRef, fromOffset: number, toOffset: number): Promise<AbortedRange[]> {
    const members = await redisCall('read aborted transactions', () => this.#redis.zrangebyscore(partitionKeys(ref).aborted, fromOffset, '+inf'));
    const out: AbortedRange[] = [];
    for (const m of members) {
      const [pid, first, marker] = m.split('|');
      const firstOffset = Number(first);
      if (firstOffset < toOffset) out.push({ producerId: Number(pid), firstOffset, markerOffset: Number(marker) });
    }
    return out;
  }

  /** Open transactions of a partition: producer id → epoch and first offset (-1 before data). */
  async openTransactions(ref: PartitionRef): Promise<{ producerId: number; epoch: number; firstOffset: number }[]> {
    const all = await redisCall('read transactions', () => this.#redis.hgetall(partitionKeys(ref).txn));
    return Object.entries(all).map(([pid, v]) => {
      const [epoch, first] = v.split('|');
      return { producerId: Number(pid), epoch: Number(epoch), firstOffset: Number(first) };
    });
  }

  /**
   * Producer states of a partition (DescribeProducers): id → epoch, its newest batch, and when
   * its latest batch was committed (ms; -1 if unknown).
   */
  async producers(ref: PartitionRef): Promise<ProducerStateSummary[]> {
    const k = partitionKeys(ref);
    const pipeline = this.#redis.pipeline();
    pipeline.hgetall(k.producers);
    pipeline.zrange(k.producersSeen, 0, -1, 'WITHSCORES');
    const replies = await redisCall('read producers', () => pipeline.exec());
    const [[stateErr, all], [seenErr, seenFlat]] = replies ?? [];
    if (stateErr) throw mapRedisError(stateErr, 'read producers');
    if (seenErr) throw mapRedisError(seenErr, 'read producers');
    const seen = new Map<string, number>();
    const flat = seenFlat as string[];
    for (let i = 0; i + 1 < flat.length; i += 2) seen.set(flat[i]!, Number(flat[i + 1]));
    return Object.entries(all as Record<string, string>).map(([pid, raw]) => {
      const parts = raw.split(';');
      const last = parts.length > 1 ? parts[parts.length - 1]!.split(',') : null;
      return {
        producerId: Number(pid),
        epoch: Number(parts[0]),
        lastSequence: last ? Number(last[1]) : -1,
        lastOffset: last ? Number(last[2]) : -1,
        lastCommitMs: seen.get(pid) ?? -1,
      };
    });
  }

  /** Publishes new high watermarks (one message) so long-polling fetches on every broker wake. */
  async publishHighWatermarks(updates: readonly HighWatermarkUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    const payload = encodeHighWatermarks(updates);
    await redisCall('publish high watermarks', () => this.#redis.publish(HIGH_WATERMARK_CHANNEL, payload));
  }
}
