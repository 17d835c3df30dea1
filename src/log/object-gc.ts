/**
 * Object garbage collection (docs/architecture.md §4.4): deletes the segment objects no run
 * index references any more — left behind by DeleteRecords, retention, topic deletion and
 * compaction, or written by a broker that died (or missed its commit deadline) before
 * committing them.
 *
 * One cycle is mark and sweep, safe by construction:
 *
 * 1. LIST `data/` in the object store.
 * 2. Then scan every partition's run index (topics read from Redis after the scan began) and
 *    collect the object keys its runs name.
 * 3. Listed but not referenced is unreferenced now. An object seen so for the first time is
 *    remembered (`{strata}:gc:unreferenced`) with the time the scan finished; one remembered
 *    since `firstSeen` is deleted once a scan that *started* at or after `firstSeen + grace`
 *    still finds it unreferenced.
 *
 * Why nothing referenced, or about to be, is deleted: references to an object are only ever
 * added by the commit that follows its upload (a flush, or compaction's index swap), and the
 * script that writes them refuses to run later than `--commit-deadline-ms` after the upload
 * started, both times on Redis's clock (commit-deadline.ts). First sightings and scan starts
 * are taken on the same clock. An object listed in step 1 had started its upload before
 * `firstSeen`, so every reference it will ever get was written before `firstSeen + deadline`,
 * which is before any scan starting at `firstSeen + grace` (the grace exceeds the deadline).
 * Such a scan therefore sees every reference that still exists, and references only disappear
 * afterwards. No broker's clock or pause enters the argument. Readers that planned a read
 * before a reference disappeared plan again (partition-log.ts).
 *
 * Two brokers running cycles at once (while membership changes, both may think they own the
 * job) is safe by the same rule: each deletes only what its own scan found unreferenced, and
 * any `firstSeen` either remembers is a valid first sighting. They can only delay each other
 * by forgetting an entry the other just wrote.
 */
import type { ObjectStore } from '../storage/object-store.js';
import type { ObjectGcStore } from './object-gc-store.js';
import type { PartitionRef, Run } from './partition-store.js';
import { PeriodicJob } from './job-timer.js';

/** The job's name for placement: the live broker that wins rendezvous for it runs the cycles. */
export const OBJECT_GC_JOB = 'object-gc';

/** Where segment objects live in the store (`data/<yyyy-mm-dd>/…`). */
export const SEGMENT_PREFIX = 'data/';

/** `--object-gc-grace-ms` by default: five minutes. */
export const DEFAULT_OBJECT_GC_GRACE_MS = 300_000;

/** Keys per delete request by default: S3's DeleteObjects takes up to 1000. */
export const DEFAULT_GC_DELETE_BATCH = 1000;

/**
 * Delete requests per cycle by default; what is left waits for the next cycle. 100 × 1000
 * keys a minute keeps up with many brokers flushing every few milliseconds.
 */
export const DEFAULT_GC_DELETE_REQUESTS = 100;

/** What the job needs of a topic (the topic store's `TopicInfo` has it). */
export interface GcTopic {
  name: string;
  topicId: string;
  partitions: number;
}

/** What the job is given. */
export interface ObjectGcJobOptions {
  store: Pick<ObjectStore, 'list' | 'delete'>;
  /** Every topic, read from Redis when called (never a cached view: see the header). */
  topics: { readAll(): Promise<readonly GcTopic[]> };
  /** The run index walk (the partition log's). */
  log: { forEachRun(refs: readonly PartitionRef[], visit: (index: number, run: Run) => void): Promise<void> };
  /** Where first sightings are remembered. */
  state: Pick<ObjectGcStore, 'firstSeen' | 'remember' | 'forget' | 'timeMs'>;
  /** Whether this broker runs the job now (it wins rendezvous for {@link OBJECT_GC_JOB}). */
  runsHere(): boolean;
  /** Time between the end of one cycle and the start of the next. */
  intervalMs: number;
  /** How long an object stays unreferenced before it is deleted; must exceed the commit deadline. */
  graceMs: number;
  /** Keys per delete request (default {@link DEFAULT_GC_DELETE_BATCH}). */
  deleteBatch?: number;
  /** Delete requests per cycle at most (default {@link DEFAULT_GC_DELETE_REQUESTS}). */
  maxDeleteRequests?: number;
  /**
   * The clock of first sightings and scan starts, ms since the epoch: by default Redis's
   * (`state.timeMs`), the clock the commit scripts check deadlines on, so brokers' clocks never
   * enter the comparison (tests drive their own).
   */
  now?: () => number | Promise<number>;
}

/** One topic's share of the run index, from the last cycle. */
export interface TopicStoredBytes {
  name: string;
  /** Bytes of the topic's runs (a run straddling the log start counts whole). */
  storedBytes: number;
  runs: number;
}

/** What the last cycle on this broker found. */
export interface ObjectGcCycle {
  /** Objects listed and referenced, and their bytes. */
  liveObjects: number;
  liveBytes: number;
  /** Objects listed and unreferenced that were not deleted: waiting out the grace, or the next cycle's deletes. */
  pendingObjects: number;
  topics: TopicStoredBytes[];
}

