import { describe, expect, it } from 'vitest';
import {
  BatchAttribute,
  checkProducedBatch,
  compress,
  Compression,
  compressionName,
  encodeBatch,
  encodeBatchSync,
  MAX_RECORD_ERRORS,
  RecordBatchView,
  TimestampType,
  validateCompressedRecords,
  validateRecords,
  type CompressionCodec,
  type RecordInput,
  type RecordPolicy,
  type RecordsVerdict,
} from '../../../wire/records/index.js';
import { FIXTURES, fixture, lyingBatch, rawRecord, recordBody, zigzag as zz } from '../../helpers/records.js';

const ALL_CODECS: CompressionCodec[] = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD];
const NOW = 1_700_000_000_000;
const LONG_MAX = 9223372036854775807n;

function policy(overrides: Partial<RecordPolicy> = {}): RecordPolicy {
  return {
    timestampType: TimestampType.CREATE_TIME,
    timestampBeforeMaxMs: LONG_MAX,
    timestampAfterMaxMs: 3_600_000n,
    nowMs: NOW,
    compacted: false,
    maxDecompressedBytes: 64 * 1024 * 1024,
    topic: 'orders',
    ...overrides,
  };
}

const goodInputs: RecordInput[] = [
  { key: Buffer.from('k0'), value: Buffer.from('v0'), timestamp: NOW - 5, headers: [{ key: 'h', value: Buffer.from('x') }] },
  { key: Buffer.alloc(0), value: null, timestamp: NOW + 7, headers: [{ key: 'null-value', value: null }] },
  { key: Buffer.from('k2'), value: Buffer.alloc(3_000, 'z'), timestamp: NOW },
];

/** A batch whose header claims `count` records (count and lastOffsetDelta agree) over `region`. */
function claiming(count: number, region: Buffer, codec: CompressionCodec = Compression.NONE): Buffer {
  return lyingBatch(encodeBatchSync([{ value: Buffer.from('x'), timestamp: NOW }]), region, { recordCount: count, lastOffsetDelta: count - 1, attributes: codec });
}

/** Validates an uncompressed batch after the header checks it must also pass. */
function verdict(bytes: Buffer, p: RecordPolicy = policy()): RecordsVerdict {
  const view = new RecordBatchView(bytes);
  expect(checkProducedBatch(view)).toBeNull();
  return validateRecords(view, view.payload, p, 3);
}

async function compressedVerdict(bytes: Buffer, p: RecordPolicy = policy()): Promise<RecordsVerdict> {
  const view = new RecordBatchView(bytes);
  expect(checkProducedBatch(view)).toBeNull();
  return validateCompressedRecords(view, p, 3);
}

function invalid(message: string): RecordsVerdict {
  return { rejection: { errorName: 'INVALID_RECORD', message }, maxTimestamp: -1 };
}

const ONE = rawRecord(recordBody(0, 0, 'k', 'v'));

