// Object garbage collection against a real Redis and a real file store (docs/architecture.md
// §4.4): what a cycle deletes and when, driven by runOnce() on a clock the test sets, so the
// grace period is crossed without waiting; the commit deadline that makes it safe; and reads
// that plan again when an object they planned to read was deleted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { decodeBatchSync, encodeBatchSync, splitBatches, type RecordBatchView } from '../../wire/records/index.js';
import { TopicStore, type TopicInfo } from '../../src/cluster/topic-store.js';
import { ConfigError, parseBrokerConfig } from '../../src/config.js';
import { GLOBAL_KEYS, partitionKeys } from '../../src/coordination/keys.js';
import { BrokerTimeoutError, ObjectNotFoundError } from '../../src/errors.js';
import { commitDeadlinePassed } from '../../src/log/commit-deadline.js';
import { ObjectGcJob, type GcTopic, type ObjectGcJobOptions, type ObjectGcStats } from '../../src/log/object-gc.js';
import { ObjectGcStore } from '../../src/log/object-gc-store.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import type { PartitionRef, PartitionStore } from '../../src/log/partition-store.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { MemoryObjectStore } from '../../src/storage/memory.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { freshPartition, plain, withPartitionStore } from '../helpers/partition-store.js';

const GRACE_MS = 300_000;
const START_MS = 1_700_000_000_000;

let redis: Redis;
let state: PartitionStore;
let topicStore: TopicStore;
withPartitionStore((env) => {
  ({ redis, state } = env);
  topicStore = new TopicStore(redis, silentLogger());
});

let dir: string;
let store: FileObjectStore;
/** Object keys of this test: unique, since the file's tests share one Redis and its indexes. */
let tag: string;
/** The clock every job of the test reads. */
let nowMs: number;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'strata-gc-'));
  store = new FileObjectStore(`file://${dir}`, { fsync: false });
  tag = randomBytes(4).toString('hex');
  nowMs = START_MS;
  await redis.del(GLOBAL_KEYS.gcUnreferenced);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function key(name: string): string {
  return `data/2024-05-01/${tag}-${name}.seg`;
}

/** Puts an object of `size` bytes, as a flush's upload would. */
async function put(name: string, size = 100): Promise<string> {
  const k = key(name);
  await store.put(k, Buffer.alloc(size, 7));
  return k;
}

async function exists(k: string, on: ObjectStore = store): Promise<boolean> {
  return (await on.head(k)) !== null;
}

/** Commits one run of ten records (byteLength `bytes`) of `objectKey` to each partition. */
async function commitRun(objectKey: string, refs: readonly PartitionRef[], bytes = 100): Promise<void> {
  await state.commit(
    objectKey,
    refs.map((ref) => ({ ref, batches: [plain(0, bytes, 9)] })),
  );
}

async function createTopic(name: string, partitions: number): Promise<TopicInfo> {
  const res = await topicStore.create(`${name}-${tag}`, partitions, 1, {}, { perTopic: 100, cluster: 100_000 });
  if (res.topic === null) throw new Error(`topic ${name} not created: ${res.errorMessage}`);
  return res.topic;
}

function refsOf(topic: TopicInfo): PartitionRef[] {
  return Array.from({ length: topic.partitions }, (_, partition) => ({ topicId: topic.topicId, partition }));
}

function gcJob(overrides: Partial<ObjectGcJobOptions> = {}, on: ObjectStore = store): ObjectGcJob {
  return new ObjectGcJob({
    store: on,
    topics: topicStore,
    log: state,
    state: new ObjectGcStore(redis),
    runsHere: () => true,
    intervalMs: 60_000,
    graceMs: GRACE_MS,
    now: () => nowMs,
    ...overrides,
  });
}

/** Runs one cycle at `atMs`. */
async function cycleAt(job: ObjectGcJob, atMs: number): Promise<ObjectGcStats> {
  nowMs = atMs;
  await job.runOnce();
  return job.stats();
}

async function remembered(): Promise<Record<string, string>> {
  return redis.hgetall(GLOBAL_KEYS.gcUnreferenced);
}

