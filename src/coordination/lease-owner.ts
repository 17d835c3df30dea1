/**
 * Ownership by lease (docs/architecture.md §5, §6, §7): the loop both coordinators run over
 * the ids they own — consumer groups and transactional ids. An id is owned once its lease is
 * taken and its state loaded; leases are renewed every third of their length; an id whose
 * renewal finds the lease gone, or whose fenced write fails, is dropped; stopping releases
 * every lease so that other brokers take over at once instead of waiting for expiry.
 *
 * What an owned entry holds (a group's state machine, a transaction record) is the domain's:
 * this class only keeps the map, the leases and the timer.
 */
import { ErrorCode } from '../../wire/index.js';
import type { Logger } from '../observability/logger.js';
import type { LeaseClient, LeaseKeys } from './lease.js';

/** What loading an id gives: its entry, and work to run once the entry is owned. */
export interface Loaded<T> {
  entry: T;
  /**
   * Runs after the entry joined the owned map, so its lease is renewed meanwhile (e.g. a
   * transaction taken over half-finished is completed here). If it throws, the caller gets
   * COORDINATOR_NOT_AVAILABLE but the entry stays owned.
   */
  afterOwned?: () => Promise<void>;
}

/** How a {@link LeaseOwner} reaches its leases and its domain. */
export interface LeaseOwnerOptions<T> {
  leases: LeaseClient;
  /** What an id names, for log lines: `group`, `transaction`. */
  noun: string;
  /** The log field an id goes in: `groupId`, `transactionalId`. */
  idField: string;
  /** The lease keys of an id. */
  keys: (id: string) => LeaseKeys;
  /** Whether a node id is a live broker (its lease is then respected, not waited out). */
  isLive: (nodeId: number) => boolean;
  /** Reads the state of an id whose lease was just taken. */
  load: (id: string, leaseValue: string) => Promise<Loaded<T>>;
  /** Called when an entry is dropped because its lease was lost (not on stop or release). */
  onLost?: (id: string, entry: T) => void;
  /** Called on stop, before the lease is released: settle the entry's pending writes. */
  onStop?: (id: string, entry: T) => Promise<void>;
  logger: Logger;
}

/** The ids one broker owns under leases, with their entries (see the module comment). */
export class LeaseOwner<T extends { readonly leaseValue: string }> {
  readonly #o: LeaseOwnerOptions<T>;
  readonly #owned = new Map<string, T>();
  /** Loads in flight: concurrent callers for one id share one. */
  readonly #loading = new Map<string, Promise<T | number>>();
  #nodeId = -1;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: LeaseOwnerOptions<T>) {
    this.#o = options;
  }

  /** Starts renewing, as node `nodeId` (known once the broker has registered). */
  start(nodeId: number): void {
    this.#nodeId = nodeId;
    this.#timer = setInterval(() => void this.renewAll(), Math.max(100, Math.floor(this.#o.leases.ttlMs / 3)));
    this.#timer.unref();
  }

  /** Stops renewing and releases every lease (graceful shutdown: others take over at once). */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const [id, entry] of [...this.#owned]) {
      this.#owned.delete(id);
      try {
        await this.#o.onStop?.(id, entry);
        await this.#o.leases.release(this.#o.keys(id).lease, entry.leaseValue);
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, [this.#o.idField]: id }, `could not release a ${this.#o.noun} lease; it expires by itself`);
      }
    }
  }

  /** The owned entry of `id`, if any. */
  get(id: string): T | undefined {
    return this.#owned.get(id);
  }

  /** Ids owned now. */
  ids(): string[] {
    return [...this.#owned.keys()];
  }

  /** Owned ids and their entries. */
  entries(): IterableIterator<[string, T]> {
    return this.#owned.entries();
  }

  /**
   * The owned entry of `id`, taking the lease and loading it if needed; otherwise a Kafka
   * error code: NOT_COORDINATOR when a live broker holds the lease,
   * COORDINATOR_LOAD_IN_PROGRESS while a dead holder's lease runs out,
   * COORDINATOR_NOT_AVAILABLE when loading failed. `check` runs before the lease is taken and
   * may refuse with a code of its own (a caller sharing another's load gets that load's answer).
   */
  own(id: string, check?: () => Promise<number>): Promise<T | number> {
    const have = this.#owned.get(id);
    if (have !== undefined) return Promise.resolve(have);
    let loading = this.#loading.get(id);
    if (loading === undefined) {
      loading = this.#load(id, check).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }

  async #load(id: string, check: (() => Promise<number>) | undefined): Promise<T | number> {
    try {
      if (this.#nodeId < 0) throw new Error(`the ${this.#o.noun} coordinator has not started`);
      if (check !== undefined) {
        const code = await check();
        if (code !== ErrorCode.NONE) return code;
      }
      const acquired = await this.#o.leases.acquire(this.#o.keys(id), this.#nodeId);
      if (!acquired.held) return this.#o.isLive(acquired.holder) ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
      const loaded = await this.#o.load(id, acquired.value);
      this.#owned.set(id, loaded.entry);
      await loaded.afterOwned?.();
      return loaded.entry;
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message, [this.#o.idField]: id }, `could not load ${this.#o.noun} state`);
      // Clients retry COORDINATOR_NOT_AVAILABLE after rediscovering the coordinator.
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }

  /**
   * Renews every owned lease once (the timer calls this every third of the lease length).
   * A lease found gone or taken loses its entry; when Redis does not answer, the entry is
   * kept while the lease may still be valid — if it expires meanwhile, the next fenced
   * write fails and drops it.
   */
  async renewAll(): Promise<void> {
    for (const [id, entry] of [...this.#owned]) {
      try {
        if (!(await this.#o.leases.renew(this.#o.keys(id).lease, entry.leaseValue))) this.lose(id, entry, 'lease taken over');
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, [this.#o.idField]: id }, `could not renew a ${this.#o.noun} lease`);
      }
    }
  }

  /** Drops `entry` (if it is still the one owned for `id`): its lease is no longer ours. */
  lose(id: string, entry: T, why: string): void {
    if (this.#owned.get(id) !== entry) return;
    this.#o.logger.warn({ [this.#o.idField]: id, why }, `lost ${this.#o.noun} ownership`);
    this.#owned.delete(id);
    this.#o.onLost?.(id, entry);
  }

  /** Stops owning `id` and releases its lease (its state was deleted). */
  async release(id: string, entry: T): Promise<void> {
    if (this.#owned.get(id) === entry) this.#owned.delete(id);
    await this.#o.leases.release(this.#o.keys(id).lease, entry.leaseValue);
  }
}
