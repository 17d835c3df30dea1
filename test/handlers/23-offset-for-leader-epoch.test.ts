import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type OffsetForLeaderEpochRequest } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produceOk } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'epochs', 2);
  await produceOk(client, 'epochs', 0, ['a', 'b', 'c']);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function request(topic: string, partitions: { partition: number; leaderEpoch: number; currentLeaderEpoch?: number }[]): OffsetForLeaderEpochRequest {
  return {
    replicaId: -1,
    topics: [{ topic, partitions: partitions.map((p) => ({ partition: p.partition, leaderEpoch: p.leaderEpoch, currentLeaderEpoch: p.currentLeaderEpoch ?? -1 })) }],
  };
}

describe('OffsetForLeaderEpoch', () => {
  it('v0 answers epoch 0 with the high watermark (no leader epoch field)', async () => {
    const res = await client.send(23, 0, { ...request('epochs', [{ partition: 0, leaderEpoch: 0 }, { partition: 1, leaderEpoch: 0 }]), replicaId: -2 });
    expect(res.topics).toEqual([
      {
        topic: 'epochs',
        partitions: [
          { errorCode: ErrorCode.NONE, partition: 0, leaderEpoch: -1, endOffset: 3n },
          { errorCode: ErrorCode.NONE, partition: 1, leaderEpoch: -1, endOffset: 0n },
        ],
      },
    ]);
  });

  it('v4 answers epoch 0 with epoch 0 and the high watermark', async () => {
    const res = await client.send(23, 4, request('epochs', [{ partition: 0, leaderEpoch: 0, currentLeaderEpoch: 0 }]));
    expect(res).toEqual({ throttleTimeMs: 0, topics: [{ topic: 'epochs', partitions: [{ errorCode: ErrorCode.NONE, partition: 0, leaderEpoch: 0, endOffset: 3n }] }] });
  });

  it('answers an epoch it does not know (future, or undefined) with epoch -1 and offset -1, as Kafka does', async () => {
    const res = await client.send(23, 4, request('epochs', [
      { partition: 0, leaderEpoch: 5 },
      { partition: 0, leaderEpoch: -1 },
    ]));
    expect(res.topics[0]!.partitions).toEqual([
      { errorCode: ErrorCode.NONE, partition: 0, leaderEpoch: -1, endOffset: -1n },
      { errorCode: ErrorCode.NONE, partition: 0, leaderEpoch: -1, endOffset: -1n },
    ]);
  });

  it('v2+ answers a current leader epoch above 0 with UNKNOWN_LEADER_EPOCH', async () => {
    const res = await client.send(23, 2, request('epochs', [{ partition: 0, leaderEpoch: 0, currentLeaderEpoch: 1 }]));
    expect(res.topics[0]!.partitions).toEqual([{ errorCode: ErrorCode.UNKNOWN_LEADER_EPOCH, partition: 0, leaderEpoch: -1, endOffset: -1n }]);
  });

  it('answers unknown partitions and topics with UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const res = await client.send(23, 3, {
      replicaId: -1,
      topics: [
        { topic: 'epochs', partitions: [{ partition: 2, currentLeaderEpoch: -1, leaderEpoch: 0 }] },
        { topic: 'no-such-topic', partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] },
      ],
    });
    expect(res.topics).toEqual([
      { topic: 'epochs', partitions: [{ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partition: 2, leaderEpoch: -1, endOffset: -1n }] },
      { topic: 'no-such-topic', partitions: [{ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partition: 0, leaderEpoch: -1, endOffset: -1n }] },
    ]);
  });
});
