/**
 * The group coordinator's persistence against a real redis-server: the layout of a group's
 * state (a group record and one hash field per member and per assignment), which fields each
 * transition writes — observed with MONITOR, which shows every command the write script runs —
 * and groups persisted by earlier versions (one JSON document) or over group.max.size, as a
 * broker finds them when it takes a group over.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { GROUPS_SET, groupKeys } from '../../src/coordination/keys.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { GROUP_BROKER_ARGS, heartbeat, joinGroup, stableTwo, subscription, syncGroup, syncTwo, untilRebalancing, type TwoMembers } from '../helpers/raw-group.js';

let cluster: Cluster;
let redis: Redis;
let monitor: Redis;
const clients: RawClient[] = [];

/** Commands the group-write script ran between two markers, as `HSET m:<id>`, `SET state`… */
let recording: { group: string; until: string; writes: string[]; done: () => void } | null = null;
let markerSeq = 0;
let startMarker: { name: string; seen: () => void } | null = null;

async function client(clientId = 'coordinator-test'): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, clientId);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: [...GROUP_BROKER_ARGS, '--group-max-size', '2'] });
  redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
  monitor = await new Redis(cluster.redis.url).monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') {
      if (args[0] === 'echo' && startMarker !== null && args[1] === startMarker.name) {
        const marker = startMarker;
        startMarker = null;
        marker.seen();
      }
      if (args[0] === 'echo' && args[1] === recording?.until) recording.done();
      return;
    }
    if (recording === null || startMarker !== null) return;
    const keys = groupKeys(recording.group);
    if (args[1] === keys.state && args[0] === 'SET') recording.writes.push('SET state');
    if (args[1] === keys.members) recording.writes.push(args[0] === 'DEL' ? 'DEL members' : `${args[0]} ${args[2]}`);
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  monitor?.disconnect();
  redis?.disconnect();
  await cluster?.stop();
});

/**
 * The writes to `groupId`'s state while `action` runs. MONITOR reports commands in the order
 * Redis ran them, so an ECHO sent before and one sent after bracket exactly the action's writes
 * (the broker answers a group request only after its write is done).
 */
async function writesDuring(groupId: string, action: () => Promise<unknown>): Promise<string[]> {
  const start = `start-${++markerSeq}`;
  const until = `until-${markerSeq}`;
  const writes: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  recording = { group: groupId, until, writes, done };
  await new Promise<void>((seen) => {
    startMarker = { name: start, seen };
    void redis.echo(start);
  });
  await action();
  await redis.echo(until);
  await finished;
  recording = null;
  return writes;
}

/** A Stable group of two on two new clients: `a` leads, both synced `assigned-a` / `assigned-b`. */
async function stableGroup(groupId: string): Promise<{ ca: RawClient; cb: RawClient } & TwoMembers> {
  const [ca, cb] = [await client('client-a'), await client('client-b')];
  return { ca, cb, ...(await stableTwo(ca, cb, groupId)) };
}

