/**
 * The ingest buffer (docs/architecture.md §4.1): accepted batches wait here, grouped per partition in
 * arrival order, until the buffer holds `flush.bytes` or a flush is due. `flush.ms` bounds two
 * things: how long a batch waits (a flush starts at most `flush.ms` after the oldest batch
 * arrived) and how often objects are written (a timed flush starts at least `flush.ms` after
 * the previous flush started). A batch arriving after a quiet spell is therefore flushed at
 * the end of the current event-loop turn instead of waiting out `flush.ms` for company that
 * could only have shared a later object anyway.
 * A flush writes one segment object holding every partition's chunk, then commits each
 * partition's batches in Redis. Uploads of consecutive flushes may overlap; commits happen
 * strictly in flush order (each is sent once the previous one was sent, without waiting for
 * its answer), so a partition's offsets follow arrival order. A produce is
 * answered only after its commit. A flush that would send its commit more than
 * `--commit-deadline-ms` after its upload started fails instead (object GC relies on it, §4.4).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RecordBatchView } from '../../wire/records/index.js';
import type { BatchCommitResult, PartitionRef, PartitionStore } from './partition-store.js';
import type { Logger } from '../observability/logger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { BrokerTimeoutError } from '../errors.js';
import type { ByteLru } from './cache.js';
import { commitByOnRedisClock, commitDeadlinePassed, DEFAULT_COMMIT_DEADLINE_MS } from './commit-deadline.js';
import { buildSegment, SegmentPieces, type SegmentPart } from './segment.js';

/** The outcome of one append: per batch, in the order given. */
export interface AppendOutcome {
  results: BatchCommitResult[];
  logStart: number;
}

interface PendingAppend {
  batches: readonly RecordBatchView[];
  resolve(outcome: AppendOutcome): void;
  reject(err: unknown): void;
}

interface PendingPartition {
  ref: PartitionRef;
  appends: PendingAppend[];
}

export interface IngestOptions {
  nodeId: number;
  flushMs: number;
  flushBytes: number;
  /** Uploads allowed in flight at once; further flushes wait (bounding buffered memory). */
  maxConcurrentUploads?: number;
  /**
   * The longest time from the start of a flush's upload to sending its commit (default
   * {@link DEFAULT_COMMIT_DEADLINE_MS}); a later flush fails instead (see commit-deadline.ts).
   */
  commitDeadlineMs?: number;
}

/** Called after every commit with the partitions whose high watermark moved. */
export type CommitListener = (updates: { ref: PartitionRef; hw: number }[]) => void;

