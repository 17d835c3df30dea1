/**
 * The S3 object store: `s3://bucket/optional/prefix?endpoint=…&region=…&forcePathStyle=…`.
 *
 * Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID, profiles, instance roles)
 * or, for local S3 servers, from `accessKeyId`/`secretAccessKey` query parameters; `url`
 * never shows them.
 *
 * Retries are ours, not the SDK's (its `maxAttempts` is 1), so the number of attempts and the
 * delays are predictable: throttling, 5xx, request timeouts and network errors are retried
 * with full-jitter exponential backoff, each attempt under its own deadline. Everything the
 * SDK throws leaves as a StorageError (or ObjectNotFoundError) with the SDK error as `cause`.
 *
 * Deliberately avoided, because local S3 servers get them wrong: conditional writes, suffix
 * ranges (`bytes=-N`), and flexible checksums (both checksum modes are `WHEN_REQUIRED`).
 */
import { setMaxListeners } from 'node:events';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { ConfigError, ObjectNotFoundError, StorageError } from '../errors.js';
import {
  bodyBuffer,
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

/** How the S3 store retries a failed request. */
export interface RetryPolicy {
  /** Attempts per operation, the first included (1 disables retries). */
  attempts: number;
  /** Backoff cap before the first retry; doubles per retry up to {@link maxDelayMs}. */
  baseDelayMs: number;
  /** The largest backoff cap. */
  maxDelayMs: number;
  /** Deadline of one attempt, body transfer included; an attempt past it is aborted and retried. */
  attemptTimeoutMs: number;
}

/** Defaults: 5 attempts, backoff caps 50 ms, 100 ms, 200 ms, 400 ms (max 2 s), 30 s per attempt. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  attempts: 5,
  baseDelayMs: 50,
  maxDelayMs: 2_000,
  attemptTimeoutMs: 30_000,
};

/** The most keys one DeleteObjects request may carry, and the most ListObjectsV2 returns. */
export const S3_MAX_BATCH = 1000;

/**
 * Full-jitter backoff before retry number `retry` (0 for the first retry): a uniform draw in
 * [0, min(maxDelayMs, baseDelayMs × 2^retry)).
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.floor(random() * cap);
}

/** The logger surface the store uses (a pino logger fits). */
export interface RetryLogger {
  warn(obj: object, msg: string): void;
}

/** Options for {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Overrides of {@link DEFAULT_RETRY_POLICY}. */
  retry?: Partial<RetryPolicy>;
  /** Keys per ListObjectsV2 page, 1–1000 (default 1000). */
  listPageSize?: number;
  /** Keys per DeleteObjects request, 1–1000 (default 1000). */
  deleteChunkSize?: number;
  /** Most concurrent connections to the endpoint (default 256). */
  maxSockets?: number;
  /** Source of uniform numbers in [0, 1) for backoff jitter. */
  random?: () => number;
  /** Receives one warning per retried attempt. */
  logger?: RetryLogger;
}

/** Where an `s3://` URL points, parsed. */
export interface S3Location {
  bucket: string;
  /** Prepended to every key: the URL path plus "/", or empty. */
  keyPrefix: string;
  endpoint: string | undefined;
  region: string | undefined;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** The URL without credentials, for logs. */
  redactedUrl: string;
}

const URL_PARAMS = ['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken'];
const PUBLIC_PARAMS = ['endpoint', 'region', 'forcePathStyle'];

