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
 * Spare files: writing into page-cache pages the kernel must first allocate costs far more
 * than overwriting pages it already holds (on the benchmark VM, where the first touch of guest
 * memory is slow, 2.5 MB take ~10 ms against ~0.6 ms). So a writer thread that has been idle
 * for a moment prepares a spare file of the size of its recent writes, full of zeros and not
 * synced; its next write overwrites the spare, trims it, fsyncs it and links it under the new
 * name. Waiting for idleness keeps that preparation off the produce path: right after a put
 * the broker commits to Redis, and a spare prepared then competes with the commit for the CPU.
 *
 * The worker's code is a string run with `eval`, so it needs no file beside the compiled
 * output and runs the same under the TypeScript test runner.
 */
import { Worker } from 'node:worker_threads';

/** What a worker answers for one message. */
type WriterReply = { id: number; written: number } | { id: number; error: { message: string; code?: string; syscall?: string } };

/** What a worker is started with. */
interface WriterConfig {
  /** Directory for spare files (on the same filesystem as every target), or null for none. */
  spareDir: string | null;
  /** Name prefix of spare files. */
  sparePrefix: string;
  /** How long a thread must have been idle before it prepares a spare file. */
  spareIdleMs: number;
}

/**
 * The worker. A `write` message creates `path` (failing if it exists) holding the first
 * `length` bytes of `body`, fsyncs it and then its directory when `fsync` is set, and closes
 * it; on failure nothing is left under `path`. `body` is shared memory, which the pool reuses
 * once the reply arrives. A `close` message removes the spare file.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spareDir, sparePrefix, spareIdleMs } = workerData;
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
    fd = fs.openSync(file, 'wx', 0o644);
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

function write({ id, path: target, dir, body, length, fsync }) {
  let fd = -1;
  let created = false;
  const used = takeSpare();
  try {
    fd = used === null ? fs.openSync(target, 'wx', 0o644) : used.fd;
    created = used === null;
    const bytes = new Uint8Array(body, 0, length);
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
    if (fsync) {
      const dirFd = fs.openSync(dir, 'r');
      try { fs.fsyncSync(dirFd); } finally { fs.closeSync(dirFd); }
    }
    fs.closeSync(fd);
    fd = -1;
    recentBytes = Math.max(at, recentBytes * 0.9);
    parentPort.postMessage({ id, written: at });
  } catch (err) {
    if (fd >= 0) {
      try { fs.closeSync(fd); } catch {}
    }
    if (used !== null) removeQuietly(used.path);
    if (created) removeQuietly(target);
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
    parentPort.postMessage({ id: msg.id, written: 0 });
    return;
  }
  write(msg);
  if (spareDir !== null) idleTimer = setTimeout(prepareSpare, spareIdleMs);
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
}

/** Body buffers are allocated in multiples of this, so that one fits many similar writes. */
const BODY_GRANULE = 64 * 1024;
/** Body buffers kept for reuse, at most (their size follows the puts: up to flush.bytes each). */
const KEPT_BODIES = 4;

/** An Error carrying the errno fields of the worker's failure, for the store's error mapping. */
function workerError(e: { message: string; code?: string; syscall?: string }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code }, e.syscall === undefined ? {} : { syscall: e.syscall });
}

/** A small pool of writer threads, started on first use; they never keep the process alive. */
export class FileWriterPool {
  readonly #size: number;
  readonly #config: WriterConfig;
  #threads: WriterThread[] = [];
  /** Shared bodies no write is using, for reuse. */
  #bodies: SharedArrayBuffer[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: FileWriterPoolOptions = {}) {
    this.#size = options.size ?? 2;
    this.#config = {
      spareDir: options.spareDir ?? null,
      sparePrefix: options.sparePrefix ?? '.spare-',
      spareIdleMs: options.spareIdleMs ?? 40,
    };
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
    const body = this.#takeBody(length);
    const view = new Uint8Array(body);
    let at = 0;
    for (const b of buffers) {
      view.set(b, at);
      at += b.length;
    }
    return this.#send(this.#pick(), { path, dir, body, length, fsync }, body);
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
    return new SharedArrayBuffer(Math.ceil(length / BODY_GRANULE) * BODY_GRANULE || BODY_GRANULE);
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
      else p.resolve(reply.written);
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
