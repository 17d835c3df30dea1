/**
 * The commit deadline (docs/architecture.md §4.4): a writer may reference a new segment object
 * in the run index only within `--commit-deadline-ms` of starting its upload. Object garbage
 * collection relies on it: an object it has listed and then found unreferenced for longer than
 * its grace period (which must exceed the deadline) can no longer gain a reference, so deleting
 * it cannot break a commit still on its way. Every path that commits a new object's runs —
 * the ingest buffer's flushes and compaction's index swaps — checks it just before sending
 * (a cheap early answer on the broker's clock) and the commit script checks it again where it
 * counts, on Redis's clock.
 */
import { performance } from 'node:perf_hooks';

/** `--commit-deadline-ms` by default: one minute. */
export const DEFAULT_COMMIT_DEADLINE_MS = 60_000;

/**
 * Starts the deadline of an upload that begins now: resolves to the time by which its commit
 * must run, on Redis's clock (`time`, e.g. `PartitionStore.timeMs`). Redis's answer is taken
 * at some moment between asking and receiving it, so the time spent waiting for it is
 * subtracted: the start is never later than the real one. Asking costs no latency, since the
 * upload proceeds meanwhile. The commit scripts compare this with Redis's own TIME, so neither
 * a pause of the broker nor the difference between broker clocks can stretch the deadline.
 * A failure to read the time rejects when awaited (the commit then fails).
 */
export function commitByOnRedisClock(time: () => Promise<number>, deadlineMs: number): Promise<number> {
  const asked = performance.now();
  const commitBy = time().then((ms) => ms - (performance.now() - asked) + deadlineMs);
  // Awaited later, after the upload: until then a rejection must not count as unhandled.
  commitBy.catch(() => undefined);
  return commitBy;
}

/**
 * Whether a commit for an object whose upload started at `uploadStartedMs` may no longer be
 * sent at `nowMs`. Both times come from one monotonic clock (`performance.now()`), so a wall
 * clock step cannot stretch the deadline.
 */
export function commitDeadlinePassed(uploadStartedMs: number, deadlineMs: number, nowMs: number): boolean {
  return nowMs - uploadStartedMs > deadlineMs;
}
