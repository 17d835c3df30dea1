import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ZERO_UUID, type CreatePartitionsRequest } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, fetchFrom, produceOk } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'growing', 2);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(topics: { name: string; count: number; assignments?: number[][] | null }[], validateOnly = false): CreatePartitionsRequest {
  return {
    topics: topics.map((t) => ({ name: t.name, count: t.count, assignments: t.assignments === undefined || t.assignments === null ? null : t.assignments.map((brokerIds) => ({ brokerIds })) })),
    timeoutMs: 5000,
    validateOnly,
  };
}

async function partitionCount(name: string): Promise<number> {
  const res = await client.send(3, 12, { topics: [{ topicId: ZERO_UUID, name }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  expect(res.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  return res.topics[0]!.partitions.length;
}

describe('CreatePartitions', () => {
  it('v0 raises the partition count, and the new partitions take records at once', async () => {
    const res = await client.send(37, 0, request([{ name: 'growing', count: 4 }]));
    expect(res).toEqual({ throttleTimeMs: 0, results: [{ name: 'growing', errorCode: ErrorCode.NONE, errorMessage: null }] });
    expect(await partitionCount('growing')).toBe(4);
    expect(await produceOk(client, 'growing', 3, ['new'])).toBe(0n);
    expect(await fetchFrom(client, 'growing', 3, 0n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [0], values: ['new'] });
  });

  it('refuses a lower or equal count with INVALID_PARTITIONS and Kafka\'s messages', async () => {
    const res = await client.send(37, 1, request([{ name: 'growing', count: 3 }]));
    expect(res.results).toEqual([{ name: 'growing', errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: 'Topic currently has 4 partitions, which is higher than the requested 3.' }]);
    const same = await client.send(37, 1, request([{ name: 'growing', count: 4 }]));
    expect(same.results).toEqual([{ name: 'growing', errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: 'Topic already has 4 partition(s).' }]);
    const huge = await client.send(37, 1, request([{ name: 'growing', count: 10001 }]));
    expect(huge.results).toEqual([
      { name: 'growing', errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: 'partition count 10001 is over the limit of 10000 per topic; ask for at most 10000 or raise --max-partitions-per-topic' },
    ]);
    expect(await partitionCount('growing')).toBe(4);
  });

  it('v3 with validateOnly checks and changes nothing', async () => {
    const res = await client.send(37, 3, request([{ name: 'growing', count: 6 }], true));
    expect(res.results).toEqual([{ name: 'growing', errorCode: ErrorCode.NONE, errorMessage: null }]);
    expect(await partitionCount('growing')).toBe(4);
  });

  it('accepts one replica assignment per new partition and refuses any other number', async () => {
    const wrong = await client.send(37, 2, request([{ name: 'growing', count: 6, assignments: [[1]] }]));
    expect(wrong.results).toEqual([{ name: 'growing', errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: 'Increasing the number of partitions by 2 but 1 assignments provided.' }]);
    const right = await client.send(37, 2, request([{ name: 'growing', count: 6, assignments: [[1], [2]] }]));
    expect(right.results).toEqual([{ name: 'growing', errorCode: ErrorCode.NONE, errorMessage: null }]);
    expect(await partitionCount('growing')).toBe(6);
  });

  it('answers unknown topics with UNKNOWN_TOPIC_OR_PARTITION and a topic named twice once, with INVALID_REQUEST', async () => {
    await createTopic(client, 'twice', 1);
    const res = await client.send(37, 3, request([
      { name: 'no-such-topic', count: 2 },
      { name: 'twice', count: 2 },
      { name: 'twice', count: 3 },
    ]));
    expect(res.results).toEqual([
      { name: 'no-such-topic', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic "no-such-topic" does not exist' },
      { name: 'twice', errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic in request.' },
    ]);
    expect(await partitionCount('twice')).toBe(1);
  });

  it('never lowers the count from a stale read, nor re-creates a topic deleted meanwhile (checked in Redis)', async () => {
    await createTopic(client, 'raced', 2);
    const topics = cluster.brokers[0]!.broker!.topics;
    const stale = (await topics.readByName('raced'))!;
    expect(stale.partitions).toBe(2);
    expect(await topics.raisePartitionCount(stale, 12, 100_000)).toEqual({ outcome: 'ok', before: 2 });
    // A request that read 2 before the raise to 12 asks for 3: refused, the count stays 12.
    expect(await topics.raisePartitionCount(stale, 3, 100_000)).toEqual({ outcome: 'not-higher', before: 12 });
    expect((await topics.readByName('raced'))!.partitions).toBe(12);
    const deleted = await client.send(20, 6, { topics: [{ name: 'raced', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await topics.raisePartitionCount(stale, 20, 100_000)).toEqual({ outcome: 'gone' });
    expect(await topics.readByName('raced')).toBeNull();
  });

  it('ends at the highest of many concurrent increases, each answered NONE or INVALID_PARTITIONS', async () => {
    await createTopic(client, 'contended', 1);
    const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.connect(cluster.bootstrap)));
    try {
      const answers = await Promise.all(clients.map((c, i) => c.send(37, 3, request([{ name: 'contended', count: 2 + i }]))));
      for (const a of answers) expect([ErrorCode.NONE, ErrorCode.INVALID_PARTITIONS]).toContain(a.results[0]!.errorCode);
      expect(answers[7]!.results[0]!.errorCode).toBe(ErrorCode.NONE);
      expect((await cluster.brokers[0]!.broker!.topics.readByName('contended'))!.partitions).toBe(9);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('CreatePartitions partition limits', () => {
  let limited: Cluster;
  let admin: RawClient;

  beforeAll(async () => {
    limited = await startCluster({ brokerArgs: ['--max-partitions-per-topic', '6', '--max-partitions', '10'] });
    admin = await RawClient.connect(limited.bootstrap);
    await createTopic(admin, 'wide', 2);
    await createTopic(admin, 'other', 4);
  });

  afterAll(async () => {
    admin?.close();
    await limited?.stop();
  });

  async function counts(): Promise<Record<string, number>> {
    const res = await admin.send(3, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    return Object.fromEntries(res.topics.map((t) => [t.name, t.partitions.length]));
  }

  it('refuses a count over --max-partitions-per-topic with INVALID_PARTITIONS, validateOnly or not', async () => {
    for (const validateOnly of [true, false]) {
      const res = await admin.send(37, 3, request([{ name: 'wide', count: 7 }], validateOnly));
      expect(res.results).toEqual([
        { name: 'wide', errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: 'partition count 7 is over the limit of 6 per topic; ask for at most 6 or raise --max-partitions-per-topic' },
      ]);
    }
    expect(await counts()).toEqual({ other: 4, wide: 2 });
  });

  it('raises up to --max-partitions, then refuses with POLICY_VIOLATION; validateOnly checks the same and writes nothing', async () => {
    const checked = await admin.send(37, 3, request([{ name: 'wide', count: 6 }], true));
    expect(checked.results).toEqual([{ name: 'wide', errorCode: ErrorCode.NONE, errorMessage: null }]);
    expect(await counts()).toEqual({ other: 4, wide: 2 });
    // 2 + 4 = 6 in the cluster: wide to 6 makes 10, the limit; other to 5 would make 11.
    const res = await admin.send(37, 3, request([{ name: 'wide', count: 6 }, { name: 'other', count: 5 }]));
    const refusal = 'adding partitions to topic "other" would bring the cluster from 10 to 11 partitions, over the limit of 10; delete topics or raise --max-partitions';
    expect(res.results).toEqual([
      { name: 'wide', errorCode: ErrorCode.NONE, errorMessage: null },
      { name: 'other', errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: refusal },
    ]);
    const again = await admin.send(37, 3, request([{ name: 'other', count: 5 }], true));
    expect(again.results).toEqual([{ name: 'other', errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: refusal }]);
    expect(await counts()).toEqual({ other: 4, wide: 6 });
  });
});
