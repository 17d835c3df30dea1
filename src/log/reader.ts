/**
 * The read path (docs/architecture.md §4.2): find the runs at or after a fetch offset in the partition's
 * index, fetch their bytes from the write cache or the block cache (aligned ranged GETs,
 * shared by concurrent readers), and give every batch its real base offset on the way out.
 *
 * Base offsets are rewritten in place in the cached bytes. That is safe because a batch at a
 * given position of an object has exactly one offset for its whole life, so every reader
 * writes the same eight bytes; and neither baseOffset nor partitionLeaderEpoch is covered by
 * the batch CRC. Runs with `ownOffsets` (written by object compaction and the log cleaner)
 * already carry each batch's offset and leader epoch 0, and may have gaps: each batch is taken
 * at the offset its header names (one test per batch on the path of ordinary runs).
 */
import { ErrorCode } from '../../wire/index.js';
import { BATCH_HEADER_SIZE, BATCH_LENGTH_OVERHEAD, BatchField } from '../../wire/records/index.js';
import type { PartitionOffsets, PartitionRef, PartitionStore, Run } from './partition-store.js';
import { StorageError, type ObjectStore } from '../storage/object-store.js';
import type { ByteLru } from './cache.js';
import type { SegmentPieces } from './segment.js';

/** What a read of one partition returns. */
export interface ReadResult {
  errorCode: number;
  offsets: PartitionOffsets;
  /** Whole batches, in offset order, as views (copied only when a batch spans blocks). */
  records: Buffer[];
  bytes: number;
}

export interface ReadRequest {
  ref: PartitionRef;
  fetchOffset: number;
  maxBytes: number;
  /** Return the first batch even if it exceeds maxBytes (KIP-74). */
  minOneBatch: boolean;
  readCommitted: boolean;
}

/**
 * The first step of a read: the partition's offsets and the first index entries at or after
 * the fetch offset, looked up without touching record bytes. A Fetch plans every partition
 * at once, shares its byte budget out by the plans, then reads each within its share.
 */
export interface ReadPlan {
  ref: PartitionRef;
  fetchOffset: number;
  readCommitted: boolean;
  errorCode: number;
  offsets: PartitionOffsets;
  runs: Run[];
  /**
   * At most how many bytes a read could return: the indexed bytes below the high watermark
   * (or LSO) from the run holding the fetch offset on, or Infinity when the index has more
   * runs than one lookup reads. Counts the fetch offset's whole run, so it can overcount.
   */
  availableBytes: number;
}

/** How many index entries one lookup reads. */
const RUNS_PER_LOOKUP = 32;

const EMPTY = Buffer.alloc(0);

/** Where a read stands: the byte budget left and whether the KIP-74 first batch is still owed. */
interface ReadProgress {
  records: Buffer[];
  bytes: number;
  minOne: boolean;
}

export class LogReader {
  readonly #store: ObjectStore;
  readonly #state: PartitionStore;
  readonly #writeCache: ByteLru<SegmentPieces>;
  readonly #blockCache: ByteLru;
  readonly #blockSize: number;

  constructor(store: ObjectStore, state: PartitionStore, writeCache: ByteLru<SegmentPieces>, blockCache: ByteLru, blockSize: number) {
    this.#store = store;
    this.#state = state;
    this.#writeCache = writeCache;
    this.#blockCache = blockCache;
    this.#blockSize = blockSize;
  }

  /** Reads whole batches from `fetchOffset` up to the high watermark (or LSO), within `maxBytes`. */
  async read(req: ReadRequest): Promise<ReadResult> {
    return this.readPlanned(await this.plan(req), req.maxBytes, req.minOneBatch);
  }

