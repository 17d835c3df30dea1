/**
 * Topic metadata in Redis (`{strata}:topics`, `{strata}:topic:<id>`), with a per-broker cache
 * invalidated over pub/sub when any broker creates, deletes or changes a topic, and refreshed
 * on a short timer as a backstop for missed messages. The cluster's partition count
 * (`{strata}:partitions`, checked against `--max-partitions`) changes only in the scripts
 * that create a topic, raise its partitions or delete it, together with the topic.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCode, ZERO_UUID } from '../../wire/index.js';
import { ScriptRunner, mapRedisError, redisCall } from '../coordination/redis.js';
import { BrokerError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { GLOBAL_KEYS } from '../coordination/keys.js';
import { validateTopicConfig } from './topic-configs.js';

/** One topic as the broker sees it. */
export interface TopicInfo {
  name: string;
  /** Kafka UUID in base64url form. */
  topicId: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level overrides only; defaults come from topic-configs.ts. */
  configs: Record<string, string>;
}

/** The outcome of an admin operation on one topic. */
export interface TopicResult {
  errorCode: number;
  errorMessage: string | null;
  topic: TopicInfo | null;
}

/** The partition limits a new topic or a partition increase must respect (broker config). */
export interface PartitionLimits {
  /** Most partitions one topic may have (`--max-partitions-per-topic`). */
  perTopic: number;
  /** Most partitions the cluster may have over all topics (`--max-partitions`). */
  cluster: number;
}

/** The outcome of {@link TopicStore.raisePartitionCount}. */
export type RaiseResult =
  /** Raised (or, checking only, it would be); `before` is the count it replaced. */
  | { outcome: 'ok'; before: number }
  /** The topic was deleted meanwhile; nothing written. */
  | { outcome: 'gone' }
  /** The count is already `before` ≥ the one asked for (a concurrent increase won); nothing written. */
  | { outcome: 'not-higher'; before: number }
  /** The cluster holds `clusterPartitions`, and the increase would take it over the limit; nothing written. */
  | { outcome: 'over-cluster-limit'; before: number; clusterPartitions: number };

/** The message for a topic over `--max-partitions-per-topic`. */
export function perTopicLimitMessage(count: number, limit: number): string {
  return `partition count ${count} is over the limit of ${limit} per topic; ask for at most ${limit} or raise --max-partitions-per-topic`;
}

/** The message for a change (`what`, e.g. `topic "t"`) that would take the cluster over `--max-partitions`. */
export function clusterLimitMessage(what: string, adding: number, clusterPartitions: number, limit: number): string {
  return `${what} would bring the cluster from ${clusterPartitions} to ${clusterPartitions + adding} partitions, over the limit of ${limit}; delete topics or raise --max-partitions`;
}

const CONFIG_PREFIX = 'c:';
const MAX_NAME_LENGTH = 249;

/** Kafka's rule for topic names: 1–249 of [a-zA-Z0-9._-], and not "." or "..". */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return `topic name "${name}" is not allowed`;
  if (name.length > MAX_NAME_LENGTH) return `topic name is ${name.length} characters; the limit is ${MAX_NAME_LENGTH}`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return `topic name "${name}" has characters other than a-z A-Z 0-9 . _ -`;
  return null;
}

/** A fresh random topic id: 16 random bytes, never the all-zero UUID. */
function newTopicId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (id !== ZERO_UUID) return id;
  }
}

function parseTopic(topicId: string, h: Record<string, string>): TopicInfo | null {
  if (!h.name) return null;
  const configs: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (k.startsWith(CONFIG_PREFIX)) configs[k.slice(CONFIG_PREFIX.length)] = v;
  return { name: h.name, topicId, partitions: Number(h.partitions), replicationFactor: Number(h.rf), configs };
}

const CACHE_TTL_MS = 2000;

export class TopicStore {
  readonly #redis: Redis;
  readonly #scripts: ScriptRunner;
  readonly #log: Logger;
  #byName = new Map<string, TopicInfo>();
  #byId = new Map<string, TopicInfo>();
  #loadedAt = 0;
  #loading: Promise<void> | null = null;

