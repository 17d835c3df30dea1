/**
 * `strata dev`: the one-command playground. Starts a private `redis-server` (AOF with
 * `appendfsync always`, in the data directory), and N brokers as child processes on
 * consecutive ports over a file object store in the same directory. Ctrl-C stops everything.
 *
 * If redis-server dies, it is started again on the same port over the same AOF (so every
 * acknowledged record is still there) after a short, growing pause; the brokers reconnect on
 * their own. Five deaths within a minute mean something is wrong that a restart will not fix
 * (a full disk, a damaged AOF), and everything stops.
 *
 * Everything in the data directory is private to the user: the directories are 0700, and
 * redis-server runs with umask 077 so that its AOF files are 0600 (the brokers' file store
 * makes its objects 0600 itself).
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawnBroker } from '../harness/broker-process.js';
import { howExited, stopChild } from '../harness/children.js';
import { freePort, waitForPort } from '../harness/ports.js';
import { redisServerArgs, spawnRedisServer } from '../harness/redis-server.js';
import type { Output } from './broker.js';

interface DevOptions {
  port: number;
  brokers: number;
  dataDir: string;
  flushMs: number;
  logLevel: string;
  httpPort: number | null;
}

function parseDevArgs(args: readonly string[]): DevOptions | string {
  const opts: DevOptions = { port: 9092, brokers: 1, dataDir: './data', flushMs: 5, logLevel: 'warn', httpPort: null };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = inline ?? args[++i];
    if (value === undefined) return `option ${flag} needs a value`;
    const int = (min: number, max: number): number | string => {
      const n = Number(value);
      return /^\d+$/.test(value) && n >= min && n <= max ? n : `${flag} "${value}" must be a whole number from ${min} to ${max}`;
    };
    let parsed: number | string;
    switch (flag) {
      case '--port':
        parsed = int(1, 65535);
        if (typeof parsed === 'string') return parsed;
        opts.port = parsed;
        break;
      case '--brokers':
        parsed = int(1, 16);
        if (typeof parsed === 'string') return parsed;
        opts.brokers = parsed;
        break;
      case '--flush-ms':
        parsed = int(1, 60000);
        if (typeof parsed === 'string') return parsed;
        opts.flushMs = parsed;
        break;
      case '--http-port':
        parsed = int(1, 65535);
        if (typeof parsed === 'string') return parsed;
        opts.httpPort = parsed;
        break;
      case '--data-dir':
        opts.dataDir = value;
        break;
      case '--log-level':
        opts.logLevel = value;
        break;
      default:
        return `unknown option ${flag}; options: --port, --brokers, --data-dir, --flush-ms, --http-port, --log-level`;
    }
  }
  if (opts.port + opts.brokers - 1 > 65535) return `--port ${opts.port} leaves no room for ${opts.brokers} brokers`;
  return opts;
}

/** Restarts of redis-server allowed within {@link REDIS_RESTART_WINDOW_MS}; one more death stops dev. */
const REDIS_MAX_RESTARTS = 4;
const REDIS_RESTART_WINDOW_MS = 60_000;
/** The pause before the n-th restart within the window: 100 ms, doubling, at most 2 s. */
function redisRestartDelayMs(n: number): number {
  return Math.min(2000, 100 * 2 ** (n - 1));
}

