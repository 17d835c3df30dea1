/**
 * The one way the project starts `redis-server`: for `strata dev`, the tests and the benchmark.
 *
 * {@link startRedisServer} runs a private server on a free 127.0.0.1 port, by default with AOF
 * and `appendfsync always` (the durability `strata dev` promises), in a fresh temporary
 * directory, and waits until it answers PING; the returned {@link RedisServer} can be killed,
 * restarted over the same AOF, and stopped. A server is tied to this process unless told
 * otherwise: an `exit` hook kills any left over, and a watchdog shell kills it if this process
 * is itself killed (SIGKILL skips every hook, and vitest kills timed-out workers).
 *
 * `strata dev` supervises its server itself (it restarts it when it dies), so it uses the two
 * pieces below the managed server: {@link redisServerArgs} and {@link spawnRedisServer}.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './ports.js';

/** How Redis persists: AOF fsynced on every write (what `strata dev` runs) or once a second. */
export type AppendFsync = 'always' | 'everysec';

/** What a server is configured with, as {@link redisServerArgs} turns it into flags. */
export interface RedisServerConfig {
  port: number;
  /** Working directory: the AOF files live here. */
  dir: string;
  /** AOF on (default true); false runs a purely in-memory server. */
  appendOnly?: boolean;
  /** When the AOF is fsynced (default `always`). */
  appendFsync?: AppendFsync;
  /** Redis's `--loglevel` (default Redis's own, `notice`). */
  logLevel?: 'debug' | 'verbose' | 'notice' | 'warning';
}

/** The command-line flags of a server on 127.0.0.1 that never snapshots (RDB off). */
export function redisServerArgs(config: RedisServerConfig): string[] {
  const args = [
    '--port', String(config.port),
    '--bind', '127.0.0.1',
    '--dir', config.dir,
    '--save', '',
    '--appendonly', config.appendOnly === false ? 'no' : 'yes',
    '--appendfsync', config.appendFsync ?? 'always',
    '--daemonize', 'no',
    '--logfile', '',
  ];
  if (config.logLevel !== undefined) args.push('--loglevel', config.logLevel);
  return args;
}

/** How {@link spawnRedisServer} starts the process. */
export interface SpawnRedisOptions {
  stdio?: StdioOptions;
  /** Its own process group, so a Ctrl-C in the terminal does not reach it. */
  detached?: boolean;
  /**
   * Run with umask 077, so the files it creates (the AOF directory, its files, a dump) are the
   * user's only. The umask is the process's: it is set just around the spawn, which forks
   * synchronously, so only the child runs with it. Not available on worker threads.
   */
  privateFiles?: boolean;
}

/**
 * Spawns `redis-server` with `args` and returns at once; a missing binary is reported as the
 * child's `error` event (code ENOENT).
 */
export function spawnRedisServer(args: readonly string[], options: SpawnRedisOptions = {}): ChildProcess {
  const spawnIt = (): ChildProcess => spawn('redis-server', args, { stdio: options.stdio ?? 'ignore', detached: options.detached ?? false });
  if (!options.privateFiles) return spawnIt();
  const saved = process.umask(0o077);
  try {
    return spawnIt();
  } finally {
    process.umask(saved);
  }
}

/** Sends one inline PING and resolves true when `+PONG` comes back within `timeoutMs`. */
export function pingRedis(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
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
      // A server still loading its AOF answers "-LOADING …": not ready yet.
      if (answer.includes('\r\n')) finish(answer.startsWith('+PONG'));
    });
  });
}

/** Options for {@link startRedisServer}. */
export interface StartRedisOptions {
  /** AOF (default true); false runs a purely in-memory server. */
  appendOnly?: boolean;
  /** When the AOF is fsynced (default `always`). */
  appendFsync?: AppendFsync;
  /** How long to wait for the first PING answer before giving up (default 10 s). */
  readyTimeoutMs?: number;
  /**
   * Working directory, which the caller owns and removes. By default a fresh temporary
   * directory that {@link RedisServer.stop} removes.
   */
  dir?: string;
  /**
   * Kill the server when this process ends, even by SIGKILL (default true). A caller that
   * tracks its children itself (the benchmark's process group) turns this off.
   */
  tied?: boolean;
}

/** How a server process is stopped: SIGTERM lets Redis shut down cleanly, SIGKILL does not. */
export type StopSignal = 'SIGTERM' | 'SIGKILL';

