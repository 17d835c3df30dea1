/**
 * RecordBatch v2 support: a zero-copy header view for the produce and fetch paths, a full
 * record codec for tests and compaction, record-level validation of produced batches,
 * transaction control records, and bounded compression codecs. Sans-I/O like the rest of
 * `wire/`.
 */
export {
  BATCH_HEADER_SIZE,
  BATCH_LENGTH_OVERHEAD,
  BatchAttribute,
  BatchField,
  checkProducedBatch,
  Compression,
  CRC_START,
  CURRENT_MAGIC,
  MIN_BATCH_LENGTH,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  RecordBatchView,
  splitBatches,
  TimestampType,
  type BatchRejection,
  type CompressionCodec,
  type RecordError,
  type SplitBatchesOptions,
  type TimestampTypeValue,
} from './batch-header.js';
export {
  compress,
  compressionName,
  compressSync,
  decompress,
  decompressSync,
  DecompressionLimitError,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  isXerialSnappy,
  type CompressOptions,
} from './compression.js';
export {
  decodeBatch,
  decodeBatchSync,
  encodeBatch,
  encodeBatchSync,
  type DecodeBatchOptions,
  type DecodedBatch,
  type EncodeBatchOptions,
  type KafkaRecord,
  type RecordHeader,
  type RecordInput,
} from './record.js';
export {
  MAX_RECORD_ERRORS,
  MIN_RECORD_SIZE,
  validateCompressedRecords,
  validateRecords,
  type RecordPolicy,
  type RecordsVerdict,
} from './validate.js';
export {
  ControlRecordType,
  decodeControlBatch,
  decodeControlKey,
  decodeEndTxnMarkerValue,
  encodeControlBatch,
  encodeControlKey,
  encodeEndTxnMarkerValue,
  type ControlBatchOptions,
  type ControlRecordTypeValue,
  type EndTxnMarker,
} from './control.js';
