/**
 * Redis clients and the Lua script registry (docs/architecture.md §5).
 *
 * Two kinds of client per broker: a **command client** for reads and commits, which never
 * queues or replays a command behind a broken connection, and a **subscriber client** for
 * pub/sub, which may (it only ever re-subscribes). Every failure that means "Redis is not
 * answering" becomes a {@link RedisUnavailableError}, which the broker answers with
 * REQUEST_TIMED_OUT so clients retry.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { ConfigError, RedisUnavailableError } from '../errors.js';

/** Tuning for {@link createCommandClient} and {@link createSubscriberClient}. */
export interface RedisClientOptions {
  /** A command without an answer after this long fails (default 5000 ms); 0 disables. */
  commandTimeoutMs?: number;
  /** Limit for establishing one TCP (and TLS) connection (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect backoff (default 2000 ms). */
  maxReconnectDelayMs?: number;
  /** `CLIENT SETNAME` value, visible in `CLIENT LIST`. */
  connectionName?: string;
  /**
   * Receives connection errors (refused, reset, …) while the client reconnects in the
   * background; the broker logs them. Without it ioredis prints them to stderr.
   */
  onError?: (err: Error) => void;
}

/** Reconnect backoff: 50 ms doubling, capped, with jitter so brokers do not reconnect in step. */
function reconnectDelay(maxDelayMs: number): (attempt: number) => number {
  return (attempt) => {
    const base = Math.min(maxDelayMs, 50 * 2 ** Math.min(attempt, 16));
    return Math.round(base / 2 + Math.random() * (base / 2));
  };
}

/** The URL with its password replaced, for error messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

/** Checks the URL's scheme (`redis://host:port/db` or `rediss://` for TLS). */
function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new ConfigError(`Redis URL "${redactUrl(url)}" is not a URL; expected redis://host:port[/db] or rediss://…`, { cause: err });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`Redis URL "${redactUrl(url)}" has scheme "${parsed.protocol}"; expected redis:// or rediss://`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new ConfigError(`Redis URL "${redactUrl(url)}" names database "${db}"; expected a number such as /0`);
  }
}

function baseOptions(options: RedisClientOptions): RedisOptions {
  return {
    connectTimeout: options.connectTimeoutMs ?? 5000,
    retryStrategy: reconnectDelay(options.maxReconnectDelayMs ?? 2000),
    ...(options.connectionName === undefined ? {} : { connectionName: options.connectionName }),
  };
}

/**
 * Creates the command client for `url`. It starts connecting at once; use {@link waitReady}
 * before the first command, since commands sent while disconnected fail immediately.
 *
 * Why these settings:
 * - `enableOfflineQueue: false`: a commit issued while the connection is down fails at once
 *   instead of waiting for a reconnect that may never come; the produce is answered with a
 *   retriable error.
 * - `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false`: a command whose
 *   connection dropped before the reply may have run. ioredis would otherwise send it again
 *   after reconnecting, which for a commit assigns a second set of offsets to the same bytes
 *   (and can reorder commits of one partition). Failing it hands the ambiguity to the
 *   producer's retry, where idempotence resolves it, as with a Kafka request timeout.
 * - `commandTimeout`: a Redis that stops answering without closing the socket (paused,
 *   partitioned) would otherwise hang every caller. Not for blocking commands (BLPOP, …).
 */
export function createCommandClient(url: string, options: RedisClientOptions = {}): Redis {
  checkRedisUrl(url);
  const commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  const client = new Redis(url, {
    ...baseOptions(options),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    ...(commandTimeoutMs > 0 ? { commandTimeout: commandTimeoutMs } : {}),
  });
  if (options.onError !== undefined) client.on('error', options.onError);
  return client;
}

/**
 * Creates the subscriber client for `url`: offline queue on and automatic re-subscription
 * after reconnects (a SUBSCRIBE replayed is harmless). Updates published while it was
 * disconnected are lost, so listeners re-read offsets after a reconnect.
 */
