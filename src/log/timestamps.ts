/**
 * Timestamp lookups for ListOffsets: the first record at or after a timestamp, and the
 * record with the largest timestamp. The time index finds the run; the run's batch headers
 * narrow it to one batch; only that batch is decoded (decompressed) to find the record.
 *
 * A batch that cannot be decoded — it expands past the decompression limit (a limit lowered
 * after it was stored), or its bytes do not parse — is answered from its header instead: its
 * first offset and its maxTimestamp. That answer never skips a record (the record sought is at
 * or after the batch's first offset), and it is the same every time, where an error would
 * repeat forever since stored batches never change.
 */
import { WireError } from '../../wire/index.js';
import { DEFAULT_MAX_DECOMPRESSED_BYTES, decodeBatch, splitBatches, type DecodedBatch } from '../../wire/records/index.js';
import type { Run } from './partition-store.js';
import type { LogReader } from './reader.js';

/** An offset and the timestamp of the record there. */
export interface OffsetAndTimestamp {
  offset: number;
  timestamp: number;
  /**
   * Set when the batch holding the answer could not be decoded: why not. The answer is then
   * the batch's first offset (at or after the lookup's minimum) and its header's maxTimestamp.
   */
  undecodable?: string;
}

/**
 * The first record in `run` at or after `minOffset` whose timestamp is ≥ `target` (or, with
 * `exact`, equal to it), or null when the run has none. Batches are decoded with at most
 * `maxDecompressedBytes` of records each; see the module comment for those that cannot be.
 */
export async function findInRun(
  reader: LogReader,
  run: Run,
  target: number,
  exact = false,
  minOffset = 0,
  maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Promise<OffsetAndTimestamp | null> {
  let offset = run.base;
  const pieces = await reader.runBytes(run);
  for (const view of pieces.flatMap((piece) => splitBatches(piece))) {
    // An ownOffsets run's batches name their offsets, with gaps between them; the others' are
    // counted from the run's base.
    if (run.ownOffsets) offset = view.baseOffset;
    const count = view.lastOffsetDelta + 1;
    if (view.maxTimestamp >= target && offset + count > minOffset) {
      let decoded: DecodedBatch;
      try {
        decoded = await decodeBatch(view, { maxDecompressedBytes });
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        if (exact && view.maxTimestamp !== target) {
          offset += count;
          continue;
        }
        return { offset: Math.max(offset, minOffset), timestamp: view.maxTimestamp, undecodable: err.message };
      }
      for (const rec of decoded.records) {
        if (offset + rec.offsetDelta < minOffset) continue;
        if (exact ? rec.timestamp === target : rec.timestamp >= target) {
          return { offset: offset + rec.offsetDelta, timestamp: rec.timestamp };
        }
      }
    }
    offset += count;
  }
  return null;
}
