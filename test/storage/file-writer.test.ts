/**
 * The file store's writer threads on their own: direct writes of bodies of every length, the
 * fallback to buffered writes when direct I/O refuses, and exclusive creation.
 */
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWriterPool, pageAlignedBuffer } from '../../src/storage/file-writer.js';

let dir: string;
let pool: FileWriterPool | null = null;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-file-writer-test-'));
});

afterEach(async () => {
  await pool?.close();
  pool = null;
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Whether this filesystem takes a direct write of one 4 KiB block starting `offset` bytes into
 * a page-aligned buffer: what the writer threads should find, asked of the kernel directly.
 */
function directWriteTaken(offset: number): boolean {
  const file = join(dir, 'probe');
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw err;
  }
  try {
    writeSync(fd, new Uint8Array(pageAlignedBuffer(1), offset, 4096), 0, 4096, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw err;
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}

/** `length` bytes that differ from any other length's, split into up to three buffers. */
function body(length: number): Buffer[] {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + length) & 0xff;
  const third = Math.floor(length / 3);
  return [bytes.subarray(0, third), bytes.subarray(third, 2 * third), bytes.subarray(2 * third)];
}

/** Writes one file per length through `p` and expects each to hold exactly its body. */
async function writeAndCheck(p: FileWriterPool, lengths: number[]): Promise<void> {
  for (const length of lengths) {
    const file = join(dir, `f${length}`);
    expect(await p.write(file, dir, body(length), true)).toBe(length);
    expect(readFileSync(file)).toEqual(Buffer.concat(body(length)));
  }
}

describe('FileWriterPool', () => {
  it('writes bodies of every length intact, with direct I/O where the filesystem takes it', async () => {
    const lengths = [0, 1, 4095, 4096, 4097, 65_536, 65_537, 300_000];
    const direct = directWriteTaken(0);
    pool = new FileWriterPool({ spareDir: dir, sparePrefix: '.spare-' });
    await writeAndCheck(pool, lengths);
    expect(pool.directWrites).toBe(direct ? lengths.length : 0);
  });

  it('falls back to buffered writes, intact, when direct I/O refuses a misaligned buffer', async () => {
    const lengths = [1, 5000, 70_000];
    // On filesystems that require alignment (ext4, xfs) this is the fallback; tmpfs takes it.
    const direct = directWriteTaken(16);
    pool = new FileWriterPool({ bodyOffset: 16 });
    await writeAndCheck(pool, lengths);
    expect(pool.directWrites).toBe(direct ? lengths.length : 0);
  });

  it('creates its files 0600 by default, direct or buffered, whatever the umask', async () => {
    const saved = process.umask(0);
    try {
      const direct = new FileWriterPool();
      const buffered = new FileWriterPool({ direct: false });
      try {
        await direct.write(join(dir, 'direct'), dir, body(5000), true);
        await buffered.write(join(dir, 'buffered'), dir, body(5000), true);
      } finally {
        await direct.close();
        await buffered.close();
      }
      pool = new FileWriterPool({ fileMode: 0o640 });
      await pool.write(join(dir, 'chosen'), dir, body(10), false);
    } finally {
      process.umask(saved);
    }
    expect(['direct', 'buffered', 'chosen'].map((f) => statSync(join(dir, f)).mode & 0o777)).toEqual([0o600, 0o600, 0o640]);
  });

  it('refuses a write onto an existing file, leaving it intact, and writes the next one', async () => {
    pool = new FileWriterPool();
    const existing = join(dir, 'existing');
    writeFileSync(existing, 'keep me');
    await expect(pool.write(existing, dir, [Buffer.alloc(10_000, 1)], true)).rejects.toMatchObject({ code: 'EEXIST', syscall: 'open' });
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    await writeAndCheck(pool, [10_000]);
    expect(pool.directWrites).toBe(directWriteTaken(0) ? 1 : 0);
  });
});
