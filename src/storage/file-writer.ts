/**
 * Writes new files on worker threads, for the file store's fresh puts.
 *
 * A put on the main thread is a chain of thread-pool round trips (open, write, fsync, fsync of
 * the directory, close), each waiting for a free libuv thread and then for the event loop to
 * pick up its completion. Under produce load every wait stretches: fsyncs hold the shared pool
 * threads, and GC pauses and request work delay each continuation. A worker does the whole put
 * with synchronous calls and answers once, so a put costs one message each way and its disk
 * waits overlap the main thread's work instead of queueing behind it.
 *
 * Direct I/O: where the filesystem allows it, a thread opens the new file with O_DIRECT and
 * the disk reads the body straight out of the shared buffer the pool copied it into. The
 * broker keeps its own write and block caches, so a second copy in the page cache buys
 * little, and filling page-cache pages is most of a buffered put's cost: the kernel copies
 * every byte into pages it must first allocate, and on the benchmark VM the first touch of
 * guest memory is slow (a 648 KiB put took 2.3 ms buffered and 0.6 ms direct, 2.5 MB took
 * 8.9 ms and 1.8 ms). Direct writes move whole 4 KiB blocks from a block-aligned address: the
 * pool's buffers are WebAssembly memories, which start on a page boundary, and the thread
 * writes the body rounded up to a whole block, then trims the file to the body's length. A
 * filesystem or buffer that refuses (EINVAL) turns direct I/O off for the thread, and that
 * write is redone buffered.
 *
 * Spare files, for buffered writes: overwriting page-cache pages the kernel already holds
 * costs far less than filling new ones (on the benchmark VM ~0.6 ms against ~10 ms for
 * 2.5 MB). So a buffered writer thread that has been idle for a moment prepares a spare file
 * of the size of its recent writes, full of zeros and not synced; its next write overwrites
 * the spare, trims it, fsyncs it and links it under the new name. Waiting for idleness keeps
 * that preparation off the produce path: right after a put the broker commits to Redis, and a
 * spare prepared then competes with the commit for the CPU.
 *
 * The worker's code is a string run with `eval`, so it needs no file beside the compiled
 * output and runs the same under the TypeScript test runner.
 */
import { Worker } from 'node:worker_threads';

/** What a worker answers for one message. */
type WriterReply = { id: number; written: number; direct: boolean } | { id: number; error: { message: string; code?: string; syscall?: string } };

/** What a worker is started with. */
interface WriterConfig {
  /** Directory for spare files (on the same filesystem as every target), or null for none. */
  spareDir: string | null;
  /** Name prefix of spare files. */
  sparePrefix: string;
  /** How long a thread must have been idle before it prepares a spare file. */
  spareIdleMs: number;
  /** Try direct I/O first. */
  direct: boolean;
  /** Mode of every file a thread creates (targets and spares; a linked spare keeps its own). */
  fileMode: number;
}

/**
 * The worker. A `write` message creates `path` (failing if it exists) holding the `length`
 * bytes of `body` from `offset` on, makes it and then its directory entry durable when `fsync`
 * is set, and closes it; on failure nothing is left under `path`. `body` is shared memory,
 * which the pool reuses once the reply arrives; the reply says whether the write went direct.
 * A `close` message removes the spare file.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spareDir, sparePrefix, spareIdleMs, fileMode } = workerData;
const O_DIRECT = fs.constants.O_DIRECT;
/** Direct writes cover whole blocks of this size (a multiple of any logical block size seen). */
const DIRECT_BLOCK = 4096;
/** Whether this thread still tries direct I/O (off for good after the first refusal). */
let direct = workerData.direct && O_DIRECT !== undefined;
const CANNOT_GO_DIRECT = -1;
const SPARE_MAX_BYTES = 64 * 1024 * 1024;
const STALE_SPARE_MS = 10 * 60 * 1000;
const ZEROS = Buffer.alloc(1024 * 1024);
/** The prepared spare file ({ path, size }), or null. */
let spare = null;
/** Recent write sizes, as a maximum that decays by a tenth per write. */
let recentBytes = 0;
let idleTimer = null;

function removeQuietly(file) {
  try { fs.unlinkSync(file); } catch {}
}

