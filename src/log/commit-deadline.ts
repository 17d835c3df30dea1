/**
 * The commit deadline (docs/architecture.md §4.4): a writer may reference a new segment object
 * in the run index only within `--commit-deadline-ms` of starting its upload. Object garbage
 * collection relies on it: an object it has listed and then found unreferenced for longer than
 * its grace period (which must exceed the deadline) can no longer gain a reference, so deleting
 * it cannot break a commit still on its way. Every path that commits a new object's runs —
 * the ingest buffer's flushes and compaction's index swaps — checks it just before sending.
 */

/** `--commit-deadline-ms` by default: one minute. */
export const DEFAULT_COMMIT_DEADLINE_MS = 60_000;

/**
 * Whether a commit for an object whose upload started at `uploadStartedMs` may no longer be
 * sent at `nowMs`. Both times come from one monotonic clock (`performance.now()`), so a wall
 * clock step cannot stretch the deadline.
 */
export function commitDeadlinePassed(uploadStartedMs: number, deadlineMs: number, nowMs: number): boolean {
  return nowMs - uploadStartedMs > deadlineMs;
}
