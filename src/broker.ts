/**
 * One broker process: the Kafka listener, the services handlers use, and the lifecycle
 * (start: connect Redis, register, listen; stop: drain, flush, deregister).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { BrokerRegistry, type BrokerInfo } from './cluster/registry.js';
import { rendezvousOrder } from './cluster/routing.js';
import { GLOBAL_KEYS } from './cluster/keys.js';
import { TopicStore } from './cluster/topics.js';
import type { BrokerConfig } from './config.js';
import { HIGH_WATERMARK_CHANNEL } from './coordination/keys.js';
import { PartitionState, type PartitionRef } from './coordination/partition-state.js';
import { createCommandClient, createSubscriberClient, waitReady } from './coordination/redis.js';
import { GroupCoordinator } from './groups/coordinator.js';
import { HANDLERS } from './handlers/index.js';
import type { Handler } from './handlers/handler.js';
import { ByteLru } from './log/cache.js';
import type { SegmentPieces } from './log/segment.js';
import { IngestBuffer } from './log/ingest.js';
import { HighWatermarkNotifier, partitionKey } from './log/notifier.js';
import { LogReader } from './log/reader.js';
import { findInRun, type OffsetAndTimestamp } from './log/timestamps.js';
import type { Logger } from './observability/logger.js';
import { Connection } from './server/connection.js';
import { ConnectionLimits } from './server/connection-limits.js';
import { RequestBudget } from './server/request-budget.js';
import { openObjectStore, type ObjectStore } from './storage/index.js';
import { TransactionCoordinator } from './txn/coordinator.js';
import { ProducerIdAllocator } from './txn/producer-ids.js';
import type { Redis } from 'ioredis';

export class Broker {
  readonly config: BrokerConfig;
  log: Logger;
  readonly handlers: ReadonlyMap<number, Handler>;
  readonly redis: Redis;
  readonly subscriber: Redis;
  readonly store: ObjectStore;
  readonly topics: TopicStore;
  readonly registry: BrokerRegistry;
  readonly partitions: PartitionState;
  readonly notifier = new HighWatermarkNotifier();
  readonly writeCache: ByteLru<SegmentPieces>;
  readonly blockCache: ByteLru;
  readonly reader: LogReader;
  readonly producerIds: ProducerIdAllocator;
  readonly groups: GroupCoordinator;
  readonly txns: TransactionCoordinator;
  /** Broker-wide bound on request bytes being received or waiting to be handled. */
  readonly requestBudget: RequestBudget;
  #ingest: IngestBuffer | null = null;
  #server: Server | null = null;
  #http: HttpServer | null = null;
  readonly #connections = new Set<Connection>();
  readonly #limits: ConnectionLimits;
  #draining = false;
  #ready = false;

  constructor(config: BrokerConfig, log: Logger, handlers: readonly Handler[] = HANDLERS) {
    this.config = config;
    this.log = log;
    this.handlers = new Map(handlers.map((h) => [h.apiKey, h]));
    this.requestBudget = new RequestBudget(config.queuedMaxRequestBytes);
    this.#limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerIp);
    // Connection errors repeat on every reconnect attempt while Redis is down; one line per
    // outage is what an operator needs, and requests report their own failures.
    let redisDown = false;
    const onRedisError = (err: Error): void => {
      if (redisDown) return;
      redisDown = true;
      this.log.warn({ err: err.message }, 'Redis connection error; reconnecting');
    };
    const redisOptions = { onError: onRedisError, connectionName: 'strata-broker' };
    this.redis = createCommandClient(config.redisUrl, redisOptions);
    this.subscriber = createSubscriberClient(config.redisUrl, redisOptions);
    this.redis.on('ready', () => {
      if (redisDown) this.log.info('Redis connection restored');
      redisDown = false;
    });
    this.store = openObjectStore(config.storageUrl);
    this.topics = new TopicStore(this.redis, log);
    this.partitions = new PartitionState(this.redis, { producerIdExpirationMs: config.producerIdExpirationMs });
    this.writeCache = new ByteLru<SegmentPieces>(config.writeCacheBytes);
    this.blockCache = new ByteLru(config.blockCacheBytes);
    this.reader = new LogReader(this.store, this.partitions, this.writeCache, this.blockCache, config.blockSizeBytes);
    this.producerIds = new ProducerIdAllocator(this.redis);
    this.registry = new BrokerRegistry(
      this.redis,
      {
        nodeId: config.nodeId,
        host: config.advertise.host,
        port: config.advertise.port,
        zone: config.zone,
        rack: config.rack,
        sessionTimeoutMs: config.brokerSessionTimeoutMs,
        heartbeatMs: config.brokerHeartbeatMs,
      },
      log,
    );
    this.groups = new GroupCoordinator(
      this.redis,
      this.registry,
      {
        initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
        maxSize: config.groupMaxSize,
        maxMemberMetadataBytes: config.groupMaxMemberMetadataBytes,
        maxMetadataBytes: config.groupMaxMetadataBytes,
        leaseMs: config.coordinatorLeaseMs,
      },
      log,
    );
    this.txns = new TransactionCoordinator({
      redis: this.redis,
      registry: this.registry,
      topics: this.topics,
      partitions: this.partitions,
      producerIds: this.producerIds,
      ingest: () => this.ingest,
      leaseMs: config.coordinatorLeaseMs,
      maxTimeoutMs: config.transactionMaxTimeoutMs,
      log,
    });
  }

  /** True once SIGTERM (or stop) began: long-polls return, no new connections. */
  get draining(): boolean {
    return this.#draining;
  }

  get nodeId(): number {
    return this.registry.nodeId;
  }

  get ingest(): IngestBuffer {
    if (!this.#ingest) throw new Error('broker not started');
    return this.#ingest;
  }

  /** The address the Kafka listener is bound to (useful with port 0). */
  get listenPort(): number {
    const addr = this.#server?.address();
    return addr && typeof addr === 'object' ? addr.port : this.config.listen.port;
  }

  get httpPort(): number | null {
    const addr = this.#http?.address();
    return addr && typeof addr === 'object' ? addr.port : null;
  }

  /** Live brokers a client in `zone` should see: those of its zone when there are any. */
  brokersFor(zone: string | null): BrokerInfo[] {
    const live = this.registry.live();
    if (zone === null) return live;
    const inZone = live.filter((b) => b.zone === zone);
    return inZone.length > 0 ? inZone : live;
  }

  /** Replicas of a partition for a client in `zone`, leader hint first. */
  replicasFor(topicId: string, partition: number, replicationFactor: number, zone: string | null): number[] {
    const ids = this.brokersFor(zone).map((b) => b.nodeId);
    return rendezvousOrder(topicId, partition, ids).slice(0, Math.max(1, Math.min(replicationFactor, ids.length)));
  }

  /** The node id Metadata names as controller: the lowest live one a client can see. */
  controllerId(zone: string | null): number {
    return this.brokersFor(zone)[0]?.nodeId ?? this.nodeId;
  }

  /** The offset and timestamp of the record with the largest timestamp, or null when empty. */
  async maxTimestampOffset(ref: PartitionRef): Promise<OffsetAndTimestamp | null> {
    const run = await this.partitions.maxTimestampRun(ref);
    return run ? findInRun(this.reader, run, run.maxTimestamp, true) : null;
  }

  async start(): Promise<void> {
    await Promise.all([waitReady(this.redis), waitReady(this.subscriber)]);
    const nodeId = await this.registry.register();
    this.log = this.log.child({ nodeId });
    this.groups.start();
    this.txns.start();
    this.#ingest = new IngestBuffer(this.store, this.partitions, this.writeCache, { nodeId, flushMs: this.config.flushMs, flushBytes: this.config.flushBytes }, this.log);
    this.#ingest.onCommit((updates) => {
      this.notifier.notify(updates.map((u) => partitionKey(u.ref)));
      this.partitions.publishHighWatermarks(updates).catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'could not announce new high watermarks; remote long-polls wake at their deadline');
      });
    });
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === HIGH_WATERMARK_CHANNEL) this.notifier.onMessage(message);
      else if (channel === GLOBAL_KEYS.topicsChanged) this.topics.invalidate();
    });
    await this.subscriber.subscribe(HIGH_WATERMARK_CHANNEL, GLOBAL_KEYS.topicsChanged);

    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.listen.port, this.config.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (this.config.http) await this.#startHttp(this.config.http.host, this.config.http.port);
    this.#ready = true;
    this.log.info(
      { listen: `${this.config.listen.host}:${this.listenPort}`, advertise: `${this.config.advertise.host}:${this.config.advertise.port}`, storage: this.store.url },
      'broker started',
    );
  }

  #accept(socket: Socket): void {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    const ip = socket.remoteAddress;
    if (ip === undefined) {
      // No address: the peer has already gone.
      socket.destroy();
      return;
    }
    const refusal = this.#limits.tryOpen(ip);
    if (refusal !== null) {
      this.#limits.logRefusal(this.log, ip, refusal);
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this, this.handlers, (c) => {
      this.#connections.delete(c);
      this.#limits.closed(ip);
    });
    this.#connections.add(conn);
  }

  async #startHttp(host: string, port: number): Promise<void> {
    const http = createHttpServer((req, res) => {
      const send = (status: number, body: string): void => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(body + '\n');
      };
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metricsText());
      } else if (req.url === '/healthz') send(200, 'ok');
      else if (req.url === '/readyz') send(this.#ready && !this.#draining && this.redis.status === 'ready' ? 200 : 503, this.#ready && !this.#draining ? 'ready' : 'not ready');
      else send(404, 'not found');
    });
    this.#http = http;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  }

  /** Counters in the Prometheus text format (served on /metrics). */
  metricsText(): string {
    const store = this.store.stats();
    const cpu = process.cpuUsage();
    const wc = this.writeCache.stats();
    const bc = this.blockCache.stats();
    const lines: [string, string, number][] = [
      ['strata_object_store_puts_total', 'counter', store.puts],
      ['strata_object_store_gets_total', 'counter', store.gets],
      ['strata_object_store_bytes_written_total', 'counter', store.bytesWritten],
      ['strata_object_store_bytes_read_total', 'counter', store.bytesRead],
      ['strata_object_store_retries_total', 'counter', store.retries],
      ['strata_object_store_errors_total', 'counter', store.errors],
      ['strata_segments_flushed_total', 'counter', this.#ingest?.flushCount ?? 0],
      ['strata_ingest_pending_bytes', 'gauge', this.#ingest?.pendingBytes ?? 0],
      ['strata_write_cache_bytes', 'gauge', wc.bytes],
      ['strata_block_cache_bytes', 'gauge', bc.bytes],
      ['strata_block_cache_hits_total', 'counter', bc.hits],
      ['strata_block_cache_misses_total', 'counter', bc.misses],
      ['strata_connections', 'gauge', this.#connections.size],
      ['strata_connections_refused_total', 'counter', this.#limits.refused],
      ['strata_request_memory_bytes', 'gauge', this.requestBudget.inUse],
      ['strata_request_memory_limit_bytes', 'gauge', this.requestBudget.capacity],
      ['strata_request_memory_waiting_connections', 'gauge', this.requestBudget.waiting],
      ['strata_groups_owned', 'gauge', this.groups.ownedGroups().length],
      ['process_cpu_seconds_total', 'counter', (cpu.user + cpu.system) / 1e6],
      ['process_resident_memory_bytes', 'gauge', process.memoryUsage().rss],
    ];
    return lines.map(([name, type, value]) => `# TYPE ${name} ${type}\n${name} ${value}\n`).join('');
  }

  /**
   * Drains and stops: stop accepting, let in-flight requests finish (long-polls return at
   * once), flush and commit the ingest buffer, deregister, close clients.
   */
  async stop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#ready = false;
    this.log.info('draining');
    this.notifier.close();
    const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    for (const c of this.#connections) c.stopReading();
    // Answer waiting joins (NOT_COORDINATOR, so members rediscover the coordinator) and hand
    // groups over at once instead of letting their leases run out.
    await this.groups.stop();
    await this.txns.stop();
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    await this.#ingest?.drain();
    while ([...this.#connections].some((c) => c.inflight > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      await this.#ingest?.drain();
    }
    // Give the last responses a moment to reach the socket before closing.
    await new Promise((r) => setTimeout(r, 20));
    for (const c of [...this.#connections]) c.close('shutdown');
    await closed;
    try {
      await this.registry.deregister();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not deregister; the registration expires by itself');
    }
    await new Promise<void>((resolve) => (this.#http ? this.#http.close(() => resolve()) : resolve()));
    this.subscriber.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.store.close();
    this.log.info('stopped');
  }
}
