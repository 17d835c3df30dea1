/** Stopping the child processes the harness starts. */
import type { ChildProcess } from 'node:child_process';

/** Whether `child` has ended (exited or killed by a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when `child` has ended (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Sends `signal` (SIGTERM by default, so the child can drain) and waits for `child` to end;
 * SIGKILL follows after `timeoutMs`. Resolves at once for a child that has already ended.
 */
export async function stopChild(child: ChildProcess, timeoutMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (hasExited(child)) return;
  const exited = exitOf(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** How a child ended, for one log line: "signal SIGKILL" or "code 1". */
export function howExited(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `code ${code}`;
}
