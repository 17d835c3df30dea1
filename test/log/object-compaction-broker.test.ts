// Object compaction on a running broker (docs/architecture.md §4.5): kafkajs produces many small
// batches to a two-partition topic, every flush one object shared by both partitions; the
// broker's compaction job shrinks each partition's index to a few runs; a kafkajs consumer
// reading from the beginning then gets every record exactly once, in order. Waits are on the
// index itself, never on a length of time.
import type { Redis } from 'ioredis';
import kafkajs, { type Admin, type Consumer, type Kafka as KafkaClient } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { uniqueTopic } from '../helpers/compat.js';
import { commandClient } from '../helpers/partition-store.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

/** Produce requests, each one batch of one record per partition. */
const SENDS = 150;

let cluster: Cluster;
let broker: Broker;
let redis: Redis;
let admin: Admin;
let consumer: Consumer | null = null;

function kafka(clientId: string): KafkaClient {
  return new Kafka({ clientId, brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

function valueOf(partition: number, i: number): string {
  return `p${partition}-${String(i).padStart(4, '0')}`;
}

/** The `strata_…` value /metrics shows. */
function metric(name: string): number {
  const m = new RegExp(`\\n${name} (\\d+)\\n`).exec(`\n${broker.metricsText()}`);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

beforeAll(async () => {
  cluster = await startCluster({
    brokerArgs: [
      '--object-compaction-interval-ms', '300',
      '--object-compaction-min-age-ms', '0',
      '--object-compaction-window-ms', '0',
      '--flush-ms', '5',
      '--group-initial-rebalance-delay-ms', '0',
      '--group-min-session-timeout-ms', '1000',
    ],
  });
  broker = cluster.brokers[0]!.broker!;
  redis = await commandClient(cluster.redis.url);
  admin = kafka('compaction-admin').admin();
  await admin.connect();
});

afterAll(async () => {
  await consumer?.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  redis?.disconnect();
  await cluster?.stop();
});

describe('object compaction on a broker', () => {
  it('shrinks each partition index to a few runs; a consumer from the beginning reads every record once, in order', async () => {
    const topic = uniqueTopic('compaction');
    await createTopic(cluster.bootstrap, topic, 2);
    const producer = kafka('compaction-producer').producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (let i = 0; i < SENDS; i++) {
        await producer.send({ topic, acks: -1, messages: [0, 1].map((partition) => ({ partition, key: `k${i}`, value: valueOf(partition, i) })) });
      }
    } finally {
      await producer.disconnect();
    }

    // Every batch is the same size, so once no group is due any more the runs left halve in
    // size at least from one to the next: at most log2(SENDS) + 1 of them.
    const bound = Math.floor(Math.log2(SENDS)) + 1;
    const topicId = (await broker.topics.byName(topic))!.topicId;
    const idx = [0, 1].map((partition) => partitionKeys({ topicId, partition }).idx);
    const sizes = await waitFor(
      `both partitions' run indexes to hold at most ${bound} runs`,
      () => Promise.all(idx.map((key) => redis.zcard(key))),
      (n) => n.every((runs) => runs <= bound),
      60_000,
    );
    expect(sizes.every((runs) => runs >= 1)).toBe(true);
    expect(metric('strata_compaction_runs_merged_total')).toBeGreaterThanOrEqual(2 * (SENDS - bound));
    expect(metric('strata_compaction_swaps_aborted_total')).toBe(0);
    // Most records now live in objects compaction wrote (`…-c<seq>.seg`), one partition each.
    for (const key of idx) {
      const objects = (await redis.zrange(key, 0, -1)).map((m) => m.slice(m.lastIndexOf('|') + 1));
      expect(objects.filter((o) => /^data\/\d{4}-\d\d-\d\d\/\d+-[0-9a-f]{8}-c\d{8}\.seg$/.test(o)).length).toBeGreaterThanOrEqual(1);
    }

    const groupId = `${topic}-group`;
    const consumed: { partition: number; offset: string; value: string }[] = [];
    consumer = kafka('compaction-consumer').consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed.push({ partition, offset: message.offset, value: message.value?.toString() ?? '' });
      },
    });
    // Done once the group has committed past the last record of both partitions.
    await waitFor(
      `the group to commit offset ${SENDS} on both partitions`,
      () => admin.fetchOffsets({ groupId, topics: [topic] }),
      (r) => r[0]!.partitions.every((p) => p.offset === String(SENDS)),
      60_000,
    );
    for (const partition of [0, 1]) {
      const expected = Array.from({ length: SENDS }, (_, i) => ({ partition, offset: String(i), value: valueOf(partition, i) }));
      expect(consumed.filter((c) => c.partition === partition)).toEqual(expected);
    }
  });
});
