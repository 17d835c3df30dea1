/**
 * Timestamp lookups for ListOffsets: the first record at or after a timestamp, and the
 * record with the largest timestamp. The time index finds the run; the run's batch headers
 * narrow it to one batch; only that batch is decoded (decompressed) to find the record.
 */
import { decodeBatch, splitBatches } from '../../wire/records/index.js';
import type { Run } from '../coordination/partition-state.js';
import type { LogReader } from './reader.js';

/** An offset and the timestamp of the record there. */
export interface OffsetAndTimestamp {
  offset: number;
  timestamp: number;
}

/**
 * The first record in `run` at or after `minOffset` whose timestamp is ≥ `target` (or, with
 * `exact`, equal to it), or null when the run has none.
 */
export async function findInRun(reader: LogReader, run: Run, target: number, exact = false, minOffset = 0): Promise<OffsetAndTimestamp | null> {
  let offset = run.base;
  const pieces = await reader.runBytes(run);
  for (const view of pieces.flatMap((piece) => splitBatches(piece))) {
    const count = view.lastOffsetDelta + 1;
    if (view.maxTimestamp >= target) {
      const decoded = await decodeBatch(view);
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
