/**
 * Object-store faults (docs/architecture.md §3.2, §4.1, §8): in-process brokers on one shared memory
 * store, each broker with its own fault controller. A failed upload is answered with the
 * retriable KAFKA_STORAGE_ERROR and acknowledges nothing; a failed GET fails only the
 * partitions that needed it; upload latency never reorders commits, so a partition's offsets
 * follow the order produce requests arrived in.
 *
 * Both caches are off, so every fetch reads the object store.
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryObjectStore } from '../../src/storage/memory.js';
import { ErrorCode, type ProduceResponse } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { batch, expectAcknowledgedStored, fetchBody, produceBody } from '../helpers/faults.js';
import { createTopic } from '../helpers/topics.js';
import { sleep, waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const RUN = randomBytes(4).toString('hex');
let topicSeq = 0;
const uniqueTopic = (tag: string): string => `ose-${tag}-${RUN}-${topicSeq++}`;

let cluster: Cluster;
/** Broker 0 writes in most tests; broker 1 reads objects it never wrote. */
let store0: MemoryObjectStore;
let store1: MemoryObjectStore;
let admin: RawClient;
const clients: RawClient[] = [];

async function connect(brokerIndex: number, clientId: string): Promise<RawClient> {
  const c = await RawClient.connect(`127.0.0.1:${cluster.brokers[brokerIndex]!.port}`, clientId);
  clients.push(c);
  return c;
}

async function objectCount(store: MemoryObjectStore): Promise<number> {
  let n = 0;
  for await (const _object of store.list('data/')) n++;
  return n;
}

function firstPartition(res: ProduceResponse): ProduceResponse['responses'][number]['partitionResponses'][number] {
  return res.responses[0]!.partitionResponses[0]!;
}

