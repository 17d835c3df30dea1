import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { EncodeError, WireError } from '../../../wire/runtime/errors.js';
import {
  BATCH_HEADER_SIZE,
  BatchAttribute,
  BatchField,
  Compression,
  compressionName,
  compressSync,
  CRC_START,
  decodeBatch,
  decodeBatchSync,
  encodeBatch,
  encodeBatchSync,
  RecordBatchView,
  TimestampType,
  type CompressionCodec,
  type RecordInput,
} from '../../../wire/records/index.js';
import { asyncWireErrorOf, fixture, flipped, wireErrorOf } from '../../helpers/records.js';

const ALL_CODECS: CompressionCodec[] = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD];
const SYNC_CODECS: CompressionCodec[] = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4];

const T0 = 1_700_000_000_000;
const inputs: RecordInput[] = [
  { key: Buffer.from('k0'), value: Buffer.from('v0'), timestamp: T0, headers: [{ key: 'h', value: Buffer.from('x') }] },
  { key: null, value: Buffer.from('no key'), timestamp: T0 + 10 },
  { key: Buffer.from('tomb'), value: null, timestamp: T0 - 5_000, headers: [{ key: 'null-value', value: null }] },
  { key: Buffer.alloc(0), value: Buffer.alloc(0), timestamp: T0 + 3 },
  {
    key: Buffer.from([0x00, 0xff, 0x80]),
    value: Buffer.alloc(40_000, 'z'),
    timestamp: T0 + 20,
    headers: [
      { key: 'dup', value: Buffer.from('1') },
      { key: 'dup', value: Buffer.from('2') },
      { key: 'ключ', value: Buffer.from('значение') },
    ],
  },
];

/** What decoding `inputs` at `baseOffset` must give, with bytes as hex for exact comparison. */
function expectedRecords(baseOffset: number): unknown[] {
  return inputs.map((r, i) => ({
    attributes: 0,
    offsetDelta: i,
    offset: baseOffset + i,
    timestampDelta: r.timestamp! - T0,
    timestamp: r.timestamp,
    key: r.key == null ? null : r.key.toString('hex'),
    value: r.value == null ? null : r.value.toString('hex'),
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString('hex') })),
  }));
}

function hexRecords(records: Awaited<ReturnType<typeof decodeBatch>>['records']): unknown[] {
  return records.map((r) => ({
    ...r,
    key: r.key === null ? null : r.key.toString('hex'),
    value: r.value === null ? null : r.value.toString('hex'),
    headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString('hex') })),
  }));
}

/** Copy of `batch` with `edit` applied to a copy, length and CRC fixed up so only the edit matters. */
function withPayload(batch: Buffer, payload: Buffer): Buffer {
  const out = Buffer.concat([batch.subarray(0, BATCH_HEADER_SIZE), payload]);
  out.writeInt32BE(out.length - 12, BatchField.batchLength);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)) >>> 0, BatchField.crc);
  return out;
}

