/**
 * S3 store specifics: URL parsing, retry classification and backoff, and the retry loop
 * end to end. s3rver cannot produce 503s, so the retry tests put a small HTTP proxy between
 * the store and s3rver that answers with scripted failures before passing requests through.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { ConfigError, StorageError } from '../../src/errors.js';
import type { ObjectInfo } from '../../src/storage/object-store.js';
import {
  DEFAULT_RETRY_POLICY,
  S3ObjectStore,
  backoffDelayMs,
  isTransientS3Error,
  parseS3Url,
  type S3ObjectStoreOptions,
} from '../../src/storage/s3.js';
import { startS3rver, type S3rver } from '../../src/harness/s3rver.js';

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as Error,
  );
}

describe('parseS3Url', () => {
  it('reads bucket, prefix, endpoint, region, path style and credentials', () => {
    expect(
      parseS3Url('s3://my-bucket/strata/prod/?endpoint=http://127.0.0.1:9000&region=eu-west-1&accessKeyId=AK&secretAccessKey=SK'),
    ).toEqual({
      bucket: 'my-bucket',
      keyPrefix: 'strata/prod/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
      redactedUrl: 's3://my-bucket/strata/prod/?endpoint=http://127.0.0.1:9000&region=eu-west-1',
    });
  });

  it('defaults to virtual-hosted style and the AWS credential chain without an endpoint', () => {
    expect(parseS3Url('s3://bucket.with.dots')).toEqual({
      bucket: 'bucket.with.dots',
      keyPrefix: '',
      endpoint: undefined,
      region: undefined,
      forcePathStyle: false,
      credentials: undefined,
      redactedUrl: 's3://bucket.with.dots',
    });
    expect(parseS3Url('s3://b12?endpoint=https://s3.example&forcePathStyle=false').forcePathStyle).toBe(false);
    expect(parseS3Url('s3://b12?forcePathStyle=true').forcePathStyle).toBe(true);
  });

  it('keeps a session token with the keys, and out of the redacted URL', () => {
    const location = parseS3Url('s3://b12/p?accessKeyId=AK&secretAccessKey=SK&sessionToken=TOK');
    expect(location.credentials).toEqual({ accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOK' });
    expect(location.redactedUrl).toBe('s3://b12/p');
  });

  it.each([
    ['s3://bucket?endpont=http://x', 'storage URL "s3://bucket" has unknown parameter "endpont"; known: endpoint, region, forcePathStyle, accessKeyId, secretAccessKey, sessionToken'],
    ['s3://B_ad', 'storage URL "s3://B_ad" has bucket "B_ad"; an S3 bucket name is 3-63 lowercase letters, digits, "." or "-"'],
    ['s3://bucket?accessKeyId=AK', 'storage URL must give both accessKeyId and secretAccessKey, or neither (then the AWS environment is used)'],
    ['s3://bucket?forcePathStyle=yes', 'storage URL has forcePathStyle=yes; write true or false'],
    ['s3://bucket?endpoint=127.0.0.1:9000', 'storage URL endpoint "127.0.0.1:9000" must be an http:// or https:// URL, e.g. endpoint=http://127.0.0.1:9000'],
    ['s3://bucket:9000', 'storage URL "s3://bucket" has a port after the bucket; put the server in ?endpoint=http://host:port'],
    [
      's3://AK:SK@bucket',
      'storage URL must not carry credentials before the bucket; use the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment or ?accessKeyId=…&secretAccessKey=…',
    ],
  ])('rejects %s with one actionable line', (url, message) => {
    expect(() => parseS3Url(url)).toThrow(ConfigError);
    expect(() => parseS3Url(url)).toThrow(message);
  });

  it('rejects out-of-range batch sizes and retry policies', () => {
    expect(() => new S3ObjectStore('s3://bucket', { listPageSize: 1001 })).toThrow(
      'S3 store option listPageSize=1001 must be an integer from 1 to 1000',
    );
    expect(() => new S3ObjectStore('s3://bucket', { deleteChunkSize: 0 })).toThrow(ConfigError);
    expect(() => new S3ObjectStore('s3://bucket', { retry: { attempts: 0 } })).toThrow(ConfigError);
  });
});

describe('backoffDelayMs', () => {
  it('draws below a cap that doubles from the base delay up to the maximum', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 50, maxDelayMs: 1000 };
    const almostOne = () => 0.999_999;
    expect([0, 1, 2, 3, 4, 5, 10].map((retry) => backoffDelayMs(retry, policy, almostOne))).toEqual([49, 99, 199, 399, 799, 999, 999]);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
    expect(backoffDelayMs(2, policy, () => 0.5)).toBe(100);
  });
});

describe('isTransientS3Error', () => {
  const sdkError = (name: string, status?: number) =>
    Object.assign(new Error(name), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });

  it.each([
    ['SlowDown', 503, true],
    ['InternalError', 500, true],
    ['ServiceUnavailable', 503, true],
    ['Unknown', 502, true],
    ['TooManyRequestsException', 429, true],
    ['RequestTimeout', 400, true],
    ['TimeoutError', undefined, true],
    ['AccessDenied', 403, false],
    ['NoSuchBucket', 404, false],
    ['InvalidArgument', 400, false],
  ])('%s (HTTP %s) → %s', (name, status, transient) => {
    expect(isTransientS3Error(sdkError(name, status))).toBe(transient);
  });

  it('treats socket errors as transient and programming errors as not', () => {
    expect(isTransientS3Error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransientS3Error(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransientS3Error(new TypeError('x is not a function'))).toBe(false);
  });
});

/** What the proxy does with one request. */
type Action =
  | 'pass'
  | 'reset'
  | 'hang'
  | { status: number; code: string }
  | { status: 200; deleteErrors: Array<{ key: string; code: string }> };

