import { gzipSync } from 'node:zlib';
import * as snappy from 'snappy';
import * as lz4 from 'lz4-napi';
import * as zstd from '@mongodb-js/zstd';
import { describe, expect, it } from 'vitest';
import {
  Compression,
  compress,
  compressionName,
  compressSync,
  decompress,
  decompressSync,
  DecompressionLimitError,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  isXerialSnappy,
  type CompressionCodec,
} from '../../../wire/records/index.js';
import { asyncWireErrorOf, wireErrorOf } from '../../helpers/records.js';

const ALL_CODECS: CompressionCodec[] = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD];
const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(5_000));
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

/** A xerial snappy-java stream built by hand: magic, versions, then [int32 length][block]. */
function xerial(blocks: Buffer[], version = 1, compatible = 1): Buffer {
  const header = Buffer.alloc(16);
  XERIAL_MAGIC.copy(header);
  header.writeInt32BE(version, 8);
  header.writeInt32BE(compatible, 12);
  const parts: Buffer[] = [header];
  for (const block of blocks) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(block.length);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

/** A zstd frame of `count` RLE blocks of 128 KiB each (window 128 KiB, no content size). */
function zstdRleFrame(count: number): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])];
  for (let i = 0; i < count; i++) {
    // Block header (little-endian 24 bits): size 131072 << 3 | type RLE (1) << 1 | last.
    const header = (131072 << 3) | (1 << 1) | (i === count - 1 ? 1 : 0);
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x61]));
  }
  return Buffer.concat(parts);
}

describe('compress / decompress', () => {
  for (const codec of ALL_CODECS) {
    it(`${compressionName[codec]}: round-trips`, async () => {
      const packed = await compress(codec, text);
      expect((await decompress(codec, packed)).equals(text)).toBe(true);
      if (codec !== Compression.NONE) expect(packed.length).toBeLessThan(text.length / 10);
      if (codec !== Compression.ZSTD) expect(decompressSync(codec, compressSync(codec, text)).equals(text)).toBe(true);
      expect((await decompress(codec, await compress(codec, Buffer.alloc(0)))).length).toBe(0);
    });
  }

  it('writes what the reference libraries read', async () => {
    expect((snappy.uncompressSync(compressSync(Compression.SNAPPY, text), { asBuffer: true }) as Buffer).equals(text)).toBe(true);
    expect(lz4.decompressFrameSync(compressSync(Compression.LZ4, text)).equals(text)).toBe(true);
    expect((await zstd.decompress(await compress(Compression.ZSTD, text))).equals(text)).toBe(true);
  });

  it('passes levels through to gzip and zstd', async () => {
    const fast = compressSync(Compression.GZIP, text, { level: 1 });
    const best = compressSync(Compression.GZIP, text, { level: 9 });
    expect(fast.equals(best)).toBe(false);
    expect(decompressSync(Compression.GZIP, fast).equals(text)).toBe(true);
    expect((await decompress(Compression.ZSTD, await compress(Compression.ZSTD, text, { level: 19 }))).equals(text)).toBe(true);
  });

  it('refuses zstd on the sync paths with a TypeError', () => {
    expect(() => compressSync(Compression.ZSTD, text)).toThrow(TypeError);
    expect(() => decompressSync(Compression.ZSTD, text)).toThrow(TypeError);
  });

  it('decodes gzip streams of several members, as Java writes on flush', () => {
    const two = Buffer.concat([gzipSync(Buffer.from('first ')), gzipSync(Buffer.from('second'))]);
    expect(decompressSync(Compression.GZIP, two).toString()).toBe('first second');
  });

  it('decodes concatenated LZ4 frames, which lz4-napi alone would stop after the first of', async () => {
    const two = Buffer.concat([lz4.compressFrameSync(Buffer.from('first ')), lz4.compressFrameSync(Buffer.from('second'))]);
    expect(decompressSync(Compression.LZ4, two).toString()).toBe('first second');
    expect((await decompress(Compression.LZ4, two)).toString()).toBe('first second');
  });

  it('skips LZ4 and zstd skippable frames', async () => {
    const skippable = Buffer.from([0x5f, 0x2a, 0x4d, 0x18, 0x03, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03]);
    expect(decompressSync(Compression.LZ4, Buffer.concat([skippable, lz4.compressFrameSync(Buffer.from('data'))])).toString()).toBe('data');
    expect((await decompress(Compression.ZSTD, Buffer.concat([skippable, await zstd.compress(Buffer.from('data'), 3)]))).toString()).toBe(
      'data',
    );
  });

  it('rejects corrupt input of every codec with WireError', async () => {
    const garbage = Buffer.from('not compressed at all, just text');
    for (const codec of [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD] as const) {
      const err = await asyncWireErrorOf(() => decompress(codec, garbage));
      expect([codec, err.message.length > 0]).toEqual([codec, true]);
    }
    expect((await asyncWireErrorOf(() => decompress(Compression.GZIP, garbage))).message).toMatch(/^gzip data is corrupt: /);
    expect((await asyncWireErrorOf(() => decompress(Compression.LZ4, garbage))).message).toBe(
      'lz4 frame magic 0x20746f6e at offset 0 is not 0x184d2204',
    );
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, garbage))).message).toBe(
      'zstd frame magic 0x20746f6e at offset 0 is not 0xfd2fb528',
    );
    // A valid frame structure around a corrupt block reaches the library; its error is mapped.
    const frame = lz4.compressFrameSync(text);
    const bad = Buffer.from(frame);
    bad.fill(0xff, 11, 40);
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, bad)).message).toMatch(/^lz4 data is corrupt: /);
  });
});

