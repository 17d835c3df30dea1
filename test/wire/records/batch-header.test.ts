import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import {
  BATCH_HEADER_SIZE,
  BatchAttribute,
  BatchField,
  checkProducedBatch,
  Compression,
  CRC_START,
  encodeBatchSync,
  MIN_BATCH_LENGTH,
  RecordBatchView,
  splitBatches,
  TimestampType,
} from '../../../wire/records/index.js';
import { fixture, flipped, wireErrorOf } from '../../helpers/records.js';

const sample = (): Buffer =>
  encodeBatchSync(
    [
      { key: Buffer.from('a'), value: Buffer.from('one'), timestamp: 1_000 },
      { key: Buffer.from('b'), value: Buffer.from('two'), timestamp: 1_500 },
      { key: null, value: Buffer.from('three'), timestamp: 1_200 },
    ],
    { producerId: 77, producerEpoch: 4, baseSequence: 10, partitionLeaderEpoch: 9 },
  );

/** Returns a copy of `batch` with `edit` applied and the CRC made valid again. */
function edited(batch: Buffer, edit: (b: Buffer) => void): Buffer {
  const out = Buffer.from(batch);
  edit(out);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)) >>> 0, BatchField.crc);
  return out;
}

describe('RecordBatchView', () => {
  it('reads every header field in place', () => {
    const view = new RecordBatchView(sample());
    expect({
      baseOffset: view.baseOffset,
      baseOffsetBigInt: view.baseOffsetBigInt,
      batchLength: view.batchLength,
      sizeInBytes: view.sizeInBytes,
      partitionLeaderEpoch: view.partitionLeaderEpoch,
      magic: view.magic,
      attributes: view.attributes,
      compression: view.compression,
      lastOffsetDelta: view.lastOffsetDelta,
      baseTimestamp: view.baseTimestamp,
      baseTimestampBigInt: view.baseTimestampBigInt,
      maxTimestamp: view.maxTimestamp,
      maxTimestampBigInt: view.maxTimestampBigInt,
      producerId: view.producerId,
      producerIdBigInt: view.producerIdBigInt,
      producerEpoch: view.producerEpoch,
      baseSequence: view.baseSequence,
      lastSequence: view.lastSequence,
      recordCount: view.recordCount,
      lastOffset: view.lastOffset,
      nextOffset: view.nextOffset,
    }).toEqual({
      baseOffset: 0,
      baseOffsetBigInt: 0n,
      batchLength: view.sizeInBytes - 12,
      sizeInBytes: view.bytes.length,
      partitionLeaderEpoch: 9,
      magic: 2,
      attributes: 0,
      compression: Compression.NONE,
      lastOffsetDelta: 2,
      baseTimestamp: 1_000,
      baseTimestampBigInt: 1_000n,
      maxTimestamp: 1_500,
      maxTimestampBigInt: 1_500n,
      producerId: 77,
      producerIdBigInt: 77n,
      producerEpoch: 4,
      baseSequence: 10,
      lastSequence: 12,
      recordCount: 3,
      lastOffset: 2,
      nextOffset: 3,
    });
    expect(view.payload.length).toBe(view.sizeInBytes - BATCH_HEADER_SIZE);
  });

  it('decodes each attribute bit', () => {
    const withAttributes = (attrs: number): RecordBatchView =>
      new RecordBatchView(edited(sample(), (b) => b.writeInt16BE(attrs, BatchField.attributes)));
    expect(withAttributes(0).compression).toBe(Compression.NONE);
    for (const codec of [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]) {
      expect(withAttributes(codec).compression).toBe(codec);
    }
    const all = withAttributes(
      Compression.LZ4 | BatchAttribute.TIMESTAMP_TYPE | BatchAttribute.TRANSACTIONAL | BatchAttribute.CONTROL | BatchAttribute.DELETE_HORIZON,
    );
    expect([all.compression, all.timestampType, all.isTransactional, all.isControl, all.hasDeleteHorizon, all.deleteHorizonMs]).toEqual([
      Compression.LZ4,
      TimestampType.LOG_APPEND_TIME,
      true,
      true,
      true,
      1_000,
    ]);
    const none = withAttributes(0);
    expect([none.timestampType, none.isTransactional, none.isControl, none.hasDeleteHorizon, none.deleteHorizonMs]).toEqual([
      TimestampType.CREATE_TIME,
      false,
      false,
      false,
      null,
    ]);
  });

  it('wraps lastSequence at 2^31 like Kafka', () => {
    const view = new RecordBatchView(edited(sample(), (b) => b.writeInt32BE(0x7fffffff, BatchField.baseSequence)));
    expect(view.lastSequence).toBe(1);
    const none = new RecordBatchView(edited(sample(), (b) => b.writeInt32BE(-1, BatchField.baseSequence)));
    expect(none.lastSequence).toBe(-1);
  });

  it('rewrites baseOffset and partitionLeaderEpoch without touching the CRC', () => {
    const bytes = sample();
    const view = new RecordBatchView(bytes);
    const crc = view.crc;
    view.setBaseOffset(2 ** 40 + 12345);
    view.setPartitionLeaderEpoch(31);
    expect(view.baseOffset).toBe(2 ** 40 + 12345);
    expect(view.baseOffsetBigInt).toBe(2n ** 40n + 12345n);
    expect(view.lastOffset).toBe(2 ** 40 + 12347);
    expect(view.partitionLeaderEpoch).toBe(31);
    expect(view.crc).toBe(crc);
    expect(view.verifyCrc()).toBe(true);
    expect(bytes.readBigInt64BE(0)).toBe(2n ** 40n + 12345n);
    view.setBaseOffset(Number.MAX_SAFE_INTEGER);
    expect(view.baseOffsetBigInt).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(() => view.setBaseOffset(2 ** 53)).toThrow(RangeError);
  });

  it('sets LogAppendTime and recomputes the CRC', () => {
    const view = new RecordBatchView(sample());
    const before = view.crc;
    view.setMaxTimestamp(TimestampType.LOG_APPEND_TIME, 1_700_000_000_123);
    expect(view.timestampType).toBe(TimestampType.LOG_APPEND_TIME);
    expect(view.attributes).toBe(BatchAttribute.TIMESTAMP_TYPE);
    expect(view.maxTimestamp).toBe(1_700_000_000_123);
    expect(view.baseTimestamp).toBe(1_000);
    expect(view.crc).not.toBe(before);
    expect(view.verifyCrc()).toBe(true);
    view.setMaxTimestamp(TimestampType.CREATE_TIME, 1_500);
    expect(view.attributes).toBe(0);
    expect(view.crc).toBe(before);
  });

  it('verifies the CRC of every captured batch and catches a flip anywhere in the covered region', () => {
    for (const name of ['librdkafka-none', 'librdkafka-zstd', 'kafkajs-gzip']) {
      const { bytes } = fixture(name);
      expect(new RecordBatchView(bytes).verifyCrc()).toBe(true);
      const positions = new Set<number>([CRC_START, CRC_START + 1, bytes.length - 1]);
      for (let at = CRC_START; at < bytes.length; at += 7) positions.add(at);
      for (const at of positions) {
        for (const mask of [0x01, 0x80]) {
          const bad = flipped(bytes, at, mask);
          // Flips in the header may also break its structure; those are caught earlier.
          let view: RecordBatchView;
          try {
            view = new RecordBatchView(bad);
          } catch {
            continue;
          }
          expect([name, at, mask, view.verifyCrc()]).toEqual([name, at, mask, false]);
        }
      }
    }
  });

  it('does not cover baseOffset, batchLength, partitionLeaderEpoch or magic with the CRC', () => {
    const { bytes } = fixture('librdkafka-none');
    for (let at = 0; at < BatchField.magic; at++) {
      const bad = flipped(bytes, at);
      const view = new RecordBatchView(Buffer.from(bytes));
      view.bytes.set(bad.subarray(0, BatchField.magic));
      expect(view.verifyCrc()).toBe(true);
    }
  });

  it('flags a stored CRC that was itself corrupted', () => {
    const { bytes } = fixture('librdkafka-none');
    for (let at = BatchField.crc; at < BatchField.crc + 4; at++) {
      expect(new RecordBatchView(flipped(bytes, at)).verifyCrc()).toBe(false);
    }
  });

  it('requires the buffer to hold exactly one batch', () => {
    const bytes = sample();
    expect(wireErrorOf(() => new RecordBatchView(Buffer.concat([bytes, Buffer.alloc(1)]))).message).toBe(
      `batchLength ${bytes.length - 12} does not match the ${bytes.length + 1}-byte buffer (expected ${bytes.length - 11})`,
    );
  });
});

