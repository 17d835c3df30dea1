/**
 * Compression codecs for RecordBatch v2 records regions: gzip (node:zlib), snappy (raw blocks,
 * plus the xerial framing Java clients write), LZ4 frames and zstd.
 *
 * Sync and async: every codec has an async path (`compress`, `decompress`); all but zstd also
 * have a sync one (`compressSync`, `decompressSync`), because @mongodb-js/zstd only offers
 * promises. Asking a sync function for zstd is a `TypeError`, never a WireError, so that a
 * caller's mistake is not reported as a corrupt batch.
 *
 * Bounded output: every decoder takes `maxBytes` and refuses, with WireError, to produce more.
 * gzip is bounded by zlib's `maxOutputLength`; snappy by the length each block declares,
 * checked before the library allocates; LZ4 and zstd by walking the frame and block headers
 * before decoding (neither binding takes a limit), which bounds the output from above. The
 * produced size is checked again afterwards. What is not bounded by us: the zstd window, which
 * the library itself caps at 128 MiB. Going over the limit is a {@link DecompressionLimitError}
 * (a WireError), so callers can tell "too large to inspect" from "corrupt".
 */
import { gunzip, gunzipSync, gzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import * as snappy from 'snappy';
import * as lz4 from 'lz4-napi';
import * as zstd from '@mongodb-js/zstd';
import { WireError } from '../runtime/errors.js';
import { Compression, type CompressionCodec } from './batch-header.js';

/** Human-readable codec names, indexed by codec id, for error messages. */
export const compressionName: Readonly<Record<CompressionCodec, string>> = {
  [Compression.NONE]: 'none',
  [Compression.GZIP]: 'gzip',
  [Compression.SNAPPY]: 'snappy',
  [Compression.LZ4]: 'lz4',
  [Compression.ZSTD]: 'zstd',
};

/**
 * The default ceiling on the bytes one batch may decompress to. Kafka's own default
 * `max.message.bytes` is about 1 MiB of compressed data; 64 MiB leaves room for very
 * compressible payloads while keeping a hostile batch from taking the process down.
 */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

/** Options for the compressors. */
export interface CompressOptions {
  /**
   * Snappy only: write the xerial framing Java clients use instead of one raw snappy block
   * (what librdkafka and kafkajs write). Every Kafka consumer reads both.
   */
  snappyXerial?: boolean;
  /** Gzip and zstd only: compression level (gzip 1-9, zstd 1-22); the library default otherwise. */
  level?: number;
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * DecompressionLimitError is the WireError a decoder raises when the data would expand past
 * the caller's `maxBytes`, as opposed to data that is corrupt. The two call for different
 * answers: a batch too large to inspect is refused as too large, a corrupt one as invalid.
 */
export class DecompressionLimitError extends WireError {
  constructor(
    message: string,
    /** The limit that was exceeded, in bytes. */
    readonly maxBytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function tooLarge(codec: string, size: number, maxBytes: number, how: string): DecompressionLimitError {
  return new DecompressionLimitError(
    `${codec} data ${how} ${size} bytes, over the ${maxBytes}-byte decompression limit; ` +
      'raise maxDecompressedBytes if such batches are legitimate',
    maxBytes,
  );
}

/** Maps a library failure on peer data to WireError, keeping the original as `cause`. */
function corrupt(codec: string, err: unknown): WireError {
  if (err instanceof WireError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WireError(`${codec} data is corrupt: ${message}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------
// Snappy

/**
 * The xerial snappy-java stream header: an 8-byte magic, then two int32 versions. Detecting
 * the framing by its magic is unambiguous: read as a raw block, the magic would be a length
 * preamble followed by a copy tag (0x4e), and a valid raw block cannot start with a copy.
 */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_SIZE = 16;
/** snappy-java's default block size; any size works for readers. */
const XERIAL_BLOCK_SIZE = 32 * 1024;

/** Whether `data` starts with the xerial snappy-java stream magic. */
export function isXerialSnappy(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_SIZE && data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC);
}

/**
 * Reads the uncompressed length a raw snappy block declares in its leading uvarint, so the
 * output can be bounded before the library allocates it.
 */
function snappyDeclaredLength(block: Buffer): number {
  let result = 0;
  for (let i = 0; i < 5; i++) {
    if (i >= block.length) throw new WireError('snappy block is truncated inside its length preamble');
    const byte = block[i]!;
    result += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return result;
  }
  throw new WireError('snappy block length preamble is longer than 5 bytes');
}

function snappyBlockSync(block: Buffer, budget: number, maxBytes: number): Buffer {
  const declared = snappyDeclaredLength(block);
  if (declared > budget) throw tooLarge('snappy', declared, maxBytes, 'declares');
  let out: Buffer;
  try {
    out = snappy.uncompressSync(block, { asBuffer: true }) as Buffer;
  } catch (err) {
    throw corrupt('snappy', err);
  }
  if (out.length !== declared) {
    throw new WireError(`snappy block declared ${declared} bytes but decoded to ${out.length}`);
  }
  return out;
}

/** Splits a xerial stream into its raw snappy blocks, checking every length. */
function xerialBlocks(data: Buffer): Buffer[] {
  const blocks: Buffer[] = [];
  let pos = XERIAL_HEADER_SIZE;
  while (pos < data.length) {
    if (data.length - pos < 4) throw new WireError(`xerial snappy block length truncated at offset ${pos}`);
    const n = data.readInt32BE(pos);
    pos += 4;
    if (n < 0 || n > data.length - pos) {
      throw new WireError(`xerial snappy block length ${n} at offset ${pos - 4} exceeds the ${data.length - pos} bytes left`);
    }
    blocks.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return blocks;
}

function snappyDecompressSync(data: Buffer, maxBytes: number): Buffer {
  if (!isXerialSnappy(data)) return snappyBlockSync(data, maxBytes, maxBytes);
  const parts: Buffer[] = [];
  let total = 0;
  for (const block of xerialBlocks(data)) {
    const out = snappyBlockSync(block, maxBytes - total, maxBytes);
    total += out.length;
    parts.push(out);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

async function snappyBlock(block: Buffer, budget: number, maxBytes: number): Promise<Buffer> {
  const declared = snappyDeclaredLength(block);
  if (declared > budget) throw tooLarge('snappy', declared, maxBytes, 'declares');
  let out: Buffer;
  try {
    out = (await snappy.uncompress(block, { asBuffer: true })) as Buffer;
  } catch (err) {
    throw corrupt('snappy', err);
  }
  if (out.length !== declared) {
    throw new WireError(`snappy block declared ${declared} bytes but decoded to ${out.length}`);
  }
  return out;
}

/**
 * Decompresses snappy off the main thread. The blocks of a xerial stream are checked against
 * the limit by their declared lengths first, then decoded concurrently: one thread-pool round
 * trip per block in turn would cost more than the decoding.
 */
async function snappyDecompress(data: Buffer, maxBytes: number): Promise<Buffer> {
  if (!isXerialSnappy(data)) return snappyBlock(data, maxBytes, maxBytes);
  const blocks = xerialBlocks(data);
  let total = 0;
  for (const block of blocks) {
    total += snappyDeclaredLength(block);
    if (total > maxBytes) throw tooLarge('snappy', total, maxBytes, 'declares');
  }
  const parts = await Promise.all(blocks.map((block) => snappyBlock(block, maxBytes, maxBytes)));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

function snappyCompressSync(data: Buffer, xerial: boolean): Buffer {
  if (!xerial) return snappy.compressSync(data);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(XERIAL_HEADER_SIZE);
  XERIAL_MAGIC.copy(header, 0);
  // Version 1, minimum compatible version 1: what snappy-java writes and checks.
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  parts.push(header);
  for (let at = 0; at < data.length; at += XERIAL_BLOCK_SIZE) {
    const block = snappy.compressSync(data.subarray(at, Math.min(at + XERIAL_BLOCK_SIZE, data.length)));
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// LZ4 frame

const LZ4_MAGIC = 0x184d2204;
/** Skippable frames (both LZ4 and zstd) use magics 0x184D2A50..0x184D2A5F. */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/**
 * When the 4-byte `magic` read at `pos` opens a skippable frame, the offset just past that
 * frame (magic, 4-byte little-endian size, payload); otherwise -1. A truncated one throws.
 */
function skippableFrameEnd(data: Buffer, pos: number, magic: number, codec: string): number {
  if ((magic & SKIPPABLE_MASK) >>> 0 !== SKIPPABLE_MAGIC) return -1;
  if (data.length - pos < 8) throw new WireError(`${codec} skippable frame truncated at offset ${pos}`);
  const size = data.readUInt32LE(pos + 4);
  if (data.length - (pos + 8) < size) throw new WireError(`${codec} skippable frame truncated at offset ${pos + 8}`);
  return pos + 8 + size;
}
const LZ4_BLOCK_MAX: Readonly<Record<number, number>> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

/** One LZ4 frame inside a payload, with the most it can decode to. */
interface FrameSpan {
  start: number;
  end: number;
  maxOutput: number;
}

/**
 * Walks the LZ4 frames in `data` without decompressing them and returns each frame's extent
 * and the largest output its blocks can produce (a compressed block never decodes to more
 * than the frame's block maximum, nor to more than 255 times its own size). lz4-napi cannot
 * bound its output, so this walk is what keeps a hostile frame from allocating more than the
 * caller allows; it also lets us decode concatenated frames, which lz4-napi would silently
 * stop after the first of. The bound is an upper bound: a legitimate frame whose size is
 * close to the limit can be refused (by at most one block maximum, 4 MiB, per frame).
 */
function lz4Frames(data: Buffer, maxBytes: number): FrameSpan[] {
  const frames: FrameSpan[] = [];
  let total = 0;
  let pos = 0;
  const need = (n: number, what: string): void => {
    if (data.length - pos < n) throw new WireError(`lz4 ${what} truncated at offset ${pos}`);
  };
  while (pos < data.length) {
    need(4, 'frame magic');
    const magic = data.readUInt32LE(pos);
    const skipped = skippableFrameEnd(data, pos, magic, 'lz4');
    if (skipped >= 0) {
      pos = skipped;
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new WireError(`lz4 frame magic 0x${magic.toString(16)} at offset ${pos} is not 0x184d2204`);
    const start = pos;
    pos += 4;
    need(3, 'frame descriptor');
    const flg = data[pos]!;
    const bd = data[pos + 1]!;
    if (flg >> 6 !== 1) throw new WireError(`lz4 frame version ${flg >> 6} is not 1`);
    const blockChecksum = (flg & 0x10) !== 0;
    const hasContentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const hasDictId = (flg & 0x01) !== 0;
    const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 0x07];
    if (blockMax === undefined) throw new WireError(`lz4 block maximum size id ${(bd >> 4) & 0x07} is invalid`);
    pos += 2;
    if (hasContentSize) {
      need(8, 'content size');
      const declared = Number(data.readBigUInt64LE(pos));
      if (declared > maxBytes - total) throw tooLarge('lz4', declared, maxBytes, 'declares');
      pos += 8;
    }
    if (hasDictId) {
      need(4, 'dictionary id');
      pos += 4;
    }
    need(1, 'header checksum');
    pos += 1;
    let frameMax = 0;
    for (;;) {
      need(4, 'block size');
      const word = data.readUInt32LE(pos);
      pos += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      const uncompressed = (word & 0x80000000) !== 0;
      if (size > blockMax) throw new WireError(`lz4 block of ${size} bytes exceeds the frame's ${blockMax}-byte block maximum`);
      need(size + (blockChecksum ? 4 : 0), 'block');
      pos += size + (blockChecksum ? 4 : 0);
      // An LZ4 sequence turns each input byte into at most 255 output bytes (a match-length
      // extension byte of 0xFF), so a compressed block is also capped at 255 times its size.
      frameMax += uncompressed ? size : Math.min(blockMax, size * 255);
    }
    if (contentChecksum) {
      need(4, 'content checksum');
      pos += 4;
    }
    frames.push({ start, end: pos, maxOutput: frameMax });
    total += frameMax;
    if (total > maxBytes) throw tooLarge('lz4', total, maxBytes, 'can expand to');
  }
  return frames;
}

function checkProduced(codec: string, out: Buffer, maxBytes: number): Buffer {
  if (out.length > maxBytes) throw tooLarge(codec, out.length, maxBytes, 'decoded to');
  return out;
}

function lz4DecompressSync(data: Buffer, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  for (const f of lz4Frames(data, maxBytes)) {
    try {
      parts.push(lz4.decompressFrameSync(data.subarray(f.start, f.end)));
    } catch (err) {
      throw corrupt('lz4', err);
    }
  }
  return checkProduced('lz4', parts.length === 1 ? parts[0]! : Buffer.concat(parts), maxBytes);
}

async function lz4Decompress(data: Buffer, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const f of lz4Frames(data, maxBytes)) {
    try {
      parts.push(await lz4.decompressFrame(data.subarray(f.start, f.end)));
    } catch (err) {
      throw corrupt('lz4', err);
    }
  }
  return checkProduced('lz4', parts.length === 1 ? parts[0]! : Buffer.concat(parts), maxBytes);
}

// ---------------------------------------------------------------------------------------------
// zstd

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * Walks the zstd frames in `data` (RFC 8878) and returns the largest output they can decode
 * to: raw and RLE blocks state their size, a compressed block is capped by the block maximum
 * (the smaller of the window and 128 KiB). @mongodb-js/zstd takes no output limit, so this
 * bound is checked before the library sees the data. A declared content size is checked on
 * its own too. The window is not limited here: the library refuses windows over 2^27 bytes
 * ("Frame requires too much memory") and only touches window memory as output is produced.
 */
function zstdMaxOutput(data: Buffer, maxBytes: number): number {
  let total = 0;
  let pos = 0;
  const need = (n: number, what: string): void => {
    if (data.length - pos < n) throw new WireError(`zstd ${what} truncated at offset ${pos}`);
  };
  while (pos < data.length) {
    need(4, 'frame magic');
    const magic = data.readUInt32LE(pos);
    const skipped = skippableFrameEnd(data, pos, magic, 'zstd');
    if (skipped >= 0) {
      pos = skipped;
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new WireError(`zstd frame magic 0x${magic.toString(16)} at offset ${pos} is not 0xfd2fb528`);
    pos += 4;
    need(1, 'frame header');
    const fhd = data[pos++]!;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd & 0x20) !== 0;
    const contentChecksum = (fhd & 0x04) !== 0;
    const dictIdSize = [0, 1, 2, 4][fhd & 0x03]!;
    if ((fhd & 0x08) !== 0) throw new WireError('zstd frame header has its reserved bit set');
    let windowSize = 0;
    if (!singleSegment) {
      need(1, 'window descriptor');
      const wd = data[pos++]!;
      const base = 2 ** (10 + (wd >> 3));
      windowSize = base + (base / 8) * (wd & 0x07);
    }
    need(dictIdSize, 'dictionary id');
    pos += dictIdSize;
    const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
    if (fcsSize > 0) {
      need(fcsSize, 'frame content size');
      let fcs: number;
      if (fcsSize === 1) fcs = data[pos]!;
      else if (fcsSize === 2) fcs = data.readUInt16LE(pos) + 256;
      else if (fcsSize === 4) fcs = data.readUInt32LE(pos);
      else fcs = Number(data.readBigUInt64LE(pos));
      pos += fcsSize;
      // The library may allocate the declared size up front, so it is checked on its own.
      if (fcs > maxBytes - total) throw tooLarge('zstd', fcs, maxBytes, 'declares');
      if (singleSegment) windowSize = fcs;
    }
    const blockMax = Math.min(windowSize, ZSTD_BLOCK_MAX);
    let last = false;
    while (!last) {
      need(3, 'block header');
      const header = data[pos]! | (data[pos + 1]! << 8) | (data[pos + 2]! << 16);
      pos += 3;
      last = (header & 1) !== 0;
      const type = (header >> 1) & 0x03;
      const size = header >>> 3;
      if (type === 3) throw new WireError(`zstd block at offset ${pos - 3} has the reserved block type`);
      if (size > ZSTD_BLOCK_MAX) throw new WireError(`zstd block of ${size} bytes exceeds the 128 KiB block maximum`);
      const stored = type === 1 ? 1 : size;
      need(stored, 'block');
      pos += stored;
      total += type === 2 ? blockMax : size;
      if (total > maxBytes) throw tooLarge('zstd', total, maxBytes, 'can expand to');
    }
    if (contentChecksum) {
      need(4, 'content checksum');
      pos += 4;
    }
  }
  return total;
}

async function zstdDecompress(data: Buffer, maxBytes: number): Promise<Buffer> {
  zstdMaxOutput(data, maxBytes);
  let out: Buffer;
  try {
    out = await zstd.decompress(data);
  } catch (err) {
    throw corrupt('zstd', err);
  }
  return checkProduced('zstd', out, maxBytes);
}

// ---------------------------------------------------------------------------------------------
// Public entry points

function gzipDecompressSync(data: Buffer, maxBytes: number): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (err) {
    throw gzipError(err, maxBytes);
  }
}

function gzipError(err: unknown, maxBytes: number): WireError {
  if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
    return new DecompressionLimitError(`gzip data decodes to more than the ${maxBytes}-byte decompression limit`, maxBytes, { cause: err });
  }
  return corrupt('gzip', err);
}

/**
 * Decompresses a batch's records region synchronously for every codec but zstd, whose only
 * binding is asynchronous (a `TypeError` says so: it is a caller mistake, not bad input).
 * Output larger than `maxBytes` is rejected with WireError before or while it is produced;
 * corrupt input of any codec is a WireError.
 */
export function decompressSync(codec: CompressionCodec, data: Buffer, maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  switch (codec) {
    case Compression.NONE:
      return checkProduced('uncompressed', data, maxBytes);
    case Compression.GZIP:
      return gzipDecompressSync(data, maxBytes);
    case Compression.SNAPPY:
      return snappyDecompressSync(data, maxBytes);
    case Compression.LZ4:
      return lz4DecompressSync(data, maxBytes);
    case Compression.ZSTD:
      throw new TypeError('zstd has no synchronous decompressor; use decompress() or decodeBatch()');
    default:
      throw new WireError(`unknown compression codec ${codec as number}`);
  }
}

/**
 * Decompresses a batch's records region for any codec, off the main thread where the
 * binding allows. Same limits and errors as {@link decompressSync}.
 */
export async function decompress(codec: CompressionCodec, data: Buffer, maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES): Promise<Buffer> {
  switch (codec) {
    case Compression.GZIP:
      try {
        return await gunzipAsync(data, { maxOutputLength: maxBytes });
      } catch (err) {
        throw gzipError(err, maxBytes);
      }
    case Compression.SNAPPY:
      return snappyDecompress(data, maxBytes);
    case Compression.LZ4:
      return lz4Decompress(data, maxBytes);
    case Compression.ZSTD:
      return zstdDecompress(data, maxBytes);
    default:
      return decompressSync(codec, data, maxBytes);
  }
}

/**
 * Compresses a records region synchronously for every codec but zstd (a `TypeError`; use
 * {@link compress}). Snappy is a single raw block unless `snappyXerial` is set; LZ4 is one
 * frame with independent 64 KiB blocks and no checksums beyond the header's, which every
 * Kafka reader accepts.
 */
export function compressSync(codec: CompressionCodec, data: Buffer, options: CompressOptions = {}): Buffer {
  switch (codec) {
    case Compression.NONE:
      return data;
    case Compression.GZIP:
      return gzipSync(data, options.level === undefined ? {} : { level: options.level });
    case Compression.SNAPPY:
      return snappyCompressSync(data, options.snappyXerial === true);
    case Compression.LZ4:
      return lz4.compressFrameSync(data);
    case Compression.ZSTD:
      throw new TypeError('zstd has no synchronous compressor; use compress() or encodeBatch()');
    default:
      throw new TypeError(`unknown compression codec ${codec as number}`);
  }
}

/** Compresses a records region with any codec. See {@link compressSync}. */
export async function compress(codec: CompressionCodec, data: Buffer, options: CompressOptions = {}): Promise<Buffer> {
  switch (codec) {
    case Compression.GZIP:
      return gzipAsync(data, options.level === undefined ? {} : { level: options.level });
    case Compression.ZSTD:
      return zstd.compress(data, options.level ?? 3);
    default:
      return compressSync(codec, data, options);
  }
}
