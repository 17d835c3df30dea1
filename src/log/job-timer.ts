/**
 * The schedule the background jobs of the partition log share (retention, object compaction,
 * object GC): one cycle at a time, each started `intervalMs` after the previous one ended, so
 * cycles never overlap; the timer does not keep the process alive; stop cancels the next
 * cycle and waits for the running one.
 */
export class JobTimer {
  readonly #intervalMs: number;
  readonly #cycle: () => Promise<void>;
  #timeout: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;

  readonly #onError: (err: unknown) => void;

  /**
   * @param cycle runs one cycle; jobs log their own failures, and anything that still escapes
   *   goes to `onError` (the next cycle is scheduled all the same).
   */
  constructor(intervalMs: number, cycle: () => Promise<void>, onError: (err: unknown) => void = () => undefined) {
    this.#intervalMs = intervalMs;
    this.#cycle = cycle;
    this.#onError = onError;
  }

  /** Whether {@link stop} was called: a running cycle checks it to end early. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Schedules the first cycle one interval from now (nothing once stopped). */
  start(): void {
    if (this.#stopped) return;
    this.#timeout = setTimeout(() => {
      this.#timeout = null;
      this.#running = this.#cycle()
        .catch((err: unknown) => this.#onError(err))
        .finally(() => {
          this.#running = null;
          this.start();
        });
    }, this.#intervalMs);
    this.#timeout.unref();
  }

  /** Cancels the next cycle and waits for a running one. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timeout) clearTimeout(this.#timeout);
    this.#timeout = null;
    await this.#running;
  }
}