/** The member record the coordinator writes: a JSON line, then the metadata. */
function memberRecord(seq: number, clientId: string, metadata: Buffer): Buffer {
  const header = { seq, groupInstanceId: null, clientId, clientHost: '/127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, protocolType: 'consumer', protocols: [['range', metadata.length]] };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), metadata]);
}

describe('group coordinator: state in Redis', () => {
  it('a group is stored as a group record and one hash field per member and per assignment', async () => {
    const groupId = 'store-layout';
    const g = await stableGroup(groupId);
    const keys = groupKeys(groupId);
    expect(JSON.parse((await redis.get(keys.state))!)).toEqual({ format: 2, state: 'Stable', generationId: 2, protocolType: 'consumer', protocolName: 'range', leaderId: g.a, members: [] });
    expect(await redis.hgetallBuffer(keys.members)).toEqual({
      [`m:${g.a}`]: memberRecord(0, 'client-a', subscription(['t'])),
      [`m:${g.b}`]: memberRecord(1, 'client-b', subscription(['t'])),
      [`a:${g.a}`]: Buffer.from('assigned-a'),
      [`a:${g.b}`]: Buffer.from('assigned-b'),
    });
    expect(await redis.sismember(GROUPS_SET, groupId)).toBe(1);
  });

  it('heartbeats and duplicate joins write nothing; a rebalance writes the record and drops assignments; SyncGroup writes assignments, never metadata', async () => {
    const groupId = 'store-writes';
    const g = await stableGroup(groupId);
    const gen = g.generationId;
    expect(
      await writesDuring(groupId, async () => {
        expect(await heartbeat(g.ca, 4, { groupId, generationId: gen, memberId: g.a })).toBe(ErrorCode.NONE);
        expect(await heartbeat(g.cb, 4, { groupId, generationId: gen, memberId: g.b })).toBe(ErrorCode.NONE);
        // A follower's join with unchanged metadata in a Stable group: the generation back.
        expect((await joinGroup(g.cb, 5, { groupId, memberId: g.b })).generationId).toBe(gen);
      }),
    ).toEqual([]);

    // The leader rejoins (same metadata): the group prepares a rebalance.
    let aJoin!: ReturnType<typeof joinGroup>;
    expect(
      await writesDuring(groupId, async () => {
        aJoin = joinGroup(g.ca, 5, { groupId, memberId: g.a });
        await untilRebalancing(g.cb, groupId, { memberId: g.b, generationId: gen });
      }),
    ).toEqual(['SET state']);
    // The follower rejoins: the next generation, without its old assignments.
    expect(
      await writesDuring(groupId, async () => {
        expect((await joinGroup(g.cb, 5, { groupId, memberId: g.b })).generationId).toBe(gen + 1);
        expect((await aJoin).generationId).toBe(gen + 1);
      }),
    ).toEqual(['SET state', `HDEL a:${g.a}`, `HDEL a:${g.b}`]);
    expect(await writesDuring(groupId, () => syncTwo(g.ca, g.cb, groupId, { ...g, generationId: gen + 1 }))).toEqual(['SET state', `HSET a:${g.a}`, `HSET a:${g.b}`]);
    expect(await redis.hgetBuffer(groupKeys(groupId).members, `a:${g.b}`)).toEqual(Buffer.from('assigned-b'));
  });

  it("a member's record is written when its join changes its metadata; a member that leaves has its fields deleted", async () => {
    const groupId = 'store-member-changes';
    const g = await stableGroup(groupId);
    const gen = g.generationId;
    let bJoin!: ReturnType<typeof joinGroup>;
    expect(
      await writesDuring(groupId, async () => {
        bJoin = joinGroup(g.cb, 5, { groupId, memberId: g.b, topics: ['t', 'u'] });
        await untilRebalancing(g.ca, groupId, { memberId: g.a, generationId: gen });
      }),
    ).toEqual(['SET state', `HSET m:${g.b}`]);
    expect(await redis.hgetBuffer(groupKeys(groupId).members, `m:${g.b}`)).toEqual(memberRecord(1, 'client-b', subscription(['t', 'u'])));
    expect(
      await writesDuring(groupId, async () => {
        expect((await joinGroup(g.ca, 5, { groupId, memberId: g.a })).generationId).toBe(gen + 1);
        expect((await bJoin).generationId).toBe(gen + 1);
      }),
    ).toEqual(['SET state', `HDEL a:${g.a}`, `HDEL a:${g.b}`]);
    await syncTwo(g.ca, g.cb, groupId, { ...g, generationId: gen + 1 });
    expect(
      await writesDuring(groupId, async () => {
        const left = await g.cb.send(ApiKey.LeaveGroup, 3, { groupId, memberId: '', members: [{ memberId: g.b, groupInstanceId: null, reason: null }] });
        expect(left.members.map((m) => m.errorCode)).toEqual([ErrorCode.NONE]);
      }),
    ).toEqual(['SET state', `HDEL m:${g.b}`, `HDEL a:${g.b}`]);
    expect(Object.keys(await redis.hgetallBuffer(groupKeys(groupId).members)).sort()).toEqual([`a:${g.a}`, `m:${g.a}`]);
  });

  // The whole-group JSON document that brokers before format 2 wrote under `{g:G}:state` (as
  // one of them left it): a broker upgraded in place must continue the group.
  it('a group persisted whole by an earlier version is continued in its generation, then stored field by field', async () => {
    const groupId = 'store-format-1';
    const keys = groupKeys(groupId);
    const member = (id: string, topics: string[], assignment: string): object => ({
      memberId: id,
      groupInstanceId: null,
      clientId: 'old-client',
      clientHost: '/10.1.2.3',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription(topics).toString('base64') }],
      assignment: Buffer.from(assignment).toString('base64'),
    });
    await redis.set(keys.state, JSON.stringify({ state: 'Stable', generationId: 7, protocolType: 'consumer', protocolName: 'range', leaderId: 'old-a', members: [member('old-a', ['x'], 'assigned-old-a'), member('old-b', ['x', 'y'], 'assigned-old-b')] }));
    await redis.sadd(GROUPS_SET, groupId);

    const [ca, cb] = [await client('old-client'), await client('old-client')];
    expect(await heartbeat(ca, 4, { groupId, generationId: 7, memberId: 'old-a' })).toBe(ErrorCode.NONE);
    expect(await syncGroup(cb, 5, { groupId, generationId: 7, memberId: 'old-b' })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.from('assigned-old-b') });
    const described = (await ca.send(ApiKey.DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })).groups[0]!;
    expect(described).toMatchObject({ groupState: 'Stable', protocolData: 'range' });
    expect(described.members.map((m) => [m.memberId, m.clientHost, m.memberMetadata, m.memberAssignment])).toEqual([
      ['old-a', '/10.1.2.3', subscription(['x']), Buffer.from('assigned-old-a')],
      ['old-b', '/10.1.2.3', subscription(['x', 'y']), Buffer.from('assigned-old-b')],
    ]);
    // Nothing changed yet, so nothing was rewritten.
    expect(JSON.parse((await redis.get(keys.state))!).format).toBeUndefined();

    // The first transition replaces the document by the group record and the members' fields.
    const written = await writesDuring(groupId, async () => {
      const left = await cb.send(ApiKey.LeaveGroup, 3, { groupId, memberId: '', members: [{ memberId: 'old-b', groupInstanceId: null, reason: null }] });
      expect(left.members.map((m) => m.errorCode)).toEqual([ErrorCode.NONE]);
    });
    expect(written).toEqual(['DEL members', 'SET state', 'HSET m:old-a', 'HSET a:old-a']);
    expect(JSON.parse((await redis.get(keys.state))!)).toEqual({ format: 2, state: 'PreparingRebalance', generationId: 7, protocolType: 'consumer', protocolName: 'range', leaderId: 'old-a', members: [] });
    // old-a rejoins into the next generation.
    expect(await joinGroup(ca, 5, { groupId, memberId: 'old-a', topics: ['x'] })).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 8, leader: 'old-a' });
  });

  // Kafka (GroupCoordinator.onGroupLoaded): a group loaded with more members than
  // group.max.size rebalances at once; members are taken back while fewer than the limit have
  // rejoined, and the one refused is removed.
  it('a group found over --group-max-size rebalances: the member to rejoin last gets GROUP_MAX_SIZE_REACHED and is removed', async () => {
    const groupId = 'store-over-capacity';
    const member = (id: string): object => ({
      memberId: id,
      groupInstanceId: null,
      clientId: 'c',
      clientHost: '/10.1.2.3',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription(['x']).toString('base64') }],
      assignment: '',
    });
    await redis.set(groupKeys(groupId).state, JSON.stringify({ state: 'Stable', generationId: 4, protocolType: 'consumer', protocolName: 'range', leaderId: 'm-1', members: ['m-1', 'm-2', 'm-3'].map(member) }));
    await redis.sadd(GROUPS_SET, groupId);
    const c = await client();
    expect(await heartbeat(c, 4, { groupId, generationId: 4, memberId: 'm-3' })).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // One connection: the broker starts its requests in order, so m-3 rejoins last.
    const joins = ['m-1', 'm-2', 'm-3'].map((memberId) => joinGroup(c, 5, { groupId, memberId, topics: ['x'] }));
    const [j1, j2, j3] = await Promise.all(joins);
    expect(j3).toMatchObject({ errorCode: ErrorCode.GROUP_MAX_SIZE_REACHED, generationId: -1, memberId: '' });
    expect(j1).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 5, leader: 'm-1' });
    expect(j1.members.map((m) => m.memberId)).toEqual(['m-1', 'm-2']);
    expect(j2).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 5 });
    expect(await heartbeat(c, 4, { groupId, generationId: 5, memberId: 'm-3' })).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(Object.keys(await redis.hgetallBuffer(groupKeys(groupId).members)).sort()).toEqual(['m:m-1', 'm:m-2']);
  });
});
