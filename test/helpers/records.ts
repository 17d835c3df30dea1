import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from '@node-rs/crc32';
import { expect } from 'vitest';
import { BATCH_HEADER_SIZE, BatchField, compress, Compression, compressionName, CRC_START, type CompressionCodec } from '../../wire/records/index.js';
import { WireError } from '../../wire/runtime/errors.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'records');

/** The expectation file written beside each captured batch (see the fixtures README). */
export interface FixtureExpectation {
  source: string;
  timestampsBetween?: [number, number];
  batch: Record<string, number | string | boolean>;
  records: Array<{
    offset: number;
    timestamp?: number;
    key: string | null;
    value: string | null;
    headers: Array<{ key: string; value: string | null }>;
  }>;
}

/** Loads `<name>.bin` and `<name>.json` from test/fixtures/records. */
export function fixture(name: string): { bytes: Buffer; expected: FixtureExpectation } {
  return {
    bytes: readFileSync(join(fixtures, `${name}.bin`)),
    expected: JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')) as FixtureExpectation,
  };
}

/** Every captured batch, by file name. */
export const FIXTURES = [
  'kafkajs-none',
  'kafkajs-gzip',
  'librdkafka-none',
  'librdkafka-gzip',
  'librdkafka-snappy',
  'librdkafka-lz4',
  'librdkafka-zstd',
  'kcat-snappy',
] as const;

/** Runs `fn` and returns the WireError it throws; fails the test on success or any other error. */
export function wireErrorOf(fn: () => unknown): WireError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WireError);
  return thrown as WireError;
}

/** Async form of {@link wireErrorOf}. */
export async function asyncWireErrorOf(fn: () => Promise<unknown>): Promise<WireError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WireError);
  return thrown as WireError;
}

/** A copy of `buf` with byte `at` XOR-ed with `mask`. */
export function flipped(buf: Buffer, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(buf);
  out[at]! ^= mask;
  return out;
}

/** Zigzag varint bytes of `n` (any safe integer: varint and varlong share the encoding). */
export function zigzag(n: number): number[] {
  let u = n >= 0 ? BigInt(n) * 2n : -BigInt(n) * 2n - 1n;
  const out: number[] = [];
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
  return out;
}

/** One record on the wire, built by hand: its length varint, then `body` (bytes as given). */
export function rawRecord(...body: (number[] | Buffer)[]): Buffer {
  const b = Buffer.concat(body.map((p) => Buffer.from(p)));
  return Buffer.concat([Buffer.from(zigzag(b.length)), b]);
}

/** A well-formed record body: attributes 0, the two deltas, key and value (null as -1), no headers. */
export function recordBody(timestampDelta: number, offsetDelta: number, key: string | null, value: string | null): number[] {
  const bytes = (s: string | null): number[] => (s === null ? zigzag(-1) : [...zigzag(Buffer.byteLength(s)), ...Buffer.from(s)]);
  return [0, ...zigzag(timestampDelta), ...zigzag(offsetDelta), ...bytes(key), ...bytes(value), ...zigzag(0)];
}

/** Header fields {@link lyingBatch} can rewrite. */
export interface HeaderLies {
  recordCount?: number;
  lastOffsetDelta?: number;
  attributes?: number;
  maxTimestamp?: number;
}

/**
 * `batch` with its records region replaced by `region` and the given header fields rewritten;
 * batchLength and CRC are recomputed, so only a walk of the records can tell it is lying.
 */
export function lyingBatch(batch: Buffer, region: Buffer, header: HeaderLies = {}): Buffer {
  const out = Buffer.concat([batch.subarray(0, BATCH_HEADER_SIZE), region]);
  out.writeInt32BE(out.length - 12, BatchField.batchLength);
  if (header.recordCount !== undefined) out.writeInt32BE(header.recordCount, BatchField.recordCount);
  if (header.lastOffsetDelta !== undefined) out.writeInt32BE(header.lastOffsetDelta, BatchField.lastOffsetDelta);
  if (header.attributes !== undefined) out.writeInt16BE(header.attributes, BatchField.attributes);
  if (header.maxTimestamp !== undefined) out.writeBigInt64BE(BigInt(header.maxTimestamp), BatchField.maxTimestamp);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)) >>> 0, BatchField.crc);
  return out;
}

/** A batch claiming `count` records (count and lastOffsetDelta agree) over a hand-made region. */
export function claimingBatch(template: Buffer, count: number, region: Buffer, codec: CompressionCodec = Compression.NONE): Buffer {
  return lyingBatch(template, region, { recordCount: count, lastOffsetDelta: count - 1, attributes: codec });
}

/** One lying batch of issue 14's acceptance list and the INVALID_RECORD message it earns. */
export interface LyingBatchCase {
  name: string;
  bytes: Buffer;
  message: string;
}

/**
 * The lying batches of issue 14's acceptance list, each built over `template`'s header with a
 * valid CRC: a count too high, too low and 2^31 - 1, garbage records, a bad varint, and for
 * each codec a payload that decompresses to garbage, plus one that does not decompress.
 */
export async function lyingBatchCases(template: Buffer): Promise<LyingBatchCase[]> {
  const one = rawRecord(recordBody(0, 0, 'k', 'v'));
  const three = Buffer.concat([one, rawRecord(recordBody(0, 1, 'k', 'v')), rawRecord(recordBody(0, 2, 'k', 'v'))]);
  const garbage = Buffer.from('decompresses fine, but these bytes are no records'.repeat(4), 'utf8');
  const cases: LyingBatchCase[] = [
    {
      name: 'count too high (says 5, holds 1)',
      bytes: claimingBatch(template, 5, rawRecord(recordBody(0, 0, 'k', 'v'.repeat(100)))),
      message: 'record batch declares 5 records but its records region ends after 1',
    },
    { name: 'count too low (says 1, holds 3)', bytes: claimingBatch(template, 1, three), message: 'record batch declares 1 records but 18 bytes follow the last one' },
    {
      name: 'count 2^31 - 1 holding 1',
      bytes: claimingBatch(template, 2 ** 31 - 1, one),
      message: 'record batch declares 2147483647 records but its 9-byte records region holds at most 1',
    },
    {
      name: 'garbage records behind a valid CRC',
      bytes: claimingBatch(template, 1, Buffer.from('this is not a record at all, just text')),
      message: 'record 0 of 1 is malformed: its length 58 does not fit the 37 bytes left in the records region',
    },
    {
      name: 'a bad varint (6-byte offset delta)',
      bytes: claimingBatch(template, 1, rawRecord([0, 0], [0x80, 0x80, 0x80, 0x80, 0x80, 0x00], zigzag(-1), zigzag(-1), zigzag(0))),
      message: 'record 0 of 1 is malformed: its offset delta varint is longer than 5 bytes',
    },
  ];
  for (const codec of [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD] as const) {
    cases.push({
      name: `a ${compressionName[codec]} payload that decompresses to garbage`,
      bytes: claimingBatch(template, 1, await compress(codec, garbage), codec),
      // "d" is length 50, "e" the attributes, "c" timestamp delta -50, "o" offset delta -56.
      message: 'record 0 of 1 is malformed: its offset delta is -56; record 0 of a produced batch must use 0',
    });
  }
  cases.push({
    name: 'a gzip payload that does not decompress',
    bytes: claimingBatch(template, 1, Buffer.from('not gzip at all'), Compression.GZIP),
    message: 'record batch payload cannot be decompressed: gzip data is corrupt: incorrect header check',
  });
  return cases;
}