  constructor(redis: Redis, log: Logger) {
    this.#redis = redis;
    this.#scripts = new ScriptRunner(redis);
    this.#log = log;
  }

  /** Drops the cache so the next lookup reads Redis (called on a topics-changed message). */
  invalidate(): void {
    this.#loadedAt = 0;
  }

  /**
   * Refreshes the cache when it is older than its TTL (or when forced). When Redis cannot be
   * read and a cache exists, the cached view is kept and used — topics rarely change, and
   * serving produce and fetch for known topics through a Redis hiccup beats failing them; the
   * error surfaces only when there is nothing cached to answer from.
   */
  async #ensureLoaded(force = false): Promise<void> {
    if (!force && Date.now() - this.#loadedAt < CACHE_TTL_MS) return;
    this.#loading ??= this.#load().finally(() => (this.#loading = null));
    try {
      await this.#loading;
    } catch (err) {
      // A forced reload decides a cache miss; it must not turn "cannot tell" into "no such topic".
      if (force || !this.#everLoaded) throw err;
      this.#log.debug({ err: (err as Error).message }, 'serving topics from cache while Redis is unavailable');
    }
  }

  #everLoaded = false;

  async #load(): Promise<void> {
    try {
      await this.#read();
      this.#everLoaded = true;
    } catch (err) {
      throw mapRedisError(err, 'read topics');
    }
  }

