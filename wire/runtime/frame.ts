import { WireError } from './errors.js';

/** The largest request Kafka accepts by default (`socket.request.max.bytes`, 100 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;

/**
 * Decides whether a frame whose length has just been read may be received now. Returning
 * false holds the frame (its body is not assembled) until {@link FrameDecoder.admitHeld}.
 */
export type FrameAdmission = (size: number) => boolean;

const EMPTY = Buffer.alloc(0);

/**
 * FrameDecoder turns socket chunks into frames (the bytes after each 4-byte length prefix).
 * A frame that lies inside one chunk is returned as a view of it. A frame that spans chunks
 * is assembled into one buffer of exactly its size as its chunks arrive, so each chunk can be
 * freed as soon as it has been copied, rather than every chunk of the frame being held until
 * the last arrives. A length prefix above the maximum is rejected before anything is
 * allocated, and an optional admission check runs once per frame before its body is kept.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #admit: FrameAdmission | null;
  /** Chunks received but not yet consumed; the first may be partly consumed from #offset. */
  #chunks: Buffer[] = [];
  #offset = 0;
  /** Bytes in #chunks from #offset on. */
  #chunkBytes = 0;
  /** Length of the frame whose prefix has been consumed, or -1 between frames. */
  #frameSize = -1;
  /** The current frame waits for admission. */
  #held = false;
  /** The current frame's buffer while it is being assembled, and how much of it is filled. */
  #assembly: Buffer | null = null;
  #filled = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, admit: FrameAdmission | null = null) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#admit = admit;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#chunkBytes + this.#filled + (this.#frameSize >= 0 ? 4 : 0);
  }

  /** The length of the frame held waiting for admission, or -1 when none is. */
  get heldFrameBytes(): number {
    return this.#held ? this.#frameSize : -1;
  }

  /**
   * The length of the admitted frame whose body is still arriving, or -1 when there is none
   * (between frames, before a length is complete, or while a frame is held). Such a frame is
   * always being assembled: an admitted frame whose body is all buffered is returned at once.
   */
  get receivingFrameBytes(): number {
    return this.#assembly === null ? -1 : this.#assembly.length;
  }

  /** How much of the {@link receivingFrameBytes} frame's body has arrived (0 when none). */
  get receivedFrameBytes(): number {
    return this.#filled;
  }

  /**
   * Adds a chunk and returns every frame now complete, in order. Throws WireError for a
   * negative or oversized length; the caller should then close the connection. While a frame
   * is held for admission, chunks are only buffered.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      const rest = this.#assembly === null ? chunk : this.#fill(chunk);
      if (rest.length > 0) {
        this.#chunks.push(rest);
        this.#chunkBytes += rest.length;
      }
    }
    return this.#held ? [] : this.#frames();
  }

  /**
   * Admits the held frame (the caller has made room for it) and returns every frame now
   * complete, as {@link push} does.
   */
  admitHeld(): Buffer[] {
    if (!this.#held) return [];
    this.#held = false;
    return this.#frames();
  }

  /**
   * Drops everything buffered (the connection is closing). Returns the buffer of a partly
   * assembled frame, if there is one: nothing else has seen it, so the caller may free it at
   * once rather than leave it to the garbage collector.
   */
  clear(): Buffer | null {
    const partial = this.#assembly;
    this.#chunks = [];
    this.#offset = 0;
    this.#chunkBytes = 0;
    this.#frameSize = -1;
    this.#held = false;
    this.#assembly = null;
    this.#filled = 0;
    return partial;
  }

  #frames(): Buffer[] {
    const frames: Buffer[] = [];
    for (;;) {
      if (this.#frameSize < 0) {
        if (this.#chunkBytes < 4) break;
        const size = this.#peekLength();
        if (size < 0) throw new WireError(`frame length ${size} is negative`);
        if (size > this.#maxFrameBytes) {
          throw new WireError(`frame length ${size} exceeds the maximum of ${this.#maxFrameBytes} bytes`);
        }
        this.#discard(4);
        this.#frameSize = size;
        if (this.#admit !== null && !this.#admit(size)) {
          this.#held = true;
          break;
        }
      }
      if (this.#assembly !== null) {
        if (this.#filled < this.#assembly.length) break;
        frames.push(this.#assembly);
        this.#assembly = null;
        this.#filled = 0;
        this.#frameSize = -1;
        continue;
      }
      const size = this.#frameSize;
      if (this.#chunkBytes >= size) {
        frames.push(this.#consume(size));
        this.#frameSize = -1;
        continue;
      }
      // The rest of the frame is still to come. Buffer.allocUnsafe leaves the pages untouched
      // until written, and a large allocation is its own mapping, returned whole when freed.
      this.#assembly = Buffer.allocUnsafe(size);
      this.#filled = 0;
      for (let i = 0; i < this.#chunks.length; i++) {
        const c = this.#chunks[i]!;
        this.#filled += c.copy(this.#assembly, this.#filled, i === 0 ? this.#offset : 0);
      }
      this.#chunks = [];
      this.#offset = 0;
      this.#chunkBytes = 0;
      break;
    }
    return frames;
  }

  /** Copies what the frame being assembled still needs from `chunk`; returns the rest of it. */
  #fill(chunk: Buffer): Buffer {
    const assembly = this.#assembly!;
    const take = Math.min(assembly.length - this.#filled, chunk.length);
    chunk.copy(assembly, this.#filled, 0, take);
    this.#filled += take;
    return take === chunk.length ? EMPTY : chunk.subarray(take);
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

  /** Drops `n` buffered bytes (n ≤ #chunkBytes). */
  #discard(n: number): void {
    this.#chunkBytes -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      const take = Math.min(first.length - this.#offset, n);
      n -= take;
      this.#offset += take;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
  }

  /** Removes `n` buffered bytes (n ≤ #chunkBytes) and returns them, as a view when possible. */
  #consume(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.#chunkBytes -= n;
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
