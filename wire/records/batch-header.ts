import { crc32c } from '@node-rs/crc32';
import { WireError } from '../runtime/errors.js';

/**
 * BatchField holds the byte offset of every RecordBatch v2 header field from the start of the
 * batch. All integers are big-endian.
 */
export const BatchField = {
  baseOffset: 0, // int64
  batchLength: 8, // int32, bytes after this field
  partitionLeaderEpoch: 12, // int32, not covered by the CRC
  magic: 16, // int8, always 2
  crc: 17, // uint32, CRC32C of bytes [attributes, end)
  attributes: 21, // int16
  lastOffsetDelta: 23, // int32
  baseTimestamp: 27, // int64
  maxTimestamp: 35, // int64
  producerId: 43, // int64
  producerEpoch: 51, // int16
  baseSequence: 53, // int32
  recordCount: 57, // int32
} as const;

/** Size of the RecordBatch v2 header: the records start at this offset. */
export const BATCH_HEADER_SIZE = 61;

/** Bytes before and including `batchLength` that the length itself does not count. */
export const BATCH_LENGTH_OVERHEAD = 12;

/** Smallest legal `batchLength`: a header with no records. */
export const MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - BATCH_LENGTH_OVERHEAD;

/** Offset where the CRC-covered region starts (the attributes field). */
export const CRC_START = BatchField.attributes;

/** The only record format version Strata accepts (Kafka 4.0 dropped magic 0 and 1). */
export const CURRENT_MAGIC = 2;

/** BatchAttribute holds the bit masks of the int16 batch attributes. */
export const BatchAttribute = {
  COMPRESSION_MASK: 0x07,
  /** Set when the batch's timestamps are LogAppendTime (then maxTimestamp is the time). */
  TIMESTAMP_TYPE: 0x08,
  TRANSACTIONAL: 0x10,
  CONTROL: 0x20,
  /** KIP-534: baseTimestamp holds the compaction delete horizon, not a record timestamp. */
  DELETE_HORIZON: 0x40,
} as const;

/** Compression is the codec id carried in bits 0-2 of a RecordBatch's attributes. */
export const Compression = {
  NONE: 0,
  GZIP: 1,
  SNAPPY: 2,
  LZ4: 3,
  ZSTD: 4,
} as const;

/** A codec id from {@link Compression}. */
export type CompressionCodec = (typeof Compression)[keyof typeof Compression];

/** TimestampType is the meaning of a batch's timestamps, from attribute bit 3. */
export const TimestampType = {
  CREATE_TIME: 0,
  LOG_APPEND_TIME: 1,
} as const;

/** A value from {@link TimestampType}. */
export type TimestampTypeValue = (typeof TimestampType)[keyof typeof TimestampType];

/** The producerId of a batch from a producer without idempotence. */
export const NO_PRODUCER_ID = -1;
/** The producerEpoch Kafka writes without a producer id (kafkajs writes 0). */
export const NO_PRODUCER_EPOCH = -1;
/** The baseSequence of a batch without idempotence. */
export const NO_SEQUENCE = -1;
/** The partitionLeaderEpoch Kafka's own producer sends (librdkafka and kafkajs send 0). */
export const NO_PARTITION_LEADER_EPOCH = -1;

const TWO_32 = 2 ** 32;

/** Reads a big-endian int64 as a number, or NaN when it is outside the safe-integer range. */
function int64AsNumber(buf: Buffer, at: number): number {
  const v = buf.readInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
  return Number.isSafeInteger(v) ? v : Number.NaN;
}

