/**
 * Test helper: a private `redis-server` child process on a free 127.0.0.1 port.
 *
 * Each server gets its own temporary directory and, by default, AOF with `appendfsync always`
 * (the durability `strata dev` promises), so {@link RedisServer.restart} proves what survives a
 * Redis restart. Servers never outlive the test process: {@link RedisServer.stop} removes one,
 * an `exit` hook kills any left over, and a watchdog shell kills the server if the test process
 * itself is killed (SIGKILL skips every hook, and vitest kills timed-out workers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** AOF with fsync on every write (default true); false runs a purely in-memory server. */
  appendOnly?: boolean;
  /** How long to wait for the first PING answer before giving up (default 10 s). */
  readyTimeoutMs?: number;
}

/** How a server process is stopped: SIGTERM lets Redis shut down cleanly, SIGKILL does not. */
export type StopSignal = 'SIGTERM' | 'SIGKILL';

/** A running `redis-server` owned by the test process. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The server's working directory (AOF files live here). */
  readonly dir: string;
  /** Stops the process (if running) and deletes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process and starts a new one on the same port and directory (AOF reload). */
  restart(options?: { signal?: StopSignal }): Promise<void>;
  /** Stops the process but keeps port and directory, so {@link start} can bring it back. */
  kill(signal?: StopSignal): Promise<void>;
  /** Starts the process again after {@link kill}; waits until PING answers. */
  start(): Promise<void>;
}

/** Every live server of this process, for the exit hook. */
const live = new Set<Instance>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const instance of live) {
      instance.killNow();
      rmSync(instance.dir, { recursive: true, force: true });
    }
  });
}

/** Asks the OS for a free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a probe listener'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Sends one inline PING and resolves true when `+PONG` comes back within `timeoutMs`. */
async function ping(port: number, timeoutMs: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class Instance implements RedisServer {
  readonly url: string;
  #child: ChildProcess | null = null;
  #watchdog: ChildProcess | null = null;
  #output = '';
  #stopped = false;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly appendOnly: boolean,
    readonly readyTimeoutMs: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error(`redis-server on port ${this.port} was stopped for good`);
    if (this.#child !== null) throw new Error(`redis-server on port ${this.port} is already running`);
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--save', '',
      '--appendonly', this.appendOnly ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--daemonize', 'no',
      '--logfile', '',
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    live.add(this);
    installExitHook();
    if (child.pid !== undefined) this.#startWatchdog(child.pid);

    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
      if (failed !== null) {
        this.killNow();
        throw new Error(`could not run redis-server (is it installed?): ${failed.message}`);
      }
      if (exited) {
        this.killNow();
        throw new Error(`redis-server on port ${this.port} exited during startup:\n${this.#output}`);
      }
      if (await ping(this.port, 500)) return;
      if (Date.now() > deadline) {
        this.killNow();
        throw new Error(`redis-server on port ${this.port} did not answer PING within ${this.readyTimeoutMs} ms:\n${this.#output}`);
      }
      await sleep(20);
    }
  }

  /**
   * Starts `sh` polling the test process; when it is gone (killed without running hooks) the
   * shell kills the server and removes its directory. It also ends by itself once the server
   * has exited.
   */
  #startWatchdog(redisPid: number): void {
    const script =
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${redisPid} 2>/dev/null; do sleep 1; done; ` +
      `if ! kill -0 ${process.pid} 2>/dev/null; then kill -9 ${redisPid} 2>/dev/null; rm -rf '${this.dir}'; fi; exit 0`;
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
    rmSync(this.dir, { recursive: true, force: true });
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

  /** Synchronous SIGKILL, for a failed start and for the exit hook. Keeps the directory. */
  killNow(): void {
    this.#stopWatchdog();
    this.#child?.kill('SIGKILL');
    this.#child = null;
    live.delete(this);
  }
}

/**
 * Starts a `redis-server` on a free port in a fresh temporary directory and waits until it
 * answers PING. Call `stop()` in `afterAll` (the exit hook is only the safety net).
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const appendOnly = options.appendOnly ?? true;
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let lastError: unknown;
  // Another process can take the probed port before redis-server binds it; try a new one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-redis-'));
    const instance = new Instance(await freePort(), dir, appendOnly, readyTimeoutMs);
    try {
      await instance.start();
      return instance;
    } catch (err) {
      lastError = err;
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw lastError;
}
