/**
 * Golden tests: request frames captured from real clients (kafkajs, librdkafka through
 * confluent-kafka-python, kcat and @confluentinc/kafka-javascript) against the fake broker of
 * `test/fixtures/capture/`. For every fixture the codec must decode the exact field values the
 * capture gave the client, and re-encoding the decoded request must give back the same bytes.
 * The responses the fake broker sent are decoded and re-encoded too (weaker evidence: they are
 * our own encoder's output, though the clients accepted them).
 *
 * Fixtures and manifests are made by `npm run capture`; see test/fixtures/golden/README.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { decompress as zstdDecompress } from '@mongodb-js/zstd';
import { decompressFrameSync as lz4DecompressFrame } from 'lz4-napi';
import { uncompressSync as snappyUncompress } from 'snappy';
import { describe, expect, it } from 'vitest';
import {
  API_INFO,
  ApiKey,
  concatFrame,
  decodeConsumerProtocolAssignment,
  decodeConsumerProtocolSubscription,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  Reader,
  type ProduceRequest,
  type ResponseBodyByKey,
} from '../../wire/index.js';
import { CODECS, type Codec, type ExpectedBatch, type Manifest, type ManifestEntry } from '../fixtures/capture/manifest.js';

const GOLDEN = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

const manifests: Manifest[] = fs
  .readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(GOLDEN, d.name, 'manifest.json')))
  .map((d) => JSON.parse(fs.readFileSync(path.join(GOLDEN, d.name, 'manifest.json'), 'utf8')) as Manifest)
  .sort((a, b) => a.client.localeCompare(b.client));

function read(client: string, file: string): Buffer {
  return fs.readFileSync(path.join(GOLDEN, client, file));
}

/** Turns the manifest's "123n" strings back into bigints. */
function revive(value: unknown): unknown {
  if (typeof value === 'string' && /^-?\d+n$/.test(value)) return BigInt(value.slice(0, -1));
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  return value;
}

// ---------------------------------------------------------------------------------------
// A RecordBatch v2 reader of its own, so that the expected side does not lean on the codec.

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function unsnappy(data: Buffer): Buffer {
  if (!data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappyUncompress(data) as Buffer;
  const blocks: Buffer[] = [];
  for (let pos = 16; pos < data.length; ) {
    const length = data.readInt32BE(pos);
    blocks.push(snappyUncompress(data.subarray(pos + 4, pos + 4 + length)) as Buffer);
    pos += 4 + length;
  }
  return Buffer.concat(blocks);
}

async function decompress(codec: Codec, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      return zlib.gunzipSync(data);
    case 'snappy':
      return unsnappy(data);
    case 'lz4':
      return lz4DecompressFrame(data);
    case 'zstd':
      return zstdDecompress(data);
  }
}

class VarintCursor {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}

  varint(): number {
    let u = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = this.buf[this.pos++]!;
      u |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
    }
    return Number((u >> 1n) ^ -(u & 1n));
  }

  bytes(): Buffer | null {
    const n = this.varint();
    if (n < 0) return null;
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }
}

interface BatchSummary extends ExpectedBatch {
  magic: number;
  recordCount: number;
  batchBytes: number;
}

/** Reads the one RecordBatch v2 a produced partition carries, decompressing its records. */
async function summarizeBatch(records: Buffer): Promise<BatchSummary> {
  const batchBytes = 12 + records.readInt32BE(8);
  const attributes = records.readInt16BE(21);
  const codec = CODECS[attributes & 0x07]!;
  const recordCount = records.readInt32BE(57);
  const body = await decompress(codec, records.subarray(61, batchBytes));
  const c = new VarintCursor(body);
  const out: { key: string | null; value: string | null }[] = [];
  for (let i = 0; i < recordCount; i++) {
    const length = c.varint();
    const end = c.pos + length;
    c.pos += 1; // attributes
    c.varint(); // timestamp delta
    c.varint(); // offset delta
    const key = c.bytes();
    const value = c.bytes();
    c.pos = end; // headers are not checked
    out.push({ key: key === null ? null : key.toString('utf8'), value: value === null ? null : value.toString('utf8') });
  }
  return {
    magic: records[16]!,
    recordCount,
    batchBytes,
    codec,
    records: out,
    producerId: records.readBigInt64BE(43),
    producerEpoch: records.readInt16BE(51),
    baseSequence: records.readInt32BE(53),
    transactional: (attributes & 0x10) !== 0,
  };
}