function closeQuietly(fd) {
  try { fs.closeSync(fd); } catch {}
}

/**
 * Removes spare files a crashed process left: those untouched for STALE_SPARE_MS. A live spare
 * of another process that goes with them costs that process nothing but the spare (its next
 * write creates its file, or retries once if the spare vanished mid-write).
 */
function sweepStaleSpares() {
  let names = [];
  try { names = fs.readdirSync(spareDir); } catch { return; }
  const before = Date.now() - STALE_SPARE_MS;
  for (const name of names) {
    if (!name.startsWith(sparePrefix)) continue;
    const file = path.join(spareDir, name);
    try {
      if (fs.statSync(file).mtimeMs < before) fs.unlinkSync(file);
    } catch {}
  }
}

function prepareSpare() {
  idleTimer = null;
  const size = Math.min(SPARE_MAX_BYTES, Math.ceil((recentBytes * 1.25) / 65536) * 65536);
  if (spare !== null && spare.size >= recentBytes) return;
  if (spare !== null) removeQuietly(spare.path);
  spare = null;
  const file = path.join(spareDir, sparePrefix + crypto.randomBytes(8).toString('hex'));
  let fd = -1;
  try {
    fd = fs.openSync(file, 'wx', fileMode);
    let at = 0;
    while (at < size) at += fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - at), at);
    spare = { path: file, size };
  } catch {
    // A spare is only an optimisation: without one the next write creates its file.
    removeQuietly(file);
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Opens the spare for overwriting and hands it over, or returns null when there is none. */
function takeSpare() {
  const taken = spare;
  spare = null;
  if (taken === null) return null;
  try {
    return { path: taken.path, size: taken.size, fd: fs.openSync(taken.path, 'r+') };
  } catch {
    removeQuietly(taken.path);
    return null;
  }
}

function syncDir(dir) {
  const dirFd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(dirFd); } finally { fs.closeSync(dirFd); }
}

/**
 * Writes with O_DIRECT: the body rounded up to whole blocks, then trimmed. Returns the bytes
 * written, or CANNOT_GO_DIRECT (leaving nothing behind) when the filesystem or the buffer's
 * alignment refuses direct I/O; other failures throw, leaving nothing behind.
 */
function writeDirect(target, dir, body, offset, length, fsync) {
  const padded = Math.ceil(length / DIRECT_BLOCK) * DIRECT_BLOCK;
  if (offset + padded > body.byteLength) return CANNOT_GO_DIRECT;
  let fd;
  try {
    fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_DIRECT, fileMode);
  } catch (err) {
    if (err.code !== 'EINVAL') throw err;
    // Linux creates the file before it finds that the filesystem has no direct I/O; with
    // O_EXCL a file there now is that one (an existing key fails with EEXIST instead).
    removeQuietly(target);
    return CANNOT_GO_DIRECT;
  }
  try {
    const blocks = new Uint8Array(body, offset, padded);
    let at = 0;
    while (at < padded) at += fs.writeSync(fd, blocks, at, padded - at, at);
    if (padded > length) fs.ftruncateSync(fd, length);
    // Direct writes skip the page cache, not the disk's own cache: the data still needs a
    // flush, and the new size and blocks must be durable to be readable.
    if (fsync) fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    if (fsync) syncDir(dir);
    return length;
  } catch (err) {
    if (fd >= 0) closeQuietly(fd);
    removeQuietly(target);
    if (err.code === 'EINVAL') return CANNOT_GO_DIRECT;
    throw err;
  }
}

/** Writes through the page cache, into the spare file when there is one. */
function writeBuffered(target, dir, body, offset, length, fsync) {
  let fd = -1;
  let created = false;
  const used = takeSpare();
  try {
    fd = used === null ? fs.openSync(target, 'wx', fileMode) : used.fd;
    created = used === null;
    const bytes = new Uint8Array(body, offset, length);
    let at = 0;
    while (at < bytes.length) at += fs.writeSync(fd, bytes, at, bytes.length - at, at);
    if (used !== null && used.size > at) fs.ftruncateSync(fd, at);
    if (fsync) fs.fsyncSync(fd);
    if (used !== null) {
      // link, unlike rename, fails when the target exists, as the 'wx' open does.
      fs.linkSync(used.path, target);
      created = true;
      removeQuietly(used.path);
    }
    if (fsync) syncDir(dir);
    fs.closeSync(fd);
    fd = -1;
    recentBytes = Math.max(at, recentBytes * 0.9);
    return at;
  } catch (err) {
    if (fd >= 0) closeQuietly(fd);
    if (used !== null) removeQuietly(used.path);
    if (created) removeQuietly(target);
    throw err;
  }
}

