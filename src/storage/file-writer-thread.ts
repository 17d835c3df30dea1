/**
 * The file writer thread: the code each {@link FileWriterPool} worker runs (file-writer.ts
 * explains why puts go to threads, and the direct I/O and spare-file strategies).
 *
 * A {@link WriteMessage} creates `path` (failing if it exists) holding the `length` bytes of
 * `body` from `offset` on, makes it and then its directory entry durable when `fsync` is set,
 * and closes it; on failure nothing is left under `path`. `body` is shared memory, which the
 * pool reuses once the reply arrives; the reply says whether the write went direct. A
 * {@link CloseMessage} removes the spare file. Every call here is synchronous: the thread does
 * one put at a time and answers once.
 *
 * This module only runs as a worker thread; the pool imports its types and nothing else.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

/** What a writer thread is started with (its `workerData`). */
export interface WriterConfig {
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

/** Creates one file: see the module comment. */
export interface WriteMessage {
  id: number;
  close?: undefined;
  path: string;
  /** The directory holding `path`, synced after the file when `fsync` is set. */
  dir: string;
  body: SharedArrayBuffer;
  offset: number;
  length: number;
  fsync: boolean;
}

/** Removes the thread's spare file before the pool terminates the thread. */
export interface CloseMessage {
  id: number;
  close: true;
}

/** What the pool sends a writer thread. */
export type WriterMessage = WriteMessage | CloseMessage;

/** What a writer thread answers for one message. */
export type WriterReply =
  | { id: number; written: number; direct: boolean }
  | { id: number; error: { message: string; code?: string; syscall?: string } };

/** A spare file ready to be overwritten. */
interface Spare {
  path: string;
  size: number;
}

/** Direct writes cover whole blocks of this size (a multiple of any logical block size seen). */
const DIRECT_BLOCK = 4096;
/** What {@link writeDirect} returns when direct I/O is refused. */
const CANNOT_GO_DIRECT = -1;
const SPARE_MAX_BYTES = 64 * 1024 * 1024;
const STALE_SPARE_MS = 10 * 60 * 1000;
const ZEROS = Buffer.alloc(1024 * 1024);
/** Undefined where the platform has no direct I/O. */
const O_DIRECT: number | undefined = fs.constants.O_DIRECT;

if (parentPort === null) throw new Error('file-writer-thread runs only as a worker thread that FileWriterPool starts');
const port = parentPort;
const { spareDir, sparePrefix, spareIdleMs, fileMode } = workerData as WriterConfig;

/** Whether this thread still tries direct I/O (off for good after the first refusal). */
let direct = (workerData as WriterConfig).direct && O_DIRECT !== undefined;
/** The prepared spare file, or null. */
let spare: Spare | null = null;
/** Recent write sizes, as a maximum that decays by a tenth per write. */
let recentBytes = 0;
let idleTimer: NodeJS.Timeout | null = null;

function errnoOf(err: unknown): NodeJS.ErrnoException {
  return (typeof err === 'object' && err !== null ? err : {}) as NodeJS.ErrnoException;
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // Already gone, or never created: either way nothing is left under the name.
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // The write already failed; that failure is the one reported.
  }
}

/**
 * Removes spare files a crashed process left: those untouched for STALE_SPARE_MS. A live spare
 * of another process that goes with them costs that process nothing but the spare (its next
 * write creates its file, or retries once if the spare vanished mid-write).
 */
function sweepStaleSpares(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const before = Date.now() - STALE_SPARE_MS;
  for (const name of names) {
    if (!name.startsWith(sparePrefix)) continue;
    const file = path.join(dir, name);
    try {
      if (fs.statSync(file).mtimeMs < before) fs.unlinkSync(file);
    } catch {
      // Removed meanwhile by its owner or another sweeper.
    }
  }
}

function prepareSpare(dir: string): void {
  idleTimer = null;
  const size = Math.min(SPARE_MAX_BYTES, Math.ceil((recentBytes * 1.25) / 65536) * 65536);
  if (spare !== null && spare.size >= recentBytes) return;
  if (spare !== null) removeQuietly(spare.path);
  spare = null;
  const file = path.join(dir, sparePrefix + randomBytes(8).toString('hex'));
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
function takeSpare(): (Spare & { fd: number }) | null {
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

function syncDir(dir: string): void {
  const dirFd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/**
 * Writes with O_DIRECT: the body rounded up to whole blocks, then trimmed. Returns the bytes
 * written, or CANNOT_GO_DIRECT (leaving nothing behind) when the filesystem or the buffer's
 * alignment refuses direct I/O; other failures throw, leaving nothing behind.
 */
function writeDirect(directFlag: number, target: string, dir: string, body: SharedArrayBuffer, offset: number, length: number, fsync: boolean): number {
  const padded = Math.ceil(length / DIRECT_BLOCK) * DIRECT_BLOCK;
  if (offset + padded > body.byteLength) return CANNOT_GO_DIRECT;
  let fd: number;
  try {
    fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | directFlag, fileMode);
  } catch (err) {
    if (errnoOf(err).code !== 'EINVAL') throw err;
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
    if (errnoOf(err).code === 'EINVAL') return CANNOT_GO_DIRECT;
    throw err;
  }
}

/** Writes through the page cache, into the spare file when there is one. */
function writeBuffered(target: string, dir: string, body: SharedArrayBuffer, offset: number, length: number, fsync: boolean): number {
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

function reply(message: WriterReply): void {
  port.postMessage(message);
}

function write({ id, path: target, dir, body, offset, length, fsync }: WriteMessage): void {
  try {
    if (direct && O_DIRECT !== undefined) {
      const written = writeDirect(O_DIRECT, target, dir, body, offset, length, fsync);
      if (written !== CANNOT_GO_DIRECT) {
        reply({ id, written, direct: true });
        return;
      }
      direct = false;
    }
    const written = writeBuffered(target, dir, body, offset, length, fsync);
    reply({ id, written, direct: false });
  } catch (err) {
    const e = errnoOf(err);
    reply({ id, error: { message: String(e.message), code: e.code, syscall: e.syscall } });
  }
}

if (spareDir !== null) sweepStaleSpares(spareDir);

port.on('message', (message: WriterMessage) => {
  if (idleTimer !== null) clearTimeout(idleTimer);
  idleTimer = null;
  if (message.close) {
    if (spare !== null) removeQuietly(spare.path);
    spare = null;
    reply({ id: message.id, written: 0, direct: false });
    return;
  }
  write(message);
  if (spareDir !== null && !direct) idleTimer = setTimeout(() => prepareSpare(spareDir), spareIdleMs);
});
