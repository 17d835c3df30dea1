/**
 * Test helper: the one bounded polling loop. Tests wait for a state they cannot be told about
 * (a broker listed in Metadata, a member rebalancing, a budget drained) by asking until it
 * holds; no assertion depends on how quickly it does. `sleep` is the harness's own
 * (src/harness/ports.ts), re-exported so tests have one place to import both from.
 */
import { sleep } from '../../src/harness/ports.js';

export { sleep };

/**
 * Polls until the wait is over and resolves with the value that ended it; throws naming
 * `what` after `timeoutMs`.
 *
 * Two forms. `waitFor(what, check, timeoutMs = 20 s, everyMs = 50)`: `check` returns the
 * value, or undefined for "not yet"; an error it throws also counts as "not yet" (a broker
 * still restarting refuses connections) and is reported if time runs out.
 * `waitFor(what, read, done, timeoutMs, everyMs = 100)`: `read`'s value ends the wait when
 * `done(value)` holds; an error from `read` ends it at once (a client process that died), and
 * a timeout reports the last value read.
 */
export function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs?: number, everyMs?: number): Promise<T>;
export function waitFor<T>(what: string, read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs: number, everyMs?: number): Promise<T>;
export async function waitFor<T>(
  what: string,
  read: () => Promise<T | undefined> | T | undefined,
  doneOrTimeoutMs?: ((value: T) => boolean) | number,
  timeoutOrEveryMs?: number,
  everyMs?: number,
): Promise<T> {
  const done = typeof doneOrTimeoutMs === 'function' ? doneOrTimeoutMs : undefined;
  const timeoutMs = (done ? timeoutOrEveryMs : (doneOrTimeoutMs as number | undefined)) ?? 20_000;
  const intervalMs = (done ? everyMs : timeoutOrEveryMs) ?? (done ? 100 : 50);
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let last: T | undefined;
  for (;;) {
    if (done) {
      last = (await read()) as T;
      if (done(last)) return last;
    } else {
      try {
        const value = await read();
        if (value !== undefined) return value;
      } catch (err) {
        lastError = err;
      }
    }
    if (Date.now() > deadline) {
      const detail = done ? `; last value: ${JSON.stringify(last)?.slice(0, 500)}` : lastError ? `: ${(lastError as Error).message}` : '';
      throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms${detail}`);
    }
    await sleep(intervalMs);
  }
}
