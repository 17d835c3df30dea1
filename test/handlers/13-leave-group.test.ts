import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type LeaveGroupResponse } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, heartbeat, joinGroup, joinNew, stableSingleMember, syncGroup, untilRebalancing } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, 'leave-test');
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

function leave(c: RawClient, version: number, groupId: string, members: { memberId: string; groupInstanceId?: string | null }[]): Promise<LeaveGroupResponse> {
  return c.send(ApiKey.LeaveGroup, version, {
    groupId,
    memberId: version < 3 ? members[0]!.memberId : '',
    members: version < 3 ? [] : members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? null, reason: null })),
  });
}

/** Two Stable members of `groupId`. */
async function twoStable(groupId: string, bInstance: string | null = null): Promise<{ ca: RawClient; cb: RawClient; a: string; b: string; generationId: number }> {
  const [ca, cb] = [await client(), await client()];
  const a = await joinNew(ca, 5, { groupId });
  await syncGroup(ca, 3, { groupId, generationId: a.generationId, memberId: a.memberId });
  const bJoin = bInstance === null ? joinNew(cb, 5, { groupId }) : joinGroup(cb, 5, { groupId, groupInstanceId: bInstance });
  await untilRebalancing(ca, groupId, a);
  const aJoin = await joinGroup(ca, 5, { groupId, memberId: a.memberId });
  const b = await bJoin;
  const generationId = aJoin.generationId;
  const bSync = syncGroup(cb, 3, { groupId, generationId, memberId: b.memberId, groupInstanceId: bInstance });
  await syncGroup(ca, 3, { groupId, generationId, memberId: a.memberId });
  await bSync;
  return { ca, cb, a: a.memberId, b: b.memberId, generationId };
}

describe('LeaveGroup', () => {
  it('v0–v2: a member leaves by id and the rest rebalance', async () => {
    for (const v of [0, 1, 2]) {
      const groupId = `leave-v${v}`;
      const g = await twoStable(groupId);
      expect(await leave(g.cb, v, groupId, [{ memberId: g.b }])).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, members: [] });
      expect(await heartbeat(g.ca, 0, { groupId, generationId: g.generationId, memberId: g.a })).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
      const again = await joinGroup(g.ca, 5, { groupId, memberId: g.a });
      expect(again.members.map((m) => m.memberId)).toEqual([g.a]);
      expect(await leave(g.cb, v, groupId, [{ memberId: g.b }])).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_MEMBER_ID, members: [] });
    }
  });

  it('v3+: leaves in a batch with an answer per member identity', async () => {
    const groupId = 'leave-batch';
    const g = await twoStable(groupId, 'inst-b');
    const r = await leave(g.ca, 5, groupId, [{ memberId: g.a }, { memberId: 'nobody' }, { memberId: '', groupInstanceId: 'inst-b' }]);
    expect(r).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      members: [
        { memberId: g.a, groupInstanceId: null, errorCode: ErrorCode.NONE },
        { memberId: 'nobody', groupInstanceId: null, errorCode: ErrorCode.UNKNOWN_MEMBER_ID },
        { memberId: '', groupInstanceId: 'inst-b', errorCode: ErrorCode.NONE },
      ],
    });
    const described = await g.ca.send(ApiKey.DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false });
    expect(described.groups[0]).toMatchObject({ groupState: 'Empty', members: [] });
  });

  it('v3+: a static instance id with another member id is FENCED_INSTANCE_ID', async () => {
    const groupId = 'leave-fenced';
    const g = await twoStable(groupId, 'inst-b');
    const r = await leave(g.ca, 3, groupId, [{ memberId: g.a, groupInstanceId: 'inst-b' }]);
    expect(r.members).toEqual([{ memberId: g.a, groupInstanceId: 'inst-b', errorCode: ErrorCode.FENCED_INSTANCE_ID }]);
    expect(await heartbeat(g.cb, 3, { groupId, generationId: g.generationId, memberId: g.b, groupInstanceId: 'inst-b' })).toBe(ErrorCode.NONE);
  });

  it('answers INVALID_GROUP_ID for an empty group id', async () => {
    const c = await client();
    expect((await leave(c, 0, '', [{ memberId: 'm' }])).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
    expect((await leave(c, 5, '', [{ memberId: 'm' }])).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
  });

  it('a group that does not exist: v0 answers UNKNOWN_MEMBER_ID; v3+ answer it per member, as Kafka does', async () => {
    const c = await client();
    expect(await leave(c, 0, 'leave-no-such-group', [{ memberId: 'm' }])).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_MEMBER_ID, members: [] });
    expect(await leave(c, 4, 'leave-no-such-group', [{ memberId: 'm' }])).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      members: [{ memberId: 'm', groupInstanceId: null, errorCode: ErrorCode.UNKNOWN_MEMBER_ID }],
    });
  });

  it('the last member leaving empties the group', async () => {
    const c = await client();
    const groupId = 'leave-last';
    const m = await stableSingleMember(c, groupId, ['t']);
    expect((await leave(c, 1, groupId, [{ memberId: m.memberId }])).errorCode).toBe(ErrorCode.NONE);
    const described = await c.send(ApiKey.DescribeGroups, 0, { groups: [groupId], includeAuthorizedOperations: false });
    expect(described.groups[0]).toMatchObject({ errorCode: ErrorCode.NONE, groupState: 'Empty', protocolType: 'consumer', protocolData: '', members: [] });
  });
});
