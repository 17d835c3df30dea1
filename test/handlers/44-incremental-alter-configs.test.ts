import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigResourceType } from '../../src/cluster/config-resources.js';
import { AlterConfigOp } from '../../src/handlers/44-incremental-alter-configs.js';
import { ErrorCode, type IncrementalAlterConfigsRequest } from '../../wire/index.js';
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
  await createTopic(client, 'incremental', 1, { 'retention.ms': '1000' });
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

type Op = [name: string, op: number, value: string | null];

function request(resourceType: number, resourceName: string, ops: Op[], validateOnly = false): IncrementalAlterConfigsRequest {
  return { resources: [{ resourceType, resourceName, configs: ops.map(([name, configOperation, value]) => ({ name, configOperation, value })) }], validateOnly };
}

async function alterTopic(version: number, ops: Op[], validateOnly = false): Promise<[number, string | null]> {
  const res = await client.send(44, version, request(ConfigResourceType.TOPIC, 'incremental', ops, validateOnly));
  const r = res.responses[0]!;
  expect([r.resourceType, r.resourceName]).toEqual([ConfigResourceType.TOPIC, 'incremental']);
  return [r.errorCode, r.errorMessage];
}

const OK: [number, null] = [ErrorCode.NONE, null];

describe('IncrementalAlterConfigs, topics', () => {
  it('v0 SET adds an override and DELETE removes one, leaving the others', async () => {
    expect(await alterTopic(0, [['segment.ms', AlterConfigOp.SET, '3600000']])).toEqual(OK);
    expect(await topicOverrides(client, 'incremental')).toEqual({ 'retention.ms': '1000', 'segment.ms': '3600000' });
    expect(await alterTopic(0, [['retention.ms', AlterConfigOp.DELETE, null]])).toEqual(OK);
    expect(await topicOverrides(client, 'incremental')).toEqual({ 'segment.ms': '3600000' });
  });

  it('APPEND and SUBTRACT change a list config starting from its default', async () => {
    expect(await alterTopic(1, [['cleanup.policy', AlterConfigOp.APPEND, 'compact']])).toEqual(OK);
    expect((await topicOverrides(client, 'incremental'))['cleanup.policy']).toBe('delete,compact');
    expect(await alterTopic(1, [['cleanup.policy', AlterConfigOp.APPEND, 'compact,delete']])).toEqual(OK);
    expect((await topicOverrides(client, 'incremental'))['cleanup.policy']).toBe('delete,compact');
    expect(await alterTopic(1, [['cleanup.policy', AlterConfigOp.SUBTRACT, 'delete']])).toEqual(OK);
    expect((await topicOverrides(client, 'incremental'))['cleanup.policy']).toBe('compact');
  });

  it('refuses a result that is not a valid value (an empty cleanup.policy) with INVALID_CONFIG', async () => {
    expect(await alterTopic(1, [['cleanup.policy', AlterConfigOp.SUBTRACT, 'compact']])).toEqual([
      ErrorCode.INVALID_CONFIG,
      'invalid value "" for cleanup.policy: must be delete, compact or delete,compact',
    ]);
    expect((await topicOverrides(client, 'incremental'))['cleanup.policy']).toBe('compact');
  });

  it('refuses APPEND on a config that is not a list, unknown names and bad values with INVALID_CONFIG, changing nothing', async () => {
    const before = await topicOverrides(client, 'incremental');
    expect(await alterTopic(1, [['segment.ms', AlterConfigOp.DELETE, null], ['retention.ms', AlterConfigOp.APPEND, '5']])).toEqual([
      ErrorCode.INVALID_CONFIG,
      'cannot APPEND to retention.ms: it is not a list config; use SET',
    ]);
    expect(await alterTopic(1, [['no.such.config', AlterConfigOp.SET, '1']])).toEqual([ErrorCode.INVALID_CONFIG, 'unknown topic config "no.such.config"']);
    expect(await alterTopic(1, [['max.message.bytes', AlterConfigOp.SET, 'big']])).toEqual([
      ErrorCode.INVALID_CONFIG,
      'invalid value "big" for max.message.bytes: must be a whole number from 0 to 2147483647',
    ]);
    expect(await topicOverrides(client, 'incremental')).toEqual(before);
  });

  it('refuses null values (except for DELETE), repeated names and unknown operations with INVALID_REQUEST', async () => {
    expect(await alterTopic(1, [['retention.ms', AlterConfigOp.SET, null]])).toEqual([ErrorCode.INVALID_REQUEST, 'Null value not supported for : retention.ms']);
    expect(await alterTopic(1, [['retention.ms', AlterConfigOp.SET, '1'], ['retention.ms', AlterConfigOp.DELETE, null]])).toEqual([
      ErrorCode.INVALID_REQUEST,
      'Error due to duplicate config keys: "retention.ms" appears more than once',
    ]);
    expect(await alterTopic(1, [['retention.ms', 7, '1']])).toEqual([
      ErrorCode.INVALID_REQUEST,
      'unknown operation 7 for "retention.ms"; use 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)',
    ]);
  });

  it('validateOnly checks without writing', async () => {
    const before = await topicOverrides(client, 'incremental');
    expect(await alterTopic(1, [['retention.ms', AlterConfigOp.SET, '42'], ['segment.ms', AlterConfigOp.DELETE, null]], true)).toEqual(OK);
    expect(await topicOverrides(client, 'incremental')).toEqual(before);
  });

  it('answers an unknown topic with UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const res = await client.send(44, 0, request(ConfigResourceType.TOPIC, 'no-such-topic', [['retention.ms', AlterConfigOp.SET, '1']]));
    expect(res.responses).toEqual([
      { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic "no-such-topic" does not exist', resourceType: ConfigResourceType.TOPIC, resourceName: 'no-such-topic' },
    ]);
  });
});

describe('IncrementalAlterConfigs, brokers', () => {
  it('no operations on this broker or the cluster default succeed; any operation is INVALID_REQUEST', async () => {
    const res = await client.send(44, 1, {
      resources: [
        { resourceType: ConfigResourceType.BROKER, resourceName: '', configs: [] },
        { resourceType: ConfigResourceType.BROKER, resourceName: String(nodeId), configs: [] },
        { resourceType: ConfigResourceType.BROKER, resourceName: String(nodeId + 1), configs: [] },
        { resourceType: ConfigResourceType.BROKER_LOGGER, resourceName: String(nodeId), configs: [{ name: 'root', configOperation: AlterConfigOp.SET, value: 'DEBUG' }] },
      ],
      validateOnly: false,
    });
    expect(res.responses.map((r) => [r.resourceName, r.errorCode, r.errorMessage])).toEqual([
      ['', ErrorCode.NONE, null],
      [String(nodeId), ErrorCode.NONE, null],
      [String(nodeId + 1), ErrorCode.INVALID_REQUEST, `this is broker ${nodeId}; send the request for broker ${nodeId + 1} to that broker`],
      [String(nodeId), ErrorCode.INVALID_REQUEST, 'Strata has no per-logger levels to change; the broker log level is its --log-level setting'],
    ]);
    const set = await client.send(44, 0, request(ConfigResourceType.BROKER, '', [['log.retention.ms', AlterConfigOp.SET, '1000']]));
    expect(set.responses[0]).toEqual({
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'Cannot update these configs dynamically: log.retention.ms; Strata broker settings are flags (or STRATA_* variables) read at startup',
      resourceType: ConfigResourceType.BROKER,
      resourceName: '',
    });
  });
});