  /** Looks up the offsets and the first runs of a read; see {@link ReadPlan}. */
  async plan(req: Pick<ReadRequest, 'ref' | 'fetchOffset' | 'readCommitted'>): Promise<ReadPlan> {
    const { offsets, runs } = await this.#state.runsFrom(req.ref, req.fetchOffset, RUNS_PER_LOOKUP);
    const upper = req.readCommitted ? offsets.lso : offsets.hw;
    const outOfRange = req.fetchOffset < offsets.logStart || req.fetchOffset > offsets.hw;
    let availableBytes = 0;
    if (!outOfRange && req.fetchOffset < upper) {
      if (runs.length === RUNS_PER_LOOKUP) availableBytes = Number.POSITIVE_INFINITY;
      else for (const run of runs) if (run.base < upper) availableBytes += run.byteLength;
    }
    return {
      ...req,
      errorCode: outOfRange ? ErrorCode.OFFSET_OUT_OF_RANGE : ErrorCode.NONE,
      offsets,
      runs,
      availableBytes,
    };
  }

  /**
   * Reads the batches a plan found, stopping before the batch that would take the total past
   * `maxBytes` (the first one is returned anyway with `minOneBatch`, KIP-74). Bytes are
   * loaded as the walk reaches them, so a read never fetches blocks past its limit.
   */
  async readPlanned(plan: ReadPlan, maxBytes: number, minOneBatch: boolean): Promise<ReadResult> {
    const { offsets } = plan;
    const progress: ReadProgress = { records: [], bytes: 0, minOne: minOneBatch };
    const upper = plan.readCommitted ? offsets.lso : offsets.hw;
    if (plan.errorCode !== ErrorCode.NONE || plan.fetchOffset >= upper || (maxBytes <= 0 && !minOneBatch)) {
      return { errorCode: plan.errorCode, offsets, records: [], bytes: 0 };
    }
    let runs = plan.runs;
    let from = plan.fetchOffset;
    // Small runs (low flush.ms) mean many index entries per fetch: keep looking up more runs
    // until the byte limit is reached or the log ends.
    for (;;) {
      const before = progress.bytes;
      const more = await this.#readRuns(runs, from, maxBytes, upper, progress);
      if (more.stopped || runs.length < RUNS_PER_LOOKUP || progress.bytes === before || more.nextOffset >= upper) break;
      // The next lookup reads the index afresh. If object compaction swapped runs in between
      // (docs/architecture.md §4.5), its first run may be a merged one starting below `from`,
      // whose leading batches this read has already taken: they are skipped up to `from`.
      from = more.nextOffset;
      runs = (await this.#state.runsFrom(plan.ref, from, RUNS_PER_LOOKUP)).runs;
      if (runs.length === 0) break;
    }
    return { errorCode: ErrorCode.NONE, offsets, records: progress.records, bytes: progress.bytes };
  }

  /**
   * Appends the batches of `runs` at or after the fetch offset to `progress` until `maxBytes`
   * or `upper`; reports the offset after the last run read, and whether a limit stopped it.
   */
  async #readRuns(
    runs: readonly Run[],
    fetchOffset: number,
    maxBytes: number,
    upper: number,
    progress: ReadProgress,
  ): Promise<{ nextOffset: number; stopped: boolean }> {
    let nextOffset = fetchOffset;
    for (const run of runs) {
      if (run.base >= upper) return { nextOffset, stopped: true };
      const fresh = this.#writeCache.get(run.objectKey);
      const stopped = fresh
        ? takeFromPieces(fresh.range(run.byteStart, run.byteLength), run, fetchOffset, maxBytes, upper, progress)
        : await this.#takeFromBlocks(run, fetchOffset, maxBytes, upper, progress);
      if (stopped) return { nextOffset, stopped: true };
      nextOffset = run.last + 1;
    }
    return { nextOffset, stopped: false };
  }

