/**
 * Record-level validation of produced batches, as Kafka's LogValidator does it: every record of
 * the batch is walked once, straight from the bytes, before the batch may be stored.
 *
 * What {@link checkProducedBatch} leaves to this walk: that the records region holds exactly
 * `recordCount` records and nothing after them; that each record's length varint is followed by
 * exactly that many bytes of fields; well-formed varints (at most 5 bytes) and varlongs (at most
 * 10) that stay inside their record; key, value and header lengths (−1 is null; a header key is
 * never null); header counts that fit the bytes left; offset deltas 0, 1, 2, … (so the last is
 * `lastOffsetDelta`); record timestamps against the topic's timestamp type and limits; and a key
 * on every record of a compacted topic.
 *
 * The walk allocates nothing per record: varints are read from the buffer into numbers through a
 * module-level cursor, and objects are built only to describe a rejection. Compressed batches are
 * decompressed first (off the main thread where the codec binding allows), bounded by the
 * caller's limit and by the header's own claim: `recordCount` records take at least
 * {@link MIN_RECORD_SIZE} bytes each.
 *
 * Error codes follow Kafka: a malformed record is INVALID_RECORD with no record errors (Kafka
 * throws from its record iterator); a keyless record on a compacted topic is INVALID_RECORD and a
 * timestamp out of range INVALID_TIMESTAMP, both with one record error per offending record
 * (`batchIndex` is the record's index in the batch) and the partition message Kafka writes.
 */
import { WireError } from '../runtime/errors.js';
import { TimestampType, type BatchRejection, type RecordBatchView, type RecordError, type TimestampTypeValue } from './batch-header.js';
import { DecompressionLimitError, compressionName, decompress } from './compression.js';

/**
 * The smallest record on the wire: a one-byte length varint, then six one-byte fields
 * (attributes, timestamp delta, offset delta, key length, value length, header count).
 */
export const MIN_RECORD_SIZE = 7;

/**
 * The most record errors one rejection lists. Kafka lists every offending record; a 1 MiB
 * batch of tiny keyless records would then answer with megabytes of identical messages, so the
 * list stops here (the partition's error message still gives the total).
 */
export const MAX_RECORD_ERRORS = 1000;

/** The topic's rules a produced batch's records are checked against. */
export interface RecordPolicy {
  /** The topic's `message.timestamp.type`. */
  timestampType: TimestampTypeValue;
  /** How far before `nowMs` a CreateTime timestamp may be (`message.timestamp.before.max.ms`). */
  timestampBeforeMaxMs: bigint;
  /** How far after `nowMs` a CreateTime timestamp may be (`message.timestamp.after.max.ms`). */
  timestampAfterMaxMs: bigint;
  /** The broker's clock for the timestamp checks, in ms. */
  nowMs: number;
  /** Whether `cleanup.policy` includes `compact`: every record then needs a key. */
  compacted: boolean;
  /** Largest size a compressed batch's records may expand to. */
  maxDecompressedBytes: number;
  /** Names the partition in Kafka's record error messages (`<topic>-<partition>`). */
  topic: string;
}

/** The outcome of walking a batch's records. */
export interface RecordsVerdict {
  /** Why the batch must not be stored, or null when every record is valid. */
  rejection: BatchRejection | null;
  /**
   * Under a CreateTime topic, the largest record timestamp (−1 when every record has none):
   * what Kafka writes into the batch's maxTimestamp. Under LogAppendTime, −1.
   */
  maxTimestamp: number;
}

/** Thrown inside the walk for a malformed record; turned into an INVALID_RECORD rejection. */
class MalformedRecord extends Error {}

/** The walk's position in the records region; module-level so that reading a varint allocates nothing. */
let at = 0;

function truncated(field: string): MalformedRecord {
  return new MalformedRecord(`its ${field} runs past the end of the record`);
}

/**
 * Reads a zigzag varint (int32) at `at`, as Kafka's ByteUtils.readVarint does: at most 5
 * bytes. The one- and two-byte forms (every delta, and lengths below 8 KiB) are read here in
 * a function small enough for V8 to inline into the walk; longer ones by {@link longVarint}.
 */
function varint(buf: Buffer, end: number, field: string): number {
  const b = buf[at]!;
  if (b < 0x80 && at < end) {
    at++;
    return (b >>> 1) ^ -(b & 1);
  }
  if (at + 1 < end) {
    const c = buf[at + 1]!;
    if (c < 0x80) {
      const u = (b & 0x7f) | (c << 7);
      at += 2;
      return (u >>> 1) ^ -(u & 1);
    }
  }
  return longVarint(buf, end, field);
}