describe('encodeBatch / decodeBatch round trip', () => {
  for (const codec of ALL_CODECS) {
    it(`${compressionName[codec]}: keeps keys, values, headers, offsets and timestamps`, async () => {
      const bytes = await encodeBatch(inputs, {
        compression: codec,
        baseOffset: 1_000,
        producerId: 12,
        producerEpoch: 3,
        baseSequence: 40,
        partitionLeaderEpoch: 6,
      });
      const batch = await decodeBatch(bytes);
      const { records, ...header } = batch;
      expect(header).toEqual({
        baseOffset: 1_000,
        batchLength: bytes.length - 12,
        partitionLeaderEpoch: 6,
        magic: 2,
        crc: bytes.readUInt32BE(BatchField.crc),
        attributes: codec,
        compression: codec,
        timestampType: TimestampType.CREATE_TIME,
        isTransactional: false,
        isControl: false,
        hasDeleteHorizon: false,
        lastOffsetDelta: 4,
        baseTimestamp: T0,
        maxTimestamp: T0 + 20,
        producerId: 12,
        producerEpoch: 3,
        baseSequence: 40,
        recordCount: 5,
      });
      expect(hexRecords(records)).toEqual(expectedRecords(1_000));
      if (codec !== Compression.NONE) expect(bytes.length).toBeLessThan(40_000);
    });
  }

  for (const codec of SYNC_CODECS) {
    it(`${compressionName[codec]}: the sync paths agree with the async ones`, async () => {
      const bytes = encodeBatchSync(inputs, { compression: codec });
      expect(hexRecords(decodeBatchSync(bytes).records)).toEqual(expectedRecords(0));
      expect(hexRecords((await decodeBatch(bytes)).records)).toEqual(expectedRecords(0));
    });
  }

  it('writes xerial-framed snappy when asked, and reads it back', async () => {
    const bytes = encodeBatchSync(inputs, { compression: Compression.SNAPPY, compressOptions: { snappyXerial: true } });
    expect(bytes.subarray(BATCH_HEADER_SIZE, BATCH_HEADER_SIZE + 8)).toEqual(Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]));
    expect(hexRecords((await decodeBatch(bytes)).records)).toEqual(expectedRecords(0));
  });

  it('refuses zstd on the sync paths with a TypeError, not a WireError', async () => {
    expect(() => encodeBatchSync(inputs, { compression: Compression.ZSTD })).toThrow(TypeError);
    const zstd = await encodeBatch(inputs, { compression: Compression.ZSTD });
    expect(() => decodeBatchSync(zstd)).toThrow(TypeError);
  });

  it('encodes null key and value as varint -1 and an empty one as 0', () => {
    const bytes = encodeBatchSync([{ key: null, value: null, timestamp: 5 }, { key: Buffer.alloc(0), value: Buffer.alloc(0), timestamp: 5 }]);
    // Each record: length 6, attributes 0, timestampDelta 0, offsetDelta (0, then 1 as
    // zigzag 02), key and value (-1 as zigzag 01, or empty as 00), 0 headers.
    expect(bytes.subarray(BATCH_HEADER_SIZE).toString('hex')).toBe('0c0000000101000c000002000000');
    const [a, b] = decodeBatchSync(bytes).records;
    expect([a!.key, a!.value]).toEqual([null, null]);
    expect([b!.key, b!.value]).toEqual([Buffer.alloc(0), Buffer.alloc(0)]);
  });

  it('keeps negative timestamp deltas', () => {
    const bytes = encodeBatchSync([
      { value: Buffer.from('a'), timestamp: 10_000 },
      { value: Buffer.from('b'), timestamp: 1 },
      { value: Buffer.from('c'), timestamp: -1 },
    ]);
    const batch = decodeBatchSync(bytes);
    expect([batch.baseTimestamp, batch.maxTimestamp]).toEqual([10_000, 10_000]);
    expect(batch.records.map((r) => [r.timestampDelta, r.timestamp])).toEqual([
      [0, 10_000],
      [-9_999, 1],
      [-10_001, -1],
    ]);
  });

  it('gives every record the batch maxTimestamp under LogAppendTime', () => {
    const bytes = encodeBatchSync(inputs, { timestampType: TimestampType.LOG_APPEND_TIME, maxTimestamp: T0 + 99_999 });
    const batch = decodeBatchSync(bytes);
    expect(batch.timestampType).toBe(TimestampType.LOG_APPEND_TIME);
    expect(batch.records.map((r) => r.timestamp)).toEqual([T0 + 99_999, T0 + 99_999, T0 + 99_999, T0 + 99_999, T0 + 99_999]);
    expect(batch.records.map((r) => r.timestampDelta)).toEqual([0, 10, -5_000, 3, 20]);
  });

  it('also decodes after the broker switches a batch to LogAppendTime', () => {
    const bytes = encodeBatchSync(inputs);
    new RecordBatchView(bytes).setMaxTimestamp(TimestampType.LOG_APPEND_TIME, 42);
    expect(decodeBatchSync(bytes).records.map((r) => r.timestamp)).toEqual([42, 42, 42, 42, 42]);
  });

  it('keeps offset gaps and the offset range of a compacted batch', () => {
    const bytes = encodeBatchSync(
      [
        { key: Buffer.from('a'), value: Buffer.from('1'), offsetDelta: 2, timestamp: 7 },
        { key: Buffer.from('b'), value: Buffer.from('2'), offsetDelta: 5, timestamp: 8 },
      ],
      { baseOffset: 100, lastOffsetDelta: 9 },
    );
    const batch = decodeBatchSync(bytes);
    expect([batch.lastOffsetDelta, batch.recordCount]).toEqual([9, 2]);
    expect(batch.records.map((r) => [r.offsetDelta, r.offset])).toEqual([
      [2, 102],
      [5, 105],
    ]);
  });

  it('encodes an empty batch that keeps its offset range', () => {
    const bytes = encodeBatchSync([], { lastOffsetDelta: 3, producerId: 9, producerEpoch: 1, baseSequence: 0 });
    const batch = decodeBatchSync(bytes);
    expect([batch.recordCount, batch.lastOffsetDelta, batch.records, batch.baseTimestamp, batch.maxTimestamp]).toEqual([0, 3, [], -1, -1]);
    expect(bytes.length).toBe(BATCH_HEADER_SIZE);
  });

  it('stores a delete horizon in baseTimestamp with timestamps relative to it', () => {
    const bytes = encodeBatchSync([{ key: Buffer.from('k'), value: null, timestamp: 5_000 }], { deleteHorizonMs: 9_000 });
    const view = new RecordBatchView(bytes);
    expect([view.hasDeleteHorizon, view.deleteHorizonMs, view.attributes]).toEqual([true, 9_000, BatchAttribute.DELETE_HORIZON]);
    const [record] = decodeBatchSync(bytes).records;
    expect([record!.timestampDelta, record!.timestamp]).toEqual([-4_000, 5_000]);
  });

  it('sets the transactional and control bits', () => {
    const bytes = encodeBatchSync([{ value: Buffer.from('x'), timestamp: 1 }], { isTransactional: true, isControl: true, producerId: 1, producerEpoch: 0 });
    const batch = decodeBatchSync(bytes);
    expect([batch.attributes, batch.isTransactional, batch.isControl]).toEqual([0x30, true, true]);
  });

  it('returns record bytes as views of an uncompressed batch', () => {
    const bytes = encodeBatchSync([{ key: Buffer.from('key'), value: Buffer.from('value'), timestamp: 1 }]);
    const [record] = decodeBatchSync(bytes).records;
    expect(record!.value!.buffer).toBe(bytes.buffer);
  });

  it('rejects records that cannot form a batch with EncodeError', () => {
    expect(() => encodeBatchSync([])).toThrow(EncodeError);
    expect(() => encodeBatchSync([{ offsetDelta: 3 }, { offsetDelta: 3 }])).toThrow(EncodeError);
    expect(() => encodeBatchSync([{ offsetDelta: -1 }])).toThrow(EncodeError);
    expect(() => encodeBatchSync([{ offsetDelta: 4 }], { lastOffsetDelta: 2 })).toThrow(EncodeError);
    expect(() => encodeBatchSync([{ timestamp: 2 ** 60 }])).toThrow(EncodeError);
  });
});

