// Object garbage collection racing commits and itself, against a real Redis and a real file
// store (docs/architecture.md §4.4; the safety argument is the header of src/log/object-gc.ts):
// a commit that lands in an index the scan has already passed, and two brokers' jobs running
// cycles at the same time while membership changes. The jobs run on a test clock standing for
// Redis's (GC's default), so the grace period is crossed without waiting; commit deadlines are
// carried over to Redis's real clock, on which commit.lua checks them.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { TopicStore, type TopicInfo } from '../../src/cluster/topic-store.js';
import { GLOBAL_KEYS } from '../../src/coordination/keys.js';
import { DEFAULT_COMMIT_DEADLINE_MS } from '../../src/log/commit-deadline.js';
import { ObjectGcJob, type ObjectGcJobOptions } from '../../src/log/object-gc.js';
import { ObjectGcStore } from '../../src/log/object-gc-store.js';
import { parseRun, PartitionStore, type PartitionCommitResult, type PartitionRef } from '../../src/log/partition-store.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import type { RedisServer } from '../helpers/redis.js';
import { commandClient, plain, withPartitionStore } from '../helpers/partition-store.js';

const GRACE_MS = 300_000;
const START_MS = 1_700_000_000_000;
/** Partitions per pipeline of `PartitionStore.forEachRun` (WALK_PARTITIONS in partition-store.ts). */
const WALK_PARTITIONS = 128;

let server: RedisServer;
let redis: Redis;
let state: PartitionStore;
let topicStore: TopicStore;
withPartitionStore((env) => {
  ({ server, redis, state } = env);
  topicStore = new TopicStore(redis, silentLogger());
});

let dir: string;
let store: FileObjectStore;
/** Object keys of this test: unique, since the file's tests share one Redis. */
let tag: string;
/** The clock every job of the test reads (Redis's TIME in a broker). */
let nowMs: number;
/** Topics this test created; removed after it, so that the next test's scan sees only its own. */
let created: TopicInfo[];

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'strata-gc-races-'));
  store = new FileObjectStore(`file://${dir}`, { fsync: false });
  tag = randomBytes(4).toString('hex');
  nowMs = START_MS;
  created = [];
  await redis.del(GLOBAL_KEYS.gcUnreferenced);
});

