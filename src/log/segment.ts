/**
 * The segment object format: what one flush of the ingest buffer writes.
 *
 * ```
 * header   8 bytes   "STSG" magic, int16 format version (1), int16 reserved
 * chunks             per partition, its batches' bytes back to back (as produced)
 * footer             int32 chunk count, then per chunk:
 *                      uuid topicId, int32 partition, int64 byteStart, int32 byteLength,
 *                      int32 batch count, then per batch:
 *                        int32 byteLength, int32 recordCount, int64 producerId,
 *                        int16 producerEpoch, int32 baseSequence, int64 maxTimestamp, int8 flags
 * trailer  16 bytes  int32 footer length, uint32 CRC32C of the footer, "STSGEND1"
 * ```
 *
 * The footer makes an object self-describing: `strata` tooling (and later compaction) can
 * list what an object holds without Redis. Offsets are not in the object: they are assigned
 * by the commit after the object is durable.
 */
import { crc32c } from '@node-rs/crc32';
import { Reader, Writer } from '../../wire/index.js';
import { ControlRecordType, decodeControlBatch, type RecordBatchView } from '../../wire/records/index.js';

const MAGIC = Buffer.from('STSG');
const END_MAGIC = Buffer.from('STSGEND1');
const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 8;
export const SEGMENT_TRAILER_BYTES = 16;

/** Batch flags recorded in the footer and passed to the commit. */
export const BatchFlag = {
  TRANSACTIONAL: 1,
  CONTROL: 2,
  /** A control batch holding an ABORT marker (commit.lua records the aborted range). */
  ABORT: 4,
} as const;

/** One batch as the footer describes it. */
export interface SegmentBatch {
  byteLength: number;
  recordCount: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  maxTimestamp: number;
  flags: number;
}

/** One partition's chunk in a segment object. */
export interface SegmentChunk {
  topicId: string;
  partition: number;
  byteStart: number;
  byteLength: number;
  batches: SegmentBatch[];
}

/** The footer description of a batch view. */
export function describeBatch(view: RecordBatchView): SegmentBatch {
  return {
    byteLength: view.sizeInBytes,
    recordCount: view.lastOffsetDelta + 1,
    producerId: view.producerId,
    producerEpoch: view.producerEpoch,
    baseSequence: view.baseSequence,
    maxTimestamp: view.maxTimestamp,
    flags:
      (view.isTransactional ? BatchFlag.TRANSACTIONAL : 0) |
      (view.isControl ? BatchFlag.CONTROL : 0) |
      // Only the transaction coordinator writes control batches (clients' are refused), so
      // decoding this one record is rare and cheap.
      (view.isControl && decodeControlBatch(view).type === ControlRecordType.ABORT ? BatchFlag.ABORT : 0),
  };
}

/** Input to {@link buildSegment}: per partition, the batches in the order they arrived. */
export interface SegmentPart {
  topicId: string;
  partition: number;
  batches: readonly RecordBatchView[];
}

/** One flush's segment object, laid out but not joined. */
export interface SegmentLayout {
  /**
   * The object's bytes in order: the header, every batch as the producer's own buffer (not
   * copied), then the footer with the trailer. Stores copy them once, where they must.
   */
  pieces: Buffer[];
  byteLength: number;
  /** The chunk table, with each chunk's byte range in the object. */
  chunks: SegmentChunk[];
}

