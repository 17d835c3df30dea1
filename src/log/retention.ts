/**
 * The retention job (docs/architecture.md §4.3): every `--log-retention-check-interval-ms`,
 * each broker applies time retention to the partitions whose leader hint it is, so every
 * partition is handled by one live broker. A topic's records go when their batches are older
 * than its `retention.ms` and its `cleanup.policy` contains `delete`; the partition log moves
 * the log start ({@link PartitionLog.applyRetention}), and from then on ListOffsets, Fetch and
 * DeleteRecords see the new log start as they see one DeleteRecords set.
 *
 * Applying retention is idempotent, so two brokers briefly both taking a partition while
 * membership changes is harmless. The job holds no state between cycles beyond its counters.
 */
import { effectiveTopicConfig } from '../cluster/topic-configs.js';
import type { BrokerConfig } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { PartitionRef } from './partition-store.js';

/** What applying retention to one partition did. */
export interface RetentionOutcome {
  /** The log start afterwards. */
  logStart: number;
  /** Whether this call moved it. */
  advanced: boolean;
}

/** What the job needs of a topic (the topic store's `TopicInfo` has it). */
export interface RetentionTopic {
  name: string;
  topicId: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level overrides only. */
  configs: Readonly<Record<string, string>>;
}

/** Partitions whose retention is applied at once, by default: bounds the load on Redis. */
export const DEFAULT_RETENTION_CONCURRENCY = 8;

/**
 * The time cutoff of a topic at `nowMs`: batches whose max timestamp is below it are due for
 * deletion. Null when the topic keeps its records by time: its `cleanup.policy` lacks
 * `delete` (compact only), or its `retention.ms` is negative (-1, unlimited). `retention.ms`
 * is the topic's override, else `--log-retention-ms`.
 */
export function retentionCutoffMs(configs: Readonly<Record<string, string>>, broker: BrokerConfig, nowMs: number): number | null {
  const policies = effectiveTopicConfig('cleanup.policy', configs, broker).split(',');
  if (!policies.some((p) => p.trim() === 'delete')) return null;
  // A LONG up to 2^63-1: as a number it loses precision, but a cutoff billions of years back
  // keeps everything all the same.
  const retentionMs = Number(effectiveTopicConfig('retention.ms', configs, broker));
  return retentionMs < 0 ? null : nowMs - retentionMs;
}

/** What the job is given: where topics, leadership and the partition log come from. */
export interface RetentionJobOptions {
  topics: { all(): Promise<readonly RetentionTopic[]> };
  /** Whether this broker handles a partition: it is the partition's leader hint. */
  leads(topicId: string, partition: number, replicationFactor: number): boolean;
  log: { applyRetention(ref: PartitionRef, cutoffMs: number): Promise<RetentionOutcome> };
  /** For topic config defaults (`--log-retention-ms`). */
  broker: BrokerConfig;
  /** Time between the end of one cycle and the start of the next. */
  intervalMs: number;
  /** Partitions in flight at once (default {@link DEFAULT_RETENTION_CONCURRENCY}). */
  concurrency?: number;
  /** The clock the cutoff is taken from (tests may fix it). */
  now?: () => number;
}

/** Counters for /metrics. */
export interface RetentionStats {
  /** Cycles completed, each over every partition this broker led when it began. */
  cycles: number;
  /** Times a partition's log start moved forward. */
  logStartAdvances: number;
}

/** One partition a cycle applies retention to. */
interface Due {
  topic: string;
  ref: PartitionRef;
  cutoffMs: number;
}

/** The periodic retention job of one broker. Start it once the broker knows its node id. */
export class RetentionJob {
  readonly #opts: RetentionJobOptions;
  readonly #concurrency: number;
  readonly #now: () => number;
  #log: Logger | null = null;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #cycles = 0;
  #advances = 0;

  constructor(opts: RetentionJobOptions) {
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? DEFAULT_RETENTION_CONCURRENCY);
    this.#now = opts.now ?? Date.now;
  }

  /** Schedules the first cycle one interval from now (nothing once stopped). */
  start(log: Logger): void {
    this.#log = log;
    this.#schedule();
  }

  /** Cancels the next cycle and waits for a running one, which stops after its in-flight partitions. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  stats(): RetentionStats {
    return { cycles: this.#cycles, logStartAdvances: this.#advances };
  }

  #schedule(): void {
    if (this.#stopped) return;
    // The next cycle is timed from the end of this one, so cycles never overlap.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.runOnce().finally(() => {
        this.#running = null;
        this.#schedule();
      });
    }, this.#opts.intervalMs);
    this.#timer.unref();
  }

  /**
   * One cycle: applies retention to every partition this broker leads on a topic that
   * deletes by time. Never rejects: a failure is logged once per cycle (with how many
   * partitions failed) and the partitions are tried again next cycle.
   */
  async runOnce(): Promise<void> {
    const nowMs = this.#now();
    let topics: readonly RetentionTopic[];
    try {
      topics = await this.#opts.topics.all();
    } catch (err) {
      this.#log?.warn({ err: (err as Error).message }, 'retention could not list topics; retrying next cycle');
      return;
    }
    const due: Due[] = [];
    for (const t of topics) {
      const cutoffMs = retentionCutoffMs(t.configs, this.#opts.broker, nowMs);
      if (cutoffMs === null) continue;
      for (let p = 0; p < t.partitions; p++) {
        if (this.#opts.leads(t.topicId, p, t.replicationFactor)) due.push({ topic: t.name, ref: { topicId: t.topicId, partition: p }, cutoffMs });
      }
    }

    const failures: { topic: string; partition: number; err: string }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length && !this.#stopped) {
        const d = due[next++]!;
        try {
          await this.#applyOne(d);
        } catch (err) {
          failures.push({ topic: d.topic, partition: d.ref.partition, err: (err as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, due.length) }, worker));
    if (failures.length > 0) {
      // One line per cycle however many partitions failed: a Redis outage fails them all.
      this.#log?.warn({ ...failures[0], failed: failures.length, partitions: due.length }, 'retention could not be applied to some partitions; retrying next cycle');
    }
    if (!this.#stopped) this.#cycles++;
  }

  async #applyOne(d: Due): Promise<void> {
    const { advanced, logStart } = await this.#opts.log.applyRetention(d.ref, d.cutoffMs);
    if (!advanced) return;
    this.#advances++;
    this.#log?.debug({ topic: d.topic, partition: d.ref.partition, logStart }, 'retention moved the log start');
  }
}