export async function runDev(args: readonly string[], output: Output): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    output.out('Usage: strata dev [--port 9092] [--brokers 1] [--data-dir ./data] [--flush-ms 5] [--http-port P] [--log-level warn]');
    return 0;
  }
  const opts = parseDevArgs(args);
  if (typeof opts === 'string') {
    output.err(`strata dev: ${opts}`);
    return 2;
  }
  const dataDir = path.resolve(opts.dataDir);
  const redisDir = path.join(dataDir, 'redis');
  const objectsDir = path.join(dataDir, 'objects');
  // Created private (a recursive mkdir gives each directory it creates the mode); the two
  // subfolders are this command's own, so ones left by an older version are made private too.
  mkdirSync(redisDir, { recursive: true, mode: 0o700 });
  mkdirSync(objectsDir, { recursive: true, mode: 0o700 });
  chmodSync(redisDir, 0o700);
  chmodSync(objectsDir, 0o700);

  let redis: ChildProcess | null = null;
  const brokers: ChildProcess[] = [];
  let stopping = false;
  let restartTimer: NodeJS.Timeout | null = null;
  /** Set when Redis keeps dying: dev stops on its own. */
  let gaveUp = false;
  /** Wakes the wait for a signal when dev gives up; set while it waits. */
  let wake: (() => void) | null = null;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    if (restartTimer !== null) clearTimeout(restartTimer);
    await Promise.all(brokers.map((c) => stopChild(c, 20000)));
    if (redis !== null) await stopChild(redis, 10000);
  };

  try {
    const redisPort = await freePort();
    const redisArgs = redisServerArgs({ port: redisPort, dir: redisDir, appendOnly: true, appendFsync: 'always', logLevel: 'warning' });
    // Its own process group, so a Ctrl-C in the terminal does not stop Redis before the
    // brokers have drained into it; this process stops it last. Umask 077 keeps its files private.
    const spawnRedis = (): ChildProcess => spawnRedisServer(redisArgs, { stdio: ['ignore', 'ignore', 'inherit'], detached: true, privateFiles: true });
    const deaths: number[] = [];
    /** Watches one redis-server child: when it dies unasked, starts the next (or gives up). */
    const supervise = (child: ChildProcess): void => {
      let ended = false;
      const onEnd = (how: string): void => {
        if (ended || stopping) return;
        ended = true;
        const now = Date.now();
        while (deaths.length > 0 && deaths[0]! <= now - REDIS_RESTART_WINDOW_MS) deaths.shift();
        deaths.push(now);
        if (deaths.length > REDIS_MAX_RESTARTS) {
          output.err(`strata dev: redis-server exited (${how}), ${deaths.length} times within a minute; stopping everything (see its errors above)`);
          gaveUp = true;
          wake?.();
          return;
        }
        const delay = redisRestartDelayMs(deaths.length);
        output.err(`strata dev: redis-server exited (${how}); restarting it on port ${redisPort} in ${delay} ms (restart ${deaths.length} of at most ${REDIS_MAX_RESTARTS} a minute)`);
        restartTimer = setTimeout(() => {
          restartTimer = null;
          if (stopping) return;
          redis = spawnRedis();
          supervise(redis);
        }, delay);
      };
      child.once('exit', (code, signal) => onEnd(howExited(code, signal)));
      child.once('error', (err) => onEnd(err.message));
    };

    redis = spawnRedis();
    const first = redis;
    const spawnFailed = new Promise<never>((_, reject) => first.once('error', reject));
    await Promise.race([waitForPort(redisPort, 15000, first, 'redis-server'), spawnFailed]);
    supervise(first);

    const brokerPorts: number[] = [];
    for (let i = 0; i < opts.brokers; i++) {
      const port = opts.port + i;
      brokerPorts.push(port);
      const brokerArgs = [
        '--redis',
        `redis://127.0.0.1:${redisPort}`,
        '--storage',
        `file://${objectsDir}`,
        '--listen',
        `127.0.0.1:${port}`,
        '--flush-ms',
        String(opts.flushMs),
        '--log-level',
        opts.logLevel,
        '--broker-session-timeout-ms',
        '3000',
      ];
      if (opts.httpPort !== null) brokerArgs.push('--http', `127.0.0.1:${opts.httpPort + i}`);
      const child = spawnBroker({ args: brokerArgs, stdio: ['ignore', 'inherit', 'inherit'] });
      child.once('exit', (code, signal) => {
        if (!stopping) output.err(`strata dev: broker on port ${port} exited (${howExited(code, signal)})`);
      });
      brokers.push(child);
    }
    await Promise.all(brokerPorts.map((p, i) => waitForPort(p, 30000, brokers[i], 'broker')));
    output.out(`Strata dev cluster is up: bootstrap.servers=127.0.0.1:${opts.port}`);
    output.out(`  brokers: ${brokerPorts.map((p) => `127.0.0.1:${p}`).join(', ')}`);
    output.out(`  redis:   redis://127.0.0.1:${redisPort} (AOF, appendfsync always)`);
    output.out(`  data:    ${dataDir}`);
    output.out('Press Ctrl-C to stop.');
  } catch (err) {
    const message = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'redis-server not found on PATH; install it (apt-get install redis-server) or run `npm start`, which does' : (err as Error).message;
    output.err(`strata dev: ${message}`);
    await stopAll();
    return 1;
  }

  await new Promise<void>((resolve) => {
    let received = false;
    // Stays installed: a second Ctrl-C while stopping kills the children instead of leaving them.
    const onSignal = (): void => {
      if (received) {
        for (const c of [...brokers, redis]) c?.kill('SIGKILL');
        return;
      }
      received = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    wake = resolve;
    if (gaveUp) resolve();
  });
  output.out('stopping…');
  await stopAll();
  return gaveUp ? 1 : 0;
}