/** {@link varint}'s general case: any length, and the errors. */
function longVarint(buf: Buffer, end: number, field: string): number {
  if (at >= end) throw truncated(field);
  let b = buf[at++]!;
  if (b < 0x80) return (b >>> 1) ^ -(b & 1);
  let value = b & 0x7f;
  for (let shift = 7; ; shift += 7) {
    if (at >= end) throw truncated(field);
    b = buf[at++]!;
    if (b < 0x80) {
      // Like Java, the fifth byte's bits past 32 are dropped rather than refused.
      value |= b << shift;
      return (value >>> 1) ^ -(value & 1);
    }
    if (shift === 28) throw new MalformedRecord(`its ${field} varint is longer than 5 bytes`);
    value |= (b & 0x7f) << shift;
  }
}

/**
 * Reads a zigzag varlong (int64) at `at`, at most 10 bytes, as a number. Values past ±2^53 lose
 * precision; the only varlong is the timestamp delta, and a CreateTime timestamp that far out is
 * refused (LogAppendTime topics ignore record timestamps).
 */
function varlong(buf: Buffer, end: number, field: string): number {
  // The short forms are varint's, written out again on purpose: sharing them (a reader
  // passed in, or a packed return value) kept V8 from inlining and cost ~25% of the walk.
  const b = buf[at]!;
  if (b < 0x80 && at < end) {
    at++;
    return (b >>> 1) ^ -(b & 1);
  }
  if (at + 1 < end) {
    const c = buf[at + 1]!;
    if (c < 0x80) {
      const u = (b & 0x7f) | (c << 7);
      at += 2;
      return (u >>> 1) ^ -(u & 1);
    }
  }
  return longVarlong(buf, end, field);
}

/** {@link varlong}'s general case: more than one byte, and the errors. */
function longVarlong(buf: Buffer, end: number, field: string): number {
  if (at >= end) throw truncated(field);
  let b = buf[at++]!;
  if (b < 0x80) return (b >>> 1) ^ -(b & 1);
  // The first four bytes fit 28 bits of integer arithmetic; the rest continue in doubles.
  let low = b & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    if (at >= end) throw truncated(field);
    b = buf[at++]!;
    low |= (b & 0x7f) << shift;
    if (b < 0x80) return (low >>> 1) ^ -(low & 1);
  }
  let value = low;
  let scale = 2 ** 28;
  for (let n = 4; ; n++) {
    if (at >= end) throw truncated(field);
    b = buf[at++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) break;
    if (n === 9) throw new MalformedRecord(`its ${field} varlong is longer than 10 bytes`);
    scale *= 128;
  }
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/** Skips a length-prefixed field whose length was just read; −1 (null) only where `nullable`. */
function skipBytes(length: number, end: number, field: string, nullable: boolean): void {
  if (length < 0) {
    if (length === -1 && nullable) return;
    throw new MalformedRecord(`its ${field} length is ${length}`);
  }
  if (length > end - at) throw new MalformedRecord(`its ${field} length ${length} exceeds the ${end - at} bytes left in the record`);
  at += length;
}

