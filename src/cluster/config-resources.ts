/**
 * Config resources as the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)
 * see them: resource types, this broker's settings under their Kafka names, and the
 * broker-level name of each topic config (the "synonym" a topic default comes from).
 *
 * Strata's broker settings are flags and `STRATA_*` variables fixed at startup: there are no
 * dynamic broker configs, so every broker entry is read-only and STATIC_BROKER_CONFIG (or
 * DEFAULT_CONFIG for a Kafka default Strata does not let you change).
 */
import type { BrokerConfig, HostPort } from '../config.js';
import { ConfigSource, ConfigType, TOPIC_CONFIGS, topicConfigDefaults } from './topic-configs.js';

/** Config resource types (KIP-133; BROKER_LOGGER from KIP-412). */
export const ConfigResourceType = {
  UNKNOWN: 0,
  TOPIC: 2,
  BROKER: 4,
  BROKER_LOGGER: 8,
} as const;

type ConfigTypeValue = (typeof ConfigType)[keyof typeof ConfigType];
type ConfigSourceValue = (typeof ConfigSource)[keyof typeof ConfigSource];

/** One broker setting as DescribeConfigs shows it. */
export interface BrokerConfigEntry {
  name: string;
  value: string | null;
  type: ConfigTypeValue;
  source: ConfigSourceValue;
}

/** Kafka's broker-level name for each topic config Strata knows (LogConfig's synonyms). */
export const TOPIC_CONFIG_BROKER_NAMES: ReadonlyMap<string, string> = new Map([
  ['cleanup.policy', 'log.cleanup.policy'],
  ['compression.type', 'compression.type'],
  ['delete.retention.ms', 'log.cleaner.delete.retention.ms'],
  ['max.compaction.lag.ms', 'log.cleaner.max.compaction.lag.ms'],
  ['max.message.bytes', 'message.max.bytes'],
  ['message.timestamp.after.max.ms', 'log.message.timestamp.after.max.ms'],
  ['message.timestamp.before.max.ms', 'log.message.timestamp.before.max.ms'],
  ['message.timestamp.difference.max.ms', 'log.message.timestamp.difference.max.ms'],
  ['message.timestamp.type', 'log.message.timestamp.type'],
  ['min.compaction.lag.ms', 'log.cleaner.min.compaction.lag.ms'],
  ['min.insync.replicas', 'min.insync.replicas'],
  ['retention.bytes', 'log.retention.bytes'],
  ['retention.ms', 'log.retention.ms'],
  ['segment.bytes', 'log.segment.bytes'],
  ['segment.ms', 'log.roll.ms'],
  ['unclean.leader.election.enable', 'unclean.leader.election.enable'],
]);

/** The broker-level name of topic config `name` (the topic name itself when Kafka has none). */
export function brokerNameOfTopicConfig(name: string): string {
  return TOPIC_CONFIG_BROKER_NAMES.get(name) ?? name;
}

function listener(hp: HostPort): string {
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return `PLAINTEXT://${host}:${hp.port}`;
}

/**
 * This broker's settings, sorted by name: those with a Kafka equivalent under the Kafka name,
 * Strata's own under `strata.*`, and the broker-level defaults of every topic config. Nothing
 * secret is listed (the Redis and storage URLs may carry credentials, so they are left out).
 */
