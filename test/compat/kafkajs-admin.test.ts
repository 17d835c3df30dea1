/**
 * kafkajs admin client against Strata, on the file store and on S3 (s3rver): topic creation
 * (with configs, and validate-only), listing and metadata, partitions, configs of topics and
 * brokers, offsets (latest, earliest, by timestamp) of records produced by a kafkajs producer
 * with known timestamps, record deletion, and topic deletion. Every answer is checked exactly.
 */
import kafkajs, { type Admin, type Kafka as KafkaClient, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster, type StorageKind } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { fetchFrom } from '../helpers/topics.js';

const { Kafka, logLevel, ConfigResourceTypes, ConfigSource, Partitioners } = kafkajs;

const STORAGES: StorageKind[] = ['file', 's3'];
const BASE_TIMESTAMP = 1_700_000_000_000;

describe.each(STORAGES)('kafkajs admin (%s storage)', (storage) => {
  let cluster: Cluster;
  let kafka: KafkaClient;
  let admin: Admin;
  let producer: Producer;
  let raw: RawClient;
  let nodeId: number;

  beforeAll(async () => {
    cluster = await startCluster({ storage });
    nodeId = cluster.brokers[0]!.broker!.nodeId;
    kafka = new Kafka({
      clientId: `kafkajs-admin-${storage}`,
      brokers: [cluster.bootstrap],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5000,
      requestTimeout: 10000,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    raw = await RawClient.connect(cluster.bootstrap);
  });

  afterAll(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
    raw?.close();
    await cluster?.stop();
  });

  /** The partitions kafkajs reports for `topic`, as [id, leader, replicas, isr]. */
  async function partitionsOf(topic: string): Promise<[number, number, number[], number[]][]> {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics.map((t) => t.name)).toEqual([topic]);
    return meta.topics[0]!.partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr] as [number, number, number[], number[]]).sort((a, b) => a[0] - b[0]);
  }

  /** The given configs of a topic as kafkajs describes them: name → [value, source]. */
  async function topicConfigs(topic: string, names: string[]): Promise<Record<string, [string, number]>> {
    const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }] });
    expect(res.resources.map((r) => [r.resourceType, r.resourceName, r.errorCode])).toEqual([[ConfigResourceTypes.TOPIC, topic, ErrorCode.NONE]]);
    return Object.fromEntries(res.resources[0]!.configEntries.map((e) => [e.configName, [e.configValue, e.configSource]]));
  }

  it('createTopics creates topics with their configs; validateOnly creates nothing; listTopics and fetchTopicMetadata see them', async () => {
    const created = await admin.createTopics({
      topics: [
        {
          topic: 'admin-configured',
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [
            { name: 'retention.ms', value: '3600000' },
            { name: 'cleanup.policy', value: 'compact' },
          ],
        },
        { topic: 'admin-plain', numPartitions: 1, replicationFactor: 1 },
      ],
    });
    expect(created).toBe(true);
    expect(await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'admin-validated', numPartitions: 2, replicationFactor: 1 }] })).toBe(true);
    // kafkajs answers false, not an error, when every topic already exists.
    expect(await admin.createTopics({ topics: [{ topic: 'admin-plain', numPartitions: 1, replicationFactor: 1 }] })).toBe(false);

    expect((await admin.listTopics()).sort()).toEqual(['admin-configured', 'admin-plain']);
    expect(await partitionsOf('admin-configured')).toEqual([
      [0, nodeId, [nodeId], [nodeId]],
      [1, nodeId, [nodeId], [nodeId]],
      [2, nodeId, [nodeId], [nodeId]],
    ]);
    expect(await topicConfigs('admin-configured', ['cleanup.policy', 'retention.ms', 'segment.ms'])).toEqual({
      'cleanup.policy': ['compact', ConfigSource.TOPIC_CONFIG],
      'retention.ms': ['3600000', ConfigSource.TOPIC_CONFIG],
      'segment.ms': ['604800000', ConfigSource.DEFAULT_CONFIG],
    });
  });

  it('createTopics refuses an unknown config', async () => {
    await expect(
      admin.createTopics({ topics: [{ topic: 'admin-bad-config', numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'no.such.config', value: '1' }] }] }),
    ).rejects.toMatchObject({ errors: [expect.objectContaining({ type: 'INVALID_CONFIG' })] });
    expect((await admin.listTopics()).sort()).toEqual(['admin-configured', 'admin-plain']);
  });

  it('describeConfigs describes this broker, read-only', async () => {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: String(nodeId), configNames: ['auto.create.topics.enable', 'message.max.bytes', 'num.partitions'] }],
    });
    expect(res.resources).toHaveLength(1);
    const r = res.resources[0]!;
    expect([r.resourceType, r.resourceName, r.errorCode, r.errorMessage]).toEqual([ConfigResourceTypes.BROKER, String(nodeId), ErrorCode.NONE, null]);
    expect(r.configEntries.map((e) => [e.configName, e.configValue, e.readOnly, e.configSource, e.isSensitive])).toEqual([
      ['auto.create.topics.enable', 'true', true, ConfigSource.STATIC_BROKER_CONFIG, false],
      ['message.max.bytes', '1048588', true, ConfigSource.STATIC_BROKER_CONFIG, false],
      ['num.partitions', '1', true, ConfigSource.STATIC_BROKER_CONFIG, false],
    ]);
  });

  it('alterConfigs replaces the topic overrides; a bad value is refused and changes nothing', async () => {
    // kafkajs types the answer as `any`; this is its documented shape.
    const res = (await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: 'admin-configured', configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
    })) as { resources: { resourceType: number; resourceName: string; errorCode: number }[] };
    expect(res.resources.map((r) => [r.resourceType, r.resourceName, r.errorCode])).toEqual([[ConfigResourceTypes.TOPIC, 'admin-configured', ErrorCode.NONE]]);
    expect(await topicConfigs('admin-configured', ['cleanup.policy', 'retention.ms'])).toEqual({
      'cleanup.policy': ['delete', ConfigSource.DEFAULT_CONFIG],
      'retention.ms': ['7200000', ConfigSource.TOPIC_CONFIG],
    });

    await expect(
      admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'admin-configured', configEntries: [{ name: 'retention.ms', value: 'forever' }] }] }),
    ).rejects.toMatchObject({ type: 'INVALID_CONFIG' });
    await expect(
      admin.alterConfigs({ validateOnly: true, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'admin-configured', configEntries: [{ name: 'retention.ms', value: '1' }] }] }),
    ).resolves.toMatchObject({ resources: [{ errorCode: ErrorCode.NONE }] });
    expect(await topicConfigs('admin-configured', ['retention.ms'])).toEqual({ 'retention.ms': ['7200000', ConfigSource.TOPIC_CONFIG] });
  });

  it('createPartitions adds partitions and refuses to remove any', async () => {
    await admin.createPartitions({ topicPartitions: [{ topic: 'admin-plain', count: 3 }] });
    expect((await partitionsOf('admin-plain')).map((p) => p[0])).toEqual([0, 1, 2]);
    await expect(admin.createPartitions({ topicPartitions: [{ topic: 'admin-plain', count: 2 }] })).rejects.toMatchObject({ type: 'INVALID_PARTITIONS' });
    expect((await partitionsOf('admin-plain')).map((p) => p[0])).toEqual([0, 1, 2]);
  });

  it('fetchTopicOffsets and fetchTopicOffsetsByTimestamp find the records a producer wrote', async () => {
    await admin.createTopics({ topics: [{ topic: 'admin-offsets', numPartitions: 2, replicationFactor: 1 }] });
    const message = (i: number, partition: number) => ({ value: `v${i}`, partition, timestamp: String(BASE_TIMESTAMP + i * 1000) });
    // Partition 0: offsets 0–2 (one batch) and 3–4 (another); partition 1: offset 0.
    await producer.send({ topic: 'admin-offsets', acks: -1, messages: [message(0, 0), message(1, 0), message(2, 0)] });
    await producer.send({ topic: 'admin-offsets', acks: -1, messages: [message(3, 0), message(4, 0)] });
    await producer.send({ topic: 'admin-offsets', acks: -1, messages: [{ value: 'p1', partition: 1, timestamp: String(BASE_TIMESTAMP + 500) }] });

    const offsets = await admin.fetchTopicOffsets('admin-offsets');
    expect(offsets.sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '5', high: '5', low: '0' },
      { partition: 1, offset: '1', high: '1', low: '0' },
    ]);
    // The first offset whose timestamp is at or after the target; kafkajs answers the high
    // watermark where no record is that late.
    const byTime = async (t: number) => (await admin.fetchTopicOffsetsByTimestamp('admin-offsets', t)).sort((a, b) => a.partition - b.partition);
    expect(await byTime(BASE_TIMESTAMP)).toEqual([
      { partition: 0, offset: '0' },
      { partition: 1, offset: '0' },
    ]);
    expect(await byTime(BASE_TIMESTAMP + 1000)).toEqual([
      { partition: 0, offset: '1' },
      { partition: 1, offset: '1' },
    ]);
    expect(await byTime(BASE_TIMESTAMP + 2500)).toEqual([
      { partition: 0, offset: '3' },
      { partition: 1, offset: '1' },
    ]);
    expect(await byTime(BASE_TIMESTAMP + 4000)).toEqual([
      { partition: 0, offset: '4' },
      { partition: 1, offset: '1' },
    ]);
    expect(await byTime(BASE_TIMESTAMP + 60000)).toEqual([
      { partition: 0, offset: '5' },
      { partition: 1, offset: '1' },
    ]);
  });

  it('deleteTopicRecords moves the low watermark; fetching below it is OFFSET_OUT_OF_RANGE', async () => {
    await admin.deleteTopicRecords({ topic: 'admin-offsets', partitions: [{ partition: 0, offset: '3' }, { partition: 1, offset: '-1' }] });
    const offsets = await admin.fetchTopicOffsets('admin-offsets');
    expect(offsets.sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '5', high: '5', low: '3' },
      { partition: 1, offset: '1', high: '1', low: '1' },
    ]);
    expect(await fetchFrom(raw, 'admin-offsets', 0, 2n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    expect(await fetchFrom(raw, 'admin-offsets', 0, 3n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [3, 4], values: ['v3', 'v4'] });
    expect(await fetchFrom(raw, 'admin-offsets', 1, 0n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    // A timestamp before the deleted records now finds the new log start.
    expect((await admin.fetchTopicOffsetsByTimestamp('admin-offsets', BASE_TIMESTAMP)).sort((a, b) => a.partition - b.partition)).toEqual([
      { partition: 0, offset: '3' },
      { partition: 1, offset: '1' },
    ]);
  });

  it('deleteTopics removes topics from the cluster', async () => {
    await admin.deleteTopics({ topics: ['admin-configured', 'admin-offsets'] });
    expect((await admin.listTopics()).sort()).toEqual(['admin-plain']);
    await expect(admin.fetchTopicMetadata({ topics: ['admin-configured'] })).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });
});
