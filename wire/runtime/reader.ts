import { WireError } from './errors.js';
import { uuidFromBytes } from './uuid.js';

/**
 * Reader walks a frame from `pos` to `end`, checking every read against the bytes that are
 * left so that no length from the peer is trusted. Byte fields come back as views of the
 * frame (`subarray`), never copies.
 */
export class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.end - this.pos;
  }

  #need(n: number, what: string): number {
    const at = this.pos;
    if (n > this.end - at) {
      throw new WireError(`truncated ${what}: need ${n} bytes at offset ${at}, ${this.end - at} left`);
    }
    this.pos = at + n;
    return at;
  }

  int8(): number {
    return this.buf.readInt8(this.#need(1, 'int8'));
  }

  int16(): number {
    return this.buf.readInt16BE(this.#need(2, 'int16'));
  }

  uint16(): number {
    return this.buf.readUInt16BE(this.#need(2, 'uint16'));
  }

  int32(): number {
    return this.buf.readInt32BE(this.#need(4, 'int32'));
  }

  uint32(): number {
    return this.buf.readUInt32BE(this.#need(4, 'uint32'));
  }

  int64(): bigint {
    return this.buf.readBigInt64BE(this.#need(8, 'int64'));
  }

  float64(): number {
    return this.buf.readDoubleBE(this.#need(8, 'float64'));
  }

  bool(): boolean {
    return this.buf[this.#need(1, 'bool')] !== 0;
  }

  uuid(): string {
    const at = this.#need(16, 'uuid');
    return uuidFromBytes(this.buf, at);
  }

  /** Unsigned LEB128 varint of at most 32 bits (5 bytes). */
  uvarint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= this.end) throw new WireError(`truncated varint at offset ${this.pos}`);
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (result > 0xffffffff) throw new WireError(`varint at offset ${this.pos} exceeds 32 bits`);
        this.pos = pos;
        return result;
      }
    }
    throw new WireError(`varint at offset ${this.pos} is longer than 5 bytes`);
  }

  /** Zigzag-encoded signed varint of at most 32 bits. */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /**
   * Zigzag-encoded signed varlong, returned as a number. Record-level fields that use it
   * (timestamp and offset deltas) stay well inside 2^53; larger magnitudes are rejected.
   */
  varlong(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    for (let shift = 0; shift < 56; shift += 7) {
      if (pos >= this.end) throw new WireError(`truncated varlong at offset ${this.pos}`);
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        this.pos = pos;
        if (result > Number.MAX_SAFE_INTEGER) {
          throw new WireError(`varlong at offset ${this.pos} exceeds 2^53`);
        }
        return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      }
    }
    throw new WireError(`varlong at offset ${this.pos} exceeds 2^53`);
  }

  /** A slice of `n` bytes as a view of the frame. */
  take(n: number, what = 'bytes'): Buffer {
    const at = this.#need(n, what);
    return this.buf.subarray(at, at + n);
  }

  /** A reader over the next `n` bytes (for a tagged field's payload); this reader skips them. */
  sub(n: number): Reader {
    const at = this.#need(n, 'tagged field');
    return new Reader(this.buf, at, at + n);
  }

  /** Throws unless every byte of this reader was consumed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) {
      throw new WireError(`${what}: ${this.end - this.pos} unexpected trailing bytes`);
    }
  }

  skip(n: number, what = 'bytes'): void {
    this.#need(n, what);
  }

  #utf8(n: number): string {
    const at = this.#need(n, 'string');
    return this.buf.toString('utf8', at, at + n);
  }

  string(): string {
    const n = this.int16();
    if (n < 0) throw new WireError(`non-nullable string has length ${n}`);
    return this.#utf8(n);
  }

  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) {
      if (n !== -1) throw new WireError(`string length ${n} is invalid`);
      return null;
    }
    return this.#utf8(n);
  }

  compactString(): string {
    const n = this.uvarint();
    if (n === 0) throw new WireError('non-nullable compact string is null');
    return this.#utf8(n - 1);
  }

  compactNullableString(): string | null {
    const n = this.uvarint();
    return n === 0 ? null : this.#utf8(n - 1);
  }

  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) throw new WireError(`non-nullable bytes has length ${n}`);
    return this.take(n);
  }

  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) {
      if (n !== -1) throw new WireError(`bytes length ${n} is invalid`);
      return null;
    }
    return this.take(n);
  }

  compactBytes(): Buffer {
    const n = this.uvarint();
    if (n === 0) throw new WireError('non-nullable compact bytes is null');
    return this.take(n - 1);
  }

  compactNullableBytes(): Buffer | null {
    const n = this.uvarint();
    return n === 0 ? null : this.take(n - 1);
  }

  /**
   * Array element count, -1 for null. Every element takes at least one byte, so a count larger
   * than the bytes left is malformed: this check is what keeps a hostile count from driving a
   * huge loop or allocation.
   */
  arrayLength(): number {
    const n = this.int32();
    if (n < -1) throw new WireError(`array length ${n} is invalid`);
    if (n > this.end - this.pos) {
      throw new WireError(`array length ${n} exceeds the ${this.end - this.pos} bytes left`);
    }
    return n;
  }

  compactArrayLength(): number {
    const n = this.uvarint() - 1;
    if (n > this.end - this.pos) {
      throw new WireError(`array length ${n} exceeds the ${this.end - this.pos} bytes left`);
    }
    return n;
  }
}