/** Counters and gauges for /metrics. */
export interface ObjectGcStats {
  /** Cycles completed on this broker. */
  cycles: number;
  deletedObjects: number;
  deletedBytes: number;
  /** The last cycle's findings; null before the first, and while another broker runs the job. */
  last: ObjectGcCycle | null;
}

/** The periodic object GC of one broker; it runs cycles only while it owns the job. */
export class ObjectGcJob extends PeriodicJob {
  readonly #opts: ObjectGcJobOptions;
  readonly #now: () => number | Promise<number>;
  readonly #deleteBatch: number;
  readonly #maxDeleteRequests: number;
  #cycles = 0;
  #deletedObjects = 0;
  #deletedBytes = 0;
  #last: ObjectGcCycle | null = null;

  constructor(opts: ObjectGcJobOptions) {
    super(opts.intervalMs, 'object garbage collection');
    this.#opts = opts;
    this.#now = opts.now ?? (() => opts.state.timeMs());
    this.#deleteBatch = Math.max(1, opts.deleteBatch ?? DEFAULT_GC_DELETE_BATCH);
    this.#maxDeleteRequests = Math.max(1, opts.maxDeleteRequests ?? DEFAULT_GC_DELETE_REQUESTS);
  }

  stats(): ObjectGcStats {
    return { cycles: this.#cycles, deletedObjects: this.#deletedObjects, deletedBytes: this.#deletedBytes, last: this.#last };
  }


  /**
   * One cycle, when this broker owns the job. Never rejects: a failure is logged in one line
   * and the next cycle starts over (what was remembered stays remembered).
   */
  override async runOnce(): Promise<void> {
    if (!this.#opts.runsHere()) {
      // Another broker's cycles describe the store now; stale gauges here would count twice.
      this.#last = null;
      return;
    }
    try {
      const last = await this.#cycle();
      if (last === null) return;
      this.#last = last;
      this.#cycles++;
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'object garbage collection failed; the next cycle tries again');
    }
  }

  /** Lists, scans, remembers and deletes; null when stopped half-way. */
  async #cycle(): Promise<ObjectGcCycle | null> {
    const { store, topics: topicSource, log, state, graceMs } = this.#opts;
    // 1. List first: everything the scan below may miss was uploaded before it began.
    const listed = new Map<string, number>();
    for await (const o of store.list(SEGMENT_PREFIX)) {
      // A large bucket takes many pages: stop promptly on shutdown.
      if (this.stopped) return null;
      listed.set(o.key, o.size);
    }

    // 2. Scan every index. Topics are read after the scan began, so a topic created before
    // it (and holding any reference a deletion must respect) is among them.
    const scanStartMs = await this.#now();
    const topics = await topicSource.readAll();
    const refs: PartitionRef[] = [];
    const topicOf: number[] = [];
    const usage: TopicStoredBytes[] = topics.map((t) => ({ name: t.name, storedBytes: 0, runs: 0 }));
    topics.forEach((t, i) => {
      for (let p = 0; p < t.partitions; p++) {
        refs.push({ topicId: t.topicId, partition: p });
        topicOf.push(i);
      }
    });
    const referenced = new Set<string>();
    await log.forEachRun(refs, (i, run) => {
      referenced.add(run.objectKey);
      const u = usage[topicOf[i]!]!;
      u.storedBytes += run.byteLength;
      u.runs++;
    });
    const scanEndMs = await this.#now();
    if (this.stopped) return null;

    // 3. Compare with what earlier cycles (here or on another broker) remembered.
    const firstSeen = await state.firstSeen();
    const fresh: string[] = [];
    const due: string[] = [];
    let waiting = 0;
    let liveObjects = 0;
    let liveBytes = 0;
    for (const [key, size] of listed) {
      if (referenced.has(key)) {
        liveObjects++;
        liveBytes += size;
        continue;
      }
      const since = firstSeen.get(key);
      if (since === undefined) fresh.push(key);
      else if (scanStartMs >= since + graceMs) due.push(key);
      else waiting++;
    }
    const obsolete: string[] = [];
    for (const key of firstSeen.keys()) if (referenced.has(key) || !listed.has(key)) obsolete.push(key);
    await state.remember(fresh, scanEndMs);
    await state.forget(obsolete);

    // 4. Delete what waited out the grace, a bounded number of requests per cycle.
    let deleted = 0;
    let deletedBytes = 0;
    for (let i = 0, requests = 0; i < due.length && requests < this.#maxDeleteRequests && !this.stopped; i += this.#deleteBatch, requests++) {
      const batch = due.slice(i, i + this.#deleteBatch);
      await store.delete(batch);
      let bytes = 0;
      for (const key of batch) bytes += listed.get(key)!;
      deleted += batch.length;
      deletedBytes += bytes;
      this.#deletedObjects += batch.length;
      this.#deletedBytes += bytes;
      await state.forget(batch);
    }
    const pendingObjects = fresh.length + waiting + due.length - deleted;
    if (deleted > 0) {
      this.log?.info({ deleted, deletedBytes, pending: pendingObjects, live: liveObjects }, 'object garbage collection deleted unreferenced segment objects');
    }
    return this.stopped ? null : { liveObjects, liveBytes, pendingObjects, topics: usage };
  }
}