/** A running `redis-server` owned by this process. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The server's working directory (AOF files live here). */
  readonly dir: string;
  /** The current server process, or null while it is stopped. */
  readonly child: ChildProcess | null;
  /** Stops the process (if running) and deletes its directory if it made it. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process and starts a new one on the same port and directory (AOF reload). */
  restart(options?: { signal?: StopSignal }): Promise<void>;
  /** Stops the process but keeps port and directory, so {@link start} can bring it back. */
  kill(signal?: StopSignal): Promise<void>;
  /** Starts the process again after {@link kill}; waits until PING answers. */
  start(): Promise<void>;
}

/** Every live tied server of this process, for the exit hook. */
const live = new Set<Instance>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const instance of live) {
      instance.killNow();
      instance.removeDir();
    }
  });
}

class Instance implements RedisServer {
  readonly url: string;
  #child: ChildProcess | null = null;
  #watchdog: ChildProcess | null = null;
  #output = '';
  #stopped = false;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly ownsDir: boolean,
    readonly options: StartRedisOptions,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  get child(): ChildProcess | null {
    return this.#child;
  }

  get #tied(): boolean {
    return this.options.tied ?? true;
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error(`redis-server on port ${this.port} was stopped for good`);
    if (this.#child !== null) throw new Error(`redis-server on port ${this.port} is already running`);
    const readyTimeoutMs = this.options.readyTimeoutMs ?? 10_000;
    const args = redisServerArgs({ port: this.port, dir: this.dir, appendOnly: this.options.appendOnly, appendFsync: this.options.appendFsync });
    const child = spawnRedisServer(args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#output = '';
    const collect = (chunk: Buffer): void => {
      // Keep a tail for the error message when the server fails to start.
      this.#output = (this.#output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (this.#tied) {
      live.add(this);
      installExitHook();
      if (child.pid !== undefined) this.#startWatchdog(child.pid);
    }

    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
      if (failed !== null) {
        this.killNow();
        throw new Error(`could not run redis-server (is it installed? \`npm run setup\` installs it): ${failed.message}`);
      }
      if (exited) {
        this.killNow();
        throw new Error(`redis-server on port ${this.port} exited during startup:\n${this.#output}`);
      }
      if (await pingRedis(this.port, 500)) return;
      if (Date.now() > deadline) {
        this.killNow();
        throw new Error(`redis-server on port ${this.port} did not answer PING within ${readyTimeoutMs} ms:\n${this.#output}`);
      }
      await sleep(20);
    }
  }

  /**
   * Starts `sh` polling this process; when it is gone (killed without running hooks) the
   * shell kills the server and removes its directory if the harness made it. It also ends by
   * itself once the server has exited.
   */
  #startWatchdog(redisPid: number): void {
    const cleanup = this.ownsDir ? `rm -rf '${this.dir}'; ` : '';
    const script =
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${redisPid} 2>/dev/null; do sleep 1; done; ` +
      `if ! kill -0 ${process.pid} 2>/dev/null; then kill -9 ${redisPid} 2>/dev/null; ${cleanup}fi; exit 0`;
    // detached: the shell leads its own process group, so killing the group also ends `sleep`.
    const watchdog = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
    watchdog.unref();
    this.#watchdog = watchdog;
  }

  async kill(signal: StopSignal = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#stopWatchdog();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
      if (timedOut) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    this.#child = null;
    live.delete(this);
  }

  async restart(options: { signal?: StopSignal } = {}): Promise<void> {
    await this.kill(options.signal ?? 'SIGTERM');
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    await this.kill('SIGTERM');
    this.#stopped = true;
    this.removeDir();
  }

  #stopWatchdog(): void {
    const watchdog = this.#watchdog;
    this.#watchdog = null;
    if (watchdog?.pid === undefined || watchdog.exitCode !== null || watchdog.signalCode !== null) return;
    try {
      process.kill(-watchdog.pid, 'SIGKILL');
    } catch (_err) {
      // ESRCH: the watchdog already ended on its own.
    }
  }

  /** Removes the working directory if the harness made it. */
  removeDir(): void {
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous SIGKILL, for a failed start and for the exit hook. Keeps the directory. */
  killNow(): void {
    this.#stopWatchdog();
    this.#child?.kill('SIGKILL');
    this.#child = null;
    live.delete(this);
  }
}

/**
 * Starts a `redis-server` on a free port and waits until it answers PING. Call `stop()` when
 * done (the exit hook is only the safety net).
 */
export async function startRedisServer(options: StartRedisOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  // Another process can take the probed port before redis-server binds it; try a new one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'strata-redis-'));
    const instance = new Instance(await freePort(), dir, ownsDir, options);
    try {
      await instance.start();
      return instance;
    } catch (err) {
      lastError = err;
      instance.removeDir();
    }
  }
  throw lastError;
}
