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

  /** @param cycle runs one cycle; it must not reject (jobs log their own failures). */
  constructor(intervalMs: number, cycle: () => Promise<void>) {
    this.#intervalMs = intervalMs;
    this.#cycle = cycle;
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
      this.#running = this.#cycle().finally(() => {
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
