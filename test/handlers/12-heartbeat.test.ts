import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, heartbeat, joinGroup, joinNew, stableSingleMember, syncGroup, untilRebalancing } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, 'heartbeat-test');
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

describe('Heartbeat', () => {
  it('answers NONE for a Stable member of the current generation, on every version', async () => {
    const c = await client();
    const m = await stableSingleMember(c, 'hb-stable', ['t']);
    for (const v of [0, 1, 2, 3, 4]) expect(await heartbeat(c, v, { groupId: 'hb-stable', ...m })).toBe(ErrorCode.NONE);
    expect((await c.send(12, 4, { groupId: 'hb-stable', generationId: m.generationId, memberId: m.memberId, groupInstanceId: null }))).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE });
  });

  it('answers ILLEGAL_GENERATION for another generation and UNKNOWN_MEMBER_ID for an unknown member or group', async () => {
    const c = await client();
    const m = await stableSingleMember(c, 'hb-errors', ['t']);
    expect(await heartbeat(c, 4, { groupId: 'hb-errors', generationId: m.generationId + 1, memberId: m.memberId })).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(await heartbeat(c, 4, { groupId: 'hb-errors', generationId: m.generationId - 1, memberId: m.memberId })).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(await heartbeat(c, 4, { groupId: 'hb-errors', generationId: m.generationId, memberId: 'nobody' })).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(await heartbeat(c, 0, { groupId: 'hb-no-such-group', generationId: 1, memberId: 'nobody' })).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(await heartbeat(c, 4, { groupId: '', generationId: 1, memberId: 'nobody' })).toBe(ErrorCode.INVALID_GROUP_ID);
  });

  it('answers REBALANCE_IN_PROGRESS once another member joins, until the member rejoins', async () => {
    const [ca, cb] = [await client(), await client()];
    const a = await stableSingleMember(ca, 'hb-rebalance', ['t']);
    const bFirst = await joinGroup(cb, 5, { groupId: 'hb-rebalance' });
    const bJoin = joinGroup(cb, 5, { groupId: 'hb-rebalance', memberId: bFirst.memberId });
    await untilRebalancing(ca, 'hb-rebalance', a);
    expect(await heartbeat(ca, 4, { groupId: 'hb-rebalance', ...a })).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const rejoined = await joinGroup(ca, 5, { groupId: 'hb-rebalance', memberId: a.memberId });
    expect(rejoined.generationId).toBe(a.generationId + 1);
    expect((await bJoin).generationId).toBe(a.generationId + 1);
    // Joined but not synced yet: the new generation heartbeats fine, the old one is stale.
    expect(await heartbeat(ca, 4, { groupId: 'hb-rebalance', generationId: rejoined.generationId, memberId: a.memberId })).toBe(ErrorCode.NONE);
    expect(await heartbeat(ca, 4, { groupId: 'hb-rebalance', ...a })).toBe(ErrorCode.ILLEGAL_GENERATION);
  });

  it('v3+: answers FENCED_INSTANCE_ID to a static instance id used with another member id', async () => {
    const c = await client();
    const r = await joinGroup(c, 5, { groupId: 'hb-static', groupInstanceId: 'inst' });
    expect(await heartbeat(c, 3, { groupId: 'hb-static', generationId: r.generationId, memberId: 'someone-else', groupInstanceId: 'inst' })).toBe(ErrorCode.FENCED_INSTANCE_ID);
  });

  it('a member that stops heartbeating is removed after its session timeout and the others rebalance', async () => {
    const [ca, cb] = [await client(), await client()];
    const groupId = 'hb-expiry';
    const a = await joinNew(ca, 5, { groupId, sessionTimeoutMs: 30_000 });
    await syncGroup(ca, 3, { groupId, generationId: a.generationId, memberId: a.memberId });
    const bFirst = await joinGroup(cb, 5, { groupId, sessionTimeoutMs: 1000 });
    const bJoin = joinGroup(cb, 5, { groupId, memberId: bFirst.memberId, sessionTimeoutMs: 1000 });
    await untilRebalancing(ca, groupId, a);
    const aJoin = await joinGroup(ca, 5, { groupId, memberId: a.memberId, sessionTimeoutMs: 30_000 });
    await bJoin;
    const gen = aJoin.generationId;
    await syncGroup(ca, 3, { groupId, generationId: gen, memberId: a.memberId });
    // b never heartbeats: within a few seconds a's heartbeat reports the rebalance.
    const code = await waitFor('the heartbeat to report the rebalance', () => heartbeat(ca, 4, { groupId, generationId: gen, memberId: a.memberId }), (c) => c !== ErrorCode.NONE, 15_000, 200);
    expect(code).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const again = await joinGroup(ca, 5, { groupId, memberId: a.memberId, sessionTimeoutMs: 30_000 });
    expect(again).toMatchObject({ errorCode: ErrorCode.NONE, generationId: gen + 1, leader: a.memberId });
    expect(again.members.map((m) => m.memberId)).toEqual([a.memberId]);
    expect(await heartbeat(cb, 4, { groupId, generationId: gen, memberId: bFirst.memberId })).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });
});
