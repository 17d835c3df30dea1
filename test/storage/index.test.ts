/** openObjectStore: choosing an implementation by URL, and one-line errors for bad URLs. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { FileObjectStore, MemoryObjectStore, S3ObjectStore, openObjectStore } from '../../src/storage/index.js';

describe('openObjectStore', () => {
  it('opens an S3 store for s3:// and keeps credentials out of its url', async () => {
    const store = openObjectStore('s3://bucket/pre?endpoint=http://127.0.0.1:9&accessKeyId=AK&secretAccessKey=SK', {
      s3: { listPageSize: 10 },
    });
    expect(store).toBeInstanceOf(S3ObjectStore);
    expect(store.url).toBe('s3://bucket/pre?endpoint=http://127.0.0.1:9');
    await store.close();
  });

  it('opens a file store for file:///path', async () => {
    const store = openObjectStore('file:///tmp/strata-never-created');
    expect(store).toBeInstanceOf(FileObjectStore);
    expect(store.url).toBe('file:///tmp/strata-never-created');
    await store.close();
  });

  it('opens a private memory store for memory:// and a shared one for memory://name', async () => {
    const a = openObjectStore('memory://');
    const b = openObjectStore('MEMORY://');
    expect(a).toBeInstanceOf(MemoryObjectStore);
    await a.put('k', Buffer.from('v'));
    expect(await b.head('k')).toBeNull();
    const named1 = openObjectStore('memory://index-test');
    const named2 = openObjectStore('memory://index-test/');
    expect(named1.url).toBe('memory://index-test');
    await named1.put('k', Buffer.from('shared'));
    expect((await named2.get('k')).toString()).toBe('shared');
  });

  it.each([
    ['foo', 'storage URL "foo" is not s3://, file:// or memory://; e.g. file:///var/lib/strata or s3://bucket/prefix'],
    ['', 'storage URL "" is not s3://, file:// or memory://; e.g. file:///var/lib/strata or s3://bucket/prefix'],
    ['gs://bucket', 'storage URL "gs://bucket" is not s3://, file:// or memory://; e.g. file:///var/lib/strata or s3://bucket/prefix'],
    ['memory://a/b', 'storage URL "memory://a/b" is not memory:// or memory://<name> (a name without "/" or "?")'],
    ['file://data', 'storage URL "file://data" is not a local file URL; write an absolute path with three slashes, e.g. file:///var/lib/strata'],
    ['s3://', 'storage URL "s3://" has bucket ""; an S3 bucket name is 3-63 lowercase letters, digits, "." or "-"'],
    ['s3://[bucket', 'storage URL "s3://[bucket" is not a valid URL; expected s3://bucket/prefix?endpoint=…'],
  ])('rejects %j with ConfigError: %s', (url, message) => {
    expect(() => openObjectStore(url)).toThrow(ConfigError);
    expect(() => openObjectStore(url)).toThrow(message);
  });
});