/** Parses and checks an `s3://` URL; throws ConfigError with the reason. */
export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new ConfigError(`storage URL "${url}" is not a valid URL; expected s3://bucket/prefix?endpoint=…`, { cause: err });
  }
  if (parsed.protocol !== 's3:') throw new ConfigError(`storage URL "${url}" is not an s3:// URL`);
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ConfigError(
      'storage URL must not carry credentials before the bucket; use the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment or ?accessKeyId=…&secretAccessKey=…',
    );
  }
  const bucket = parsed.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError(`storage URL "${redact(parsed)}" has bucket "${bucket}"; an S3 bucket name is 3-63 lowercase letters, digits, "." or "-"`);
  }
  if (parsed.port !== '') throw new ConfigError(`storage URL "${redact(parsed)}" has a port after the bucket; put the server in ?endpoint=http://host:port`);
  for (const name of parsed.searchParams.keys()) {
    if (!URL_PARAMS.includes(name)) {
      throw new ConfigError(`storage URL "${redact(parsed)}" has unknown parameter "${name}"; known: ${URL_PARAMS.join(', ')}`);
    }
  }
  const param = (name: string) => parsed.searchParams.get(name) ?? undefined;
  const endpoint = param('endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ConfigError(`storage URL endpoint "${endpoint}" must be an http:// or https:// URL, e.g. endpoint=http://127.0.0.1:9000`);
  }
  const pathStyle = param('forcePathStyle');
  if (pathStyle !== undefined && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new ConfigError(`storage URL has forcePathStyle=${pathStyle}; write true or false`);
  }
  const accessKeyId = param('accessKeyId');
  const secretAccessKey = param('secretAccessKey');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError('storage URL must give both accessKeyId and secretAccessKey, or neither (then the AWS environment is used)');
  }
  const sessionToken = param('sessionToken');
  const path = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  return {
    bucket,
    keyPrefix: path === '' ? '' : `${path}/`,
    endpoint,
    region: param('region'),
    forcePathStyle: pathStyle === undefined ? endpoint !== undefined : pathStyle === 'true',
    credentials:
      accessKeyId === undefined || secretAccessKey === undefined
        ? undefined
        : { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
    redactedUrl: redact(parsed),
  };
}

/** The URL with only its non-secret parameters, readable (":" and "/" left unescaped). */
function redact(parsed: URL): string {
  const query = PUBLIC_PARAMS.filter((name) => parsed.searchParams.has(name))
    .map((name) => `${name}=${encodeURIComponent(parsed.searchParams.get(name)!).replace(/%3A/gi, ':').replace(/%2F/gi, '/')}`)
    .join('&');
  return `s3://${parsed.hostname}${parsed.pathname === '/' ? '' : parsed.pathname}${query === '' ? '' : `?${query}`}`;
}

/** S3 error codes worth retrying whatever the HTTP status (S3 sends RequestTimeout as a 400). */
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
]);

/** Socket-level error codes: the request may not have reached S3, or its answer was lost. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

function httpStatus(err: unknown): number | undefined {
  return (err as SdkErrorShape | null)?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string {
  const name = (err as SdkErrorShape | null)?.name;
  return typeof name === 'string' ? name : 'Error';
}

/** Whether a failed attempt may succeed if repeated. */
export function isTransientS3Error(err: unknown): boolean {
  const status = httpStatus(err);
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
  if (TRANSIENT_NAMES.has(errorName(err))) return true;
  const shape = err as SdkErrorShape | null;
  if (typeof shape?.code === 'string' && NETWORK_CODES.has(shape.code)) return true;
  return shape?.$retryable !== undefined && shape.$retryable !== null && shape.$retryable !== false;
}

function describe(err: unknown): string {
  const status = httpStatus(err);
  const message = err instanceof Error ? err.message : String(err);
  return `${errorName(err)}${status === undefined ? '' : ` (HTTP ${status})`}: ${message}`;
}

