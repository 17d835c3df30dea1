/**
 * kafkajs producer against Strata, on the file store and on S3 (s3rver): every acks mode,
 * every compression codec, explicit and key-based partitioning, headers, explicit
 * timestamps, and the idempotent producer. Each scenario reads the topic back through a real
 * Fetch and checks every record exactly once, intact, in produce order per partition.
 */
import kafkajs, { type Message, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compression, type CompressionCodec } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { readAll } from '../helpers/read-all.js';
import { STORAGES, expectExactlyOnce, readBatches, uniqueTopic, type ExpectedRecord } from '../helpers/compat.js';
import { registerKafkajsCodecs } from '../helpers/kafkajs-codecs.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, CompressionTypes, Partitioners, logLevel } = kafkajs;

registerKafkajsCodecs();

const PARTITIONS = 3;
const BASE_TIMESTAMP = 1_700_000_000_000;

/**
 * `count` messages: even ones name their partition, odd ones only a key (eight distinct keys,
 * so several share a partition); every one has two headers and its own timestamp.
 */
function messages(tag: string, count: number): { messages: Message[]; expected: ExpectedRecord[] } {
  const partitionOf = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, i) => ({ partitionErrorCode: 0, partitionId: i, leader: 0, replicas: [0], isr: [0] }));
  const out: Message[] = [];
  const expected: ExpectedRecord[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${tag}-key-${i % 8}`;
    const value = `${tag}-value-${i}-${'payload '.repeat(i % 5)}`;
    const timestamp = BASE_TIMESTAMP + i * 1000;
    const message: Message = { key, value, timestamp: String(timestamp), headers: { 'h-index': String(i), 'h-tag': tag } };
    if (i % 2 === 0) message.partition = (i / 2) % PARTITIONS;
    const partition = partitionOf({ topic: tag, partitionMetadata, message });
    out.push(message);
    expected.push({ partition, key, value, headers: [['h-index', String(i)], ['h-tag', tag]], timestamp });
  }
  return { messages: out, expected };
}

/** Sends `msgs` in `sends` sequential calls, so both batches and batch boundaries are exercised. */
async function sendInParts(producer: Producer, topic: string, msgs: Message[], sends: number, options: { acks?: number; compression?: number } = {}): Promise<void> {
  const per = Math.ceil(msgs.length / sends);
  for (let i = 0; i < msgs.length; i += per) {
    await producer.send({ topic, messages: msgs.slice(i, i + per), ...options });
  }
}

const CODECS: [string, number, CompressionCodec][] = [
  ['none', CompressionTypes.None, Compression.NONE],
  ['gzip', CompressionTypes.GZIP, Compression.GZIP],
  ['snappy', CompressionTypes.Snappy, Compression.SNAPPY],
  ['lz4', CompressionTypes.LZ4, Compression.LZ4],
  ['zstd', CompressionTypes.ZSTD, Compression.ZSTD],
];

describe.each(STORAGES)('kafkajs producer, %s store', (storage) => {
  let cluster: Cluster;
  let kafka: InstanceType<typeof Kafka>;
  const producers: Producer[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ storage });
    kafka = new Kafka({
      clientId: 'compat-kafkajs',
      brokers: [cluster.bootstrap],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  });

  afterAll(async () => {
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
    await cluster?.stop();
  });

  async function connectedProducer(config: Parameters<typeof kafka.producer>[0] = {}): Promise<Producer> {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, ...config });
    producers.push(producer);
    await producer.connect();
    return producer;
  }

  it.each([-1, 1])('acks=%i: explicit and keyed partitions, headers and timestamps read back exactly', async (acks) => {
    const topic = uniqueTopic(`kjs-acks${acks === -1 ? 'all' : acks}-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const producer = await connectedProducer();
    const { messages: msgs, expected } = messages(topic, 60);
    await sendInParts(producer, topic, msgs, 4, { acks });
    expectExactlyOnce(await readAll(cluster.bootstrap, topic), expected);
  });

  it('acks=0: every record arrives although no response comes back', async () => {
    const topic = uniqueTopic(`kjs-acks0-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const producer = await connectedProducer();
    const { messages: msgs, expected } = messages(topic, 60);
    await sendInParts(producer, topic, msgs, 4, { acks: 0 });
    const read = await waitFor('every record to be stored', () => readAll(cluster.bootstrap, topic), (r) => r.length >= expected.length, 15_000);
    expectExactlyOnce(read, expected);
  });

  it.each(CODECS)('compression %s: batches are stored with the client codec and read back exactly', async (name, kafkajsCodec, storedCodec) => {
    const topic = uniqueTopic(`kjs-${name}-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const producer = await connectedProducer();
    const { messages: msgs, expected } = messages(topic, 90);
    await sendInParts(producer, topic, msgs, 3, { acks: -1, compression: kafkajsCodec });
    expectExactlyOnce(await readAll(cluster.bootstrap, topic), expected);
    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    // 3 sends × 3 partitions, each send a batch per partition.
    expect(batches.length).toBe(9);
    expect(new Set(batches.map((b) => b.compression))).toEqual(new Set([storedCodec]));
  });

  it('idempotent producer: records stored once with its producer id and gapless sequences', async () => {
    const topic = uniqueTopic(`kjs-idempotent-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 });
    const { messages: msgs, expected } = messages(topic, 120);
    await sendInParts(producer, topic, msgs, 6, { acks: -1, compression: CompressionTypes.GZIP });
    expectExactlyOnce(await readAll(cluster.bootstrap, topic), expected);

    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    const producerIds = new Set(batches.map((b) => b.producerId));
    expect(producerIds.size).toBe(1);
    expect([...producerIds][0]).toBeGreaterThanOrEqual(0);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      // Per partition the sequence starts at 0 and each batch continues where the last ended.
      let nextSequence = 0;
      for (const b of batches.filter((x) => x.partition === partition)) {
        expect(b.producerEpoch).toBeGreaterThanOrEqual(0);
        expect(b.baseSequence).toBe(nextSequence);
        expect(b.baseSequence).toBe(b.baseOffset);
        nextSequence += b.recordCount;
      }
    }
  });

  it('a second idempotent producer gets a new producer id and appends after the first', async () => {
    const topic = uniqueTopic(`kjs-idempotent-twice-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const { messages: msgs, expected } = messages(topic, 60);
    const first = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 });
    await sendInParts(first, topic, msgs.slice(0, 30), 2, { acks: -1 });
    await first.disconnect();
    const second = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 });
    await sendInParts(second, topic, msgs.slice(30), 2, { acks: -1 });
    expectExactlyOnce(await readAll(cluster.bootstrap, topic), expected);

    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    const ids = [...new Set(batches.map((b) => b.producerId))];
    expect(ids.length).toBe(2);
    for (const id of ids) {
      // Each producer's sequences start at 0 in each partition and continue gaplessly.
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const own = batches.filter((b) => b.producerId === id && b.partition === partition);
        let nextSequence = 0;
        for (const b of own) {
          expect(b.baseSequence).toBe(nextSequence);
          nextSequence += b.recordCount;
        }
      }
    }
  });

  it('sendBatch to two topics in one request, gzip-compressed', async () => {
    const topics = [uniqueTopic(`kjs-multi-a-${storage}`), uniqueTopic(`kjs-multi-b-${storage}`)];
    const sets = topics.map((t) => messages(t, 30));
    for (const t of topics) await createTopic(cluster.bootstrap, t, PARTITIONS);
    const producer = await connectedProducer();
    await producer.sendBatch({ acks: -1, compression: CompressionTypes.GZIP, topicMessages: topics.map((topic, i) => ({ topic, messages: sets[i]!.messages })) });
    for (const [i, topic] of topics.entries()) expectExactlyOnce(await readAll(cluster.bootstrap, topic), sets[i]!.expected);
  });
});