afterEach(async () => {
  for (const topic of created) {
    await topicStore.delete(topic);
    await Promise.all(refsOf(topic).map((ref) => state.deletePartition(ref)));
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Puts a segment object, as a flush's upload would. */
async function put(name: string): Promise<string> {
  const key = `data/2024-05-01/${tag}-${name}.seg`;
  await store.put(key, Buffer.alloc(100, 7));
  return key;
}

async function exists(key: string): Promise<boolean> {
  return (await store.head(key)) !== null;
}

/** Commits one run of ten records of `objectKey` to each of `refs`, by `commitByMs` on Redis's clock (-1: no deadline). */
function commitRun(objectKey: string, refs: readonly PartitionRef[], commitByMs = -1): Promise<PartitionCommitResult[]> {
  return state.commit(
    objectKey,
    refs.map((ref) => ({ ref, batches: [plain(0, 100, 9)] })),
    commitByMs,
  );
}

/**
 * The commit-by time, on Redis's clock, of an upload that started at `uploadedAtMs` on the test
 * clock: the deadline still left at the test clock's now, counted from Redis's now.
 */
async function commitByOf(uploadedAtMs: number): Promise<number> {
  return (await state.timeMs()) + (uploadedAtMs + DEFAULT_COMMIT_DEADLINE_MS - nowMs);
}

async function createTopic(name: string, partitions: number): Promise<TopicInfo> {
  const res = await topicStore.create(`${name}-${tag}`, partitions, 1, {}, { perTopic: 1000, cluster: 100_000 });
  if (res.topic === null) throw new Error(`topic ${name} not created: ${res.errorMessage}`);
  created.push(res.topic);
  return res.topic;
}

function refsOf(topic: TopicInfo): PartitionRef[] {
  return Array.from({ length: topic.partitions }, (_, partition) => ({ topicId: topic.topicId, partition }));
}

function gcJob(overrides: Partial<ObjectGcJobOptions> = {}): ObjectGcJob {
  return new ObjectGcJob({
    store,
    topics: topicStore,
    log: state,
    state: new ObjectGcStore(redis),
    runsHere: () => true,
    // start() is called only to hand the job a logger; no timed cycle may run during a test.
    intervalMs: 3_600_000,
    graceMs: GRACE_MS,
    now: () => nowMs,
    ...overrides,
  });
}

async function remembered(): Promise<Record<string, string>> {
  return redis.hgetall(GLOBAL_KEYS.gcUnreferenced);
}

describe('a commit landing behind the scan cursor', () => {
  const PARTITIONS = 300;
  /** How long a scan takes on the test clock: first sightings are taken when it ends. */
  const SCAN_MS = 5000;

  /** What the scan wrapper saw and did. */
  interface ScanTrace {
    /** The index of the first partition of each page of runs the scan visited. */
    pageStarts: number[];
    /** The answer to the commit sent during the first cycle's scan. */
    commit?: PartitionCommitResult[];
  }

  /**
   * The partition log's walk, except that in the first cycle, once the scan has visited its
   * first page (partition 0 among them), it sends the commit of `objectKey`'s run to partition
   * 0 and waits for it before the scan ends. Every scan advances the test clock by SCAN_MS.
   */
  function committingBehindCursor(objectKey: string, ref: PartitionRef, commitByMs: number, trace: ScanTrace): ObjectGcJobOptions['log'] {
    let cycles = 0;
    return {
      forEachRun: async (refs, visit) => {
        const first = cycles++ === 0;
        let commit: Promise<PartitionCommitResult[]> | undefined;
        // A page's runs are visited in one synchronous step, so a microtask between two
        // visits means the walk waited for Redis: the next visit starts a new page.
        let inPage = false;
        await state.forEachRun(refs, (i, run) => {
          if (!inPage) {
            inPage = true;
            queueMicrotask(() => (inPage = false));
            if (first) trace.pageStarts.push(i);
            if (first && trace.pageStarts.length === 2) commit = commitRun(objectKey, [ref], commitByMs);
          }
          visit(i, run);
        });
        if (commit) trace.commit = await commit;
        nowMs += SCAN_MS;
      },
    };
  }

  /**
   * P0..P299, each holding one run of one object, so that every page of the scan visits runs;
   * and X, uploaded before the first cycle's LIST and not yet committed.
   */
  async function setUp(): Promise<{ refs: PartitionRef[]; x: string }> {
    const topic = await createTopic('behind', PARTITIONS);
    const refs = refsOf(topic);
    const earlier = await put('earlier');
    for (const result of await commitRun(earlier, refs)) expect(result).toEqual({ results: [{ errorCode: ErrorCode.NONE, baseOffset: 0, duplicate: false }], hw: 10, logStart: 0 });
    return { refs, x: await put('x') };
  }

  async function objectKeysOf(ref: PartitionRef): Promise<string[]> {
    return (await state.runsFrom(ref, 0, 100)).runs.map((r) => r.objectKey);
  }

  it('finds the object unreferenced in that cycle without deleting it, and keeps it once it sees the reference', async () => {
    const { refs, x } = await setUp();
    const trace: ScanTrace = { pageStarts: [] };
    const job = gcJob({ log: committingBehindCursor(x, refs[0]!, await commitByOf(START_MS), trace) });

    await job.runOnce();
    // Three pages of 128, 128 and 44 partitions: the commit went out after the first.
    expect(trace.pageStarts).toEqual([0, WALK_PARTITIONS, 2 * WALK_PARTITIONS]);
    expect(trace.commit).toEqual([{ results: [{ errorCode: ErrorCode.NONE, baseOffset: 10, duplicate: false }], hw: 20, logStart: 0 }]);
    expect(await objectKeysOf(refs[0]!)).toEqual([`data/2024-05-01/${tag}-earlier.seg`, x]);
    const firstSeen = START_MS + SCAN_MS;
    expect(job.stats()).toMatchObject({ cycles: 1, deletedObjects: 0, last: { liveObjects: 1, pendingObjects: 1 } });
    expect(await remembered()).toEqual({ [x]: String(firstSeen) });
    expect(await exists(x)).toBe(true);

    // The first scan that could delete it: one starting a grace after the first sighting.
    nowMs = firstSeen + GRACE_MS;
    await job.runOnce();
    expect(job.stats()).toMatchObject({ cycles: 2, deletedObjects: 0, last: { liveObjects: 2, pendingObjects: 0 } });
    expect(await remembered()).toEqual({});
    expect(await exists(x)).toBe(true);
  });

  it('deletes the object once a scan starts a grace after its first sighting when the late commit was refused', async () => {
    const { refs, x } = await setUp();
    const trace: ScanTrace = { pageStarts: [] };
    // Uploaded a second more than the deadline before the cycle: commit.lua refuses it.
    const job = gcJob({ log: committingBehindCursor(x, refs[0]!, await commitByOf(START_MS - DEFAULT_COMMIT_DEADLINE_MS - 1000), trace) });

    await job.runOnce();
    expect(trace.pageStarts).toEqual([0, WALK_PARTITIONS, 2 * WALK_PARTITIONS]);
    expect(trace.commit).toEqual([{ pastDeadline: true, results: [], hw: -1, logStart: -1 }]);
    expect(await objectKeysOf(refs[0]!)).toEqual([`data/2024-05-01/${tag}-earlier.seg`]);
    const firstSeen = START_MS + SCAN_MS;
    expect(await remembered()).toEqual({ [x]: String(firstSeen) });

    nowMs = firstSeen + GRACE_MS - 1;
    await job.runOnce();
    expect(await exists(x)).toBe(true);
    expect(job.stats()).toMatchObject({ cycles: 2, deletedObjects: 0, last: { liveObjects: 1, pendingObjects: 1 } });

    nowMs = firstSeen + GRACE_MS;
    await job.runOnce();
    expect(await exists(x)).toBe(false);
    expect(job.stats()).toMatchObject({ cycles: 3, deletedObjects: 1, last: { liveObjects: 1, pendingObjects: 0 } });
    expect(await remembered()).toEqual({});
  });
});

describe('two GC jobs at once (two brokers while membership changes)', () => {
  /** Test clock time between rounds: less than the commit deadline, so a commit can span two. */
  const STEP_MS = 50_000;
  const ROUNDS = 11;
  const DELETED_MESSAGE = 'object garbage collection deleted unreferenced segment objects';

  /** Every object key any run in any index of the Redis server names. */
  async function indexedObjects(): Promise<Set<string>> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', '*:idx', 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const out = new Set<string>();
    for (const key of keys) for (const member of await redis.zrange(key, 0, -1)) out.add(parseRun(member).objectKey);
    return out;
  }

  it('never deletes a referenced object and deletes each unreferenced one in the round it falls due', async () => {
    const at = (round: number): number => START_MS + round * STEP_MS;
    const topic = await createTopic('pair', 3);
    const [p0, p1, p2] = refsOf(topic) as [PartitionRef, PartitionRef, PartitionRef];

    /** Every object uploaded so far. */
    const uploaded: string[] = [];
    const upload = async (name: string): Promise<string> => {
      const key = await put(name);
      uploaded.push(key);
      return key;
    };
    const live = await upload('live');
    const dropped = await upload('dropped');
    const orphan = await upload('orphan');
    const raced = await upload('raced');
    const refused = await upload('refused');
    await commitRun(live, [p0, p1]);
    await commitRun(dropped, [p2]);
    let late = '';
    let orphan2 = '';

    /** What happens before round r's cycles. */
    const before = async (round: number): Promise<void> => {
      if (round === 1) {
        expect(await state.deleteRecords(p2, -1)).toEqual({ errorCode: ErrorCode.NONE, logStart: 10 });
        late = await upload('late');
      }
      if (round === 3) orphan2 = await upload('orphan2');
    };
    /** The commits sent during round r's scans. */
    const during = (round: number): Promise<void>[] => {
      const accepted = (r: PartitionCommitResult[]): void => expect(r[0]!.pastDeadline).toBeUndefined();
      // Uploaded at round 0, committed within its deadline.
      if (round === 0) return [commitByOf(at(0)).then((by) => commitRun(raced, [p1], by)).then(accepted)];
      if (round === 2) {
        return [
          // Uploaded at round 1, where both scans found it unreferenced; 10 s of its deadline left.
          commitByOf(at(1)).then((by) => commitRun(late, [p0], by)).then(accepted),
          // Uploaded at round 0: 40 s past its deadline, refused.
          commitByOf(at(0))
            .then((by) => commitRun(refused, [p0], by))
            .then((r) => expect(r).toEqual([{ pastDeadline: true, results: [], hw: -1, logStart: -1 }])),
        ];
      }
      return [];
    };
    /** Keys deleted in round r: the first round starting a grace after the one that first found them unreferenced. */
    const deletedIn = (round: number): string[] => ({ 6: [orphan, refused], 7: [dropped], 9: [orphan2] })[round] ?? [];
    /** Keys the run indexes name after round r. */
    const indexedAfter = (round: number): string[] => (round === 0 ? [live, dropped, raced] : round === 1 ? [live, raced] : [live, raced, late]);
    /**
     * The remembered first sightings after round r, where they do not depend on the
     * interleaving: a job whose scan missed a commit the other saw, or that listed an object
     * the other then deleted, may leave an entry that the next round removes.
     */
    const rememberedAfter = (round: number): Record<string, number> | undefined => {
      if (round === 1) return { [orphan]: at(0), [refused]: at(0), [dropped]: at(1), [late]: at(1) };
      if (round >= 3 && round <= 5) return { [orphan]: at(0), [refused]: at(0), [dropped]: at(1), [orphan2]: at(3) };
      if (round === 8) return { [orphan2]: at(3) };
      if (round === 10) return {};
      return undefined;
    };

    // The second broker: its own Redis connection and its own store client on the same files.
    const redisB = await commandClient(server.url);
    const storeB = new FileObjectStore(`file://${dir}`, { fsync: false });
    /** Keys either job asked to delete in the current round. */
    let asked = new Set<string>();
    const recording = (on: FileObjectStore): ObjectGcJobOptions['store'] => ({
      list: (prefix) => on.list(prefix),
      delete: async (keys) => {
        for (const key of keys) asked.add(key);
        await on.delete(keys);
      },
    });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    /** The round running now, and the commits its scans sent (awaited after it, to report their failures). */
    let current = 0;
    let sent: Promise<void>[] = [];
    // Job a sends the round's commits once its walk has passed every index, before its scan
    // ends: behind its cursor, and racing job b's scan, which may or may not see them.
    const a = gcJob({
      store: recording(store),
      log: {
        forEachRun: async (refs, visit) => {
          await state.forEachRun(refs, visit);
          const commits = during(current);
          sent.push(...commits);
          await Promise.allSettled(commits);
        },
      },
    });
    const b = gcJob({ store: recording(storeB), log: new PartitionStore(redisB), state: new ObjectGcStore(redisB) });
    a.start(logger.child({ job: 'a' }));
    b.start(logger.child({ job: 'b' }));

    try {
      const gone = new Set<string>();
      for (let round = 0; round < ROUNDS; round++) {
        await before(round);
        nowMs = at(round);
        asked = new Set();
        current = round;
        sent = [];
        await Promise.all([a.runOnce(), b.runOnce()]);
        expect(sent, `commits sent in round ${round}`).toHaveLength(round === 0 ? 1 : round === 2 ? 2 : 0);
        await Promise.all(sent);

        expect(asked, `delete requests in round ${round}`).toEqual(new Set(deletedIn(round)));
        for (const key of deletedIn(round)) gone.add(key);
        const present: string[] = [];
        for (const key of uploaded) if (await exists(key)) present.push(key);
        expect(present, `objects after round ${round}`).toEqual(uploaded.filter((key) => !gone.has(key)));
        const indexed = await indexedObjects();
        expect(indexed, `indexed objects after round ${round}`).toEqual(new Set(indexedAfter(round)));
        for (const key of indexed) expect(await exists(key), `${key}, indexed after round ${round}, exists`).toBe(true);
        const expected = rememberedAfter(round);
        if (expected !== undefined) {
          expect(await remembered(), `remembered after round ${round}`).toEqual(Object.fromEntries(Object.entries(expected).map(([k, ms]) => [k, String(ms)])));
        }
        expect([a.stats().cycles, b.stats().cycles], `cycles after round ${round}`).toEqual([round + 1, round + 1]);
      }
      // No failure was logged: the only lines are the deletions' (by one job or both).
      expect(new Set(lines.map((l) => l.msg))).toEqual(new Set([DELETED_MESSAGE]));
    } finally {
      await a.stop();
      await b.stop();
      await storeB.close();
      redisB.disconnect();
    }
  });
});
