/**
 * Brokers SIGKILLed while object compaction and object GC run under produce and consume load
 * (docs/architecture.md §4.4, §4.5, §12). Two brokers run as child processes with the jobs on
 * short intervals and a short GC grace; a producer writes uniquely numbered records to a
 * topic that keeps everything and to one whose log start a DeleteRecords loop keeps moving
 * (so objects shared by both topics become partly dead), a reader fetches throughout, and the
 * brokers are killed and restarted in turn. Afterwards:
 *
 * - every acknowledged record of the kept topic reads back exactly once, offsets contiguous;
 * - no fetch failed with anything but a lost connection;
 * - every index entry of every partition names an object that exists;
 * - compaction did rewrite runs (merged entries exist) and GC did delete objects;
 * - a compacted topic written all along keeps, per key, a value no older than the newest
 *   acknowledged one, at increasing offsets, once the log cleaner has removed older ones.
 *
 * Once on the file store and once on s3rver. Needs the built CLI in dist/.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { parseRun } from '../../src/log/partition-store.js';
import { openObjectStore } from '../../src/storage/index.js';
import { startCluster, type Cluster, type StorageKind } from '../helpers/cluster.js';
import { batch, expectAcknowledgedStored, fetchBody, produceBody } from '../helpers/faults.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { createTopic } from '../helpers/topics.js';
import { sleep, waitFor } from '../helpers/wait.js';

const KEEP_PARTITIONS = 3;
const TRIM_PARTITIONS = 2;
const KILLS = 4;

const JOB_FLAGS = [
  '--object-compaction-interval-ms', '200',
  '--object-compaction-min-age-ms', '0',
  '--object-compaction-window-ms', '300',
  '--object-gc-interval-ms', '300',
  '--object-gc-grace-ms', '5000',
  '--commit-deadline-ms', '2000',
  '--log-cleaner-interval-ms', '300',
];

/** Keys of the compacted topic: each is overwritten every few rounds. */
const COMPACT_KEYS = 5;

/** Object compaction's output objects (`…-c<seq>.seg`); flushes write `…-<seq>.seg`. */
const COMPACTED = /-c\d{8}\.seg$/;

let cluster: Cluster | null = null;

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

/** Lists every object key under `data/` in the cluster's store. */
async function listObjects(storageUrl: string): Promise<Set<string>> {
  const store = openObjectStore(storageUrl);
  try {
    const keys = new Set<string>();
    for await (const o of store.list('data/')) keys.add(o.key);
    return keys;
  } finally {
    await store.close();
  }
}

/** Every run of every partition index in Redis. */
async function allRuns(redisUrl: string): Promise<{ key: string; member: string; objectKey: string }[]> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const out: { key: string; member: string; objectKey: string }[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '{p:*}:idx', 'COUNT', 1000);
      cursor = next;
      for (const key of keys) for (const member of await redis.zrange(key, 0, -1)) out.push({ key, member, objectKey: parseRun(member).objectKey });
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

/** A connection to whichever broker answers first, starting after `after`. */
async function connectAny(c: Cluster, after: number, clientId: string): Promise<{ client: RawClient; index: number }> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const index = (after + 1 + attempt) % c.brokers.length;
    try {
      return { client: await RawClient.connect(`127.0.0.1:${c.brokers[index]!.port}`, clientId), index };
    } catch {
      await sleep(50);
    }
  }
  throw new Error('no broker accepted a connection');
}

