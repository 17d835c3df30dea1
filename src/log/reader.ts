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
import { BATCH_LENGTH_OVERHEAD, BatchField } from '../../wire/records/index.js';
import type { PartitionOffsets, PartitionRef, PartitionState, Run } from '../coordination/partition-state.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { ByteLru } from './cache.js';

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
  readonly #writeCache: ByteLru;
  readonly #blockCache: ByteLru;
  readonly #blockSize: number;

  constructor(store: ObjectStore, state: PartitionState, writeCache: ByteLru, blockCache: ByteLru, blockSize: number) {
    this.#store = store;
    this.#state = state;
    this.#writeCache = writeCache;
    this.#blockCache = blockCache;
    this.#blockSize = blockSize;
  }

  /** Reads whole batches from `fetchOffset` up to the high watermark (or LSO). */
  async read(req: ReadRequest): Promise<ReadResult> {
    const { offsets, runs } = await this.#state.runsFrom(req.ref, req.fetchOffset, RUNS_PER_LOOKUP);
    const upper = req.readCommitted ? offsets.lso : offsets.hw;
    const empty: ReadResult = { errorCode: ErrorCode.NONE, offsets, records: [], bytes: 0 };
    if (req.fetchOffset < offsets.logStart || req.fetchOffset > offsets.hw) {
      return { ...empty, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
    }
    if (req.fetchOffset >= upper) return empty;
    const records: Buffer[] = [];
    let bytes = 0;
    let minOne = req.minOneBatch;
    outer: for (const run of runs) {
      if (run.base >= upper) break;
      const data = await this.runBytes(run);
      let offset = run.base;
      let pos = 0;
      while (pos < data.length) {
        const size = BATCH_LENGTH_OVERHEAD + data.readInt32BE(pos + BatchField.batchLength);
        const count = data.readInt32BE(pos + BatchField.lastOffsetDelta) + 1;
        if (offset >= upper) break outer;
        if (offset + count > req.fetchOffset) {
          if (bytes + size > req.maxBytes && !minOne) break outer;
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
    }
    return { errorCode: ErrorCode.NONE, offsets, records, bytes };
  }

  /** The bytes of one run, from the write cache or the block cache. */
  async runBytes(run: Run): Promise<Buffer> {
    const whole = this.#writeCache.get(run.objectKey);
    if (whole) return whole.subarray(run.byteStart, run.byteStart + run.byteLength);
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
    if (blocks.length === 1) return blocks[0]!.subarray(startInFirst, startInFirst + run.byteLength);
    // A run spanning blocks is assembled once and cached under its own key, so the in-place
    // offset rewrite and later reads see one buffer.
    const key = `${run.objectKey}@${run.byteStart}+${run.byteLength}`;
    const cached = this.#blockCache.get(key);
    if (cached) return cached;
    const joined = Buffer.concat(blocks).subarray(startInFirst, startInFirst + run.byteLength);
    const copy = Buffer.from(joined);
    this.#blockCache.set(key, copy);
    return copy;
  }
}

/** Writes a batch's base offset (int64 at byte 0) from a safe integer. */
function writeBaseOffset(batch: Buffer, offset: number): void {
  const hi = Math.floor(offset / 2 ** 32);
  batch.writeInt32BE(hi, 0);
  batch.writeUInt32BE(offset - hi * 2 ** 32, 4);
}
