import { WireError } from '../runtime/errors.js';
import { RecordBatchView } from './batch-header.js';
import { decodeBatchSync, encodeBatchSync, type DecodeBatchOptions } from './record.js';

/**
 * ControlRecordType is the type in a control record's key. Data partitions only ever carry
 * the two transaction markers; KRaft's own log uses higher values, which decode as numbers.
 */
export const ControlRecordType = {
  ABORT: 0,
  COMMIT: 1,
} as const;

/** A value from {@link ControlRecordType}. */
export type ControlRecordTypeValue = (typeof ControlRecordType)[keyof typeof ControlRecordType];

/** The key and value versions Strata writes; readers accept higher ones (see decoders). */
const CONTROL_KEY_VERSION = 0;
const END_TXN_MARKER_VERSION = 0;
const CONTROL_KEY_SIZE = 4;
const END_TXN_MARKER_VALUE_SIZE = 6;

/** Encodes a control record key: int16 version 0, int16 type. */
export function encodeControlKey(type: number): Buffer {
  const key = Buffer.allocUnsafe(CONTROL_KEY_SIZE);
  key.writeInt16BE(CONTROL_KEY_VERSION, 0);
  key.writeInt16BE(type, 2);
  return key;
}

/**
 * Decodes a control record key into its type.
 * Why newer versions are accepted: Kafka reads the type of any key version ≥ 0 so that a
 * later key format (which may append fields) stays readable; only a negative version or a
 * short key is malformed.
 */
export function decodeControlKey(key: Buffer | null): number {
  if (key === null || key.length < CONTROL_KEY_SIZE) {
    throw new WireError(`control record key has ${key === null ? 'no' : key.length} bytes; it needs ${CONTROL_KEY_SIZE}`);
  }
  const version = key.readInt16BE(0);
  if (version < 0) throw new WireError(`control record key version ${version} is negative`);
  return key.readInt16BE(2);
}

/** Encodes an end-transaction marker value: int16 version 0, int32 coordinatorEpoch. */
export function encodeEndTxnMarkerValue(coordinatorEpoch: number): Buffer {
  const value = Buffer.allocUnsafe(END_TXN_MARKER_VALUE_SIZE);
  value.writeInt16BE(END_TXN_MARKER_VERSION, 0);
  value.writeInt32BE(coordinatorEpoch, 2);
  return value;
}

/** Decodes an end-transaction marker value into its coordinator epoch (same leniency as keys). */
export function decodeEndTxnMarkerValue(value: Buffer | null): number {
  if (value === null || value.length < END_TXN_MARKER_VALUE_SIZE) {
    throw new WireError(
      `end transaction marker value has ${value === null ? 'no' : value.length} bytes; it needs ${END_TXN_MARKER_VALUE_SIZE}`,
    );
  }
  const version = value.readInt16BE(0);
  if (version < 0) throw new WireError(`end transaction marker version ${version} is negative`);
  return value.readInt32BE(2);
}

/** Options for {@link encodeControlBatch}. */
export interface ControlBatchOptions {
  type: ControlRecordTypeValue;
  coordinatorEpoch: number;
  producerId: number;
  producerEpoch: number;
  /** The marker's timestamp; it is both baseTimestamp and maxTimestamp. */
  timestamp: number;
  baseOffset?: number;
  partitionLeaderEpoch?: number;
}

/**
 * Encodes a transaction marker batch: control and transactional attribute bits, no
 * sequence, one uncompressed record whose key names COMMIT or ABORT and whose value carries
 * the coordinator epoch. This is what a transaction coordinator writes into each partition
 * on EndTxn.
 */
export function encodeControlBatch(options: ControlBatchOptions): Buffer {
  return encodeBatchSync(
    [{ key: encodeControlKey(options.type), value: encodeEndTxnMarkerValue(options.coordinatorEpoch), timestamp: options.timestamp }],
    {
      baseOffset: options.baseOffset ?? 0,
      partitionLeaderEpoch: options.partitionLeaderEpoch,
      producerId: options.producerId,
      producerEpoch: options.producerEpoch,
      isTransactional: true,
      isControl: true,
    },
  );
}

/** EndTxnMarker is a decoded transaction marker batch. */
export interface EndTxnMarker {
  type: ControlRecordTypeValue;
  coordinatorEpoch: number;
  producerId: number;
  producerEpoch: number;
  baseOffset: number;
  timestamp: number;
}

/**
 * Decodes a transaction marker batch. Like Kafka, only the first record is read; the batch
 * must have the control bit set and at least one record. Markers are written uncompressed,
 * so this is synchronous (a zstd-compressed marker gets the `TypeError` of
 * `decodeBatchSync`).
 * @throws WireError when the batch is malformed or is not a control batch.
 */
export function decodeControlBatch(batch: Buffer | RecordBatchView, options: DecodeBatchOptions = {}): EndTxnMarker {
  const view = batch instanceof RecordBatchView ? batch : new RecordBatchView(batch);
  if (!view.isControl) throw new WireError('record batch is not a control batch (attribute bit 5 is clear)');
  if (view.recordCount < 1) throw new WireError('control batch holds no record');
  const decoded = decodeBatchSync(view, options);
  const record = decoded.records[0]!;
  const type = decodeControlKey(record.key);
  if (type !== ControlRecordType.ABORT && type !== ControlRecordType.COMMIT) {
    throw new WireError(`control record type ${type} is not a transaction marker (0 ABORT, 1 COMMIT)`);
  }
  return {
    type,
    coordinatorEpoch: decodeEndTxnMarkerValue(record.value),
    producerId: decoded.producerId,
    producerEpoch: decoded.producerEpoch,
    baseOffset: decoded.baseOffset,
    timestamp: record.timestamp,
  };
}