describe('splitBatches', () => {
  it('returns no views for an empty region', () => {
    expect(splitBatches(Buffer.alloc(0))).toEqual([]);
  });

  it('returns views of the input, not copies', () => {
    const a = sample();
    const region = Buffer.concat([a, a]);
    const [first, second] = splitBatches(region);
    first!.setBaseOffset(5);
    second!.setBaseOffset(8);
    expect(region.readBigInt64BE(0)).toBe(5n);
    expect(region.readBigInt64BE(a.length)).toBe(8n);
  });

  it('names the legacy message format when magic is 0 or 1', () => {
    for (const magic of [0, 1]) {
      const bad = Buffer.from(sample());
      bad.writeInt8(magic, BatchField.magic);
      expect(wireErrorOf(() => splitBatches(bad)).message).toBe(
        `record batch at offset 0 uses message format v${magic}; only RecordBatch v2 (magic 2, Kafka 0.11+) is supported`,
      );
    }
    const legacy = Buffer.alloc(26);
    legacy.writeInt32BE(14, 8);
    legacy.writeInt8(1, BatchField.magic);
    expect(wireErrorOf(() => splitBatches(legacy)).message).toContain('uses message format v1');
  });

  it('rejects an unknown magic', () => {
    const bad = Buffer.from(sample());
    bad.writeInt8(3, BatchField.magic);
    expect(wireErrorOf(() => splitBatches(bad)).message).toBe('record batch at offset 0 has unknown magic 3; expected 2');
  });

  it('rejects a batchLength below the header size', () => {
    const bad = Buffer.from(sample());
    bad.writeInt32BE(MIN_BATCH_LENGTH - 1, BatchField.batchLength);
    expect(wireErrorOf(() => splitBatches(bad)).message).toBe('record batch at offset 0 has batchLength 48, below the minimum 49');
    bad.writeInt32BE(-1, BatchField.batchLength);
    expect(wireErrorOf(() => splitBatches(bad)).message).toBe('record batch at offset 0 has batchLength -1, below the minimum 49');
  });

  it('rejects a batchLength that runs past the region', () => {
    const good = sample();
    const bad = Buffer.from(good);
    bad.writeInt32BE(good.length - 11, BatchField.batchLength);
    expect(wireErrorOf(() => splitBatches(bad)).message).toBe(
      `record batch at offset 0 has batchLength ${good.length - 11} but only ${good.length - 12} bytes follow the length`,
    );
  });

  it('reports the offset of a bad second batch', () => {
    const good = sample();
    const bad = Buffer.from(good);
    bad.writeInt8(0, BatchField.magic);
    expect(wireErrorOf(() => splitBatches(Buffer.concat([good, bad]))).message).toContain(`record batch at offset ${good.length} uses message format v0`);
  });

  it('rejects an unknown compression codec', () => {
    const bad = edited(sample(), (b) => b.writeInt16BE(5, BatchField.attributes));
    expect(wireErrorOf(() => splitBatches(bad)).message).toBe('record batch at offset 0 names unknown compression codec 5 (Kafka knows 0-4)');
  });

  it('accepts fewer records than the offset range (compaction) but never more', () => {
    const compacted = edited(sample(), (b) => b.writeInt32BE(0, BatchField.recordCount));
    expect(splitBatches(compacted)[0]!.recordCount).toBe(0);
    const tooMany = edited(sample(), (b) => b.writeInt32BE(4, BatchField.recordCount));
    expect(wireErrorOf(() => splitBatches(tooMany)).message).toBe(
      'record batch at offset 0 has recordCount 4, outside 0..3 for lastOffsetDelta 2',
    );
    const negative = edited(sample(), (b) => b.writeInt32BE(-1, BatchField.recordCount));
    expect(wireErrorOf(() => splitBatches(negative)).message).toBe(
      'record batch at offset 0 has recordCount -1, outside 0..3 for lastOffsetDelta 2',
    );
    const negativeDelta = edited(sample(), (b) => b.writeInt32BE(-1, BatchField.lastOffsetDelta));
    expect(wireErrorOf(() => splitBatches(negativeDelta)).message).toBe('record batch at offset 0 has negative lastOffsetDelta -1');
  });

  it('rejects int64 fields beyond ±2^53', () => {
    for (const [field, at] of [
      ['baseOffset', BatchField.baseOffset],
      ['baseTimestamp', BatchField.baseTimestamp],
      ['maxTimestamp', BatchField.maxTimestamp],
      ['producerId', BatchField.producerId],
    ] as const) {
      const bad = edited(sample(), (b) => b.writeBigInt64BE(2n ** 53n, at));
      expect(wireErrorOf(() => splitBatches(bad)).message).toBe(`record batch at offset 0 has ${field} 9007199254740992 outside ±2^53`);
    }
    const low = edited(sample(), (b) => b.writeBigInt64BE(-(2n ** 53n) + 1n, BatchField.baseTimestamp));
    expect(splitBatches(low)[0]!.baseTimestamp).toBe(-(2 ** 53) + 1);
  });

  it('throws WireError, and only WireError, for every truncation of a real batch', () => {
    for (const name of ['librdkafka-none', 'librdkafka-lz4', 'kafkajs-gzip']) {
      const { bytes } = fixture(name);
      for (let n = 1; n < bytes.length; n++) wireErrorOf(() => splitBatches(bytes.subarray(0, n)));
    }
  });

  it('drops a partial trailing batch only when asked to', () => {
    const a = sample();
    const region = Buffer.concat([a, a.subarray(0, 40)]);
    wireErrorOf(() => splitBatches(region));
    expect(splitBatches(region, { allowPartialTail: true }).map((v) => v.sizeInBytes)).toEqual([a.length]);
    expect(splitBatches(Buffer.concat([a, a.subarray(0, 5)]), { allowPartialTail: true })).toHaveLength(1);
    // A complete but malformed trailing batch is still an error.
    const bad = Buffer.from(a);
    bad.writeInt8(1, BatchField.magic);
    wireErrorOf(() => splitBatches(Buffer.concat([a, bad]), { allowPartialTail: true }));
  });
});

