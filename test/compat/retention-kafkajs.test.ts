/**
 * kafkajs after time retention (docs/architecture.md §4.3): a group whose committed offset lies
 * below the log start retention moved to gets OFFSET_OUT_OF_RANGE, and a consumer with
 * `fromBeginning: true` resets to the new earliest offset and reads exactly the records kept.
 */
import kafkajs, { type Admin, type Consumer, type Kafka as KafkaClient } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { uniqueTopic } from '../helpers/compat.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const HOUR_MS = 3_600_000;

let cluster: Cluster;
let admin: Admin;
let consumer: Consumer | null = null;

function kafka(clientId: string): KafkaClient {
  return new Kafka({ clientId, brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

beforeAll(async () => {
  cluster = await startCluster({
    brokerArgs: ['--log-retention-check-interval-ms', '200', '--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '1000'],
  });
  admin = kafka('retention-admin').admin();
  await admin.connect();
});

afterAll(async () => {
  await consumer?.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  await cluster?.stop();
});

describe('kafkajs consumer after retention', () => {
  it('resets a committed offset below the new log start to it and reads exactly the fresh records', async () => {
    const topic = uniqueTopic('retention');
    const groupId = `${topic}-group`;
    await createTopic(cluster.bootstrap, topic, 1, { 'retention.ms': String(HOUR_MS) });
    const producer = kafka('retention-producer').producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      // One send each, so each is one batch: the old one (offsets 0–4) goes whole.
      const old = String(Date.now() - 2 * HOUR_MS);
      await producer.send({ topic, acks: -1, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `old-${i}`, timestamp: old })) });
      await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }] });
      await producer.send({ topic, acks: -1, messages: [5, 6, 7].map((i) => ({ value: `fresh-${i}` })) });
    } finally {
      await producer.disconnect();
    }

    const [low] = await waitFor('retention to move the log start', () => admin.fetchTopicOffsets(topic), (p) => Number(p[0]!.low) >= 5, 20_000);
    expect(low).toMatchObject({ partition: 0, low: '5', high: '8' });
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([{ topic, partitions: [{ partition: 0, offset: '1', metadata: null }] }]);

    const consumed: { offset: string; value: string }[] = [];
    consumer = kafka('retention-consumer').consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        consumed.push({ offset: message.offset, value: message.value?.toString() ?? '' });
      },
    });
    // Done once the group has committed past the last record: everything it read is in.
    await waitFor(
      'the group to commit offset 8',
      () => admin.fetchOffsets({ groupId, topics: [topic] }),
      (r) => r[0]!.partitions[0]!.offset === '8',
      30_000,
    );
    expect(consumed).toEqual([
      { offset: '5', value: 'fresh-5' },
      { offset: '6', value: 'fresh-6' },
      { offset: '7', value: 'fresh-7' },
    ]);
  });
});
