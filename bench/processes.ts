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
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS } from '../src/commands/broker.js';

/** The repository root: the nearest folder above this module holding package.json. */
export const REPO_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
})();

/** The built CLI the broker children run (from tsx and from dist alike). */
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');
/** The preload that lets the benchmark start and stop a broker's CPU profiler with SIGUSR2. */
export const PROFILE_HOOK = path.join(REPO_ROOT, 'dist', 'bench', 'profile-hook.js');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the OS for a free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port from a probe listener'))));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts connections; rejects if `child` exits or after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess, what = 'process'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited (${child.signalCode ?? `code ${child.exitCode}`}) before listening on ${port}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what}: nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

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
  static async stopChild(child: ChildProcess, timeoutMs = 20_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
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

/** Sends one inline PING; true when `+PONG` answers within `timeoutMs`. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) finish(answer.startsWith('+PONG'));
    });
  });
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
  const port = await freePort();
  const dir = group.subdir(`redis-${port}`);
  const aof = fsync === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', fsync];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...aof, '--logfile', ''];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  group.adopt('redis', child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-2000)));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
    if (failed) throw new Error(`could not run redis-server (is it installed? npm run setup installs it): ${failed.message}`);
    if (child.exitCode !== null) throw new Error(`redis-server exited during startup: ${stderr.trim()}`);
    if (await ping(port, 500)) break;
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer PING within 10 s`);
    await sleep(20);
  }
  return { name: 'redis', pid: child.pid!, child, url: `redis://127.0.0.1:${port}`, stop: () => ProcessGroup.stopChild(child, 10_000) };
}

/** Runs in the s3rver child: starts s3rver from the JSON config in the environment, prints the port. */
const S3RVER_SCRIPT = `
const config = JSON.parse(process.env.STRATA_BENCH_S3RVER);
const S3rver = require(config.module);
new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: config.directory, configureBuckets: [{ name: config.bucket }] })
  .run()
  .then((address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
        (err) => { process.stderr.write(String((err && err.stack) || err) + '\\n'); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

/**
 * Starts s3rver in a child process (it needs `--openssl-legacy-provider` on current Node) with
 * one bucket; resolves with the broker storage URL once it listens. The child also exits when
 * its stdin closes, i.e. when this process goes away.
 */
export async function startS3rver(group: ProcessGroup): Promise<Service & { url: string }> {
  const directory = group.subdir(`s3rver-${Date.now()}`);
  const bucket = 'strata-bench';
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', S3RVER_SCRIPT], {
    env: { ...process.env, NODE_OPTIONS: '', STRATA_BENCH_S3RVER: JSON.stringify({ module: modulePath, directory, bucket }) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  group.adopt('s3rver', child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-2000)));
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 30 s: ${stderr.trim()}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (t: string) => {
      stdout += t;
      if (!stdout.includes('\n')) return;
      clearTimeout(timer);
      try {
        resolve((JSON.parse(stdout.split('\n')[0]!) as { port: number }).port);
      } catch (err) {
        reject(new Error(`s3rver printed ${JSON.stringify(stdout)} instead of {"port":N}`, { cause: err }));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (code ${code}) during startup: ${stderr.trim()}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    name: 's3rver',
    pid: child.pid!,
    child,
    url: `s3://${bucket}?endpoint=${endpoint}&region=us-east-1&accessKeyId=S3RVER&secretAccessKey=S3RVER`,
    stop: () => ProcessGroup.stopChild(child, 5_000),
  };
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
    ...BROKER_NODE_FLAGS,
    ...nodeArgs,
    CLI,
    'broker',
    '--redis', options.redisUrl,
    '--storage', options.storageUrl,
    '--listen', `127.0.0.1:${port}`,
    '--http', `127.0.0.1:${httpPort}`,
    '--flush-ms', String(options.flushMs),
    '--log-level', 'warn',
    ...(options.args ?? []),
  ];
  const name = options.name ?? `broker-${port}`;
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', passThrough ? 'inherit' : 'ignore', 'pipe'] });
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
