/**
 * File store specifics: key validation, crash-safe puts (no temp files left), directory
 * pruning, private modes, and URL handling. The ObjectStore behaviour itself is in
 * contract.test.ts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, StorageError } from '../../src/errors.js';
import { FileObjectStore, SPARE_FILE_PREFIX, TEMP_FILE_PREFIX, fileStoreRoot } from '../../src/storage/file.js';
import type { ObjectInfo } from '../../src/storage/object-store.js';

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

/**
 * Every file and directory under `dir`, as sorted relative paths (directories end in "/"),
 * leaving out the writer threads' spare files, which come and go on their own.
 */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith(SPARE_FILE_PREFIX)) continue;
      const full = join(d, entry.name);
      if (entry.isDirectory()) {
        out.push(`${relative(dir, full)}/`);
        walk(full);
      } else {
        out.push(relative(dir, full));
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** The permission bits of `path`. */
function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/**
 * Runs `body` with the process umask cleared, so that any mode below comes from the store
 * and not from the umask removing bits (the writer threads share the process umask).
 */
async function withoutUmask(body: () => Promise<void>): Promise<void> {
  const saved = process.umask(0);
  try {
    await body();
  } finally {
    process.umask(saved);
  }
}

/** The spare files at the root now, as [name, inode, size]. */
function spares(): [string, number, number][] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => name.startsWith(SPARE_FILE_PREFIX))
    .map((name) => {
      const info = statSync(join(root, name));
      return [name, info.ino, info.size];
    });
}

/**
 * Waits (bounded) until a writer thread has prepared a spare file of `size` bytes (it grows
 * while the thread fills it), and returns it.
 */