describe('checkProducedBatch', () => {
  it('accepts a well-formed idempotent batch', () => {
    expect(checkProducedBatch(new RecordBatchView(sample()))).toBeNull();
  });

  it('answers CORRUPT_MESSAGE for a bad CRC', () => {
    const bytes = sample();
    const bad = flipped(bytes, bytes.length - 1);
    const view = new RecordBatchView(bad);
    expect(checkProducedBatch(view)).toEqual({
      errorName: 'CORRUPT_MESSAGE',
      message: `record batch CRC is 0x${view.crc.toString(16)} but its bytes hash to 0x${view.computeCrc().toString(16)}`,
    });
  });

  it('answers INVALID_RECORD for the batch rules Kafka enforces on clients', () => {
    const cases: Array<[string, (b: Buffer) => void, string]> = [
      ['baseOffset', (b) => b.writeBigInt64BE(3n, BatchField.baseOffset), 'record batch baseOffset is 3; a produced batch must use 0'],
      ['empty', (b) => b.writeInt32BE(0, BatchField.recordCount), 'record batch holds no records'],
      ['count', (b) => b.writeInt32BE(2, BatchField.recordCount), 'record batch has 2 records but lastOffsetDelta 2'],
      [
        'control',
        (b) => b.writeInt16BE(BatchAttribute.CONTROL | BatchAttribute.TRANSACTIONAL, BatchField.attributes),
        'clients may not produce control batches',
      ],
      ['sequence', (b) => b.writeInt32BE(-1, BatchField.baseSequence), 'record batch has producerId 77 but baseSequence -1'],
    ];
    for (const [label, edit, message] of cases) {
      expect([label, checkProducedBatch(new RecordBatchView(edited(sample(), edit)))]).toEqual([
        label,
        { errorName: 'INVALID_RECORD', message },
      ]);
    }
  });
});