describe('ObjectGcJob', () => {
  it('deletes an object that was never committed once the grace has passed, and not before', async () => {
    // A broker that died between its PUT and its commit leaves exactly this.
    const orphan = await put('orphan', 123);
    const job = gcJob();

    let stats = await cycleAt(job, START_MS);
    expect(await exists(orphan)).toBe(true);
    expect(stats).toMatchObject({ cycles: 1, deletedObjects: 0, deletedBytes: 0, last: { liveObjects: 0, liveBytes: 0, pendingObjects: 1 } });
    expect(await remembered()).toEqual({ [orphan]: String(START_MS) });

    stats = await cycleAt(job, START_MS + GRACE_MS - 1);
    expect(await exists(orphan)).toBe(true);
    expect(stats).toMatchObject({ cycles: 2, deletedObjects: 0, last: { pendingObjects: 1 } });

    stats = await cycleAt(job, START_MS + GRACE_MS);
    expect(await exists(orphan)).toBe(false);
    expect(stats).toMatchObject({ cycles: 3, deletedObjects: 1, deletedBytes: 123, last: { pendingObjects: 0 } });
    expect(await remembered()).toEqual({});
  });

  it('keeps objects that committed runs reference, however many cycles pass, and counts them', async () => {
    const topic = await createTopic('kept', 2);
    const [p0, p1] = refsOf(topic);
    const a = await put('a', 300);
    const b = await put('b', 500);
    await commitRun(a, [p0!]);
    await commitRun(b, [p0!, p1!], 40);
    const job = gcJob();
    for (const at of [START_MS, START_MS + GRACE_MS, START_MS + 10 * GRACE_MS, START_MS + 100 * GRACE_MS]) {
      const stats = await cycleAt(job, at);
      expect(stats.deletedObjects).toBe(0);
      expect(stats.last).toMatchObject({ liveObjects: 2, liveBytes: 800, pendingObjects: 0 });
      expect(stats.last!.topics.find((t) => t.name === topic.name)).toEqual({ name: topic.name, storedBytes: 180, runs: 3 });
    }
    expect(await exists(a)).toBe(true);
    expect(await exists(b)).toBe(true);
    expect(await remembered()).toEqual({});
  });

  it('deletes an object once DeleteRecords has dropped every run that named it, after the grace', async () => {
    const topic = await createTopic('trimmed', 1);
    const [ref] = refsOf(topic);
    const first = await put('first');
    const second = await put('second');
    await commitRun(first, [ref!]);
    await commitRun(second, [ref!]);
    const job = gcJob();
    expect((await cycleAt(job, START_MS)).last).toMatchObject({ liveObjects: 2, pendingObjects: 0 });

    expect(await state.deleteRecords(ref!, 10)).toEqual({ errorCode: ErrorCode.NONE, logStart: 10 });
    const seen = START_MS + 1000;
    expect((await cycleAt(job, seen)).last).toMatchObject({ liveObjects: 1, pendingObjects: 1 });
    await cycleAt(job, seen + GRACE_MS - 1);
    expect(await exists(first)).toBe(true);

    const stats = await cycleAt(job, seen + GRACE_MS);
    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(true);
    expect(stats).toMatchObject({ deletedObjects: 1, last: { liveObjects: 1, pendingObjects: 0 } });
  });

  it('keeps an object two partitions share until both have dropped it', async () => {
    const topic = await createTopic('shared', 2);
    const [p0, p1] = refsOf(topic);
    const shared = await put('shared');
    const later = await put('later');
    // One flush, two partitions: one object.
    await commitRun(shared, [p0!, p1!]);
    await commitRun(later, [p0!, p1!]);
    const job = gcJob();

    await state.deleteRecords(p0!, 10);
    await cycleAt(job, START_MS);
    await cycleAt(job, START_MS + 2 * GRACE_MS);
    expect(await exists(shared)).toBe(true);
    expect(await remembered()).toEqual({});

    await state.deleteRecords(p1!, 10);
    const seen = START_MS + 3 * GRACE_MS;
    await cycleAt(job, seen);
    expect(await remembered()).toEqual({ [shared]: String(seen) });
    await cycleAt(job, seen + GRACE_MS);
    expect(await exists(shared)).toBe(false);
    expect(await exists(later)).toBe(true);
  });

  it("deletes a deleted topic's objects and keeps the other topics'", async () => {
    const doomed = await createTopic('doomed', 2);
    const kept = await createTopic('survivor', 1);
    const x = await put('x');
    const y = await put('y');
    const z = await put('z');
    await commitRun(x, refsOf(doomed));
    await commitRun(y, [refsOf(doomed)[1]!]);
    await commitRun(z, refsOf(kept));
    const job = gcJob();
    await cycleAt(job, START_MS);

    // What DeleteTopics does: the metadata first, then every partition's state.
    await topicStore.delete(doomed);
    for (const ref of refsOf(doomed)) await state.deletePartition(ref);
    const seen = START_MS + 1;
    await cycleAt(job, seen);
    expect(await exists(x)).toBe(true);
    const stats = await cycleAt(job, seen + GRACE_MS);
    expect(await exists(x)).toBe(false);
    expect(await exists(y)).toBe(false);
    expect(await exists(z)).toBe(true);
    expect(stats.deletedObjects).toBe(2);
    expect(stats.last!.topics.some((t) => t.name === doomed.name)).toBe(false);
  });

  it('forgets an object found unreferenced once its commit arrives, and keeps it', async () => {
    // A flush whose commit lands between two cycles (within the commit deadline).
    const topic = await createTopic('late', 1);
    const late = await put('late');
    const job = gcJob();
    await cycleAt(job, START_MS);
    expect(await remembered()).toEqual({ [late]: String(START_MS) });

    await commitRun(late, refsOf(topic));
    const stats = await cycleAt(job, START_MS + GRACE_MS);
    expect(await exists(late)).toBe(true);
    expect(stats.last).toMatchObject({ liveObjects: 1, pendingObjects: 0 });
    expect(await remembered()).toEqual({});
  });

  it('forgets a remembered object that is no longer listed', async () => {
    const gone = await put('gone');
    const job = gcJob();
    await cycleAt(job, START_MS);
    await store.delete([gone]);
    await cycleAt(job, START_MS + 1);
    expect(await remembered()).toEqual({});
  });

  it('sends at most maxDeleteRequests delete requests of deleteBatch keys per cycle', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) keys.push(await put(`o${i}`, 10));
    const job = gcJob({ deleteBatch: 2, maxDeleteRequests: 2 });
    await cycleAt(job, START_MS);
    store.resetStats();

    let stats = await cycleAt(job, START_MS + GRACE_MS);
    expect(store.stats().deletes).toBe(2);
    expect(stats).toMatchObject({ deletedObjects: 4, deletedBytes: 40, last: { pendingObjects: 1 } });
    // Keys are listed in order, so the last one waits for the next cycle.
    expect(await Promise.all(keys.map((k) => exists(k)))).toEqual([false, false, false, false, true]);

    stats = await cycleAt(job, START_MS + GRACE_MS + 1);
    expect(stats).toMatchObject({ deletedObjects: 5, deletedBytes: 50, last: { pendingObjects: 0 } });
    expect(await exists(keys[4]!)).toBe(false);
  });

  it('runs no cycle and shows no gauges on a broker that does not own the job', async () => {
    const orphan = await put('not-mine');
    let mine = true;
    const job = gcJob({ runsHere: () => mine });
    await cycleAt(job, START_MS);
    expect(job.stats().last).not.toBeNull();

    mine = false;
    store.resetStats();
    const stats = await cycleAt(job, START_MS + GRACE_MS);
    expect(stats).toEqual({ cycles: 1, deletedObjects: 0, deletedBytes: 0, last: null });
    expect(store.stats()).toMatchObject({ lists: 0, deletes: 0 });
    expect(await exists(orphan)).toBe(true);
  });

  it('logs one line and deletes nothing when the index cannot be scanned', async () => {
    const orphan = await put('unscanned');
    const good = gcJob();
    await cycleAt(good, START_MS);
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((obj: unknown) => void warnings.push(obj)) as typeof logger.warn;
    const broken = gcJob({
      topics: {
        readAll: async (): Promise<GcTopic[]> => {
          throw new Error('topics unreadable');
        },
      },
    });
    broken.start(logger);
    await cycleAt(broken, START_MS + GRACE_MS);
    await broken.stop();
    expect(warnings).toEqual([{ err: 'topics unreadable' }]);
    expect(broken.stats()).toEqual({ cycles: 0, deletedObjects: 0, deletedBytes: 0, last: null });
    expect(await exists(orphan)).toBe(true);
  });
});

