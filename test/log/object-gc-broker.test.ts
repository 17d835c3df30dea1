// Object garbage collection end to end on a broker over a file store (docs/architecture.md
// §4.4): after DeleteRecords on one partition and DeleteTopics on another topic, the segment
// objects only they referenced leave the store, every record still indexed reads back exactly,
// and /metrics counts what was deleted. Waits poll the store and /metrics, never a duration.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { parseRun } from '../../src/log/partition-store.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { commandClient } from '../helpers/partition-store.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, fetchFrom, produceOk } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let client: RawClient;
let redis: Redis;
/** A second view of the broker's file store, to see which objects exist. */
let objects: FileObjectStore;
let httpPort: number;

beforeAll(async () => {
  cluster = await startCluster({
    // A deadline a slow machine's flushes stay well within, and a grace just above it.
    brokerArgs: ['--object-gc-interval-ms', '500', '--object-gc-grace-ms', '4000', '--commit-deadline-ms', '3000', '--http', '127.0.0.1:0'],
  });
  client = await RawClient.connect(cluster.bootstrap);
  redis = await commandClient(cluster.redis.url);
  objects = new FileObjectStore(cluster.storageUrl, { fsync: false });
  httpPort = cluster.brokers[0]!.broker!.httpPort!;
});

afterAll(async () => {
  client?.close();
  redis?.disconnect();
  await objects?.close();
  await cluster?.stop();
});

/** Every segment object in the store: key → size. */
async function listed(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of objects.list('data/')) out.set(o.key, o.size);
  return out;
}

/** Produces `values` as one batch and returns the one segment object its flush wrote. */
async function produceObject(topic: string, partition: number, values: string[]): Promise<string> {
  const before = await listed();
  await produceOk(client, topic, partition, values);
  const added = [...(await listed()).keys()].filter((k) => !before.has(k));
  expect(added).toHaveLength(1);
  return added[0]!;
}

/** The samples of /metrics: `name` or `name{labels}` → value. */
async function metrics(): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Bytes of the runs indexed for a topic's partitions, read from Redis. */
async function indexedBytes(topicId: string, partitions: number): Promise<number> {
  let sum = 0;
  for (let partition = 0; partition < partitions; partition++) {
    for (const member of await redis.zrange(partitionKeys({ topicId, partition }).idx, 0, -1)) sum += parseRun(member).byteLength;
  }
  return sum;
}

describe('object garbage collection on a broker', () => {
  it('deletes the objects only DeleteRecords and DeleteTopics released; the rest reads back exactly', async () => {
    const kept = `kept-${randomBytes(3).toString('hex')}`;
    const dropped = `dropped-${randomBytes(3).toString('hex')}`;
    const keptId = await createTopic(client, kept, 2);
    await createTopic(client, dropped, 1);
    // One produce, one flush, one object: each object below holds one partition's batch.
    const trimmedAway = await produceObject(kept, 0, ['k0-a', 'k0-b']);
    const k0 = await produceObject(kept, 0, ['k0-c']);
    const k1a = await produceObject(kept, 1, ['k1-a']);
    const k1b = await produceObject(kept, 1, ['k1-b', 'k1-c']);
    const droppedA = await produceObject(dropped, 0, ['d-a']);
    const droppedB = await produceObject(dropped, 0, ['d-b']);
    const sizes = await listed();

    const del = await client.send(21, 2, { topics: [{ name: kept, partitions: [{ partitionIndex: 0, offset: 2n }] }], timeoutMs: 5000 });
    expect(del.topics[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.NONE, lowWatermark: 2n });
    const delTopic = await client.send(20, 5, { topics: [], topicNames: [dropped], timeoutMs: 5000 });
    expect(delTopic.responses[0]!.errorCode).toBe(ErrorCode.NONE);

    const remaining = await waitFor(
      'the released objects to be deleted',
      () => listed(),
      (now) => !now.has(trimmedAway) && !now.has(droppedA) && !now.has(droppedB),
      30_000,
    );
    expect([...remaining.keys()].sort()).toEqual([k0, k1a, k1b].sort());

    expect(await fetchFrom(client, kept, 0, 0n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    expect(await fetchFrom(client, kept, 0, 2n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [2], values: ['k0-c'] });
    expect(await fetchFrom(client, kept, 1, 0n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [0, 1, 2], values: ['k1-a', 'k1-b', 'k1-c'] });

    // The deleting cycle counts right after its delete request returns; the gauges settle
    // once a cycle has found nothing pending.
    const m = await waitFor(
      'the GC metrics of a cycle after the deletion',
      () => metrics(),
      (s) => s.get('strata_object_gc_deleted_objects_total') === 3 && s.get('strata_object_gc_pending_objects') === 0,
      30_000,
    );
    expect(m.get('strata_object_gc_cycles_total')).toBeGreaterThan(0);
    expect(m.get('strata_object_gc_deleted_bytes_total')).toBe(sizes.get(trimmedAway)! + sizes.get(droppedA)! + sizes.get(droppedB)!);
    expect(m.get('strata_objects_live')).toBe(3);
    expect(m.get('strata_objects_live_bytes')).toBe(sizes.get(k0)! + sizes.get(k1a)! + sizes.get(k1b)!);
    expect(m.get(`strata_topic_stored_bytes{topic="${kept}"}`)).toBe(await indexedBytes(keptId, 2));
    expect(m.has(`strata_topic_stored_bytes{topic="${dropped}"}`)).toBe(false);
    // GC's own requests: the three objects in one to three delete requests (a cycle may fall
    // between the DeleteRecords and the DeleteTopics), a LIST page per cycle (more when a
    // cycle was listing as the metrics were read), nothing else.
    const deletes = m.get('strata_job_object_store_requests_total{job="object-gc",op="delete"}')!;
    expect(deletes).toBeGreaterThanOrEqual(1);
    expect(deletes).toBeLessThanOrEqual(3);
    expect(m.get('strata_job_object_store_requests_total{job="object-gc",op="list"}')).toBeGreaterThanOrEqual(m.get('strata_object_gc_cycles_total')!);
    expect(m.get('strata_job_object_store_requests_total{job="object-gc",op="put"}')).toBe(0);
    expect(m.get('strata_job_object_store_requests_total{job="object-gc",op="get"}')).toBe(0);
  });
});