/** Lays out one segment object over the batches' own buffers. */
export function buildSegment(parts: readonly SegmentPart[]): SegmentLayout {
  const chunks: SegmentChunk[] = [];
  const header = Buffer.allocUnsafe(SEGMENT_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeInt16BE(FORMAT_VERSION, 4);
  header.writeInt16BE(0, 6);
  const pieces: Buffer[] = [header];
  const footer = new Writer(64 + parts.length * 64);
  footer.int32(parts.length);
  let pos = SEGMENT_HEADER_BYTES;
  for (const p of parts) {
    const start = pos;
    const batches = p.batches.map(describeBatch);
    for (const b of p.batches) pieces.push(b.bytes);
    for (const b of batches) pos += b.byteLength;
    const chunk: SegmentChunk = { topicId: p.topicId, partition: p.partition, byteStart: start, byteLength: pos - start, batches };
    chunks.push(chunk);
    footer.uuid(chunk.topicId);
    footer.int32(chunk.partition);
    footer.int64(BigInt(chunk.byteStart));
    footer.int32(chunk.byteLength);
    footer.int32(batches.length);
    for (const b of batches) {
      footer.int32(b.byteLength);
      footer.int32(b.recordCount);
      footer.int64(BigInt(b.producerId));
      footer.int16(b.producerEpoch);
      footer.int32(b.baseSequence);
      footer.int64(BigInt(b.maxTimestamp));
      footer.int8(b.flags);
    }
  }
  const footerBytes = footer.finishBuffer();
  const end = Buffer.allocUnsafe(footerBytes.length + SEGMENT_TRAILER_BYTES);
  footerBytes.copy(end, 0);
  end.writeInt32BE(footerBytes.length, footerBytes.length);
  end.writeUInt32BE(crc32c(footerBytes) >>> 0, footerBytes.length + 4);
  END_MAGIC.copy(end, footerBytes.length + 8);
  pieces.push(end);
  return { pieces, byteLength: pos + end.length, chunks };
}

/**
 * A segment's bytes kept as the pieces it was laid out from (the write cache's entries), read
 * by byte range without joining them. Holding the producers' buffers rather than a joined
 * copy saves copying every produced byte into fresh memory, which on a VM whose untouched
 * pages fault slowly cost the flush several milliseconds for a multi-megabyte segment.
 */
export class SegmentPieces {
  readonly length: number;
  readonly #pieces: readonly Buffer[];
  /** Where each piece starts in the object. */
  readonly #starts: number[];

  constructor(pieces: readonly Buffer[]) {
    this.#pieces = pieces;
    this.#starts = [];
    let at = 0;
    for (const p of pieces) {
      this.#starts.push(at);
      at += p.length;
    }
    this.length = at;
  }

  /**
   * The bytes `start` to `start + length` as views of the pieces (a piece only partly in the
   * range is cut to it). A range outside the object throws.
   */
  range(start: number, length: number): Buffer[] {
    const end = start + length;
    if (start < 0 || length < 0 || end > this.length) {
      throw new RangeError(`range ${start}+${length} lies outside a segment of ${this.length} bytes`);
    }
    // The last piece starting at or before `start`.
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= start) lo = mid;
      else hi = mid - 1;
    }
    const out: Buffer[] = [];
    for (let i = lo; i < this.#pieces.length && this.#starts[i]! < end; i++) {
      const piece = this.#pieces[i]!;
      const from = Math.max(0, start - this.#starts[i]!);
      const to = Math.min(piece.length, end - this.#starts[i]!);
      if (to > from) out.push(from === 0 && to === piece.length ? piece : piece.subarray(from, to));
    }
    return out;
  }
}

/** A malformed segment object (wrong magic, bad footer checksum, inconsistent ranges). */
export class SegmentFormatError extends Error {
  override readonly name = 'SegmentFormatError';
}

/** Reads the chunk table of a whole segment object. */
export function readSegmentFooter(object: Buffer): SegmentChunk[] {
  if (object.length < SEGMENT_HEADER_BYTES + SEGMENT_TRAILER_BYTES || !object.subarray(0, 4).equals(MAGIC)) {
    throw new SegmentFormatError('not a Strata segment object (bad magic)');
  }
  const version = object.readInt16BE(4);
  if (version !== FORMAT_VERSION) throw new SegmentFormatError(`segment format version ${version} is unknown`);
  const trailer = object.length - SEGMENT_TRAILER_BYTES;
  if (!object.subarray(trailer + 8).equals(END_MAGIC)) throw new SegmentFormatError('segment trailer magic is missing');
  const footerLength = object.readInt32BE(trailer);
  const footerStart = trailer - footerLength;
  if (footerLength < 4 || footerStart < SEGMENT_HEADER_BYTES) throw new SegmentFormatError(`footer length ${footerLength} is impossible`);
  const footer = object.subarray(footerStart, trailer);
  if ((crc32c(footer) >>> 0) !== object.readUInt32BE(trailer + 4)) throw new SegmentFormatError('footer checksum mismatch');
  const r = new Reader(footer);
  const count = r.int32();
  const chunks: SegmentChunk[] = [];
  for (let i = 0; i < count; i++) {
    const topicId = r.uuid();
    const partition = r.int32();
    const byteStart = Number(r.int64());
    const byteLength = r.int32();
    const n = r.int32();
    const batches: SegmentBatch[] = [];
    for (let j = 0; j < n; j++) {
      batches.push({
        byteLength: r.int32(),
        recordCount: r.int32(),
        producerId: Number(r.int64()),
        producerEpoch: r.int16(),
        baseSequence: r.int32(),
        maxTimestamp: Number(r.int64()),
        flags: r.int8(),
      });
    }
    if (byteStart < SEGMENT_HEADER_BYTES || byteStart + byteLength > footerStart) {
      throw new SegmentFormatError(`chunk ${i} range ${byteStart}+${byteLength} lies outside the data region`);
    }
    chunks.push({ topicId, partition, byteStart, byteLength, batches });
  }
  return chunks;
}
