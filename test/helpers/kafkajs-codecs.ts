/**
 * Registers kafkajs codecs for snappy, lz4 and zstd over Strata's own compression
 * dependencies (kafkajs ships gzip only). kafkajs calls `compress(encoder)` with the encoded
 * records in `encoder.buffer` and `decompress(buffer)` with a batch payload.
 */
import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import kafkajs from 'kafkajs';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { compress as snappyCompress, uncompress as snappyUncompress } from 'snappy';

const { CompressionTypes, CompressionCodecs } = kafkajs;

interface Encoder {
  buffer: Buffer;
}

/** The xerial snappy stream header (magic, version 1, compatible version 1) the Java client writes. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_VERSIONS = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]);

/** Snappy in xerial framing: header, then one length-prefixed block. */
async function snappyXerial(data: Buffer): Promise<Buffer> {
  const block = await snappyCompress(data);
  const length = Buffer.alloc(4);
  length.writeInt32BE(block.length);
  return Buffer.concat([XERIAL_MAGIC, XERIAL_VERSIONS, length, block]);
}

/** Raw snappy, or xerial framing with any number of blocks. */
async function snappyAny(data: Buffer): Promise<Buffer> {
  if (!data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) return (await snappyUncompress(data)) as Buffer;
  const blocks: Buffer[] = [];
  for (let pos = XERIAL_MAGIC.length + XERIAL_VERSIONS.length; pos < data.length; ) {
    const length = data.readInt32BE(pos);
    blocks.push((await snappyUncompress(data.subarray(pos + 4, pos + 4 + length))) as Buffer);
    pos += 4 + length;
  }
  return Buffer.concat(blocks);
}

let registered = false;

/** Installs the three codecs into kafkajs's `CompressionCodecs` (once per process). */
export function registerKafkajsCodecs(): void {
  if (registered) return;
  registered = true;
  const codecs = CompressionCodecs as Record<number, () => unknown>;
  codecs[CompressionTypes.Snappy] = () => ({
    compress: (encoder: Encoder) => snappyXerial(encoder.buffer),
    decompress: (buffer: Buffer) => snappyAny(buffer),
  });
  codecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: Encoder) => compressFrameSync(encoder.buffer),
    decompress: async (buffer: Buffer) => decompressFrameSync(buffer),
  });
  codecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder: Encoder) => zstdCompress(encoder.buffer),
    decompress: (buffer: Buffer) => zstdDecompress(buffer),
  });
}
