import { crc32c } from '@node-rs/crc32';
import { EncodeError, WireError } from '../runtime/errors.js';
import { Reader } from '../runtime/reader.js';
import { Writer } from '../runtime/writer.js';
import {
  BATCH_HEADER_SIZE,
  BATCH_LENGTH_OVERHEAD,
  BatchAttribute,
  BatchField,
  Compression,
  CRC_START,
  CURRENT_MAGIC,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  RecordBatchView,
  TimestampType,
  type CompressionCodec,
  type TimestampTypeValue,
} from './batch-header.js';
import {
  compress,
  compressSync,
  decompress,
  decompressSync,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  type CompressOptions,
} from './compression.js';

/** RecordHeader is one record header: a UTF-8 key and a nullable value. */
export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/**
 * KafkaRecord is one decoded record with its absolute offset and timestamp resolved from the
 * batch header. `key`, `value` and header values are views of the batch (or of its
 * decompressed records region), not copies.
 */
export interface KafkaRecord {
  /** Record attributes byte; unused by Kafka so far, kept as sent. */
  attributes: number;
  timestampDelta: number;
  offsetDelta: number;
  /** `baseOffset + offsetDelta`. */
  offset: number;
  /** `baseTimestamp + timestampDelta`, or the batch's maxTimestamp under LogAppendTime. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /**
   * The key, value and headers exactly as encoded (a view), with `withEncodedFields`: what a
   * re-encoder copies to keep a record's bytes, header keys that are not UTF-8 included.
   */
  encodedFields?: Buffer;
}

/** DecodedBatch is a RecordBatch v2 with every header field and all of its records. */
export interface DecodedBatch {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  compression: CompressionCodec;
  timestampType: TimestampTypeValue;
  isTransactional: boolean;
  isControl: boolean;
  hasDeleteHorizon: boolean;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
  records: KafkaRecord[];
}

/** Options for {@link decodeBatch} and {@link decodeBatchSync}. */
export interface DecodeBatchOptions {
  /** Largest records region a compressed batch may expand to; 64 MiB by default. */
  maxDecompressedBytes?: number;
  /** Check the CRC first and throw WireError on a mismatch; true by default. */
  verifyCrc?: boolean;
  /** Give every record its `encodedFields` (for rewriting records, as the log cleaner does). */
  withEncodedFields?: boolean;
}

function viewOf(batch: Buffer | RecordBatchView, options: DecodeBatchOptions): RecordBatchView {
  const view = batch instanceof RecordBatchView ? batch : new RecordBatchView(batch);
  if (options.verifyCrc !== false && !view.verifyCrc()) {
    throw new WireError(`record batch CRC is 0x${view.crc.toString(16)} but its bytes hash to 0x${view.computeCrc().toString(16)}`);
  }
  return view;
}

/**
 * Decodes a whole batch, records included, decompressing with any codec. For tests,
 * compaction and other features that need keys; the produce and fetch paths use
 * {@link RecordBatchView} and never come here.
 * @param batch exactly one batch (a Buffer or a view from `splitBatches`).
 * @throws WireError on a malformed batch, a bad CRC, or output over the decompression limit.
 */
export async function decodeBatch(batch: Buffer | RecordBatchView, options: DecodeBatchOptions = {}): Promise<DecodedBatch> {
  const view = viewOf(batch, options);
  const records = await decompress(view.compression, view.payload, options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES);
  return decodedBatch(view, records, options.withEncodedFields === true);
}

/**
 * Decodes a whole batch synchronously, like {@link decodeBatch}, for every codec but zstd
 * (a `TypeError`: the zstd binding is asynchronous only).
 */
export function decodeBatchSync(batch: Buffer | RecordBatchView, options: DecodeBatchOptions = {}): DecodedBatch {
  const view = viewOf(batch, options);
  const records = decompressSync(view.compression, view.payload, options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES);
  return decodedBatch(view, records, options.withEncodedFields === true);
}