/** One batch of `values`, as a producer would send it. */
function batchOf(values: string[]): RecordBatchView[] {
  return splitBatches(encodeBatchSync(values.map((v, i) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1000 + i }))));
}

/** A partition log over a memory store with both caches off, so every read GETs the store. */
function memoryLog(memory: MemoryObjectStore, commitDeadlineMs?: number): PartitionLog {
  const log = new PartitionLog({
    partitions: state,
    store: memory,
    writeCacheBytes: 0,
    blockCacheBytes: 0,
    blockSizeBytes: 4096,
    maxDecompressedBatchBytes: 1 << 20,
    flushMs: 1,
    flushBytes: 1 << 20,
    commitDeadlineMs,
  });
  log.start(1, silentLogger());
  return log;
}

describe('commit deadline', () => {
  it('is passed only strictly after the deadline', () => {
    expect(commitDeadlinePassed(1000, 500, 1500)).toBe(false);
    expect(commitDeadlinePassed(1000, 500, 1501)).toBe(true);
  });

  it('must be shorter than the GC grace, or the broker does not start', () => {
    const base = ['--redis', 'redis://127.0.0.1:1', '--storage', 'memory://'];
    expect(parseBrokerConfig(base, {})).toMatchObject({ commitDeadlineMs: 60_000, objectGcGraceMs: 300_000, objectGcIntervalMs: 60_000 });
    const config = (): unknown => parseBrokerConfig([...base, '--commit-deadline-ms', '300000'], {});
    expect(config).toThrow(ConfigError);
    expect(config).toThrow(
      /^--object-gc-grace-ms 300000 is not greater than --commit-deadline-ms 300000; raise the grace \(by minutes, to cover clock differences\) or lower the deadline$/,
    );
  });

  it('fails a flush whose upload outlasts it: the produce is rejected, nothing is committed, GC takes the object', async () => {
    const memory = new MemoryObjectStore();
    memory.faults.setLatency(300, ['put']);
    const log = memoryLog(memory, 100);
    const ref = freshPartition();
    const err = await log.append(ref, batchOf(['a', 'b'])).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BrokerTimeoutError);
    expect(err).toMatchObject({ code: ErrorCode.REQUEST_TIMED_OUT, retriable: true });
    expect(await state.offsets([ref])).toEqual([{ hw: 0, logStart: 0, lso: 0 }]);
    expect(await redis.exists(partitionKeys(ref).idx, partitionKeys(ref).meta)).toBe(0);

    const objects: string[] = [];
    for await (const o of memory.list('data/')) objects.push(o.key);
    expect(objects).toHaveLength(1);
    const job = gcJob({}, memory);
    await cycleAt(job, START_MS);
    await cycleAt(job, START_MS + GRACE_MS);
    expect(await exists(objects[0]!, memory)).toBe(false);
  });
});

