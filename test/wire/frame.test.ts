import { describe, expect, it } from 'vitest';
import { FrameDecoder, WireError } from '../../wire/index.js';

function framed(...payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => [Buffer.from([0, 0, 0, 0].map((_, i) => (p.length >>> (24 - 8 * i)) & 0xff)), p]));
}

describe('FrameDecoder', () => {
  const a = Buffer.from('first frame');
  const b = Buffer.from('second');
  const c = Buffer.alloc(1000, 7);

  it('returns frames inside one chunk as views of it, not copies', () => {
    const chunk = framed(a, b);
    const frames = new FrameDecoder().push(chunk);
    expect(frames.map((f) => f.toString())).toEqual(['first frame', 'second']);
    expect(frames[0]!.buffer).toBe(chunk.buffer);
    expect(frames[0]!.byteOffset).toBe(chunk.byteOffset + 4);
  });

  it('reassembles frames split at every possible byte boundary', () => {
    const all = framed(a, b, c);
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(frames.map((f) => f.length)).toEqual([a.length, b.length, c.length]);
      expect(Buffer.concat(frames).equals(Buffer.concat([a, b, c]))).toBe(true);
      expect(d.buffered).toBe(0);
    }
  });

  it('reassembles a stream fed one byte at a time', () => {
    const all = framed(a, c, b);
    const d = new FrameDecoder();
    const frames: Buffer[] = [];
    for (let i = 0; i < all.length; i++) frames.push(...d.push(all.subarray(i, i + 1)));
    expect(frames.map((f) => f.toString('hex'))).toEqual([a, c, b].map((f) => f.toString('hex')));
  });

  it('rejects a length over the maximum before the frame arrives', () => {
    const d = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeInt32BE(0x7fffffff);
    expect(() => d.push(header)).toThrow(WireError);
    expect(() => new FrameDecoder(1024).push(Buffer.from([0x00, 0x00, 0x04, 0x01]))).toThrow(/1025 exceeds the maximum of 1024/);
  });

  it('rejects a negative length', () => {
    expect(() => new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0xfe]))).toThrow(/negative/);
  });

  it('accepts an empty frame', () => {
    expect(new FrameDecoder().push(Buffer.from([0, 0, 0, 0])).map((f) => f.length)).toEqual([0]);
  });
});
