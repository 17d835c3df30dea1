import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { groupKeys } from '../../src/coordination/keys.js';
import { GROUP_BROKER_ARGS, commitOffsets, fetchOffsets, stableSingleMember } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
let admin: RawClient;
const clients: RawClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
  admin = await RawClient.connect(cluster.bootstrap, 'delete-groups-test');
  clients.push(admin);
  await createTopic(admin, 't', 2);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function deleteGroups(version: number, groupsNames: string[]): Promise<{ throttleTimeMs: number; results: { groupId: string; errorCode: number }[] }> {
  return admin.send(ApiKey.DeleteGroups, version, { groupsNames });
}

describe('DeleteGroups', () => {
  it('deletes an empty group with its offsets; answers NON_EMPTY_GROUP and GROUP_ID_NOT_FOUND per group, in order', async () => {
    await commitOffsets(admin, 8, { groupId: 'dg-empty', topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 5n }, { partitionIndex: 1, committedOffset: 6n }] }] });
    const member = await RawClient.connect(cluster.bootstrap, 'dg-member');
    clients.push(member);
    await stableSingleMember(member, 'dg-busy', ['t']);

    for (const v of [0, 1, 2]) {
      const r = await deleteGroups(v, v === 0 ? ['dg-busy', 'dg-empty', 'dg-missing'] : ['dg-busy', 'dg-missing']);
      expect(r.throttleTimeMs).toBe(0);
      expect(r.results).toEqual(
        v === 0
          ? [
              { groupId: 'dg-busy', errorCode: ErrorCode.NON_EMPTY_GROUP },
              { groupId: 'dg-empty', errorCode: ErrorCode.NONE },
              { groupId: 'dg-missing', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
            ]
          : [
              { groupId: 'dg-busy', errorCode: ErrorCode.NON_EMPTY_GROUP },
              { groupId: 'dg-missing', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
            ],
      );
    }
    const offsets = await fetchOffsets(admin, 7, 'dg-empty', null);
    expect(offsets).toMatchObject({ errorCode: ErrorCode.NONE, topics: [] });
    const described = await admin.send(ApiKey.DescribeGroups, 5, { groups: ['dg-empty', 'dg-busy'], includeAuthorizedOperations: false });
    expect(described.groups.map((g) => [g.groupId, g.groupState])).toEqual([
      ['dg-empty', 'Dead'],
      ['dg-busy', 'Stable'],
    ]);
    const listed = await admin.send(ApiKey.ListGroups, 4, { statesFilter: [], typesFilter: [] });
    expect(listed.groups.map((g) => g.groupId)).toEqual(['dg-busy']);
    // Deleted is deleted: a second delete does not find it.
    expect((await deleteGroups(2, ['dg-empty'])).results).toEqual([{ groupId: 'dg-empty', errorCode: ErrorCode.GROUP_ID_NOT_FOUND }]);
  });

  it('a deleted group id can be used again from scratch', async () => {
    await commitOffsets(admin, 8, { groupId: 'dg-reuse', topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 9n }] }] });
    expect((await deleteGroups(2, ['dg-reuse'])).results[0]!.errorCode).toBe(ErrorCode.NONE);
    const c = await RawClient.connect(cluster.bootstrap, 'dg-reuse');
    clients.push(c);
    const m = await stableSingleMember(c, 'dg-reuse', ['t']);
    expect(m.generationId).toBe(1);
    expect((await fetchOffsets(admin, 7, 'dg-reuse', [{ name: 't', partitionIndexes: [0] }])).topics[0]!.partitions[0]!.committedOffset).toBe(-1n);
  });

  it('deleting a group whose members left removes its record, its offsets and its lease from Redis', async () => {
    const c = await RawClient.connect(cluster.bootstrap, 'dg-left');
    clients.push(c);
    const m = await stableSingleMember(c, 'dg-left', ['t']);
    await commitOffsets(c, 8, { groupId: 'dg-left', generationId: m.generationId, memberId: m.memberId, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 3n }] }] });
    await c.send(ApiKey.LeaveGroup, 3, { groupId: 'dg-left', memberId: '', members: [{ memberId: m.memberId, groupInstanceId: null, reason: null }] });
    const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
    try {
      const keys = groupKeys('dg-left');
      // The leave already deleted the member's fields (an empty hash is no key at all).
      expect(await redis.exists(keys.state, keys.members, keys.offsets)).toBe(2);
      expect(await redis.exists(keys.members)).toBe(0);
      expect((await deleteGroups(2, ['dg-left'])).results).toEqual([{ groupId: 'dg-left', errorCode: ErrorCode.NONE }]);
      expect(await redis.exists(keys.state, keys.members, keys.offsets, keys.lease)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
