/**
 * confluent-kafka-python (Debian's python3-confluent-kafka, librdkafka 2.0.2) against Strata,
 * on the file store and on S3 (s3rver): a producer under every `compression.type` with
 * explicit partitions, keys (some null), headers (some with null values) and explicit
 * timestamps, plain and idempotent; and a group-less consumer reading with assign, seek and offsets_for_times.
 * The driver is test/helpers/clients/rdkafka_client.py; it prints one JSON result.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compression, type CompressionCodec } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { readAll, type ReadRecord } from '../helpers/read-all.js';
import { STORAGES, expectExactlyOnce, librdkafkaStoredCodec, readBatches, runClient, uniqueTopic, type ExpectedRecord } from '../helpers/compat.js';
import { createTopic } from '../helpers/topics.js';

/** Debian's interpreter: the one with confluent_kafka (the pyenv `python3` on PATH has none). */
const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'rdkafka_client.py');
const PARTITIONS = 3;
const BASE_TIMESTAMP = 1_700_000_000_000;
/** librdkafka's RD_KAFKA_TIMESTAMP_CREATE_TIME. */
const TIMESTAMP_CREATE_TIME = 1;

async function python<T>(command: 'produce' | 'consume', args: Record<string, unknown>): Promise<T> {
  const env = { ...process.env };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  const { stdout } = await runClient(PYTHON, [DRIVER, command, JSON.stringify(args)], { env, timeoutMs: 45_000 });
  return JSON.parse(stdout) as T;
}

/**
 * `count` records round-robin over the partitions, timestamps 10 ms apart; every seventh has
 * a null key and, with `nullHeaders`, every fifth a header with a null value. Values are long
 * and repetitive, so that every codec shrinks the batch (librdkafka sends a batch
 * uncompressed otherwise).
 */
function records(tag: string, count: number, nullHeaders: boolean): ExpectedRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const headers: [string, string | null][] = [['idx', String(i)], ['tag', tag]];
    if (nullHeaders && i % 5 === 0) headers.push(['nullable', null]);
    return {
      partition: i % PARTITIONS,
      key: i % 7 === 0 ? null : `key-${i}`,
      value: `${tag}-value-${i}-${'python '.repeat(8).trim()}`,
      headers,
      timestamp: BASE_TIMESTAMP + i * 10,
    };
  });
}

interface Delivered {
  partition: number;
  offset: number;
  value: string;
}

interface Consumed extends ReadRecord {
  timestampType: number;
}

const CODECS: [string, CompressionCodec][] = [
  ['none', Compression.NONE],
  ['gzip', Compression.GZIP],
  ['snappy', Compression.SNAPPY],
  ['lz4', Compression.LZ4],
  ['zstd', Compression.ZSTD],
];

const position = (r: { partition: number; offset: number }): string => `${r.partition}@${r.offset}`;