describe('validateRecords: what clients send', () => {
  for (const codec of ALL_CODECS) {
    it(`${compressionName[codec]}: accepts a good batch and reports its largest timestamp`, async () => {
      const bytes = await encodeBatch(goodInputs, { compression: codec, producerId: 7, producerEpoch: 0, baseSequence: 0 });
      const before = Buffer.from(bytes);
      const result = codec === Compression.NONE ? verdict(bytes) : await compressedVerdict(bytes);
      expect(result).toEqual({ rejection: null, maxTimestamp: NOW + 7 });
      // Validation only reads: the stored bytes are the producer's.
      expect(bytes.equals(before)).toBe(true);
    });
  }

  for (const name of FIXTURES) {
    it(`accepts the batch ${name} captured from a real client, with the maxTimestamp the client wrote`, async () => {
      const { bytes } = fixture(name);
      const view = new RecordBatchView(bytes);
      // The captures are from 2023; a LogAppendTime one (none so far) would need another policy.
      const p = policy({ nowMs: view.maxTimestamp });
      const result = view.compression === Compression.NONE ? validateRecords(view, view.payload, p, 0) : await validateCompressedRecords(view, p, 0);
      expect(result).toEqual({ rejection: null, maxTimestamp: view.maxTimestamp });
    });
  }

  it('accepts xerial-framed snappy, as Java clients write it', async () => {
    const bytes = await encodeBatch(goodInputs, { compression: Compression.SNAPPY, compressOptions: { snappyXerial: true } });
    expect(await compressedVerdict(bytes)).toEqual({ rejection: null, maxTimestamp: NOW + 7 });
  });

  it('accepts records without timestamps (-1) whatever the bounds, and reports -1', () => {
    const bytes = encodeBatchSync([{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
    expect(verdict(bytes, policy({ timestampBeforeMaxMs: 0n, timestampAfterMaxMs: 0n }))).toEqual({ rejection: null, maxTimestamp: -1 });
  });

  it('ignores record timestamps on a LogAppendTime topic', () => {
    const bytes = encodeBatchSync([{ value: Buffer.from('far future'), timestamp: NOW + 10 * 365 * 86_400_000 }]);
    expect(verdict(bytes, policy({ timestampType: TimestampType.LOG_APPEND_TIME }))).toEqual({ rejection: null, maxTimestamp: -1 });
  });

  it('accepts 5-byte varints and 10-byte varlongs, as Java does', () => {
    // offset delta 0 written in 5 bytes, timestamp delta 0 in 10.
    const region = rawRecord([0], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], [0x80, 0x80, 0x80, 0x80, 0x00], zz(-1), zz(-1), zz(0));
    expect(verdict(claiming(1, region))).toEqual({ rejection: null, maxTimestamp: NOW });
  });
});

describe('validateRecords: a header that lies about its records', () => {
  it('refuses a count too high (says 5, holds 1)', () => {
    const big = rawRecord(recordBody(0, 0, 'k', 'v'.repeat(100)));
    expect(verdict(claiming(5, big))).toEqual(invalid('record batch declares 5 records but its records region ends after 1'));
  });

  it('refuses a count the bytes cannot hold before walking (says 5, holds 9 bytes)', () => {
    expect(verdict(claiming(5, ONE))).toEqual(invalid('record batch declares 5 records but its 9-byte records region holds at most 1'));
  });

  it('refuses a count of 2^31 - 1 holding one record', () => {
    expect(verdict(claiming(2 ** 31 - 1, ONE))).toEqual(invalid('record batch declares 2147483647 records but its 9-byte records region holds at most 1'));
  });

  it('refuses a count too low (says 1, holds 3)', () => {
    const three = Buffer.concat([ONE, rawRecord(recordBody(0, 1, 'k', 'v')), rawRecord(recordBody(0, 2, 'k', 'v'))]);
    expect(verdict(claiming(1, three))).toEqual(invalid('record batch declares 1 records but 18 bytes follow the last one'));
  });

  it('refuses offset deltas that are not 0, 1, 2, ...', () => {
    const gap = Buffer.concat([ONE, rawRecord(recordBody(0, 2, 'k', 'v'))]);
    expect(verdict(claiming(2, gap))).toEqual(invalid('record 1 of 2 is malformed: its offset delta is 2; record 1 of a produced batch must use 1'));
    const repeated = Buffer.concat([ONE, ONE]);
    expect(verdict(claiming(2, repeated))).toEqual(invalid('record 1 of 2 is malformed: its offset delta is 0; record 1 of a produced batch must use 1'));
  });
});

describe('validateRecords: malformed records behind a valid CRC', () => {
  const cases: [string, Buffer, string][] = [
    ['garbage bytes', Buffer.from('this is not a record at all, just text', 'utf8'), 'record 0 of 1 is malformed: its length 58 does not fit the 37 bytes left in the records region'],
    ['a length varint over 5 bytes', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0]), 'record 0 of 1 is malformed: its length varint is longer than 5 bytes'],
    ['a negative length', Buffer.from([...zz(-3), 0, 0, 0, 1, 1, 0, 0]), 'record 0 of 1 is malformed: its length -3 does not fit the 7 bytes left in the records region'],
    ['a zero length', Buffer.from([0, 0, 0, 0, 1, 1, 0, 0]), 'record 0 of 1 is malformed: its attributes runs past the end of the record'],
    ['an offset delta varint over 5 bytes', rawRecord([0, 0], [0x80, 0x80, 0x80, 0x80, 0x80, 0x00], zz(-1), zz(-1), zz(0)), 'record 0 of 1 is malformed: its offset delta varint is longer than 5 bytes'],
    [
      'a timestamp delta varlong over 10 bytes',
      rawRecord([0], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], [0], zz(-1), zz(-1), zz(0)),
      'record 0 of 1 is malformed: its timestamp delta varlong is longer than 10 bytes',
    ],
    // Padded so that the region can hold one record; the walk stops inside it.
    ['a varint running past its record', Buffer.concat([rawRecord([0, 0, 0], [0x80]), Buffer.alloc(3)]), 'record 0 of 1 is malformed: its key length runs past the end of the record'],
    ['a key longer than its record', rawRecord([0, 0, 0], zz(50), Buffer.from('short'), zz(-1), zz(0)), 'record 0 of 1 is malformed: its key length 50 exceeds the 7 bytes left in the record'],
    ['a key length of -2', rawRecord([0, 0, 0], zz(-2), zz(-1), zz(0)), 'record 0 of 1 is malformed: its key length is -2'],
    ['a value length of -7', rawRecord([0, 0, 0], zz(-1), zz(-7), zz(0)), 'record 0 of 1 is malformed: its value length is -7'],
    ['a negative header count', rawRecord([0, 0, 0], zz(-1), zz(-1), zz(-1)), 'record 0 of 1 is malformed: it declares -1 headers in the 0 bytes left'],
    ['a header count of 2^31 - 1', rawRecord([0, 0, 0], zz(-1), zz(-1), zz(2 ** 31 - 1)), 'record 0 of 1 is malformed: it declares 2147483647 headers in the 0 bytes left'],
    ['a null header key', rawRecord([0, 0, 0], zz(-1), zz(-1), zz(1), zz(-1), zz(-1)), 'record 0 of 1 is malformed: its header key length is -1'],
    ['a header value past its record', rawRecord([0, 0, 0], zz(-1), zz(-1), zz(1), zz(1), Buffer.from('h'), zz(9)), 'record 0 of 1 is malformed: its header value length 9 exceeds the 0 bytes left in the record'],
    ['fields that end before the record does', rawRecord([0, 0, 0], zz(-1), zz(-1), zz(0), [0xaa, 0xbb]), 'record 0 of 1 is malformed: it declares 8 bytes but its fields end 2 bytes early'],
    ['a length that swallows the next record', Buffer.concat([rawRecord([0, 0, 0], zz(-1), zz(-1), zz(0), ONE)]), 'record 0 of 1 is malformed: it declares 15 bytes but its fields end 9 bytes early'],
  ];
  for (const [name, region, message] of cases) {
    it(`refuses ${name}`, () => {
      expect(verdict(claiming(1, region))).toEqual(invalid(message));
    });
  }

  it('names the record that is malformed', () => {
    const bad = rawRecord([0, 0], zz(1), zz(-2), zz(-1), zz(0));
    expect(verdict(claiming(2, Buffer.concat([ONE, bad])))).toEqual(invalid('record 1 of 2 is malformed: its key length is -2'));
  });
});