function dayPrefix(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export class IngestBuffer {
  readonly #store: ObjectStore;
  readonly #state: PartitionStore;
  readonly #writeCache: ByteLru<SegmentPieces>;
  readonly #log: Logger;
  readonly #opts: Required<IngestOptions>;
  readonly #sessionId = randomBytes(4).toString('hex');
  #seq = 0;
  #pending = new Map<string, PendingPartition>();
  #pendingBytes = 0;
  /** Cancels the scheduled flush, if one is scheduled. */
  #cancelTimer: (() => void) | null = null;
  /** When the latest flush started (performance.now()); timed flushes keep flush.ms apart. */
  #lastFlushAt = -Infinity;
  /**
   * Resolves when the latest flush has sent its commit to Redis (or failed before it could).
   * The next flush sends its own only then, without waiting for the answer: the commits travel
   * one connection in order, so Redis runs them in flush order, and consecutive flushes' commits
   * share a round trip and an AOF fsync.
   */
  #commitSent: Promise<void> = Promise.resolve();
  #uploadsInFlight = 0;
  /** A flush was deferred because every upload slot was busy; run it when one frees. */
  #flushWhenFree = false;
  readonly #uploadWaiters: (() => void)[] = [];
  #inFlightFlushes = new Set<Promise<void>>();
  readonly #listeners: CommitListener[] = [];
  #flushes = 0;

  constructor(store: ObjectStore, state: PartitionStore, writeCache: ByteLru<SegmentPieces>, opts: IngestOptions, log: Logger) {
    this.#store = store;
    this.#state = state;
    this.#writeCache = writeCache;
    this.#opts = { maxConcurrentUploads: 4, ...opts, commitDeadlineMs: opts.commitDeadlineMs ?? DEFAULT_COMMIT_DEADLINE_MS };
    this.#log = log;
  }

  onCommit(listener: CommitListener): void {
    this.#listeners.push(listener);
  }

  /** Bytes waiting for the next flush. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Segment objects written by this process. */
  get flushCount(): number {
    return this.#flushes;
  }

  /**
   * Queues batches of one partition (already validated) and resolves once they are committed.
   * Rejects with the storage or Redis failure if the flush fails; nothing was acknowledged then.
   */
  append(ref: PartitionRef, batches: readonly RecordBatchView[]): Promise<AppendOutcome> {
    return new Promise<AppendOutcome>((resolve, reject) => {
      const key = `${ref.topicId}:${ref.partition}`;
      let part = this.#pending.get(key);
      if (!part) {
        part = { ref, appends: [] };
        this.#pending.set(key, part);
      }
      part.appends.push({ batches, resolve, reject });
      for (const b of batches) this.#pendingBytes += b.sizeInBytes;
      if (this.#pendingBytes >= this.#opts.flushBytes) void this.flush();
      // While a deferred flush waits for an upload slot, the slot's release starts it.
      else if (!this.#cancelTimer && !this.#flushWhenFree) this.#schedule();
    });
  }

  /**
   * Schedules the timed flush: flush.ms after the previous flush started, or at the end of this
   * event-loop turn when that moment has passed. Waiting for the turn's end (not flushing
   * inside append) lets the other partitions of the same request, and requests read in the
   * same turn, share the object.
   */
  #schedule(): void {
    const wait = this.#lastFlushAt + this.#opts.flushMs - performance.now();
    if (wait <= 0) {
      const immediate = setImmediate(() => this.flush());
      this.#cancelTimer = () => clearImmediate(immediate);
    } else {
      // A timer may fire a little early by this clock; it then waits out the rest, so that
      // timed flushes never come closer than flush.ms (the object-rate bound).
      const timeout = setTimeout(() => {
        this.#cancelTimer = null;
        this.#schedule();
      }, Math.ceil(wait));
      this.#cancelTimer = () => clearTimeout(timeout);
    }
  }

  /**
   * Starts a flush of everything pending now; resolves when that flush has committed or
   * failed. While every upload slot is busy, a timer-driven flush is deferred until one frees
   * (pending data keeps growing towards flush.bytes instead of sealing many small objects that
   * would only queue behind the uploads and add to everyone's latency); `force` seals anyway.
   */
  flush(force = false): Promise<void> {
    if (this.#cancelTimer) {
      this.#cancelTimer();
      this.#cancelTimer = null;
    }
    if (this.#pending.size === 0) return Promise.resolve();
    if (!force && this.#uploadsInFlight >= this.#opts.maxConcurrentUploads && this.#pendingBytes < this.#opts.flushBytes) {
      this.#flushWhenFree = true;
      return Promise.resolve();
    }
    this.#flushWhenFree = false;
    this.#lastFlushAt = performance.now();
    const parts = [...this.#pending.values()];
    this.#pending = new Map();
    this.#pendingBytes = 0;
    const p = this.#runFlush(parts);
    this.#inFlightFlushes.add(p);
    void p.finally(() => this.#inFlightFlushes.delete(p));
    return p;
  }

  /** Flushes what is pending and waits for every flush in flight (for shutdown). */
  async drain(): Promise<void> {
    await this.flush(true);
    while (this.#inFlightFlushes.size > 0) await Promise.all([...this.#inFlightFlushes]);
  }

  async #acquireUpload(): Promise<void> {
    if (this.#uploadsInFlight < this.#opts.maxConcurrentUploads) {
      this.#uploadsInFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.#uploadWaiters.push(resolve));
    this.#uploadsInFlight++;
  }

  #releaseUpload(): void {
    this.#uploadsInFlight--;
    const next = this.#uploadWaiters.shift();
    if (next) next();
    else if (this.#flushWhenFree) void this.flush();
  }

  async #runFlush(parts: PendingPartition[]): Promise<void> {
    const now = new Date();
    const objectKey = `data/${dayPrefix(now)}/${this.#opts.nodeId}-${this.#sessionId}-${String(this.#seq++).padStart(8, '0')}.seg`;
    const segmentParts: SegmentPart[] = parts.map((p) => ({
      topicId: p.ref.topicId,
      partition: p.ref.partition,
      batches: p.appends.flatMap((a) => a.batches),
    }));
    const { pieces, chunks } = buildSegment(segmentParts);
    // Take our place in the commit order before the upload, so that commits follow flush order
    // even when a later flush's upload finishes first.
    const previousSent = this.#commitSent;
    let sent!: () => void;
    this.#commitSent = new Promise<void>((resolve) => (sent = resolve));
    try {
      await this.#acquireUpload();
      const uploadStarted = performance.now();
      const commitBy = commitByOnRedisClock(() => this.#state.timeMs(), this.#opts.commitDeadlineMs);
      try {
        await this.#store.put(objectKey, pieces, { fresh: true });
      } finally {
        this.#releaseUpload();
      }
      this.#flushes++;
      this.#writeCache.set(objectKey, new SegmentPieces(pieces));
      const commitByMs = await commitBy;
      await previousSent;
      // The segment's chunk table already describes every batch (buildSegment read each
      // header once); the commit input is derived from it rather than read again.
      const commitInput = parts.map((p, i) => {
        const chunk = chunks[i]!;
        let at = chunk.byteStart;
        const batches = chunk.batches.map((b) => {
          const input = {
            byteStart: at,
            byteLength: b.byteLength,
            // The footer's recordCount is the batch's offset span (lastOffsetDelta + 1).
            lastOffsetDelta: b.recordCount - 1,
            producerId: b.producerId,
            producerEpoch: b.producerEpoch,
            baseSequence: b.baseSequence,
            maxTimestamp: b.maxTimestamp,
            flags: b.flags,
            recordCount: b.recordCount,
          };
          at += b.byteLength;
          return input;
        });
        return { ref: p.ref, batches };
      });
      // Past the deadline, object GC may already count the object as garbage: fail the flush
      // (nothing acknowledged, producers retry) and leave the object to GC. The check and the
      // send below are in one synchronous step.
      const now = performance.now();
      if (commitDeadlinePassed(uploadStarted, this.#opts.commitDeadlineMs, now)) {
        throw new BrokerTimeoutError(
          `flush of ${objectKey} reached its commit ${Math.round(now - uploadStarted)} ms after its upload started, past --commit-deadline-ms ${this.#opts.commitDeadlineMs}; not committed, the object is left to garbage collection`,
        );
      }
      // commit() writes its pipeline before returning, so the next flush may send right away.
      const committing = this.#state.commit(objectKey, commitInput, commitByMs);
      sent();
      const committed = await committing;
      const updates: { ref: PartitionRef; hw: number }[] = [];
      parts.forEach((p, i) => {
        const c = committed[i]!;
        if (c.pastDeadline) {
          const err = new BrokerTimeoutError(`commit of ${objectKey} reached Redis past its --commit-deadline-ms ${this.#opts.commitDeadlineMs}; not committed`);
          for (const a of p.appends) a.reject(err);
          return;
        }
        updates.push({ ref: p.ref, hw: c.hw });
        let k = 0;
        for (const a of p.appends) {
          a.resolve({ results: c.results.slice(k, k + a.batches.length), logStart: c.logStart });
          k += a.batches.length;
        }
      });
      for (const l of this.#listeners) l(updates);
    } catch (err) {
      void previousSent.then(sent);
      this.#log.warn({ err: (err as Error).message, objectKey }, 'flush failed; its produce requests get a retriable error');
      for (const p of parts) for (const a of p.appends) a.reject(err);
    }
  }
}