function decodedBatch(view: RecordBatchView, region: Buffer, withFields: boolean): DecodedBatch {
  return {
    baseOffset: view.baseOffset,
    batchLength: view.batchLength,
    partitionLeaderEpoch: view.partitionLeaderEpoch,
    magic: view.magic,
    crc: view.crc,
    attributes: view.attributes,
    compression: view.compression,
    timestampType: view.timestampType,
    isTransactional: view.isTransactional,
    isControl: view.isControl,
    hasDeleteHorizon: view.hasDeleteHorizon,
    lastOffsetDelta: view.lastOffsetDelta,
    baseTimestamp: view.baseTimestamp,
    maxTimestamp: view.maxTimestamp,
    producerId: view.producerId,
    producerEpoch: view.producerEpoch,
    baseSequence: view.baseSequence,
    recordCount: view.recordCount,
    records: decodeRecords(region, view, withFields),
  };
}

/**
 * Decodes the uncompressed records region of `view`. Every length is checked against the
 * bytes left, each record must use exactly its declared length, and the region must hold
 * exactly `recordCount` records, as Kafka's `DefaultRecord.readFrom` and batch iterator insist.
 */
function decodeRecords(region: Buffer, view: RecordBatchView, withFields: boolean): KafkaRecord[] {
  const count = view.recordCount;
  const baseOffset = view.baseOffset;
  const baseTimestamp = view.baseTimestamp;
  const logAppendTime = view.timestampType === TimestampType.LOG_APPEND_TIME ? view.maxTimestamp : null;
  const r = new Reader(region);
  const out: KafkaRecord[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.varint();
    if (length < 0) throw new WireError(`record ${i} has negative length ${length}`);
    const start = r.pos;
    const body = new Reader(region, start, start + length);
    r.skip(length, `record ${i} of ${length} bytes`);
    const attributes = body.int8();
    const timestampDelta = body.varlong();
    const offsetDelta = body.varint();
    const fieldsStart = body.pos;
    const key = nullableVarBytes(body);
    const value = nullableVarBytes(body);
    const headerCount = body.varint();
    // A header takes at least two bytes (two varint lengths), so a larger count is malformed;
    // checking it first keeps a hostile count from driving a long loop.
    if (headerCount < 0 || headerCount * 2 > body.remaining) {
      throw new WireError(`record ${i} declares ${headerCount} headers in ${body.remaining} bytes`);
    }
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const keyLength = body.varint();
      if (keyLength < 0) throw new WireError(`record ${i} header ${h} has a null or negative key length ${keyLength}`);
      const headerKey = body.take(keyLength, 'header key').toString('utf8');
      headers.push({ key: headerKey, value: nullableVarBytes(body) });
    }
    if (body.remaining !== 0) {
      throw new WireError(`record ${i} declares ${length} bytes but its fields end ${body.remaining} bytes early`);
    }
    const record: KafkaRecord = {
      attributes,
      timestampDelta,
      offsetDelta,
      offset: baseOffset + offsetDelta,
      timestamp: logAppendTime ?? baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    };
    if (withFields) record.encodedFields = region.subarray(fieldsStart, start + length);
    out.push(record);
  }
  if (r.remaining !== 0) {
    throw new WireError(`record batch declares ${count} records but ${r.remaining} bytes follow the last one`);
  }
  return out;
}