beforeAll(async () => {
  cluster = await startCluster({ storage: 'memory', brokers: 2, brokerArgs: ['--write-cache-bytes', '0', '--block-cache-bytes', '0'] });
  store0 = cluster.brokers[0]!.memoryStore!;
  store1 = cluster.brokers[1]!.memoryStore!;
  expect(store0).not.toBeNull();
  expect(store0.url).toBe(store1.url);
  admin = await connect(0, 'ose-admin');
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

describe('upload failures', () => {
  it('answers KAFKA_STORAGE_ERROR while uploads fail, stores nothing, and produces again once they succeed', async () => {
    const topic = uniqueTopic('put');
    await createTopic(admin, topic, 2);
    const producer = await connect(0, 'ose-put');
    const objectsBefore = await objectCount(store0);
    const stop = store0.faults.failWhile((ctx) => ctx.op === 'put');
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const res = await producer.send(0, 9, produceBody(topic, [
          { partition: 0, records: batch([`lost-${attempt}-a`]) },
          { partition: 1, records: batch([`lost-${attempt}-b`]) },
        ]));
        expect(res.responses[0]!.partitionResponses.map((p) => [p.index, p.errorCode, p.baseOffset])).toEqual([
          [0, ErrorCode.KAFKA_STORAGE_ERROR, -1n],
          [1, ErrorCode.KAFKA_STORAGE_ERROR, -1n],
        ]);
      }
    } finally {
      stop();
    }
    expect(await objectCount(store0)).toBe(objectsBefore);
    expect(await readAll(cluster.bootstrap, topic)).toEqual([]);

    const ok = await producer.send(0, 9, produceBody(topic, [
      { partition: 0, records: batch(['kept-a']) },
      { partition: 1, records: batch(['kept-b']) },
    ]));
    expect(ok.responses[0]!.partitionResponses.map((p) => [p.index, p.errorCode, p.baseOffset])).toEqual([
      [0, ErrorCode.NONE, 0n],
      [1, ErrorCode.NONE, 0n],
    ]);
    const stored = await readAll(`127.0.0.1:${cluster.brokers[1]!.port}`, topic);
    expect(stored.map((r) => [r.partition, r.offset, r.value])).toEqual([
      [0, 0, 'kept-a'],
      [1, 0, 'kept-b'],
    ]);
  });

  it('does not acknowledge an upload whose object was stored but whose answer was lost, and never shows its bytes', async () => {
    const topic = uniqueTopic('put-after');
    await createTopic(admin, topic, 1);
    const producer = await connect(0, 'ose-put-after');
    const objectsBefore = await objectCount(store0);
    store0.faults.failNext('put', 1, { when: 'after' });
    const res = await producer.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['orphan']) }]));
    expect(firstPartition(res)).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR, baseOffset: -1n });
    // The object exists (an orphan for the GC), but no offset points at it.
    expect(await objectCount(store0)).toBe(objectsBefore + 1);
    expect(await readAll(cluster.bootstrap, topic)).toEqual([]);
    const retry = await producer.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['orphan']) }]));
    expect(firstPartition(retry)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect((await readAll(cluster.bootstrap, topic)).map((r) => [r.offset, r.value])).toEqual([[0, 'orphan']]);
  });

  it('stores every record a retrying producer had acknowledged through intermittent upload failures, exactly once', async () => {
    const topic = uniqueTopic('kafkajs');
    const partitions = 3;
    await createTopic(admin, topic, partitions);
    // One upload in three fails, on both brokers; a failed upload never commits, so retries
    // cannot duplicate.
    const stops = [store0, store1].map((store) => {
      let n = 0;
      return store.faults.failWhile((ctx) => ctx.op === 'put' && n++ % 3 === 0);
    });
    const errorsBefore = store0.stats().errors + store1.stats().errors;
    const kafka = new Kafka({
      clientId: 'ose-kafkajs',
      brokers: cluster.brokers.map((b) => `127.0.0.1:${b.port}`),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      retry: { retries: 12, initialRetryTime: 50, maxRetryTime: 500 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 12, initialRetryTime: 50, maxRetryTime: 500 } });
    const sent = new Set<string>();
    const acknowledged = new Set<string>();
    const failures: string[] = [];
    try {
      await producer.connect();
      const SENDS = 40;
      const PER_SEND = 5;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < SENDS) {
          const s = next++;
          const messages = Array.from({ length: PER_SEND }, (_, i) => ({ partition: (s + i) % partitions, value: `r-${s}-${i}` }));
          for (const m of messages) sent.add(m.value);
          try {
            await producer.send({ topic, acks: -1, messages });
            for (const m of messages) acknowledged.add(m.value);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    } finally {
      for (const stop of stops) stop();
      await producer.disconnect().catch(() => undefined);
    }
    expect(store0.stats().errors + store1.stats().errors).toBeGreaterThan(errorsBefore);
    expect(failures).toEqual([]);
    expect(acknowledged.size).toBe(sent.size);
    const stored = await readAll(`127.0.0.1:${cluster.brokers[1]!.port}`, topic);
    expectAcknowledgedStored(stored, acknowledged, sent, { exactlyOnce: true });
  });
});

describe('download failures', () => {
  it('answers KAFKA_STORAGE_ERROR for the partitions whose bytes could not be read, and recovers', async () => {
    const topic = uniqueTopic('get');
    await createTopic(admin, topic, 2);
    const writer = await connect(0, 'ose-get-writer');
    const res = await writer.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['g0', 'g1', 'g2']) }]));
    expect(firstPartition(res)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });

    const reader = await connect(1, 'ose-get-reader');
    const stop = store1.faults.failWhile((ctx) => ctx.op === 'get');
    try {
      const failed = await reader.send(1, 11, fetchBody(topic, [{ partition: 0, fetchOffset: 0 }, { partition: 1, fetchOffset: 0 }]));
      const [p0, p1] = failed.responses[0]!.partitions;
      expect(p0).toMatchObject({ partitionIndex: 0, errorCode: ErrorCode.KAFKA_STORAGE_ERROR });
      expect(p0!.records === null || (p0!.records as Buffer).length === 0).toBe(true);
      // The empty partition needed no object: it answers normally in the same response.
      expect(p1).toMatchObject({ partitionIndex: 1, errorCode: ErrorCode.NONE, highWatermark: 0n });
      // A long-poll does not hide the error until its deadline: it answers with it.
      const polled = await reader.send(1, 11, fetchBody(topic, [{ partition: 0, fetchOffset: 0 }], 5000, 1));
      expect(polled.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
      expect(reader.closed).toBe(false);
    } finally {
      stop();
    }
    const stored = await readAll(`127.0.0.1:${cluster.brokers[1]!.port}`, topic);
    expect(stored.map((r) => [r.partition, r.offset, r.value])).toEqual([
      [0, 0, 'g0'],
      [0, 1, 'g1'],
      [0, 2, 'g2'],
    ]);
  });
});