/**
 * Replaces, in `actual`, every byte field the expectation marks ($batch, $subscription,
 * $assignment) by its decoded content and sorts every array marked $sorted, and unwraps the
 * markers in `expected`, so that the two can be compared with toMatchObject.
 */
async function resolveMarkers(actual: unknown, expected: unknown): Promise<[unknown, unknown]> {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    const e = expected as Record<string, unknown>;
    if ('$batch' in e && Buffer.isBuffer(actual)) {
      const want = e.$batch as ExpectedBatch;
      const got = await summarizeBatch(actual);
      // The records region is exactly one RecordBatch v2 with the records the client sent.
      return [got, { ...want, magic: 2, recordCount: want.records.length, batchBytes: actual.length }];
    }
    if ('$subscription' in e && Buffer.isBuffer(actual)) {
      return [decodeConsumerProtocolSubscription(new Reader(actual, 2), actual.readInt16BE(0)), e.$subscription];
    }
    if ('$assignment' in e && Buffer.isBuffer(actual)) {
      return [decodeConsumerProtocolAssignment(new Reader(actual, 2), actual.readInt16BE(0)), e.$assignment];
    }
    if ('$sorted' in e && Array.isArray(actual)) {
      const { by, items } = e.$sorted as { by: string | null; items: unknown[] };
      const key = (x: unknown) => Number(by === null ? x : (x as Record<string, unknown>)[by]);
      const byKey = (p: unknown, q: unknown) => key(p) - key(q);
      return resolveMarkers([...actual].sort(byKey), [...items].sort(byKey));
    }
    if (actual === null || typeof actual !== 'object') return [actual, expected];
    const a: Record<string, unknown> = { ...(actual as Record<string, unknown>) };
    const x: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) [a[k], x[k]] = await resolveMarkers(a[k], v);
    return [a, x];
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const a = [...actual];
    const x: unknown[] = [];
    for (let i = 0; i < expected.length; i++) [a[i], x[i]] = await resolveMarkers(a[i], expected[i]);
    return [a, x];
  }
  return [actual, expected];
}

function hasBatchMarker(value: unknown): ExpectedBatch[] {
  if (value === null || typeof value !== 'object') return [];
  if (!Array.isArray(value) && '$batch' in value) return [(value as { $batch: ExpectedBatch }).$batch];
  return Object.values(value).flatMap(hasBatchMarker);
}

// ---------------------------------------------------------------------------------------

