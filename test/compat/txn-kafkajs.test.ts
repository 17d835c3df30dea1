/**
 * kafkajs transactions against Strata, on the file store and on S3 (s3rver): a committed
 * transaction is visible to read_committed readers exactly once; an aborted one is never
 * visible to them — checked by a reader polling throughout the transaction, not only at the
 * end — while read_uncommitted readers see its records. Readers are both a RawClient Fetch
 * loop (test/helpers/raw-txn.ts, which drops aborted records by the consumer's rule) and kafkajs
 * consumers with `readUncommitted` false and true.
 */
import kafkajs, { type Consumer, type Message, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { readPartition } from '../helpers/raw-txn.js';
import { STORAGES, expectExactlyOnce, uniqueTopic, type ExpectedRecord } from '../helpers/compat.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const PARTITIONS = 3;
const BASE_TIMESTAMP = 1_700_000_000_000;

/** `count` messages tagged `tag`, spread over the partitions explicitly. */
function messages(tag: string, count: number, from = 0): { messages: Message[]; expected: ExpectedRecord[] } {
  const out: Message[] = [];
  const expected: ExpectedRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const partition = i % PARTITIONS;
    const value = `${tag}-${i}`;
    out.push({ partition, key: `k${i}`, value, timestamp: String(BASE_TIMESTAMP + i), headers: { i: String(i) } });
    expected.push({ partition, key: `k${i}`, value, headers: [['i', String(i)]], timestamp: BASE_TIMESTAMP + i });
  }
  return { messages: out, expected };
}

/** Values seen by a consumer, and a way to wait (bounded) until it has seen some. */
class Seen {
  readonly values: string[] = [];
  async until(what: string, done: (values: string[]) => boolean, timeoutMs = 30_000): Promise<void> {
    await waitFor(what, () => this.values, done, timeoutMs, 50);
  }
}

/**
 * A reader that re-reads every partition under read_committed in a loop until stopped,
 * recording every value it was ever given. `nextPass()` resolves after a pass that started
 * after the call, so a test can make sure the reader looked at a given moment.
 */
class PollingReader {
  readonly everSeen = new Set<string>();
  /** Passes begun and passes completed. */
  #started = 0;
  #completed = 0;
  #stop = false;
  #waiters: { target: number; resolve: () => void }[] = [];
  readonly #done: Promise<void>;

