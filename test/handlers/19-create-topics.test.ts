/**
 * CreateTopics (key 19) against the partition limits: a topic over
 * `--max-partitions-per-topic` is INVALID_PARTITIONS, one that would take the cluster over
 * `--max-partitions` is POLICY_VIOLATION, each with a message naming the limit, the count and
 * the flag; validateOnly checks both and creates nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ZERO_UUID, type CreateTopicsRequest } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--max-partitions-per-topic', '8', '--max-partitions', '20'] });
  client = await RawClient.connect(cluster.bootstrap);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(topics: { name: string; partitions: number }[], validateOnly = false): CreateTopicsRequest {
  return {
    topics: topics.map((t) => ({ name: t.name, numPartitions: t.partitions, replicationFactor: 1, assignments: [], configs: [] })),
    timeoutMs: 5000,
    validateOnly,
  };
}

/** The names of every topic in the cluster (all-topics Metadata). */
async function topicNames(): Promise<string[]> {
  const res = await client.send(3, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  return res.topics.map((t) => t.name ?? '');
}

describe('CreateTopics partition limits', () => {
  it('refuses a topic over --max-partitions-per-topic with INVALID_PARTITIONS, validateOnly or not', async () => {
    for (const validateOnly of [true, false]) {
      const res = await client.send(19, 7, request([{ name: 'too-wide', partitions: 9 }], validateOnly));
      expect(res.topics.map((t) => [t.name, t.errorCode, t.errorMessage, t.topicId, t.numPartitions])).toEqual([
        ['too-wide', ErrorCode.INVALID_PARTITIONS, 'partition count 9 is over the limit of 8 per topic; ask for at most 8 or raise --max-partitions-per-topic', ZERO_UUID, -1],
      ]);
    }
    expect(await topicNames()).toEqual([]);
  });

  it('creates up to --max-partitions, then refuses with POLICY_VIOLATION and a message naming the counts', async () => {
    // 8 + 8 = 16 fit; a third of 8 would make 24 > 20; 4 more fit exactly.
    const res = await client.send(19, 5, request([
      { name: 'fill-a', partitions: 8 },
      { name: 'fill-b', partitions: 8 },
      { name: 'fill-c', partitions: 8 },
      { name: 'fill-d', partitions: 4 },
    ]));
    expect(res.topics.map((t) => [t.name, t.errorCode, t.errorMessage, t.numPartitions])).toEqual([
      ['fill-a', ErrorCode.NONE, null, 8],
      ['fill-b', ErrorCode.NONE, null, 8],
      ['fill-c', ErrorCode.POLICY_VIOLATION, 'topic "fill-c" would bring the cluster from 16 to 24 partitions, over the limit of 20; delete topics or raise --max-partitions', -1],
      ['fill-d', ErrorCode.NONE, null, 4],
    ]);
    expect(await topicNames()).toEqual(['fill-a', 'fill-b', 'fill-d']);
  });

  it('validateOnly checks the cluster limit and creates nothing', async () => {
    const full = await client.send(19, 7, request([{ name: 'one-more', partitions: 1 }], true));
    expect(full.topics.map((t) => [t.name, t.errorCode, t.errorMessage])).toEqual([
      ['one-more', ErrorCode.POLICY_VIOLATION, 'topic "one-more" would bring the cluster from 20 to 21 partitions, over the limit of 20; delete topics or raise --max-partitions'],
    ]);
    const deleted = await client.send(20, 6, { topics: [{ name: 'fill-d', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    const fits = await client.send(19, 7, request([{ name: 'one-more', partitions: 4 }], true));
    expect(fits.topics.map((t) => [t.name, t.errorCode, t.errorMessage, t.topicId, t.numPartitions])).toEqual([['one-more', ErrorCode.NONE, null, ZERO_UUID, 4]]);
    expect(await topicNames()).toEqual(['fill-a', 'fill-b']);
    // The check created nothing and counted nothing: the real request still fits.
    const created = await client.send(19, 7, request([{ name: 'one-more', partitions: 4 }]));
    expect(created.topics.map((t) => [t.name, t.errorCode])).toEqual([['one-more', ErrorCode.NONE]]);
  });

  it('answers an existing name with TOPIC_ALREADY_EXISTS before the limit', async () => {
    const res = await client.send(19, 7, request([{ name: 'fill-a', partitions: 8 }]));
    expect(res.topics.map((t) => [t.name, t.errorCode, t.errorMessage])).toEqual([['fill-a', ErrorCode.TOPIC_ALREADY_EXISTS, 'topic "fill-a" already exists']]);
  });
});
