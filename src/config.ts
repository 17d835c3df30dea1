/**
 * Broker configuration: every option is a `--kebab-flag` and a `STRATA_*` environment
 * variable (flags win). Parsing validates each value and collects every problem as one line
 * a person can act on; the CLI prints them and exits non-zero.
 */

import { ConfigError } from './errors.js';

export { ConfigError };

/** A host and port, as given to --listen, --advertise or --http. */
export interface HostPort {
  host: string;
  port: number;
}

/** The typed configuration of one broker process. */
export interface BrokerConfig {
  listen: HostPort;
  /** What Metadata tells clients to connect to. */
  advertise: HostPort;
  redisUrl: string;
  storageUrl: string;
  /** Fixed node id, or null to allocate one from Redis. */
  nodeId: number | null;
  zone: string | null;
  rack: string | null;
  /** Admin HTTP listener (/healthz, /readyz, /metrics), or null for none. */
  http: HostPort | null;
  clusterId: string;
  flushMs: number;
  flushBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  socketRequestMaxBytes: number;
  messageMaxBytes: number;
  autoCreateTopics: boolean;
  numPartitions: number;
  defaultReplicationFactor: number;
  brokerSessionTimeoutMs: number;
  brokerHeartbeatMs: number;
  maxInflightRequests: number;
  /** Stop reading a connection while this many response bytes wait for the socket. */
  maxQueuedResponseBytes: number;
  connectionsMaxIdleMs: number;
  writeCacheBytes: number;
  blockCacheBytes: number;
  blockSizeBytes: number;
  redisWaitReplicas: number;
  redisWaitTimeoutMs: number;
  /** How long SIGTERM waits for in-flight work before exiting anyway. */
  shutdownTimeoutMs: number;
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  groupInitialRebalanceDelayMs: number;
  /** How long a coordinator lease lasts without renewal (failover time after a broker dies). */
  coordinatorLeaseMs: number;
  offsetMetadataMaxBytes: number;
  /** Largest transaction.timeout.ms a producer may ask for (Kafka's transaction.max.timeout.ms). */
  transactionMaxTimeoutMs: number;
  /** Forget a producer's idempotence state on a partition after this long without a batch there. */
  producerIdExpirationMs: number;
  /** Largest Fetch response in bytes, whatever the request asks for (Kafka's fetch.max.bytes). */
  fetchMaxBytes: number;
  /** Largest records region a compressed produced batch may expand to when it is validated. */
  maxDecompressedBatchBytes: number;
  /**
   * Broker-wide budget for request bytes being received or waiting to be handled (Kafka's
   * queued.max.request.bytes); reading pauses across connections while it is spent.
   */
  queuedMaxRequestBytes: number;
  /** How long a request frame may take to arrive once its length is read; slower ones close the connection. */
  requestReceiveTimeoutMs: number;
  /** Most client connections one broker holds; more are closed as they arrive. */
  maxConnections: number;
  /** Most client connections from one IP address. */
  maxConnectionsPerIp: number;
  /** Most members one consumer group may have (Kafka's group.max.size). */
  groupMaxSize: number;
  /** Largest protocol metadata (all protocols together) or assignment of one group member. */
  groupMaxMemberMetadataBytes: number;
  /** Largest total of members' protocol metadata and assignments in one group. */
  groupMaxMetadataBytes: number;
  /** Most partitions one topic may have. */
  maxPartitionsPerTopic: number;
  /** Most partitions the whole cluster may have, over all topics. */
  maxPartitions: number;
  /** Topic `retention.ms` default: records older than this go (Kafka's log.retention.ms); -1 keeps them. */
  logRetentionMs: number;
  /** Topic `retention.bytes` default: a partition's oldest runs go while the rest stays at least this size (Kafka's log.retention.bytes); -1 keeps them. */
  logRetentionBytes: number;
  /** How often the retention job looks for records past their retention (Kafka's log.retention.check.interval.ms). */
  logRetentionCheckIntervalMs: number;
  /** Whether this broker rewrites small runs into larger single-partition objects (docs/architecture.md §4.5). */
  objectCompaction: boolean;
  /** Time between the end of one object compaction cycle and the start of the next. */
  objectCompactionIntervalMs: number;
  /** Runs the compaction job has seen for less than this long are left alone. */
  objectCompactionMinAgeMs: number;
  /** A group of runs that could still grow is rewritten once its newest run was seen this long ago. */
  objectCompactionWindowMs: number;
  /** The size compaction merges runs up to; runs this big are left as they are. */
  objectCompactionTargetBytes: number;
  /** Whether this broker runs the log cleaner on compacted topics' partitions it leads (docs/architecture.md §4.6). */
  logCleaner: boolean;
  /** Time between the end of one log cleaner cycle and the start of the next (Kafka's log.cleaner.backoff.ms). */
  logCleanerIntervalMs: number;
  /** Most keys one cleaner pass maps; a partition with more is cleaned a prefix at a time. */
  logCleanerMaxKeys: number;
  /** How often object garbage collection looks for unreferenced segment objects (on the one broker that runs it). */
  objectGcIntervalMs: number;
  /** How long a segment object stays unreferenced before garbage collection deletes it; above {@link commitDeadlineMs}. */
  objectGcGraceMs: number;
  /** The longest time from a flush's upload start to its commit; a later flush fails and its object is left to GC. */
  commitDeadlineMs: number;
}

