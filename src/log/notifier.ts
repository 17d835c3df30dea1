/**
 * Wakes long-polling fetches when a partition's high watermark moves: on this broker's own
 * commits directly, on other brokers' commits through the Redis `strata:hw` channel.
 */
import type { PartitionRef } from './partition-store.js';

export function partitionKey(ref: PartitionRef): string {
  return `${ref.topicId}:${ref.partition}`;
}

interface Waiter {
  keys: readonly string[];
  wake(): void;
}

export class HighWatermarkNotifier {
  readonly #waiters = new Map<string, Set<Waiter>>();
  #closed = false;

  /** Wakes waiters of the given partitions. */
  notify(keys: Iterable<string>): void {
    for (const key of keys) {
      const set = this.#waiters.get(key);
      if (!set) continue;
      for (const w of [...set]) w.wake();
    }
  }

  /** Handles a `strata:hw` message: `topicId:partition:hw` entries separated by `;`. */
  onMessage(payload: string): void {
    const keys: string[] = [];
    for (const entry of payload.split(';')) {
      const last = entry.lastIndexOf(':');
      if (last > 0) keys.push(entry.slice(0, last));
    }
    this.notify(keys);
  }

  /**
   * Resolves when any of `keys` is notified, after `timeoutMs`, or when the notifier closes,
   * whichever comes first.
   */
  wait(keys: readonly string[], timeoutMs: number): Promise<void> {
    if (this.#closed || timeoutMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let done = false;
      const waiter: Waiter = {
        keys,
        wake: () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          for (const k of keys) {
            const set = this.#waiters.get(k);
            set?.delete(waiter);
            if (set && set.size === 0) this.#waiters.delete(k);
          }
          resolve();
        },
      };
      const timer = setTimeout(() => waiter.wake(), timeoutMs);
      for (const k of keys) {
        let set = this.#waiters.get(k);
        if (!set) {
          set = new Set();
          this.#waiters.set(k, set);
        }
        set.add(waiter);
      }
    });
  }

  /** Wakes every waiter and makes later waits return at once (shutdown). */
  close(): void {
    this.#closed = true;
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w.wake();
  }
}
