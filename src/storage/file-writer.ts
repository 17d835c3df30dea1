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
 * The worker's code is a string run with `eval`, so it needs no file beside the compiled
 * output and runs the same under the TypeScript test runner.
 */
import { Worker } from 'node:worker_threads';

/** What a worker answers for one write. */
type WriterReply = { id: number; written: number } | { id: number; error: { message: string; code?: string; syscall?: string } };

/**
 * The worker: for each message, create `path` (failing if it exists), write `body`, fsync it
 * and then its directory when `fsync` is set, close. On failure the partial file is removed.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', ({ id, path, dir, body, fsync }) => {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'wx', 0o644);
    const bytes = new Uint8Array(body);
    let at = 0;
    while (at < bytes.length) at += fs.writeSync(fd, bytes, at, bytes.length - at);
    if (fsync) {
      fs.fsyncSync(fd);
      const dirFd = fs.openSync(dir, 'r');
      try { fs.fsyncSync(dirFd); } finally { fs.closeSync(dirFd); }
    }
    fs.closeSync(fd);
    fd = -1;
    parentPort.postMessage({ id, written: at });
  } catch (err) {
    if (fd >= 0) {
      try { fs.closeSync(fd); } catch {}
      try { fs.unlinkSync(path); } catch {}
    }
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code, syscall: err && err.syscall } });
  }
});
`;

interface Pending {
  resolve(written: number): void;
  reject(err: Error): void;
}

interface WriterThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** An Error carrying the errno fields of the worker's failure, for the store's error mapping. */
function workerError(e: { message: string; code?: string; syscall?: string }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code }, e.syscall === undefined ? {} : { syscall: e.syscall });
}

/** A small pool of writer threads, started on first use; they never keep the process alive. */
export class FileWriterPool {
  readonly #size: number;
  #threads: WriterThread[] = [];
  #nextId = 1;
  #closed = false;

  constructor(size = 2) {
    this.#size = size;
  }

  /**
   * Creates `path` in the existing directory `dir` holding the concatenated `buffers`, durable
   * when `fsync` is set. Resolves with the bytes written; rejects with an Error carrying the
   * failed call's `code` and `syscall`.
   */
  write(path: string, dir: string, buffers: readonly Buffer[], fsync: boolean): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('the file writer pool is closed'));
    // One copy into a buffer of exactly the body's size, whose memory then moves to the worker
    // (transferred, not cloned).
    let length = 0;
    for (const b of buffers) length += b.length;
    const body = new ArrayBuffer(length);
    const view = new Uint8Array(body);
    let at = 0;
    for (const b of buffers) {
      view.set(b, at);
      at += b.length;
    }
    const thread = this.#pick();
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      // Referenced only while it has work, so an idle pool never holds the process open but a
      // process awaiting a write does not exit under it.
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ id, path, dir, body, fsync }, [body]);
    });
  }

  /** Stops the threads; writes still in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  /** The thread with the fewest writes in flight, starting one while the pool is not full. */
  #pick(): WriterThread {
    let best: WriterThread | undefined;
    for (const t of this.#threads) if (best === undefined || t.pending.size < best.pending.size) best = t;
    if (best !== undefined && (best.pending.size === 0 || this.#threads.length >= this.#size)) return best;
    return this.#start();
  }

  #start(): WriterThread {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    const thread: WriterThread = { worker, pending: new Map() };
    worker.on('message', (reply: WriterReply) => {
      const p = thread.pending.get(reply.id);
      if (p === undefined) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
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
