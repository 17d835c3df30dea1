/**
 * CountedObjectStore: a job's view of the store counts exactly the requests made through it,
 * while the store underneath still counts everything. Against the real file store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ObjectNotFoundError } from '../../src/errors.js';
import { CountedObjectStore } from '../../src/storage/counted.js';
import { FileObjectStore } from '../../src/storage/file.js';

const dirs: string[] = [];
const stores: FileObjectStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fileStore(): FileObjectStore {
  const dir = mkdtempSync(join(tmpdir(), 'strata-counted-'));
  dirs.push(dir);
  const store = new FileObjectStore(pathToFileURL(dir).href);
  stores.push(store);
  return store;
}

describe('CountedObjectStore', () => {
  it('counts puts, gets, heads, listed pages and delete batches made through it, with bytes', async () => {
    const store = fileStore();
    await store.put('other/x', Buffer.from('not through the view'));
    const view = new CountedObjectStore(store);
    for (let i = 0; i < 1001; i++) await view.put(`data/${String(i).padStart(4, '0')}`, Buffer.from('abc'));
    expect((await view.get('data/0001', { start: 1, end: 3 })).toString()).toBe('bc');
    await expect(view.get('data/missing')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await view.head('data/0002')).toEqual({ key: 'data/0002', size: 3 });
    let listed = 0;
    for await (const info of view.list('data/')) if (info.size === 3) listed++;
    expect(listed).toBe(1001);
    await view.delete(Array.from({ length: 1001 }, (_, i) => `data/${String(i).padStart(4, '0')}`));

    expect(view.stats()).toEqual({ puts: 1001, gets: 2, heads: 1, lists: 2, deletes: 2, retries: 0, errors: 0, bytesWritten: 3003, bytesRead: 2 });
    // The store underneath counted the view's requests and the one made beside it.
    expect(store.stats().puts).toBe(1002);
    expect(view.url).toBe(store.url);
    view.resetStats();
    expect(view.stats().puts).toBe(0);
    // Closing the view leaves the store usable.
    await view.close();
    expect((await store.get('other/x')).toString()).toBe('not through the view');
  });
});