  /**
   * Walks a run that is not in the write cache batch by batch, loading blocks only as the
   * walk reaches them: batches before the fetch offset are skipped by their headers alone,
   * and the walk stops at the first batch past the limit before loading its body. So the
   * bytes read from the store stay within a block or two of the bytes returned.
   */
  async #takeFromBlocks(run: Run, fetchOffset: number, maxBytes: number, upper: number, progress: ReadProgress): Promise<boolean> {
    const bs = this.#blockSize;
    const end = run.byteStart + run.byteLength;
    const own = run.ownOffsets === true;
    /** The batch's offset; for an ownOffsets run, the lowest it can be until its header is read. */
    let offset = run.base;
    // The block the walk is in: batches inside it are read from it without another lookup
    // (or await); only a batch or header that crosses into the next block takes the slow path.
    let blockIndex = -1;
    let block: Buffer = EMPTY;
    let at = run.byteStart;
    // Whether loading block `c` may read block `c + 1` too: when the walk will surely reach the
    // end of `c + 1` (the run covers it and the byte budget reaches past it). A sequential reader
    // (a consumer catching up) then takes two blocks per GET; a bounded read never reads a
    // block it does not use.
    const ahead = (c: number): boolean => (c + 2) * bs <= end && progress.bytes + ((c + 1) * bs - at) + bs <= maxBytes;
    while (at < end) {
      if (offset >= upper) return true;
      const b = Math.floor(at / bs);
      if (b !== blockIndex) {
        const got = this.#block(run.objectKey, b, ahead(b));
        block = got instanceof Promise ? await got : got;
        blockIndex = b;
      }
      const from = at - b * bs;
      const headLength = Math.min(BATCH_HEADER_SIZE, end - at);
      const head = from + headLength <= block.length ? block.subarray(from, from + headLength) : await this.#bytesAt(run, at, headLength, false, ahead);
      const size = batchSizeAt(head, 0, end - at, run, at);
      const count = head.readInt32BE(BatchField.lastOffsetDelta) + 1;
      if (own && (offset = ownOffsetAt(head, 0, offset, run, at)) >= upper) return true;
      if (offset + count > fetchOffset) {
        if (progress.bytes + size > maxBytes && !progress.minOne) return true;
        take(progress, from + size <= block.length ? block.subarray(from, from + size) : await this.#bytesAt(run, at, size, true, ahead), offset);
      }
      offset += count;
      at += size;
    }
    return false;
  }

  /**
   * The bytes of one run, from the write cache or the block cache, as pieces each holding
   * whole batches (from the write cache, the batches as produced; otherwise one piece).
   */
  async runBytes(run: Run): Promise<Buffer[]> {
    const fresh = this.#writeCache.get(run.objectKey);
    if (fresh) return fresh.range(run.byteStart, run.byteLength);
    return [await this.#bytesAt(run, run.byteStart, run.byteLength, true)];
  }

  /**
   * `length` bytes of the run's object from byte `at`: a view of one cached block, or, when
   * they span blocks, a copy of just those bytes. A copy that will be handed out (`keep`) is
   * cached under its own key, so the in-place offset rewrite and later reads see one buffer.
   */
  async #bytesAt(run: Run, at: number, length: number, keep: boolean, ahead: (b: number) => boolean = () => false): Promise<Buffer> {
    const bs = this.#blockSize;
    const first = Math.floor(at / bs);
    const last = Math.floor((at + length - 1) / bs);
    if (first === last) {
      const block = await this.#block(run.objectKey, first, ahead(first));
      const from = at - first * bs;
      if (from + length > block.length) throw new StorageError(`object ${run.objectKey} ends before the run at ${run.byteStart}+${run.byteLength}`);
      return block.subarray(from, from + length);
    }
    const key = `${run.objectKey}@${at}+${length}`;
    const cached = keep ? this.#blockCache.get(key) : undefined;
    if (cached) return cached;
    const assembled = Buffer.allocUnsafe(length);
    let filled = 0;
    for (let b = first; b <= last; b++) {
      const block = await this.#block(run.objectKey, b, ahead(b));
      const from = b === first ? at - first * bs : 0;
      filled += block.copy(assembled, filled, from, Math.min(block.length, from + length - filled));
    }
    if (filled !== length) throw new StorageError(`object ${run.objectKey} ends before the run at ${run.byteStart}+${run.byteLength}`);
    if (keep) this.#blockCache.set(key, assembled);
    return assembled;
  }