async function scenario(storage: StorageKind): Promise<void> {
  const c = await startCluster({ processes: true, brokers: 2, storage, brokerArgs: JOB_FLAGS });
  cluster = c;
  const tag = randomBytes(3).toString('hex');
  const keep = `lc-keep-${tag}`;
  const trim = `lc-trim-${tag}`;
  const admin = await RawClient.connect(c.bootstrap, 'lc-admin');
  const keepId = await createTopic(admin, keep, KEEP_PARTITIONS);
  await createTopic(admin, trim, TRIM_PARTITIONS);
  const compacted = `lc-compact-${tag}`;
  await createTopic(admin, compacted, 1, { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.01' });
  admin.close();
  /** Compacted topic: per key, every round number sent and the highest acknowledged. */
  const compactSent = new Map<string, Set<number>>();
  const compactAcked = new Map<string, number>();
  let compactAckedRecords = 0;

  const sent = new Set<string>();
  const acknowledged = new Set<string>();
  let producing = true;
  const readerErrors: string[] = [];
  let gcSeen = false;

  // Producer: one request per round naming every partition of both topics, so each object
  // holds chunks of both. A failed request is not retried (its records are sent, maybe stored).
  const producer = (async () => {
    let conn = await connectAny(c, -1, 'lc-producer');
    for (let n = 0; producing; n++) {
      const values = (topic: string, p: number) => [`${topic}-${p}-${n}-a`, `${topic}-${p}-${n}-b`];
      const keepParts = Array.from({ length: KEEP_PARTITIONS }, (_, p) => ({ partition: p, records: batch(values(keep, p)) }));
      const trimParts = Array.from({ length: TRIM_PARTITIONS }, (_, p) => ({ partition: p, records: batch(values(trim, p)) }));
      for (let p = 0; p < KEEP_PARTITIONS; p++) for (const v of values(keep, p)) sent.add(v);
      const key = `key-${n % COMPACT_KEYS}`;
      compactSent.set(key, (compactSent.get(key) ?? new Set()).add(n));
      const compactBatch = encodeBatchSync([{ key: Buffer.from(key), value: Buffer.from(String(n)), timestamp: Date.now() }]);
      try {
        const [a, , k] = await Promise.all([
          conn.client.send(0, 9, produceBody(keep, keepParts)),
          conn.client.send(0, 9, produceBody(trim, trimParts)),
          conn.client.send(0, 9, produceBody(compacted, [{ partition: 0, records: compactBatch }])),
        ]);
        a.responses[0]!.partitionResponses.forEach((r) => {
          if (r.errorCode === ErrorCode.NONE) for (const v of values(keep, r.index)) acknowledged.add(v);
        });
        if (k.responses[0]!.partitionResponses[0]!.errorCode === ErrorCode.NONE) {
          compactAcked.set(key, Math.max(compactAcked.get(key) ?? -1, n));
          compactAckedRecords++;
        }
      } catch {
        conn.client.close();
        conn = await connectAny(c, conn.index, 'lc-producer');
      }
      await sleep(20);
    }
    conn.client.close();
  })();

  // DeleteRecords on the trimmed topic up to its high watermark, over and over.
  const trimmer = (async () => {
    let conn = await connectAny(c, 0, 'lc-trimmer');
    while (producing) {
      try {
        await conn.client.send(21, 2, { topics: [{ name: trim, partitions: Array.from({ length: TRIM_PARTITIONS }, (_, p) => ({ partitionIndex: p, offset: -1n })) }], timeoutMs: 5000 });
      } catch {
        conn.client.close();
        conn = await connectAny(c, conn.index, 'lc-trimmer');
      }
      await sleep(100);
    }
    conn.client.close();
  })();

  // Reader: fetches the kept topic from the start, over and over; any error code is a failure.
  const reader = (async () => {
    let conn = await connectAny(c, 0, 'lc-reader');
    const positions = new Array<number>(KEEP_PARTITIONS).fill(0);
    while (producing) {
      try {
        const res = await conn.client.send(1, 11, fetchBody(keep, positions.map((fetchOffset, partition) => ({ partition, fetchOffset })), 100, 1));
        for (const p of res.responses[0]!.partitions) {
          if (p.errorCode !== ErrorCode.NONE) {
            readerErrors.push(`partition ${p.partitionIndex} at ${positions[p.partitionIndex]}: error ${p.errorCode}`);
            continue;
          }
          for (const view of splitBatches((p.records as Buffer | null) ?? Buffer.alloc(0))) positions[p.partitionIndex] = view.baseOffset + view.lastOffsetDelta + 1;
          // Start over now and then, so old (compacted, soon collected) runs are read too.
          if (positions[p.partitionIndex]! > 200) positions[p.partitionIndex] = 0;
        }
      } catch {
        conn.client.close();
        conn = await connectAny(c, conn.index, 'lc-reader');
      }
    }
    conn.client.close();
  })();

  try {
    let before = new Set<string>();
    for (let k = 0; k < KILLS; k++) {
      await sleep(1500);
      // Objects written before the first kill: compaction and DeleteRecords leave them dead.
      if (k === 0) before = await listObjects(c.storageUrl);
      const victim = k % c.brokers.length;
      await c.brokers[victim]!.kill();
      await sleep(700);
      await c.restartBroker(victim);
    }
    // Let the jobs run on the restarted brokers (each partition's leader hint settles once the
    // killed brokers' registrations expire) until compaction has merged runs of the kept
    // topic and GC has deleted an object written before the kills.
    await waitFor(
      'object compaction to merge runs of the kept topic',
      async () => (await allRuns(c.redis.url)).filter((r) => r.key.includes(keepId) && COMPACTED.test(r.objectKey)).length,
      (merged) => merged > 0,
      // A group's rewrite reads each of its runs with a ranged GET: slow on s3rver.
      90_000,
      300,
    );
    // And until the log cleaner has removed overwritten records of the compacted topic.
    await waitFor(
      'the log cleaner to remove overwritten records',
      async () => (await readAll(c.bootstrap, compacted)).length,
      (left) => left < compactAckedRecords,
      60_000,
      300,
    );
    await waitFor(
      'object GC to delete an object written before the kills',
      async () => {
        const now = await listObjects(c.storageUrl);
        gcSeen = [...before].some((k) => !now.has(k));
        return { before: before.size, now: now.size };
      },
      () => gcSeen,
      30_000,
      300,
    );
  } finally {
    producing = false;
    await Promise.all([producer, trimmer, reader]);
  }

  expect(readerErrors).toEqual([]);
  expect(acknowledged.size).toBeGreaterThan(0);
  const stored = await readAll(c.bootstrap, keep);
  expectAcknowledgedStored(stored, acknowledged, sent, { exactlyOnce: true });

  // The compacted topic: offsets increase; per key, the surviving value is one that was sent
  // and no older than the newest acknowledged one (a later, unacknowledged send may have been
  // stored too); every acknowledged key survives.
  const survivors = await readAll(c.bootstrap, compacted);
  const offsets = survivors.map((r) => r.offset);
  expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
  expect(new Set(offsets).size).toBe(offsets.length);
  const latest = new Map<string, number>();
  for (const r of survivors) latest.set(r.key!, Number(r.value));
  for (const [key, acked] of compactAcked) {
    expect(latest.has(key), `key ${key} survives`).toBe(true);
    expect(latest.get(key)!, `newest value of ${key}`).toBeGreaterThanOrEqual(acked);
    expect(compactSent.get(key)!.has(latest.get(key)!), `value of ${key} was sent`).toBe(true);
  }

  // Stop every broker first: a job that swaps a new object in between the listing and the
  // index read below would otherwise look like an entry without its object.
  await Promise.all(c.brokers.map((b) => b.stop()));
  const runs = await allRuns(c.redis.url);
  const objects = await listObjects(c.storageUrl);
  const dangling = runs.filter((r) => !objects.has(r.objectKey)).map((r) => `${r.key} ${r.member}`);
  expect(dangling).toEqual([]);
  // Compaction rewrote runs: some of the kept topic's entries name its output objects.
  expect(runs.some((r) => r.key.includes(keepId) && COMPACTED.test(r.objectKey))).toBe(true);
  expect(gcSeen).toBe(true);
}

describe('SIGKILL of brokers while compaction and GC run', () => {
  it('file store: no acknowledged record lost, no failed read, no index entry without its object', async () => {
    await scenario('file');
  }, 180_000);

  it('s3rver: no acknowledged record lost, no failed read, no index entry without its object', async () => {
    await scenario('s3');
  }, 240_000);
});
