import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type DescribeGroupsResponseDescribedGroup, type JoinGroupResponse } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, heartbeat, joinGroup, joinNew, stableTwo, subscription, syncGroup, untilRebalancing, type JoinOptions, type TwoMembers } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(clientId = 'join-test'): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, clientId);
  clients.push(c);
  return c;
}

// Small limits, so tests can reach them: no test below needs more than two members a group.
const MAX_SIZE = 2;
const MAX_MEMBER_BYTES = 2048;
const MAX_GROUP_BYTES = 5120;

beforeAll(async () => {
  cluster = await startCluster({
    brokerArgs: [
      ...GROUP_BROKER_ARGS,
      '--group-max-size',
      String(MAX_SIZE),
      '--group-max-member-metadata-bytes',
      String(MAX_MEMBER_BYTES),
      '--group-max-metadata-bytes',
      String(MAX_GROUP_BYTES),
    ],
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

describe('JoinGroup', () => {
  it('v4+: a first join gets MEMBER_ID_REQUIRED with a member id; joining with it starts generation 1', async () => {
    const c = await client('consumer-a');
    const meta = subscription(['orders']);
    for (const v of [4, 5, 6, 7, 8, 9]) {
      const groupId = `join-v${v}`;
      const first = await joinGroup(c, v, { groupId, protocols: [{ name: 'range', metadata: meta }] });
      expect(first).toMatchObject({ errorCode: ErrorCode.MEMBER_ID_REQUIRED, generationId: -1, leader: '', members: [] });
      expect(first.memberId).toMatch(/^consumer-a-[0-9a-f-]{36}$/);
      const joined = await joinGroup(c, v, { groupId, memberId: first.memberId, protocols: [{ name: 'range', metadata: meta }] });
      expect(joined).toEqual({
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        generationId: 1,
        // v7 adds the protocol type to the response (KIP-559).
        protocolType: v >= 7 ? 'consumer' : null,
        protocolName: 'range',
        leader: first.memberId,
        skipAssignment: false,
        memberId: first.memberId,
        members: [{ memberId: first.memberId, groupInstanceId: null, metadata: meta }],
      });
    }
  });

  it('v0–v3 admit a new member at once', async () => {
    const c = await client('consumer-old');
    for (const v of [0, 1, 2, 3]) {
      const r = await joinGroup(c, v, { groupId: `join-old-v${v}` });
      expect(r).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, protocolName: 'range', protocolType: null });
      expect(r.leader).toBe(r.memberId);
      expect(r.memberId).toMatch(/^consumer-old-/);
      expect(r.members.map((m) => m.memberId)).toEqual([r.memberId]);
    }
  });

  it('answers INVALID_GROUP_ID for an empty group id', async () => {
    const c = await client();
    for (const v of [0, 5, 9]) {
      expect(await joinGroup(c, v, { groupId: '' })).toMatchObject({ errorCode: ErrorCode.INVALID_GROUP_ID, generationId: -1, memberId: '', members: [] });
    }
  });

  it('answers INVALID_SESSION_TIMEOUT outside group.min/max.session.timeout.ms', async () => {
    const c = await client();
    expect((await joinGroup(c, 5, { groupId: 'join-timeouts', sessionTimeoutMs: 999 })).errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    expect((await joinGroup(c, 5, { groupId: 'join-timeouts', sessionTimeoutMs: 60_001 })).errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    expect((await joinGroup(c, 5, { groupId: 'join-timeouts', sessionTimeoutMs: 1000 })).errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  });

  it('answers INCONSISTENT_GROUP_PROTOCOL for an empty protocol type or list, or one the group does not share', async () => {
    const c = await client();
    expect((await joinGroup(c, 5, { groupId: 'join-protocols', protocolType: '' })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect((await joinGroup(c, 5, { groupId: 'join-protocols', protocols: [] })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const member = await joinNew(c, 5, { groupId: 'join-protocols' });
    expect(member.errorCode).toBe(ErrorCode.NONE);
    const other = await client();
    expect((await joinGroup(other, 5, { groupId: 'join-protocols', protocolType: 'connect' })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect((await joinGroup(other, 5, { groupId: 'join-protocols', protocols: [{ name: 'sticky', metadata: subscription(['t']) }] })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  // Kafka (GroupCoordinator.handleJoinGroup) creates a group only for a join without a member
  // id; a member id for a group that does not exist is refused and leaves nothing behind.
  it('a member id for a group that does not exist is UNKNOWN_MEMBER_ID and does not create the group', async () => {
    const c = await client();
    expect((await joinGroup(c, 5, { groupId: 'join-never-created', memberId: 'made-up' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    const described = await c.send(ApiKey.DescribeGroups, 5, { groups: ['join-never-created'], includeAuthorizedOperations: false });
    expect(described.groups[0]!.groupState).toBe('Dead');
    const listed = await c.send(ApiKey.ListGroups, 4, { statesFilter: [], typesFilter: [] });
    expect(listed.groups.map((g) => g.groupId)).not.toContain('join-never-created');
  });

  it('answers UNKNOWN_MEMBER_ID for a member id the group never handed out', async () => {
    const c = await client();
    expect((await joinGroup(c, 5, { groupId: 'join-unknown', memberId: 'made-up' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    await joinNew(c, 5, { groupId: 'join-unknown' });
    expect((await joinGroup(c, 5, { groupId: 'join-unknown', memberId: 'made-up' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a second member rebalances the group: the first learns it from its heartbeat and both join generation 2', async () => {
    const groupId = 'join-rebalance';
    const [ca, cb] = [await client('a'), await client('b')];
    const a = await joinNew(ca, 7, { groupId, topics: ['x'] });
    expect((await syncGroup(ca, 5, { groupId, generationId: 1, memberId: a.memberId, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId: a.memberId, assignment: Buffer.from('all') }] })).errorCode).toBe(ErrorCode.NONE);

    const bFirst = await joinGroup(cb, 7, { groupId, topics: ['x', 'y'] });
    const bJoin = joinGroup(cb, 7, { groupId, memberId: bFirst.memberId, topics: ['x', 'y'] });
    await untilRebalancing(ca, groupId, { memberId: a.memberId, generationId: 1 });
    expect(await heartbeat(ca, 4, { groupId, generationId: 1, memberId: a.memberId })).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const aJoin = await joinGroup(ca, 7, { groupId, memberId: a.memberId, topics: ['x'] });
    const b = await bJoin;
    expect(aJoin).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      generationId: 2,
      protocolType: 'consumer',
      protocolName: 'range',
      leader: a.memberId,
      skipAssignment: false,
      memberId: a.memberId,
      members: [
        { memberId: a.memberId, groupInstanceId: null, metadata: subscription(['x']) },
        { memberId: bFirst.memberId, groupInstanceId: null, metadata: subscription(['x', 'y']) },
      ],
    });
    expect(b).toEqual({ ...aJoin, memberId: bFirst.memberId, members: [] });
  });

  it('v5+: a static member joins without MEMBER_ID_REQUIRED; a restart replaces its id and the old id is fenced', async () => {
    const groupId = 'join-static';
    const c = await client('static-client');
    const first = await joinGroup(c, 5, { groupId, groupInstanceId: 'instance-1' });
    expect(first).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1 });
    expect(first.memberId).toMatch(/^instance-1-/);
    expect(first.members).toEqual([{ memberId: first.memberId, groupInstanceId: 'instance-1', metadata: subscription(['t']) }]);
    await syncGroup(c, 3, { groupId, generationId: 1, memberId: first.memberId, groupInstanceId: 'instance-1', assignments: [{ memberId: first.memberId, assignment: Buffer.from('a1') }] });

    // The leader restarting: same generation, the member list, and (v9) skipAssignment (KIP-814).
    const restarted = await joinGroup(c, 9, { groupId, groupInstanceId: 'instance-1' });
    expect(restarted).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: restarted.memberId, skipAssignment: true, protocolName: 'range' });
    expect(restarted.members).toEqual([{ memberId: restarted.memberId, groupInstanceId: 'instance-1', metadata: subscription(['t']) }]);
    expect(restarted.memberId).not.toBe(first.memberId);
    const sync = await syncGroup(c, 3, { groupId, generationId: 1, memberId: restarted.memberId, groupInstanceId: 'instance-1' });
    expect(sync).toMatchObject({ errorCode: ErrorCode.NONE, assignment: Buffer.from('a1') });

    expect((await joinGroup(c, 5, { groupId, memberId: first.memberId, groupInstanceId: 'instance-1' })).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(await heartbeat(c, 3, { groupId, generationId: 1, memberId: first.memberId, groupInstanceId: 'instance-1' })).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(await heartbeat(c, 3, { groupId, generationId: 1, memberId: restarted.memberId, groupInstanceId: 'instance-1' })).toBe(ErrorCode.NONE);
  });

  // Kafka (GroupCoordinator.updateStaticMemberAndRebalance, KIP-814) tells a restarted static
  // leader that cannot skip the assignment (JoinGroup < v9) the old leader id and no members,
  // so it does not compute an assignment the Stable group would ignore.
  it('v5–v8: a restarted static leader is answered as a follower (old leader id, no members)', async () => {
    const groupId = 'join-static-old-leader';
    const c = await client('static-client');
    const first = await joinGroup(c, 5, { groupId, groupInstanceId: 'instance-1' });
    await syncGroup(c, 3, { groupId, generationId: first.generationId, memberId: first.memberId, groupInstanceId: 'instance-1', assignments: [{ memberId: first.memberId, assignment: Buffer.from('a1') }] });
    const restarted = await joinGroup(c, 5, { groupId, groupInstanceId: 'instance-1' });
    expect(restarted).toMatchObject({ errorCode: ErrorCode.NONE, generationId: first.generationId, leader: first.memberId, members: [] });
    expect(restarted.memberId).not.toBe(first.memberId);
    expect(await syncGroup(c, 3, { groupId, generationId: first.generationId, memberId: restarted.memberId, groupInstanceId: 'instance-1' })).toMatchObject({ errorCode: ErrorCode.NONE, assignment: Buffer.from('a1') });
  });
});

/** The whole answer to a refused join (v5). */
function refused(errorCode: number, memberId = ''): JoinGroupResponse {
  return { throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: '', leader: '', skipAssignment: false, memberId, members: [] };
}

/** A `range` protocol whose name and metadata add up to `bytes` (what the limits count). */
function rangeOf(bytes: number, fill = 0x61): { name: string; metadata: Buffer }[] {
  return [{ name: 'range', metadata: Buffer.alloc(bytes - 'range'.length, fill) }];
}

async function describeGroup(c: RawClient, groupId: string): Promise<DescribeGroupsResponseDescribedGroup> {
  return (await c.send(ApiKey.DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })).groups[0]!;
}

/** A Stable group of two members on two new clients ({@link stableTwo}). */
async function stableGroup(groupId: string, first: Partial<JoinOptions>, second: Partial<JoinOptions>): Promise<{ ca: RawClient; cb: RawClient } & TwoMembers> {
  const [ca, cb] = [await client('first'), await client('second')];
  return { ca, cb, ...(await stableTwo(ca, cb, groupId, first, second)) };
}

describe('JoinGroup: limits', () => {
  // Kafka answers UNKNOWN_SERVER_ERROR when a group's record does not fit its offsets topic
  // (see the handler's header); Strata refuses before anything is kept, here before the group
  // even exists.
  it('protocols over --group-max-member-metadata-bytes get UNKNOWN_SERVER_ERROR and create no group', async () => {
    const groupId = 'join-too-big';
    const c = await client();
    for (const v of [0, 3, 5, 9]) {
      const r = await joinGroup(c, v, { groupId, protocols: rangeOf(MAX_MEMBER_BYTES + 1) });
      expect(r).toMatchObject({ errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, generationId: -1, memberId: '', leader: '', members: [] });
    }
    // Names count too: two protocols whose metadata alone would fit.
    const two = [
      { name: 'range', metadata: Buffer.alloc(1024) },
      { name: 'roundrobin', metadata: Buffer.alloc(1024) },
    ];
    expect(await joinGroup(c, 5, { groupId, protocols: two })).toEqual(refused(ErrorCode.UNKNOWN_SERVER_ERROR));
    expect((await describeGroup(c, groupId)).groupState).toBe('Dead');
    const listed = await c.send(ApiKey.ListGroups, 4, { statesFilter: [], typesFilter: [] });
    expect(listed.groups.map((g) => g.groupId)).not.toContain(groupId);
    // Exactly the limit is accepted.
    expect((await joinGroup(c, 5, { groupId, protocols: rangeOf(MAX_MEMBER_BYTES) })).errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  });

  it('a join over the member or the group limit is refused; the member keeps its generation, metadata and assignment', async () => {
    const groupId = 'join-group-bytes';
    const [ca, cb] = [await client(), await client()];
    const metadata = rangeOf(2005, 0x6d);
    const a = await joinNew(ca, 5, { groupId, protocols: metadata });
    const assigned = Buffer.alloc(2000, 0x70);
    expect((await syncGroup(ca, 3, { groupId, generationId: a.generationId, memberId: a.memberId, assignments: [{ memberId: a.memberId, assignment: assigned }] })).errorCode).toBe(ErrorCode.NONE);
    // The group holds 2005 + 2000 bytes: a new member with 1116 more is over 5120...
    expect(await joinGroup(cb, 5, { groupId, protocols: rangeOf(1116) })).toEqual(refused(ErrorCode.UNKNOWN_SERVER_ERROR));
    // ...and the member itself rejoining with metadata over its own limit is refused as well.
    expect(await joinGroup(ca, 5, { groupId, memberId: a.memberId, protocols: rangeOf(MAX_MEMBER_BYTES + 1) })).toEqual(refused(ErrorCode.UNKNOWN_SERVER_ERROR, a.memberId));
    expect(await heartbeat(ca, 4, { groupId, generationId: a.generationId, memberId: a.memberId })).toBe(ErrorCode.NONE);
    expect(await describeGroup(ca, groupId)).toMatchObject({
      groupState: 'Stable',
      members: [{ memberId: a.memberId, memberMetadata: metadata[0]!.metadata, memberAssignment: assigned }],
    });
    // 1115 more fits exactly.
    expect((await joinGroup(cb, 5, { groupId, protocols: rangeOf(1115) })).errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  });

  it('group.max.size: a new member of a full group gets GROUP_MAX_SIZE_REACHED; its members, and a static member restarting, are taken back', async () => {
    const groupId = 'join-full';
    const g = await stableGroup(groupId, { groupInstanceId: 'instance-s' }, {});
    const cc = await client('third');
    // No member id is handed out (v4+ would otherwise answer MEMBER_ID_REQUIRED first).
    expect(await joinGroup(cc, 5, { groupId })).toEqual(refused(ErrorCode.GROUP_MAX_SIZE_REACHED));
    expect(await joinGroup(cc, 5, { groupId, groupInstanceId: 'instance-other' })).toEqual(refused(ErrorCode.GROUP_MAX_SIZE_REACHED));
    expect(await joinGroup(cc, 3, { groupId })).toMatchObject({ errorCode: ErrorCode.GROUP_MAX_SIZE_REACHED, generationId: -1, memberId: '' });
    for (const [c, memberId, groupInstanceId] of [
      [g.ca, g.a, 'instance-s'],
      [g.cb, g.b, null],
    ] as const) {
      expect(await heartbeat(c, 4, { groupId, generationId: g.generationId, memberId, groupInstanceId })).toBe(ErrorCode.NONE);
    }
    // A follower rejoining with its own id in the Stable group gets the generation back.
    expect(await joinGroup(g.cb, 5, { groupId, memberId: g.b })).toMatchObject({ errorCode: ErrorCode.NONE, generationId: g.generationId, leader: g.a });
    // The static member restarts: a new member id in its place, not a new member.
    const restarted = await joinGroup(cc, 9, { groupId, groupInstanceId: 'instance-s' });
    expect(restarted).toMatchObject({ errorCode: ErrorCode.NONE, generationId: g.generationId, skipAssignment: true });
    expect(restarted.memberId).not.toBe(g.a);
    const described = await describeGroup(cc, groupId);
    expect({ state: described.groupState, members: described.members.map((m) => m.memberId).sort() }).toEqual({ state: 'Stable', members: [restarted.memberId, g.b].sort() });
  });
});