/** A varint-length byte field; Kafka reads any negative length as null. */
function nullableVarBytes(r: Reader): Buffer | null {
  const n = r.varint();
  return n < 0 ? null : r.take(n);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** RecordInput is one record to encode; omitted fields take the defaults noted. */
export interface RecordInput {
  key?: Buffer | null;
  value?: Buffer | null;
  headers?: readonly RecordHeader[];
  /** Defaults to the batch's baseTimestamp. */
  timestamp?: number;
  /** Defaults to the record's index; set it to keep the gaps a compacted batch has. */
  offsetDelta?: number;
  /** Defaults to 0. */
  attributes?: number;
  /**
   * The key, value and headers already encoded (a decoded record's `encodedFields`), written
   * as they are; `key`, `value` and `headers` are then ignored.
   */
  encodedFields?: Buffer;
}

/** Options for {@link encodeBatch}; every field has Kafka's "none" default. */
export interface EncodeBatchOptions {
  /** Defaults to 0, what producers send; the broker rewrites it. */
  baseOffset?: number;
  /** Defaults to -1 (NO_PARTITION_LEADER_EPOCH, what the Java producer sends). */
  partitionLeaderEpoch?: number;
  /** Defaults to Compression.NONE. */
  compression?: CompressionCodec;
  /** Passed to the compressor (xerial snappy framing, level). */
  compressOptions?: CompressOptions;
  /** Defaults to CREATE_TIME. */
  timestampType?: TimestampTypeValue;
  /** Defaults to the first record's timestamp (as Kafka's MemoryRecordsBuilder), else -1. */
  baseTimestamp?: number;
  /** Defaults to the largest record timestamp, else -1. Under LogAppendTime, the append time. */
  maxTimestamp?: number;
  /** KIP-534 delete horizon: sets the attribute bit and becomes baseTimestamp. */
  deleteHorizonMs?: number;
  /** Defaults to -1 (no idempotence). */
  producerId?: number;
  /** Defaults to -1. */
  producerEpoch?: number;
  /** Defaults to -1. */
  baseSequence?: number;
  isTransactional?: boolean;
  isControl?: boolean;
  /** Defaults to the largest offsetDelta; required for a batch with no records. */
  lastOffsetDelta?: number;
}

/** Size of `v` as a zigzag varint/varlong. */
function sizeOfVarlong(v: number): number {
  let u = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    n++;
  }
  return n;
}

function sizeOfVarBytes(b: Buffer | null): number {
  return b === null ? 1 : sizeOfVarlong(b.length) + b.length;
}

function writeVarBytes(w: Writer, b: Buffer | null): void {
  if (b === null) {
    w.varint(-1);
    return;
  }
  w.varint(b.length);
  w.chunk(b);
}

interface PlannedBatch {
  attributes: number;
  baseTimestamp: number;
  maxTimestamp: number;
  lastOffsetDelta: number;
  region: Buffer;
}

/** Resolves defaults and writes the uncompressed records region. */
function planBatch(records: readonly RecordInput[], options: EncodeBatchOptions): PlannedBatch {
  let baseTimestamp = options.deleteHorizonMs ?? options.baseTimestamp;
  let maxTimestamp = -1;
  let maxOffsetDelta = -1;
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    if (rec.timestamp !== undefined) {
      baseTimestamp ??= rec.timestamp;
      if (rec.timestamp > maxTimestamp) maxTimestamp = rec.timestamp;
    }
    const delta = rec.offsetDelta ?? i;
    if (!Number.isInteger(delta) || delta < 0 || delta > 0x7fffffff) {
      throw new EncodeError(`record ${i} offsetDelta ${delta} is not an int32 ≥ 0`);
    }
    if (delta <= maxOffsetDelta) {
      throw new EncodeError(`record ${i} offsetDelta ${delta} does not increase (previous ${maxOffsetDelta})`);
    }
    maxOffsetDelta = delta;
  }
  baseTimestamp ??= -1;
  const lastOffsetDelta = options.lastOffsetDelta ?? maxOffsetDelta;
  if (lastOffsetDelta < 0 || lastOffsetDelta < maxOffsetDelta) {
    throw new EncodeError(
      records.length === 0
        ? 'a batch with no records needs lastOffsetDelta (the offset range it keeps)'
        : `lastOffsetDelta ${lastOffsetDelta} is below the largest offsetDelta ${maxOffsetDelta}`,
    );
  }

  const w = new Writer(1024);
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    const timestampDelta = (rec.timestamp ?? baseTimestamp) - baseTimestamp;
    const offsetDelta = rec.offsetDelta ?? i;
    if (rec.encodedFields !== undefined) {
      w.varint(1 + sizeOfVarlong(timestampDelta) + sizeOfVarlong(offsetDelta) + rec.encodedFields.length);
      w.int8(rec.attributes ?? 0);
      w.varlong(timestampDelta);
      w.varint(offsetDelta);
      w.chunk(rec.encodedFields);
      continue;
    }
    const key = rec.key ?? null;
    const value = rec.value ?? null;
    const headers = rec.headers ?? [];
    const headerKeys = headers.map((h) => Buffer.from(h.key, 'utf8'));
    let size = 1 + sizeOfVarlong(timestampDelta) + sizeOfVarlong(offsetDelta) + sizeOfVarBytes(key) + sizeOfVarBytes(value);
    size += sizeOfVarlong(headers.length);
    for (let h = 0; h < headers.length; h++) size += sizeOfVarBytes(headerKeys[h]!) + sizeOfVarBytes(headers[h]!.value);
    w.varint(size);
    w.int8(rec.attributes ?? 0);
    w.varlong(timestampDelta);
    w.varint(offsetDelta);
    writeVarBytes(w, key);
    writeVarBytes(w, value);
    w.varint(headers.length);
    for (let h = 0; h < headers.length; h++) {
      writeVarBytes(w, headerKeys[h]!);
      writeVarBytes(w, headers[h]!.value);
    }
  }

  let attributes = (options.compression ?? Compression.NONE) & BatchAttribute.COMPRESSION_MASK;
  if (options.timestampType === TimestampType.LOG_APPEND_TIME) attributes |= BatchAttribute.TIMESTAMP_TYPE;
  if (options.isTransactional === true) attributes |= BatchAttribute.TRANSACTIONAL;
  if (options.isControl === true) attributes |= BatchAttribute.CONTROL;
  if (options.deleteHorizonMs !== undefined) attributes |= BatchAttribute.DELETE_HORIZON;
  return {
    attributes,
    baseTimestamp,
    maxTimestamp: options.maxTimestamp ?? maxTimestamp,
    lastOffsetDelta,
    region: w.finishBuffer(),
  };
}

