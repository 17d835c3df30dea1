/**
 * The read path (ARCHITECTURE §8): find the runs at or after a fetch offset in the partition's
 * index, fetch their bytes from the write cache or the block cache (aligned ranged GETs,
 * shared by concurrent readers), and give every batch its real base offset on the way out.
 *
 * Base offsets are rewritten in place in the cached bytes. That is safe because a batch at a
 * given position of an object has exactly one offset for its whole life, so every reader
 * writes the same eight bytes; and neither baseOffset nor partitionLeaderEpoch is covered by
 * the batch CRC.
 */
import { ErrorCode } from '../../wire/index.js';
import { BATCH_HEADER_SIZE, BATCH_LENGTH_OVERHEAD, BatchField } from '../../wire/records/index.js';
import type { PartitionOffsets, PartitionRef, PartitionState, Run } from '../coordination/partition-state.js';
import { StorageError, type ObjectStore } from '../storage/object-store.js';
import type { ByteLru } from './cache.js';
import type { SegmentPieces } from './segment.js';

/** What a read of one partition returns. */
export interface ReadResult {
  errorCode: number;
  offsets: PartitionOffsets;
  /** Whole batches, in offset order, as views (no copies when a run lies in one block). */
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

/** How many index entries one lookup reads. */
const RUNS_PER_LOOKUP = 32;

export class LogReader {
  readonly #store: ObjectStore;
  readonly #state: PartitionState;
  readonly #writeCache: ByteLru<SegmentPieces>;
  readonly #blockCache: ByteLru;
  readonly #blockSize: number;

  constructor(store: ObjectStore, state: PartitionState, writeCache: ByteLru<SegmentPieces>, blockCache: ByteLru, blockSize: number) {
    this.#store = store;
    this.#state = state;
    this.#writeCache = writeCache;
    this.#blockCache = blockCache;
    this.#blockSize = blockSize;
  }

  /** Reads whole batches from `fetchOffset` up to the high watermark (or LSO). */
  async read(req: ReadRequest): Promise<ReadResult> {
    const first = await this.#state.runsFrom(req.ref, req.fetchOffset, RUNS_PER_LOOKUP);
    const offsets = first.offsets;
    let runs = first.runs;
    const upper = req.readCommitted ? offsets.lso : offsets.hw;
    const empty: ReadResult = { errorCode: ErrorCode.NONE, offsets, records: [], bytes: 0 };
    if (req.fetchOffset < offsets.logStart || req.fetchOffset > offsets.hw) {
      return { ...empty, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
    }
    if (req.fetchOffset >= upper) return empty;
    const records: Buffer[] = [];
    let bytes = 0;
    let minOne = req.minOneBatch;
    let nextOffset = req.fetchOffset;
    // Small runs (low flush.ms) mean many index entries per fetch: keep looking up more runs
    // until the byte limit is reached or the log ends.
    for (;;) {
      const before = bytes;
      const more = await this.#readRuns(runs, req, upper, records, bytes, minOne);
      bytes = more.bytes;
      minOne = minOne && bytes === 0;
      nextOffset = more.nextOffset ?? nextOffset;
      if (more.stopped || runs.length < RUNS_PER_LOOKUP || bytes === before || nextOffset >= upper) break;
      runs = (await this.#state.runsFrom(req.ref, nextOffset, RUNS_PER_LOOKUP)).runs;
      if (runs.length === 0) break;
    }
    return { errorCode: ErrorCode.NONE, offsets, records, bytes };
  }

  /**
   * Appends the batches of `runs` at or after the fetch offset to `records` until `maxBytes`
   * or `upper`; reports the bytes so far, the offset after the last run read, and whether a
   * limit stopped it.
   */
  async #readRuns(
    runs: readonly Run[],
    req: ReadRequest,
    upper: number,
    records: Buffer[],
    startBytes: number,
    minOneBatch: boolean,
  ): Promise<{ bytes: number; nextOffset: number | null; stopped: boolean }> {
    let bytes = startBytes;
    let minOne = minOneBatch;
    let nextOffset: number | null = null;
    for (const run of runs) {
      if (run.base >= upper) return { bytes, nextOffset, stopped: true };
      let offset = run.base;
      let pieceStart = run.byteStart;
      for (const data of await this.runBytes(run)) {
        let pos = 0;
        while (pos < data.length) {
          const size = batchSizeAt(data, pos, run, pieceStart + pos);
          const count = data.readInt32BE(pos + BatchField.lastOffsetDelta) + 1;
          if (offset >= upper) return { bytes, nextOffset, stopped: true };
          if (offset + count > req.fetchOffset) {
            if (bytes + size > req.maxBytes && !minOne) return { bytes, nextOffset, stopped: true };
            const batch = data.subarray(pos, pos + size);
            writeBaseOffset(batch, offset);
            batch.writeInt32BE(0, BatchField.partitionLeaderEpoch);
            records.push(batch);
            bytes += size;
            minOne = false;
          }
          offset += count;
          pos += size;
        }
        pieceStart += data.length;
      }
      nextOffset = run.last + 1;
    }
    return { bytes, nextOffset, stopped: false };
  }

  /**
   * The bytes of one run, from the write cache or the block cache, as pieces each holding
   * whole batches (from the write cache, the batches as produced; otherwise one piece).
   */
  async runBytes(run: Run): Promise<Buffer[]> {
    const fresh = this.#writeCache.get(run.objectKey);
    if (fresh) return fresh.range(run.byteStart, run.byteLength);
    const bs = this.#blockSize;
    const first = Math.floor(run.byteStart / bs);
    const last = Math.floor((run.byteStart + run.byteLength - 1) / bs);
    const blocks: Buffer[] = [];
    for (let b = first; b <= last; b++) {
      blocks.push(
        await this.#blockCache.getOrLoad(`${run.objectKey}#${b}`, () => this.#store.get(run.objectKey, { start: b * bs, end: (b + 1) * bs })),
      );
    }
    const startInFirst = run.byteStart - first * bs;
    if (blocks.length === 1) return [blocks[0]!.subarray(startInFirst, startInFirst + run.byteLength)];
    // A run spanning blocks is assembled once (copying only its own bytes) and cached under
    // its own key, so the in-place offset rewrite and later reads see one buffer.
    const key = `${run.objectKey}@${run.byteStart}+${run.byteLength}`;
    const cached = this.#blockCache.get(key);
    if (cached) return [cached];
    const assembled = Buffer.allocUnsafe(run.byteLength);
    let filled = 0;
    blocks.forEach((block, i) => {
      const from = i === 0 ? startInFirst : 0;
      filled += block.copy(assembled, filled, from, Math.min(block.length, from + run.byteLength - filled));
    });
    if (filled !== run.byteLength) throw new StorageError(`object ${run.objectKey} ends before the run at ${run.byteStart}+${run.byteLength}`);
    this.#blockCache.set(key, assembled);
    return [assembled];
  }
}

/**
 * The size of the batch at `pos` of `data` (byte `at` of the object), checked to lie within
 * it: an index entry whose range does not cover whole batches means a corrupt object or
 * index, never a short read.
 */
function batchSizeAt(data: Buffer, pos: number, run: Run, at: number): number {
  const size = pos + BATCH_HEADER_SIZE <= data.length ? BATCH_LENGTH_OVERHEAD + data.readInt32BE(pos + BatchField.batchLength) : -1;
  if (size < BATCH_HEADER_SIZE || pos + size > data.length) {
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
