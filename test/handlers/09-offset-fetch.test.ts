import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, commitOffsets, fetchOffsets } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
  c = await RawClient.connect(cluster.bootstrap, 'fetch-offsets-test');
  await createTopic(c, 'alpha', 2);
  await createTopic(c, 'beta', 1);
  // g1: alpha/0 and beta/0 committed with epochs and metadata; g2: alpha/1 only.
  await commitOffsets(c, 8, {
    groupId: 'g1',
    topics: [
      { name: 'beta', partitions: [{ partitionIndex: 0, committedOffset: 30n, committedLeaderEpoch: 7, committedMetadata: 'beta-meta' }] },
      { name: 'alpha', partitions: [{ partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: 5, committedMetadata: 'alpha-meta' }] },
    ],
  });
  await commitOffsets(c, 8, { groupId: 'g2', topics: [{ name: 'alpha', partitions: [{ partitionIndex: 1, committedOffset: 0n, committedLeaderEpoch: 0, committedMetadata: '' }] }] });
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

const NONE = ErrorCode.NONE;

describe('OffsetFetch', () => {
  it('v1: the asked partitions, -1 and empty metadata where nothing is committed', async () => {
    const r = await fetchOffsets(c, 1, 'g1', [{ name: 'alpha', partitionIndexes: [0, 1] }, { name: 'beta', partitionIndexes: [0] }]);
    expect(r).toEqual({
      throttleTimeMs: 0,
      errorCode: NONE,
      groups: [],
      topics: [
        { name: 'alpha', partitions: [
          { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: -1, metadata: 'alpha-meta', errorCode: NONE },
          { partitionIndex: 1, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: NONE },
        ] },
        { name: 'beta', partitions: [{ partitionIndex: 0, committedOffset: 30n, committedLeaderEpoch: -1, metadata: 'beta-meta', errorCode: NONE }] },
      ],
    });
  });

  it('v2+: null topics means every committed partition, by topic and partition', async () => {
    for (const v of [2, 5, 7]) {
      const r = await fetchOffsets(c, v, 'g1', null);
      // The committed leader epoch is on the wire from v5 (KIP-320).
      const epoch = (e: number): number => (v >= 5 ? e : -1);
      expect(r.errorCode).toBe(NONE);
      expect(r.topics).toEqual([
        { name: 'alpha', partitions: [{ partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: epoch(5), metadata: 'alpha-meta', errorCode: NONE }] },
        { name: 'beta', partitions: [{ partitionIndex: 0, committedOffset: 30n, committedLeaderEpoch: epoch(7), metadata: 'beta-meta', errorCode: NONE }] },
      ]);
    }
  });

  it('a group with no offsets (or none at all) answers -1 without an error', async () => {
    const r = await fetchOffsets(c, 7, 'no-such-group', [{ name: 'alpha', partitionIndexes: [0] }]);
    expect(r).toMatchObject({ errorCode: NONE, topics: [{ name: 'alpha', partitions: [{ partitionIndex: 0, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: NONE }] }] });
    expect((await fetchOffsets(c, 7, 'no-such-group', null)).topics).toEqual([]);
  });

  it('v8: several groups in one request, each with its own topics or all of them', async () => {
    const r = await c.send(ApiKey.OffsetFetch, 8, {
      groupId: '',
      topics: [],
      requireStable: true,
      groups: [
        { groupId: 'g1', memberId: null, memberEpoch: -1, topics: [{ name: 'alpha', partitionIndexes: [0, 1] }] },
        { groupId: 'g2', memberId: null, memberEpoch: -1, topics: null },
        { groupId: 'g3', memberId: null, memberEpoch: -1, topics: [{ name: 'beta', partitionIndexes: [0] }] },
      ],
    });
    expect(r).toEqual({
      throttleTimeMs: 0,
      errorCode: NONE,
      topics: [],
      groups: [
        { groupId: 'g1', errorCode: NONE, topics: [{ name: 'alpha', partitions: [
          { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: 5, metadata: 'alpha-meta', errorCode: NONE },
          { partitionIndex: 1, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: NONE },
        ] }] },
        { groupId: 'g2', errorCode: NONE, topics: [{ name: 'alpha', partitions: [{ partitionIndex: 1, committedOffset: 0n, committedLeaderEpoch: 0, metadata: '', errorCode: NONE }] }] },
        { groupId: 'g3', errorCode: NONE, topics: [{ name: 'beta', partitions: [{ partitionIndex: 0, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: NONE }] }] },
      ],
    });
  });

  it('any broker answers: offsets are read from Redis, not from the coordinator', async () => {
    const other = await cluster.addBroker();
    const c2 = await RawClient.connect(`127.0.0.1:${other.port}`, 'fetch-offsets-other');
    try {
      const r = await fetchOffsets(c2, 6, 'g1', [{ name: 'beta', partitionIndexes: [0] }]);
      expect(r.topics).toEqual([{ name: 'beta', partitions: [{ partitionIndex: 0, committedOffset: 30n, committedLeaderEpoch: 7, metadata: 'beta-meta', errorCode: NONE }] }]);
    } finally {
      c2.close();
    }
  });
});