describe('validateRecords: timestamps (KIP-937)', () => {
  it('refuses a CreateTime timestamp past the after bound with INVALID_TIMESTAMP and a record error', () => {
    const bytes = encodeBatchSync([
      { value: Buffer.from('ok'), timestamp: NOW + 3_600_000 },
      { value: Buffer.from('late'), timestamp: NOW + 3_600_001 },
    ]);
    expect(verdict(bytes)).toEqual({
      rejection: {
        errorName: 'INVALID_TIMESTAMP',
        message: 'One or more records have been rejected due to invalid timestamp',
        recordErrors: [
          {
            batchIndex: 1,
            message: `Timestamp ${NOW + 3_600_001} of message with offset 1 is out of range. The timestamp should be within [${BigInt(NOW) - LONG_MAX}, ${NOW + 3_600_000}]`,
          },
        ],
      },
      maxTimestamp: -1,
    });
  });

  it('refuses a timestamp before the before bound, printing the bounds as Java longs', () => {
    const bytes = encodeBatchSync([{ value: Buffer.from('old'), timestamp: NOW - 1_001 }]);
    const result = verdict(bytes, policy({ timestampBeforeMaxMs: 1_000n, timestampAfterMaxMs: LONG_MAX }));
    expect(result.rejection?.recordErrors).toEqual([
      {
        batchIndex: 0,
        // NOW + Long.MAX_VALUE wraps in Java's arithmetic, and Kafka prints what it computed.
        message: `Timestamp ${NOW - 1_001} of message with offset 0 is out of range. The timestamp should be within [${NOW - 1_000}, ${BigInt.asIntN(64, BigInt(NOW) + LONG_MAX)}]`,
      },
    ]);
    expect(result.rejection?.errorName).toBe('INVALID_TIMESTAMP');
  });

  it('refuses a timestamp outside ±2^53 that the bounds allow', () => {
    const bytes = lyingBatch(encodeBatchSync([{ value: Buffer.from('x'), timestamp: NOW }]), rawRecord([0], zz(2 ** 53), [0], zz(-1), zz(-1), zz(0)), {
      maxTimestamp: NOW,
    });
    const result = verdict(bytes, policy({ timestampAfterMaxMs: LONG_MAX }));
    expect(result.rejection).toEqual({
      errorName: 'INVALID_TIMESTAMP',
      message: 'One or more records have been rejected due to invalid timestamp',
      recordErrors: [{ batchIndex: 0, message: `Timestamp ${NOW + 2 ** 53} of message with offset 0 is outside ±2^53 ms, which Strata cannot store` }],
    });
  });

  it('refuses the LogAppendTime bit from a producer on a LogAppendTime topic', () => {
    const bytes = encodeBatchSync([{ key: Buffer.from('k'), value: Buffer.from('vv'), timestamp: NOW }], { timestampType: TimestampType.LOG_APPEND_TIME, maxTimestamp: NOW });
    expect(verdict(bytes, policy({ timestampType: TimestampType.LOG_APPEND_TIME })).rejection).toEqual({
      errorName: 'INVALID_TIMESTAMP',
      message: 'One or more records have been rejected due to invalid timestamp',
      recordErrors: [
        {
          batchIndex: 0,
          message: `Invalid timestamp type in message DefaultRecord(offset=0, timestamp=${NOW}, key=1 bytes, value=2 bytes). Producer should not set timestamp type to LogAppendTime.`,
        },
      ],
    });
  });

  it('on a CreateTime topic, takes the LogAppendTime bit with a time as that time, and refuses it without one', () => {
    const stamped = encodeBatchSync([{ value: Buffer.from('a'), timestamp: NOW - 50 }], { timestampType: TimestampType.LOG_APPEND_TIME, maxTimestamp: NOW - 10 });
    expect(verdict(stamped)).toEqual({ rejection: null, maxTimestamp: NOW - 10 });
    const unstamped = encodeBatchSync([{ value: Buffer.from('a'), timestamp: NOW - 50 }], { timestampType: TimestampType.LOG_APPEND_TIME, maxTimestamp: -1 });
    expect(verdict(unstamped).rejection?.recordErrors).toEqual([
      {
        batchIndex: 0,
        message: 'Invalid timestamp type in message DefaultRecord(offset=0, timestamp=-1, key=0 bytes, value=1 bytes). Producer should not set timestamp type to LogAppendTime.',
      },
    ]);
  });

  it('reports the largest record timestamp whatever the header says', () => {
    const bytes = encodeBatchSync(goodInputs, { maxTimestamp: NOW - 100_000 });
    expect(verdict(bytes)).toEqual({ rejection: null, maxTimestamp: NOW + 7 });
  });
});