async function spareReady(size: number): Promise<[string, number, number]> {
  for (let i = 0; i < 500; i++) {
    const found = spares();
    if (found.length === 1 && found[0]![2] === size) return found[0]!;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no spare file of ${size} bytes appeared; found ${JSON.stringify(spares())}`);
}

let base: string;
let root: string;
let store: FileObjectStore;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-file-test-'));
  root = join(base, 'objects');
  store = new FileObjectStore(pathToFileURL(root).href);
});

afterEach(async () => {
  await store.close();
  rmSync(base, { recursive: true, force: true });
});

/** A fresh put onto existing `key` fails for good with EEXIST, and the object keeps `content`. */
async function expectFreshPutRefused(key: string, content: string): Promise<void> {
  const err = await store.put(key, Buffer.from('other'), { fresh: true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ retriable: false });
  expect((err as Error).cause).toMatchObject({ code: 'EEXIST' });
  expect(readFileSync(join(root, ...key.split('/')), 'utf8')).toBe(content);
}

describe('FileObjectStore', () => {
  it('keeps each object as a plain file at its key', async () => {
    await store.put('topics/t/0/00000000000000000042', [Buffer.from('ab'), Buffer.from('cd')]);
    expect(readFileSync(join(root, 'topics', 't', '0', '00000000000000000042'), 'utf8')).toBe('abcd');
    expect(store.url).toBe(pathToFileURL(root).href);
    expect(store.root).toBe(root);
  });

  it.each([
    ['../escape', 'it has a ".." segment'],
    ['a/../../escape', 'it has a ".." segment'],
    ['./a', 'it has a "." segment'],
    ['/etc/passwd', 'keys are relative, not absolute paths'],
    ['', 'the key is empty'],
    ['a//b', 'it has an empty path segment'],
    ['a/', 'it has an empty path segment'],
    ['a\0b', 'it contains a NUL byte'],
    [`a/${TEMP_FILE_PREFIX}x`, `segments starting with "${TEMP_FILE_PREFIX}" are reserved for temporary files`],
  ])('rejects key %j', async (key, reason) => {
    for (const op of [() => store.put(key, Buffer.from('x')), () => store.get(key), () => store.head(key), () => store.delete([key])]) {
      const err = await op().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ retriable: false });
      expect((err as Error).message).toContain(`file store rejects key ${JSON.stringify(key)}: ${reason}`);
    }
    expect(readdirSync(base)).toEqual([]);
  });

  it('leaves no temporary files after puts, overwrites and concurrent puts', async () => {
    await store.put('a/1', Buffer.from('one'));
    await store.put('a/1', Buffer.from('uno'));
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put(`a/b/${i}`, Buffer.alloc(100, i))));
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.put('same', Buffer.alloc(10, i))));
    expect(tree(root)).toEqual(['a/', 'a/1', 'a/b/', ...Array.from({ length: 10 }, (_, i) => `a/b/${i}`), 'same']);
    expect(readFileSync(join(root, 'same')).length).toBe(10);
  });

  it('fails a put whose key collides with an object on its path, leaving no temp file', async () => {
    await store.put('a', Buffer.from('file'));
    const err = await store.put('a/b', Buffer.from('x')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ retriable: false });
    expect((err as Error).message).toMatch(/^file store put of "a\/b" under .* failed: .*a file store key cannot also be a directory/);
    expect((err as Error).cause).toMatchObject({ code: 'EEXIST', syscall: 'mkdir' });
    expect(tree(root)).toEqual(['a']);
  });

  it('fails a put onto a key that is a directory of other keys, leaving no temp file', async () => {
    await store.put('x/y', Buffer.from('inner'));
    const err = await store.put('x', Buffer.from('outer')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ retriable: false });
    expect(tree(root)).toEqual(['x/', 'x/y']);
    expect((await store.get('x/y')).toString()).toBe('inner');
  });

  it('writes a fresh put in place and refuses one onto an existing key, keeping the object', async () => {
    await store.put('seg/1', [Buffer.from('abc'), Buffer.from('def')], { fresh: true });
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.put(`seg/n${i}`, Buffer.alloc(1000, i), { fresh: true })));
    expect(tree(root)).toEqual(['seg/', 'seg/1', ...Array.from({ length: 8 }, (_, i) => `seg/n${i}`)]);
    expect(readFileSync(join(root, 'seg', 'n5'))).toEqual(Buffer.alloc(1000, 5));
    await expectFreshPutRefused('seg/1', 'abcdef');
    expect(store.stats()).toMatchObject({ puts: 10, errors: 1, bytesWritten: 6 + 8000 });
  });

  describe('with direct I/O off (buffered writes and spare files)', () => {
    beforeEach(async () => {
      await store.close();
      store = new FileObjectStore(pathToFileURL(root).href, { directIo: false });
    });

    it('overwrites an idle writer thread\'s spare file for the next fresh put, smaller or larger', async () => {
      const first = Buffer.alloc(100_000, 1);
      await store.put('s/1', first, { fresh: true });
      // Sized to the recent writes with room to spare, in 64 KiB steps: 125 000 bytes → 128 KiB.
      const [, spareInode] = await spareReady(128 * 1024);

      const smaller = Buffer.alloc(10_000, 2);
      await store.put('s/2', smaller, { fresh: true });
      expect(statSync(join(root, 's', '2')).ino).toBe(spareInode);
      expect(readFileSync(join(root, 's', '2'))).toEqual(smaller);

      // The recent size decays by a tenth per write: 90 000 bytes, 112 500 with room → 128 KiB.
      const [, nextInode] = await spareReady(128 * 1024);
      const larger = Buffer.concat([Buffer.alloc(200_000, 3), Buffer.from('end')]);
      await store.put('s/3', larger, { fresh: true });
      expect(statSync(join(root, 's', '3')).ino).toBe(nextInode);
      expect(readFileSync(join(root, 's', '3'))).toEqual(larger);

      expect(readFileSync(join(root, 's', '1'))).toEqual(first);
      expect(await collect(store.list(''))).toEqual([
        { key: 's/1', size: 100_000 },
        { key: 's/2', size: 10_000 },
        { key: 's/3', size: 200_003 },
      ]);
    });

    it('refuses a fresh put onto an existing key with a spare ready, keeping both the object and nothing else', async () => {
      await store.put('e/1', Buffer.from('original'), { fresh: true });
      await spareReady(64 * 1024);
      await expectFreshPutRefused('e/1', 'original');
      // The spare was used up by the failed put and removed with it.
      expect(spares()).toEqual([]);
      await store.put('e/2', Buffer.from('next'), { fresh: true });
      expect(readFileSync(join(root, 'e', '2'), 'utf8')).toBe('next');
    });

    it('writes its file when another process removed the spare, and sweeps only stale spares at start', async () => {
      mkdirSync(root, { recursive: true });
      const crashed = join(root, `${SPARE_FILE_PREFIX}crashed`);
      const live = join(root, `${SPARE_FILE_PREFIX}live`);
      writeFileSync(crashed, Buffer.alloc(4096));
      writeFileSync(live, Buffer.alloc(4096));
      const elevenMinutesAgo = new Date(Date.now() - 11 * 60 * 1000);
      utimesSync(crashed, elevenMinutesAgo, elevenMinutesAgo);
      // The first put starts a writer thread, which sweeps before it writes.
      await store.put('w/1', Buffer.from('first'), { fresh: true });
      expect(existsSync(crashed)).toBe(false);
      expect(existsSync(live)).toBe(true);
      unlinkSync(live);

      const [name] = await spareReady(64 * 1024);
      unlinkSync(join(root, name));
      await store.put('w/2', Buffer.from('second'), { fresh: true });
      expect(readFileSync(join(root, 'w', '2'), 'utf8')).toBe('second');
      expect(await collect(store.list('w/'))).toEqual([
        { key: 'w/1', size: 5 },
        { key: 'w/2', size: 6 },
      ]);
    });

    it('creates spare files 0600, so an object linked from one is private too', async () => {
      await withoutUmask(async () => {
        await store.put('m/1', Buffer.alloc(5000, 1), { fresh: true });
        const [name, inode] = await spareReady(64 * 1024);
        expect(modeOf(join(root, name))).toBe(0o600);
        await store.put('m/2', Buffer.from('from the spare'), { fresh: true });
        expect(statSync(join(root, 'm', '2')).ino).toBe(inode);
        expect([modeOf(join(root, 'm', '1')), modeOf(join(root, 'm', '2'))]).toEqual([0o600, 0o600]);
      });
    });

    it('removes its spare file when it closes', async () => {
      await store.put('c/1', Buffer.alloc(5000, 1), { fresh: true });
      await spareReady(64 * 1024);
      await store.close();
      expect(spares()).toEqual([]);
      expect(readdirSync(root)).toEqual(['c']);
    });
  });

  it('creates its directories 0700 (the root included) and its objects 0600, whatever the umask', async () => {
    await withoutUmask(async () => {
      await store.put('private/a/renamed', Buffer.from('temp file and rename'));
      await store.put('private/b/fresh', Buffer.from('writer thread'), { fresh: true });
      await store.put('private/b/fresh-large', Buffer.alloc(300_000, 7), { fresh: true });
    });
    expect(tree(root)).toEqual(['private/', 'private/a/', 'private/a/renamed', 'private/b/', 'private/b/fresh', 'private/b/fresh-large']);
    for (const dir of [root, join(root, 'private'), join(root, 'private', 'a'), join(root, 'private', 'b')]) expect(modeOf(dir), dir).toBe(0o700);
    for (const file of ['a/renamed', 'b/fresh', 'b/fresh-large']) expect(modeOf(join(root, 'private', ...file.split('/'))), file).toBe(0o600);
  });

  it('leaves the mode of a root that already exists as it is', async () => {
    mkdirSync(root, { mode: 0o750 });
    chmodSync(root, 0o750);
    await store.put('k', Buffer.from('v'));
    expect(modeOf(root)).toBe(0o750);
    expect(modeOf(join(root, 'k'))).toBe(0o600);
  });

  it('does not show a temp file left by a crash', async () => {
    await store.put('d/k', Buffer.from('real'));
    writeFileSync(join(root, 'd', `${TEMP_FILE_PREFIX}0123456789abcdef`), 'half-written');
    expect(await collect(store.list(''))).toEqual([{ key: 'd/k', size: 4 }]);
    expect(await collect(store.list('d/.'))).toEqual([]);
  });

  it('prunes directories emptied by delete, never the root or non-empty ones', async () => {
    await store.put('p/q/r/1', Buffer.from('1'));
    await store.put('p/q/2', Buffer.from('2'));
    await store.put('top', Buffer.from('t'));
    await store.delete(['p/q/r/1']);
    expect(tree(root)).toEqual(['p/', 'p/q/', 'p/q/2', 'top']);
    await store.delete(['p/q/2', 'top']);
    expect(tree(root)).toEqual([]);
    expect(existsSync(root)).toBe(true);
  });

  it('puts again into a directory a delete pruned', async () => {
    await store.put('a/b/c', Buffer.from('1'));
    await store.delete(['a/b/c']);
    expect(existsSync(join(root, 'a'))).toBe(false);
    await store.put('a/b/d', Buffer.from('2'));
    expect((await store.get('a/b/d')).toString()).toBe('2');
  });

  it('survives puts racing deletes that prune the same directory', async () => {
    const work: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      work.push(store.put(`race/${i}`, Buffer.from(String(i))).then(() => store.delete([`race/${i}`])));
    }
    await Promise.all(work);
    await store.put('race/last', Buffer.from('ok'));
    expect(await collect(store.list('race/'))).toEqual([{ key: 'race/last', size: 2 }]);
  });

  it('survives fresh puts racing deletes that prune the same directory', async () => {
    const work: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      work.push(store.put(`fresh/${i}`, Buffer.from(String(i)), { fresh: true }).then(() => store.delete([`fresh/${i}`])));
    }
    await Promise.all(work);
    await store.put('fresh/last', Buffer.from('ok'), { fresh: true });
    expect(await collect(store.list('fresh/'))).toEqual([{ key: 'fresh/last', size: 2 }]);
    expect(tree(root)).toEqual(['fresh/', 'fresh/last']);
  });

  it('fails a fresh put in flight when the store closes, and every later call', async () => {
    const inFlight = store.put('late/1', Buffer.alloc(1 << 20, 1), { fresh: true }).then(
      () => 'stored',
      (e: unknown) => e,
    );
    await store.close();
    // The put was still creating its directory when the store closed: it fails, it does not hang.
    const outcome = await inFlight;
    expect(outcome).toBeInstanceOf(StorageError);
    expect((outcome as StorageError).retriable).toBe(true);
    expect(existsSync(join(root, 'late', '1'))).toBe(false);
    await expect(store.put('late/2', Buffer.from('x'), { fresh: true })).rejects.toBeInstanceOf(StorageError);
  });

  it('treats a directory as no object for get, head and delete', async () => {
    await store.put('dir/inner', Buffer.from('v'));
    expect(await store.head('dir')).toBeNull();
    await expect(store.get('dir')).rejects.toMatchObject({ name: 'ObjectNotFoundError', key: 'dir' });
    await store.delete(['dir']);
    expect((await store.get('dir/inner')).toString()).toBe('v');
  });

  it('lists nothing for a root that does not exist yet, or a prefix no key can have', async () => {
    expect(await collect(store.list(''))).toEqual([]);
    await store.put('k', Buffer.from('v'));
    expect(await collect(store.list('../'))).toEqual([]);
    expect(await collect(store.list('a//'))).toEqual([]);
  });

  it('ignores other file types and works with fsync off', async () => {
    const fast = new FileObjectStore(pathToFileURL(root).href, { fsync: false });
    await fast.put('n/1', Buffer.from('x'));
    mkdirSync(join(root, 'n', 'emptydir'));
    expect(await collect(fast.list('n/'))).toEqual([{ key: 'n/1', size: 1 }]);
    await fast.close();
  });
});

describe('fileStoreRoot', () => {
  it('accepts an absolute file URL and drops a trailing slash', () => {
    expect(fileStoreRoot('file:///var/lib/strata/')).toBe('/var/lib/strata');
    expect(fileStoreRoot('file:///var/lib/strata')).toBe('/var/lib/strata');
    expect(fileStoreRoot('file:///')).toBe('/');
  });

  it('rejects a relative-looking URL with an actionable message', () => {
    expect(() => fileStoreRoot('file://data/objects')).toThrow(ConfigError);
    expect(() => fileStoreRoot('file://data/objects')).toThrow(
      'storage URL "file://data/objects" is not a local file URL; write an absolute path with three slashes, e.g. file:///var/lib/strata',
    );
  });
});
