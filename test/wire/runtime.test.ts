import { describe, expect, it } from 'vitest';
import { Reader, WireError, Writer, ZERO_UUID } from '../../wire/index.js';

function written(fn: (w: Writer) => void): string {
  const w = new Writer(2);
  fn(w);
  return w.finishBuffer().toString('hex');
}

describe('varints', () => {
  it('encodes unsigned varints as LEB128', () => {
    expect(written((w) => w.uvarint(0))).toBe('00');
    expect(written((w) => w.uvarint(127))).toBe('7f');
    expect(written((w) => w.uvarint(128))).toBe('8001');
    expect(written((w) => w.uvarint(300))).toBe('ac02');
    expect(written((w) => w.uvarint(0xffffffff))).toBe('ffffffff0f');
  });

  it('zigzag-encodes signed varints and varlongs', () => {
    expect(written((w) => w.varint(0))).toBe('00');
    expect(written((w) => w.varint(-1))).toBe('01');
    expect(written((w) => w.varint(1))).toBe('02');
    expect(written((w) => w.varint(-64))).toBe('7f');
    expect(written((w) => w.varint(64))).toBe('8001');
    expect(written((w) => w.varint(-2147483648))).toBe('ffffffff0f');
    expect(written((w) => w.varlong(1_700_000_000_000))).toBe('80a0abfef962');
  });

  it('reads back what it writes, over the edges', () => {
    const values = [0, 1, -1, 63, -64, 64, 8191, -8192, 2147483647, -2147483648];
    const w = new Writer(1);
    for (const v of values) w.varint(v);
    for (const v of values) w.varlong(v * 1000);
    const r = new Reader(w.finishBuffer());
    expect(values.map(() => r.varint())).toEqual(values);
    expect(values.map(() => r.varlong())).toEqual(values.map((v) => v * 1000));
    expect(r.remaining).toBe(0);
  });

  it('rejects a varint over 32 bits', () => {
    expect(() => new Reader(Buffer.from('ffffffff1f', 'hex')).uvarint()).toThrow(/exceeds 32 bits/);
  });
});

describe('Reader', () => {
  it('reads nullable and compact strings and bytes', () => {
    const w = new Writer(1);
    w.nullableString(null);
    w.string('héllo');
    w.compactNullableString(null);
    w.compactString('');
    w.compactBytes(Buffer.from([1, 2, 3]));
    w.nullableBytes(null);
    const r = new Reader(w.finishBuffer());
    expect([r.nullableString(), r.string(), r.compactNullableString(), r.compactString()]).toEqual([null, 'héllo', null, '']);
    expect([...r.compactBytes()]).toEqual([1, 2, 3]);
    expect(r.nullableBytes()).toBe(null);
  });

  it('returns byte fields as views of the frame', () => {
    const frame = Buffer.from('0000000301020300', 'hex');
    const r = new Reader(frame);
    const b = r.bytes();
    expect(b.buffer).toBe(frame.buffer);
    expect(b.byteOffset).toBe(frame.byteOffset + 4);
  });

  it('rejects null for non-nullable strings and negative lengths other than -1', () => {
    expect(() => new Reader(Buffer.from('ffff', 'hex')).string()).toThrow(WireError);
    expect(() => new Reader(Buffer.from('fffe', 'hex')).nullableString()).toThrow(/length -2 is invalid/);
    expect(() => new Reader(Buffer.from('00', 'hex')).compactString()).toThrow(WireError);
  });

  it('round-trips uuids in Kafka base64url form', () => {
    const w = new Writer();
    w.uuid('3Hh5LDbkQJi8NRRs1bv_Ow');
    w.uuid(ZERO_UUID);
    const bytes = w.finishBuffer();
    expect(bytes.subarray(16).equals(Buffer.alloc(16))).toBe(true);
    const r = new Reader(bytes);
    expect([r.uuid(), r.uuid()]).toEqual(['3Hh5LDbkQJi8NRRs1bv_Ow', ZERO_UUID]);
  });
});

describe('Writer', () => {
  it('grows past its initial size without losing bytes', () => {
    const w = new Writer(1);
    for (let i = 0; i < 1000; i++) w.int32(i);
    const out = w.finishBuffer();
    expect(out.length).toBe(4000);
    expect(out.readInt32BE(3996)).toBe(999);
  });

  it('back-patches a reserved length after growth', () => {
    const w = new Writer(8);
    const slot = w.reserveInt32();
    for (let i = 0; i < 100; i++) w.int64(BigInt(i));
    slot.buf.writeInt32BE(w.length - 4, slot.at);
    const out = w.finishBuffer();
    expect(out.readInt32BE(0)).toBe(800);
    expect(out.readBigInt64BE(4 + 8 * 99)).toBe(99n);
  });
});