  /**
   * Block `b` of an object from the block cache, or one ranged GET shared by concurrent readers.
   * With `readAhead`, a miss reads blocks `b` and `b + 1` in one GET and caches both (unless
   * `b + 1` is cached already); each is copied out, so that the cache's byte count is what it
   * holds.
   */
  #block(objectKey: string, b: number, readAhead = false): Buffer | Promise<Buffer> {
    const key = `${objectKey}#${b}`;
    const bs = this.#blockSize;
    const hit = this.#blockCache.get(key);
    if (hit) return hit;
    const nextKey = `${objectKey}#${b + 1}`;
    if (!readAhead || this.#blockCache.get(nextKey)) return this.#blockCache.getOrLoad(key, () => this.#store.get(objectKey, { start: b * bs, end: (b + 1) * bs }));
    return this.#blockCache.getOrLoad(key, async () => {
      const both = await this.#store.get(objectKey, { start: b * bs, end: (b + 2) * bs });
      if (both.length > bs) this.#blockCache.set(nextKey, Buffer.from(both.subarray(bs)));
      return Buffer.from(both.subarray(0, Math.min(bs, both.length)));
    });
  }
}

/**
 * Walks a run held in the write cache (pieces of whole batches, already in memory); returns
 * whether a limit stopped it.
 */
function takeFromPieces(pieces: Buffer[], run: Run, fetchOffset: number, maxBytes: number, upper: number, progress: ReadProgress): boolean {
  const own = run.ownOffsets === true;
  let offset = run.base;
  let pieceStart = run.byteStart;
  for (const data of pieces) {
    for (let pos = 0; pos < data.length; ) {
      if (offset >= upper) return true;
      const size = batchSizeAt(data, pos, data.length - pos, run, pieceStart + pos);
      const count = data.readInt32BE(pos + BatchField.lastOffsetDelta) + 1;
      if (own && (offset = ownOffsetAt(data, pos, offset, run, pieceStart + pos)) >= upper) return true;
      if (offset + count > fetchOffset) {
        if (progress.bytes + size > maxBytes && !progress.minOne) return true;
        take(progress, data.subarray(pos, pos + size), offset);
      }
      offset += count;
      pos += size;
    }
    pieceStart += data.length;
  }
  return false;
}

/**
 * Gives a returned batch its offset and the leader epoch clients see, and counts it. An
 * ownOffsets run's batch already holds both: the same bytes are written again.
 */
function take(progress: ReadProgress, batch: Buffer, offset: number): void {
  writeBaseOffset(batch, offset);
  batch.writeInt32BE(0, BatchField.partitionLeaderEpoch);
  progress.records.push(batch);
  progress.bytes += batch.length;
  progress.minOne = false;
}

/**
 * The base offset in the header of the batch at `pos` of `data` (byte `at` of the object), in
 * an ownOffsets run: at least `after`, the offset following the previous batch (the run's base
 * for the first), and within the run; anything else means a corrupt object or index.
 */
function ownOffsetAt(data: Buffer, pos: number, after: number, run: Run, at: number): number {
  const offset = data.readInt32BE(pos + BatchField.baseOffset) * 2 ** 32 + data.readUInt32BE(pos + BatchField.baseOffset + 4);
  if (offset < after || offset > run.last) {
    throw new StorageError(`object ${run.objectKey} has a batch at byte ${at} with base offset ${offset}, outside ${after}..${run.last} (run ${run.byteStart}+${run.byteLength})`);
  }
  return offset;
}

/**
 * The size of the batch at `pos` of `data` (byte `at` of the object), checked to lie within
 * the `left` bytes of its run that follow: an index entry whose range does not cover whole
 * batches means a corrupt object or index, never a short read.
 */
function batchSizeAt(data: Buffer, pos: number, left: number, run: Run, at: number): number {
  const size = pos + BATCH_HEADER_SIZE <= data.length ? BATCH_LENGTH_OVERHEAD + data.readInt32BE(pos + BatchField.batchLength) : -1;
  if (size < BATCH_HEADER_SIZE || size > left) {
    throw new StorageError(`object ${run.objectKey} has no whole batch at byte ${at} (run ${run.byteStart}+${run.byteLength})`);
  }
  return size;
}

/** Writes a batch's base offset (int64 at byte 0) from a safe integer. */
function writeBaseOffset(batch: Buffer, offset: number): void {
  const hi = Math.floor(offset / 2 ** 32);
  batch.writeInt32BE(hi, 0);
  batch.writeUInt32BE(offset - hi * 2 ** 32, 4);
}
