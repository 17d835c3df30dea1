/**
 * kcat (librdkafka 2.0.2) against Strata, on the file store and on S3 (s3rver): metadata
 * listing, producing keyed records with headers to explicit partitions under every
 * compression codec, consuming them back as a simple (group-less) consumer, looking
 * offsets up by timestamp and from the end, a consumer long-polling at the end of a
 * partition, and resetting an out-of-range offset. Every kcat run has librdkafka timeouts of
 * a few seconds and a hard process deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compression, type CompressionCodec } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { readAll, type ReadRecord } from '../helpers/read-all.js';
import { STORAGES, expectExactlyOnce, librdkafkaStoredCodec, readBatches, runClient, uniqueTopic, type ExpectedRecord } from '../helpers/compat.js';
import { createTopic } from '../helpers/topics.js';

const PARTITIONS = 3;
const PER_PARTITION = 20;

/** librdkafka settings that turn a broker problem into a quick failure instead of a hang. */
const FAIL_FAST = [
  '-m', '5',
  '-X', 'broker.address.family=v4',
  '-X', 'socket.timeout.ms=5000',
  '-X', 'socket.connection.setup.timeout.ms=5000',
  '-X', 'api.version.request.timeout.ms=5000',
  '-X', 'reconnect.backoff.max.ms=500',
];

/** Runs kcat to completion and resolves with its stdout. */
async function kcat(bootstrap: string, args: string[], input?: string, timeoutMs = 30_000): Promise<string> {
  return (await runClient('kcat', ['-b', bootstrap, ...FAIL_FAST, ...args], { input, timeoutMs })).stdout;
}

const CODECS: [string, CompressionCodec][] = [
  ['none', Compression.NONE],
  ['gzip', Compression.GZIP],
  ['snappy', Compression.SNAPPY],
  ['lz4', Compression.LZ4],
  ['zstd', Compression.ZSTD],
];

/** The consume format: tab-separated partition, offset, key, value, headers (n=v CSV), timestamp. */
const FORMAT = '%p\\t%o\\t%k\\t%s\\t%h\\t%T\\n';

function formatted(r: ReadRecord): string {
  return [r.partition, r.offset, r.key, r.value, r.headers.map(([k, v]) => `${k}=${v}`).join(','), r.timestamp].join('\t');
}

