import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type OffsetDeleteResponse } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, commitOffsets, fetchOffsets, stableSingleMember } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
let admin: RawClient;
const clients: RawClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
  admin = await RawClient.connect(cluster.bootstrap, 'offset-delete-test');
  clients.push(admin);
  await createTopic(admin, 'subscribed', 2);
  await createTopic(admin, 'other', 1);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function offsetDelete(groupId: string, topics: Record<string, number[]>): Promise<OffsetDeleteResponse> {
  return admin.send(ApiKey.OffsetDelete, 0, { groupId, topics: Object.entries(topics).map(([name, ps]) => ({ name, partitions: ps.map((partitionIndex) => ({ partitionIndex })) })) });
}

async function commitAll(groupId: string, generation?: { generationId: number; memberId: string }): Promise<void> {
  await commitOffsets(admin, 8, {
    groupId,
    ...generation,
    topics: [
      { name: 'subscribed', partitions: [{ partitionIndex: 0, committedOffset: 1n }, { partitionIndex: 1, committedOffset: 2n }] },
      { name: 'other', partitions: [{ partitionIndex: 0, committedOffset: 3n }] },
    ],
  });
}

async function committed(groupId: string): Promise<string[]> {
  const r = await fetchOffsets(admin, 7, groupId, null);
  return r.topics.flatMap((t) => t.partitions.map((p) => `${t.name}:${p.partitionIndex}@${p.committedOffset}`));
}

describe('OffsetDelete', () => {
  it('deletes the given offsets of an empty group and keeps the rest', async () => {
    await commitAll('od-empty');
    const r = await offsetDelete('od-empty', { subscribed: [1], other: [0] });
    expect(r).toEqual({
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: [
        { name: 'subscribed', partitions: [{ partitionIndex: 1, errorCode: ErrorCode.NONE }] },
        { name: 'other', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.NONE }] },
      ],
    });
    expect(await committed('od-empty')).toEqual(['subscribed:0@1']);
  });

  it('refuses partitions of topics the active members subscribe to with GROUP_SUBSCRIBED_TO_TOPIC', async () => {
    const c = await RawClient.connect(cluster.bootstrap, 'od-member');
    clients.push(c);
    const m = await stableSingleMember(c, 'od-active', ['subscribed'], { subscribed: [0, 1] });
    await commitAll('od-active', m);
    const r = await offsetDelete('od-active', { subscribed: [0], other: [0] });
    expect(r).toEqual({
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: [
        { name: 'subscribed', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }] },
        { name: 'other', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.NONE }] },
      ],
    });
    expect(await committed('od-active')).toEqual(['subscribed:0@1', 'subscribed:1@2']);
  });

  it('a group that does not exist is GROUP_ID_NOT_FOUND', async () => {
    expect(await offsetDelete('od-missing', { other: [0] })).toEqual({ errorCode: ErrorCode.GROUP_ID_NOT_FOUND, throttleTimeMs: 0, topics: [] });
  });

  // Kafka checks every partition against the metadata first (KafkaApis.handleOffsetDeleteRequest).
  it('an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION', async () => {
    await commitAll('od-unknown');
    const r = await offsetDelete('od-unknown', { 'no-such-topic': [0], other: [5, 0] });
    expect(r.topics).toEqual([
      { name: 'no-such-topic', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      { name: 'other', partitions: [{ partitionIndex: 5, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }, { partitionIndex: 0, errorCode: ErrorCode.NONE }] },
    ]);
  });
});
