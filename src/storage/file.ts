/**
 * An object store in a local directory: `file:///absolute/path`.
 *
 * Key `a/b/c` is the file `<root>/a/b/c`. A put writes a temporary file beside the target,
 * fsyncs it, renames it over the target and fsyncs the directory, so a crash leaves either
 * the old object or the new one, never a torn file, and a resolved put survives power loss.
 * Temporary files are named `.strata-tmp-<random>`; key segments may not start with that.
 * A put marked `fresh` (a key never used before, read by nobody until the put resolves) is
 * done by a writer thread, which creates the target directly: a crash can then leave a
 * partial file under a key that nothing references. Writer threads write with direct I/O
 * where the filesystem allows it, bypassing the page cache (see file-writer.ts). Where it
 * does not, they overwrite prepared spare files (`.strata-tmp-spare-<random>` at the root)
 * instead of creating files when they can; a crash can leave one spare per thread behind,
 * which writer threads starting later remove once it is ten minutes old.
 *
 * Unlike S3, one key cannot be both an object and a directory: with an object at `a`, a put
 * to `a/b` fails (and the reverse). Strata's keys never do this.
 *
 * Objects hold every produced record, so the store keeps them private to the user the broker
 * runs as: directories it creates (the root included) are 0700 and files 0600, modes given
 * explicitly so that a permissive umask cannot widen them. Directories that already exist
 * keep their modes.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, ObjectNotFoundError, StorageError } from '../errors.js';
import { FileWriterPool } from './file-writer.js';
import {
  checkRange,
  closedError,
  countRequest,
  emptyStats,
  type ByteRange,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOp,
  type ObjectStoreStats,
  type PutOptions,
} from './object-store.js';

/** Name prefix of the temporary files a put writes; never a key segment. */
export const TEMP_FILE_PREFIX = '.strata-tmp-';
/** Name prefix of the writer threads' spare files, at the root (see file-writer.ts). */
export const SPARE_FILE_PREFIX = `${TEMP_FILE_PREFIX}spare-`;

/** Errno codes that say the key's path is absent (or runs through a file, or is a directory). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);
/** Errno codes that will not go away by retrying. */
const PERMANENT = new Set(['ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EACCES', 'EPERM', 'EROFS', 'ENAMETOOLONG', 'EINVAL']);
/** Errno codes of a key colliding with a directory or a file on its path. */
const CONFLICT = new Set(['ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY']);
/** How often a put re-creates its directory when a concurrent delete removed it. */
const DIR_RACE_RETRIES = 3;
/** Mode of the directories the store creates: the user's only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the files the store creates: the user's only (the writer threads use the same). */
export const PRIVATE_FILE_MODE = 0o600;

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The filesystem root a `file:` URL names. Throws ConfigError for anything but an absolute
 * local path (`file:///var/lib/strata`).
 */
export function fileStoreRoot(url: string): string {
  let root: string;
  try {
    root = fileURLToPath(new URL(url));
  } catch (err) {
    throw new ConfigError(
      `storage URL "${url}" is not a local file URL; write an absolute path with three slashes, e.g. file:///var/lib/strata`,
      { cause: err },
    );
  }
  if (root.length > 1 && root.endsWith(sep)) root = root.slice(0, -1);
  return root;
}

/** Options for {@link FileObjectStore}. */
export interface FileObjectStoreOptions {
  /** fsync files and directories on put (default true). Tests may turn it off for speed. */
  fsync?: boolean;
  /**
   * Write fresh puts with direct I/O where the filesystem allows it (default true); off, they
   * go through the page cache (and spare files).
   */
  directIo?: boolean;
}

/** An {@link ObjectStore} over a local directory, with atomic durable puts. */
export class FileObjectStore implements ObjectStore {
  readonly url: string;
  /** The directory holding the objects. */
  readonly root: string;
  #fsync: boolean;
  /** Directories known to exist and be durable, or being created, by path. */
  #dirs = new Map<string, Promise<void>>();
  #stats = emptyStats();
  #closed = false;
  readonly #writers: FileWriterPool;

  /** @param url a `file:///absolute/path` URL; the directory is created on the first put */
  constructor(url: string, options: FileObjectStoreOptions = {}) {
    this.root = fileStoreRoot(url);
    this.url = pathToFileURL(this.root).href;
    this.#fsync = options.fsync ?? true;
    this.#writers = new FileWriterPool({ spareDir: this.root, sparePrefix: SPARE_FILE_PREFIX, direct: options.directIo ?? true, fileMode: PRIVATE_FILE_MODE });
  }