describe.each(STORAGES)('confluent-kafka-python, %s store', (storage) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ storage });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  async function produced(topic: string, compression: string, expected: ExpectedRecord[], idempotent = false): Promise<ReadRecord[]> {
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const { delivered } = await python<{ delivered: Delivered[] }>('produce', { bootstrap: cluster.bootstrap, topic, compression, idempotent, records: expected });
    const read = await readAll(cluster.bootstrap, topic);
    expectExactlyOnce(read, expected);
    // Each delivery report names the partition and offset the record was stored at.
    const stored = new Map(read.map((r) => [r.value, position(r)]));
    expect(delivered.map((d) => [d.value, position(d)]).sort()).toEqual(expected.map((e) => [e.value, stored.get(e.value)]).sort());
    return read;
  }

  it.each(CODECS)('compression.type=%s: delivered records are stored exactly, with the codec', async (codec, storedCodec) => {
    const topic = uniqueTopic(`py-${codec}-${storage}`);
    await produced(topic, codec, records(topic, 45, true));
    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    const sent = await librdkafkaStoredCodec(cluster.bootstrap, storedCodec);
    expect(batches.length).toBeGreaterThanOrEqual(PARTITIONS);
    expect(batches.filter((b) => b.compression !== sent)).toEqual([]);
  });

  it('enable.idempotence=true: one producer id, gapless sequences per partition', async () => {
    const topic = uniqueTopic(`py-idempotent-${storage}`);
    await produced(topic, 'gzip', records(topic, 45, true), true);
    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    expect(new Set(batches.map((b) => b.producerId)).size).toBe(1);
    expect(batches[0]!.producerId).toBeGreaterThanOrEqual(0);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let next = 0;
      for (const b of batches.filter((x) => x.partition === partition)) {
        expect([b.baseSequence, b.baseOffset]).toEqual([next, next]);
        next += b.recordCount;
      }
    }
  });

  it('consumer with assign, seek, offsets_for_times and watermarks reads back the exact records', async () => {
    const topic = uniqueTopic(`py-consume-${storage}`);
    // No null header values here: confluent-kafka-python 1.7.0 (Debian's) drops a reference to
    // None for each one Message.headers() returns and soon aborts the interpreter ("Fatal
    // Python error: none_dealloc"), confluentinc/confluent-kafka-python#1191, fixed in 1.8.2.
    const read = await produced(topic, 'zstd', records(topic, 30, false));
    const inPartition = (p: number, from: number): ReadRecord[] => read.filter((r) => r.partition === p && r.offset >= from);
    const firstAtOrAfter = (p: number, ts: number): number => read.find((r) => r.partition === p && r.timestamp >= ts)?.offset ?? -1;

    const p1 = read.filter((r) => r.partition === 1);
    const seek = { partition: 2, offset: 4, count: inPartition(2, 4).length };
    const times = [
      { partition: 1, timestamp: p1[3]!.timestamp - 1 },
      { partition: 0, timestamp: BASE_TIMESTAMP - 1 },
      { partition: 2, timestamp: read.at(-1)!.timestamp + 1_000_000 },
    ];
    const fromTimeCount = inPartition(1, firstAtOrAfter(1, times[0]!.timestamp)).length;
    const result = await python<{ everything: Consumed[]; afterSeek: Consumed[]; times: { partition: number; offset: number }[]; fromTime: Consumed[]; watermarks: [number, number][] }>('consume', {
      bootstrap: cluster.bootstrap,
      topic,
      groupId: `${topic}-unused-group`,
      partitions: [0, 1, 2],
      expect: read.length,
      seek,
      times,
      fromTimeCount,
    });

    const asRead = (c: Consumed): ReadRecord => {
      expect(c.timestampType).toBe(TIMESTAMP_CREATE_TIME);
      return { partition: c.partition, offset: c.offset, key: c.key, value: c.value, headers: c.headers, timestamp: c.timestamp };
    };
    // Partitions interleave; within each the consumer must see offset order.
    for (let p = 0; p < PARTITIONS; p++) {
      expect(result.everything.filter((c) => c.partition === p).map((c) => c.offset)).toEqual(read.filter((r) => r.partition === p).map((r) => r.offset));
    }
    const byPosition = (a: ReadRecord, b: ReadRecord): number => a.partition - b.partition || a.offset - b.offset;
    expect(result.everything.map(asRead).sort(byPosition)).toEqual(read);
    expect(result.afterSeek.map(asRead)).toEqual(inPartition(seek.partition, seek.offset));
    expect(result.times).toEqual(times.map((q) => ({ partition: q.partition, offset: firstAtOrAfter(q.partition, q.timestamp) })));
    expect(result.times.map((t) => t.offset)).toEqual([3, 0, -1]);
    expect(result.fromTime.map(asRead)).toEqual(inPartition(1, 3));
    // Low and high watermarks (ListOffsets earliest and latest) of each partition.
    expect(result.watermarks).toEqual([0, 1, 2].map((p) => [0, read.filter((r) => r.partition === p).length]));
  });
});