export function createSubscriberClient(url: string, options: RedisClientOptions = {}): Redis {
  checkRedisUrl(url);
  const client = new Redis(url, { ...baseOptions(options), autoResubscribe: true, maxRetriesPerRequest: null });
  if (options.onError !== undefined) client.on('error', options.onError);
  return client;
}

/**
 * Resolves once `client` is ready for commands; rejects with {@link RedisUnavailableError}
 * after `timeoutMs` (the client keeps reconnecting in the background).
 */
export async function waitReady(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') {
    throw new RedisUnavailableError('Redis client was closed; create a new one');
  }
  await new Promise<void>((resolve, reject) => {
    let lastError: unknown;
    const onError = (err: unknown): void => {
      lastError = err;
    };
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onEnd = (): void => {
      cleanup();
      reject(new RedisUnavailableError('Redis client was closed while connecting', { cause: lastError }));
    };
    const timer = setTimeout(() => {
      cleanup();
      const address = `${client.options.host ?? '?'}:${client.options.port ?? '?'}`;
      reject(new RedisUnavailableError(`Redis at ${address} not ready after ${timeoutMs} ms; is it running?`, { cause: lastError }));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}

/** Reply-error prefixes that mean "this Redis cannot serve now, try again later". */
const UNAVAILABLE_REPLIES = ['LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'NOREPLICAS'];

/**
 * Whether `err` means Redis is unreachable or temporarily unable to serve: every ioredis
 * connection-level error (closed stream, offline, timeout, socket errno) and the reply errors
 * a loading, busy or failing-over server sends. Other reply errors (a script bug, WRONGTYPE)
 * are not: retrying them cannot help.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') {
    return UNAVAILABLE_REPLIES.some((prefix) => err.message.startsWith(prefix));
  }
  // ioredis raises plain Errors for "Stream isn't writeable…", "Connection is closed.",
  // "Command timed out", MaxRetriesPerRequestError and socket errors (ECONNREFUSED, …).
  return true;
}

/**
 * Maps an error from an ioredis call: unavailability becomes {@link RedisUnavailableError}
 * (with the original as `cause`), anything else is returned unchanged.
 */
export function mapRedisError(err: unknown, operation: string): unknown {
  if (err instanceof RedisUnavailableError || !isRedisUnavailable(err)) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new RedisUnavailableError(`Redis unavailable during ${operation}: ${detail}`, { cause: err });
}

/** Runs `call`, rethrowing its failure through {@link mapRedisError}. */
export async function redisCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw mapRedisError(err, operation);
  }
}

/** A Lua script from a `src/<domain>/lua/` folder, with its SHA1 for EVALSHA. */
export interface LuaScript {
  /** File name without `.lua`, e.g. `commit`; unique over every folder. */
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/**
 * Finds `src/` from this module's location. The build copies no assets, so from
 * `dist/src/coordination/` (after `tsc`) as from `src/coordination/` (tsx, vitest) the folder
 * is found by walking up to the directory holding package.json.
 */
function sourceDirectory(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'src');
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}; cannot locate the Lua scripts`);
    }
    dir = parent;
  }
}

/**
 * The folders holding Lua scripts: `src/<domain>/lua/`, each beside the store that runs its
 * scripts (partition state in `log/`, topics in `cluster/`, groups in `groups/`, leases here).
 */
export function luaDirectories(): string[] {
  const src = sourceDirectory();
  return readdirSync(src, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(src, d.name, 'lua')))
    .map((d) => path.join(src, d.name, 'lua'))
    .sort();
}

let loaded: ReadonlyMap<string, LuaScript> | null = null;

/** Every `.lua` file of every {@link luaDirectories} folder, read once per process. */
export function luaScripts(): ReadonlyMap<string, LuaScript> {
  if (loaded !== null) return loaded;
  const scripts = new Map<string, LuaScript>();
  for (const dir of luaDirectories()) {
    for (const file of readdirSync(dir).sort()) {
      if (!file.endsWith('.lua')) continue;
      const source = readFileSync(path.join(dir, file), 'utf8');
      const name = file.slice(0, -'.lua'.length);
      if (scripts.has(name)) throw new Error(`two Lua scripts are named "${name}" (${dir}); script names must be unique`);
      scripts.set(name, { name, source, sha: createHash('sha1').update(source).digest('hex') });
    }
  }
  // In name order, whichever folder a script is in.
  loaded = new Map([...scripts].sort(([a], [b]) => (a < b ? -1 : 1)));
  return loaded;
}

/**
 * Redis's clock (TIME), in ms since the epoch. Commit deadlines and object GC's first
 * sightings are measured on it, so no broker's clock enters their comparisons.
 */
export async function redisTimeMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redisCall('read the time', () => redis.time());
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** One script invocation for {@link ScriptRunner.runMany}. */
export interface ScriptCall {
  script: string;
  keys: readonly string[];
  args: readonly (string | number | Buffer)[];
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Runs the registry's scripts with EVALSHA, loading them (`SCRIPT LOAD`) when Redis answers
 * NOSCRIPT — after a restart without persistence of the script cache, a failover, or a
 * `SCRIPT FLUSH`. A NOSCRIPT reply means the script did not run, so resending it cannot
 * apply a commit twice.
 */
export class ScriptRunner {
  readonly #redis: Redis;
  readonly #scripts: ReadonlyMap<string, LuaScript>;

  constructor(redis: Redis, scripts: ReadonlyMap<string, LuaScript> = luaScripts()) {
    this.#redis = redis;
    this.#scripts = scripts;
  }

  #script(name: string): LuaScript {
    const script = this.#scripts.get(name);
    if (script === undefined) throw new Error(`no Lua script "${name}" in src/*/lua`);
    return script;
  }

  #queue(pipeline: ChainableCommander, call: ScriptCall): void {
    const script = this.#script(call.script);
    pipeline.evalsha(script.sha, call.keys.length, ...call.keys, ...call.args);
  }

  /** `SCRIPT LOAD`s the named scripts (one round trip). */
  async load(names: Iterable<string>): Promise<void> {
    const pipeline = this.#redis.pipeline();
    for (const name of new Set(names)) pipeline.script('LOAD', this.#script(name).source);
    const replies = await redisCall('SCRIPT LOAD', () => pipeline.exec());
    for (const [err] of replies ?? []) {
      if (err) throw mapRedisError(err, 'SCRIPT LOAD');
    }
  }

  /** Runs one script and returns its reply. */
  async run(call: ScriptCall): Promise<unknown> {
    const [reply] = await this.runMany([call]);
    return reply;
  }

  /**
   * Runs the calls in one pipeline and returns their replies in order. Calls answered
   * NOSCRIPT are run again, once, after loading their scripts. Any other error rejects the
   * whole batch (mapped with {@link mapRedisError}); the other calls may have run.
   */
  async runMany(calls: readonly ScriptCall[]): Promise<unknown[]> {
    if (calls.length === 0) return [];
    const replies = await this.#exec(calls);
    const missing: number[] = [];
    replies.forEach(([err], i) => {
      if (isNoScript(err)) missing.push(i);
    });
    if (missing.length > 0) {
      await this.load(missing.map((i) => calls[i].script));
      const again = await this.#exec(missing.map((i) => calls[i]));
      missing.forEach((i, j) => {
        replies[i] = again[j];
      });
    }
    return replies.map(([err, reply], i) => {
      if (err) throw mapRedisError(err, `script ${calls[i].script}`);
      return reply;
    });
  }

  async #exec(calls: readonly ScriptCall[]): Promise<[Error | null, unknown][]> {
    const pipeline = this.#redis.pipeline();
    for (const call of calls) this.#queue(pipeline, call);
    const replies = await redisCall(`script ${calls[0].script}`, () => pipeline.exec());
    if (replies === null) throw new RedisUnavailableError(`pipeline of script ${calls[0].script} was discarded`);
    return replies;
  }
}
