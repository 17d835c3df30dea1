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
 * The thread's code is file-writer-thread.ts, started from its file: the compiled sibling
 * `.js` where there is one (the build), else the TypeScript source through tsx (tests and
 * `tsx` runs from the source tree).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WriterConfig, WriterMessage, WriterReply } from './file-writer-thread.js';

/** The thread module as the build emits it, beside this file. */
const THREAD_JS = new URL('./file-writer-thread.js', import.meta.url);
/** The thread module's TypeScript source, beside this file when it runs from the source tree. */
const THREAD_TS = new URL('./file-writer-thread.ts', import.meta.url);

/**
 * Starts one writer thread from its module file. From the source tree the `.ts` module is
 * loaded through tsx (a devDependency, present wherever the sources run). The entry is a
 * one-line loader rather than `execArgv: ['--import', 'tsx']` because Node 20 resolves a
 * worker's entry module before the hooks an `--import` registers apply to it.
 */
function startWriterThread(config: WriterConfig): Worker {
  if (existsSync(fileURLToPath(THREAD_JS))) return new Worker(THREAD_JS, { workerData: config });
  // Resolved here: the loader's own bare specifiers would resolve from the working directory.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const loader = `import(${JSON.stringify(tsxApi)}).then((tsx) => tsx.tsImport(${JSON.stringify(THREAD_TS.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(loader, { eval: true, workerData: config });
}

/** A message before {@link FileWriterPool} numbers it. */
type Unsent<M> = M extends unknown ? Omit<M, 'id'> : never;

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

  #send(thread: WriterThread, message: Unsent<WriterMessage>, body: SharedArrayBuffer | null): Promise<number> {
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
    const worker = startWriterThread(this.#config);
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
