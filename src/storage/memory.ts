/**
 * An in-memory object store for tests, with fault and latency injection.
 *
 * `memory://` opens a private, empty store. `memory://<name>` opens a store over a bucket
 * shared by every store opened with the same name in this process, so several in-process
 * brokers can see the same objects while each keeps its own faults, latency and counters.
 *
 * Injected failures are retriable StorageErrors, like an S3 503, so callers take the same
 * path they would in production.
 */
import { StorageError, ObjectNotFoundError } from '../errors.js';
import {
  bodyLength,
  checkRange,
  closedError,
  countRequest,
  emptyStats,
  type ByteRange,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOp,
  type ObjectStoreStats,
} from './object-store.js';

const ALL_OPS: readonly ObjectStoreOp[] = ['put', 'get', 'head', 'list', 'delete'];

/** What an operation is about to touch, as seen by fault predicates. */
export interface FaultContext {
  op: ObjectStoreOp;
  /** The key (put, get, head), the prefix (list) or the keys of the batch (delete). */
  keys: readonly string[];
}

/** How one injected failure behaves. */
export interface FaultOptions {
  /** The error to throw; a retriable StorageError naming the operation by default. */
  error?: Error;
  /**
   * `before` (default) fails without touching the data. `after` applies the operation and
   * then fails, like a put whose response was lost: the object exists although the caller
   * saw an error.
   */
  when?: 'before' | 'after';
}

/** A fixed delay, or a delay drawn uniformly from `[min, max]`, in milliseconds. */
export type Latency = number | { min: number; max: number };

interface CountedFault {
  ops: ReadonlySet<ObjectStoreOp>;
  remaining: number;
  options: FaultOptions;
}

interface PredicateFault {
  predicate: (ctx: FaultContext) => boolean;
  options: FaultOptions;
}

/**
 * Controls the failures and delays a {@link MemoryObjectStore} injects. Rules are checked in
 * order: counted failures (`failNext`), then predicates (`failWhile`), then the random rate.
 */
export class FaultController {
  #counted: CountedFault[] = [];
  #predicates: PredicateFault[] = [];
  #rate = new Map<ObjectStoreOp, number>();
  #latency = new Map<ObjectStoreOp, Latency>();
  #random: () => number;

  /** @param random source of uniform numbers in [0, 1), for failure rates and latency ranges */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /**
   * Fails the next `count` operations of kind `op` (or of any listed kind), with the given
   * error or {@link FaultOptions}.
   */
  failNext(op: ObjectStoreOp | readonly ObjectStoreOp[], count = 1, options: FaultOptions | Error = {}): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`failNext count ${count} must be a positive integer`);
    this.#counted.push({
      ops: new Set(typeof op === 'string' ? [op] : op),
      remaining: count,
      options: options instanceof Error ? { error: options } : options,
    });
  }

  /**
   * Fails every operation for which `predicate` returns true, until the returned function is
   * called (or {@link reset}).
   */
  failWhile(predicate: (ctx: FaultContext) => boolean, options: FaultOptions = {}): () => void {
    const rule: PredicateFault = { predicate, options };
    this.#predicates.push(rule);
    return () => {
      this.#predicates = this.#predicates.filter((r) => r !== rule);
    };
  }

  /** Fails each operation of the given kinds (all by default) with probability `rate`. */
  setFailureRate(rate: number, ops: readonly ObjectStoreOp[] = ALL_OPS): void {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`failure rate ${rate} must be between 0 and 1`);
    for (const op of ops) this.#rate.set(op, rate);
  }

  /** Delays each operation of the given kinds (all by default) before it runs. */
  setLatency(latency: Latency, ops: readonly ObjectStoreOp[] = ALL_OPS): void {
    const { min, max } = typeof latency === 'number' ? { min: latency, max: latency } : latency;
    if (!(min >= 0 && max >= min)) throw new RangeError(`latency ${JSON.stringify(latency)} needs 0 <= min <= max`);
    for (const op of ops) this.#latency.set(op, latency);
  }

  /** Removes every failure rule, rate and latency. */
  reset(): void {
    this.#counted = [];
    this.#predicates = [];
    this.#rate.clear();
    this.#latency.clear();
  }

  /** The delay to apply to `op` now, in milliseconds. */
  delayMs(op: ObjectStoreOp): number {
    const latency = this.#latency.get(op);
    if (latency === undefined) return 0;
    if (typeof latency === 'number') return latency;
    return latency.min + this.#random() * (latency.max - latency.min);
  }

  /** The fault to inject into this operation, if any; consumes one counted failure. */
  take(ctx: FaultContext): FaultOptions | undefined {
    for (const fault of this.#counted) {
      if (fault.ops.has(ctx.op)) {
        if (--fault.remaining === 0) this.#counted = this.#counted.filter((f) => f !== fault);
        return fault.options;
      }
    }
    for (const rule of this.#predicates) {
      if (rule.predicate(ctx)) return rule.options;
    }
    const rate = this.#rate.get(ctx.op) ?? 0;
    if (rate > 0 && this.#random() < rate) return {};
    return undefined;
  }
}