describe('xerial snappy', () => {
  it('detects the framing by its magic', () => {
    expect(isXerialSnappy(xerial([]))).toBe(true);
    expect(isXerialSnappy(snappy.compressSync(text))).toBe(false);
    expect(isXerialSnappy(XERIAL_MAGIC)).toBe(false);
  });

  it('decodes a hand-built stream of several blocks', () => {
    const parts = [text.subarray(0, 32_768), text.subarray(32_768, 65_536), text.subarray(65_536)];
    const stream = xerial(parts.map((p) => snappy.compressSync(p)));
    expect(decompressSync(Compression.SNAPPY, stream).equals(text)).toBe(true);
  });

  it('decodes a stream with no blocks to nothing, and ignores the version fields', () => {
    expect(decompressSync(Compression.SNAPPY, xerial([])).length).toBe(0);
    expect(decompressSync(Compression.SNAPPY, xerial([snappy.compressSync(Buffer.from('v'))], 2, 0)).toString()).toBe('v');
  });

  it('writes xerial framing when asked, in 32 KiB blocks', () => {
    const stream = compressSync(Compression.SNAPPY, text, { snappyXerial: true });
    expect(stream.subarray(0, 16).toString('hex')).toBe(`${XERIAL_MAGIC.toString('hex')}0000000100000001`);
    const firstBlock = stream.subarray(20, 20 + stream.readInt32BE(16));
    expect((snappy.uncompressSync(firstBlock, { asBuffer: true }) as Buffer).length).toBe(32_768);
    expect(decompressSync(Compression.SNAPPY, stream).equals(text)).toBe(true);
  });

  it('rejects bad block lengths', () => {
    const stream = xerial([snappy.compressSync(Buffer.from('abc'))]);
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, stream.subarray(0, stream.length - 1))).message).toBe(
      `xerial snappy block length ${stream.length - 20} at offset 16 exceeds the ${stream.length - 21} bytes left`,
    );
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, Buffer.concat([stream, Buffer.from([0, 0])]))).message).toBe(
      `xerial snappy block length truncated at offset ${stream.length}`,
    );
    const negative = Buffer.from(stream);
    negative.writeInt32BE(-5, 16);
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, negative)).message).toBe(
      `xerial snappy block length -5 at offset 16 exceeds the ${stream.length - 20} bytes left`,
    );
  });
});