describe('decodeBatch on bad input', () => {
  it('rejects a bad CRC unless told not to check', async () => {
    const bytes = encodeBatchSync(inputs);
    const bad = flipped(bytes, bytes.length - 1);
    const view = new RecordBatchView(bad);
    expect((await asyncWireErrorOf(() => decodeBatch(bad))).message).toBe(
      `record batch CRC is 0x${view.crc.toString(16)} but its bytes hash to 0x${view.computeCrc().toString(16)}`,
    );
    expect(decodeBatchSync(bad, { verifyCrc: false }).records).toHaveLength(5);
  });

  it('rejects bytes left after the declared records', () => {
    const bytes = encodeBatchSync(inputs);
    const bad = withPayload(bytes, Buffer.concat([bytes.subarray(BATCH_HEADER_SIZE), Buffer.from([0])]));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('record batch declares 5 records but 1 bytes follow the last one');
  });

  it('rejects a record whose fields end before its declared length', () => {
    // length 7 but the fields take 6: attributes, ts, offset, key -1, value -1, 0 headers, + 1 spare
    const bad = withPayload(encodeBatchSync([{ timestamp: 0 }]), Buffer.from('0e000000010100ff', 'hex'));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('record 0 declares 7 bytes but its fields end 1 bytes early');
  });

  it('rejects a record length past the end of the region', () => {
    const bad = withPayload(encodeBatchSync([{ timestamp: 0 }]), Buffer.from('1400000001010000', 'hex'));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('truncated record 0 of 10 bytes: need 10 bytes at offset 1, 7 left');
  });

  it('rejects a negative record length', () => {
    const bad = withPayload(encodeBatchSync([{ timestamp: 0 }]), Buffer.from('01', 'hex'));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('record 0 has negative length -1');
  });

  it('rejects a hostile header count before looping over it', () => {
    // length 10: attributes, ts 0, offset 0, key -1, value -1, header count 2^31-1 (5 bytes)
    const bad = withPayload(encodeBatchSync([{ timestamp: 0 }]), Buffer.from('140000000101feffffff0f', 'hex'));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('record 0 declares 2147483647 headers in 0 bytes');
  });

  it('rejects a null header key', () => {
    const bad = withPayload(encodeBatchSync([{ timestamp: 0 }]), Buffer.from('100000000101020101', 'hex'));
    expect(wireErrorOf(() => decodeBatchSync(bad)).message).toBe('record 0 header 0 has a null or negative key length -1');
  });

  it('rejects a truncated compressed payload for every codec with WireError', async () => {
    for (const codec of ALL_CODECS) {
      const bytes = await encodeBatch(inputs, { compression: codec });
      const payload = bytes.subarray(BATCH_HEADER_SIZE);
      for (const n of [0, 1, 5, Math.floor(payload.length / 2), payload.length - 1]) {
        await asyncWireErrorOf(() => decodeBatch(withPayload(bytes, payload.subarray(0, n))));
      }
    }
  });

  it('throws WireError, and only WireError, for every truncation of real batches', async () => {
    for (const name of ['librdkafka-none', 'librdkafka-snappy', 'librdkafka-zstd', 'kafkajs-gzip']) {
      const { bytes } = fixture(name);
      for (let n = 0; n < bytes.length; n++) {
        const cut = bytes.subarray(0, n);
        await asyncWireErrorOf(() => decodeBatch(cut));
        // The same truncation with batchLength and CRC made consistent reaches the records.
        if (n >= BATCH_HEADER_SIZE) await asyncWireErrorOf(() => decodeBatch(withPayload(bytes, bytes.subarray(BATCH_HEADER_SIZE, n))));
      }
    }
  });

  it('never throws anything but WireError on corrupted records (CRC fixed up)', async () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (const name of ['librdkafka-none', 'librdkafka-gzip', 'librdkafka-snappy', 'librdkafka-lz4', 'librdkafka-zstd']) {
      const { bytes } = fixture(name);
      for (let i = 0; i < 150; i++) {
        const payload = Buffer.from(bytes.subarray(BATCH_HEADER_SIZE));
        for (let k = 0; k <= random(3); k++) payload[random(payload.length)] = random(256);
        try {
          await decodeBatch(withPayload(bytes, payload));
        } catch (err) {
          expect([name, i, err instanceof WireError ? 'WireError' : String(err)]).toEqual([name, i, 'WireError']);
        }
      }
    }
  });

  it('applies the decompression limit to the records region', async () => {
    const big = encodeBatchSync([{ value: Buffer.alloc(200_000), timestamp: 0 }], { compression: Compression.GZIP });
    expect((await asyncWireErrorOf(() => decodeBatch(big, { maxDecompressedBytes: 100_000 }))).message).toBe(
      'gzip data decodes to more than the 100000-byte decompression limit',
    );
    expect((await decodeBatch(big, { maxDecompressedBytes: 300_000 })).records[0]!.value!.length).toBe(200_000);
    const plain = encodeBatchSync([{ value: Buffer.alloc(200_000), timestamp: 0 }]);
    await asyncWireErrorOf(() => decodeBatch(plain, { maxDecompressedBytes: 100_000 }));
  });

  it('rejects a batch whose codec bits name an unknown codec', () => {
    const bytes = encodeBatchSync(inputs);
    bytes.writeInt16BE(7, BatchField.attributes);
    expect(wireErrorOf(() => decodeBatchSync(bytes)).message).toBe('record batch at offset 0 names unknown compression codec 7 (Kafka knows 0-4)');
  });

  it('reads a region compressed by hand exactly like one the encoder compressed', () => {
    const plain = encodeBatchSync(inputs);
    const region = plain.subarray(BATCH_HEADER_SIZE);
    const bytes = withPayload(plain, compressSync(Compression.LZ4, Buffer.from(region)));
    bytes.writeInt16BE(Compression.LZ4, BatchField.attributes);
    bytes.writeUInt32BE(crc32c(bytes.subarray(CRC_START)) >>> 0, BatchField.crc);
    expect(hexRecords(decodeBatchSync(bytes).records)).toEqual(expectedRecords(0));
  });
});