interface Proxy {
  endpoint: string;
  /** Requests seen, as "METHOD /path?query". */
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP proxy in front of `target` that applies `script` to each request (0-based index). */
async function startProxy(target: string, script: (index: number, req: IncomingMessage) => Action): Promise<Proxy> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const index = requests.length;
    requests.push(`${req.method} ${req.url}`);
    const action = script(index, req);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (action === 'hang') return;
      if (action === 'reset') {
        req.socket.destroy();
        return;
      }
      if (action === 'pass') {
        const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        });
        upstream.end(Buffer.concat(chunks));
        return;
      }
      const body =
        'deleteErrors' in action
          ? `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${action.deleteErrors
              .map((e) => `<Error><Key>${e.key}</Key><Code>${e.code}</Code><Message>scripted</Message></Error>`)
              .join('')}</DeleteResult>`
          : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>scripted ${action.code}</Message><RequestId>r${index}</RequestId></Error>`;
      res.writeHead(action.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('S3ObjectStore against s3rver', () => {
  let s3rver: S3rver;
  let proxy: Proxy | undefined;
  const stores: S3ObjectStore[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    s3rver = await startS3rver();
  });
  afterAll(async () => {
    await s3rver.stop();
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await proxy?.close();
    proxy = undefined;
  });

  /** A store on a fresh prefix, through `endpoint` (s3rver itself by default). */
  function open(options: S3ObjectStoreOptions = {}, endpoint = s3rver.endpoint, prefix = `s3test/t${++prefixes}`): S3ObjectStore {
    const store = new S3ObjectStore(
      `s3://${s3rver.bucket}/${prefix}?endpoint=${endpoint}&region=us-east-1&accessKeyId=S3RVER&secretAccessKey=S3RVER`,
      { ...options, retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20, attemptTimeoutMs: 10_000, ...options.retry } },
    );
    stores.push(store);
    return store;
  }

  /** A store through a scripted proxy, and a direct one on the same prefix to check results. */
  async function openFlaky(script: (index: number, req: IncomingMessage) => Action, options: S3ObjectStoreOptions = {}) {
    proxy = await startProxy(s3rver.endpoint, script);
    const prefix = `s3test/flaky${++prefixes}`;
    return { flaky: open(options, proxy.endpoint, prefix), direct: open({}, s3rver.endpoint, prefix), proxy };
  }

  it('redacts credentials from url', () => {
    const store = open();
    expect(store.url).toBe(`s3://${s3rver.bucket}/s3test/t${prefixes}?endpoint=${s3rver.endpoint}&region=us-east-1`);
  });

  it('retries a put answered 503 SlowDown twice, then stores it once', async () => {
    const { flaky, direct, proxy } = await openFlaky((i) => (i < 2 ? { status: 503, code: 'SlowDown' } : 'pass'));
    await flaky.put('k', Buffer.from('after two slowdowns'));
    expect(proxy.requests).toEqual(Array(3).fill(expect.stringMatching(/^PUT \/strata-test\/s3test\/flaky\d+\/k/)));
    expect((await direct.get('k')).toString()).toBe('after two slowdowns');
    expect(flaky.stats()).toMatchObject({ puts: 1, retries: 2, errors: 0, bytesWritten: 19 });
  });

  it('retries a get answered 500 InternalError, and a head answered 503', async () => {
    const { flaky, direct } = await openFlaky((i, req) =>
      i === 0 && req.method === 'GET' ? { status: 500, code: 'InternalError' } : i === 2 ? { status: 503, code: 'SlowDown' } : 'pass',
    );
    await direct.put('k', Buffer.from('0123456789'));
    expect((await flaky.get('k', { start: 3, end: 6 })).toString()).toBe('345');
    expect(await flaky.head('k')).toEqual({ key: 'k', size: 10 });
    expect(flaky.stats()).toMatchObject({ gets: 1, heads: 1, retries: 2, bytesRead: 3 });
  });

  it('gives up after the configured attempts with a retriable StorageError carrying the cause', async () => {
    const warnings: object[] = [];
    const { flaky, direct, proxy } = await openFlaky(() => ({ status: 503, code: 'SlowDown' }), {
      retry: { attempts: 3 },
      logger: { warn: (obj) => warnings.push(obj) },
    });
    const err = await failure(flaky.put('k', Buffer.from('never')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: ErrorCode.KAFKA_STORAGE_ERROR, retriable: true });
    expect(err.message).toBe(
      `s3 put of "k" in ${flaky.url} failed after 3 attempts: SlowDown (HTTP 503): scripted SlowDown`,
    );
    expect(err.cause).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    expect(proxy.requests).toHaveLength(3);
    expect(warnings).toEqual([
      expect.objectContaining({ op: 'put', key: 'k', attempt: 1, err: 'SlowDown (HTTP 503): scripted SlowDown' }),
      expect.objectContaining({ op: 'put', key: 'k', attempt: 2 }),
    ]);
    expect(flaky.stats()).toMatchObject({ puts: 1, retries: 2, errors: 1, bytesWritten: 0 });
    expect(await direct.head('k')).toBeNull();
  });

  it('does not retry a permanent error, and marks it not retriable', async () => {
    const { flaky, proxy } = await openFlaky(() => ({ status: 403, code: 'AccessDenied' }));
    const err = await failure(flaky.get('k'));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ retriable: false, cause: { name: 'AccessDenied' } });
    expect(err.message).toBe(`s3 get of "k" in ${flaky.url} failed after 1 attempt: AccessDenied (HTTP 403): scripted AccessDenied`);
    expect(proxy.requests).toHaveLength(1);
  });

  it('retries after the connection is reset', async () => {
    const { flaky, direct, proxy } = await openFlaky((i) => (i === 0 ? 'reset' : 'pass'));
    await flaky.put('k', Buffer.from('after reset'));
    expect(proxy.requests).toHaveLength(2);
    expect((await direct.get('k')).toString()).toBe('after reset');
  });

  it('aborts an attempt that outlives its deadline and retries', async () => {
    const { flaky, direct, proxy } = await openFlaky((i) => (i === 0 ? 'hang' : 'pass'), { retry: { attemptTimeoutMs: 300 } });
    await direct.put('k', Buffer.from('slow'));
    const started = Date.now();
    expect((await flaky.get('k')).toString()).toBe('slow');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(proxy.requests).toHaveLength(2);
    expect(flaky.stats()).toMatchObject({ gets: 1, retries: 1 });
  });

  it('reports a timeout on every attempt as a retriable StorageError', async () => {
    const { flaky } = await openFlaky(() => 'hang', { retry: { attempts: 2, attemptTimeoutMs: 200 } });
    const err = await failure(flaky.head('k'));
    expect(err).toMatchObject({ name: 'StorageError', retriable: true, cause: { name: 'TimeoutError' } });
    expect(err.message).toBe(`s3 head of "k" in ${flaky.url} failed after 2 attempts: TimeoutError: attempt timed out after 200 ms`);
  });

  it('cancels a backoff when closed', async () => {
    const { flaky } = await openFlaky(() => ({ status: 503, code: 'SlowDown' }), {
      retry: { attempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000 },
      random: () => 0.5,
    });
    const pending = failure(flaky.put('k', Buffer.from('x')));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await flaky.close();
    const err = await pending;
    expect(err).toMatchObject({ name: 'StorageError', retriable: false });
    expect(err.message).toBe(`s3 put of "k" in ${flaky.url} was cancelled: the store is closed`);
  });

  it('splits deletes into chunks of deleteChunkSize', async () => {
    const { flaky, direct, proxy } = await openFlaky(() => 'pass', { deleteChunkSize: 2 });
    const keys = ['d/1', 'd/2', 'd/3', 'd/4', 'd/5'];
    // Different directories per key: s3rver's cleanup of emptied directories races otherwise.
    for (const key of keys) await direct.put(key.replace('/', '/x') + '/o', Buffer.from(key));
    await flaky.delete(keys.map((key) => key.replace('/', '/x') + '/o'));
    expect(proxy.requests.filter((r) => r.startsWith('POST ') && r.includes('delete'))).toHaveLength(3);
    expect(flaky.stats()).toMatchObject({ deletes: 3, retries: 0 });
    expect(await collect(direct.list(''))).toEqual([]);
  });

  it('retries a delete whose 200 answer reports a transient per-key error', async () => {
    const { flaky, direct, proxy } = await openFlaky((i) =>
      i === 0 ? { status: 200, deleteErrors: [{ key: 'x', code: 'InternalError' }] } : 'pass',
    );
    await direct.put('x', Buffer.from('1'));
    await flaky.delete(['x']);
    expect(proxy.requests).toHaveLength(2);
    expect(await direct.head('x')).toBeNull();
  });

  it('fails a delete whose 200 answer reports a permanent per-key error', async () => {
    const { flaky } = await openFlaky(() => ({ status: 200, deleteErrors: [{ key: 'x', code: 'AccessDenied' }] }));
    const err = await failure(flaky.delete(['x', 'y']));
    expect(err).toMatchObject({ name: 'StorageError', retriable: false });
    expect(err.message).toBe(`s3 delete of "x" in ${flaky.url} failed after 1 attempt: AccessDenied: 1 of 2 keys not deleted, first "x": scripted`);
  });

  it('lists in pages of listPageSize, one request per page', async () => {
    const store = open({ listPageSize: 2 });
    const keys = ['l/a', 'l/b', 'l/c', 'l/d', 'l/e'];
    for (const key of keys) await store.put(key, Buffer.from(key));
    store.resetStats();
    expect((await collect(store.list('l/'))).map((o) => o.key)).toEqual(keys);
    expect(store.stats()).toMatchObject({ lists: 3 });
  });

  it('fails with a clear StorageError when the bucket does not exist', async () => {
    const store = new S3ObjectStore(
      `s3://no-such-bucket?endpoint=${s3rver.endpoint}&region=us-east-1&accessKeyId=S3RVER&secretAccessKey=S3RVER`,
      { retry: { attempts: 3, baseDelayMs: 1 } },
    );
    stores.push(store);
    const err = await failure(store.put('k', Buffer.from('x')));
    expect(err).toMatchObject({ name: 'StorageError', retriable: false, cause: { name: 'NoSuchBucket' } });
    expect(err.message).toMatch(/^s3 put of "k" in s3:\/\/no-such-bucket\?endpoint=.* failed after 1 attempt: NoSuchBucket \(HTTP 404\): /);
    expect(store.stats().retries).toBe(0);
  });

  it('fails with a retriable StorageError when nothing listens at the endpoint', async () => {
    const dead = await startProxy(s3rver.endpoint, () => 'pass');
    await dead.close();
    const store = open({ retry: { attempts: 2 } }, dead.endpoint);
    const err = await failure(store.get('k'));
    expect(err).toMatchObject({ name: 'StorageError', retriable: true, cause: { code: 'ECONNREFUSED' } });
    expect(store.stats()).toMatchObject({ gets: 1, retries: 1, errors: 1 });
  });
});