/** Raised inside an attempt when the server answered past the attempt's deadline. */
class AttemptTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** An {@link ObjectStore} on S3 or an S3-compatible server. */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly #bucket: string;
  readonly #keyPrefix: string;
  readonly #client: S3Client;
  readonly #retry: RetryPolicy;
  readonly #listPageSize: number;
  readonly #deleteChunkSize: number;
  readonly #random: () => number;
  readonly #logger: RetryLogger | undefined;
  /** Aborted by close(): cancels in-flight attempts and backoff sleeps. */
  readonly #closing = new AbortController();
  #stats = emptyStats();

  /** @param url an `s3://` URL (see the module comment); throws ConfigError when invalid */
  constructor(url: string, options: S3ObjectStoreOptions = {}) {
    const location = parseS3Url(url);
    this.url = location.redactedUrl;
    // Every backoff sleep listens for close(); many throttled operations may sleep at once.
    setMaxListeners(0, this.#closing.signal);
    this.#bucket = location.bucket;
    this.#keyPrefix = location.keyPrefix;
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    const { attempts, baseDelayMs, maxDelayMs, attemptTimeoutMs } = this.#retry;
    if (!Number.isInteger(attempts) || attempts < 1 || !(baseDelayMs >= 0) || !(maxDelayMs >= 0) || !(attemptTimeoutMs > 0)) {
      throw new ConfigError(`S3 retry policy ${JSON.stringify(this.#retry)} is invalid: attempts >= 1, delays >= 0, attemptTimeoutMs > 0`);
    }
    this.#listPageSize = batchSize('listPageSize', options.listPageSize);
    this.#deleteChunkSize = batchSize('deleteChunkSize', options.deleteChunkSize);
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger;
    const maxSockets = options.maxSockets ?? 256;
    this.#client = new S3Client({
      region: location.region ?? (location.endpoint === undefined ? undefined : (process.env.AWS_REGION ?? 'us-east-1')),
      endpoint: location.endpoint,
      forcePathStyle: location.forcePathStyle,
      credentials: location.credentials,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      },
    });
  }

  async put(key: string, body: Buffer | readonly Buffer[]): Promise<void> {
    // PutObject needs the length up front; concatenating costs one copy of the body.
    const data = bodyBuffer(body);
    await this.#call('put', key, (signal) =>
      this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: this.#keyPrefix + key, Body: data, ContentLength: data.length }),
        { abortSignal: signal },
      ),
    );
    this.#stats.bytesWritten += data.length;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    if (range !== undefined) {
      checkRange(range);
      // An HTTP range cannot be empty; an existing object has the empty range.
      if (range.start === range.end) {
        if ((await this.head(key)) === null) throw new ObjectNotFoundError(key);
        return Buffer.alloc(0);
      }
    }
    const out = await this.#call('get', key, async (signal) => {
      let res;
      try {
        res = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#bucket,
            Key: this.#keyPrefix + key,
            Range: range === undefined ? undefined : `bytes=${range.start}-${range.end - 1}`,
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        // 416: the range starts at or past the end of an object that exists.
        if (range !== undefined && (errorName(err) === 'InvalidRange' || httpStatus(err) === 416)) return Buffer.alloc(0);
        throw err;
      }
      if (range === undefined) return readBody(res.Body, signal);
      const served = parseContentRange(res.ContentRange);
      if (served !== undefined && served.total !== undefined && range.start >= served.total) {
        // Nothing of the object lies in the range. Drop the body unread: s3rver announces one
        // byte for a range on an empty object and then sends none, so reading it would hang.
        destroyBody(res.Body);
        return Buffer.alloc(0);
      }
      return sliceToRange(await readBody(res.Body, signal), range, served?.start ?? 0);
    });
    this.#stats.bytesRead += out.length;
    return out;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.#call('head', key, (signal) =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#keyPrefix + key }), { abortSignal: signal }),
      );
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await this.#call('list', prefix, (signal) =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#keyPrefix + prefix,
            ContinuationToken: token,
            MaxKeys: this.#listPageSize,
          }),
          { abortSignal: signal },
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key.slice(this.#keyPrefix.length), size: object.Size ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && token === undefined) {
        this.#stats.errors++;
        throw new StorageError(`s3 list of "${prefix}" in ${this.url}: a truncated page came without a continuation token`);
      }
    } while (token !== undefined);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += this.#deleteChunkSize) {
      const chunk = keys.slice(i, i + this.#deleteChunkSize);
      await this.#call('delete', chunk[0], async (signal) => {
        const res = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: chunk.map((key) => ({ Key: this.#keyPrefix + key })), Quiet: true },
          }),
          { abortSignal: signal },
        );
        // A 200 can still report per-key failures; retrying the whole chunk is idempotent.
        const failures = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failures.length > 0) {
          const first = failures[0];
          const err = new Error(`${failures.length} of ${chunk.length} keys not deleted, first "${first.Key}": ${first.Message ?? first.Code}`);
          err.name = first.Code ?? 'DeleteObjectsError';
          throw err;
        }
      });
    }
  }

  stats(): ObjectStoreStats {
    return { ...this.#stats };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#client.destroy();
  }

  /**
   * Runs one operation with the retry policy: each attempt gets its own deadline; transient
   * failures are retried after a full-jitter backoff; the final failure becomes a
   * StorageError (retriable when it was transient), a missing key an ObjectNotFoundError.
   */
  async #call<T>(op: ObjectStoreOp, key: string, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closing.signal.aborted) throw closedError(this.url);
    countRequest(this.#stats, op);
    for (let n = 1; ; n++) {
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(new AttemptTimeoutError(`attempt timed out after ${this.#retry.attemptTimeoutMs} ms`)),
        this.#retry.attemptTimeoutMs,
      );
      let failure: unknown;
      try {
        return await attempt(AbortSignal.any([deadline.signal, this.#closing.signal]));
      } catch (err) {
        failure = deadline.signal.aborted ? deadline.signal.reason : err;
      } finally {
        clearTimeout(timer);
      }
      if (isNotFound(op, failure)) throw new ObjectNotFoundError(key, { cause: failure });
      if (this.#closing.signal.aborted) {
        this.#stats.errors++;
        throw new StorageError(`s3 ${op} of "${key}" in ${this.url} was cancelled: the store is closed`, { cause: failure, retriable: false });
      }
      const transient = isTransientS3Error(failure);
      if (!transient || n >= this.#retry.attempts) {
        this.#stats.errors++;
        throw new StorageError(
          `s3 ${op} of "${key}" in ${this.url} failed after ${n} attempt${n === 1 ? '' : 's'}: ${describe(failure)}`,
          { cause: failure, retriable: transient },
        );
      }
      const delayMs = backoffDelayMs(n - 1, this.#retry, this.#random);
      this.#stats.retries++;
      this.#logger?.warn({ op, key, store: this.url, attempt: n, delayMs, err: describe(failure) }, 's3 request failed; retrying');
      await sleep(delayMs, this.#closing.signal);
    }
  }
}

function batchSize(name: string, value: number | undefined): number {
  if (value === undefined) return S3_MAX_BATCH;
  if (!Number.isInteger(value) || value < 1 || value > S3_MAX_BATCH) {
    throw new ConfigError(`S3 store option ${name}=${value} must be an integer from 1 to ${S3_MAX_BATCH}`);
  }
  return value;
}

/** A missing object: NoSuchKey from GET, or a bare 404 from HEAD (which has no error body). */
function isNotFound(op: ObjectStoreOp, err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchKey') return true;
  return op === 'head' && httpStatus(err) === 404 && name !== 'NoSuchBucket';
}

/** The first byte and the object size a `Content-Range: bytes a-b/size` header reports. */
function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = header === undefined ? null : /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header);
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

/**
 * The requested part of a ranged response whose body starts at object offset `bodyStart`.
 * Servers may ignore the range (200, whole object) or widen it (s3rver answers `bytes=0-0`
 * with the whole object), so the slice is cut here rather than trusted.
 */
function sliceToRange(body: Buffer, range: ByteRange, bodyStart: number): Buffer {
  const from = Math.max(0, range.start - bodyStart);
  const to = Math.max(from, Math.min(body.length, range.end - bodyStart));
  return from === 0 && to === body.length ? body : body.subarray(from, to);
}

/** Discards a response body without reading it (its connection is not reused). */
function destroyBody(body: unknown): void {
  if (body instanceof Readable) body.destroy();
}

/** Reads a response body to the end, aborting the stream when `signal` fires. */
async function readBody(body: unknown, signal: AbortSignal): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (!(body instanceof Readable)) {
    const bytes = await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      chunks.push(buf);
      total += buf.length;
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Resolves after `ms`, or at once when `signal` fires. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