describe('golden fixtures exist', () => {
  it('has a manifest for kafkajs and for at least one librdkafka client', () => {
    expect(manifests.map((m) => m.library)).toContain('kafkajs');
    expect(manifests.map((m) => m.library)).toContain('librdkafka');
  });

  /** APIs every library must have sent at least once, at some version. */
  const REQUIRED = [
    ApiKey.ApiVersions,
    ApiKey.Metadata,
    ApiKey.Produce,
    ApiKey.Fetch,
    ApiKey.ListOffsets,
    ApiKey.FindCoordinator,
    ApiKey.JoinGroup,
    ApiKey.SyncGroup,
    ApiKey.Heartbeat,
    ApiKey.OffsetCommit,
    ApiKey.OffsetFetch,
    ApiKey.InitProducerId,
    ApiKey.AddPartitionsToTxn,
    ApiKey.EndTxn,
    ApiKey.CreateTopics,
  ];

  for (const library of ['kafkajs', 'librdkafka'] as const) {
    it(`covers every required API and every compression codec for ${library}`, () => {
      const fixtures = manifests.filter((m) => m.library === library).flatMap((m) => m.fixtures);
      const apis = new Set(fixtures.map((f) => f.apiKey));
      expect(REQUIRED.filter((k) => !apis.has(k)).map((k) => API_INFO[k]!.name)).toEqual([]);
      const codecs = new Set(fixtures.filter((f) => f.apiKey === ApiKey.Produce).flatMap((f) => hasBatchMarker(f.expect).map((b) => b.codec)));
      expect([...codecs].sort()).toEqual([...CODECS].sort());
    });
  }

  for (const m of manifests) {
    it(`${m.client}: every file in the folder is in the manifest, and every manifest file exists`, () => {
      const listed = new Set(m.fixtures.flatMap((f) => (f.response === null ? [f.file] : [f.file, f.response])));
      const present = fs.readdirSync(path.join(GOLDEN, m.client)).filter((f) => f.endsWith('.bin'));
      expect(present.sort()).toEqual([...listed].sort());
    });
  }
});

for (const m of manifests) {
  describe(`golden requests from ${m.client}`, () => {
    it.each(m.fixtures.map((f) => [f.file, f] as [string, ManifestEntry]))('%s', async (_, f) => {
      const frame = read(m.client, f.file);
      const { header, body } = decodeRequest(frame);
      expect({ apiKey: header.apiKey, apiVersion: header.apiVersion, clientId: header.clientId }).toEqual({
        apiKey: f.apiKey,
        apiVersion: f.apiVersion,
        clientId: f.clientId,
      });

      const { $trailing, ...fields } = f.expect as { $trailing?: string };
      const [actual, expected] = await resolveMarkers(body, revive(fields));
      expect(actual).toMatchObject(expected as object);

      // Bytes a client wrote after a complete body: ignored on decode, as Kafka does.
      const trailing = Buffer.from($trailing ?? '', 'hex');
      expect(frame.subarray(frame.length - trailing.length).toString('hex')).toBe(trailing.toString('hex'));
      const reencoded = concatFrame(encodeRequest(header, body));
      expect(reencoded.readInt32BE(0)).toBe(frame.length - trailing.length);
      expect(reencoded.subarray(4).toString('hex')).toBe(frame.subarray(0, frame.length - trailing.length).toString('hex'));
    });

    const produced = m.fixtures.filter((f) => f.apiKey === ApiKey.Produce);
    it.each(produced.map((f) => [f.file, f] as [string, ManifestEntry]))('%s carries one RecordBatch v2 per partition', (_, f) => {
      const { body } = decodeRequest(read(m.client, f.file));
      const batches = hasBatchMarker(f.expect);
      const partitions = (body as ProduceRequest).topicData.flatMap((t) => t.partitionData);
      expect(partitions.length).toBe(batches.length);
      partitions.forEach((p, i) => {
        const records = p.records as Buffer;
        expect(records[16]).toBe(2); // magic
        expect(records.readInt32BE(57)).toBe(batches[i]!.records.length);
      });
    });

    const answered = m.fixtures.filter((f) => f.response !== null);
    it.each(answered.map((f) => [f.response!, f] as [string, ManifestEntry]))('%s decodes and re-encodes', (_, f) => {
      const frame = read(m.client, f.response!);
      const apiKey = f.apiKey as keyof ResponseBodyByKey;
      const { correlationId, body } = decodeResponse(frame, apiKey, f.responseVersion!);
      expect(correlationId).toBe(decodeRequest(read(m.client, f.file)).header.correlationId);
      const reencoded = concatFrame(encodeResponse(apiKey, f.responseVersion!, correlationId, body));
      expect(reencoded.subarray(4).toString('hex')).toBe(frame.toString('hex'));
    });
  });
}