describe('upload latency and commit order', () => {
  const SLOW_MS = 2500;

  it('commits a slow first upload before a fast second one: offsets follow arrival order', async () => {
    const topic = uniqueTopic('latency');
    await createTopic(admin, topic, 1);
    const [first, second] = [await connect(0, 'ose-slow'), await connect(0, 'ose-fast')];
    const puts = store0.stats().puts;
    const objects = await objectCount(store0);
    store0.faults.setLatency(SLOW_MS, ['put']);
    let slowAnswered = false;
    const slow = first.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['slow']) }])).then((r) => {
      slowAnswered = true;
      return r;
    });
    try {
      await waitFor('the slow upload to start', () => (store0.stats().puts > puts ? true : undefined));
    } finally {
      store0.faults.setLatency(0, ['put']);
    }
    const fast = second.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['fast']) }]));
    // The fast upload lands while the slow one is still in flight (the scenario under test);
    // its commit must wait.
    await waitFor('the fast upload to land', async () => ((await objectCount(store0)) > objects ? true : undefined));
    const overlapped = !slowAnswered;
    const [slowRes, fastRes] = await Promise.all([slow, fast]);
    expect(firstPartition(slowRes)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(firstPartition(fastRes)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });
    expect((await readAll(cluster.bootstrap, topic)).map((r) => r.value)).toEqual(['slow', 'fast']);
    expect(overlapped).toBe(true);
  });

  it('keeps offsets in request order under random upload latency', async () => {
    const topic = uniqueTopic('jitter');
    await createTopic(admin, topic, 1);
    const producer = await connect(0, 'ose-jitter');
    store0.faults.setLatency({ min: 0, max: 80 }, ['put']);
    const pending: Promise<ProduceResponse>[] = [];
    try {
      // Spaced a little so that many flushes, with overlapping uploads, carry them.
      for (let i = 0; i < 30; i++) {
        pending.push(producer.send(0, 9, produceBody(topic, [{ partition: 0, records: batch([`j-${i}`, `j-${i}-b`]) }])));
        await sleep(7);
      }
      const results = await Promise.all(pending);
      expect(results.map((r) => [firstPartition(r).errorCode, firstPartition(r).baseOffset])).toEqual(
        Array.from({ length: 30 }, (_, i) => [ErrorCode.NONE, BigInt(2 * i)]),
      );
    } finally {
      store0.faults.setLatency(0, ['put']);
    }
    expect((await readAll(cluster.bootstrap, topic)).map((r) => r.value)).toEqual(Array.from({ length: 30 }, (_, i) => [`j-${i}`, `j-${i}-b`]).flat());
  });

  // Regression: IngestBuffer#runFlush releases its place in the commit order as soon as its
  // own upload fails, without waiting for the flush before it to commit. The flush after
  // the failed one then commits ahead of the still-uploading earlier flush.
  it('a failed upload between a slow and a fast one does not let the later flush commit first', async () => {
    const topic = uniqueTopic('fail-between');
    await createTopic(admin, topic, 1);
    const [a, b, c] = [await connect(0, 'ose-a'), await connect(0, 'ose-b'), await connect(0, 'ose-c')];
    const puts = store0.stats().puts;
    store0.faults.setLatency(SLOW_MS, ['put']);
    const slow = a.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['A-first']) }]));
    try {
      await waitFor('the slow upload to start', () => (store0.stats().puts > puts ? true : undefined));
    } finally {
      store0.faults.setLatency(0, ['put']);
    }
    store0.faults.failNext('put', 1);
    const failed = await b.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['B-failed']) }]));
    expect(firstPartition(failed).errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    const later = c.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['C-third']) }]));
    const [slowRes, laterRes] = await Promise.all([slow, later]);
    expect(firstPartition(slowRes).errorCode).toBe(ErrorCode.NONE);
    expect(firstPartition(laterRes).errorCode).toBe(ErrorCode.NONE);
    expect((await readAll(cluster.bootstrap, topic)).map((r) => r.value)).toEqual(['A-first', 'C-third']);
    expect([firstPartition(slowRes).baseOffset, firstPartition(laterRes).baseOffset]).toEqual([0n, 1n]);
  });
});
