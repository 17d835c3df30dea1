import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigResourceType } from '../../src/cluster/config-resources.js';
import { ConfigSource, ConfigType, TOPIC_CONFIGS } from '../../src/cluster/topic-configs.js';
import { ErrorCode, type DescribeConfigsRequest } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;
let nodeId: number;

beforeAll(async () => {
  // The broker's own defaults are what this test lists.
  cluster = await startCluster({ defaultRetention: true });
  client = await RawClient.connect(cluster.bootstrap);
  nodeId = cluster.brokers[0]!.broker!.nodeId;
  await createTopic(client, 'configured', 1, { 'retention.ms': '1000', 'cleanup.policy': 'compact' });
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(resourceType: number, resourceName: string, keys: string[] | null, options: Partial<DescribeConfigsRequest> = {}): DescribeConfigsRequest {
  return { resources: [{ resourceType, resourceName, configurationKeys: keys }], includeSynonyms: false, includeDocumentation: false, ...options };
}

describe('DescribeConfigs, topics', () => {
  it('v0 lists every topic config, with isDefault only for built-in defaults', async () => {
    const res = await client.send(32, 0, request(ConfigResourceType.TOPIC, 'configured', null));
    const r = res.results[0]!;
    expect(r).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ConfigResourceType.TOPIC, resourceName: 'configured' });
    expect(r.configs.map((c) => c.name)).toEqual([...TOPIC_CONFIGS.keys()]);
    const byName = new Map(r.configs.map((c) => [c.name, c]));
    // Fields v0 lacks decode as their defaults (documentation: the empty string).
    const v0 = { readOnly: false, isSensitive: false, configSource: -1, synonyms: [], configType: 0, documentation: '' };
    expect(byName.get('retention.ms')).toEqual({ ...v0, name: 'retention.ms', value: '1000', isDefault: false });
    expect(byName.get('cleanup.policy')).toEqual({ ...v0, name: 'cleanup.policy', value: 'compact', isDefault: false });
    expect(byName.get('segment.ms')).toEqual({ ...v0, name: 'segment.ms', value: '604800000', isDefault: true });
    // Its default comes from a broker setting, so it is not Kafka's built-in default.
    expect(byName.get('max.message.bytes')).toEqual({ ...v0, name: 'max.message.bytes', value: '1048588', isDefault: false });
  });

  it('v1 gives sources and, when asked, synonyms: the override, then the broker-level default', async () => {
    const res = await client.send(32, 1, request(ConfigResourceType.TOPIC, 'configured', ['retention.ms', 'max.message.bytes'], { includeSynonyms: true }));
    const v1 = { readOnly: false, isDefault: false, isSensitive: false, configType: 0, documentation: '' };
    expect(res.results[0]!.configs).toEqual([
      {
        ...v1,
        name: 'max.message.bytes',
        value: '1048588',
        configSource: ConfigSource.STATIC_BROKER_CONFIG,
        synonyms: [{ name: 'message.max.bytes', value: '1048588', source: ConfigSource.STATIC_BROKER_CONFIG }],
      },
      {
        ...v1,
        name: 'retention.ms',
        value: '1000',
        configSource: ConfigSource.TOPIC_CONFIG,
        synonyms: [
          { name: 'retention.ms', value: '1000', source: ConfigSource.TOPIC_CONFIG },
          { name: 'log.retention.ms', value: '604800000', source: ConfigSource.DEFAULT_CONFIG },
        ],
      },
    ]);
  });

  it('v4 limits the answer to the keys asked for (unknown ones left out) and gives config types', async () => {
    const res = await client.send(32, 4, request(ConfigResourceType.TOPIC, 'configured', ['segment.ms', 'cleanup.policy', 'no.such.config'], { includeDocumentation: true }));
    const v4 = { readOnly: false, isDefault: false, isSensitive: false, synonyms: [], documentation: null };
    expect(res.results[0]!.configs).toEqual([
      { ...v4, name: 'cleanup.policy', value: 'compact', configSource: ConfigSource.TOPIC_CONFIG, configType: ConfigType.LIST },
      { ...v4, name: 'segment.ms', value: '604800000', configSource: ConfigSource.DEFAULT_CONFIG, configType: ConfigType.LONG },
    ]);
  });

  it('answers an unknown topic with UNKNOWN_TOPIC_OR_PARTITION and an invalid name with INVALID_TOPIC_EXCEPTION', async () => {
    const res = await client.send(32, 4, {
      resources: [
        { resourceType: ConfigResourceType.TOPIC, resourceName: 'no-such-topic', configurationKeys: null },
        { resourceType: ConfigResourceType.TOPIC, resourceName: 'bad name', configurationKeys: null },
      ],
      includeSynonyms: false,
      includeDocumentation: false,
    });
    expect(res.results).toEqual([
      { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic "no-such-topic" does not exist', resourceType: ConfigResourceType.TOPIC, resourceName: 'no-such-topic', configs: [] },
      {
        errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
        errorMessage: 'topic name "bad name" has characters other than a-z A-Z 0-9 . _ -',
        resourceType: ConfigResourceType.TOPIC,
        resourceName: 'bad name',
        configs: [],
      },
    ]);
  });
});

describe('DescribeConfigs, brokers', () => {
  it('v4 lists this broker its settings, read-only and static, with types', async () => {
    const keys = ['auto.create.topics.enable', 'broker.id', 'message.max.bytes', 'num.partitions', 'log.retention.ms'];
    const res = await client.send(32, 4, request(ConfigResourceType.BROKER, String(nodeId), keys, { includeSynonyms: true }));
    const entry = (name: string, value: string, configType: number, configSource: number = ConfigSource.STATIC_BROKER_CONFIG) => ({
      name,
      value,
      readOnly: true,
      isDefault: false,
      configSource,
      isSensitive: false,
      synonyms: [{ name, value, source: configSource }],
      configType,
      documentation: null,
    });
    expect(res.results).toEqual([
      {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        resourceType: ConfigResourceType.BROKER,
        resourceName: String(nodeId),
        configs: [
          entry('auto.create.topics.enable', 'true', ConfigType.BOOLEAN),
          entry('broker.id', String(nodeId), ConfigType.INT),
          entry('log.retention.ms', '604800000', ConfigType.LONG, ConfigSource.DEFAULT_CONFIG),
          entry('message.max.bytes', '1048588', ConfigType.INT),
          entry('num.partitions', '1', ConfigType.INT),
        ],
      },
    ]);
  });

  it('lists the request, connection, group and partition limits under their Kafka names, Strata-only ones as strata.*', async () => {
    const keys = ['fetch.max.bytes', 'group.max.size', 'max.connections', 'max.connections.per.ip', 'queued.max.request.bytes', 'strata.max.partitions', 'strata.request.receive.timeout.ms'];
    const res = await client.send(32, 4, request(ConfigResourceType.BROKER, String(nodeId), keys));
    expect(res.results[0]!.configs.map((c) => [c.name, c.value, c.configType])).toEqual([
      ['fetch.max.bytes', String(55 * 1024 * 1024), ConfigType.INT],
      ['group.max.size', '1000', ConfigType.INT],
      ['max.connections', '10000', ConfigType.INT],
      ['max.connections.per.ip', '1000', ConfigType.INT],
      ['queued.max.request.bytes', String(256 * 1024 * 1024), ConfigType.LONG],
      ['strata.max.partitions', '100000', ConfigType.INT],
      ['strata.request.receive.timeout.ms', '60000', ConfigType.INT],
    ]);
  });

  it('v0 marks only built-in defaults as isDefault', async () => {
    const res = await client.send(32, 0, request(ConfigResourceType.BROKER, String(nodeId), ['num.partitions', 'log.segment.bytes']));
    expect(res.results[0]!.configs.map((c) => [c.name, c.value, c.isDefault, c.readOnly])).toEqual([
      ['log.segment.bytes', '1073741824', true, true],
      ['num.partitions', '1', false, true],
    ]);
  });

  it('the empty name (cluster-wide dynamic defaults) is an empty list: Strata has none', async () => {
    const res = await client.send(32, 2, request(ConfigResourceType.BROKER, '', null));
    expect(res.results).toEqual([{ errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ConfigResourceType.BROKER, resourceName: '', configs: [] }]);
  });

  it('refuses another node id, a name that is not a number, loggers and unknown types with INVALID_REQUEST', async () => {
    const other = String(nodeId + 1);
    const res = await client.send(32, 3, {
      resources: [
        { resourceType: ConfigResourceType.BROKER, resourceName: other, configurationKeys: null },
        { resourceType: ConfigResourceType.BROKER, resourceName: 'one', configurationKeys: null },
        { resourceType: ConfigResourceType.BROKER_LOGGER, resourceName: String(nodeId), configurationKeys: null },
        { resourceType: 99, resourceName: 'x', configurationKeys: null },
      ],
      includeSynonyms: false,
      includeDocumentation: false,
    });
    expect(res.results.map((r) => [r.resourceType, r.errorCode, r.errorMessage, r.configs.length])).toEqual([
      [ConfigResourceType.BROKER, ErrorCode.INVALID_REQUEST, `this is broker ${nodeId}; send the request for broker ${other} to that broker`, 0],
      [ConfigResourceType.BROKER, ErrorCode.INVALID_REQUEST, 'a broker resource is named by its node id (or empty for cluster-wide settings); "one" is not a number', 0],
      [ConfigResourceType.BROKER_LOGGER, ErrorCode.INVALID_REQUEST, 'Strata has no per-logger levels to describe; the broker log level is its --log-level setting', 0],
      [99, ErrorCode.INVALID_REQUEST, 'unknown resource type 99; use 2 (topic) or 4 (broker)', 0],
    ]);
  });
});
