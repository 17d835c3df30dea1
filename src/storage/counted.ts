/**
 * A view of an object store that counts the requests made through it, so a background job's
 * share of the store's traffic can be shown on its own (the store's own `stats()` still counts
 * everything). Counts follow {@link ObjectStoreStats}: one per put, get and head, one per
 * listed page as the store reports it (here: one per `list` call plus one per further 1000
 * keys, S3's page size), one per delete batch of up to 1000 keys. Retries are not visible
 * through the interface and stay in the store's own counters.
 */
import { ObjectNotFoundError } from '../errors.js';
import { bodyLength, countRequest, emptyStats, type ByteRange, type ObjectInfo, type ObjectStore, type ObjectStoreOp, type ObjectStoreStats, type PutOptions } from './object-store.js';

/** Keys per listed page and per delete request, as S3 bills them. */
const PAGE = 1000;

export class CountedObjectStore implements ObjectStore {
  readonly #store: ObjectStore;
  #stats: ObjectStoreStats = emptyStats();

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  get url(): string {
    return this.#store.url;
  }

  async put(key: string, body: Buffer | readonly Buffer[], options?: PutOptions): Promise<void> {
    await this.#count('put', () => this.#store.put(key, body, options));
    this.#stats.bytesWritten += bodyLength(body);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const bytes = await this.#count('get', () => this.#store.get(key, range));
    this.#stats.bytesRead += bytes.length;
    return bytes;
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#count('head', () => this.#store.head(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    countRequest(this.#stats, 'list');
    let listed = 0;
    try {
      for await (const info of this.#store.list(prefix)) {
        if (++listed % PAGE === 0) countRequest(this.#stats, 'list');
        yield info;
      }
    } catch (err) {
      this.#stats.errors++;
      throw err;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += PAGE) countRequest(this.#stats, 'delete');
    try {
      await this.#store.delete(keys);
    } catch (err) {
      this.#stats.errors++;
      throw err;
    }
  }

  stats(): ObjectStoreStats {
    return { ...this.#stats };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  /** Closing a view leaves the store open: it belongs to whoever made it. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  async #count<T>(op: ObjectStoreOp, run: () => Promise<T>): Promise<T> {
    countRequest(this.#stats, op);
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) this.#stats.errors++;
      throw err;
    }
  }
}
