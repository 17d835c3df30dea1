import { describe, expect, it } from 'vitest';
import { FrameDecoder, WireError } from '../../wire/index.js';
import { Rng } from '../helpers/rng.js';

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

  it('assembles a frame that spans chunks into one buffer of its own, holding no chunk', () => {
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const all = framed(big, a);
    const chunks = [all.subarray(0, 3), all.subarray(3, 40_000), all.subarray(40_000, 70_000), all.subarray(70_000)];
    const d = new FrameDecoder();
    expect(d.push(chunks[0]!)).toEqual([]);
    expect(d.buffered).toBe(3);
    expect(d.push(chunks[1]!)).toEqual([]);
    expect(d.buffered).toBe(40_000);
    expect(d.push(chunks[2]!)).toEqual([]);
    const frames = d.push(chunks[3]!);
    expect(frames.map((f) => f.length)).toEqual([big.length, a.length]);
    expect(frames[0]!.equals(big)).toBe(true);
    expect(frames[1]!.toString()).toBe('first frame');
    // The spanning frame is its own allocation of exactly its size; the frame after it is a
    // view of the last chunk, as frames inside one chunk always are.
    expect(frames[0]!.buffer.byteLength).toBe(big.length);
    expect(chunks.some((c) => c.buffer === frames[0]!.buffer)).toBe(false);
    expect(frames[1]!.buffer).toBe(chunks[3]!.buffer);
    expect(d.buffered).toBe(0);
  });

  it('asks for admission once per frame, before its body, and holds a refused frame until admitted', () => {
    const asked: number[] = [];
    let open = false;
    const d = new FrameDecoder(1 << 20, (size) => {
      asked.push(size);
      return open || size < 100;
    });
    const all = framed(b, c, a);
    // b (6 bytes) is admitted; c (1000 bytes) is refused as soon as its length is known.
    expect(d.push(all.subarray(0, 14)).map((f) => f.toString())).toEqual(['second']);
    expect(asked).toEqual([6, 1000]);
    expect(d.heldFrameBytes).toBe(1000);
    // Bytes that arrive while the frame is held are only buffered; admission is not asked again.
    expect(d.push(all.subarray(14, 500))).toEqual([]);
    expect(d.push(all.subarray(500))).toEqual([]);
    expect(asked).toEqual([6, 1000]);
    open = true;
    const frames = d.admitHeld();
    expect(frames.map((f) => f.length)).toEqual([c.length, a.length]);
    expect(frames[0]!.equals(c)).toBe(true);
    expect(asked).toEqual([6, 1000, a.length]);
    expect(d.heldFrameBytes).toBe(-1);
    expect(d.admitHeld()).toEqual([]);
  });

  it('tells which admitted frame is still arriving and how much of it has, never a held or finished one', () => {
    let open = false;
    const d = new FrameDecoder(1 << 20, () => open);
    const all = framed(c, a);
    // Nothing admitted yet: a partial length, then a frame held for admission.
    expect(d.push(all.subarray(0, 2))).toEqual([]);
    expect([d.receivingFrameBytes, d.receivedFrameBytes]).toEqual([-1, 0]);
    expect(d.push(all.subarray(2, 300))).toEqual([]);
    expect([d.heldFrameBytes, d.receivingFrameBytes]).toEqual([1000, -1]);
    // Admitted: the body that came while it was held counts as arrived.
    open = true;
    expect(d.admitHeld()).toEqual([]);
    expect([d.heldFrameBytes, d.receivingFrameBytes, d.receivedFrameBytes]).toEqual([-1, 1000, 296]);
    expect(d.push(all.subarray(300, 900))).toEqual([]);
    expect([d.receivingFrameBytes, d.receivedFrameBytes]).toEqual([1000, 896]);
    // Completed, with the next frame whole in the same chunk: nothing is arriving.
    expect(d.push(all.subarray(900)).map((f) => f.length)).toEqual([c.length, a.length]);
    expect([d.receivingFrameBytes, d.receivedFrameBytes]).toEqual([-1, 0]);
    // A frame that arrives within one chunk is never reported as arriving.
    expect(d.push(framed(c)).map((f) => f.length)).toEqual([c.length]);
    expect(d.receivingFrameBytes).toBe(-1);
  });

  it('refuses an oversized length before asking for admission', () => {
    const asked: number[] = [];
    const d = new FrameDecoder(1024, (size) => {
      asked.push(size);
      return true;
    });
    expect(() => d.push(Buffer.from([0x00, 0x00, 0x04, 0x01]))).toThrow(/1025 exceeds the maximum of 1024/);
    expect(asked).toEqual([]);
  });

  it('drops a partly assembled frame on clear(), handing back its buffer, and starts afresh', () => {
    const d = new FrameDecoder();
    expect(d.push(framed(c).subarray(0, 300))).toEqual([]);
    expect(d.buffered).toBe(300);
    const partial = d.clear();
    expect(partial?.length).toBe(c.length);
    expect(partial!.subarray(0, 296).equals(c.subarray(0, 296))).toBe(true);
    expect(d.buffered).toBe(0);
    expect(d.clear()).toBe(null);
    expect(d.push(framed(a)).map((f) => f.toString())).toEqual(['first frame']);
  });

  it('returns every frame exactly, whatever the chunking and whenever admission is refused', () => {
    const rng = new Rng(0x5eed14);
    for (let round = 0; round < 200; round++) {
      const payloads = Array.from({ length: rng.int(1, 8) }, () => rng.bytes(rng.pick([0, 1, 5, 100, 5000, 70_000])));
      const all = framed(...payloads);
      const held: number[] = [];
      const d = new FrameDecoder(1 << 20, (size) => {
        if (rng.bool(0.4)) return true;
        held.push(size);
        return false;
      });
      const out: Buffer[] = [];
      for (let at = 0; at < all.length; ) {
        const n = Math.min(all.length - at, rng.int(1, 90_000));
        out.push(...d.push(all.subarray(at, at + n)));
        at += n;
        while (d.heldFrameBytes >= 0 && rng.bool(0.5)) out.push(...d.admitHeld());
      }
      while (d.heldFrameBytes >= 0) out.push(...d.admitHeld());
      expect(out.length).toBe(payloads.length);
      out.forEach((f, i) => expect(f.equals(payloads[i]!)).toBe(true));
      expect(d.buffered).toBe(0);
    }
  });
});