describe.each(STORAGES)('kcat, %s store', (storage) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ storage });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('kcat -L lists the topic with its partitions, each led by the broker', async () => {
    const topic = uniqueTopic(`kcat-list-${storage}`);
    await createTopic(cluster.bootstrap, topic, 5);
    const listed = JSON.parse(await kcat(cluster.bootstrap, ['-L', '-J', '-t', topic])) as {
      brokers: { id: number; name: string }[];
      topics: { topic: string; error?: string; partitions: { partition: number; leader: number; replicas: { id: number }[]; isrs: { id: number }[] }[] }[];
    };
    expect(listed.brokers).toEqual([{ id: expect.any(Number), name: cluster.bootstrap }]);
    const brokerId = listed.brokers[0]!.id;
    expect(listed.topics).toEqual([
      {
        topic,
        partitions: [0, 1, 2, 3, 4].map((partition) => ({ partition, leader: brokerId, replicas: [{ id: brokerId }], isrs: [{ id: brokerId }] })),
      },
    ]);
    // The all-topics listing (Metadata with a null topic list) names it too.
    const all = await kcat(cluster.bootstrap, ['-L']);
    expect(all).toContain(`topic "${topic}" with 5 partitions:`);
  });

  it.each(CODECS)('-z %s: produced records are stored with the codec and consumed back exactly', async (codec, storedCodec) => {
    const topic = uniqueTopic(`kcat-${codec}-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);

    const expected: ExpectedRecord[] = [];
    const window = new Map<number, [number, number]>();
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const lines: string[] = [];
      for (let i = 0; i < PER_PARTITION; i++) {
        const key = `key-${partition}-${i}`;
        // Long and repetitive, so that every codec shrinks the batch (librdkafka sends a batch
        // uncompressed when compressing would not make it smaller).
        const value = `${topic}-p${partition}-value-${i}-${'kcat '.repeat(10).trim()}`;
        lines.push(`${key}:${value}`);
        expected.push({ partition, key, value, headers: [['source', 'kcat'], ['codec', codec]], timestamp: 0 });
      }
      const before = Date.now();
      // One linger window for all of stdin: one batch per partition.
      await kcat(
        cluster.bootstrap,
        ['-P', '-t', topic, '-p', String(partition), '-K', ':', '-H', 'source=kcat', '-H', `codec=${codec}`, '-z', codec, '-X', 'acks=all', '-X', 'linger.ms=200', '-X', 'message.timeout.ms=15000', '-X', 'request.timeout.ms=5000'],
        lines.join('\n') + '\n',
      );
      window.set(partition, [before, Date.now()]);
    }

    const read = await readAll(cluster.bootstrap, topic);
    // librdkafka stamps CreateTime itself; each record's must fall within its kcat run.
    for (const r of read) {
      const [from, to] = window.get(r.partition)!;
      expect(r.timestamp).toBeGreaterThanOrEqual(from);
      expect(r.timestamp).toBeLessThanOrEqual(to);
    }
    const stamps = new Map(read.map((r) => [r.value, r.timestamp]));
    expectExactlyOnce(read, expected.map((e) => ({ ...e, timestamp: stamps.get(e.value) ?? -1 })));

    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    const sent = await librdkafkaStoredCodec(cluster.bootstrap, storedCodec);
    expect(batches.map((b) => [b.partition, b.baseOffset, b.recordCount, b.compression])).toEqual(
      [0, 1, 2].map((partition) => [partition, 0, PER_PARTITION, sent]),
    );

    const consumed = await kcat(cluster.bootstrap, ['-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', FORMAT, '-X', 'fetch.wait.max.ms=100', '-X', 'check.crcs=true']);
    const lines = consumed.split('\n').filter((l) => l !== '');
    // kcat interleaves partitions; within each its output must follow offset order.
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const offsets = lines.filter((l) => l.startsWith(`${partition}\t`)).map((l) => Number(l.split('\t')[1]));
      expect(offsets).toEqual(Array.from({ length: PER_PARTITION }, (_, i) => i));
    }
    const byPosition = (a: string, b: string): number => {
      const [pa, oa] = a.split('\t').map(Number);
      const [pb, ob] = b.split('\t').map(Number);
      return pa! - pb! || oa! - ob!;
    };
    expect([...lines].sort(byPosition)).toEqual(read.map(formatted));
  });

  it('kcat -Q, -o s@ and -o -N find offsets by timestamp and from the end', async () => {
    const topic = uniqueTopic(`kcat-times-${storage}`);
    await createTopic(cluster.bootstrap, topic, 1);
    // Three runs a few milliseconds apart: three distinct timestamps, one per batch.
    for (const run of ['a', 'b', 'c']) {
      await kcat(cluster.bootstrap, ['-P', '-t', topic, '-p', '0', '-K', ':', '-X', 'linger.ms=50'], `${run}1:${run}-one\n${run}2:${run}-two\n`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const read = await readAll(cluster.bootstrap, topic);
    expect(read.map((r) => r.value)).toEqual(['a-one', 'a-two', 'b-one', 'b-two', 'c-one', 'c-two']);
    const firstAtOrAfter = (ts: number): number => read.find((r) => r.timestamp >= ts)?.offset ?? -1;

    const queries = [read[0]!.timestamp - 1, read[2]!.timestamp, read[3]!.timestamp + 1, read[5]!.timestamp, read[5]!.timestamp + 1];
    for (const ts of queries) {
      const out = await kcat(cluster.bootstrap, ['-Q', '-t', `${topic}:0:${ts}`]);
      expect(out.trim()).toBe(`${topic} [0] offset ${firstAtOrAfter(ts)}`);
    }

    const from = read[2]!.timestamp;
    const consumed = await kcat(cluster.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', `s@${from}`, '-e', '-q', '-f', '%o:%k:%s\\n', '-X', 'fetch.wait.max.ms=100']);
    expect(consumed).toBe(read.filter((r) => r.timestamp >= from).map((r) => `${r.offset}:${r.key}:${r.value}\n`).join(''));

    const lastTwo = await kcat(cluster.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', '-2', '-e', '-q', '-f', '%o:%k:%s\\n', '-X', 'fetch.wait.max.ms=100']);
    expect(lastTwo).toBe('4:c1:c-one\n5:c2:c-two\n');
  });

  it('Fetch error partitions carry empty records, not null: librdkafka resets an out-of-range offset', async () => {
    // librdkafka rejects a partition whose records field is null (length -1, or compact 0 from
    // v12) as "invalid MessageSetSize -1", never sees the partition's error code, and refetches
    // the same offset in a tight loop. Kafka answers an errored partition with empty records.
    const topic = uniqueTopic(`kcat-out-of-range-${storage}`);
    await createTopic(cluster.bootstrap, topic, 1);
    await kcat(cluster.bootstrap, ['-P', '-t', topic, '-p', '0'], 'a\nb\nc\n');
    const consumed = await kcat(
      cluster.bootstrap,
      ['-C', '-t', topic, '-p', '0', '-o', '100', '-e', '-q', '-f', '%o:%s\\n', '-X', 'auto.offset.reset=earliest', '-X', 'fetch.wait.max.ms=100'],
      undefined,
      10_000,
    );
    expect(consumed).toBe('0:a\n1:b\n2:c\n');
  });

  it('a consumer waiting at the end gets new records before its fetch wait runs out', async () => {
    const topic = uniqueTopic(`kcat-tail-${storage}`);
    await createTopic(cluster.bootstrap, topic, 1);
    // Offset 0 of the empty partition, not "end": no race with the consumer's start-up.
    const tail = kcat(cluster.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', '0', '-c', '3', '-q', '-f', '%o:%s\\n', '-X', 'fetch.wait.max.ms=8000', '-X', 'socket.timeout.ms=15000', '-X', 'check.crcs=true']);
    await new Promise((r) => setTimeout(r, 1000));
    await kcat(cluster.bootstrap, ['-P', '-t', topic, '-p', '0', '-X', 'linger.ms=0'], 'one\ntwo\nthree\n');
    const produced = Date.now();
    expect(await tail).toBe('0:one\n1:two\n2:three\n');
    // A broker that only answered at the end of the wait would take about 8 s.
    expect(Date.now() - produced).toBeLessThan(3000);
  });
});
