import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type DescribeGroupsResponse } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, assignment, joinGroup, joinNew, subscription, syncGroup, untilRebalancing } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(clientId: string): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, clientId);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

const NOT_REQUESTED = -2147483648;

function describeGroups(c: RawClient, version: number, groups: string[]): Promise<DescribeGroupsResponse> {
  return c.send(ApiKey.DescribeGroups, version, { groups, includeAuthorizedOperations: false });
}

describe('DescribeGroups', () => {
  it('a group that does not exist is Dead with no error', async () => {
    const c = await client('describe-admin');
    for (const v of [0, 3, 5]) {
      expect(await describeGroups(c, v, ['describe-nothing'])).toEqual({
        throttleTimeMs: 0,
        groups: [{ errorCode: ErrorCode.NONE, groupId: 'describe-nothing', groupState: 'Dead', protocolType: '', protocolData: '', members: [], authorizedOperations: NOT_REQUESTED }],
      });
    }
  });

  it('a Stable group: protocol, and per member its ids, client id and host, metadata and assignment', async () => {
    const groupId = 'describe-stable';
    const [ca, cs] = [await client('client-a'), await client('client-s')];
    const a = await joinNew(ca, 5, { groupId, topics: ['t1'] });
    await syncGroup(ca, 3, { groupId, generationId: a.generationId, memberId: a.memberId });
    const sJoin = joinGroup(cs, 5, { groupId, groupInstanceId: 'inst-s', topics: ['t1', 't2'] });
    await untilRebalancing(ca, groupId, a);
    const aJoin = await joinGroup(ca, 5, { groupId, memberId: a.memberId, topics: ['t1'] });
    const s = await sJoin;
    const [aAssign, sAssign] = [assignment({ t1: [0] }), assignment({ t1: [1], t2: [0] })];
    const sSync = syncGroup(cs, 3, { groupId, generationId: aJoin.generationId, memberId: s.memberId, groupInstanceId: 'inst-s' });
    await syncGroup(ca, 3, { groupId, generationId: aJoin.generationId, memberId: a.memberId, assignments: [{ memberId: a.memberId, assignment: aAssign }, { memberId: s.memberId, assignment: sAssign }] });
    await sSync;

    const members = [
      { memberId: a.memberId, groupInstanceId: null, clientId: 'client-a', clientHost: '/127.0.0.1', memberMetadata: subscription(['t1']), memberAssignment: aAssign },
      { memberId: s.memberId, groupInstanceId: 'inst-s', clientId: 'client-s', clientHost: '/127.0.0.1', memberMetadata: subscription(['t1', 't2']), memberAssignment: sAssign },
    ];
    const r = await describeGroups(ca, 5, [groupId]);
    expect(r.groups).toEqual([{ errorCode: ErrorCode.NONE, groupId, groupState: 'Stable', protocolType: 'consumer', protocolData: 'range', members, authorizedOperations: NOT_REQUESTED }]);
    // Static instance ids are on the wire from v4.
    const v3 = await describeGroups(ca, 3, [groupId]);
    expect(v3.groups[0]!.members).toEqual(members.map((m) => ({ ...m, groupInstanceId: null })));
  });

  it('describes several groups in request order', async () => {
    const c = await client('describe-many');
    await joinNew(c, 5, { groupId: 'describe-many-1' });
    const r = await describeGroups(c, 1, ['describe-nothing-2', 'describe-many-1']);
    expect(r.groups.map((g) => [g.groupId, g.groupState])).toEqual([
      ['describe-nothing-2', 'Dead'],
      ['describe-many-1', 'CompletingRebalance'],
    ]);
  });

  // Kafka (GroupMetadata.summary) gives the protocol and the members' metadata and assignment
  // only for a Stable group; in every other state protocolData is '' and members come without
  // metadata or assignment.
  it('a group awaiting its assignment (CompletingRebalance) shows no protocol, metadata or assignment', async () => {
    const groupId = 'describe-completing';
    const c = await client('client-c');
    const j = await joinNew(c, 5, { groupId, topics: ['t1'] });
    const r = await describeGroups(c, 5, [groupId]);
    expect(r.groups).toEqual([{
      errorCode: ErrorCode.NONE,
      groupId,
      groupState: 'CompletingRebalance',
      protocolType: 'consumer',
      protocolData: '',
      members: [{ memberId: j.memberId, groupInstanceId: null, clientId: 'client-c', clientHost: '/127.0.0.1', memberMetadata: Buffer.alloc(0), memberAssignment: Buffer.alloc(0) }],
      authorizedOperations: NOT_REQUESTED,
    }]);
  });

  it('an Empty group (its members left) keeps its protocol type', async () => {
    const groupId = 'describe-empty';
    const c = await client('client-e');
    const j = await joinNew(c, 5, { groupId });
    await c.send(ApiKey.LeaveGroup, 0, { groupId, memberId: j.memberId, members: [] });
    const r = await describeGroups(c, 5, [groupId]);
    expect(r.groups).toEqual([{ errorCode: ErrorCode.NONE, groupId, groupState: 'Empty', protocolType: 'consumer', protocolData: '', members: [], authorizedOperations: NOT_REQUESTED }]);
  });
});