  async put(key: string, body: Buffer | readonly Buffer[], options: PutOptions = {}): Promise<void> {
    const file = this.#begin('put', key);
    const buffers = Buffer.isBuffer(body) ? [body] : body;
    try {
      // Awaited before the +=, which would otherwise read the counter before concurrent puts add to it.
      const written = options.fresh ? await this.#putInPlace(file, buffers) : await this.#putByRename(file, buffers);
      this.#stats.bytesWritten += written;
    } catch (err) {
      throw this.#fail('put', key, err);
    }
  }

  /** Writes a temporary file beside the target, fsyncs it, renames it over the target. */
  async #putByRename(file: string, buffers: readonly Buffer[]): Promise<number> {
    const dir = dirname(file);
    const tmp = join(dir, TEMP_FILE_PREFIX + randomBytes(8).toString('hex'));
    try {
      const handle = await this.#inDir(dir, () => open(tmp, 'wx', PRIVATE_FILE_MODE));
      let written: number;
      try {
        written = await writeAll(handle, buffers);
        if (this.#fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
      if (this.#fsync) await syncDir(dir);
      return written;
    } catch (err) {
      // A temp file that cannot be removed is harmless (list and get never see it); the
      // error worth reporting is the one that failed the put.
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A fresh key: a writer thread creates the target itself (failing if it exists), writes,
   * fsyncs it and its directory entry, and closes it — no temp file, no rename, and one round
   * trip to the thread instead of one per call (see file-writer.ts).
   */
  async #putInPlace(file: string, buffers: readonly Buffer[]): Promise<number> {
    const dir = dirname(file);
    return this.#inDir(dir, () => this.#writers.write(file, dir, buffers, this.#fsync));
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    if (range !== undefined) checkRange(range);
    const file = this.#begin('get', key);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (ABSENT.has(errnoCode(err) ?? '')) throw new ObjectNotFoundError(key, { cause: err });
      throw this.#fail('get', key, err);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new ObjectNotFoundError(key);
      const start = Math.min(range?.start ?? 0, info.size);
      const end = Math.min(range?.end ?? info.size, info.size);
      const out = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < out.length) {
        const { bytesRead } = await handle.read(out, filled, out.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      this.#stats.bytesRead += filled;
      return filled === out.length ? out : out.subarray(0, filled);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw err;
      throw this.#fail('get', key, err);
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const file = this.#begin('head', key);
    try {
      const info = await stat(file);
      return info.isFile() ? { key, size: info.size } : null;
    } catch (err) {
      if (ABSENT.has(errnoCode(err) ?? '')) return null;
      throw this.#fail('head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (this.#closed) throw closedError(this.url);
    countRequest(this.#stats, 'list');
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    // A prefix whose directory part no key could have (`..`, `//`) matches nothing.
    if (dirKey !== '' && keyProblem(dirKey) !== undefined) return;
    try {
      yield* this.#walk(dirKey, prefix);
    } catch (err) {
      throw this.#fail('list', prefix, err);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.#closed) throw closedError(this.url);
    const files = keys.map((key) => this.#path(key));
    countRequest(this.#stats, 'delete');
    const dirs = new Set<string>();
    for (let i = 0; i < files.length; i++) {
      try {
        await unlink(files[i]);
        dirs.add(dirname(files[i]));
      } catch (err) {
        // Nothing there, or a directory (a prefix, not an object): as on S3, not an error.
        if (ABSENT.has(errnoCode(err) ?? '') || (await isDirectory(files[i]))) continue;
        throw this.#fail('delete', keys[i], err);
      }
    }
    // Deepest first, so a parent emptied by its children's removal goes too.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.#pruneDirs(dir);
  }

  stats(): ObjectStoreStats {
    return { ...this.#stats };
  }

  resetStats(): void {
    this.#stats = emptyStats();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#writers.close();
  }

  /** Checks the store is open and the key valid, counts the request, returns the key's path. */
  #begin(op: ObjectStoreOp, key: string): string {
    if (this.#closed) throw closedError(this.url);
    const file = this.#path(key);
    countRequest(this.#stats, op);
    return file;
  }

  #path(key: string): string {
    const problem = keyProblem(key);
    if (problem !== undefined) {
      throw new StorageError(`file store rejects key ${JSON.stringify(key)}: ${problem}`, { retriable: false });
    }
    return join(this.root, ...key.split('/'));
  }

  #fail(op: ObjectStoreOp, key: string, err: unknown): StorageError {
    this.#stats.errors++;
    if (err instanceof StorageError) return err;
    const code = errnoCode(err);
    const hint =
      code !== undefined && CONFLICT.has(code)
        ? ' (a file store key cannot also be a directory of other keys, e.g. both "a" and "a/b")'
        : '';
    const message = err instanceof Error ? err.message : String(err);
    return new StorageError(`file store ${op} of "${key}" under ${this.root} failed: ${message}${hint}`, {
      cause: err,
      retriable: code === undefined || !PERMANENT.has(code),
    });
  }

  /**
   * Runs `create` (which makes a new file in `dir`) once `dir` exists durably, again when a
   * concurrent delete pruned the directory in between.
   */
  async #inDir<T>(dir: string, create: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      await this.#ensureDir(dir);
      try {
        return await create();
      } catch (err) {
        // A concurrent delete pruned the (empty) directory between mkdir and open.
        if (errnoCode(err) !== 'ENOENT' || attempt >= DIR_RACE_RETRIES) throw err;
        this.#dirs.delete(dir);
      }
    }
  }

  async #ensureDir(dir: string): Promise<void> {
    let ready = this.#dirs.get(dir);
    if (ready === undefined) {
      ready = this.#createDir(dir);
      this.#dirs.set(dir, ready);
      ready.catch(() => this.#dirs.delete(dir));
    }
    await ready;
  }

  /**
   * Creates `dir` and any missing parents, then fsyncs the parent of each created directory
   * so its entry is durable before an object inside it is acknowledged.
   */
  async #createDir(dir: string): Promise<void> {
    // Every directory a recursive mkdir creates gets the mode, not only the last.
    const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    if (first === undefined || !this.#fsync) return;
    const created = [first];
    for (let d = dir; d !== first && d.length > first.length; d = dirname(d)) created.push(d);
    for (const d of new Set(created.map((c) => dirname(c)))) await syncDir(d);
  }

  /** Removes `dir` and its parents while they are empty, stopping at the root. */
  async #pruneDirs(dir: string): Promise<void> {
    for (let d = dir; d !== this.root && relative(this.root, d).split(sep)[0] !== '..'; d = dirname(d)) {
      try {
        await rmdir(d);
        this.#dirs.delete(d);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return;
        throw this.#fail('delete', relative(this.root, d).split(sep).join('/'), err);
      }
    }
  }

  /** Yields the objects under directory `dirKey` whose keys start with `prefix`, in key order. */
  async *#walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    const dirPath = dirKey === '' ? this.root : join(this.root, ...dirKey.split('/'));
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (err) {
      if (ABSENT.has(errnoCode(err) ?? '')) return;
      throw err;
    }
    // A directory's keys all continue with "/", so it sorts as its name plus "/": then the
    // order of entries equals the lexicographic order of the keys below them ("a-1" < "a/x").
    const sorted = entries
      .filter((e) => !e.name.startsWith(TEMP_FILE_PREFIX) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const entry of sorted) {
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDir) {
        const below = `${key}/`;
        if (below.startsWith(prefix) || prefix.startsWith(below)) yield* this.#walk(key, prefix);
      } else if (key.startsWith(prefix)) {
        let size: number;
        try {
          size = (await stat(join(dirPath, entry.name))).size;
        } catch (err) {
          if (ABSENT.has(errnoCode(err) ?? '')) continue; // deleted while listing
          throw err;
        }
        yield { key, size };
      }
    }
  }
}

/** Why `key` cannot name a file under the root, or undefined when it can. */
function keyProblem(key: string): string | undefined {
  if (key === '') return 'the key is empty';
  if (key.includes('\0')) return 'it contains a NUL byte';
  if (key.startsWith('/')) return 'keys are relative, not absolute paths';
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty path segment ("//" or a leading or trailing "/")';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment, which would leave the key's directory`;
    if (segment.startsWith(TEMP_FILE_PREFIX)) return `segments starting with "${TEMP_FILE_PREFIX}" are reserved for temporary files`;
  }
  return undefined;
}

/** Writes every buffer at the file's current position, resuming after partial writes. */
async function writeAll(handle: FileHandle, buffers: readonly Buffer[]): Promise<number> {
  const pending = buffers.filter((b) => b.length > 0);
  let total = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending);
    total += bytesWritten;
    let skip = bytesWritten;
    while (pending.length > 0 && skip >= pending[0].length) skip -= pending.shift()!.length;
    if (skip > 0) pending[0] = pending[0].subarray(skip);
  }
  return total;
}

/** Whether `path` is a directory now (false when it cannot be examined). */
async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch (_err) {
    return false;
  }
}

/** fsyncs a directory, making the entries created or renamed in it durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
