import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, commitErrors, commitOffsets, fetchOffsets, joinGroup, stableSingleMember, syncGroup, untilRebalancing } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
let admin: RawClient;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, 'commit-test');
  clients.push(c);
  return c;
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
  admin = await client();
  await createTopic(admin, 'orders', 3);
  await createTopic(admin, 'payments', 1);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

/** The committed offsets of `groupId` for `topic` partitions `partitions`, via OffsetFetch v7. */
async function committed(groupId: string, topic: string, partitions: number[]): Promise<{ partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; metadata: string | null; errorCode: number }[]> {
  const r = await fetchOffsets(admin, 7, groupId, [{ name: topic, partitionIndexes: partitions }]);
  expect(r.errorCode).toBe(ErrorCode.NONE);
  return r.topics[0]!.partitions;
}

describe('OffsetCommit', () => {
  it('commits without a generation to a group with no members and reads it back (v2, v7, v8)', async () => {
    for (const v of [2, 7, 8]) {
      const groupId = `commit-simple-v${v}`;
      const r = await commitOffsets(admin, v, {
        groupId,
        topics: [{ name: 'orders', partitions: [
          { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: 3, committedMetadata: `meta-${v}` },
          { partitionIndex: 2, committedOffset: 0n, committedLeaderEpoch: 4, committedMetadata: null },
        ] }],
      });
      expect(r).toEqual({ throttleTimeMs: 0, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.NONE }, { partitionIndex: 2, errorCode: ErrorCode.NONE }] }] });
      // The leader epoch is on the wire from v6; a null metadata is stored as ''.
      const epoch = (e: number): number => (v >= 6 ? e : -1);
      expect(await committed(groupId, 'orders', [0, 1, 2])).toEqual([
        { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: epoch(3), metadata: `meta-${v}`, errorCode: ErrorCode.NONE },
        { partitionIndex: 1, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: ErrorCode.NONE },
        { partitionIndex: 2, committedOffset: 0n, committedLeaderEpoch: epoch(4), metadata: '', errorCode: ErrorCode.NONE },
      ]);
    }
  });

  it('a later commit replaces the earlier one', async () => {
    await commitOffsets(admin, 8, { groupId: 'commit-replace', topics: [{ name: 'payments', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: 1, committedMetadata: 'first' }] }] });
    await commitOffsets(admin, 8, { groupId: 'commit-replace', topics: [{ name: 'payments', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: 2, committedMetadata: 'second' }] }] });
    expect(await committed('commit-replace', 'payments', [0])).toEqual([{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: 2, metadata: 'second', errorCode: ErrorCode.NONE }]);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION for an unknown topic or partition and commits the rest', async () => {
    const r = await commitOffsets(admin, 8, {
      groupId: 'commit-unknown-topic',
      topics: [
        { name: 'no-such-topic', partitions: [{ partitionIndex: 0, committedOffset: 1n }] },
        { name: 'orders', partitions: [{ partitionIndex: 3, committedOffset: 1n }, { partitionIndex: -1, committedOffset: 1n }, { partitionIndex: 1, committedOffset: 7n }] },
      ],
    });
    expect(commitErrors(r)).toEqual({
      'no-such-topic:0': ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      'orders:3': ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      'orders:-1': ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      'orders:1': ErrorCode.NONE,
    });
    expect((await committed('commit-unknown-topic', 'orders', [1]))[0]!.committedOffset).toBe(7n);
    expect((await committed('commit-unknown-topic', 'no-such-topic', [0]))[0]!.committedOffset).toBe(-1n);
  });

  it('answers OFFSET_METADATA_TOO_LARGE for metadata over offset.metadata.max.bytes (4096)', async () => {
    const r = await commitOffsets(admin, 8, {
      groupId: 'commit-metadata-size',
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: 'x'.repeat(4097) }, { partitionIndex: 1, committedOffset: 1n, committedMetadata: 'x'.repeat(4096) }] }],
    });
    expect(commitErrors(r)).toEqual({ 'orders:0': ErrorCode.OFFSET_METADATA_TOO_LARGE, 'orders:1': ErrorCode.NONE });
  });

  it('a member commits with its generation; another generation is ILLEGAL_GENERATION, an unknown member UNKNOWN_MEMBER_ID', async () => {
    const c = await client();
    const groupId = 'commit-member';
    const m = await stableSingleMember(c, groupId, ['orders'], { orders: [0, 1, 2] });
    const commit = (over: { generationId?: number; memberId?: string; groupInstanceId?: string | null }): Promise<Record<string, number>> =>
      commitOffsets(c, 8, { groupId, ...m, ...over, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 0, committedMetadata: 'm' }] }] }).then(commitErrors);
    expect(await commit({})).toEqual({ 'orders:0': ErrorCode.NONE });
    expect(await commit({ generationId: m.generationId + 1 })).toEqual({ 'orders:0': ErrorCode.ILLEGAL_GENERATION });
    expect(await commit({ memberId: 'nobody' })).toEqual({ 'orders:0': ErrorCode.UNKNOWN_MEMBER_ID });
    // Once the group has members, only members may commit.
    expect(await commit({ generationId: -1, memberId: '' })).toEqual({ 'orders:0': ErrorCode.UNKNOWN_MEMBER_ID });
    // v1 carries generation and member id too.
    expect(commitErrors(await commitOffsets(c, 1, { groupId, ...m, topics: [{ name: 'orders', partitions: [{ partitionIndex: 1, committedOffset: 9n }] }] }))).toEqual({ 'orders:1': ErrorCode.NONE });
    expect(commitErrors(await commitOffsets(c, 1, { groupId, generationId: m.generationId + 5, memberId: m.memberId, topics: [{ name: 'orders', partitions: [{ partitionIndex: 1, committedOffset: 9n }] }] }))).toEqual({ 'orders:1': ErrorCode.ILLEGAL_GENERATION });
  });

  it('commits are accepted while the group prepares a rebalance and refused with REBALANCE_IN_PROGRESS while it awaits the assignment', async () => {
    const [ca, cb] = [await client(), await client()];
    const groupId = 'commit-rebalance';
    const a = await stableSingleMember(ca, groupId, ['orders']);
    const commit = (generationId: number): Promise<Record<string, number>> =>
      commitOffsets(ca, 8, { groupId, generationId, memberId: a.memberId, topics: [{ name: 'orders', partitions: [{ partitionIndex: 2, committedOffset: BigInt(generationId) }] }] }).then(commitErrors);

    const bFirst = await joinGroup(cb, 5, { groupId, topics: ['orders'] });
    const bJoin = joinGroup(cb, 5, { groupId, memberId: bFirst.memberId, topics: ['orders'] });
    await untilRebalancing(ca, groupId, a);
    expect(await commit(a.generationId)).toEqual({ 'orders:2': ErrorCode.NONE });

    const aJoin = await joinGroup(ca, 5, { groupId, memberId: a.memberId, topics: ['orders'] });
    await bJoin;
    expect(await commit(aJoin.generationId)).toEqual({ 'orders:2': ErrorCode.REBALANCE_IN_PROGRESS });
    const bSync = syncGroup(cb, 3, { groupId, generationId: aJoin.generationId, memberId: bFirst.memberId });
    await syncGroup(ca, 3, { groupId, generationId: aJoin.generationId, memberId: a.memberId });
    await bSync;
    expect(await commit(aJoin.generationId)).toEqual({ 'orders:2': ErrorCode.NONE });
    expect((await committed(groupId, 'orders', [2]))[0]!.committedOffset).toBe(BigInt(aJoin.generationId));
  });

  it('v7: a static member commits with its instance id; another member id for it is FENCED_INSTANCE_ID', async () => {
    const c = await client();
    const groupId = 'commit-static';
    const j = await joinGroup(c, 5, { groupId, groupInstanceId: 'inst-1', topics: ['orders'] });
    await syncGroup(c, 3, { groupId, generationId: j.generationId, memberId: j.memberId, groupInstanceId: 'inst-1' });
    const commit = (memberId: string): Promise<Record<string, number>> =>
      commitOffsets(c, 7, { groupId, generationId: j.generationId, memberId, groupInstanceId: 'inst-1', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n }] }] }).then(commitErrors);
    expect(await commit(j.memberId)).toEqual({ 'orders:0': ErrorCode.NONE });
    expect(await commit('inst-1-impostor')).toEqual({ 'orders:0': ErrorCode.FENCED_INSTANCE_ID });
  });

  // Kafka: a commit with a generation for a group that does not exist comes from an older
  // generation of a group that is gone (GroupCoordinator.handleCommitOffsets).
  it('a commit with a generation to a group that does not exist is ILLEGAL_GENERATION', async () => {
    const r = await commitOffsets(admin, 8, { groupId: 'commit-no-such-group', generationId: 3, memberId: 'm-1', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n }] }] });
    expect(commitErrors(r)).toEqual({ 'orders:0': ErrorCode.ILLEGAL_GENERATION });
  });

  // Kafka accepts offset commits and fetches for the empty group id, for backward
  // compatibility (GroupCoordinator.isValidGroupId); only group membership APIs refuse it.
  it('accepts offsets for the empty group id, as Kafka does', async () => {
    const r = await commitOffsets(admin, 2, { groupId: '', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 12n }] }] });
    expect(commitErrors(r)).toEqual({ 'orders:0': ErrorCode.NONE });
    expect((await committed('', 'orders', [0]))[0]!.committedOffset).toBe(12n);
  });

  it('v0 (no generation on the wire) commits like an admin tool', async () => {
    const c = await client();
    const groupId = 'commit-v0';
    const r = await commitOffsets(c, 0, { groupId, topics: [{ name: 'payments', partitions: [{ partitionIndex: 0, committedOffset: 77n, committedMetadata: 'v0' }] }] });
    expect(commitErrors(r)).toEqual({ 'payments:0': ErrorCode.NONE });
    expect(await committed(groupId, 'payments', [0])).toEqual([{ partitionIndex: 0, committedOffset: 77n, committedLeaderEpoch: -1, metadata: 'v0', errorCode: ErrorCode.NONE }]);
  });
});