type Kind = 'string' | 'int' | 'bool' | 'hostport' | 'url' | 'level';

interface OptionSpec {
  key: keyof BrokerConfig;
  flag: string;
  kind: Kind;
  help: string;
  default?: string;
  required?: boolean;
  min?: number;
  max?: number;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** Every broker option, in the order `strata broker --help` lists them. */
export const BROKER_OPTIONS: readonly OptionSpec[] = [
  { key: 'redisUrl', flag: 'redis', kind: 'url', required: true, help: 'Redis URL, e.g. redis://127.0.0.1:6379' },
  { key: 'storageUrl', flag: 'storage', kind: 'url', required: true, help: 'object store: s3://bucket/prefix?endpoint=…, file:///path or memory://' },
  { key: 'listen', flag: 'listen', kind: 'hostport', default: '0.0.0.0:9092', help: 'Kafka listener host:port' },
  { key: 'advertise', flag: 'advertise', kind: 'hostport', help: 'host:port clients are told to connect to (default: the listener; 127.0.0.1 for 0.0.0.0)' },
  { key: 'nodeId', flag: 'node-id', kind: 'int', min: 0, max: 2147483647, help: 'broker node id (default: allocated from Redis)' },
  { key: 'zone', flag: 'zone', kind: 'string', help: 'availability zone; clients naming strata_az=<zone> in client.id are routed within it' },
  { key: 'rack', flag: 'rack', kind: 'string', help: 'rack shown in Metadata (default: the zone)' },
  { key: 'http', flag: 'http', kind: 'hostport', help: 'admin HTTP host:port for /healthz, /readyz and /metrics (default: off)' },
  { key: 'clusterId', flag: 'cluster-id', kind: 'string', default: 'strata-cluster', help: 'cluster id reported to clients' },
  { key: 'flushMs', flag: 'flush-ms', kind: 'int', default: '250', min: 1, max: 60000, help: 'the longest a batch waits in the ingest buffer, and the shortest time between timed flushes' },
  { key: 'flushBytes', flag: 'flush-bytes', kind: 'int', default: String(8 * 1024 * 1024), min: 1024, max: 1024 * 1024 * 1024, help: 'flush the ingest buffer when it holds this many bytes' },
  { key: 'logLevel', flag: 'log-level', kind: 'level', default: 'info', help: `log level: ${LEVELS.join(', ')}` },
  { key: 'socketRequestMaxBytes', flag: 'socket-request-max-bytes', kind: 'int', default: String(100 * 1024 * 1024), min: 1024, max: 2147483647, help: 'largest request frame accepted' },
  { key: 'messageMaxBytes', flag: 'message-max-bytes', kind: 'int', default: '1048588', min: 64, max: 2147483647, help: 'largest record batch accepted (topic max.message.bytes default)' },
  { key: 'autoCreateTopics', flag: 'auto-create-topics', kind: 'bool', default: 'true', help: 'create unknown topics named in Metadata requests' },
  { key: 'numPartitions', flag: 'num-partitions', kind: 'int', default: '1', min: 1, max: 100000, help: 'partitions of auto-created topics' },
  { key: 'defaultReplicationFactor', flag: 'default-replication-factor', kind: 'int', default: '3', min: 1, max: 32767, help: 'replication factor recorded for topics that do not give one' },
  { key: 'brokerSessionTimeoutMs', flag: 'broker-session-timeout-ms', kind: 'int', default: '6000', min: 500, max: 600000, help: 'a broker silent this long is gone' },
  { key: 'brokerHeartbeatMs', flag: 'broker-heartbeat-ms', kind: 'int', default: '1000', min: 50, max: 60000, help: 'how often a broker renews its registration' },
  { key: 'maxInflightRequests', flag: 'max-inflight-requests', kind: 'int', default: '128', min: 1, max: 100000, help: 'requests in flight per connection before reading pauses' },
  { key: 'maxQueuedResponseBytes', flag: 'max-queued-response-bytes', kind: 'int', default: String(64 * 1024 * 1024), min: 1024, max: 2147483647, help: 'queued response bytes per connection before reading pauses' },
  { key: 'connectionsMaxIdleMs', flag: 'connections-max-idle-ms', kind: 'int', default: '600000', min: 1000, max: 2147483647, help: 'close connections idle this long' },
  { key: 'writeCacheBytes', flag: 'write-cache-bytes', kind: 'int', default: String(256 * 1024 * 1024), min: 0, max: Number.MAX_SAFE_INTEGER, help: 'bytes of recently written objects kept for tailing reads' },
  { key: 'blockCacheBytes', flag: 'block-cache-bytes', kind: 'int', default: String(256 * 1024 * 1024), min: 0, max: Number.MAX_SAFE_INTEGER, help: 'bytes of object blocks kept from ranged reads' },
  { key: 'blockSizeBytes', flag: 'block-size-bytes', kind: 'int', default: String(1024 * 1024), min: 4096, max: 64 * 1024 * 1024, help: 'size of the aligned blocks ranged reads fetch' },
  { key: 'redisWaitReplicas', flag: 'redis-wait-replicas', kind: 'int', default: '0', min: 0, max: 100, help: 'Redis replicas that must have a commit (WAIT) before a produce is acknowledged' },
  { key: 'redisWaitTimeoutMs', flag: 'redis-wait-timeout-ms', kind: 'int', default: '1000', min: 1, max: 60000, help: 'how long WAIT may take' },
  { key: 'groupMinSessionTimeoutMs', flag: 'group-min-session-timeout-ms', kind: 'int', default: '6000', min: 1, max: 2147483647, help: 'smallest session timeout a consumer may ask for' },
  { key: 'groupMaxSessionTimeoutMs', flag: 'group-max-session-timeout-ms', kind: 'int', default: '1800000', min: 1, max: 2147483647, help: 'largest session timeout a consumer may ask for' },
  { key: 'groupInitialRebalanceDelayMs', flag: 'group-initial-rebalance-delay-ms', kind: 'int', default: '3000', min: 0, max: 600000, help: 'how long the first rebalance of an empty group waits for more members' },
  { key: 'coordinatorLeaseMs', flag: 'coordinator-lease-ms', kind: 'int', default: '10000', min: 500, max: 600000, help: 'lease of a group or transaction coordinator; another broker takes over this long after its owner dies' },
  { key: 'offsetMetadataMaxBytes', flag: 'offset-metadata-max-bytes', kind: 'int', default: '4096', min: 0, max: 1048576, help: 'largest metadata string of a committed offset' },
  { key: 'transactionMaxTimeoutMs', flag: 'transaction-max-timeout-ms', kind: 'int', default: '900000', min: 1, max: 2147483647, help: 'largest transaction timeout a producer may ask for' },
  { key: 'producerIdExpirationMs', flag: 'producer-id-expiration-ms', kind: 'int', default: '86400000', min: 1000, max: 2147483647, help: "forget a producer's sequence state on a partition after this long without a batch there" },
  { key: 'fetchMaxBytes', flag: 'fetch-max-bytes', kind: 'int', default: String(55 * 1024 * 1024), min: 1024, max: 2147483647, help: 'largest Fetch response; a request asking for more gets this much (Kafka fetch.max.bytes)' },
  { key: 'maxDecompressedBatchBytes', flag: 'max-decompressed-batch-bytes', kind: 'int', default: String(64 * 1024 * 1024), min: 1024, max: 1024 * 1024 * 1024, help: 'largest size a compressed produced batch may expand to; larger ones are refused' },
  { key: 'queuedMaxRequestBytes', flag: 'queued-max-request-bytes', kind: 'int', default: String(256 * 1024 * 1024), min: 1024, max: Number.MAX_SAFE_INTEGER, help: 'request bytes being received or queued, over all connections, before reading pauses (Kafka queued.max.request.bytes)' },
  { key: 'requestReceiveTimeoutMs', flag: 'request-receive-timeout-ms', kind: 'int', default: '60000', min: 100, max: 2147483647, help: 'close a connection whose request frame has not fully arrived this long after its length did' },
  { key: 'maxConnections', flag: 'max-connections', kind: 'int', default: '10000', min: 1, max: 1000000, help: 'most client connections per broker; more are closed as they arrive' },
  { key: 'maxConnectionsPerIp', flag: 'max-connections-per-ip', kind: 'int', default: '1000', min: 1, max: 1000000, help: 'most client connections from one IP address' },
  { key: 'groupMaxSize', flag: 'group-max-size', kind: 'int', default: '1000', min: 1, max: 2147483647, help: 'most members of one consumer group (Kafka group.max.size)' },
  { key: 'groupMaxMemberMetadataBytes', flag: 'group-max-member-metadata-bytes', kind: 'int', default: String(1024 * 1024), min: 1024, max: 1024 * 1024 * 1024, help: "largest protocol metadata or assignment of one group member" },
  { key: 'groupMaxMetadataBytes', flag: 'group-max-metadata-bytes', kind: 'int', default: String(32 * 1024 * 1024), min: 1024, max: 1024 * 1024 * 1024, help: "largest total of one group's member metadata and assignments" },
  { key: 'maxPartitionsPerTopic', flag: 'max-partitions-per-topic', kind: 'int', default: '10000', min: 1, max: 1000000, help: 'most partitions one topic may have' },
  { key: 'maxPartitions', flag: 'max-partitions', kind: 'int', default: '100000', min: 1, max: 10000000, help: 'most partitions in the cluster, over all topics' },
  { key: 'logRetentionMs', flag: 'log-retention-ms', kind: 'int', default: '604800000', min: -1, max: Number.MAX_SAFE_INTEGER, help: 'topic retention.ms default: batches older than this are deleted on delete-policy topics; -1 keeps them (Kafka log.retention.ms)' },
  { key: 'logRetentionBytes', flag: 'log-retention-bytes', kind: 'int', default: '-1', min: -1, max: Number.MAX_SAFE_INTEGER, help: "topic retention.bytes default: on delete-policy topics a partition's oldest batches are deleted while the rest stays at least this size; -1 keeps them (Kafka log.retention.bytes)" },
  { key: 'logRetentionCheckIntervalMs', flag: 'log-retention-check-interval-ms', kind: 'int', default: '30000', min: 10, max: 2147483647, help: 'how often each broker applies retention to the partitions it leads (Kafka log.retention.check.interval.ms)' },
  { key: 'objectCompaction', flag: 'object-compaction', kind: 'bool', default: 'true', help: 'rewrite small runs of the partitions this broker leads into larger single-partition objects' },
  { key: 'objectCompactionIntervalMs', flag: 'object-compaction-interval-ms', kind: 'int', default: '30000', min: 10, max: 2147483647, help: 'time between the end of one object compaction cycle and the start of the next' },
  { key: 'objectCompactionMinAgeMs', flag: 'object-compaction-min-age-ms', kind: 'int', default: '60000', min: 0, max: 2147483647, help: 'leave runs alone until the compaction job has seen them for this long (tailing readers read them from the write cache)' },
  { key: 'objectCompactionWindowMs', flag: 'object-compaction-window-ms', kind: 'int', default: '600000', min: 0, max: 2147483647, help: 'rewrite runs that could still be merged with more once the newest was seen this long ago' },
  { key: 'objectCompactionTargetBytes', flag: 'object-compaction-target-bytes', kind: 'int', default: String(16 * 1024 * 1024), min: 1024, max: 1024 * 1024 * 1024, help: 'size object compaction merges runs up to; larger runs are left as they are' },
  { key: 'logCleaner', flag: 'log-cleaner', kind: 'bool', default: 'true', help: 'compact the partitions this broker leads of topics whose cleanup.policy includes compact (Kafka log.cleaner.enable)' },
  { key: 'logCleanerIntervalMs', flag: 'log-cleaner-interval-ms', kind: 'int', default: '15000', min: 10, max: 2147483647, help: 'time between the end of one log cleaner cycle and the start of the next (Kafka log.cleaner.backoff.ms)' },
  { key: 'logCleanerMaxKeys', flag: 'log-cleaner-max-keys', kind: 'int', default: '1000000', min: 1000, max: 100000000, help: 'most keys one log cleaner pass maps in memory; a partition with more is cleaned a prefix per pass' },
  { key: 'objectGcIntervalMs', flag: 'object-gc-interval-ms', kind: 'int', default: '60000', min: 10, max: 2147483647, help: 'how often object garbage collection lists the store and scans the run indexes (on one broker at a time)' },
  { key: 'objectGcGraceMs', flag: 'object-gc-grace-ms', kind: 'int', default: '300000', min: 100, max: 2147483647, help: 'how long a segment object stays unreferenced before it is deleted; must exceed --commit-deadline-ms' },
  { key: 'commitDeadlineMs', flag: 'commit-deadline-ms', kind: 'int', default: '60000', min: 100, max: 2147483647, help: "the longest a flush may take from its upload's start to its commit; a slower flush fails its produce requests (retriable)" },
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout-ms', kind: 'int', default: '15000', min: 0, max: 600000, help: 'how long SIGTERM waits for in-flight work' },
];

function envName(flag: string): string {
  return `STRATA_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function parseHostPort(text: string): HostPort | null {
  const m = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  const host = m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port };
}

function parseValue(spec: OptionSpec, raw: string, source: string): { value?: unknown; error?: string } {
  const where = `${source} "${raw}"`;
  switch (spec.kind) {
    case 'string':
      if (raw === '') return { error: `${where} is empty; give a value or leave the option out` };
      return { value: raw };
    case 'url':
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return { error: `${where} is not a URL; ${spec.help}` };
      return { value: raw };
    case 'int': {
      if (!/^-?\d+$/.test(raw)) return { error: `${where} is not a whole number` };
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return { error: `${where} is out of range; use ${spec.min} to ${spec.max}` };
      }
      return { value: n };
    }
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(raw)) return { value: true };
      if (/^(false|0|no|off)$/i.test(raw)) return { value: false };
      return { error: `${where} is not true or false` };
    case 'hostport': {
      const hp = parseHostPort(raw);
      if (!hp) return { error: `${where} is not host:port (e.g. 127.0.0.1:9092)` };
      return { value: hp };
    }
    case 'level':
      if (!LEVELS.includes(raw)) return { error: `${where} is not a log level; use one of ${LEVELS.join(', ')}` };
      return { value: raw };
  }
}

/**
 * Parses broker flags and environment into a BrokerConfig. Throws ConfigError whose message
 * holds one line per problem.
 */
export function parseBrokerConfig(args: readonly string[], env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const errors: string[] = [];
  const fromFlags = new Map<string, string>();
  const byFlag = new Map(BROKER_OPTIONS.map((o) => [o.flag, o]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      errors.push(`unexpected argument "${arg}"; options look like --flush-ms 250`);
      continue;
    }
    const flag = m[1]!;
    const spec = byFlag.get(flag);
    if (!spec) {
      errors.push(`unknown option --${flag}; see strata broker --help`);
      if (m[2] === undefined && i + 1 < args.length && !args[i + 1]!.startsWith('--')) i++;
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      if (spec.kind === 'bool' && (i + 1 >= args.length || args[i + 1]!.startsWith('--'))) value = 'true';
      else if (i + 1 < args.length) value = args[++i]!;
      else {
        errors.push(`option --${flag} needs a value`);
        continue;
      }
    }
    fromFlags.set(flag, value);
  }

  const out: Record<string, unknown> = {};
  for (const spec of BROKER_OPTIONS) {
    const env1 = envName(spec.flag);
    let raw = fromFlags.get(spec.flag);
    let source = `--${spec.flag}`;
    if (raw === undefined && env[env1] !== undefined && env[env1] !== '') {
      raw = env[env1];
      source = env1;
    }
    if (raw === undefined) {
      if (spec.required) {
        errors.push(`--${spec.flag} (or ${env1}) is required: ${spec.help}`);
        continue;
      }
      if (spec.default === undefined) {
        out[spec.key] = null;
        continue;
      }
      raw = spec.default;
      source = `default of --${spec.flag}`;
    }
    const parsed = parseValue(spec, raw, source);
    if (parsed.error) errors.push(parsed.error);
    else out[spec.key] = parsed.value;
  }
  if (typeof out.redisUrl === 'string' && !/^rediss?:\/\//.test(out.redisUrl)) {
    errors.push(`--redis "${out.redisUrl}" is not a redis:// or rediss:// URL`);
  }
  if (typeof out.storageUrl === 'string' && !/^(s3|file|memory):\/\//.test(out.storageUrl)) {
    errors.push(`--storage "${out.storageUrl}" is not an s3://, file:// or memory:// URL`);
  }
  if (errors.length) throw new ConfigError(errors.join('\n'));