/** Java's `long` arithmetic for the bounds Kafka prints: it wraps at ±2^63 rather than widening. */
function javaLong(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/**
 * Why a CreateTime timestamp outside the window is refused: Kafka's message when it is out of
 * the topic's bounds, Strata's own when only ±2^53 excludes it.
 */
function timestampProblemOf(timestamp: number, index: number, policy: RecordPolicy): string {
  const diff = policy.nowMs - timestamp;
  if (diff > Number(policy.timestampBeforeMaxMs) || -diff > Number(policy.timestampAfterMaxMs)) {
    const now = BigInt(policy.nowMs);
    return (
      `Timestamp ${timestamp} of message with offset ${index} is out of range. The timestamp should be within ` +
      `[${javaLong(now - policy.timestampBeforeMaxMs)}, ${javaLong(now + policy.timestampAfterMaxMs)}]`
    );
  }
  // Strata keeps timestamps as numbers; 2^53 ms is 285,000 years either side of 1970.
  return `Timestamp ${timestamp} of message with offset ${index} is outside ±2^53 ms, which Strata cannot store`;
}

/** Kafka's message for a producer that set the LogAppendTime bit, naming the record as Java prints it. */
function logAppendTimeProblem(index: number, timestamp: number, keyLength: number, valueLength: number): string {
  const record = `DefaultRecord(offset=${index}, timestamp=${timestamp}, key=${Math.max(keyLength, 0)} bytes, value=${Math.max(valueLength, 0)} bytes)`;
  return `Invalid timestamp type in message ${record}. Producer should not set timestamp type to LogAppendTime.`;
}

function reject(errorName: BatchRejection['errorName'], message: string): RecordsVerdict {
  return { rejection: { errorName, message }, maxTimestamp: -1 };
}

/**
 * Walks the uncompressed records region `region` of the produced batch `view` (its payload, or
 * the payload decompressed) and checks every record against Kafka's rules and `policy`.
 * `partition` only names the partition in Kafka's record error messages. Synchronous, one pass,
 * no allocation per valid record.
 */
export function validateRecords(view: RecordBatchView, region: Buffer, policy: RecordPolicy, partition: number): RecordsVerdict {
  const count = view.recordCount;
  const end = region.length;
  // The header's own claim, checked before any loop: a count the bytes cannot hold (2^31 − 1
  // records in a few bytes) is refused without walking.
  if (count * MIN_RECORD_SIZE > end) {
    return reject(
      'INVALID_RECORD',
      `record batch declares ${count} records but its ${end}-byte records region holds at most ${Math.floor(end / MIN_RECORD_SIZE)}`,
    );
  }
  const createTime = policy.timestampType === TimestampType.CREATE_TIME;
  const batchLogAppendTime = view.timestampType === TimestampType.LOG_APPEND_TIME;
  const baseTimestamp = view.baseTimestamp;
  const batchMaxTimestamp = view.maxTimestamp;
  // Kafka refuses a timestamp t when now − t > before or t − now > after: t must lie within
  // [now − before, now + after]. Strata also needs t within ±2^53, so the window is clamped to
  // that, and a good record costs one comparison; the slow path tells the two apart.
  const nowMs = policy.nowMs;
  const lowestMs = Math.max(nowMs - Number(policy.timestampBeforeMaxMs), -Number.MAX_SAFE_INTEGER);
  const highestMs = Math.min(nowMs + Number(policy.timestampAfterMaxMs), Number.MAX_SAFE_INTEGER);
  const compacted = policy.compacted;
  let maxTimestamp = -1;
  let recordErrors: RecordError[] | null = null;
  let errorCount = 0;
  let timestampErrors = 0;

  at = 0;
  let i = 0;
  try {
    for (; i < count; i++) {
      if (at >= end) {
        return reject('INVALID_RECORD', `record batch declares ${count} records but its records region ends after ${i}`);
      }
      const length = varint(region, end, 'length');
      if (length < 0 || length > end - at) {
        throw new MalformedRecord(`its length ${length} does not fit the ${end - at} bytes left in the records region`);
      }
      const recordEnd = at + length;
      if (at >= recordEnd) throw truncated('attributes');
      at++; // attributes: unused by Kafka, kept as sent
      const timestampDelta = varlong(region, recordEnd, 'timestamp delta');
      const offsetDelta = varint(region, recordEnd, 'offset delta');
      // Kafka rewrites a compressed batch whose deltas are not 0, 1, 2, … and stores an
      // uncompressed one as sent; Strata stores batches as sent and refuses both, since such
      // deltas give consumers offsets that belong to other batches.
      if (offsetDelta !== i) throw new MalformedRecord(`its offset delta is ${offsetDelta}; record ${i} of a produced batch must use ${i}`);
      const keyLength = varint(region, recordEnd, 'key length');
      if (keyLength >= 0 && keyLength <= recordEnd - at) at += keyLength;
      else skipBytes(keyLength, recordEnd, 'key', true);
      const valueLength = varint(region, recordEnd, 'value length');
      if (valueLength >= 0 && valueLength <= recordEnd - at) at += valueLength;
      else skipBytes(valueLength, recordEnd, 'value', true);
      const headerCount = varint(region, recordEnd, 'header count');
      // Each header takes at least two bytes (its two lengths), so a larger count cannot fit.
      if (headerCount < 0 || headerCount > (recordEnd - at) >> 1) {
        throw new MalformedRecord(`it declares ${headerCount} headers in the ${recordEnd - at} bytes left`);
      }
      for (let h = 0; h < headerCount; h++) {
        skipBytes(varint(region, recordEnd, 'header key length'), recordEnd, 'header key', false);
        skipBytes(varint(region, recordEnd, 'header value length'), recordEnd, 'header value', true);
      }
      if (at !== recordEnd) throw new MalformedRecord(`it declares ${length} bytes but its fields end ${recordEnd - at} bytes early`);

      // Per-record rules, in Kafka's order: the key first, then the timestamp; one error per
      // record, and the walk goes on so that every offending record is reported.
      let problem: string | null = null;
      let timestampProblem = false;
      if (compacted && keyLength < 0) {
        problem = `Compacted topic cannot accept message without key in topic partition ${policy.topic}-${partition}`;
      } else if (createTime) {
        const timestamp = batchLogAppendTime ? batchMaxTimestamp : baseTimestamp + timestampDelta;
        // -1 (no timestamp) skips the bounds, but not with the LogAppendTime bit set.
        if (timestamp >= lowestMs && timestamp <= highestMs && (timestamp !== -1 || !batchLogAppendTime)) {
          if (timestamp > maxTimestamp) maxTimestamp = timestamp;
        } else if (timestamp !== -1) {
          timestampProblem = true;
          problem = timestampProblemOf(timestamp, i, policy);
        } else if (batchLogAppendTime) {
          timestampProblem = true;
          problem = logAppendTimeProblem(i, batchMaxTimestamp, keyLength, valueLength);
        }
      } else if (batchLogAppendTime) {
        timestampProblem = true;
        problem = logAppendTimeProblem(i, batchMaxTimestamp, keyLength, valueLength);
      }
      if (problem !== null) {
        errorCount++;
        if (timestampProblem) timestampErrors++;
        recordErrors ??= [];
        if (recordErrors.length < MAX_RECORD_ERRORS) recordErrors.push({ batchIndex: i, message: problem });
      }
    }
  } catch (err) {
    if (!(err instanceof MalformedRecord)) throw err;
    return reject('INVALID_RECORD', `record ${i} of ${count} is malformed: ${err.message}`);
  }
  if (at !== end) {
    return reject('INVALID_RECORD', `record batch declares ${count} records but ${end - at} bytes follow the last one`);
  }
  if (recordErrors !== null) {
    // Kafka's RecordValidationException: INVALID_TIMESTAMP if any record's timestamp failed,
    // otherwise INVALID_RECORD naming the total and showing the first three errors.
    const message =
      timestampErrors > 0
        ? 'One or more records have been rejected due to invalid timestamp'
        : `One or more records have been rejected due to ${errorCount} record errors in total, and only showing the first three errors at most: [` +
          recordErrors
            .slice(0, 3)
            .map((e) => `RecordError(batchIndex=${e.batchIndex}, message='${e.message}')`)
            .join(', ') +
          ']';
    return { rejection: { errorName: timestampErrors > 0 ? 'INVALID_TIMESTAMP' : 'INVALID_RECORD', message, recordErrors }, maxTimestamp: -1 };
  }
  return { rejection: null, maxTimestamp: createTime ? maxTimestamp : -1 };
}

/**
 * Decompresses the records of the compressed produced batch `view` and walks them like
 * {@link validateRecords}. The output is bounded by `policy.maxDecompressedBytes`, and a
 * `recordCount` whose records could not fit that bound is refused before anything is
 * decompressed. Over the bound: MESSAGE_TOO_LARGE (Kafka has no such limit; its producer splits
 * a batch refused with that error). Data the codec cannot decode: INVALID_RECORD (Kafka answers
 * UNKNOWN_SERVER_ERROR there, from an uncaught decompression exception).
 */
export async function validateCompressedRecords(view: RecordBatchView, policy: RecordPolicy, partition: number): Promise<RecordsVerdict> {
  const limit = policy.maxDecompressedBytes;
  const codec = compressionName[view.compression];
  if (view.recordCount * MIN_RECORD_SIZE > limit) {
    return reject(
      'MESSAGE_TOO_LARGE',
      `${codec} record batch declares ${view.recordCount} records, at least ${view.recordCount * MIN_RECORD_SIZE} bytes ` +
        `uncompressed, over the broker's ${limit}-byte limit for validating records; send smaller batches`,
    );
  }
  let region: Buffer;
  try {
    region = await decompress(view.compression, view.payload, limit);
  } catch (err) {
    if (err instanceof DecompressionLimitError) {
      return reject(
        'MESSAGE_TOO_LARGE',
        `${codec} record batch expands past the broker's ${limit}-byte limit for validating records; send smaller batches`,
      );
    }
    if (err instanceof WireError) return reject('INVALID_RECORD', `record batch payload cannot be decompressed: ${err.message}`);
    throw err;
  }
  return validateRecords(view, region, policy, partition);
}