describe('validateRecords: keys on compacted topics', () => {
  it('refuses keyless records with INVALID_RECORD, one record error each, and Kafka\'s partition message', () => {
    const bytes = encodeBatchSync([
      { key: Buffer.from('a'), value: Buffer.from('1'), timestamp: NOW },
      { key: null, value: Buffer.from('2'), timestamp: NOW },
      { key: Buffer.alloc(0), value: Buffer.from('empty key is a key'), timestamp: NOW },
      // The key is checked before the timestamp, so this record reports only its key.
      { key: null, value: Buffer.from('4'), timestamp: NOW + 7_200_000 },
    ]);
    const keyError = 'Compacted topic cannot accept message without key in topic partition orders-3';
    expect(verdict(bytes, policy({ compacted: true }))).toEqual({
      rejection: {
        errorName: 'INVALID_RECORD',
        message:
          'One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: ' +
          `[RecordError(batchIndex=1, message='${keyError}'), RecordError(batchIndex=3, message='${keyError}')]`,
        recordErrors: [
          { batchIndex: 1, message: keyError },
          { batchIndex: 3, message: keyError },
        ],
      },
      maxTimestamp: -1,
    });
  });

  it('answers INVALID_TIMESTAMP when any record has a bad timestamp, listing every record error', () => {
    const bytes = encodeBatchSync([
      { key: null, value: Buffer.from('1'), timestamp: NOW },
      { key: Buffer.from('k'), value: Buffer.from('2'), timestamp: NOW + 7_200_000 },
    ]);
    const result = verdict(bytes, policy({ compacted: true }));
    expect(result.rejection?.errorName).toBe('INVALID_TIMESTAMP');
    expect(result.rejection?.recordErrors?.map((e) => e.batchIndex)).toEqual([0, 1]);
  });

  it(`lists at most ${MAX_RECORD_ERRORS} record errors and counts them all`, () => {
    const bytes = encodeBatchSync(Array.from({ length: 1_500 }, () => ({ key: null, value: null, timestamp: NOW })));
    const result = verdict(bytes, policy({ compacted: true }));
    expect(result.rejection?.recordErrors).toHaveLength(MAX_RECORD_ERRORS);
    expect(result.rejection?.recordErrors?.at(-1)?.batchIndex).toBe(MAX_RECORD_ERRORS - 1);
    expect(result.rejection?.message).toMatch(/^One or more records have been rejected due to 1500 record errors in total/);
  });
});