  const config = out as unknown as BrokerConfig;
  if (config.advertise === null) {
    const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
    config.advertise = { host, port: config.listen.port };
  }
  if (config.rack === null) config.rack = config.zone;
  if (config.flushBytes > config.socketRequestMaxBytes * 4) {
    throw new ConfigError(`--flush-bytes ${config.flushBytes} is more than 4× --socket-request-max-bytes; lower it`);
  }
  if (config.queuedMaxRequestBytes < config.socketRequestMaxBytes) {
    throw new ConfigError(
      `--queued-max-request-bytes ${config.queuedMaxRequestBytes} is below --socket-request-max-bytes ${config.socketRequestMaxBytes}; raise it so the largest request fits`,
    );
  }
  if (config.objectGcGraceMs <= config.commitDeadlineMs) {
    // docs/architecture.md §4.4: GC may delete an object only once no commit can still name it.
    throw new ConfigError(
      `--object-gc-grace-ms ${config.objectGcGraceMs} is not greater than --commit-deadline-ms ${config.commitDeadlineMs}; raise the grace (by minutes, to cover clock differences) or lower the deadline`,
    );
  }
  if (config.numPartitions > config.maxPartitionsPerTopic) {
    throw new ConfigError(`--num-partitions ${config.numPartitions} is above --max-partitions-per-topic ${config.maxPartitionsPerTopic}; lower it`);
  }
  return config;
}

/** Help text for `strata broker --help`. */
export function brokerOptionsHelp(): string[] {
  return BROKER_OPTIONS.map((o) => {
    const def = o.default !== undefined ? ` (default ${o.default})` : o.required ? ' (required)' : '';
    return `  --${o.flag.padEnd(28)} ${envName(o.flag).padEnd(36)} ${o.help}${def}`;
  });
}