  constructor(client: RawClient, topic: string) {
    this.#done = (async () => {
      while (!this.#stop) {
        this.#started++;
        for (let p = 0; p < PARTITIONS; p++) for (const r of await readPartition(client, topic, p, true)) this.everSeen.add(r.value);
        this.#completed++;
        for (const w of this.#waiters.filter((x) => x.target <= this.#completed)) w.resolve();
        this.#waiters = this.#waiters.filter((x) => x.target > this.#completed);
      }
    })();
  }

  /** Resolves once a whole pass has run that began after this call. */
  nextPass(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ target: this.#started + 1, resolve }));
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

describe.each(STORAGES)('kafkajs transactions, %s store', (storage) => {
  let cluster: Cluster;
  let kafka: InstanceType<typeof Kafka>;
  const producers: Producer[] = [];
  const consumers: Consumer[] = [];
  const clients: RawClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ storage, brokerArgs: ['--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '1000'] });
    kafka = new Kafka({
      clientId: 'compat-kafkajs-txn',
      brokers: [cluster.bootstrap],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  });

  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  async function transactionalProducer(transactionalId: string): Promise<Producer> {
    const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    producers.push(producer);
    await producer.connect();
    return producer;
  }

  /** A kafkajs consumer of `topic` from the beginning, recording values; resolves once it has joined. */
  async function consumer(topic: string, readUncommitted: boolean): Promise<Seen> {
    const c = kafka.consumer({ groupId: uniqueTopic(`txn-reader-${readUncommitted ? 'uncommitted' : 'committed'}`), readUncommitted, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
    consumers.push(c);
    const joined = new Promise<void>((resolve) => c.on(c.events.GROUP_JOIN, () => resolve()));
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    const seen = new Seen();
    await c.run({
      eachMessage: async ({ message }) => {
        seen.values.push(message.value!.toString());
      },
    });
    await joined;
    return seen;
  }

  async function rawClient(): Promise<RawClient> {
    const c = await RawClient.connect(cluster.bootstrap, 'txn-compat-reader');
    clients.push(c);
    return c;
  }

  it('a committed transaction is visible to read_committed readers, exactly once', async () => {
    const topic = uniqueTopic(`kjs-txn-commit-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const committedConsumer = await consumer(topic, false);
    const producer = await transactionalProducer(`${topic}-tx`);
    const { messages: msgs, expected } = messages(topic, 60);
    const txn = await producer.transaction();
    await txn.send({ topic, messages: msgs.slice(0, 30) });
    await txn.send({ topic, messages: msgs.slice(30) });
    await txn.commit();

    // A topic holding only committed records: readAll up to the LSO reads them all.
    expectExactlyOnce(await readAll(cluster.bootstrap, topic, { readCommitted: true }), expected);
    const raw = await rawClient();
    for (let p = 0; p < PARTITIONS; p++) {
      expect((await readPartition(raw, topic, p, true)).map((r) => r.value)).toEqual(expected.filter((e) => e.partition === p).map((e) => e.value));
    }
    await committedConsumer.until('the committed records', (v) => v.length >= expected.length);
    expect([...committedConsumer.values].sort()).toEqual(expected.map((e) => e.value).sort());
  });

  it('an aborted transaction is never visible to read_committed readers, not even transiently; read_uncommitted sees it', async () => {
    const topic = uniqueTopic(`kjs-txn-abort-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const committedConsumer = await consumer(topic, false);
    const uncommittedConsumer = await consumer(topic, true);
    const poller = new PollingReader(await rawClient(), topic);
    const plainProducer = kafka.producer({ allowAutoTopicCreation: false });
    producers.push(plainProducer);
    await plainProducer.connect();

    const aborted = messages(`${topic}-aborted`, 30);
    const plain = messages(`${topic}-plain`, 6);
    const producer = await transactionalProducer(`${topic}-tx`);
    const txn = await producer.transaction();
    for (let round = 0; round < 3; round++) {
      await txn.send({ topic, messages: aborted.messages.slice(round * 10, round * 10 + 10) });
      // Plain records written while the transaction is open: held back by the LSO, but
      // visible (to everyone) once it aborts.
      await plainProducer.send({ topic, acks: -1, messages: plain.messages.slice(round * 2, round * 2 + 2) });
      await poller.nextPass();
    }
    // read_uncommitted consumers see the open transaction's records already.
    await uncommittedConsumer.until('the open transaction’s records', (v) => aborted.expected.every((e) => v.includes(e.value)));
    await txn.abort();
    await poller.nextPass();

    // A committed transaction after it, ending with a sentinel per partition.
    const after = messages(`${topic}-after`, PARTITIONS * 2);
    const next = await producer.transaction();
    await next.send({ topic, messages: after.messages });
    await next.commit();
    await poller.nextPass();
    await poller.stop();

    const abortedValues = aborted.expected.map((e) => e.value);
    const visible = [...plain.expected, ...after.expected].map((e) => e.value);
    expect(abortedValues.filter((v) => poller.everSeen.has(v))).toEqual([]);
    expect([...poller.everSeen].sort()).toEqual([...visible].sort());

    await committedConsumer.until('the records after the aborted transaction', (v) => visible.every((x) => v.includes(x)));
    expect(committedConsumer.values.filter((v) => abortedValues.includes(v))).toEqual([]);
    expect([...committedConsumer.values].sort()).toEqual([...visible].sort());
    await uncommittedConsumer.until('every record', (v) => visible.every((x) => v.includes(x)));
    expect([...uncommittedConsumer.values].sort()).toEqual([...abortedValues, ...visible].sort());

    const raw = await rawClient();
    for (let p = 0; p < PARTITIONS; p++) {
      const committed = (await readPartition(raw, topic, p, true)).map((r) => r.value);
      const uncommitted = (await readPartition(raw, topic, p, false)).map((r) => r.value);
      expect(committed.filter((v) => abortedValues.includes(v))).toEqual([]);
      expect([...committed].sort()).toEqual(visible.filter((v) => Number(v.slice(v.lastIndexOf('-') + 1)) % PARTITIONS === p).sort());
      expect(uncommitted.filter((v) => abortedValues.includes(v)).sort()).toEqual(aborted.expected.filter((e) => e.partition === p).map((e) => e.value).sort());
    }
  });
});
