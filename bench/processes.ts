/**
 * The processes a benchmark run needs — a private `redis-server`, optionally an `s3rver`, and
 * brokers running the built CLI — on free loopback ports, plus their clean-up.
 *
 * Everything started here is registered with one {@link ProcessGroup}. It stops the children
 * on `stopAll()`, on Ctrl-C and on normal exit; and a detached watchdog shell kills whatever
 * is left (and removes the scratch directory) if the benchmark process itself is killed
 * without running any hook.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtCli, repoRoot, spawnBroker } from '../src/harness/broker-process.js';
import { stopChild } from '../src/harness/children.js';
import { freePort, waitForPort } from '../src/harness/ports.js';
import { startRedisServer } from '../src/harness/redis-server.js';
import { startS3rver as startS3rverProcess } from '../src/harness/s3rver.js';

/** The repository root: the nearest folder above this module holding package.json. */
export const REPO_ROOT: string = repoRoot();

/** The built CLI the broker children run (from tsx and from dist alike). */
export const CLI = builtCli();
/** The preload that lets the benchmark start and stop a broker's CPU profiler with SIGUSR2. */
export const PROFILE_HOOK = path.join(REPO_ROOT, 'dist', 'bench', 'profile-hook.js');

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;

/** User + system CPU seconds a process has used so far, from /proc (null where unavailable). */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * CPU seconds the whole machine has spent in processes so far (user, nice and system time,
 * summed over cores), from /proc/stat; null where unavailable. Interrupt time is left out: the
 * loopback traffic of the benchmark itself is partly accounted there rather than to any
 * process. Compared with the benchmark's own processes it shows how much CPU something else
 * took during a run.
 */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    return (v[0]! + v[1]! + v[2]!) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** One child the group owns. */
interface Owned {
  name: string;
  child: ChildProcess;
}

/**
 * The benchmark's children and scratch directory. One per run; {@link ProcessGroup.stopAll}
 * at the end, and hooks for Ctrl-C, normal exit and a killed parent.
 */
export class ProcessGroup {
  /** Scratch directory for Redis, the object store and s3rver; removed at the end. */
  readonly dir: string;
  readonly #owned = new Set<Owned>();
  readonly #pidFile: string;
  #watchdog: ChildProcess | null = null;
  #stopping: Promise<void> | null = null;

  constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
    this.#pidFile = path.join(os.tmpdir(), `${path.basename(this.dir)}.pids`);
    writeFileSync(this.#pidFile, '');
    this.#startWatchdog();
    process.once('exit', () => this.#killNow());
    // An interrupted run's data is worthless: kill at once rather than wait for drains.
    const onSignal = (signal: NodeJS.Signals): void => {
      process.stderr.write(`\nbench: ${signal}; killing brokers, Redis and the object store\n`);
      this.#killNow();
      process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  /** A fresh subdirectory of the scratch directory. */
  subdir(name: string): string {
    const d = path.join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Registers a child: it is stopped by {@link stopAll} and killed if this process dies. */
  adopt(name: string, child: ChildProcess): void {
    const owned = { name, child };
    this.#owned.add(owned);
    child.once('exit', () => {
      this.#owned.delete(owned);
      this.#writePids();
    });
    this.#writePids();
  }

  /** SIGTERM (then SIGKILL after `timeoutMs`) and wait for exit. */
  static stopChild(child: ChildProcess, timeoutMs = 20_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return stopChild(child, timeoutMs, signal);
  }

  /** Stops brokers first (they drain into Redis and the store), then everything else. */
  stopAll(): Promise<void> {
    this.#stopping ??= (async () => {
      const all = [...this.#owned];
      await Promise.all(all.filter((o) => o.name.startsWith('broker')).map((o) => ProcessGroup.stopChild(o.child)));
      await Promise.all(all.filter((o) => !o.name.startsWith('broker')).map((o) => ProcessGroup.stopChild(o.child, 10_000)));
      this.#stopWatchdog();
      rmSync(this.dir, { recursive: true, force: true });
      rmSync(this.#pidFile, { force: true });
    })();
    return this.#stopping;
  }

  #writePids(): void {
    const pids = [...this.#owned].map((o) => o.child.pid).filter((p) => p !== undefined);
    try {
      writeFileSync(this.#pidFile, pids.join(' '));
    } catch {
      // The pid file is only the watchdog's safety net; the in-process hooks still work.
    }
  }

  #startWatchdog(): void {
    const script =
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
      `kill -9 $(cat '${this.#pidFile}') 2>/dev/null; rm -rf '${this.dir}' '${this.#pidFile}'; exit 0`;
    const watchdog = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
    watchdog.unref();
    this.#watchdog = watchdog;
  }

  #stopWatchdog(): void {
    const pid = this.#watchdog?.pid;
    this.#watchdog = null;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ESRCH: it has already gone.
    }
  }

  #killNow(): void {
    for (const o of this.#owned) o.child.kill('SIGKILL');
    this.#stopWatchdog();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.#pidFile, { force: true });
  }
}

/** A running child process with its pid and how to stop it. */
export interface Service {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** How the benchmark's Redis persists: `always` is what `strata dev` runs. */
export type RedisFsync = 'always' | 'everysec' | 'off';

/**
 * Starts `redis-server` in a fresh directory — by default as `strata dev` runs it, AOF with
 * `appendfsync always` — and waits for PING.
 */
export async function startRedis(group: ProcessGroup, fsync: RedisFsync = 'always'): Promise<Service & { url: string }> {
  const dir = mkdtempSync(path.join(group.dir, 'redis-'));
  const server = await startRedisServer({ dir, appendOnly: fsync !== 'off', appendFsync: fsync === 'off' ? undefined : fsync, tied: false });
  const child = server.child!;
  group.adopt('redis', child);
  return { name: 'redis', pid: child.pid!, child, url: server.url, stop: () => ProcessGroup.stopChild(child, 10_000) };
}

/**
 * Starts s3rver (in a child process: it needs `--openssl-legacy-provider` on current Node) with
 * one bucket; resolves with the broker storage URL once it listens. The child also exits when
 * its stdin closes, i.e. when this process goes away.
 */
export async function startS3rver(group: ProcessGroup): Promise<Service & { url: string }> {
  const s3 = await startS3rverProcess({ bucket: 'strata-bench', directory: group.subdir(`s3rver-${Date.now()}`) });
  group.adopt('s3rver', s3.child);
  return { name: 's3rver', pid: s3.child.pid!, child: s3.child, url: s3.url, stop: () => ProcessGroup.stopChild(s3.child, 5_000) };
}

/** Prometheus counters and gauges of a broker's /metrics, by name. */
export type Metrics = Record<string, number>;

/** A broker child process. */
export interface BrokerProcess extends Service {
  readonly port: number;
  readonly httpPort: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Scrapes /metrics. */
  metrics(): Promise<Metrics>;
  /** CPU seconds the process has used so far. */
  cpuSeconds(): number;
}

export interface BrokerOptions {
  redisUrl: string;
  storageUrl: string;
  flushMs: number;
  /** Extra broker flags. */
  args?: string[];
  /** Load the profile hook (SIGUSR2 starts/stops the CPU profiler), writing into this folder. */
  profileDir?: string;
  name?: string;
}

/** Starts `node dist/src/cli.js broker …` on free ports with the admin HTTP listener on. */
export async function startBroker(group: ProcessGroup, options: BrokerOptions): Promise<BrokerProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build (npm run bench does)`);
  const port = await freePort();
  const httpPort = await freePort();
  // Diagnostics: extra node flags for the broker (e.g. --trace-gc) and its output passed through.
  const nodeArgs: string[] = (process.env.STRATA_BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const passThrough = Boolean(process.env.STRATA_BENCH_BROKER_LOG);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.profileDir) {
    nodeArgs.push('--import', PROFILE_HOOK);
    env.STRATA_BENCH_PROFILE_DIR = options.profileDir;
  }
  const args = [
    '--redis', options.redisUrl,
    '--storage', options.storageUrl,
    '--listen', `127.0.0.1:${port}`,
    '--http', `127.0.0.1:${httpPort}`,
    '--flush-ms', String(options.flushMs),
    '--log-level', 'warn',
    ...(options.args ?? []),
  ];
  const name = options.name ?? `broker-${port}`;
  const child = spawnBroker({ cli: [CLI], nodeArgs, args, env, stdio: ['ignore', passThrough ? 'inherit' : 'ignore', 'pipe'] });
  group.adopt(name.startsWith('broker') ? name : `broker-${name}`, child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => {
    stderr = (stderr + t).slice(-4000);
    if (passThrough) process.stderr.write(t);
  });
  try {
    await waitForPort(port, 30_000, child, 'broker');
    await waitForPort(httpPort, 10_000, child, 'broker admin HTTP');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderr.trim()}`, { cause: err });
  }
  const pid = child.pid!;
  return {
    name,
    pid,
    child,
    port,
    httpPort,
    address: `127.0.0.1:${port}`,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
      if (!res.ok) throw new Error(`GET /metrics of ${name} answered ${res.status}`);
      return parseMetrics(await res.text());
    },
    cpuSeconds() {
      return cpuSecondsOf(pid) ?? Number.NaN;
    },
    stop: () => ProcessGroup.stopChild(child, 30_000),
  };
}

/** Parses the Prometheus text format (no labels) into name → value. */
export function parseMetrics(text: string): Metrics {
  const out: Metrics = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}
