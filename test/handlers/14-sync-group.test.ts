import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, assignment, heartbeat, joinGroup, stableSingleMember, subscription, syncGroup, twoJoined } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, 'sync-test');
  clients.push(c);
  return c;
}

const MAX_MEMBER_BYTES = 1024;
const MAX_GROUP_BYTES = 2048;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: [...GROUP_BROKER_ARGS, '--group-max-member-metadata-bytes', String(MAX_MEMBER_BYTES), '--group-max-metadata-bytes', String(MAX_GROUP_BYTES)] });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

/** Two members in generation `generationId`, both joined, neither synced (CompletingRebalance). */
async function joinedGroup(groupId: string): Promise<{ ca: RawClient; cb: RawClient; leader: string; follower: string; generationId: number }> {
  const [ca, cb] = [await client(), await client()];
  const g = await twoJoined(ca, cb, groupId);
  return { ca, cb, leader: g.a, follower: g.b, generationId: g.generationId };
}

describe('SyncGroup', () => {
  it('followers wait for the leader; everyone gets its own assignment (v5 with protocol type and name)', async () => {
    const groupId = 'sync-basic';
    const g = await joinedGroup(groupId);
    const aAssign = assignment({ t: [0, 1] });
    const bAssign = assignment({ t: [2, 3] });
    const followerSync = syncGroup(g.cb, 5, { groupId, generationId: g.generationId, memberId: g.follower, protocolType: 'consumer', protocolName: 'range' });
    const leaderSync = await syncGroup(g.ca, 5, {
      groupId,
      generationId: g.generationId,
      memberId: g.leader,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [
        { memberId: g.leader, assignment: aAssign },
        { memberId: g.follower, assignment: bAssign },
      ],
    });
    expect(leaderSync).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: aAssign });
    expect(await followerSync).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: bAssign });
    // Before v5 the response has no protocol fields; a late sync in Stable gets the assignment again.
    for (const v of [0, 1, 2, 3, 4]) {
      expect(await syncGroup(g.cb, v, { groupId, generationId: g.generationId, memberId: g.follower })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: null, protocolName: null, assignment: bAssign });
    }
  });

  it('a member the leader leaves out gets an empty assignment', async () => {
    const groupId = 'sync-missing';
    const g = await joinedGroup(groupId);
    const followerSync = syncGroup(g.cb, 3, { groupId, generationId: g.generationId, memberId: g.follower });
    await syncGroup(g.ca, 3, { groupId, generationId: g.generationId, memberId: g.leader, assignments: [{ memberId: g.leader, assignment: assignment({ t: [0] }) }] });
    expect(await followerSync).toMatchObject({ errorCode: ErrorCode.NONE, assignment: Buffer.alloc(0) });
  });

  it('answers ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and INVALID_GROUP_ID', async () => {
    const c = await client();
    const m = await stableSingleMember(c, 'sync-errors', ['t']);
    expect((await syncGroup(c, 3, { groupId: 'sync-errors', generationId: m.generationId + 1, memberId: m.memberId })).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect((await syncGroup(c, 3, { groupId: 'sync-errors', generationId: m.generationId, memberId: 'nobody' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await syncGroup(c, 3, { groupId: 'sync-no-such-group', generationId: 1, memberId: 'nobody' })).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await syncGroup(c, 3, { groupId: '', generationId: 1, memberId: 'nobody' })).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
  });

  it('v5: answers INCONSISTENT_GROUP_PROTOCOL when the protocol type or name is not the group\'s', async () => {
    const c = await client();
    const m = await stableSingleMember(c, 'sync-protocol', ['t']);
    expect((await syncGroup(c, 5, { groupId: 'sync-protocol', ...m, protocolType: 'consumer', protocolName: 'roundrobin' })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect((await syncGroup(c, 5, { groupId: 'sync-protocol', ...m, protocolType: 'connect', protocolName: 'range' })).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect((await syncGroup(c, 5, { groupId: 'sync-protocol', ...m, protocolType: 'consumer', protocolName: 'range' })).errorCode).toBe(ErrorCode.NONE);
  });

  it('answers REBALANCE_IN_PROGRESS during PreparingRebalance, and to a follower waiting when a new member joins', async () => {
    const groupId = 'sync-rebalance';
    const g = await joinedGroup(groupId);
    const waiting = syncGroup(g.cb, 3, { groupId, generationId: g.generationId, memberId: g.follower });
    const cc = await client();
    const cFirst = await joinGroup(cc, 5, { groupId });
    const cJoin = joinGroup(cc, 5, { groupId, memberId: cFirst.memberId });
    // The follower's pending SyncGroup is answered as soon as c's join starts the rebalance.
    expect((await waiting).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect((await syncGroup(g.ca, 3, { groupId, generationId: g.generationId, memberId: g.leader })).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const [a, b] = await Promise.all([joinGroup(g.ca, 5, { groupId, memberId: g.leader }), joinGroup(g.cb, 5, { groupId, memberId: g.follower })]);
    expect([a.generationId, b.generationId, (await cJoin).generationId]).toEqual([g.generationId + 1, g.generationId + 1, g.generationId + 1]);
  });
});

describe('SyncGroup: assignment limits', () => {
  // Kafka answers UNKNOWN_SERVER_ERROR when the group's record with the assignment does not
  // fit its offsets topic (see 11-join-group.ts); Strata refuses the leader alone, keeps
  // nothing, and the group stays in the generation.
  it("a leader's assignment over a limit gets UNKNOWN_SERVER_ERROR; the follower keeps waiting in the generation and gets the next valid assignment", async () => {
    const groupId = 'sync-too-big';
    const g = await joinedGroup(groupId);
    const followerSync = syncGroup(g.cb, 5, { groupId, generationId: g.generationId, memberId: g.follower });
    // Both members' metadata: 'range' and subscription(['t']) each.
    const metadataBytes = 2 * ('range'.length + subscription(['t']).length);
    const assign = (leaderBytes: number, followerBytes: number): { memberId: string; assignment: Buffer }[] => [
      { memberId: g.leader, assignment: Buffer.alloc(leaderBytes, 0x6c) },
      { memberId: g.follower, assignment: Buffer.alloc(followerBytes, 0x66) },
    ];
    const refused = { throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) };
    // One member's assignment over its limit.
    expect(await syncGroup(g.ca, 5, { groupId, generationId: g.generationId, memberId: g.leader, assignments: assign(10, MAX_MEMBER_BYTES + 1) })).toEqual(refused);
    // Each within it, but the group over its total by one byte.
    const half = MAX_GROUP_BYTES - metadataBytes - MAX_MEMBER_BYTES;
    expect(await syncGroup(g.ca, 5, { groupId, generationId: g.generationId, memberId: g.leader, assignments: assign(MAX_MEMBER_BYTES, half + 1) })).toEqual(refused);
    // The rest of the group did not notice: same generation, nothing to rejoin.
    const other = await client();
    expect(await heartbeat(other, 4, { groupId, generationId: g.generationId, memberId: g.follower })).toBe(ErrorCode.NONE);
    expect(await heartbeat(other, 4, { groupId, generationId: g.generationId, memberId: g.leader })).toBe(ErrorCode.NONE);
    // Exactly the group's total fits; the waiting follower gets its part of it.
    const leaderSync = await syncGroup(g.ca, 5, { groupId, generationId: g.generationId, memberId: g.leader, assignments: assign(MAX_MEMBER_BYTES, half) });
    expect(leaderSync).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.alloc(MAX_MEMBER_BYTES, 0x6c) });
    expect(await followerSync).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.alloc(half, 0x66) });
  });
});