/** Options for {@link MemoryObjectStore}. */
export interface MemoryObjectStoreOptions {
  /** Share objects with every store opened with the same name in this process. */
  name?: string;
  /** Source of uniform numbers in [0, 1) for failure rates and latency ranges. */
  random?: () => number;
}

const sharedBuckets = new Map<string, Map<string, Buffer>>();

/** A Map-backed {@link ObjectStore} for tests, with {@link FaultController} injection. */
export class MemoryObjectStore implements ObjectStore {
  readonly url: string;
  /** Failures and latency this store injects. */
  readonly faults: FaultController;
  #objects: Map<string, Buffer>;
  #stats = emptyStats();
  #closed = false;

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.faults = new FaultController(options.random);
    if (options.name === undefined || options.name === '') {
      this.url = 'memory://';
      this.#objects = new Map();
    } else {
      this.url = `memory://${options.name}`;
      let bucket = sharedBuckets.get(options.name);
      if (bucket === undefined) {
        bucket = new Map();
        sharedBuckets.set(options.name, bucket);
      }
      this.#objects = bucket;
    }
  }

  async put(key: string, body: Buffer | readonly Buffer[]): Promise<void> {
    await this.#run('put', [key], () => {
      // Copy: the caller may reuse its buffers, and stored objects must never change.
      const copy = Buffer.allocUnsafe(bodyLength(body));
      let at = 0;
      for (const b of Buffer.isBuffer(body) ? [body] : body) at += b.copy(copy, at);
      this.#objects.set(key, copy);
      this.#stats.bytesWritten += copy.length;
    });
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    if (range !== undefined) checkRange(range);
    return this.#run('get', [key], () => {
      const object = this.#objects.get(key);
      if (object === undefined) throw new ObjectNotFoundError(key);
      const start = Math.min(range?.start ?? 0, object.length);
      const end = Math.min(range?.end ?? object.length, object.length);
      const out = Buffer.from(object.subarray(start, end));
      this.#stats.bytesRead += out.length;
      return out;
    });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    return this.#run('head', [key], () => {
      const object = this.#objects.get(key);
      return object === undefined ? null : { key, size: object.length };
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const found = await this.#run('list', [prefix], () => {
      const out: ObjectInfo[] = [];
      for (const [key, object] of this.#objects) {
        if (key.startsWith(prefix)) out.push({ key, size: object.length });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    });
    yield* found;
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#run('delete', keys, () => {
      for (const key of keys) this.#objects.delete(key);
    });
  }

  stats(): ObjectStoreStats {
    return { ...this.#stats };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Applies latency and faults around one operation. */
  async #run<T>(op: ObjectStoreOp, keys: readonly string[], apply: () => T): Promise<T> {
    if (this.#closed) throw closedError(this.url);
    countRequest(this.#stats, op);
    const delay = this.faults.delayMs(op);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const fault = this.faults.take({ op, keys });
    if (fault === undefined) return apply();
    const error = fault.error ?? new StorageError(`injected ${op} failure on ${this.url} (${keys.join(', ')})`);
    if (fault.when === 'after') apply();
    this.#stats.errors++;
    throw error;
  }
}
