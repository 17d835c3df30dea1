import type { Logger } from '../observability/logger.js';

/**
 * What the background jobs of the partition log share (retention, object compaction, the log
 * cleaner, object GC): their schedule ({@link JobTimer}: one cycle at a time, each started
 * `intervalMs` after the previous one ended, so cycles never overlap; the timer does not keep
 * the process alive; stop cancels the next cycle and waits for the running one), and the
 * bounded walk over a cycle's partitions ({@link eachPartition}).
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

/** A partition a job's cycle works on, named for its failure line. */
export interface CyclePartition {
  topic: string;
  ref: { topicId: string; partition: number };
}

/**
 * Works through a cycle's partitions with at most `concurrency` in flight, until all are done
 * or `stopped()` says the job is stopping. A partition that fails is left for the next cycle;
 * the cycle logs one warn line however many failed (a Redis or store outage fails them all),
 * naming the first and counting the rest.
 */
export async function eachPartition<D extends CyclePartition>(
  due: readonly D[],
  options: { concurrency: number; stopped: () => boolean; log: { warn(obj: object, msg: string): void } | null; failed: string },
  work: (d: D) => Promise<void>,
): Promise<void> {
  const failures: { topic: string; partition: number; err: string }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < due.length && !options.stopped()) {
      const d = due[next++]!;
      try {
        await work(d);
      } catch (err) {
        failures.push({ topic: d.topic, partition: d.ref.partition, err: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, due.length) }, worker));
  if (failures.length > 0) options.log?.warn({ ...failures[0], failed: failures.length, partitions: due.length }, options.failed);
}

/**
 * A background job of the partition log: started with the broker's logger once its node id is
 * known, one {@link runOnce} per cycle on a {@link JobTimer}, stopped before the ingest drain
 * (a running cycle ends at its next stopping point; {@link stopped} tells it).
 */
export abstract class PeriodicJob {
  /** The broker's logger once started. */
  protected log: Logger | null = null;
  readonly #timer: JobTimer;

  /** @param name what the job is called in the line logged when a cycle throws. */
  protected constructor(intervalMs: number, name: string) {
    this.#timer = new JobTimer(intervalMs, () => this.runOnce(), (err) => this.log?.warn({ err: (err as Error).message }, `${name} cycle failed; the next cycle tries again`));
  }

  /** Schedules the first cycle one interval from now (nothing once stopped). */
  start(log: Logger): void {
    this.log = log;
    this.#timer.start();
  }

  /** Cancels the next cycle and waits for a running one to reach a stopping point. */
  stop(): Promise<void> {
    return this.#timer.stop();
  }

  /** Whether {@link stop} was called: a running cycle checks it between steps. */
  protected get stopped(): boolean {
    return this.#timer.stopped;
  }

  /** One cycle; must not reject for an expected failure (log it, try again next cycle). */
  abstract runOnce(): Promise<void>;
}
