/**
 * Real consumers read past refused batches (issue 14, finding 1). Lying batches used to be
 * stored, after which librdkafka and kcat stalled silently at them and kafkajs crashed. Here a
 * raw client sends every lying batch of the acceptance list between good batches (plain and
 * compressed, on two partitions, some in the same request as a good batch); each is refused,
 * and kcat, librdkafka (@confluentinc/kafka-javascript) and kafkajs consumers each read back
 * exactly the good records, at contiguous offsets.
 */
import path from 'node:path';
import kafkajs, { type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { Compression, encodeBatch, type CompressionCodec } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { lyingBatchCases } from '../helpers/records.js';
import { runClient, uniqueTopic } from '../helpers/compat.js';
import { ConsumerProcess } from '../helpers/consumer-groups.js';
import { registerKafkajsCodecs } from '../helpers/kafkajs-codecs.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

registerKafkajsCodecs();

const CFK_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'groups-cfk.mjs');
const PARTITIONS = 2;
const T0 = Date.now() - 60_000;

/** One good record as every consumer must see it. */
interface GoodRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: [string, string][];
  timestamp: number;
}

let cluster: Cluster;
let topic: string;
const expected: GoodRecord[] = [];

/** Sends one produce request (Produce v9) and returns each partition's error code and message. */
async function produce(client: RawClient, parts: { partition: number; records: Buffer }[]): Promise<{ errorCode: number; errorMessage: string | null }[]> {
  const res = await client.send(0, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: parts.map((p) => ({ index: p.partition, records: p.records })) }],
  });
  return res.responses[0]!.partitionResponses.map((p) => ({ errorCode: p.errorCode, errorMessage: p.errorMessage }));
}

/** A good batch of `count` records for `partition`, noted in `expected` at the offsets they will get. */
async function goodBatch(partition: number, tag: string, count: number, codec: CompressionCodec): Promise<Buffer> {
  const next = expected.filter((r) => r.partition === partition).length;
  const records = Array.from({ length: count }, (_, i) => ({
    partition,
    offset: next + i,
    key: `${tag}-key-${i}`,
    value: `${tag}-value-${i}-${'padding '.repeat(8)}`,
    headers: [['tag', tag]] as [string, string][],
    timestamp: T0 + expected.length + i,
  }));
  expected.push(...records);
  return encodeBatch(
    records.map((r) => ({ key: Buffer.from(r.key), value: Buffer.from(r.value), headers: r.headers.map(([k, v]) => ({ key: k, value: Buffer.from(v) })), timestamp: r.timestamp })),
    { compression: codec },
  );
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--group-initial-rebalance-delay-ms', '0'] });
  topic = uniqueTopic('produce-validation');
  await createTopic(cluster.bootstrap, topic, PARTITIONS);
  const client = await RawClient.connect(cluster.bootstrap, 'lying-producer');
  try {
    const ok = { errorCode: ErrorCode.NONE, errorMessage: null };
    expect(await produce(client, [{ partition: 0, records: await goodBatch(0, 'before-plain', 3, Compression.NONE) }])).toEqual([ok]);
    expect(await produce(client, [{ partition: 0, records: await goodBatch(0, 'before-gzip', 4, Compression.GZIP) }])).toEqual([ok]);
    const cases = await lyingBatchCases(await encodeBatch([{ value: Buffer.from('template'), timestamp: T0 }]));
    for (const [i, c] of cases.entries()) {
      // Every other lie shares its request with a good batch for partition 1.
      const parts = [{ partition: 0, records: c.bytes }];
      if (i % 2 === 0) parts.push({ partition: 1, records: await goodBatch(1, `beside-${i}`, 2, i % 4 === 0 ? Compression.NONE : Compression.LZ4) });
      const answers = await produce(client, parts);
      expect([c.name, answers[0]]).toEqual([c.name, { errorCode: ErrorCode.INVALID_RECORD, errorMessage: c.message }]);
      if (i % 2 === 0) expect([c.name, answers[1]]).toEqual([c.name, ok]);
    }
    expect(await produce(client, [{ partition: 0, records: await goodBatch(0, 'after-snappy', 3, Compression.SNAPPY) }])).toEqual([ok]);
    expect(await produce(client, [{ partition: 0, records: await goodBatch(0, 'after-zstd', 2, Compression.ZSTD) }])).toEqual([ok]);
    expect(await produce(client, [{ partition: 0, records: await goodBatch(0, 'after-plain', 2, Compression.NONE) }])).toEqual([ok]);
  } finally {
    client.close();
  }
});

afterAll(async () => {
  await cluster?.stop();
});

/** Records ordered by partition, then offset. */
function ordered<T extends { partition: number; offset: number }>(records: T[]): T[] {
  return [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

describe('consumers read every good record around refused batches', () => {
  it('kcat reads them all and reaches the end of both partitions', async () => {
    const { stdout } = await runClient(
      'kcat',
      ['-b', cluster.bootstrap, '-X', 'broker.address.family=v4', '-X', 'socket.timeout.ms=5000', '-C', '-t', topic, '-o', 'beginning', '-e', '-f', '%p\\t%o\\t%k\\t%s\\t%h\\t%T\\n'],
      { timeoutMs: 30_000 },
    );
    const lines = stdout.split('\n').filter((l) => l !== '');
    const read = lines.map((l) => {
      const [partition, offset, key, value, headers, timestamp] = l.split('\t');
      return { partition: Number(partition), offset: Number(offset), key: key!, value: value!, headers: headers!.split(',').map((h) => h.split('=') as [string, string]), timestamp: Number(timestamp) };
    });
    expect(ordered(read)).toEqual(ordered(expected));
  });

  it('librdkafka (@confluentinc/kafka-javascript) reads them all', async () => {
    const member = new ConsumerProcess('cfk', process.execPath, [CFK_DRIVER, JSON.stringify({ bootstrap: cluster.bootstrap, groupId: `${topic}-cfk`, topic, strategy: 'range', autoCommit: false, deadlineS: 60 })], {
      deadlineS: 60,
    });
    try {
      await waitFor('librdkafka to consume every good record', () => (member.assertRunning(), member.records().length), (n) => n >= expected.length, 45_000);
    } finally {
      await member.stop();
    }
    const read = member.records().map((r) => ({ partition: r.partition, offset: r.offset, key: r.key, value: r.value }));
    expect(ordered(read)).toEqual(ordered(expected).map((r) => ({ partition: r.partition, offset: r.offset, key: r.key, value: r.value })));
  });

  it('kafkajs reads them all', async () => {
    const kafka = new Kafka({ clientId: 'validation-kafkajs', brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
    const consumer: Consumer = kafka.consumer({ groupId: `${topic}-kafkajs`, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    const read: GoodRecord[] = [];
    let failure: unknown = null;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      consumer.on(consumer.events.CRASH, (e) => {
        failure = e.payload.error;
      });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          read.push({
            partition,
            offset: Number(message.offset),
            key: message.key!.toString(),
            value: message.value!.toString(),
            headers: Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
            timestamp: Number(message.timestamp),
          });
        },
      });
      await waitFor('kafkajs to consume every good record', () => (failure === null ? read.length : -1), (n) => n < 0 || n >= expected.length, 45_000);
    } finally {
      await consumer.disconnect();
    }
    expect(failure).toBeNull();
    expect(ordered(read)).toEqual(ordered(expected));
  });
});
