/**
 * The topic configurations Strata understands: name, type, default and validation. Anything
 * else is refused with INVALID_CONFIG (a silently ignored setting is worse than an error).
 * `retention.ms` and `retention.bytes` act on topics whose `cleanup.policy` contains `delete`
 * (the retention job, `src/log/retention.ts`), the compaction settings on topics whose policy
 * contains `compact` (the log cleaner, `src/log/log-cleaner.ts`); segment sizes have no meaning
 * for object storage.
 */
import { BROKER_OPTIONS, type BrokerConfig } from '../config.js';

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
  /**
   * For a default a broker flag sets where Kafka's is a built-in value: that value (the flag's
   * own default). The default's source is then STATIC_BROKER_CONFIG when the flag is set to
   * anything else, DEFAULT_CONFIG otherwise (see {@link topicConfigDefaults}).
   */
  kafkaDefault?: string;
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

/** The default of broker flag `flag`, as its row in the flag table gives it. */
function flagDefault(flag: string): string {
  const value = BROKER_OPTIONS.find((o) => o.flag === flag)?.default;
  if (value === undefined) throw new Error(`broker flag --${flag} has no default`);
  return value;
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
  {
    name: 'min.cleanable.dirty.ratio',
    type: ConfigType.DOUBLE,
    defaultValue: fixed('0.5'),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    validate: (v) => (/^(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) && Number(v) >= 0 && Number(v) <= 1 ? null : 'must be a number from 0 to 1'),
  },
  { name: 'min.compaction.lag.ms', type: ConfigType.LONG, defaultValue: fixed('0'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: longAtLeast(0) },
  { name: 'min.insync.replicas', type: ConfigType.INT, defaultValue: fixed('1'), defaultSource: ConfigSource.DEFAULT_CONFIG, validate: intAtLeast(1) },
  // Default to --log-retention-bytes and --log-retention-ms; a flag set away from Kafka's
  // default is a STATIC_BROKER_CONFIG default, as a server.properties setting is in Kafka.
  {
    name: 'retention.bytes',
    type: ConfigType.LONG,
    defaultValue: (b) => String(b.logRetentionBytes),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    kafkaDefault: flagDefault('log-retention-bytes'),
    validate: longAtLeast(-1),
  },
  {
    name: 'retention.ms',
    type: ConfigType.LONG,
    defaultValue: (b) => String(b.logRetentionMs),
    defaultSource: ConfigSource.DEFAULT_CONFIG,
    kafkaDefault: flagDefault('log-retention-ms'),
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

/** One value a topic config's default falls back through, as a DescribeConfigs synonym carries it. */
export interface DefaultSynonym {
  value: string;
  source: (typeof ConfigSource)[keyof typeof ConfigSource];
}

/**
 * Where topic config `def`'s default comes from on this broker, most specific first; the
 * first is the default in effect. A broker flag set away from Kafka's default gives two: the
 * flag (STATIC_BROKER_CONFIG), then Kafka's default (DEFAULT_CONFIG), as Kafka lists a
 * statically set broker config's synonyms. A flag given Kafka's default value counts as not
 * set.
 */
export function topicConfigDefaults(def: TopicConfigDef, broker: BrokerConfig): DefaultSynonym[] {
  const value = def.defaultValue(broker);
  if (def.kafkaDefault === undefined) return [{ value, source: def.defaultSource }];
  if (value === def.kafkaDefault) return [{ value, source: ConfigSource.DEFAULT_CONFIG }];
  return [
    { value, source: ConfigSource.STATIC_BROKER_CONFIG },
    { value: def.kafkaDefault, source: ConfigSource.DEFAULT_CONFIG },
  ];
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
