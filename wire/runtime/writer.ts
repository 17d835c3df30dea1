import { EncodeError } from './errors.js';
import { writeUuidBytes } from './uuid.js';

const INITIAL_SIZE = 512;

/**
 * A `records` value: decoders always produce one Buffer (a view of the frame); encoders also
 * take a list of Buffers, written as consecutive chunks without concatenation.
 */
export type Records = Buffer | readonly Buffer[];

/**
 * Writer appends big-endian Kafka primitives to a growable scratch buffer. External buffers
 * handed to `records` are not copied: the writer closes the current scratch slice and keeps
 * the caller's buffers in its chunk list, so a Fetch response goes to the socket as a list of
 * views with the record data untouched.
 */
export class Writer {
  #buf: Buffer;
  #pos = 0;
  /** Start of the scratch region not yet emitted into #chunks. */
  #mark = 0;
  #chunks: Buffer[] = [];
  /** Total bytes in #chunks. */
  #chunkBytes = 0;

  constructor(initialSize = INITIAL_SIZE) {
    this.#buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far, external chunks included. */
  get length(): number {
    return this.#chunkBytes + (this.#pos - this.#mark);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    // Flush the pending scratch region as a chunk and start a fresh buffer, so views already
    // handed out stay valid and nothing is copied twice.
    this.#emitScratch();
    const size = Math.max(n, this.#buf.length * 2);
    this.#buf = Buffer.allocUnsafe(size);
    this.#pos = 0;
    this.#mark = 0;
  }

  #emitScratch(): void {
    if (this.#pos > this.#mark) {
      const slice = this.#buf.subarray(this.#mark, this.#pos);
      this.#chunks.push(slice);
      this.#chunkBytes += slice.length;
      this.#mark = this.#pos;
    }
  }

  /** Reserves four bytes for a length or CRC and returns a handle to fill in later. */
  reserveInt32(): { buf: Buffer; at: number } {
    this.#ensure(4);
    const at = this.#pos;
    this.#pos += 4;
    return { buf: this.#buf, at };
  }

  int8(v: number): void {
    this.#ensure(1);
    this.#pos = this.#buf.writeInt8(v, this.#pos);
  }

  int16(v: number): void {
    this.#ensure(2);
    this.#pos = this.#buf.writeInt16BE(v, this.#pos);
  }

  uint16(v: number): void {
    this.#ensure(2);
    this.#pos = this.#buf.writeUInt16BE(v, this.#pos);
  }

  int32(v: number): void {
    this.#ensure(4);
    this.#pos = this.#buf.writeInt32BE(v, this.#pos);
  }

  uint32(v: number): void {
    this.#ensure(4);
    this.#pos = this.#buf.writeUInt32BE(v, this.#pos);
  }

  int64(v: bigint): void {
    this.#ensure(8);
    this.#pos = this.#buf.writeBigInt64BE(v, this.#pos);
  }

  float64(v: number): void {
    this.#ensure(8);
    this.#pos = this.#buf.writeDoubleBE(v, this.#pos);
  }

  bool(v: boolean): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = v ? 1 : 0;
  }

  uuid(v: string): void {
    this.#ensure(16);
    writeUuidBytes(v, this.#buf, this.#pos);
    this.#pos += 16;
  }

  uvarint(v: number): void {
    this.#ensure(5);
    const buf = this.#buf;
    let pos = this.#pos;
    while (v >= 0x80) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[pos++] = v;
    this.#pos = pos;
  }

  varint(v: number): void {
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  varlong(v: number): void {
    this.#ensure(10);
    const buf = this.#buf;
    let pos = this.#pos;
    let u = v >= 0 ? v * 2 : -v * 2 - 1;
    while (u >= 0x80) {
      buf[pos++] = (u % 128) | 0x80;
      u = Math.floor(u / 128);
    }
    buf[pos++] = u;
    this.#pos = pos;
  }

  /** Copies `data` into the scratch buffer (for small byte fields). */
  raw(data: Uint8Array): void {
    this.#ensure(data.length);
    this.#buf.set(data, this.#pos);
    this.#pos += data.length;
  }

  /** Appends `data` as its own chunk without copying (for large byte fields). */
  chunk(data: Buffer): void {
    if (data.length < 256) {
      this.raw(data);
      return;
    }
    this.#emitScratch();
    this.#chunks.push(data);
    this.#chunkBytes += data.length;
  }

  #utf8(v: string, n: number): void {
    this.#ensure(n);
    this.#pos += this.#buf.write(v, this.#pos, n, 'utf8');
  }

  string(v: string): void {
    const n = Buffer.byteLength(v, 'utf8');
    if (n > 0x7fff) throw new EncodeError(`string of ${n} bytes exceeds the int16 length limit`);
    this.int16(n);
    this.#utf8(v, n);
  }

  nullableString(v: string | null): void {
    if (v === null) this.int16(-1);
    else this.string(v);
  }

  compactString(v: string): void {
    const n = Buffer.byteLength(v, 'utf8');
    this.uvarint(n + 1);
    this.#utf8(v, n);
  }

  compactNullableString(v: string | null): void {
    if (v === null) this.uvarint(0);
    else this.compactString(v);
  }

  bytes(v: Uint8Array): void {
    this.int32(v.length);
    this.raw(v);
  }

  nullableBytes(v: Uint8Array | null): void {
    if (v === null) this.int32(-1);
    else this.bytes(v);
  }

  compactBytes(v: Uint8Array): void {
    this.uvarint(v.length + 1);
    this.raw(v);
  }

  compactNullableBytes(v: Uint8Array | null): void {
    if (v === null) this.uvarint(0);
    else this.compactBytes(v);
  }

  /** A `records` field: length prefix, then the buffers as chunks (not copied). */
  records(v: Records | null, compact: boolean): void {
    if (v === null) {
      if (compact) this.uvarint(0);
      else this.int32(-1);
      return;
    }
    const list: readonly Buffer[] = Buffer.isBuffer(v) ? [v] : (v as readonly Buffer[]);
    let n = 0;
    for (const b of list) n += b.length;
    if (compact) this.uvarint(n + 1);
    else this.int32(n);
    for (const b of list) this.chunk(b);
  }

  /** Finishes and returns the written bytes as a list of chunks. */
  finish(): Buffer[] {
    this.#emitScratch();
    return this.#chunks;
  }

  /** Finishes and returns the written bytes as one buffer (copies when there are several chunks). */
  finishBuffer(): Buffer {
    const chunks = this.finish();
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#chunkBytes);
  }
}
