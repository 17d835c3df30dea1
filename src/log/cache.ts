/**
 * A byte-bounded LRU of Buffers (or anything with a byte length) with single-flight loading:
 * concurrent misses for the same key share one load (one ranged GET), and the least recently
 * used entries are evicted once the total exceeds the budget. Map insertion order is the
 * recency order.
 */
/** A cache's counters (for /metrics). */
export interface CacheStats {
  hits: number;
  misses: number;
  bytes: number;
  entries: number;
}

export class ByteLru<V extends { readonly length: number } = Buffer> {
  readonly #maxBytes: number;
  #bytes = 0;
  readonly #entries = new Map<string, V>();
  readonly #loading = new Map<string, Promise<V>>();
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, bytes: this.#bytes, entries: this.#entries.size };
  }

  get(key: string): V | undefined {
    const v = this.#entries.get(key);
    if (v !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    if (value.length > this.#maxBytes) return;
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#bytes -= old.length;
      this.#entries.delete(key);
    }
    this.#entries.set(key, value);
    this.#bytes += value.length;
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= v.length;
    }
  }

  /** The cached value, or the result of `load` (shared with concurrent callers), then cached. */
  async getOrLoad(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) {
      this.#hits++;
      return hit;
    }
    const inflight = this.#loading.get(key);
    if (inflight) {
      this.#hits++;
      return inflight;
    }
    this.#misses++;
    const p = load().then(
      (v) => {
        this.#loading.delete(key);
        this.set(key, v);
        return v;
      },
      (err: unknown) => {
        this.#loading.delete(key);
        throw err;
      },
    );
    this.#loading.set(key, p);
    return p;
  }
}
