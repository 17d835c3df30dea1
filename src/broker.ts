/**
 * The composition root of one broker process (docs/architecture.md §2): builds the services
 * from the configuration, starts them in order (Redis, registration, coordinators, the
 * partition log, the Kafka listener, admin HTTP) and stops them draining first: no new
 * requests, coordinators handed over, ingest flushed, in-flight requests answered.
 * Nothing here handles a request: handlers see only `Services`, the listener only its limits,
 * the handler table and those services.
 */
import { BrokerRegistry } from './cluster/broker-store.js';
import { Placement } from './cluster/routing.js';
import { GLOBAL_KEYS, HIGH_WATERMARK_CHANNEL } from './coordination/keys.js';
import { TopicStore } from './cluster/topic-store.js';
import type { BrokerConfig } from './config.js';
import { createCommandClient, createSubscriberClient, waitReady } from './coordination/redis.js';
import { GroupCoordinator } from './groups/coordinator.js';
import { GroupStore } from './groups/group-store.js';
import { LeaseClient } from './coordination/lease.js';
import { HANDLERS } from './handlers/index.js';
import type { Handler } from './handlers/handler.js';
import type { Services } from './handlers/services.js';
import { PartitionLog } from './log/partition-log.js';
import { PartitionStore } from './log/partition-store.js';
import { RetentionJob } from './log/retention.js';
import { ObjectCompactionJob } from './log/object-compaction.js';
import { LogCleanerJob } from './log/log-cleaner.js';
import { OBJECT_GC_JOB, ObjectGcJob } from './log/object-gc.js';
import { ObjectGcStore } from './log/object-gc-store.js';
import { AdminHttp } from './observability/admin-http.js';
import type { Logger } from './observability/logger.js';
import { metricsText } from './observability/metrics.js';
import { KafkaListener } from './server/listener.js';
import { RequestBudget } from './server/request-budget.js';
import { CountedObjectStore, openObjectStore, type ObjectStore } from './storage/index.js';
import { TransactionCoordinator } from './txn/coordinator.js';
import { ProducerIdAllocator } from './txn/producer-id-store.js';
import { TxnStore } from './txn/txn-store.js';
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
  readonly partitionLog: PartitionLog;
  /** Applies time and size retention to the partitions this broker leads (docs/architecture.md §4.3). */
  readonly retention: RetentionJob;
  /** Rewrites small runs of the partitions this broker leads into larger objects (docs/architecture.md §4.5). */
  readonly compaction: ObjectCompactionJob;
  /** Compacts the partitions this broker leads of topics with cleanup.policy compact (docs/architecture.md §4.6). */
  readonly logCleaner: LogCleanerJob;
  /** Deletes segment objects no run index references, on one broker at a time (docs/architecture.md §4.4). */
  readonly objectGc: ObjectGcJob;
  readonly producerIds: ProducerIdAllocator;
  readonly groups: GroupCoordinator;
  readonly txns: TransactionCoordinator;
  /** Broker-wide bound on request bytes being received or waiting to be handled. */
  readonly requestBudget: RequestBudget;
  /** What handlers may use (see handlers/services.ts). */
  readonly services: Services;
  #listener: KafkaListener | null = null;
  #http: AdminHttp | null = null;
  /** Object GC's view of the store, counting its requests (LIST and DELETE). */
  readonly #gcStore: CountedObjectStore;
  #draining = false;
  #ready = false;

  constructor(config: BrokerConfig, log: Logger, handlers: readonly Handler[] = HANDLERS) {
    this.config = config;
    this.log = log;
    this.handlers = new Map(handlers.map((h) => [h.apiKey, h]));
    this.requestBudget = new RequestBudget(config.queuedMaxRequestBytes);
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
    this.#gcStore = new CountedObjectStore(this.store);
    this.topics = new TopicStore(this.redis, log);
    this.partitionLog = new PartitionLog({
      partitions: new PartitionStore(this.redis, { producerIdExpirationMs: config.producerIdExpirationMs }),
      store: this.store,
      writeCacheBytes: config.writeCacheBytes,
      blockCacheBytes: config.blockCacheBytes,
      blockSizeBytes: config.blockSizeBytes,
      maxDecompressedBatchBytes: config.maxDecompressedBatchBytes,
      flushMs: config.flushMs,
      flushBytes: config.flushBytes,
      commitDeadlineMs: config.commitDeadlineMs,
    });
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
    const leases = new LeaseClient(this.redis, config.coordinatorLeaseMs);
    this.groups = new GroupCoordinator(
      new GroupStore(this.redis),
      leases,
      this.registry,
      {
        initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
        maxSize: config.groupMaxSize,
        maxMemberMetadataBytes: config.groupMaxMemberMetadataBytes,
        maxMetadataBytes: config.groupMaxMetadataBytes,
      },
      log,
    );
    this.txns = new TransactionCoordinator({
      store: new TxnStore(this.redis),
      leases,
      registry: this.registry,
      topics: this.topics,
      log: this.partitionLog,
      producerIds: this.producerIds,
      offsets: this.groups,
      maxTimeoutMs: config.transactionMaxTimeoutMs,
      logger: log,
    });
    const registry = this.registry;
    const placement = new Placement(registry, leases);
    this.retention = new RetentionJob({
      topics: this.topics,
      // The leader hint over all live brokers (no zone): exactly one live broker takes each
      // partition, as long as the brokers agree on who is live.
      leads: (topicId, partition, rf) => placement.replicasFor(topicId, partition, rf, null)[0] === registry.nodeId,
      log: this.partitionLog,
      broker: config,
      intervalMs: config.logRetentionCheckIntervalMs,
    });
    this.compaction = new ObjectCompactionJob({
      topics: this.topics,
      // The same leader hint as retention: one live broker compacts each partition. Two for a
      // moment while membership changes is harmless: the second swap finds its runs gone.
      leads: (topicId, partition, rf) => placement.replicasFor(topicId, partition, rf, null)[0] === registry.nodeId,
      log: this.partitionLog,
      intervalMs: config.objectCompactionIntervalMs,
      minAgeMs: config.objectCompactionMinAgeMs,
      windowMs: config.objectCompactionWindowMs,
      targetBytes: config.objectCompactionTargetBytes,
    });
    this.logCleaner = new LogCleanerJob({
      topics: this.topics,
      // The same leader hint again: one live broker cleans each partition; two for a moment
      // while membership changes only make one's swaps find their runs gone.
      leads: (topicId, partition, rf) => placement.replicasFor(topicId, partition, rf, null)[0] === registry.nodeId,
      log: this.partitionLog,
      broker: config,
      intervalMs: config.logCleanerIntervalMs,
      maxKeys: config.logCleanerMaxKeys,
      targetBytes: config.objectCompactionTargetBytes,
    });
    this.objectGc = new ObjectGcJob({
      store: this.#gcStore,
      topics: this.topics,
      log: this.partitionLog,
      state: new ObjectGcStore(this.redis),
      // One broker at a time in the steady state; two during a membership change is safe (§4.4).
      runsHere: () => placement.ownsJob(OBJECT_GC_JOB),
      intervalMs: config.objectGcIntervalMs,
      graceMs: config.objectGcGraceMs,
    });
    const isDraining = (): boolean => this.#draining;
    this.services = {
      config,
      get nodeId() {
        return registry.nodeId;
      },
      get draining() {
        return isDraining();
      },
      apis: this.handlers,
      placement,
      topics: this.topics,
      log: this.partitionLog,
      groups: this.groups,
      txns: this.txns,
      producerIds: this.producerIds,
    };
  }

  /** True once SIGTERM (or stop) began: long-polls return, no new connections. */
  get draining(): boolean {
    return this.#draining;
  }

  get nodeId(): number {
    return this.registry.nodeId;
  }

  /** The address the Kafka listener is bound to (useful with port 0). */
  get listenPort(): number {
    return this.#listener?.port ?? this.config.listen.port;
  }

  get httpPort(): number | null {
    return this.#http?.port ?? null;
  }

  async start(): Promise<void> {
    await Promise.all([waitReady(this.redis), waitReady(this.subscriber)]);
    const nodeId = await this.registry.register();
    this.log = this.log.child({ nodeId });
    this.groups.start();
    this.txns.start();
    this.partitionLog.start(nodeId, this.log);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === HIGH_WATERMARK_CHANNEL) this.partitionLog.onRemoteCommits(message);
      else if (channel === GLOBAL_KEYS.topicsChanged) this.topics.invalidate();
    });
    await this.subscriber.subscribe(HIGH_WATERMARK_CHANNEL, GLOBAL_KEYS.topicsChanged);
    // stop() may have begun while this start was waiting: then no listener opens.
    if (this.#draining) return;
    this.retention.start(this.log);
    if (this.config.objectCompaction) this.compaction.start(this.log);
    if (this.config.logCleaner) this.logCleaner.start(this.log);
    this.objectGc.start(this.log);

    const listener = new KafkaListener(
      { ...this.config.listen, maxConnections: this.config.maxConnections, maxConnectionsPerIp: this.config.maxConnectionsPerIp },
      { limits: this.config, handlers: this.handlers, services: this.services, budget: this.requestBudget, log: this.log },
    );
    this.#listener = listener;
    await listener.start();
    if (this.config.http) {
      this.#http = new AdminHttp({
        metrics: () => this.metricsText(),
        started: () => this.#ready && !this.#draining,
        ready: () => this.#ready && !this.#draining && this.redis.status === 'ready',
        topic: (name) => this.describeTopicStorage(name),
      });
      await this.#http.start(this.config.http.host, this.config.http.port);
    }
    this.#ready = true;
    this.log.info(
      { listen: `${this.config.listen.host}:${this.listenPort}`, advertise: `${this.config.advertise.host}:${this.config.advertise.port}`, storage: this.store.url },
      'broker started',
    );
  }

  /**
   * A topic's partitions with their offsets and storage (admin API `GET /api/v1/topics/<name>`),
   * or null when there is no such topic.
   */
  async describeTopicStorage(name: string): Promise<object | null> {
    const topic = await this.topics.byName(name);
    if (!topic) return null;
    const refs = Array.from({ length: topic.partitions }, (_, partition) => ({ topicId: topic.topicId, partition }));
    const [usage, offsets] = await Promise.all([this.partitionLog.usage(refs), this.partitionLog.offsets(refs)]);
    return {
      name: topic.name,
      topicId: topic.topicId,
      partitions: refs.map((ref, i) => ({
        partition: ref.partition,
        logStart: offsets[i]!.logStart,
        highWatermark: offsets[i]!.hw,
        lastStable: offsets[i]!.lso,
        storedBytes: usage[i]!.storedBytes,
        objects: usage[i]!.objects,
        runs: usage[i]!.runs,
      })),
    };
  }

  /** Counters in the Prometheus text format (served on /metrics). */
  metricsText(): string {
    return metricsText({
      store: () => this.store.stats(),
      log: () => this.partitionLog.stats(),
      connections: () => ({ open: this.#listener?.connections ?? 0, refused: this.#listener?.refused ?? 0 }),
      requestMemory: () => ({ inUse: this.requestBudget.inUse, capacity: this.requestBudget.capacity, waiting: this.requestBudget.waiting }),
      groupsOwned: () => this.groups.ownedGroups().length,
      retention: () => this.retention.stats(),
      compaction: () => this.compaction.stats(),
      logCleaner: () => this.logCleaner.stats(),
      objectGc: () => this.objectGc.stats(),
      jobStores: () => ({ ...this.partitionLog.stats().jobStores, 'object-gc': this.#gcStore.stats() }),
    });
  }

  /**
   * Drains and stops: stop accepting, let in-flight requests finish (long-polls return at
   * once), stop the retention job, flush and commit the ingest buffer, deregister, close
   * clients.
   */
  async stop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#ready = false;
    this.log.info('draining');
    this.partitionLog.close();
    const closed = this.#listener?.stopAccepting() ?? Promise.resolve();
    // Answer waiting joins (NOT_COORDINATOR, so members rediscover the coordinator) and hand
    // groups over at once instead of letting their leases run out.
    await this.groups.stop();
    await this.txns.stop();
    // Before the drain: the background jobs' cycles are work no client waits for. All at once:
    // each waits for its running cycle to reach a stopping point.
    await Promise.all([this.retention.stop(), this.compaction.stop(), this.logCleaner.stop(), this.objectGc.stop()]);
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    await this.partitionLog.drain();
    while ((this.#listener?.inflight ?? 0) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      await this.partitionLog.drain();
    }
    // Give the last responses a moment to reach the socket before closing.
    await new Promise((r) => setTimeout(r, 20));
    this.#listener?.closeConnections('shutdown');
    await closed;
    try {
      await this.registry.deregister();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not deregister; the registration expires by itself');
    }
    await this.#http?.stop();
    this.subscriber.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.store.close();
    this.log.info('stopped');
  }
}
