/**
 * Broker membership: each broker registers itself in Redis and renews a lease every
 * heartbeat; the live set is every broker whose lease has not expired. Node ids come from a
 * Redis counter unless configured.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { GLOBAL_KEYS } from '../coordination/keys.js';

/** A live broker as Metadata presents it. */
export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  zone: string | null;
  rack: string | null;
}

export interface RegistryOptions {
  nodeId: number | null;
  host: string;
  port: number;
  zone: string | null;
  rack: string | null;
  sessionTimeoutMs: number;
  heartbeatMs: number;
}

export class BrokerRegistry {
  readonly #redis: Redis;
  readonly #log: Logger;
  readonly #opts: RegistryOptions;
  #nodeId = -1;
  #live: BrokerInfo[] = [];
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;

  constructor(redis: Redis, opts: RegistryOptions, log: Logger) {
    this.#redis = redis;
    this.#opts = opts;
    this.#log = log;
  }

  get nodeId(): number {
    return this.#nodeId;
  }

  get self(): BrokerInfo {
    return { nodeId: this.#nodeId, host: this.#opts.host, port: this.#opts.port, zone: this.#opts.zone, rack: this.#opts.rack };
  }

  /** Live brokers sorted by node id (this broker always among them). */
  live(): BrokerInfo[] {
    return this.#live;
  }

  /** Allocates a node id if needed, registers, and starts heartbeats. */
  async register(): Promise<number> {
    this.#nodeId = this.#opts.nodeId ?? (await this.#redis.incr(GLOBAL_KEYS.nodeIdCounter));
    const info = this.self;
    await this.#redis
      .multi()
      .hset(GLOBAL_KEYS.broker(info.nodeId), {
        host: info.host,
        port: String(info.port),
        zone: info.zone ?? '',
        rack: info.rack ?? '',
        startedAt: String(Date.now()),
      })
      .zadd(GLOBAL_KEYS.brokers, Date.now() + this.#opts.sessionTimeoutMs, String(info.nodeId))
      .exec();
    await this.refresh();
    this.#timer = setInterval(() => {
      if (this.#beating) return;
      this.#beating = this.#heartbeat().finally(() => (this.#beating = null));
    }, this.#opts.heartbeatMs);
    this.#timer.unref();
    return this.#nodeId;
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.#redis.zadd(GLOBAL_KEYS.brokers, Date.now() + this.#opts.sessionTimeoutMs, String(this.#nodeId));
      await this.refresh();
    } catch (err) {
      // Keep serving with the last known live set; Redis may be restarting.
      this.#log.warn({ err: (err as Error).message }, 'broker heartbeat failed');
    }
  }

  /** Re-reads the live set from Redis. */
  async refresh(): Promise<void> {
    const now = Date.now();
    const ids = await this.#redis.zrangebyscore(GLOBAL_KEYS.brokers, now, '+inf');
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(GLOBAL_KEYS.broker(Number(id)));
    const rows = (await pipeline.exec()) ?? [];
    const live: BrokerInfo[] = [];
    ids.forEach((id, i) => {
      const h = rows[i]?.[1] as Record<string, string> | undefined;
      if (!h || !h.host) return;
      live.push({ nodeId: Number(id), host: h.host, port: Number(h.port), zone: h.zone || null, rack: h.rack || null });
    });
    if (!live.some((b) => b.nodeId === this.#nodeId)) live.push(this.self);
    live.sort((a, b) => a.nodeId - b.nodeId);
    this.#live = live;
  }

  /** Stops heartbeats and removes this broker from the live set. */
  async deregister(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating;
    if (this.#nodeId < 0) return;
    await this.#redis.multi().zrem(GLOBAL_KEYS.brokers, String(this.#nodeId)).del(GLOBAL_KEYS.broker(this.#nodeId)).exec();
  }
}