function writeInt64Number(buf: Buffer, at: number, v: number, what: string): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${what} ${v} is not a safe integer`);
  const hi = Math.floor(v / TWO_32);
  buf.writeInt32BE(hi, at);
  buf.writeUInt32BE(v - hi * TWO_32, at + 4);
}

/** Module-private token: lets splitBatches build views of batches it has already validated. */
const VALIDATED: unique symbol = Symbol('validated');

/**
 * RecordBatchView is a zero-copy view of one RecordBatch v2 over a Buffer: it reads header
 * fields in place and edits the few that the broker rewrites. The records region is never
 * parsed here (see `decodeBatch` for that), which is what keeps produce and fetch cheap.
 *
 * The constructor validates the structure (see {@link splitBatches}), so every view's int64
 * fields are safe integers and its codec is known; it does not check the CRC (call
 * {@link RecordBatchView.verifyCrc}). Setters write into the underlying buffer.
 */
export class RecordBatchView {
  readonly #buf: Buffer;

  /**
   * Wraps `bytes`, which must hold exactly one batch.
   * @throws WireError when the bytes are not a structurally valid RecordBatch v2.
   */
  constructor(bytes: Buffer, validated?: typeof VALIDATED) {
    this.#buf = bytes;
    // splitBatches has just checked these bytes; checking again would double the per-batch cost.
    if (validated === VALIDATED) return;
    const size = checkBatchStructure(bytes, 0, bytes.length);
    if (size !== bytes.length) {
      throw new WireError(
        `batchLength ${size - BATCH_LENGTH_OVERHEAD} does not match the ${bytes.length}-byte buffer ` +
          `(expected ${bytes.length - BATCH_LENGTH_OVERHEAD})`,
      );
    }
  }

  /** The batch's bytes (a view of the buffer it was built from, not a copy). */
  get bytes(): Buffer {
    return this.#buf;
  }

  /** Total size of the batch in bytes, `batchLength + 12`. */
  get sizeInBytes(): number {
    return this.#buf.length;
  }

  /** Offset of the first record slot, as a number (safe: checked on construction). */
  get baseOffset(): number {
    return int64AsNumber(this.#buf, BatchField.baseOffset);
  }

  /** baseOffset as the int64 it is on the wire. */
  get baseOffsetBigInt(): bigint {
    return this.#buf.readBigInt64BE(BatchField.baseOffset);
  }

  /** Offset of the last record slot, `baseOffset + lastOffsetDelta`. */
  get lastOffset(): number {
    return this.baseOffset + this.lastOffsetDelta;
  }

  /** The offset after this batch, `lastOffset + 1`. */
  get nextOffset(): number {
    return this.baseOffset + this.lastOffsetDelta + 1;
  }

  /** Bytes after the batchLength field: `sizeInBytes - 12`. */
  get batchLength(): number {
    return this.#buf.readInt32BE(BatchField.batchLength);
  }

  /** Leader epoch the broker stamped on the batch; producers send -1 or 0. */
  get partitionLeaderEpoch(): number {
    return this.#buf.readInt32BE(BatchField.partitionLeaderEpoch);
  }

  /** Record format version; always 2 for a view. */
  get magic(): number {
    return this.#buf.readInt8(BatchField.magic);
  }

  /** The stored CRC32C, as an unsigned 32-bit number. */
  get crc(): number {
    return this.#buf.readUInt32BE(BatchField.crc);
  }

  /** The raw int16 attributes; see {@link BatchAttribute} and the getters below. */
  get attributes(): number {
    return this.#buf.readInt16BE(BatchField.attributes);
  }

  /** Codec of the records region, from attribute bits 0-2. */
  get compression(): CompressionCodec {
    return (this.attributes & BatchAttribute.COMPRESSION_MASK) as CompressionCodec;
  }

  /** CreateTime or LogAppendTime, from attribute bit 3. */
  get timestampType(): TimestampTypeValue {
    return (this.attributes & BatchAttribute.TIMESTAMP_TYPE) !== 0 ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME;
  }

  /** Whether the batch belongs to a transaction (attribute bit 4). */
  get isTransactional(): boolean {
    return (this.attributes & BatchAttribute.TRANSACTIONAL) !== 0;
  }

  /** Whether the batch holds a control record such as a transaction marker (bit 5). */
  get isControl(): boolean {
    return (this.attributes & BatchAttribute.CONTROL) !== 0;
  }

  /** Whether baseTimestamp holds a compaction delete horizon (bit 6, KIP-534). */
  get hasDeleteHorizon(): boolean {
    return (this.attributes & BatchAttribute.DELETE_HORIZON) !== 0;
  }

  /** The compaction delete horizon (KIP-534), which lives in baseTimestamp; null if unset. */
  get deleteHorizonMs(): number | null {
    return this.hasDeleteHorizon ? this.baseTimestamp : null;
  }

  /** Offset delta of the last record slot; records may be fewer after compaction. */
  get lastOffsetDelta(): number {
    return this.#buf.readInt32BE(BatchField.lastOffsetDelta);
  }

  /** Timestamp the record deltas are relative to (usually the first record's). */
  get baseTimestamp(): number {
    return int64AsNumber(this.#buf, BatchField.baseTimestamp);
  }

  /** baseTimestamp as the int64 it is on the wire. */
  get baseTimestampBigInt(): bigint {
    return this.#buf.readBigInt64BE(BatchField.baseTimestamp);
  }

  /** Largest record timestamp, or the append time under LogAppendTime. */
  get maxTimestamp(): number {
    return int64AsNumber(this.#buf, BatchField.maxTimestamp);
  }

  /** maxTimestamp as the int64 it is on the wire. */
  get maxTimestampBigInt(): bigint {
    return this.#buf.readBigInt64BE(BatchField.maxTimestamp);
  }

  /** Producer id, or -1 for a producer without idempotence. */
  get producerId(): number {
    return int64AsNumber(this.#buf, BatchField.producerId);
  }

  /** producerId as the int64 it is on the wire. */
  get producerIdBigInt(): bigint {
    return this.#buf.readBigInt64BE(BatchField.producerId);
  }

  /** Producer epoch, or -1 (librdkafka) / 0 (kafkajs) without a producer id. */
  get producerEpoch(): number {
    return this.#buf.readInt16BE(BatchField.producerEpoch);
  }

  /** Sequence number of the first record, or -1 without idempotence. */
  get baseSequence(): number {
    return this.#buf.readInt32BE(BatchField.baseSequence);
  }

  /**
   * Sequence of the last record slot. Sequences wrap at 2^31 like Kafka's
   * `DefaultRecordBatch.incrementSequence`, so a batch may straddle the wrap.
   */
  get lastSequence(): number {
    const base = this.baseSequence;
    if (base === NO_SEQUENCE) return NO_SEQUENCE;
    const last = base + this.lastOffsetDelta;
    return last > 0x7fffffff ? last - 0x80000000 : last;
  }

  /** Number of records in the batch. */
  get recordCount(): number {
    return this.#buf.readInt32BE(BatchField.recordCount);
  }

  /** The records region after the header, still compressed if the batch is. A view. */
  get payload(): Buffer {
    return this.#buf.subarray(BATCH_HEADER_SIZE);
  }

  /**
   * Rewrites baseOffset in place. Safe on a batch whose CRC was verified: the CRC starts at
   * the attributes, so the offset the broker assigns never invalidates it.
   */
  setBaseOffset(offset: number): void {
    writeInt64Number(this.#buf, BatchField.baseOffset, offset, 'baseOffset');
  }

  /** Rewrites partitionLeaderEpoch in place; like baseOffset it is outside the CRC. */
  setPartitionLeaderEpoch(epoch: number): void {
    this.#buf.writeInt32BE(epoch, BatchField.partitionLeaderEpoch);
  }

  /**
   * Sets the timestamp type bit and maxTimestamp, then recomputes the CRC, as Kafka's
   * `DefaultRecordBatch.setMaxTimestamp` does. With LOG_APPEND_TIME, readers take
   * `maxTimestampMs` as every record's timestamp; record deltas are left as the client wrote
   * them. Both fields are inside the CRC, hence the recompute.
   */
  setMaxTimestamp(timestampType: TimestampTypeValue, maxTimestampMs: number): void {
    const attrs = this.attributes;
    const next =
      timestampType === TimestampType.LOG_APPEND_TIME
        ? attrs | BatchAttribute.TIMESTAMP_TYPE
        : attrs & ~BatchAttribute.TIMESTAMP_TYPE;
    if (next === attrs && this.maxTimestamp === maxTimestampMs) return;
    this.#buf.writeInt16BE(next, BatchField.attributes);
    writeInt64Number(this.#buf, BatchField.maxTimestamp, maxTimestampMs, 'maxTimestamp');
    this.recomputeCrc();
  }

  /** Computes the CRC32C of the covered region (attributes to the end) as it is now. */
  computeCrc(): number {
    return crc32c(this.#buf.subarray(CRC_START)) >>> 0;
  }

  /** Whether the stored CRC matches the batch's bytes. */
  verifyCrc(): boolean {
    return this.computeCrc() === this.crc;
  }

  /** Writes the CRC of the covered region into the header. */
  recomputeCrc(): void {
    this.#buf.writeUInt32BE(this.computeCrc(), BatchField.crc);
  }
}

/**
 * Checks the header of the batch at `pos` in `buf` (which must be fully present up to `end`)
 * and returns the batch's total size. These are the checks Kafka makes whenever it reads a log,
 * not the stricter ones it makes on a client's produce (see {@link checkProducedBatch}).
 */
function checkBatchStructure(buf: Buffer, pos: number, end: number): number {
  const left = end - pos;
  if (left < BatchField.magic + 1) {
    throw new WireError(`record batch at offset ${pos} is truncated: ${left} bytes, the header alone is ${BATCH_HEADER_SIZE}`);
  }
  const magic = buf.readInt8(pos + BatchField.magic);
  if (magic !== CURRENT_MAGIC) {
    // Why a distinct message: magic 0/1 are the pre-0.11 message sets, which a client only
    // sends when it failed to negotiate Produce v3+; the fix is on the client side.
    throw new WireError(
      magic === 0 || magic === 1
        ? `record batch at offset ${pos} uses message format v${magic}; only RecordBatch v2 (magic 2, Kafka 0.11+) is supported`
        : `record batch at offset ${pos} has unknown magic ${magic}; expected 2`,
    );
  }
  if (left < BATCH_HEADER_SIZE) {
    throw new WireError(`record batch at offset ${pos} is truncated: ${left} bytes, the header alone is ${BATCH_HEADER_SIZE}`);
  }
  const batchLength = buf.readInt32BE(pos + BatchField.batchLength);
  if (batchLength < MIN_BATCH_LENGTH) {
    throw new WireError(`record batch at offset ${pos} has batchLength ${batchLength}, below the minimum ${MIN_BATCH_LENGTH}`);
  }
  if (batchLength > left - BATCH_LENGTH_OVERHEAD) {
    throw new WireError(
      `record batch at offset ${pos} has batchLength ${batchLength} but only ${left - BATCH_LENGTH_OVERHEAD} bytes follow the length`,
    );
  }
  const codec = buf.readInt16BE(pos + BatchField.attributes) & BatchAttribute.COMPRESSION_MASK;
  if (codec > Compression.ZSTD) {
    throw new WireError(`record batch at offset ${pos} names unknown compression codec ${codec} (Kafka knows 0-4)`);
  }
  const lastOffsetDelta = buf.readInt32BE(pos + BatchField.lastOffsetDelta);
  const recordCount = buf.readInt32BE(pos + BatchField.recordCount);
  // A compacted batch may hold fewer records than its offset range (even none: Kafka keeps
  // empty batches to preserve producer state), but never more, since deltas are distinct.
  if (lastOffsetDelta < 0) {
    throw new WireError(`record batch at offset ${pos} has negative lastOffsetDelta ${lastOffsetDelta}`);
  }
  if (recordCount < 0 || recordCount > lastOffsetDelta + 1) {
    throw new WireError(
      `record batch at offset ${pos} has recordCount ${recordCount}, outside 0..${lastOffsetDelta + 1} for lastOffsetDelta ${lastOffsetDelta}`,
    );
  }
  // The broker keeps offsets, timestamps and producer ids as numbers. Values past 2^53 cannot
  // come from a Strata partition (offsets and producer ids are ours; 2^53 ms is 285,000 years).
  checkSafeInt64(buf, pos, BatchField.baseOffset, 'baseOffset');
  checkSafeInt64(buf, pos, BatchField.baseTimestamp, 'baseTimestamp');
  checkSafeInt64(buf, pos, BatchField.maxTimestamp, 'maxTimestamp');
  checkSafeInt64(buf, pos, BatchField.producerId, 'producerId');
  return BATCH_LENGTH_OVERHEAD + batchLength;
}

function checkSafeInt64(buf: Buffer, pos: number, at: number, name: string): void {
  if (Number.isNaN(int64AsNumber(buf, pos + at))) {
    throw new WireError(`record batch at offset ${pos} has ${name} ${buf.readBigInt64BE(pos + at)} outside ±2^53`);
  }
}

/** Options for {@link splitBatches}. */
export interface SplitBatchesOptions {
  /**
   * Ignore a truncated batch at the end instead of throwing. Kafka's fetch responses may end
   * in a partial batch (clients drop it); produce requests and Strata's own segments never do.
   */
  allowPartialTail?: boolean;
}

/**
 * Splits a `records` region of concatenated batches into validated views (no bytes are
 * copied). Each batch must be magic 2, have `batchLength` ≥ 49 and fit in what is left, a
 * known codec, `0 ≤ recordCount ≤ lastOffsetDelta + 1`, and int64 fields within ±2^53. CRCs
 * are not checked here.
 * @throws WireError on the first malformed batch.
 */
export function splitBatches(records: Buffer, options: SplitBatchesOptions = {}): RecordBatchView[] {
  const views: RecordBatchView[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (options.allowPartialTail === true) {
      const left = records.length - pos;
      if (left < BATCH_LENGTH_OVERHEAD || records.readInt32BE(pos + BatchField.batchLength) > left - BATCH_LENGTH_OVERHEAD) break;
    }
    const size = checkBatchStructure(records, pos, records.length);
    views.push(new RecordBatchView(records.subarray(pos, pos + size), VALIDATED));
    pos += size;
  }
  return views;
}

/** One offending record of a refused batch: Produce v8+ `recordErrors` (KIP-467). */
export interface RecordError {
  /** The record's index in its batch. */
  batchIndex: number;
  message: string;
}

/** Why a produced batch was refused, with the Kafka error the partition should answer. */
export interface BatchRejection {
  errorName: 'CORRUPT_MESSAGE' | 'INVALID_RECORD' | 'INVALID_TIMESTAMP' | 'MESSAGE_TOO_LARGE';
  message: string;
  /** The records that caused it, when Kafka names them (per-record rules, not malformed bytes). */
  recordErrors?: readonly RecordError[];
}

/**
 * Applies the checks Kafka makes on a batch a client produces, beyond the structural ones
 * every view already passed: CRC (CORRUPT_MESSAGE); baseOffset 0, a record count equal to
 * the offset range, no control batches, a sequence for every producer id (INVALID_RECORD).
 * Returns null when the batch is acceptable. Size limits, timestamps, keys for compacted
 * topics and the one-batch-per-partition rule of Produce v3+ are the handler's to check.
 */
export function checkProducedBatch(view: RecordBatchView): BatchRejection | null {
  if (!view.verifyCrc()) {
    return {
      errorName: 'CORRUPT_MESSAGE',
      message: `record batch CRC is 0x${view.crc.toString(16)} but its bytes hash to 0x${view.computeCrc().toString(16)}`,
    };
  }
  const invalid = (message: string): BatchRejection => ({ errorName: 'INVALID_RECORD', message });
  // Clients always send 0; the broker assigns offsets, and Kafka refuses anything else.
  if (view.baseOffset !== 0) return invalid(`record batch baseOffset is ${view.baseOffset}; a produced batch must use 0`);
  if (view.recordCount === 0) return invalid('record batch holds no records');
  if (view.recordCount !== view.lastOffsetDelta + 1) {
    return invalid(`record batch has ${view.recordCount} records but lastOffsetDelta ${view.lastOffsetDelta}`);
  }
  if (view.isControl) return invalid('clients may not produce control batches');
  if (view.producerId >= 0 && view.baseSequence < 0) {
    return invalid(`record batch has producerId ${view.producerId} but baseSequence ${view.baseSequence}`);
  }
  return null;
}
