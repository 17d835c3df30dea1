import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionKeys } from '../../src/coordination/keys.js';
import { ErrorCode, ZERO_UUID } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, partitionOffsets, produceOk } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;
let redis: Redis;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  redis = new Redis(cluster.redis.url, { lazyConnect: true });
  await redis.connect();
});

afterAll(async () => {
  client?.close();
  redis?.disconnect();
  await cluster?.stop();
});

/** Metadata v12 for one topic, without auto-creation: its error code and partition count. */
async function lookup(name: string): Promise<{ errorCode: number; partitions: number }> {
  const res = await client.send(3, 12, { topics: [{ topicId: ZERO_UUID, name }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  const t = res.topics[0]!;
  return { errorCode: t.errorCode, partitions: t.partitions.length };
}

/** How many of the partition's Redis keys exist. */
async function partitionKeysLeft(topicId: string, partitions: number): Promise<number> {
  let n = 0;
  for (let p = 0; p < partitions; p++) {
    const k = partitionKeys({ topicId, partition: p });
    n += await redis.exists(k.meta, k.idx, k.tidx, k.producers);
  }
  return n;
}

describe('DeleteTopics', () => {
  it('v0 deletes a topic by name with its partition state, and answers unknown names', async () => {
    const topicId = await createTopic(client, 'delete-v0', 2);
    await produceOk(client, 'delete-v0', 0, ['a', 'b']);
    await produceOk(client, 'delete-v0', 1, ['c']);
    expect(await partitionKeysLeft(topicId, 2)).toBeGreaterThan(0);

    const res = await client.send(20, 0, { topics: [], topicNames: ['delete-v0', 'delete-missing'], timeoutMs: 5000 });
    expect(res.responses).toEqual([
      { name: 'delete-v0', topicId: ZERO_UUID, errorCode: ErrorCode.NONE, errorMessage: null },
      { name: 'delete-missing', topicId: ZERO_UUID, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null },
    ]);
    expect(await lookup('delete-v0')).toEqual({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: 0 });
    expect(await partitionKeysLeft(topicId, 2)).toBe(0);
    // No key of any kind names the topic any more (partition state, the topic record).
    const left: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${topicId}*`, 'COUNT', 1000);
      cursor = next;
      left.push(...keys);
    } while (cursor !== '0');
    expect(left).toEqual([]);
  });

  it('a topic created again under a deleted name gets a new id and starts empty', async () => {
    const oldId = await createTopic(client, 'delete-recreate', 1);
    await produceOk(client, 'delete-recreate', 0, ['x', 'y', 'z']);
    const del = await client.send(20, 5, { topics: [], topicNames: ['delete-recreate'], timeoutMs: 5000 });
    expect(del.responses).toEqual([{ name: 'delete-recreate', topicId: ZERO_UUID, errorCode: ErrorCode.NONE, errorMessage: null }]);
    const newId = await createTopic(client, 'delete-recreate', 1);
    expect(newId).not.toBe(oldId);
    expect(await partitionOffsets(client, 'delete-recreate', 0)).toEqual({ logStart: 0n, hw: 0n });
  });

  it('v5 gives a message for an unknown name', async () => {
    const res = await client.send(20, 5, { topics: [], topicNames: ['delete-none'], timeoutMs: 5000 });
    expect(res.responses).toEqual([{ name: 'delete-none', topicId: ZERO_UUID, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic "delete-none" does not exist' }]);
  });

  it('v6 deletes by topic id and names the topic in the answer', async () => {
    const topicId = await createTopic(client, 'delete-by-id', 3);
    const res = await client.send(20, 6, { topics: [{ name: null, topicId }], topicNames: [], timeoutMs: 5000 });
    expect(res.responses).toEqual([{ name: 'delete-by-id', topicId, errorCode: ErrorCode.NONE, errorMessage: null }]);
    expect(await lookup('delete-by-id')).toEqual({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: 0 });
  });

  it('v6 deletes by name and reports the id', async () => {
    const topicId = await createTopic(client, 'delete-v6-name', 1);
    const res = await client.send(20, 6, { topics: [{ name: 'delete-v6-name', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    expect(res.responses).toEqual([{ name: 'delete-v6-name', topicId, errorCode: ErrorCode.NONE, errorMessage: null }]);
  });

  it('v6 answers an unknown id with UNKNOWN_TOPIC_ID', async () => {
    const unknown = 'AAAAAAAAAAAAAAAAAAAAAQ';
    const res = await client.send(20, 6, { topics: [{ name: null, topicId: unknown }], topicNames: [], timeoutMs: 5000 });
    expect(res.responses).toEqual([{ name: null, topicId: unknown, errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: `no topic has id ${unknown}` }]);
  });

  it('v6 refuses malformed entries and duplicates with INVALID_REQUEST and deletes none of them', async () => {
    const keepId = await createTopic(client, 'delete-keep', 1);
    await createTopic(client, 'delete-twice', 1);
    const res = await client.send(20, 6, {
      topics: [
        { name: null, topicId: ZERO_UUID },
        { name: 'delete-keep', topicId: keepId },
        { name: 'delete-twice', topicId: ZERO_UUID },
        { name: 'delete-twice', topicId: ZERO_UUID },
      ],
      topicNames: [],
      timeoutMs: 5000,
    });
    expect(res.responses).toEqual([
      { name: null, topicId: ZERO_UUID, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Neither topic name nor id were specified.' },
      { name: 'delete-keep', topicId: keepId, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'You may not specify both topic name and topic id.' },
      { name: 'delete-twice', topicId: ZERO_UUID, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' },
    ]);
    expect(await lookup('delete-keep')).toEqual({ errorCode: ErrorCode.NONE, partitions: 1 });
    expect(await lookup('delete-twice')).toEqual({ errorCode: ErrorCode.NONE, partitions: 1 });
  });

  it('a delete of a topic that was re-created meanwhile leaves the new topic in place', async () => {
    await createTopic(client, 'reborn', 1);
    const topics = cluster.brokers[0]!.broker!.topics;
    const old = (await topics.readByName('reborn'))!;
    const gone = await client.send(20, 6, { topics: [{ name: 'reborn', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    expect(gone.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    await createTopic(client, 'reborn', 3);
    const reborn = (await topics.readByName('reborn'))!;
    expect(reborn.topicId).not.toBe(old.topicId);
    // A second deleter that had read the old topic finishes late: only the old metadata goes.
    await topics.delete(old);
    expect(await topics.readByName('reborn')).toEqual(reborn);
  });
});
