/**
 * kafkajs against size retention (docs/architecture.md §4.3): a topic with `retention.bytes`
 * of a few runs is produced well past it; the retention job moves each partition's log start
 * until what the run index keeps (read straight from Redis) is at least the limit and less
 * than the limit plus its oldest run, as Kafka's rule keeps segments; a consumer from the
 * beginning reads exactly the records from the new earliest offset to the end, intact; and
 * DescribeConfigs reports the retention defaults set by broker flags as STATIC_BROKER_CONFIG.
 */
import type { Redis } from 'ioredis';
import kafkajs, { type Admin, type Consumer, type Kafka as KafkaClient } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker.js';
import { ConfigSource } from '../../src/cluster/topic-configs.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { parseRun, type Run } from '../../src/log/partition-store.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { uniqueTopic } from '../helpers/compat.js';
import { commandClient } from '../helpers/partition-store.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;

/** The topic's retention.bytes: about four sends' worth per partition (each ~1.1 kB). */
const LIMIT = 4000;
const PARTITIONS = 2;
const SENDS = 24;
const PER_SEND = 5;
/** --log-retention-bytes: far above what the test writes, so only the override acts. */
const BROKER_RETENTION_BYTES = 1 << 30;

let cluster: Cluster;
let broker: Broker;
let admin: Admin;
let redis: Redis;
let consumer: Consumer | null = null;

