/**
 * Topic metadata in Redis (`{strata}:topics`, `{strata}:topic:<id>`), with a per-broker cache
 * invalidated over pub/sub when any broker creates, deletes or changes a topic, and refreshed
 * on a short timer as a backstop for missed messages.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCode, ZERO_UUID } from '../../wire/index.js';
import { ScriptRunner, mapRedisError, redisCall } from '../coordination/redis.js';
import type { Logger } from '../observability/logger.js';
import { GLOBAL_KEYS } from './keys.js';
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
   * while its name still maps to this id: creation writes the details before reserving the
   * name, so details without the name are a creation in progress or one that lost a race.
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
   * Creates a topic. Name reservation is one HSETNX, so two brokers creating the same name
   * concurrently see exactly one success and one TOPIC_ALREADY_EXISTS.
   */
  async create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly = false,
  ): Promise<TopicResult> {
    const fail = (errorCode: number, errorMessage: string): TopicResult => ({ errorCode, errorMessage, topic: null });
    const nameProblem = topicNameProblem(name);
    if (nameProblem) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
    if (!Number.isInteger(partitions) || partitions < 1) return fail(ErrorCode.INVALID_PARTITIONS, `partition count ${partitions} must be at least 1`);
    if (partitions > 100000) return fail(ErrorCode.INVALID_PARTITIONS, `partition count ${partitions} is over the limit of 100000`);
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > 32767) {
      return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${replicationFactor} must be from 1 to 32767`);
    }
    for (const [k, v] of Object.entries(configs)) {
      const problem = validateTopicConfig(k, v);
      if (problem) return fail(ErrorCode.INVALID_CONFIG, problem);
    }
    const existing = await this.#redis.hexists(GLOBAL_KEYS.topics, name);
    if (existing) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${name}" already exists`);
    const topic: TopicInfo = { name, topicId: newTopicId(), partitions, replicationFactor, configs: { ...configs } };
    if (validateOnly) return { errorCode: ErrorCode.NONE, errorMessage: null, topic };
    // Write the topic's hash first: a name that resolves always has its details.
    const fields: Record<string, string> = { name, partitions: String(partitions), rf: String(replicationFactor), createdAt: String(Date.now()) };
    for (const [k, v] of Object.entries(configs)) fields[CONFIG_PREFIX + k] = v;
    await this.#redis.hset(GLOBAL_KEYS.topic(topic.topicId), fields);
    const reserved = await this.#redis.hsetnx(GLOBAL_KEYS.topics, name, topic.topicId);
    if (reserved === 0) {
      await this.#redis.del(GLOBAL_KEYS.topic(topic.topicId));
      return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${name}" already exists`);
    }
    await this.#announce(topic.topicId);
    return { errorCode: ErrorCode.NONE, errorMessage: null, topic };
  }

  /**
   * Deletes a topic's metadata; the caller removes partition state. The name entry is removed
   * only while it still names this topic, so a topic re-created under the name meanwhile stays.
   */
  async delete(topic: TopicInfo): Promise<void> {
    await this.#scripts.run({ script: 'delete-topic', keys: [GLOBAL_KEYS.topics, GLOBAL_KEYS.topic(topic.topicId)], args: [topic.name, topic.topicId] });
    await this.#announce(topic.topicId);
  }

  /**
   * Raises a topic's partition count to `count`, atomically and never lowering it, and returns
   * the count found before: 0 when the topic was deleted meanwhile (nothing written), or ≥
   * `count` when a concurrent request got there first (nothing written either).
   */
  async raisePartitionCount(topic: TopicInfo, count: number): Promise<number> {
    const before = Number(await this.#scripts.run({ script: 'raise-partitions', keys: [GLOBAL_KEYS.topic(topic.topicId)], args: [count] }));
    if (before > 0 && before < count) await this.#announce(topic.topicId);
    return before;
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