describe('validateCompressedRecords', () => {
  const garbage = Buffer.from('decompresses fine, but these bytes are no records'.repeat(4), 'utf8');

  for (const codec of ALL_CODECS.filter((c) => c !== Compression.NONE)) {
    it(`${compressionName[codec]}: refuses a payload that decompresses to garbage`, async () => {
      const bytes = claiming(1, await compress(codec, garbage), codec);
      // "d" is length 50, "e" the attributes, "c" timestamp delta -50, "o" offset delta -56.
      expect(await compressedVerdict(bytes)).toEqual(invalid('record 0 of 1 is malformed: its offset delta is -56; record 0 of a produced batch must use 0'));
    });

    it(`${compressionName[codec]}: refuses a lying count inside the compressed payload`, async () => {
      const three = Buffer.concat([ONE, rawRecord(recordBody(0, 1, 'k', 'v')), rawRecord(recordBody(0, 2, 'k', 'v'))]);
      expect(await compressedVerdict(claiming(2, await compress(codec, three), codec))).toEqual(
        invalid('record batch declares 2 records but 9 bytes follow the last one'),
      );
    });
  }

  it('refuses a payload the codec cannot decode with INVALID_RECORD', async () => {
    const bytes = claiming(1, Buffer.from('not gzip at all'), Compression.GZIP);
    expect(await compressedVerdict(bytes)).toEqual(invalid('record batch payload cannot be decompressed: gzip data is corrupt: incorrect header check'));
  });

  it('refuses a batch that expands past the limit with MESSAGE_TOO_LARGE', async () => {
    for (const codec of [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD] as const) {
      const bytes = await encodeBatch([{ value: Buffer.alloc(20_000, 'a'), timestamp: NOW }], { compression: codec });
      expect(await compressedVerdict(bytes, policy({ maxDecompressedBytes: 10_000 }))).toEqual({
        rejection: {
          errorName: 'MESSAGE_TOO_LARGE',
          message: `${compressionName[codec]} record batch expands past the broker's 10000-byte limit for validating records; send smaller batches`,
        },
        maxTimestamp: -1,
      });
    }
  });

  it('refuses a count whose records cannot fit the limit before decompressing', async () => {
    const bytes = claiming(2 ** 31 - 1, await compress(Compression.ZSTD, ONE), Compression.ZSTD);
    expect(await compressedVerdict(bytes)).toEqual({
      rejection: {
        errorName: 'MESSAGE_TOO_LARGE',
        message:
          "zstd record batch declares 2147483647 records, at least 15032385529 bytes uncompressed, over the broker's 67108864-byte limit " +
          'for validating records; send smaller batches',
      },
      maxTimestamp: -1,
    });
  });

  it('accepts a transactional compressed batch', async () => {
    const bytes = await encodeBatch(goodInputs, { compression: Compression.LZ4, isTransactional: true, producerId: 1, producerEpoch: 0, baseSequence: 0 });
    expect(new RecordBatchView(bytes).attributes).toBe(BatchAttribute.TRANSACTIONAL | Compression.LZ4);
    expect(await compressedVerdict(bytes)).toEqual({ rejection: null, maxTimestamp: NOW + 7 });
  });
});
