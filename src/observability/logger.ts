import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Creates the process logger: JSON lines on stderr (stdout stays free for the CLI's own
 * output), with the broker's node id bound once known.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
