/**
 * The retention job (docs/architecture.md §4.3): every `--log-retention-check-interval-ms`,
 * each broker applies retention to the partitions whose leader hint it is, so every partition
 * is handled by one live broker. On a topic whose `cleanup.policy` contains `delete`, records
 * go when their batches are older than its `retention.ms`, and the oldest go while the rest of
 * the partition stays at least `retention.bytes`; the partition log moves the log start
 * ({@link PartitionLog.applyRetention}), and from then on ListOffsets, Fetch and
 * DeleteRecords see the new log start as they see one DeleteRecords set.
 *
 * Applying retention is idempotent, so two brokers briefly both taking a partition while
 * membership changes is harmless. The job holds no state between cycles beyond its counters.
 */
import { effectiveTopicConfig } from '../cluster/topic-configs.js';
import type { BrokerConfig } from '../config.js';
import type { PartitionRef } from './partition-store.js';
import { eachPartition, PeriodicJob } from './job-timer.js';

/** What applying retention to one partition did. */
export interface RetentionOutcome {
  /** The log start afterwards. */
  logStart: number;
  /** Whether this call moved it. */
  advanced: boolean;
}

/**
 * What retention keeps of a partition; a limit left out does not apply. The log start moves
 * as far as the stricter of the two asks.
 */
export interface RetentionLimits {
  /** Time retention: runs whose batches all have a max timestamp below this go. */
  cutoffMs?: number;
  /** Size retention: the oldest runs go while the runs left hold at least this many bytes. */
  maxBytes?: number;
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
  if (!deletes(configs, broker)) return null;
  // A LONG up to 2^63-1: as a number it loses precision, but a cutoff billions of years back
  // keeps everything all the same.
  const retentionMs = Number(effectiveTopicConfig('retention.ms', configs, broker));
  return retentionMs < 0 ? null : nowMs - retentionMs;
}

/**
 * The size a topic's partitions are kept to: its `retention.bytes` (the topic's override, else
 * `--log-retention-bytes`), or null when the topic keeps its records by size: its
 * `cleanup.policy` lacks `delete`, or its `retention.bytes` is negative (-1, unlimited).
 */
export function retentionMaxBytes(configs: Readonly<Record<string, string>>, broker: BrokerConfig): number | null {
  if (!deletes(configs, broker)) return null;
  const maxBytes = Number(effectiveTopicConfig('retention.bytes', configs, broker));
  return maxBytes < 0 ? null : maxBytes;
}

/** A topic's retention limits at `nowMs`, or null when it keeps everything. */
export function retentionLimits(configs: Readonly<Record<string, string>>, broker: BrokerConfig, nowMs: number): RetentionLimits | null {
  const cutoffMs = retentionCutoffMs(configs, broker, nowMs);
  const maxBytes = retentionMaxBytes(configs, broker);
  if (cutoffMs === null && maxBytes === null) return null;
  const limits: RetentionLimits = {};
  if (cutoffMs !== null) limits.cutoffMs = cutoffMs;
  if (maxBytes !== null) limits.maxBytes = maxBytes;
  return limits;
}

/** Whether a topic's `cleanup.policy` contains `delete`. */
function deletes(configs: Readonly<Record<string, string>>, broker: BrokerConfig): boolean {
  return effectiveTopicConfig('cleanup.policy', configs, broker)
    .split(',')
    .some((p) => p.trim() === 'delete');
}

/** What the job is given: where topics, leadership and the partition log come from. */
export interface RetentionJobOptions {
  topics: { all(): Promise<readonly RetentionTopic[]> };
  /** Whether this broker handles a partition: it is the partition's leader hint. */
  leads(topicId: string, partition: number, replicationFactor: number): boolean;
  log: { applyRetention(ref: PartitionRef, limits: RetentionLimits): Promise<RetentionOutcome> };
  /** For topic config defaults (`--log-retention-ms`, `--log-retention-bytes`). */
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
  limits: RetentionLimits;
}

/** The periodic retention job of one broker. Start it once the broker knows its node id. */
export class RetentionJob extends PeriodicJob {
  readonly #opts: RetentionJobOptions;
  readonly #concurrency: number;
  readonly #now: () => number;
  #cycles = 0;
  #advances = 0;

  constructor(opts: RetentionJobOptions) {
    super(opts.intervalMs, 'retention');
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? DEFAULT_RETENTION_CONCURRENCY);
    this.#now = opts.now ?? Date.now;
  }

  stats(): RetentionStats {
    return { cycles: this.#cycles, logStartAdvances: this.#advances };
  }


  /**
   * One cycle: applies retention to every partition this broker leads on a topic that
   * deletes by time or size. Never rejects: a failure is logged once per cycle (with how many
   * partitions failed) and the partitions are tried again next cycle.
   */
  override async runOnce(): Promise<void> {
    const nowMs = this.#now();
    let topics: readonly RetentionTopic[];
    try {
      topics = await this.#opts.topics.all();
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'retention could not list topics; retrying next cycle');
      return;
    }
    const due: Due[] = [];
    for (const t of topics) {
      const limits = retentionLimits(t.configs, this.#opts.broker, nowMs);
      if (limits === null) continue;
      for (let p = 0; p < t.partitions; p++) {
        if (this.#opts.leads(t.topicId, p, t.replicationFactor)) due.push({ topic: t.name, ref: { topicId: t.topicId, partition: p }, limits });
      }
    }

    await eachPartition(due, { concurrency: this.#concurrency, stopped: () => this.stopped, log: this.log, failed: 'retention could not be applied to some partitions; retrying next cycle' }, (d) => this.#applyOne(d));
    if (!this.stopped) this.#cycles++;
  }

  async #applyOne(d: Due): Promise<void> {
    const { advanced, logStart } = await this.#opts.log.applyRetention(d.ref, d.limits);
    if (!advanced) return;
    this.#advances++;
    this.log?.debug({ topic: d.topic, partition: d.ref.partition, logStart }, 'retention moved the log start');
  }
}