export function brokerConfigs(config: BrokerConfig, nodeId: number): BrokerConfigEntry[] {
  const STATIC = ConfigSource.STATIC_BROKER_CONFIG;
  const entries: BrokerConfigEntry[] = [
    { name: 'advertised.listeners', value: listener(config.advertise), type: ConfigType.STRING, source: STATIC },
    { name: 'auto.create.topics.enable', value: String(config.autoCreateTopics), type: ConfigType.BOOLEAN, source: STATIC },
    { name: 'broker.heartbeat.interval.ms', value: String(config.brokerHeartbeatMs), type: ConfigType.INT, source: STATIC },
    { name: 'broker.id', value: String(nodeId), type: ConfigType.INT, source: STATIC },
    { name: 'broker.rack', value: config.rack, type: ConfigType.STRING, source: STATIC },
    { name: 'broker.session.timeout.ms', value: String(config.brokerSessionTimeoutMs), type: ConfigType.INT, source: STATIC },
    { name: 'connections.max.idle.ms', value: String(config.connectionsMaxIdleMs), type: ConfigType.LONG, source: STATIC },
    { name: 'default.replication.factor', value: String(config.defaultReplicationFactor), type: ConfigType.INT, source: STATIC },
    { name: 'fetch.max.bytes', value: String(config.fetchMaxBytes), type: ConfigType.INT, source: STATIC },
    { name: 'group.max.size', value: String(config.groupMaxSize), type: ConfigType.INT, source: STATIC },
    { name: 'listeners', value: listener(config.listen), type: ConfigType.STRING, source: STATIC },
    { name: 'log.retention.check.interval.ms', value: String(config.logRetentionCheckIntervalMs), type: ConfigType.LONG, source: STATIC },
    { name: 'max.connections', value: String(config.maxConnections), type: ConfigType.INT, source: STATIC },
    { name: 'max.connections.per.ip', value: String(config.maxConnectionsPerIp), type: ConfigType.INT, source: STATIC },
    { name: 'message.max.bytes', value: String(config.messageMaxBytes), type: ConfigType.INT, source: STATIC },
    { name: 'node.id', value: String(nodeId), type: ConfigType.INT, source: STATIC },
    { name: 'num.partitions', value: String(config.numPartitions), type: ConfigType.INT, source: STATIC },
    { name: 'queued.max.request.bytes', value: String(config.queuedMaxRequestBytes), type: ConfigType.LONG, source: STATIC },
    { name: 'socket.request.max.bytes', value: String(config.socketRequestMaxBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.block.cache.bytes', value: String(config.blockCacheBytes), type: ConfigType.LONG, source: STATIC },
    { name: 'strata.block.size.bytes', value: String(config.blockSizeBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.flush.bytes', value: String(config.flushBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.flush.ms', value: String(config.flushMs), type: ConfigType.INT, source: STATIC },
    { name: 'strata.group.max.member.metadata.bytes', value: String(config.groupMaxMemberMetadataBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.group.max.metadata.bytes', value: String(config.groupMaxMetadataBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.max.decompressed.batch.bytes', value: String(config.maxDecompressedBatchBytes), type: ConfigType.INT, source: STATIC },
    { name: 'strata.max.partitions', value: String(config.maxPartitions), type: ConfigType.INT, source: STATIC },
    { name: 'strata.max.partitions.per.topic', value: String(config.maxPartitionsPerTopic), type: ConfigType.INT, source: STATIC },
    { name: 'strata.redis.wait.replicas', value: String(config.redisWaitReplicas), type: ConfigType.INT, source: STATIC },
    { name: 'strata.request.receive.timeout.ms', value: String(config.requestReceiveTimeoutMs), type: ConfigType.INT, source: STATIC },
    { name: 'strata.write.cache.bytes', value: String(config.writeCacheBytes), type: ConfigType.LONG, source: STATIC },
    { name: 'strata.zone', value: config.zone, type: ConfigType.STRING, source: STATIC },
  ];
  const names = new Set(entries.map((e) => e.name));
  for (const def of TOPIC_CONFIGS.values()) {
    const name = brokerNameOfTopicConfig(def.name);
    if (names.has(name)) continue;
    names.add(name);
    const { value, source } = topicConfigDefaults(def, config)[0]!;
    entries.push({ name, value, type: def.type, source });
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Checks the name of a BROKER (or BROKER_LOGGER) resource sent to broker `nodeId`: it must be
 * that node id, or empty (the cluster-wide default) where `allowEmpty`. Returns the problem
 * (for INVALID_REQUEST, as Kafka answers) or null.
 */
export function brokerResourceProblem(resourceName: string, nodeId: number, allowEmpty: boolean): string | null {
  if (resourceName === '' && allowEmpty) return null;
  if (!/^-?\d+$/.test(resourceName)) {
    return `a broker resource is named by its node id${allowEmpty ? ' (or empty for cluster-wide settings)' : ''}; "${resourceName}" is not a number`;
  }
  if (Number(resourceName) !== nodeId) {
    return `this is broker ${nodeId}; send the request for broker ${resourceName} to that broker`;
  }
  return null;
}

/**
 * The indexes of resources that appear more than once (same type and name) in one request.
 * Kafka answers every one of them INVALID_REQUEST and processes none.
 */
export function duplicateResources(resources: readonly { resourceType: number; resourceName: string }[]): Set<number> {
  const seen = new Map<string, number>();
  const dup = new Set<number>();
  resources.forEach((r, i) => {
    const key = `${r.resourceType}\u0000${r.resourceName}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else {
      dup.add(first);
      dup.add(i);
    }
  });
  return dup;
}

/** The message Kafka gives a resource named twice in one request. */
export const DUPLICATE_RESOURCE_MESSAGE = 'each resource may appear at most once in a request';
