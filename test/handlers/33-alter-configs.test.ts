import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigResourceType } from '../../src/cluster/config-resources.js';
import { ErrorCode, type AlterConfigsRequest } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, topicOverrides } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;
let nodeId: number;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  nodeId = cluster.brokers[0]!.broker!.nodeId;
  await createTopic(client, 'altered', 1, { 'retention.ms': '1000' });
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(resourceType: number, resourceName: string, configs: Record<string, string | null>, validateOnly = false): AlterConfigsRequest {
  return { resources: [{ resourceType, resourceName, configs: Object.entries(configs).map(([name, value]) => ({ name, value })) }], validateOnly };
}

const ok = (resourceType: number, resourceName: string) => ({ errorCode: ErrorCode.NONE, errorMessage: null, resourceType, resourceName });

describe('AlterConfigs, topics', () => {
  it('v0 replaces every override with the set given', async () => {
    const res = await client.send(33, 0, request(ConfigResourceType.TOPIC, 'altered', { 'segment.ms': '3600000', 'cleanup.policy': 'delete,compact' }));
    expect(res.responses).toEqual([ok(ConfigResourceType.TOPIC, 'altered')]);
    expect(await topicOverrides(client, 'altered')).toEqual({ 'cleanup.policy': 'delete,compact', 'segment.ms': '3600000' });
  });

  it('v2 with validateOnly checks and changes nothing', async () => {
    const res = await client.send(33, 2, request(ConfigResourceType.TOPIC, 'altered', { 'retention.ms': '5' }, true));
    expect(res.responses).toEqual([ok(ConfigResourceType.TOPIC, 'altered')]);
    expect(await topicOverrides(client, 'altered')).toEqual({ 'cleanup.policy': 'delete,compact', 'segment.ms': '3600000' });
  });

  it('refuses an unknown name or a bad value with INVALID_CONFIG and changes nothing', async () => {
    const unknown = await client.send(33, 1, request(ConfigResourceType.TOPIC, 'altered', { 'retention.ms': '10', 'foo.bar': '1' }));
    expect(unknown.responses).toEqual([{ ...ok(ConfigResourceType.TOPIC, 'altered'), errorCode: ErrorCode.INVALID_CONFIG, errorMessage: 'unknown topic config "foo.bar"' }]);
    const bad = await client.send(33, 1, request(ConfigResourceType.TOPIC, 'altered', { 'retention.ms': 'soon' }));
    expect(bad.responses).toEqual([
      { ...ok(ConfigResourceType.TOPIC, 'altered'), errorCode: ErrorCode.INVALID_CONFIG, errorMessage: 'invalid value "soon" for retention.ms: must be a whole number ≥ -1' },
    ]);
    expect(await topicOverrides(client, 'altered')).toEqual({ 'cleanup.policy': 'delete,compact', 'segment.ms': '3600000' });
  });

  it('an empty set removes every override', async () => {
    const res = await client.send(33, 2, request(ConfigResourceType.TOPIC, 'altered', {}));
    expect(res.responses).toEqual([ok(ConfigResourceType.TOPIC, 'altered')]);
    expect(await topicOverrides(client, 'altered')).toEqual({});
  });

  it('refuses null values, repeated names and repeated resources with INVALID_REQUEST', async () => {
    const res = await client.send(33, 2, {
      resources: [
        { resourceType: ConfigResourceType.TOPIC, resourceName: 'altered', configs: [{ name: 'retention.ms', value: null }] },
        { resourceType: ConfigResourceType.TOPIC, resourceName: 'other', configs: [] },
        { resourceType: ConfigResourceType.TOPIC, resourceName: 'other', configs: [] },
        { resourceType: ConfigResourceType.BROKER, resourceName: String(nodeId), configs: [{ name: 'a', value: '1' }, { name: 'a', value: '2' }] },
      ],
      validateOnly: false,
    });
    expect(res.responses.map((r) => [r.resourceName, r.errorCode, r.errorMessage])).toEqual([
      ['altered', ErrorCode.INVALID_REQUEST, 'Null value not supported for : retention.ms'],
      ['other', ErrorCode.INVALID_REQUEST, 'each resource may appear at most once in a request'],
      ['other', ErrorCode.INVALID_REQUEST, 'each resource may appear at most once in a request'],
      [String(nodeId), ErrorCode.INVALID_REQUEST, 'config "a" appears more than once; give each config at most once'],
    ]);
  });

  it('answers an unknown topic with UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const res = await client.send(33, 0, request(ConfigResourceType.TOPIC, 'no-such-topic', { 'retention.ms': '10' }));
    expect(res.responses).toEqual([{ ...ok(ConfigResourceType.TOPIC, 'no-such-topic'), errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic "no-such-topic" does not exist' }]);
  });
});

describe('AlterConfigs, brokers', () => {
  it('an empty set for this broker succeeds (there are no dynamic broker configs to clear)', async () => {
    const res = await client.send(33, 2, request(ConfigResourceType.BROKER, String(nodeId), {}));
    expect(res.responses).toEqual([ok(ConfigResourceType.BROKER, String(nodeId))]);
  });

  it('refuses setting broker configs, other brokers, loggers and unknown types with INVALID_REQUEST', async () => {
    const res = await client.send(33, 1, {
      resources: [
        { resourceType: ConfigResourceType.BROKER, resourceName: String(nodeId), configs: [{ name: 'num.partitions', value: '3' }, { name: 'message.max.bytes', value: '100' }] },
        { resourceType: ConfigResourceType.BROKER, resourceName: '', configs: [] },
        { resourceType: ConfigResourceType.BROKER_LOGGER, resourceName: String(nodeId), configs: [] },
        { resourceType: 99, resourceName: 'x', configs: [] },
      ],
      validateOnly: false,
    });
    expect(res.responses.map((r) => [r.resourceType, r.errorCode, r.errorMessage])).toEqual([
      [
        ConfigResourceType.BROKER,
        ErrorCode.INVALID_REQUEST,
        'Cannot update these configs dynamically: num.partitions, message.max.bytes; Strata broker settings are flags (or STRATA_* variables) read at startup',
      ],
      [ConfigResourceType.BROKER, ErrorCode.INVALID_REQUEST, 'a broker resource is named by its node id; "" is not a number'],
      [ConfigResourceType.BROKER_LOGGER, ErrorCode.INVALID_REQUEST, 'resource type 8 cannot be altered with AlterConfigs; use 2 (topic) or 4 (broker)'],
      [99, ErrorCode.INVALID_REQUEST, 'resource type 99 cannot be altered with AlterConfigs; use 2 (topic) or 4 (broker)'],
    ]);
  });
});