function writeInt64(buf: Buffer, at: number, v: number, what: string): void {
  if (!Number.isSafeInteger(v)) throw new EncodeError(`${what} ${v} is not a safe integer`);
  buf.writeBigInt64BE(BigInt(v), at);
}

/** Writes the header in front of the (possibly compressed) payload and computes the CRC. */
function assembleBatch(plan: PlannedBatch, payload: Buffer, recordCount: number, options: EncodeBatchOptions): Buffer {
  const out = Buffer.allocUnsafe(BATCH_HEADER_SIZE + payload.length);
  writeInt64(out, BatchField.baseOffset, options.baseOffset ?? 0, 'baseOffset');
  out.writeInt32BE(out.length - BATCH_LENGTH_OVERHEAD, BatchField.batchLength);
  out.writeInt32BE(options.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, BatchField.partitionLeaderEpoch);
  out.writeInt8(CURRENT_MAGIC, BatchField.magic);
  out.writeInt16BE(plan.attributes, BatchField.attributes);
  out.writeInt32BE(plan.lastOffsetDelta, BatchField.lastOffsetDelta);
  writeInt64(out, BatchField.baseTimestamp, plan.baseTimestamp, 'baseTimestamp');
  writeInt64(out, BatchField.maxTimestamp, plan.maxTimestamp, 'maxTimestamp');
  writeInt64(out, BatchField.producerId, options.producerId ?? NO_PRODUCER_ID, 'producerId');
  out.writeInt16BE(options.producerEpoch ?? NO_PRODUCER_EPOCH, BatchField.producerEpoch);
  out.writeInt32BE(options.baseSequence ?? NO_SEQUENCE, BatchField.baseSequence);
  out.writeInt32BE(recordCount, BatchField.recordCount);
  payload.copy(out, BATCH_HEADER_SIZE);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)) >>> 0, BatchField.crc);
  return out;
}

/**
 * Encodes records into one RecordBatch v2 with any codec, computing lengths and the CRC.
 * @throws EncodeError when the records or options cannot form a valid batch.
 */
export async function encodeBatch(records: readonly RecordInput[], options: EncodeBatchOptions = {}): Promise<Buffer> {
  const plan = planBatch(records, options);
  const payload = await compress(options.compression ?? Compression.NONE, plan.region, options.compressOptions);
  return assembleBatch(plan, payload, records.length, options);
}

/**
 * Encodes records like {@link encodeBatch}, synchronously, for every codec but zstd
 * (a `TypeError`: the zstd binding is asynchronous only).
 */
export function encodeBatchSync(records: readonly RecordInput[], options: EncodeBatchOptions = {}): Buffer {
  const plan = planBatch(records, options);
  const payload = compressSync(options.compression ?? Compression.NONE, plan.region, options.compressOptions);
  return assembleBatch(plan, payload, records.length, options);
}