describe('reads racing object deletion', () => {
  /** Two flushes to one partition: offsets 0–2 in the first object, 3–4 in the second. */
  async function twoObjects(): Promise<{ log: PartitionLog; memory: MemoryObjectStore; ref: PartitionRef; keys: string[] }> {
    const memory = new MemoryObjectStore();
    const log = memoryLog(memory);
    const ref = freshPartition();
    await log.append(ref, batchOf(['r0', 'r1', 'r2']));
    await log.append(ref, batchOf(['r3', 'r4']));
    const runs = (await state.runsFrom(ref, 0, 10)).runs;
    expect(runs.map((r) => [r.base, r.last])).toEqual([
      [0, 2],
      [3, 4],
    ]);
    return { log, memory, ref, keys: runs.map((r) => r.objectKey) };
  }

  function values(records: Buffer[]): { offset: number; value: string }[] {
    return records.flatMap((b) => decodeBatchSync(b).records.map((r) => ({ offset: r.offset, value: r.value!.toString() })));
  }

  it('answers OFFSET_OUT_OF_RANGE when the planned object went with DeleteRecords', async () => {
    const { log, memory, ref, keys } = await twoObjects();
    const plan = await log.plan({ ref, fetchOffset: 0, readCommitted: false });
    await state.deleteRecords(ref, 3);
    await memory.delete([keys[0]!]);
    expect(await log.readPlanned(plan, 1 << 20, true)).toEqual({
      errorCode: ErrorCode.OFFSET_OUT_OF_RANGE,
      offsets: { hw: 5, logStart: 3, lso: 5 },
      records: [],
      bytes: 0,
    });
  });

  it('plans again and reads the records from where the index now points', async () => {
    const { log, memory, ref, keys } = await twoObjects();
    const plan = await log.plan({ ref, fetchOffset: 3, readCommitted: false });
    // What compaction does: the same bytes in a new object, the index entry swapped, and
    // later GC deletes the old object.
    const moved = keys[1]!.replace(/\.seg$/, '-c1.seg');
    await memory.put(moved, await memory.get(keys[1]!));
    const idx = partitionKeys(ref).idx;
    const [member] = await redis.zrangebyscore(idx, 4, 4);
    await redis.multi().zrem(idx, member!).zadd(idx, 4, member!.replace(keys[1]!, moved)).exec();
    await memory.delete([keys[1]!]);

    const result = await log.readPlanned(plan, 1 << 20, true);
    expect(result.errorCode).toBe(ErrorCode.NONE);
    expect(values(result.records)).toEqual([
      { offset: 3, value: 'r3' },
      { offset: 4, value: 'r4' },
    ]);
    expect(values((await log.read({ ref, fetchOffset: 0, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false })).records).map((r) => r.value)).toEqual([
      'r0',
      'r1',
      'r2',
      'r3',
      'r4',
    ]);
  });

  it('gives up with ObjectNotFoundError after three tries when the index still names the object', async () => {
    const { log, memory, ref, keys } = await twoObjects();
    await memory.delete([keys[1]!]);
    memory.resetStats();
    const err = await log.read({ ref, fetchOffset: 3, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ObjectNotFoundError);
    expect(memory.stats().gets).toBe(3);
  });
});
