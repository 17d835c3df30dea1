/**
 * The object-store seam: bytes under keys, nothing else.
 *
 * Segment objects are written once and never modified, so the interface needs no conditional
 * writes, no append and no metadata: `put`, `get` (optionally a byte range), `head`, `list`,
 * `delete`. Implementations (s3, file, memory) are chosen by URL in `index.ts`. Failures other
 * than a missing key surface as `StorageError` with the original error as `cause`.
 */
import { ObjectNotFoundError, StorageError } from '../errors.js';

export { ObjectNotFoundError, StorageError };

/** A byte range of an object: `start` inclusive, `end` exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** One object found by `head` or `list`. */
export interface ObjectInfo {
  /** The key as the caller sees it (any store-level prefix removed). */
  key: string;
  /** Size in bytes. */
  size: number;
}

/** The kinds of operation a store performs; faults and latency are injected per kind. */
export type ObjectStoreOp = 'put' | 'get' | 'head' | 'list' | 'delete';

/**
 * Request counters of one store since it was opened (or since `resetStats`).
 *
 * Counts are backend requests, successful or not: one per `put`, `get` and `head`, one per
 * listed page and one per delete batch (S3 deletes up to 1000 keys per request). Retries are
 * counted separately, so the sum of the counts plus `retries` is what a bill would show.
 */
export interface ObjectStoreStats {
  puts: number;
  gets: number;
  heads: number;
  lists: number;
  deletes: number;
  /** Extra attempts made after a retriable failure (S3 only; the others never retry). */
  retries: number;
  /** Operations that finally failed with a StorageError (a missing object is not counted). */
  errors: number;
  /** Body bytes written by successful puts. */
  bytesWritten: number;
  /** Body bytes returned by successful gets. */
  bytesRead: number;
}

/** How a put may be carried out. */
export interface PutOptions {
  /**
   * The caller promises the key has never held an object and that nothing reads it before
   * the put resolves (a segment key: unique per flush, referenced only after its put). A store
   * may then skip what protects readers of an existing object — the file store writes the file
   * in place instead of beside it and renaming — so a crash before the put resolves can leave
   * a partial object at the key, which nothing references. The file store refuses a fresh put
   * to a key that exists.
   */
  fresh?: boolean;
}

/** A key-value store of immutable byte objects (S3, a directory, or memory). */
export interface ObjectStore {
  /** Where the store points, for logs; never contains credentials. */
  readonly url: string;
  /** Stores `body` under `key`, replacing any object there; durable when it resolves. */
  put(key: string, body: Buffer | readonly Buffer[], options?: PutOptions): Promise<void>;
  /**
   * Reads the object, or the part of it inside `range`. A range reaching past the end returns
   * the bytes that exist (possibly none). Throws ObjectNotFoundError for a missing key.
   */
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /** Size of the object, or null when there is none under `key`. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, in lexicographic key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes the objects under `keys`; keys with no object are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Request counters since the store was opened or last reset. */
  stats(): ObjectStoreStats;
  /** Sets every counter of {@link stats} back to zero. */
  resetStats(): void;
  /** Releases connections and handles; later calls fail with a StorageError. */
  close(): Promise<void>;
}

/** A fresh, all-zero {@link ObjectStoreStats}. */
export function emptyStats(): ObjectStoreStats {
  return { puts: 0, gets: 0, heads: 0, lists: 0, deletes: 0, retries: 0, errors: 0, bytesWritten: 0, bytesRead: 0 };
}

/** Adds one backend request of kind `op` to `stats`. */
export function countRequest(stats: ObjectStoreStats, op: ObjectStoreOp): void {
  switch (op) {
    case 'put':
      stats.puts++;
      break;
    case 'get':
      stats.gets++;
      break;
    case 'head':
      stats.heads++;
      break;
    case 'list':
      stats.lists++;
      break;
    case 'delete':
      stats.deletes++;
      break;
  }
}

/**
 * Checks a caller's range: non-negative safe integers with `start <= end`. A bad range is a
 * programming error in the caller, so it throws RangeError rather than StorageError.
 */
export function checkRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`byte range [${start}, ${end}) is invalid: need integers with 0 <= start <= end`);
  }
}

/** The total length of a body given as one buffer or a list of buffers. */
export function bodyLength(body: Buffer | readonly Buffer[]): number {
  if (Buffer.isBuffer(body)) return body.length;
  let n = 0;
  for (const b of body) n += b.length;
  return n;
}

/**
 * The body as one Buffer; a single buffer (or a one-element list) is returned without copying.
 * A list is joined into shared memory, which V8 does not count as the external memory whose
 * growth makes it run full collections (segment bodies arrive as lists, one per flush).
 */
export function bodyBuffer(body: Buffer | readonly Buffer[]): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body.length === 1) return body[0];
  const joined = Buffer.from(new SharedArrayBuffer(bodyLength(body)));
  let at = 0;
  for (const b of body) at += b.copy(joined, at);
  return joined;
}

/** The error thrown by every operation on a store after `close()`. */
export function closedError(url: string): StorageError {
  return new StorageError(`object store ${url} is closed`, { retriable: false });
}