describe('bounded decompression', () => {
  const limit = 100_000;
  const zeros = Buffer.alloc(1 << 20);

  it('defaults to 64 MiB', () => {
    expect(DEFAULT_MAX_DECOMPRESSED_BYTES).toBe(64 * 1024 * 1024);
  });

  it('gzip: stops inflating at the limit', async () => {
    const packed = gzipSync(zeros);
    expect(wireErrorOf(() => decompressSync(Compression.GZIP, packed, limit)).message).toBe(
      'gzip data decodes to more than the 100000-byte decompression limit',
    );
    await asyncWireErrorOf(() => decompress(Compression.GZIP, packed, limit));
    expect(decompressSync(Compression.GZIP, gzipSync(zeros.subarray(0, limit)), limit).length).toBe(limit);
  });

  it('snappy: checks the declared length before the library allocates', () => {
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, snappy.compressSync(zeros), limit)).message).toBe(
      'snappy data declares 1048576 bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
    const hostile = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, hostile)).message).toBe(
      `snappy data declares 4294967295 bytes, over the ${DEFAULT_MAX_DECOMPRESSED_BYTES}-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate`,
    );
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, Buffer.from([0x80, 0x80]))).message).toBe(
      'snappy block is truncated inside its length preamble',
    );
    expect(decompressSync(Compression.SNAPPY, snappy.compressSync(zeros.subarray(0, limit)), limit).length).toBe(limit);
  });

  it('xerial snappy: counts every block against one budget', () => {
    const block = snappy.compressSync(zeros.subarray(0, 40_000));
    expect(decompressSync(Compression.SNAPPY, xerial([block, block]), limit).length).toBe(80_000);
    expect(wireErrorOf(() => decompressSync(Compression.SNAPPY, xerial([block, block, block]), limit)).message).toBe(
      'snappy data declares 40000 bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
  });

  it('lz4: bounds the output from the frame layout before decoding', async () => {
    const packed = lz4.compressFrameSync(zeros);
    const message = /^lz4 data can expand to \d+ bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes/;
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, packed, limit)).message).toMatch(message);
    expect((await asyncWireErrorOf(() => decompress(Compression.LZ4, packed, limit))).message).toMatch(message);
    expect(decompressSync(Compression.LZ4, packed, 2 * zeros.length).length).toBe(zeros.length);
  });

  it('lz4: counts a compressed block at no more than 255 times its size', () => {
    // One compressed block of 8 bytes inside a 4 MiB-block frame: at most 2040 bytes out.
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x00]),
      Buffer.from([0x08, 0x00, 0x00, 0x00]),
      Buffer.alloc(8),
      Buffer.from([0x00, 0x00, 0x00, 0x00]),
    ]);
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, frame, 2_039)).message).toBe(
      'lz4 data can expand to 2040 bytes, over the 2039-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
  });

  it('lz4: rejects a declared content size over the limit', () => {
    // Version 1, independent blocks, content size present; 64 KiB blocks; size 2^40; HC; end mark.
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x68, 0x40]),
      Buffer.from([0, 0, 0, 0, 0, 1, 0, 0]),
      Buffer.from([0x00, 0, 0, 0, 0]),
    ]);
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, frame)).message).toBe(
      `lz4 data declares 1099511627776 bytes, over the ${DEFAULT_MAX_DECOMPRESSED_BYTES}-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate`,
    );
  });

  it('lz4: rejects malformed frame descriptors', () => {
    const frame = lz4.compressFrameSync(Buffer.from('x'));
    const badVersion = Buffer.from(frame);
    badVersion[4] = 0x20;
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, badVersion)).message).toBe('lz4 frame version 0 is not 1');
    const badBlockMax = Buffer.from(frame);
    badBlockMax[5] = 0x10;
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, badBlockMax)).message).toBe('lz4 block maximum size id 1 is invalid');
    expect(wireErrorOf(() => decompressSync(Compression.LZ4, frame.subarray(0, frame.length - 1))).message).toBe(
      `lz4 block size truncated at offset ${frame.length - 4}`,
    );
  });

  it('zstd: bounds the output from the block headers before decoding', async () => {
    expect((await decompress(Compression.ZSTD, zstdRleFrame(2))).equals(Buffer.alloc(262_144, 'a'))).toBe(true);
    // 1024 RLE blocks: 4 KiB of input that would inflate to 128 MiB.
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, zstdRleFrame(1024)))).message).toBe(
      `zstd data can expand to ${64 * 1024 * 1024 + 131_072} bytes, over the ${DEFAULT_MAX_DECOMPRESSED_BYTES}-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate`,
    );
    const packed = await zstd.compress(zeros, 3);
    await asyncWireErrorOf(() => decompress(Compression.ZSTD, packed, limit));
    expect((await decompress(Compression.ZSTD, packed, zeros.length)).length).toBe(zeros.length);
  });

  it('zstd: rejects a declared content size over the limit', async () => {
    // Single segment, 8-byte content size 2^40, then one empty raw last block.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0x00, 0x00]);
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, frame))).message).toBe(
      `zstd data declares 1099511627776 bytes, over the ${DEFAULT_MAX_DECOMPRESSED_BYTES}-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate`,
    );
  });

  it('zstd: rejects reserved bits and block types', async () => {
    const reserved = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x38, 0x01, 0x00, 0x00]);
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, reserved))).message).toBe('zstd frame header has its reserved bit set');
    const reservedType = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38, 0x07, 0x00, 0x00]);
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, reservedType))).message).toBe(
      'zstd block at offset 6 has the reserved block type',
    );
    expect((await asyncWireErrorOf(() => decompress(Compression.ZSTD, zstdRleFrame(1).subarray(0, 8)))).message).toBe(
      'zstd block header truncated at offset 6',
    );
  });

  it('uncompressed: the limit applies to the region as is', () => {
    expect(decompressSync(Compression.NONE, zeros.subarray(0, limit), limit).length).toBe(limit);
    expect(wireErrorOf(() => decompressSync(Compression.NONE, zeros, limit)).message).toBe(
      'uncompressed data decoded to 1048576 bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
  });
});

