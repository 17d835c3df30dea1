import { WireError } from './errors.js';

/** The largest request Kafka accepts by default (`socket.request.max.bytes`, 100 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * FrameDecoder turns socket chunks into frames (the bytes after each 4-byte length prefix).
 * A frame that lies inside one chunk is returned as a view of it; only a frame that spans
 * chunks is copied, once, into a buffer of exactly its size. A length prefix above the
 * maximum is rejected before anything is allocated.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  /** Chunks received but not yet consumed; the first may be partly consumed from #offset. */
  #chunks: Buffer[] = [];
  #offset = 0;
  #buffered = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds a chunk and returns every frame now complete, in order. Throws WireError for a
   * negative or oversized length; the caller should then close the connection.
   */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    if (chunk.length === 0) return frames;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#buffered < 4) break;
      const size = this.#peekLength();
      if (size < 0) throw new WireError(`frame length ${size} is negative`);
      if (size > this.#maxFrameBytes) {
        throw new WireError(`frame length ${size} exceeds the maximum of ${this.#maxFrameBytes} bytes`);
      }
      if (this.#buffered < 4 + size) break;
      this.#consume(4);
      frames.push(this.#consume(size));
    }
    return frames;
  }

  #peekLength(): number {
    const first = this.#chunks[0]!;
    if (first.length - this.#offset >= 4) return first.readInt32BE(this.#offset);
    const head = Buffer.allocUnsafe(4);
    let filled = 0;
    for (let i = 0, off = this.#offset; filled < 4; i++, off = 0) {
      const c = this.#chunks[i]!;
      filled += c.copy(head, filled, off, Math.min(c.length, off + 4 - filled));
    }
    return head.readInt32BE(0);
  }

  /** Removes `n` buffered bytes (n ≤ buffered) and returns them, as a view when possible. */
  #consume(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    const available = first.length - this.#offset;
    if (n <= available) {
      const view = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length - this.#offset, n - filled);
      c.copy(out, filled, this.#offset, this.#offset + take);
      filled += take;
      this.#offset += take;
      if (this.#offset === c.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return out;
  }
}