  async #read(): Promise<void> {
    const started = Date.now();
    const names = await this.#redis.hgetall(GLOBAL_KEYS.topics);
    const entries = Object.entries(names);
    const pipeline = this.#redis.pipeline();
    for (const [, id] of entries) pipeline.hgetall(GLOBAL_KEYS.topic(id));
    const rows = (await pipeline.exec()) ?? [];
    const byName = new Map<string, TopicInfo>();
    const byId = new Map<string, TopicInfo>();
    entries.forEach(([name, id], i) => {
      const t = parseTopic(id, (rows[i]?.[1] as Record<string, string>) ?? {});
      if (t && t.name === name) {
        byName.set(name, t);
        byId.set(id, t);
      }
    });
    this.#byName = byName;
    this.#byId = byId;
    this.#loadedAt = started;
  }

  /** All topics, sorted by name. */
  async all(): Promise<TopicInfo[]> {
    await this.#ensureLoaded();
    return [...this.#byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Every topic, read straight from Redis now: not from the cache, nor from a load that began
   * earlier. Object garbage collection needs a list taken after its scan began, which includes
   * every topic created before; unlike the cache's load, a failed read of any topic fails the
   * whole call rather than leaving that topic out.
   */
  async readAll(): Promise<TopicInfo[]> {
    const names = await redisCall('read topics', () => this.#redis.hgetall(GLOBAL_KEYS.topics));
    const entries = Object.entries(names);
    const pipeline = this.#redis.pipeline();
    for (const [, id] of entries) pipeline.hgetall(GLOBAL_KEYS.topic(id));
    const rows = (await redisCall('read topics', () => pipeline.exec())) ?? [];
    const out: TopicInfo[] = [];
    entries.forEach(([name, id], i) => {
      const [err, h] = rows[i] ?? [new Error(`no reply for topic ${id}`)];
      if (err) throw mapRedisError(err, 'read topics');
      const t = parseTopic(id, h as Record<string, string>);
      if (t && t.name === name) out.push(t);
    });
    return out;
  }

  /** Looks a topic up by name, reading Redis on a cache miss (another broker may have created it). */
  async byName(name: string): Promise<TopicInfo | null> {
    await this.#ensureLoaded();
    const hit = this.#byName.get(name);
    if (hit) return hit;
    await this.#ensureLoaded(true);
    return this.#byName.get(name) ?? null;
  }

  async byId(topicId: string): Promise<TopicInfo | null> {
    await this.#ensureLoaded();
    const hit = this.#byId.get(topicId);
    if (hit) return hit;
    await this.#ensureLoaded(true);
    return this.#byId.get(topicId) ?? null;
  }

  /**
   * Reads one topic by name straight from Redis, bypassing the cache. Admin changes (partition
   * counts, configs, deletion) decide on what is stored now, not on a view that may be a
   * couple of seconds old when a topics-changed message was missed.
   */
  async readByName(name: string): Promise<TopicInfo | null> {
    const topicId = await redisCall('read topic', () => this.#redis.hget(GLOBAL_KEYS.topics, name));
    if (topicId === null) return null;
    const t = await this.readById(topicId);
    return t !== null && t.name === name ? t : null;
  }

  /**
   * Reads one topic by id straight from Redis (see {@link readByName}). A topic counts only
   * while its name still maps to this id: details without the name are what an older
   * broker's creation leaves when it is interrupted or beaten to the name (creation is now
   * one script).
   */
  async readById(topicId: string): Promise<TopicInfo | null> {
    const h = await redisCall('read topic', () => this.#redis.hgetall(GLOBAL_KEYS.topic(topicId)));
    const t = parseTopic(topicId, h);
    if (t === null) return null;
    const mapped = await redisCall('read topic', () => this.#redis.hget(GLOBAL_KEYS.topics, t.name));
    return mapped === topicId ? t : null;
  }

  /** The cached topic for an id without a Redis round trip (hot paths), or undefined. */
  cachedById(topicId: string): TopicInfo | undefined {
    return this.#byId.get(topicId);
  }

  async #announce(topicId: string): Promise<void> {
    this.invalidate();
    try {
      await this.#redis.publish(GLOBAL_KEYS.topicsChanged, topicId);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not announce a topic change; other brokers see it within seconds');
    }
  }

  /**
   * Creates a topic, or with `validateOnly` checks that it could be created. One script
   * reserves the name, writes the details and adds the partitions to the cluster's count, so
   * two brokers creating the same name see exactly one success and one TOPIC_ALREADY_EXISTS,
   * and two creations racing for the last partitions under `limits.cluster` cannot both pass.
   * Over `limits.perTopic` is INVALID_PARTITIONS; over `limits.cluster` is POLICY_VIOLATION,
   * what Kafka answers for its own partition limits (KRaft's cap on partitions per request).
   */
  async create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    limits: PartitionLimits,
    validateOnly = false,
  ): Promise<TopicResult> {
    const fail = (errorCode: number, errorMessage: string): TopicResult => ({ errorCode, errorMessage, topic: null });
    const nameProblem = topicNameProblem(name);
    if (nameProblem) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
    if (!Number.isInteger(partitions) || partitions < 1) return fail(ErrorCode.INVALID_PARTITIONS, `partition count ${partitions} must be at least 1`);
    if (partitions > limits.perTopic) return fail(ErrorCode.INVALID_PARTITIONS, perTopicLimitMessage(partitions, limits.perTopic));
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > 32767) {
      return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${replicationFactor} must be from 1 to 32767`);
    }
    for (const [k, v] of Object.entries(configs)) {
      const problem = validateTopicConfig(k, v);
      if (problem) return fail(ErrorCode.INVALID_CONFIG, problem);
    }
    const topic: TopicInfo = { name, topicId: newTopicId(), partitions, replicationFactor, configs: { ...configs } };
    const fields: string[] = ['name', name, 'partitions', String(partitions), 'rf', String(replicationFactor), 'createdAt', String(Date.now())];
    for (const [k, v] of Object.entries(configs)) fields.push(CONFIG_PREFIX + k, v);
    const [status, clusterPartitions] = await this.#counted('create-topic', {
      keys: [GLOBAL_KEYS.topics, GLOBAL_KEYS.topic(topic.topicId), GLOBAL_KEYS.partitionCount],
      args: [name, topic.topicId, partitions, limits.cluster, validateOnly ? '1' : '0', ...fields],
    });
    if (status === 'exists') return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${name}" already exists`);
    if (status !== 'ok' && status !== 'limit') throw new BrokerError(`create-topic answered "${status}"`, ErrorCode.UNKNOWN_SERVER_ERROR, false);
    if (status === 'limit') return fail(ErrorCode.POLICY_VIOLATION, clusterLimitMessage(`topic "${name}"`, partitions, clusterPartitions, limits.cluster));
    if (!validateOnly) await this.#announce(topic.topicId);
    return { errorCode: ErrorCode.NONE, errorMessage: null, topic };
  }

  /**
   * Runs one of the scripts that change the cluster's partition count. Such a script answers
   * `uncounted` without writing when the count is missing (a cluster from before the count);
   * then the count is started from the topics and the script runs again.
   */
  async #counted(script: string, call: { keys: string[]; args: (string | number)[] }): Promise<[string, number, number]> {
    for (let attempt = 0; ; attempt++) {
      const reply = (await this.#scripts.run({ script, ...call })) as [string, number, number?];
      if (reply[0] !== 'uncounted') return [reply[0], Number(reply[1]), Number(reply[2] ?? 0)];
      // The count vanished again between starting it and the retry (deleted by hand, lost in
      // a failover, evicted): fail retriably rather than loop or report a change not made.
      if (attempt >= 2) throw new BrokerError(`the cluster partition count ${GLOBAL_KEYS.partitionCount} keeps disappearing from Redis; check its eviction policy`, ErrorCode.REQUEST_TIMED_OUT, true);
      const total = await this.#scripts.run({ script: 'count-partitions', keys: [GLOBAL_KEYS.topics, GLOBAL_KEYS.partitionCount], args: [GLOBAL_KEYS.topicPrefix] });
      this.#log.info({ partitions: Number(total) }, 'started the cluster partition count from the existing topics');
    }
  }

  /**
   * Deletes a topic's metadata; the caller removes partition state. The name entry is removed
   * only while it still names this topic, so a topic re-created under the name meanwhile stays.
   */
  async delete(topic: TopicInfo): Promise<void> {
    await this.#scripts.run({ script: 'delete-topic', keys: [GLOBAL_KEYS.topics, GLOBAL_KEYS.topic(topic.topicId), GLOBAL_KEYS.partitionCount], args: [topic.name, topic.topicId] });
    await this.#announce(topic.topicId);
  }

  /**
   * Raises a topic's partition count to `count`, atomically, never lowering it, and only
   * while the cluster stays within `maxPartitions` (checked and counted in the same script, so
   * concurrent increases and creations cannot overshoot it together). With `validateOnly`
   * the same checks run and nothing is written.
   */
  async raisePartitionCount(topic: TopicInfo, count: number, maxPartitions: number, validateOnly = false): Promise<RaiseResult> {
    const [status, before, clusterPartitions] = await this.#counted('raise-partitions', {
      keys: [GLOBAL_KEYS.topic(topic.topicId), GLOBAL_KEYS.partitionCount],
      args: [count, maxPartitions, validateOnly ? '1' : '0'],
    });
    switch (status) {
      case 'gone':
        return { outcome: 'gone' };
      case 'not-higher':
        return { outcome: 'not-higher', before };
      case 'limit':
        return { outcome: 'over-cluster-limit', before, clusterPartitions };
      case 'ok':
        if (!validateOnly) await this.#announce(topic.topicId);
        return { outcome: 'ok', before };
      default:
        throw new BrokerError(`raise-partitions answered "${status}"`, ErrorCode.UNKNOWN_SERVER_ERROR, false);
    }
  }

  /** Replaces (null value deletes) topic config overrides; values must be validated already. */
  async setConfigs(topic: TopicInfo, changes: Record<string, string | null>, replaceAll: boolean): Promise<void> {
    const m = this.#redis.multi();
    if (replaceAll) {
      const stale = Object.keys(topic.configs).filter((k) => !(k in changes));
      if (stale.length) m.hdel(GLOBAL_KEYS.topic(topic.topicId), ...stale.map((k) => CONFIG_PREFIX + k));
    }
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) m.hdel(GLOBAL_KEYS.topic(topic.topicId), CONFIG_PREFIX + k);
      else m.hset(GLOBAL_KEYS.topic(topic.topicId), CONFIG_PREFIX + k, v);
    }
    await m.exec();
    await this.#announce(topic.topicId);
  }
}