describe('async snappy and the limit error', () => {
  const limit = 100_000;
  const zeros = Buffer.alloc(1 << 20);

  it('snappy: decompresses raw blocks and xerial streams off the main thread, bounded alike', async () => {
    expect((await decompress(Compression.SNAPPY, snappy.compressSync(text))).equals(text)).toBe(true);
    const parts = [text.subarray(0, 32_768), text.subarray(32_768, 65_536), text.subarray(65_536)];
    expect((await decompress(Compression.SNAPPY, xerial(parts.map((p) => snappy.compressSync(p))))).equals(text)).toBe(true);
    expect((await decompress(Compression.SNAPPY, xerial([]))).length).toBe(0);

    expect((await asyncWireErrorOf(() => decompress(Compression.SNAPPY, snappy.compressSync(zeros), limit))).message).toBe(
      'snappy data declares 1048576 bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
    // A xerial stream is summed from its blocks' declared lengths before any block is decoded.
    const block = snappy.compressSync(zeros.subarray(0, 40_000));
    expect((await decompress(Compression.SNAPPY, xerial([block, block]), limit)).length).toBe(80_000);
    expect((await asyncWireErrorOf(() => decompress(Compression.SNAPPY, xerial([block, block, block]), limit))).message).toBe(
      'snappy data declares 120000 bytes, over the 100000-byte decompression limit; raise maxDecompressedBytes if such batches are legitimate',
    );
    const corrupt = Buffer.from(snappy.compressSync(text));
    corrupt.fill(0xff, 4, 40);
    expect((await asyncWireErrorOf(() => decompress(Compression.SNAPPY, corrupt))).message).toMatch(/^snappy data is corrupt: /);
  });

  it('raises DecompressionLimitError over the limit and a plain WireError on corrupt data, for every codec', async () => {
    for (const codec of [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD] as const) {
      const over = await asyncWireErrorOf(async () => decompress(codec, await compress(codec, zeros), limit));
      expect([codec, over instanceof DecompressionLimitError, (over as DecompressionLimitError).maxBytes]).toEqual([codec, true, limit]);
      if (codec === Compression.NONE) continue;
      const corrupt = await asyncWireErrorOf(() => decompress(codec, Buffer.from('not compressed at all, just text')));
      expect([codec, corrupt instanceof DecompressionLimitError]).toEqual([codec, false]);
    }
    expect(wireErrorOf(() => decompressSync(Compression.GZIP, gzipSync(zeros), limit))).toBeInstanceOf(DecompressionLimitError);
  });
});