function write({ id, path: target, dir, body, offset, length, fsync }) {
  try {
    if (direct) {
      const written = writeDirect(target, dir, body, offset, length, fsync);
      if (written !== CANNOT_GO_DIRECT) {
        parentPort.postMessage({ id, written, direct: true });
        return;
      }
      direct = false;
    }
    const written = writeBuffered(target, dir, body, offset, length, fsync);
    parentPort.postMessage({ id, written, direct: false });
  } catch (err) {
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code, syscall: err && err.syscall } });
  }
}

if (spareDir !== null) sweepStaleSpares();

parentPort.on('message', (msg) => {
  if (idleTimer !== null) clearTimeout(idleTimer);
  idleTimer = null;
  if (msg.close) {
    if (spare !== null) removeQuietly(spare.path);
    spare = null;
    parentPort.postMessage({ id: msg.id, written: 0, direct: false });
    return;
  }
  write(msg);
  if (spareDir !== null && !direct) idleTimer = setTimeout(prepareSpare, spareIdleMs);
});
`;

interface Pending {
  resolve(written: number): void;
  reject(err: Error): void;
  /** The shared body the worker reads, reusable once it answers. */
  body: SharedArrayBuffer | null;
}

interface WriterThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Options for {@link FileWriterPool}. */
export interface FileWriterPoolOptions {
  /** Threads at most (default 2). */
  size?: number;
  /**
   * Directory for spare files, on the filesystem of every file written; omit for no spares.
   * Spare names start with `sparePrefix`.
   */
  spareDir?: string;
  sparePrefix?: string;
  /** Idle time before a thread prepares a spare file (default 40 ms). */
  spareIdleMs?: number;
  /** Try direct I/O (default true); threads fall back to buffered writes where it is refused. */
  direct?: boolean;
  /**
   * Mode of the files the threads create (default 0600, the user's only; the umask can only
   * remove bits from it). A spare linked under a key keeps the mode it was created with.
   */
  fileMode?: number;
  /**
   * Where a body starts in its shared buffer (default 0, block-aligned). Tests set an odd
   * offset to see a thread fall back when direct I/O refuses a misaligned buffer.
   */
  bodyOffset?: number;
}

/**
 * Body buffers are allocated in multiples of this, so that one fits many similar writes; it
 * is also the WebAssembly page size, and a multiple of the direct-write block.
 */
const BODY_GRANULE = 64 * 1024;
/** Body buffers kept for reuse, at most (their size follows the puts: up to flush.bytes each). */
const KEPT_BODIES = 4;

/** An Error carrying the errno fields of the worker's failure, for the store's error mapping. */
function workerError(e: { message: string; code?: string; syscall?: string }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code }, e.syscall === undefined ? {} : { syscall: e.syscall });
}

/** The one WebAssembly constructor used here; the project's type libraries leave the API out. */
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer };
};

/**
 * A shared buffer of `granules` × 64 KiB that starts on a page boundary, as direct I/O needs:
 * a WebAssembly memory, which V8 maps on its own pages (a plain SharedArrayBuffer comes from
 * malloc, whose large blocks start 16 bytes into a page). Where that cannot be had (an
 * address-space limit, say) a plain one does, and the threads fall back to buffered writes.
 */
export function pageAlignedBuffer(granules: number): SharedArrayBuffer {
  try {
    const memory = new WebAssembly.Memory({ initial: granules, maximum: granules, shared: true });
    return memory.buffer;
  } catch {
    return new SharedArrayBuffer(granules * BODY_GRANULE);
  }
}

/** A small pool of writer threads, started on first use; they never keep the process alive. */
export class FileWriterPool {
  readonly #size: number;
  readonly #config: WriterConfig;
  #threads: WriterThread[] = [];
  /** Shared bodies no write is using, for reuse. */
  #bodies: SharedArrayBuffer[] = [];
  readonly #bodyOffset: number;
  #nextId = 1;
  #closed = false;
  #directWrites = 0;

  constructor(options: FileWriterPoolOptions = {}) {
    this.#size = options.size ?? 2;
    this.#config = {
      spareDir: options.spareDir ?? null,
      sparePrefix: options.sparePrefix ?? '.spare-',
      spareIdleMs: options.spareIdleMs ?? 40,
      direct: options.direct ?? true,
      fileMode: options.fileMode ?? 0o600,
    };
    this.#bodyOffset = options.bodyOffset ?? 0;
  }

  /** Writes that went to disk with direct I/O so far. */
  get directWrites(): number {
    return this.#directWrites;
  }

  /**
   * Creates `path` in the existing directory `dir` holding the concatenated `buffers`, durable
   * when `fsync` is set. Resolves with the bytes written; rejects with an Error carrying the
   * failed call's `code` and `syscall`.
   */
  write(path: string, dir: string, buffers: readonly Buffer[], fsync: boolean): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('the file writer pool is closed'));
    // One copy into shared memory the worker reads in place. The shared bodies are reused:
    // their memory stays mapped and warm, and unlike ArrayBuffers moved between threads they
    // add nothing to the external memory whose growth makes V8 run full collections (at
    // 10 MB/s, moving buffers caused four times as many mark-compacts).
    let length = 0;
    for (const b of buffers) length += b.length;
    const offset = this.#bodyOffset;
    const body = this.#takeBody(offset + length);
    const view = new Uint8Array(body);
    let at = offset;
    for (const b of buffers) {
      view.set(b, at);
      at += b.length;
    }
    return this.#send(this.#pick(), { path, dir, body, offset, length, fsync }, body);
  }

  /** Stops the threads, removing their spare files; writes still in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(
      threads.map(async (t) => {
        await this.#send(t, { close: true }, null).catch(() => undefined);
        await t.worker.terminate();
      }),
    );
  }

  /** The smallest reusable body of at least `length` bytes, or a new one. */
  #takeBody(length: number): SharedArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.#bodies.length; i++) {
      const size = this.#bodies[i]!.byteLength;
      if (size >= length && (best < 0 || size < this.#bodies[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.#bodies.splice(best, 1)[0]!;
    return pageAlignedBuffer(Math.ceil(length / BODY_GRANULE) || 1);
  }

  /** Keeps a body for reuse, dropping the smallest kept when there are too many. */
  #keepBody(body: SharedArrayBuffer): void {
    this.#bodies.push(body);
    if (this.#bodies.length > KEPT_BODIES) {
      let smallest = 0;
      for (let i = 1; i < this.#bodies.length; i++) if (this.#bodies[i]!.byteLength < this.#bodies[smallest]!.byteLength) smallest = i;
      this.#bodies.splice(smallest, 1);
    }
  }

  #send(thread: WriterThread, message: object, body: SharedArrayBuffer | null): Promise<number> {
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      // Referenced only while it has work, so an idle pool never holds the process open but a
      // process awaiting a write does not exit under it.
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject, body });
      thread.worker.postMessage({ id, ...message });
    });
  }

  /** The thread with the fewest writes in flight, starting one while the pool is not full. */
  #pick(): WriterThread {
    let best: WriterThread | undefined;
    for (const t of this.#threads) if (best === undefined || t.pending.size < best.pending.size) best = t;
    if (best !== undefined && (best.pending.size === 0 || this.#threads.length >= this.#size)) return best;
    return this.#start();
  }

  #start(): WriterThread {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: this.#config });
    worker.unref();
    const thread: WriterThread = { worker, pending: new Map() };
    worker.on('message', (reply: WriterReply) => {
      const p = thread.pending.get(reply.id);
      if (p === undefined) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      if (p.body !== null) this.#keepBody(p.body);
      if ('error' in reply) p.reject(workerError(reply.error));
      else {
        if (reply.direct) this.#directWrites++;
        p.resolve(reply.written);
      }
    });
    const fail = (err: Error): void => {
      this.#threads = this.#threads.filter((t) => t !== thread);
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`file writer thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => fail(new Error(`file writer thread exited (code ${code})`)));
    this.#threads.push(thread);
    return thread;
  }
}