function kafka(clientId: string): KafkaClient {
  return new Kafka({ clientId, brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

beforeAll(async () => {
  cluster = await startCluster({
    brokerArgs: [
      '--log-retention-check-interval-ms', '200', '--flush-ms', '20', '--log-retention-bytes', String(BROKER_RETENTION_BYTES),
      '--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '1000',
    ],
  });
  broker = cluster.brokers[0]!.broker!;
  admin = kafka('retention-bytes-admin').admin();
  await admin.connect();
  redis = await commandClient(cluster.redis.url);
});

afterAll(async () => {
  await consumer?.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  redis?.disconnect();
  await cluster?.stop();
});

/** A partition's log start, high watermark and kept runs, straight from Redis. */
async function stored(topicId: string, partition: number): Promise<{ logStart: number; hw: number; runs: Run[] }> {
  const k = partitionKeys({ topicId, partition });
  const [hw, logStart] = await redis.hmget(k.meta, 'hw', 'logStart');
  const runs = (await redis.zrange(k.idx, 0, -1)).map(parseRun);
  return { logStart: Number(logStart ?? 0), hw: Number(hw ?? 0), runs };
}

describe('kafkajs and retention.bytes', () => {
  it('keeps each partition between the limit and the limit plus one run; a consumer from the beginning reads exactly what is kept', async () => {
    const topic = uniqueTopic('retention-bytes');
    const groupId = `${topic}-group`;
    await createTopic(cluster.bootstrap, topic, PARTITIONS, { 'retention.bytes': String(LIMIT) });
    const topicId = (await broker.topics.byName(topic))!.topicId;

    // Per partition, the value produced at each offset.
    const produced: Map<number, string>[] = Array.from({ length: PARTITIONS }, () => new Map());
    const producer = kafka('retention-bytes-producer').producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (let s = 0; s < SENDS; s++) {
        const messages = [];
        for (let p = 0; p < PARTITIONS; p++) {
          for (let m = 0; m < PER_SEND; m++) messages.push({ partition: p, value: `p${p}-s${s}-m${m}-`.padEnd(200, '.') });
        }
        // One send, one batch per partition: each acknowledged before the next is sent.
        const meta = await producer.send({ topic, acks: -1, messages });
        for (const r of meta) {
          const base = Number(r.baseOffset);
          for (let m = 0; m < PER_SEND; m++) produced[r.partition]!.set(base + m, `p${r.partition}-s${s}-m${m}-`.padEnd(200, '.'));
        }
      }
    } finally {
      await producer.disconnect();
    }
    for (const values of produced) expect(values.size).toBe(SENDS * PER_SEND);

    await waitFor('retention.bytes to move every earliest offset', () => admin.fetchTopicOffsets(topic), (ps) => ps.every((p) => Number(p.low) > 0), 20_000);
    // Two cycles that began after the last produce: nothing more is due after them.
    const from = broker.retention.stats().cycles;
    await waitFor('two more retention cycles', () => broker.retention.stats().cycles, (n) => n >= from + 2, 20_000);

    const offsets = await admin.fetchTopicOffsets(topic);
    const kept: { logStart: number; hw: number }[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const { logStart, hw, runs } = await stored(topicId, p);
      const bytes = runs.reduce((sum, r) => sum + r.byteLength, 0);
      const largest = Math.max(...runs.map((r) => r.byteLength));
      expect(hw).toBe(SENDS * PER_SEND);
      // Size retention moves the log start to the base of a run, so no run straddles it.
      expect(runs[0]!.base).toBe(logStart);
      expect(bytes).toBeGreaterThanOrEqual(LIMIT);
      expect(bytes).toBeLessThan(LIMIT + largest);
      // Kafka's rule exactly: deleting the oldest run kept would go below the limit.
      expect(bytes - runs[0]!.byteLength).toBeLessThan(LIMIT);
      expect(offsets.find((o) => o.partition === p)).toMatchObject({ low: String(logStart), high: String(hw) });
      kept.push({ logStart, hw });
    }

    // In arrival order, so a record delivered twice would show.
    const consumed: [number, string][][] = Array.from({ length: PARTITIONS }, () => []);
    consumer = kafka('retention-bytes-consumer').consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed[partition]!.push([Number(message.offset), message.value?.toString() ?? '']);
      },
    });
    // Done once the group has committed the high watermark of every partition.
    await waitFor(
      'the group to commit every high watermark',
      () => admin.fetchOffsets({ groupId, topics: [topic] }),
      (r) => r[0]!.partitions.every((p) => p.offset === String(kept[p.partition]!.hw)),
      30_000,
    );
    for (let p = 0; p < PARTITIONS; p++) {
      const { logStart, hw } = kept[p]!;
      const expected = [...produced[p]!].filter(([offset]) => offset >= logStart && offset < hw).sort((a, b) => a[0] - b[0]);
      expect(consumed[p]).toEqual(expected);
    }
  });

  it('describes retention defaults set by broker flags as STATIC_BROKER_CONFIG, over the topic override', async () => {
    const topic = uniqueTopic('retention-bytes-configs');
    await createTopic(cluster.bootstrap, topic, 1, { 'retention.bytes': String(LIMIT) });
    const res = await admin.describeConfigs({
      includeSynonyms: true,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.bytes', 'retention.ms'] }],
    });
    const entries = res.resources[0]!.configEntries.map((e) => ({
      name: e.configName,
      value: e.configValue,
      source: e.configSource,
      synonyms: e.configSynonyms.map((s) => [s.configName, s.configValue, s.configSource]),
    }));
    expect(entries).toEqual([
      {
        name: 'retention.bytes',
        value: String(LIMIT),
        source: ConfigSource.TOPIC_CONFIG,
        synonyms: [
          ['retention.bytes', String(LIMIT), ConfigSource.TOPIC_CONFIG],
          ['log.retention.bytes', String(BROKER_RETENTION_BYTES), ConfigSource.STATIC_BROKER_CONFIG],
          ['log.retention.bytes', '-1', ConfigSource.DEFAULT_CONFIG],
        ],
      },
      {
        // The test cluster runs with --log-retention-ms -1 (test/helpers/cluster.ts).
        name: 'retention.ms',
        value: '-1',
        source: ConfigSource.STATIC_BROKER_CONFIG,
        synonyms: [
          ['log.retention.ms', '-1', ConfigSource.STATIC_BROKER_CONFIG],
          ['log.retention.ms', '604800000', ConfigSource.DEFAULT_CONFIG],
        ],
      },
    ]);

    const nodeId = String(broker.nodeId);
    const brokerRes = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: nodeId, configNames: ['log.retention.bytes', 'log.retention.ms'] }],
    });
    expect(brokerRes.resources[0]!.configEntries.map((e) => [e.configName, e.configValue, e.configSource])).toEqual([
      ['log.retention.bytes', String(BROKER_RETENTION_BYTES), ConfigSource.STATIC_BROKER_CONFIG],
      ['log.retention.ms', '-1', ConfigSource.STATIC_BROKER_CONFIG],
    ]);
  });
});
