/**
 * The topic configurations Strata understands: name, type, default and validation. Anything
 * else is refused with INVALID_CONFIG (a silently ignored setting is worse than an error).
 * `retention.ms` acts on topics whose `cleanup.policy` contains `delete` (the retention job,
 * `src/log/retention.ts`); the other retention and compaction settings are recorded and shown
 * but have no effect yet, and segment sizes have no meaning for object storage.
 */
import type { BrokerConfig } from '../config.js';

/** DescribeConfigs config types (KIP-336). */
export const ConfigType = {
  UNKNOWN: 0,
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
  CLASS: 8,
  PASSWORD: 9,
} as const;

/** DescribeConfigs config sources. */
export const ConfigSource = {
  UNKNOWN: 0,
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

export interface TopicConfigDef {
  name: string;
  type: (typeof ConfigType)[keyof typeof ConfigType];
  defaultValue(broker: BrokerConfig): string;
  /** The source of the default: a broker setting or Kafka's built-in default. */
  defaultSource: (typeof ConfigSource)[keyof typeof ConfigSource];
  /** Returns an error message, or null when `value` is acceptable. */
  validate(value: string): string | null;
}

const LONG_MAX = '9223372036854775807';

function longAtLeast(min: number): (v: string) => string | null {
  return (v) => (/^-?\d+$/.test(v) && BigInt(v) >= BigInt(min) && BigInt(v) <= BigInt(LONG_MAX) ? null : `must be a whole number ≥ ${min}`);
}

function intAtLeast(min: number): (v: string) => string | null {
  return (v) => (/^-?\d+$/.test(v) && Number(v) >= min && Number(v) <= 2147483647 ? null : `must be a whole number from ${min} to 2147483647`);
}

function oneOf(values: readonly string[]): (v: string) => string | null {
  return (v) => (values.includes(v) ? null : `must be one of ${values.join(', ')}`);
}

function fixed(value: string): () => string {
  return () => value;
}

const DEFS: TopicConfigDef[] = [
  {
    name: 'cleanup.policy',
    type: ConfigType.LIST,
    defaultValue: fixed('delete'),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: (v) => {
      const parts = v.split(',').map((s) => s.trim());
      return parts.length > 0 && parts.every((p) => p === 'delete' || p === 'compact') ? null : 'must be delete, compact or delete,compact';
    },
  },
  {
    name: 'compression.type',
    type: ConfigType.STRING,
    defaultValue: fixed('producer'),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: oneOf(['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd']),
  },
  { name: 'delete.retention.ms', type: ConfigType.LONG, defaultValue: fixed('86400000'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  {
    name: 'max.message.bytes',
    type: ConfigType.INT,
    defaultValue: (b) => String(b.messageMaxBytes),
    defaultSource: ConfigSource.STATIC_BROKER_CONFIG,
    validate: intAtLeast(0),
  },
  { name: 'max.compaction.lag.ms', type: ConfigType.LONG, defaultValue: fixed(LONG_MAX), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(1) },
  // KIP-937 (Kafka 3.6): separate bounds for CreateTime timestamps before and after the broker's
  // clock, INVALID_TIMESTAMP beyond them. The after bound defaults to one hour as in Kafka 4.0
  // (KIP-1030); Kafka 3.6-3.9 defaulted it to Long.MAX_VALUE.
  { name: 'message.timestamp.after.max.ms', type: ConfigType.LONG, defaultValue: fixed('3600000'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  { name: 'message.timestamp.before.max.ms', type: ConfigType.LONG, defaultValue: fixed(LONG_MAX), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  // The symmetric bound KIP-937 deprecated (Kafka 4.0 removed it), kept for 3.x tools: it applies
  // to a side whose own bound is left at Long.MAX_VALUE, as in Kafka 3.6-3.9.
  { name: 'message.timestamp.difference.max.ms', type: ConfigType.LONG, defaultValue: fixed(LONG_MAX), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  {
    name: 'message.timestamp.type',
    type: ConfigType.STRING,
    defaultValue: fixed('CreateTime'),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: oneOf(['CreateTime', 'LogAppendTime']),
  },
  { name: 'min.compaction.lag.ms', type: ConfigType.LONG, defaultValue: fixed('0'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  { name: 'min.insync.replicas', type: ConfigType.INT, defaultValue: fixed('1'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: intAtLeast(1) },
  { name: 'retention.bytes', type: ConfigType.LONG, defaultValue: fixed('-1'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(-1) },
  // Defaults to --log-retention-ms. The source stays DEFAULT_CONFIG (what DescribeConfigs has
  // always reported): a source cannot yet tell a flag left at Kafka's default from one set.
  {
    name: 'retention.ms',
    type: ConfigType.LONG,
    defaultValue: (b) => String(b.logRetentionMs),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: longAtLeast(-1),
  },
  { name: 'segment.bytes', type: ConfigType.INT, defaultValue: fixed('1073741824'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: intAtLeast(14) },
  { name: 'segment.ms', type: ConfigType.LONG, defaultValue: fixed('604800000'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(1) },
  {
    name: 'unclean.leader.election.enable',
    type: ConfigType.BOOLEAN,
    defaultValue: fixed('false'),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: oneOf(['true', 'false']),
  },
];

/** Topic configs by name, sorted by name. */
export const TOPIC_CONFIGS: ReadonlyMap<string, TopicConfigDef> = new Map(DEFS.map((d) => [d.name, d]));

/**
 * Checks one topic config; returns an error message (for INVALID_CONFIG) or null. A null
 * value means "remove the override" and is always acceptable for a known key.
 */
export function validateTopicConfig(name: string, value: string | null): string | null {
  const def = TOPIC_CONFIGS.get(name);
  if (!def) return `unknown topic config "${name}"`;
  if (value === null) return null;
  const problem = def.validate(value);
  return problem ? `invalid value "${value}" for ${name}: ${problem}` : null;
}

/** A topic's effective value of `name`: its override, else the default. */
export function effectiveTopicConfig(name: string, overrides: Readonly<Record<string, string>>, broker: BrokerConfig): string {
  return overrides[name] ?? TOPIC_CONFIGS.get(name)!.defaultValue(broker);
}

/** How far a CreateTime record timestamp may be from the broker's clock, each way, in ms. */
export interface TimestampLimits {
  beforeMaxMs: bigint;
  afterMaxMs: bigint;
}

/**
 * A topic's effective timestamp bounds (KIP-937): `message.timestamp.before.max.ms` and
 * `message.timestamp.after.max.ms`, where a bound left at Long.MAX_VALUE falls back to the
 * deprecated `message.timestamp.difference.max.ms`, as Kafka 3.6-3.9's LogConfig does.
 */
export function timestampLimits(overrides: Readonly<Record<string, string>>, broker: BrokerConfig): TimestampLimits {
  const difference = BigInt(effectiveTopicConfig('message.timestamp.difference.max.ms', overrides, broker));
  const side = (name: string): bigint => {
    const v = BigInt(effectiveTopicConfig(name, overrides, broker));
    return v === BigInt(LONG_MAX) ? difference : v;
  };
  return { beforeMaxMs: side('message.timestamp.before.max.ms'), afterMaxMs: side('message.timestamp.after.max.ms') };
}
