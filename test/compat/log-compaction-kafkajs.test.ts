/**
 * kafkajs on compacted topics (docs/architecture.md §4.6): records produced by kafkajs, some in
 * a transaction it aborts, some tombstones; once the log cleaner has run, a kafkajs consumer
 * reading from the beginning (read_uncommitted, so aborted records would show) gets exactly
 * what Kafka would give: the latest value of each key at its original offset, offsets
 * increasing across the gaps, no aborted record, and tombstones while `delete.retention.ms`
 * keeps them.
 */
import kafkajs, { type Consumer, type Kafka as KafkaClient, type Message } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { uniqueTopic } from '../helpers/compat.js';
import { readAll } from '../helpers/read-all.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

type Record3 = [offset: number, key: string, value: string | null];

let cluster: Cluster;
let kafka: KafkaClient;
const consumers: Consumer[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    brokerArgs: ['--log-cleaner', 'true', '--log-cleaner-interval-ms', '200', '--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '1000'],
  });
  kafka = new Kafka({ clientId: 'compaction-kafkajs', brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await cluster?.stop();
});

/** One step: records sent as one batch, or sent in a transaction that is then aborted. */
type Step = { send: [string, string | null][] } | { abort: [string, string][] };

const STEPS: Step[] = [
  { send: [['k0', 'r0'], ['k1', 'r0'], ['k2', 'r0'], ['k3', 'r0'], ['k4', 'r0']] },
  { send: [['k0', 'r1'], ['k1', 'r1'], ['k2', 'r1'], ['k3', 'r1'], ['k4', 'r1']] },
  { abort: [['k0', 'aborted'], ['k5', 'aborted']] },
  { send: [['k3', null], ['k1', 'r2']] },
  { send: [['k4', 'r3'], ['k2', null]] },
  { send: [['k2', 'r4']] },
];

/**
 * Produces the steps to partition 0 and answers what a compacted log keeps of them: each
 * key's latest record outside the aborted transaction, tombstones kept or not, by offset.
 */
async function produceSteps(topic: string, keepTombstones: boolean): Promise<Record3[]> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const transactional = kafka.producer({ transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  await transactional.connect();
  const latest = new Map<string, Record3>();
  let offset = 0;
  try {
    for (const step of STEPS) {
      if ('abort' in step) {
        const txn = await transactional.transaction();
        await txn.send({ topic, messages: step.abort.map(([key, value]): Message => ({ key, value, partition: 0 })) });
        await txn.abort();
        offset += step.abort.length + 1;
        continue;
      }
      const [meta] = await producer.send({ topic, acks: -1, messages: step.send.map(([key, value]): Message => ({ key, value, partition: 0 })) });
      expect(Number(meta!.baseOffset)).toBe(offset);
      for (const [key, value] of step.send) latest.set(key, [offset++, key, value]);
    }
  } finally {
    await producer.disconnect();
    await transactional.disconnect();
  }
  return [...latest.values()].filter((r) => keepTombstones || r[2] !== null).sort((a, b) => a[0] - b[0]);
}

/** Everything a kafkajs group consumer reads from the beginning, once it has committed `end`. */
async function consumeAll(topic: string, end: number): Promise<Record3[]> {
  const groupId = `${topic}-group`;
  const consumed: Record3[] = [];
  const consumer = kafka.consumer({ groupId, readUncommitted: true, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      consumed.push([Number(message.offset), message.key!.toString(), message.value === null ? null : message.value.toString()]);
    },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Done once the group has committed the end of the log: everything it read is in.
    await waitFor('the group to commit the end of the log', () => admin.fetchOffsets({ groupId, topics: [topic] }), (r) => r[0]!.partitions[0]!.offset === String(end), 30_000);
  } finally {
    await admin.disconnect();
    await consumer.disconnect();
  }
  return consumed;
}

async function compactAndConsume(topic: string, keepTombstones: boolean): Promise<void> {
  const expected = await produceSteps(topic, keepTombstones);
  await waitFor(
    'the log cleaner to compact the topic',
    async () => (await readAll(cluster.bootstrap, topic)).map((r): Record3 => [r.offset, r.key!, r.value]),
    (read) => JSON.stringify(read) === JSON.stringify(expected),
    30_000,
  );
  expect(await consumeAll(topic, 18)).toEqual(expected);
}

describe('kafkajs on a compacted topic', () => {
  it('reads the latest value per key at its offset, tombstones kept within delete.retention.ms, no aborted records', async () => {
    const topic = uniqueTopic('compacted');
    await createTopic(cluster.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0' });
    await compactAndConsume(topic, true);
  });

  it('reads no tombstone once delete.retention.ms has passed since the cleaner kept it', async () => {
    const topic = uniqueTopic('compacted-0');
    await createTopic(cluster.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0', 'delete.retention.ms': '0' });
    await compactAndConsume(topic, false);
  });
});
