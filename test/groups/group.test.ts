/**
 * Unit tests of the consumer-group state machine (src/groups/group.ts) under fake timers:
 * joins and generations, protocol votes, session and rebalance timeouts, static membership,
 * the error codes heartbeat / sync / commit validation give at each state, and snapshot →
 * restore. The expected behaviour is Kafka's classic group coordinator.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { Group, type GroupOptions, type GroupSnapshot, type JoinParams, type JoinResult, type Protocol } from '../../src/groups/group.js';
import { loadGroup, planGroupWrite } from '../../src/groups/group-store.js';

const SESSION_MS = 10_000;
const REBALANCE_MS = 30_000;
const RANGE: Protocol = { name: 'range', metadata: Buffer.from('range-subscription') };

function params(p: Partial<JoinParams> = {}): JoinParams {
  return {
    memberId: '',
    groupInstanceId: null,
    clientId: 'client',
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: SESSION_MS,
    rebalanceTimeoutMs: REBALANCE_MS,
    protocolType: 'consumer',
    protocols: [RANGE],
    requireKnownMemberId: true,
    ...p,
  };
}

function newGroup(initialRebalanceDelayMs = 0, limits: Partial<GroupOptions> = {}): Group {
  return new Group('g', { initialRebalanceDelayMs, now: () => Date.now(), ...limits });
}

/** A promise whose outcome can be inspected synchronously once microtasks ran. */
interface Tracked<T> {
  done: boolean;
  value: T | undefined;
}

function track<T>(p: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { done: false, value: undefined };
  void p.then((v) => {
    t.done = true;
    t.value = v;
  });
  return t;
}

async function flush(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

/** The KIP-394 two-step join of a new dynamic member: returns its id and the pending second join. */
async function joinNew(g: Group, p: Partial<JoinParams> = {}): Promise<{ memberId: string; join: Tracked<JoinResult> }> {
  const first = await g.join(params(p));
  expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  const join = track(g.join(params({ ...p, memberId: first.memberId })));
  await flush();
  return { memberId: first.memberId, join };
}

const assignmentOf = (memberId: string): Buffer => Buffer.from(`assignment-of-${memberId}`);

/** Forms a Stable group of `clientIds` members in generation 1 (initial delay gathers them). */
async function stableGroup(clientIds: string[], extra: Partial<JoinParams>[] = [], limits: Partial<GroupOptions> = {}): Promise<{ g: Group; ids: string[] }> {
  const g = newGroup(1000, limits);
  const joins: { memberId: string; join: Tracked<JoinResult> }[] = [];
  for (const [i, clientId] of clientIds.entries()) {
    const p = { clientId, ...extra[i] };
    if (p.groupInstanceId) {
      joins.push({ memberId: '', join: track(g.join(params(p))) });
      await flush();
    } else joins.push(await joinNew(g, p));
  }
  await vi.advanceTimersByTimeAsync(1000);
  for (const j of joins) expect(j.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1 });
  const ids = joins.map((j) => j.join.value!.memberId);
  const leader = joins[0]!.join.value!.leader;
  const syncs = ids.filter((id) => id !== leader).map((id) => track(g.sync(id, null, 1, null, null, [])));
  const leaderSync = await g.sync(leader, null, 1, 'consumer', 'range', ids.map((id) => ({ memberId: id, assignment: assignmentOf(id) })));
  await flush();
  expect(leaderSync).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: assignmentOf(leader) });
  for (const s of syncs) expect(s.value?.errorCode).toBe(ErrorCode.NONE);
  expect(g.state).toBe('Stable');
  return { g, ids };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_700_000_000_000);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Group: joining', () => {
  it('a first v4+ join gets MEMBER_ID_REQUIRED and a new id; rejoining with it starts generation 1 with the member as leader', async () => {
    const g = newGroup(0);
    const first = await g.join(params({ clientId: 'c1' }));
    expect(first).toMatchObject({ errorCode: ErrorCode.MEMBER_ID_REQUIRED, generationId: -1, leader: '', members: [] });
    expect(first.memberId).toMatch(/^c1-[0-9a-f-]{36}$/);
    expect(g.state).toBe('Empty');
    expect(g.members.size).toBe(0);
    expect([...g.pendingMembers.keys()]).toEqual([first.memberId]);

    const second = await g.join(params({ clientId: 'c1', memberId: first.memberId }));
    expect(second).toEqual({
      errorCode: ErrorCode.NONE,
      generationId: 1,
      protocolType: 'consumer',
      protocolName: 'range',
      leader: first.memberId,
      memberId: first.memberId,
      skipAssignment: false,
      members: [{ memberId: first.memberId, groupInstanceId: null, metadata: RANGE.metadata }],
    });
    expect(g.state).toBe('CompletingRebalance');
    expect(g.pendingMembers.size).toBe(0);

    const sync = await g.sync(first.memberId, null, 1, 'consumer', 'range', [{ memberId: first.memberId, assignment: Buffer.from('all') }]);
    expect(sync).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.from('all') });
    expect(g.state).toBe('Stable');
  });

  it('a v0–v3 join (no member id required) is admitted at once', async () => {
    const g = newGroup(0);
    const r = await g.join(params({ clientId: 'old', requireKnownMemberId: false }));
    expect(r).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: r.memberId });
    expect(r.memberId).toMatch(/^old-/);
  });

  it('the initial rebalance delay gathers members that arrive together into one generation', async () => {
    const g = newGroup(1000);
    const a = await joinNew(g, { clientId: 'a' });
    await vi.advanceTimersByTimeAsync(600);
    const b = await joinNew(g, { clientId: 'b' });
    expect(g.state).toBe('PreparingRebalance');
    // The first member's delay has passed, but a member joined during it: the wait goes on.
    await vi.advanceTimersByTimeAsync(500);
    expect(a.join.done).toBe(false);
    expect(b.join.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1500);
    expect(a.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: a.memberId });
    expect(a.join.value!.members.map((m) => m.memberId)).toEqual([a.memberId, b.memberId]);
    expect(b.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: a.memberId, members: [] });
  });

  it('a second member triggers a rebalance; the members rejoin into generation 2 and the leader assigns', async () => {
    const g = newGroup(0);
    const a = await joinNew(g, { clientId: 'a' });
    expect(a.join.value!.generationId).toBe(1);
    await g.sync(a.memberId, null, 1, null, null, [{ memberId: a.memberId, assignment: Buffer.from('a:0-5') }]);

    const b = await joinNew(g, { clientId: 'b', protocols: [{ name: 'range', metadata: Buffer.from('b-sub') }] });
    expect(b.join.done).toBe(false);
    expect(g.state).toBe('PreparingRebalance');
    expect(g.generationId).toBe(1);
    // The old generation learns of the rebalance from its heartbeat; it may still commit.
    expect(g.heartbeat(a.memberId, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(g.validateCommit(a.memberId, null, 1)).toBe(ErrorCode.NONE);
    const sync = await g.sync(a.memberId, null, 1, null, null, []);
    expect(sync.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);

    const aAgain = track(g.join(params({ clientId: 'a', memberId: a.memberId })));
    await flush();
    expect(aAgain.value).toEqual({
      errorCode: ErrorCode.NONE,
      generationId: 2,
      protocolType: 'consumer',
      protocolName: 'range',
      leader: a.memberId,
      memberId: a.memberId,
      skipAssignment: false,
      members: [
        { memberId: a.memberId, groupInstanceId: null, metadata: RANGE.metadata },
        { memberId: b.memberId, groupInstanceId: null, metadata: Buffer.from('b-sub') },
      ],
    });
    expect(b.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a.memberId, memberId: b.memberId, members: [] });
    expect(g.state).toBe('CompletingRebalance');

    // Between join and sync: heartbeats of the new generation are fine, commits are not yet.
    expect(g.heartbeat(b.memberId, null, 2)).toBe(ErrorCode.NONE);
    expect(g.validateCommit(b.memberId, null, 2)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);

    const followerSync = track(g.sync(b.memberId, null, 2, null, null, []));
    await flush();
    expect(followerSync.done).toBe(false);
    const leaderSync = await g.sync(a.memberId, null, 2, null, null, [
      { memberId: a.memberId, assignment: Buffer.from('a:0-2') },
      { memberId: b.memberId, assignment: Buffer.from('b:3-5') },
    ]);
    await flush();
    expect(leaderSync.assignment).toEqual(Buffer.from('a:0-2'));
    expect(followerSync.value).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.from('b:3-5') });
    expect(g.state).toBe('Stable');
    // A late SyncGroup in Stable gets the member's assignment again.
    expect((await g.sync(b.memberId, null, 2, null, null, [])).assignment).toEqual(Buffer.from('b:3-5'));
  });

  it('picks the protocol every member supports that most members list first', async () => {
    const p = (name: string): Protocol => ({ name, metadata: Buffer.from(`${name}-meta`) });
    const elect = async (prefs: string[][]): Promise<JoinResult[]> => {
      const g = newGroup(100);
      const joins = prefs.map((names, i) => track(g.join(params({ clientId: `m${i}`, requireKnownMemberId: false, protocols: names.map(p) }))));
      await vi.advanceTimersByTimeAsync(100);
      return joins.map((j) => j.value!);
    };
    expect((await elect([['x', 'y'], ['y', 'x'], ['y', 'x']]))[0]!.protocolName).toBe('y');
    expect((await elect([['x', 'y'], ['x', 'y'], ['y', 'x']]))[0]!.protocolName).toBe('x');
    const onlyCommon = await elect([['range', 'roundrobin'], ['roundrobin', 'range'], ['roundrobin']]);
    expect(onlyCommon.map((r) => r.protocolName)).toEqual(['roundrobin', 'roundrobin', 'roundrobin']);
    // The leader gets each member's metadata for the chosen protocol.
    expect(onlyCommon[0]!.members.map((m) => m.metadata.toString())).toEqual(['roundrobin-meta', 'roundrobin-meta', 'roundrobin-meta']);
  });

  it('refuses a member whose protocol type or protocols the group cannot share (INCONSISTENT_GROUP_PROTOCOL)', async () => {
    const { g, ids } = await stableGroup(['a']);
    expect(await g.join(params({ protocolType: 'connect' }))).toMatchObject({ errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL, generationId: -1 });
    expect(await g.join(params({ protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }] }))).toMatchObject({ errorCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL });
    expect(g.pendingMembers.size).toBe(0);
    expect(g.state).toBe('Stable');
    // SyncGroup v5 names the protocol; a different one is refused too.
    expect((await g.sync(ids[0]!, null, 1, 'consumer', 'roundrobin', [])).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect((await g.sync(ids[0]!, null, 1, 'connect', 'range', [])).errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });
});

describe('Group: timeouts', () => {
  it('session expiry removes a silent member and rebalances the others', async () => {
    const { g, ids } = await stableGroup(['a', 'b']);
    const [a, b] = ids as [string, string];
    await vi.advanceTimersByTimeAsync(6000);
    expect(g.heartbeat(a, null, 1)).toBe(ErrorCode.NONE);
    await vi.advanceTimersByTimeAsync(4000);
    g.expireMembers();
    expect(g.state).toBe('Stable');
    await vi.advanceTimersByTimeAsync(1);
    g.expireMembers();
    expect([...g.members.keys()]).toEqual([a]);
    expect(g.state).toBe('PreparingRebalance');
    expect(g.heartbeat(a, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(g.heartbeat(b, null, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    const rejoin = await g.join(params({ clientId: 'a', memberId: a }));
    expect(rejoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a });
    expect(rejoin.members.map((m) => m.memberId)).toEqual([a]);
  });

  it('the rebalance timeout removes members that do not rejoin', async () => {
    const { g, ids } = await stableGroup(['a', 'b'], [{ rebalanceTimeoutMs: 5000 }, { rebalanceTimeoutMs: 5000 }]);
    const [a, b] = ids as [string, string];
    const c = await joinNew(g, { clientId: 'c', rebalanceTimeoutMs: 5000 });
    const aJoin = track(g.join(params({ clientId: 'a', memberId: a, rebalanceTimeoutMs: 5000 })));
    // b keeps heartbeating but never rejoins.
    await vi.advanceTimersByTimeAsync(4000);
    expect(g.heartbeat(b, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    await vi.advanceTimersByTimeAsync(999);
    expect(aJoin.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(aJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a });
    expect(aJoin.value!.members.map((m) => m.memberId)).toEqual([a, c.memberId]);
    expect(c.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(g.heartbeat(b, null, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a new leader is chosen when the leader does not rejoin', async () => {
    const { g, ids } = await stableGroup(['a', 'b'], [{ rebalanceTimeoutMs: 5000 }, { rebalanceTimeoutMs: 5000 }]);
    const [a, b] = ids as [string, string];
    expect(g.leaderId).toBe(a);
    const c = await joinNew(g, { clientId: 'c', rebalanceTimeoutMs: 5000 });
    const bJoin = track(g.join(params({ clientId: 'b', memberId: b, rebalanceTimeoutMs: 5000 })));
    await vi.advanceTimersByTimeAsync(5000);
    expect(g.members.has(a)).toBe(false);
    expect(bJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: b });
    expect(bJoin.value!.members.map((m) => m.memberId)).toEqual([b, c.memberId]);
  });

  // Kafka answers a member id handed out with MEMBER_ID_REQUIRED and never used by dropping
  // it; only a group that is already rebalancing re-checks whether its join can complete.
  it('an unclaimed pending member id expires without rebalancing a Stable group', async () => {
    const { g, ids } = await stableGroup(['a']);
    const first = await g.join(params({ clientId: 'ghost' }));
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    await vi.advanceTimersByTimeAsync(SESSION_MS - 1000);
    expect(g.heartbeat(ids[0]!, null, 1)).toBe(ErrorCode.NONE);
    await vi.advanceTimersByTimeAsync(1001);
    g.expireMembers();
    expect(g.pendingMembers.size).toBe(0);
    expect(g.state).toBe('Stable');
    expect(g.generationId).toBe(1);
    expect(g.heartbeat(ids[0]!, null, 1)).toBe(ErrorCode.NONE);
  });

  it('a pending member id that leaves does not rebalance a Stable group', async () => {
    const { g, ids } = await stableGroup(['a']);
    const first = await g.join(params({ clientId: 'ghost' }));
    expect(g.leave([{ memberId: first.memberId, groupInstanceId: null }])).toEqual([ErrorCode.NONE]);
    expect(g.pendingMembers.size).toBe(0);
    expect(g.state).toBe('Stable');
    expect(g.heartbeat(ids[0]!, null, 1)).toBe(ErrorCode.NONE);
  });

  it('a pending member id blocks completing a rebalance until it joins', async () => {
    const { g, ids } = await stableGroup(['a']);
    const pending = await g.join(params({ clientId: 'late' }));
    // A membership change rebalances the group while 'late' holds an id but has not joined.
    const b = await joinNew(g, { clientId: 'b' });
    const aJoin = track(g.join(params({ clientId: 'a', memberId: ids[0]! })));
    await flush();
    expect(aJoin.done).toBe(false);
    const late = track(g.join(params({ clientId: 'late', memberId: pending.memberId })));
    await flush();
    expect(late.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(aJoin.value!.members.map((m) => m.memberId).sort()).toEqual([ids[0]!, b.memberId, pending.memberId].sort());
  });
});

describe('Group: validation of heartbeat, sync and commit', () => {
  it('answers ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS as Kafka does', async () => {
    const { g, ids } = await stableGroup(['a', 'b']);
    const [a, b] = ids as [string, string];
    expect(g.heartbeat(a, null, 1)).toBe(ErrorCode.NONE);
    expect(g.heartbeat(a, null, 0)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(g.heartbeat('nobody', null, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await g.sync(b, null, 2, null, null, [])).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect((await g.sync('nobody', null, 1, null, null, [])).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(g.validateCommit(a, null, 1)).toBe(ErrorCode.NONE);
    expect(g.validateCommit(a, null, 0)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(g.validateCommit('nobody', null, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    // A commit without generation or member id is only for groups without members.
    expect(g.validateCommit('', null, -1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);

    g.leave([{ memberId: b, groupInstanceId: null }]);
    expect(g.state).toBe('PreparingRebalance');
    expect(g.heartbeat(a, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect((await g.sync(a, null, 1, null, null, [])).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(g.validateCommit(a, null, 1)).toBe(ErrorCode.NONE);
    expect(g.heartbeat(b, null, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);

    await g.join(params({ clientId: 'a', memberId: a }));
    expect(g.state).toBe('CompletingRebalance');
    expect(g.validateCommit(a, null, 2)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(g.heartbeat(a, null, 1)).toBe(ErrorCode.ILLEGAL_GENERATION);

    g.leave([{ memberId: a, groupInstanceId: null }]);
    expect(g.state).toBe('Empty');
    expect(g.generationId).toBe(3);
    expect(g.heartbeat(a, null, 3)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await g.sync(a, null, 3, null, null, [])).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(g.validateCommit('', null, -1)).toBe(ErrorCode.NONE);
  });

  // Kafka validates the member and generation of a commit before looking at the group state
  // (GroupCoordinator.doCommitOffsets): only a valid member of the current generation hears
  // REBALANCE_IN_PROGRESS while the group awaits its assignment.
  it('a commit during CompletingRebalance from an unknown member or an old generation is refused as such, not as REBALANCE_IN_PROGRESS', async () => {
    const { g, ids } = await stableGroup(['a', 'b']);
    const [a, b] = ids as [string, string];
    const c = await joinNew(g, { clientId: 'c' });
    const aJoin = track(g.join(params({ clientId: 'a', memberId: a })));
    const bJoin = track(g.join(params({ clientId: 'b', memberId: b })));
    await flush();
    expect([aJoin.value?.generationId, bJoin.value?.generationId, c.join.value?.generationId]).toEqual([2, 2, 2]);
    expect(g.state).toBe('CompletingRebalance');
    expect(g.validateCommit(a, null, 2)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(g.validateCommit('nobody', null, 2)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(g.validateCommit(a, null, 1)).toBe(ErrorCode.ILLEGAL_GENERATION);
  });

  it('LeaveGroup removes members by id or (static) by instance id, and fences a wrong id for an instance', async () => {
    const { g, ids } = await stableGroup(['a', 's'], [{}, { groupInstanceId: 'inst-s' }]);
    const [a, s] = ids as [string, string];
    expect(g.leave([{ memberId: 'nobody', groupInstanceId: null }])).toEqual([ErrorCode.UNKNOWN_MEMBER_ID]);
    expect(g.state).toBe('Stable');
    expect(g.leave([{ memberId: a, groupInstanceId: 'inst-s' }])).toEqual([ErrorCode.FENCED_INSTANCE_ID]);
    expect(g.leave([{ memberId: '', groupInstanceId: 'inst-unknown' }])).toEqual([ErrorCode.UNKNOWN_MEMBER_ID]);
    expect(g.state).toBe('Stable');
    expect(g.leave([{ memberId: '', groupInstanceId: 'inst-s' }])).toEqual([ErrorCode.NONE]);
    expect([...g.members.keys()]).toEqual([a]);
    expect(g.staticMembers.size).toBe(0);
    expect(g.state).toBe('PreparingRebalance');
    expect(g.heartbeat(s, 'inst-s', 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe('Group: static membership (KIP-345)', () => {
  it('a static member that restarts while Stable keeps generation and assignment without a rebalance; its old id is fenced', async () => {
    const { g, ids } = await stableGroup(['d', 's'], [{}, { groupInstanceId: 'inst-s' }]);
    const [d, oldS] = ids as [string, string];
    expect(g.leaderId).toBe(d);
    expect(oldS).toMatch(/^inst-s-/);

    const rejoin = await g.join(params({ clientId: 's', groupInstanceId: 'inst-s' }));
    expect(rejoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, protocolName: 'range', leader: d, skipAssignment: false, members: [] });
    const newS = rejoin.memberId;
    expect(newS).not.toBe(oldS);
    expect(newS).toMatch(/^inst-s-/);
    expect(g.state).toBe('Stable');
    expect(g.generationId).toBe(1);
    expect(g.staticMembers.get('inst-s')).toBe(newS);
    expect(g.heartbeat(d, null, 1)).toBe(ErrorCode.NONE);
    expect(await g.sync(newS, 'inst-s', 1, null, null, [])).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: assignmentOf(oldS) });

    expect(g.heartbeat(oldS, 'inst-s', 1)).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect((await g.sync(oldS, 'inst-s', 1, null, null, [])).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(g.validateCommit(oldS, 'inst-s', 1)).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect((await g.join(params({ memberId: oldS, groupInstanceId: 'inst-s' }))).errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(g.state).toBe('Stable');
  });

  it('a static leader that restarts (JoinGroup v9+) gets the member list with skipAssignment (KIP-814) and no rebalance', async () => {
    const { g, ids } = await stableGroup(['s', 'd'], [{ groupInstanceId: 'inst-s' }, {}]);
    const [oldS, d] = ids as [string, string];
    expect(g.leaderId).toBe(oldS);
    const rejoin = await g.join(params({ clientId: 's', groupInstanceId: 'inst-s', supportsSkipAssignment: true }));
    expect(rejoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: rejoin.memberId, memberId: rejoin.memberId, skipAssignment: true });
    const listed = rejoin.members.map((m) => `${m.memberId}/${m.groupInstanceId}`).sort();
    expect(listed).toEqual([`${d}/null`, `${rejoin.memberId}/inst-s`].sort());
    expect(g.state).toBe('Stable');
    expect(g.heartbeat(d, null, 1)).toBe(ErrorCode.NONE);
  });

  // Kafka (GroupCoordinator.updateStaticMemberAndRebalance) stores the restarted member's new
  // metadata and rebalances only when the group's selected protocol would change. A restarted
  // consumer's subscription differs in bytes from its last one (its owned partitions, KIP-429,
  // are empty after a restart), so comparing the bytes defeats static membership.
  it('a static member that restarts with different subscription bytes for the same protocol causes no rebalance', async () => {
    const { g, ids } = await stableGroup(['d', 's'], [{}, { groupInstanceId: 'inst-s', protocols: [{ name: 'range', metadata: Buffer.from('owned:t-0,t-1') }] }]);
    const [d, oldS] = ids as [string, string];
    const rejoin = track(g.join(params({ clientId: 's', groupInstanceId: 'inst-s', protocols: [{ name: 'range', metadata: Buffer.from('owned:none') }] })));
    await flush();
    expect(g.state).toBe('Stable');
    expect(rejoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1 });
    expect(g.heartbeat(d, null, 1)).toBe(ErrorCode.NONE);
    expect((await g.sync(rejoin.value!.memberId, 'inst-s', 1, null, null, [])).assignment).toEqual(assignmentOf(oldS));
    // The group keeps the member's new metadata (the leader sees it in the next generation).
    expect(g.members.get(rejoin.value!.memberId)!.protocols[0]!.metadata.toString()).toBe('owned:none');
  });

  it('a static member that restarts with a protocol that changes the group protocol causes a rebalance', async () => {
    const both = [RANGE, { name: 'roundrobin', metadata: Buffer.from('rr') }];
    const { g, ids } = await stableGroup(['d', 's'], [{ protocols: both }, { groupInstanceId: 'inst-s', protocols: both }]);
    const rejoin = track(g.join(params({ clientId: 's', groupInstanceId: 'inst-s', protocols: [both[1]!] })));
    await flush();
    expect(g.state).toBe('PreparingRebalance');
    expect(g.heartbeat(ids[0]!, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const dJoin = await g.join(params({ clientId: 'd', memberId: ids[0]!, protocols: both }));
    await flush();
    expect(dJoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, protocolName: 'roundrobin' });
    expect(rejoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, protocolName: 'roundrobin' });
  });

  // Kafka's onCompleteJoin removes only dynamic members that did not rejoin: a static member
  // keeps its place (and gets an assignment) until its session times out.
  it('a static member that misses a rebalance keeps its membership until its session times out', async () => {
    const { g, ids } = await stableGroup(['d', 's'], [{ rebalanceTimeoutMs: 5000, sessionTimeoutMs: 20_000 }, { groupInstanceId: 'inst-s', rebalanceTimeoutMs: 5000, sessionTimeoutMs: 20_000 }]);
    const [d, s] = ids as [string, string];
    const c = await joinNew(g, { clientId: 'c', rebalanceTimeoutMs: 5000, sessionTimeoutMs: 20_000 });
    const dJoin = track(g.join(params({ clientId: 'd', memberId: d, rebalanceTimeoutMs: 5000, sessionTimeoutMs: 20_000 })));
    await vi.advanceTimersByTimeAsync(5000);
    expect(dJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(c.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(dJoin.value!.members.map((m) => m.memberId).sort()).toEqual([d, s, c.memberId].sort());
    expect(g.staticMembers.get('inst-s')).toBe(s);
  });
});

describe('Group: snapshot and restore', () => {
  /** The snapshot as a new owner reads it back: written whole as Redis would hold it, then loaded. */
  const roundTrip = (snap: GroupSnapshot): GroupSnapshot => {
    const write = planGroupWrite(null, snap)!;
    return loadGroup(write.record!, Object.fromEntries(write.set)).snapshot;
  };

  it('restoring a Stable snapshot keeps generation, protocol, leader, members, static ids and assignments', async () => {
    const { g, ids } = await stableGroup(['a', 's'], [{}, { groupInstanceId: 'inst-s' }]);
    const [a, s] = ids as [string, string];
    const snap = roundTrip(g.snapshot());
    expect(snap).toMatchObject({ state: 'Stable', generationId: 1, protocolType: 'consumer', protocolName: 'range', leaderId: a });

    const r = Group.restore('g', snap, { initialRebalanceDelayMs: 0, now: () => Date.now() });
    expect(r.state).toBe('Stable');
    expect(r.generationId).toBe(1);
    expect(r.protocolType).toBe('consumer');
    expect(r.protocolName).toBe('range');
    expect(r.leaderId).toBe(a);
    expect([...r.members.keys()]).toEqual([a, s]);
    expect(r.members.get(s)).toMatchObject({ groupInstanceId: 'inst-s', clientId: 's', clientHost: '/127.0.0.1', sessionTimeoutMs: SESSION_MS, rebalanceTimeoutMs: REBALANCE_MS, protocolType: 'consumer' });
    expect(r.members.get(s)!.protocols).toEqual([RANGE]);
    expect([...r.staticMembers]).toEqual([['inst-s', s]]);
    expect(r.heartbeat(a, null, 1)).toBe(ErrorCode.NONE);
    expect(await r.sync(s, 'inst-s', 1, null, null, [])).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: assignmentOf(s) });
    expect(r.heartbeat('other', 'inst-s', 1)).toBe(ErrorCode.FENCED_INSTANCE_ID);
    // Restored members get a fresh session: none expires at once.
    r.expireMembers();
    expect(r.members.size).toBe(2);
  });

  it('restoring a mid-rebalance snapshot restarts the rebalance: members rejoin into the next generation', async () => {
    const { g, ids } = await stableGroup(['a', 'b']);
    const [a, b] = ids as [string, string];
    const c = await joinNew(g, { clientId: 'c' });
    const preparing = roundTrip(g.snapshot());
    expect(preparing.state).toBe('PreparingRebalance');

    const r = Group.restore('g', preparing, { initialRebalanceDelayMs: 0, now: () => Date.now() });
    expect(r.state).toBe('PreparingRebalance');
    expect(r.generationId).toBe(1);
    expect(r.heartbeat(a, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const joins = [a, b, c.memberId].map((id, i) => track(r.join(params({ clientId: 'abc'[i], memberId: id }))));
    await flush();
    for (const j of joins) expect(j.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a });
    expect(joins[0]!.value!.members.map((m) => m.memberId)).toEqual([a, b, c.memberId]);

    // The same from CompletingRebalance (the old owner died before the leader's SyncGroup).
    const completing = roundTrip(r.snapshot());
    expect(completing.state).toBe('CompletingRebalance');
    const r2 = Group.restore('g', completing, { initialRebalanceDelayMs: 0, now: () => Date.now() });
    expect(r2.state).toBe('PreparingRebalance');
    expect(r2.generationId).toBe(2);
    expect((await r2.sync(a, null, 2, null, null, [])).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // Nobody rejoins: after the rebalance timeout the group is empty (next generation).
    await vi.advanceTimersByTimeAsync(REBALANCE_MS);
    expect(r2.state).toBe('Empty');
    expect(r2.generationId).toBe(3);
    expect(r2.members.size).toBe(0);
  });

  it('restoring an Empty snapshot keeps its generation', async () => {
    const { g, ids } = await stableGroup(['a']);
    g.leave([{ memberId: ids[0]!, groupInstanceId: null }]);
    const r = Group.restore('g', roundTrip(g.snapshot()), { initialRebalanceDelayMs: 0, now: () => Date.now() });
    expect(r.state).toBe('Empty');
    expect(r.generationId).toBe(2);
    const join = await joinNew(r, { clientId: 'n' });
    expect(join.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 3 });
  });
});

/** The answer to a refused join: no generation, no leader, `memberId` as given. */
function refusedJoin(errorCode: number, memberId = ''): JoinResult {
  return { errorCode, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, skipAssignment: false, members: [] };
}

describe('Group: group.max.size', () => {
  it('a new member of a full group gets GROUP_MAX_SIZE_REACHED without a member id (v4+ before MEMBER_ID_REQUIRED); the group carries on', async () => {
    const { g, ids } = await stableGroup(['a', 'b'], [], { maxSize: 2 });
    expect(await g.join(params({ clientId: 'c' }))).toEqual(refusedJoin(ErrorCode.GROUP_MAX_SIZE_REACHED));
    expect(await g.join(params({ clientId: 'c', requireKnownMemberId: false }))).toEqual(refusedJoin(ErrorCode.GROUP_MAX_SIZE_REACHED));
    expect(await g.join(params({ clientId: 'c', groupInstanceId: 'inst-c' }))).toEqual(refusedJoin(ErrorCode.GROUP_MAX_SIZE_REACHED));
    expect(g.pendingMembers.size).toBe(0);
    expect(g.state).toBe('Stable');
    expect([...g.members.keys()]).toEqual(ids);
    for (const id of ids) expect(g.heartbeat(id, null, 1)).toBe(ErrorCode.NONE);
  });

  it('members of a full group rejoin, and a static member that restarts replaces itself instead of counting as new', async () => {
    const { g, ids } = await stableGroup(['a', 's'], [{}, { groupInstanceId: 'inst-s' }], { maxSize: 2 });
    const [a, s] = ids as [string, string];
    const restarted = await g.join(params({ clientId: 's', groupInstanceId: 'inst-s' }));
    expect(restarted).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1 });
    expect(restarted.memberId).not.toBe(s);
    expect(g.state).toBe('Stable');
    expect(g.members.size).toBe(2);
    // The leader rejoining starts a rebalance; both members are taken back into generation 2.
    const aJoin = track(g.join(params({ clientId: 'a', memberId: a })));
    await flush();
    expect(g.state).toBe('PreparingRebalance');
    const sJoin = await g.join(params({ clientId: 's', memberId: restarted.memberId, groupInstanceId: 'inst-s' }));
    await flush();
    expect(sJoin).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(aJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a });
    expect(aJoin.value!.members.map((m) => m.memberId)).toEqual([a, restarted.memberId]);
  });

  // Kafka (GroupCoordinator.onGroupLoaded, acceptJoiningMember): a group loaded with more
  // members than group.max.size rebalances at once, and while it does, members are accepted
  // only while fewer than group.max.size have rejoined; a refused one is removed.
  it('a group restored over group.max.size rebalances; the member to rejoin last is refused and removed', async () => {
    const { g, ids } = await stableGroup(['a', 'b', 'c']);
    const [a, b, c] = ids as [string, string, string];
    const write = planGroupWrite(null, g.snapshot())!;
    const r = Group.restore('g', loadGroup(write.record!, Object.fromEntries(write.set)).snapshot, { initialRebalanceDelayMs: 0, now: () => Date.now(), maxSize: 2 });
    expect(r.state).toBe('PreparingRebalance');
    expect(r.heartbeat(c, null, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const aJoin = track(r.join(params({ clientId: 'a', memberId: a })));
    const bJoin = track(r.join(params({ clientId: 'b', memberId: b })));
    await flush();
    expect(aJoin.done).toBe(false);
    expect(await r.join(params({ clientId: 'c', memberId: c }))).toEqual(refusedJoin(ErrorCode.GROUP_MAX_SIZE_REACHED));
    await flush();
    // Removing c completed the rebalance: everyone left has rejoined.
    expect(aJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leader: a });
    expect(aJoin.value!.members.map((m) => m.memberId)).toEqual([a, b]);
    expect(bJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect([...r.members.keys()]).toEqual([a, b]);
    expect(r.heartbeat(c, null, 2)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('a pending member id refused for size is dropped, so the rebalance does not wait for it', async () => {
    const g = newGroup(0, { maxSize: 1 });
    const x = await g.join(params({ clientId: 'x' }));
    const y = await g.join(params({ clientId: 'y' }));
    expect([x.errorCode, y.errorCode]).toEqual([ErrorCode.MEMBER_ID_REQUIRED, ErrorCode.MEMBER_ID_REQUIRED]);
    const xJoin = track(g.join(params({ clientId: 'x', memberId: x.memberId })));
    await flush();
    // y's pending id holds the first generation back...
    expect(xJoin.done).toBe(false);
    expect(await g.join(params({ clientId: 'y', memberId: y.memberId }))).toEqual(refusedJoin(ErrorCode.GROUP_MAX_SIZE_REACHED));
    await flush();
    // ...until it is refused.
    expect(xJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: x.memberId });
    expect(g.pendingMembers.size).toBe(0);
    expect([...g.members.keys()]).toEqual([x.memberId]);
  });
});

describe('Group: metadata limits', () => {
  /** A protocol named `range` (5 bytes) whose names and metadata add up to `bytes`. */
  const rangeOf = (bytes: number, fill = 0x61): Protocol => ({ name: 'range', metadata: Buffer.alloc(bytes - 5, fill) });

  it('a join whose protocols are over the member limit (names and metadata of all together) gets UNKNOWN_SERVER_ERROR; nothing is kept', async () => {
    const g = newGroup(0, { maxMemberMetadataBytes: 64 });
    expect(await g.join(params({ clientId: 'big', protocols: [rangeOf(65)] }))).toEqual(refusedJoin(ErrorCode.UNKNOWN_SERVER_ERROR));
    const two = [rangeOf(33), { name: 'rr', metadata: Buffer.alloc(30) }];
    expect(await g.join(params({ clientId: 'big', protocols: two }))).toEqual(refusedJoin(ErrorCode.UNKNOWN_SERVER_ERROR));
    expect(await g.join(params({ clientId: 'big', protocols: [rangeOf(65)], requireKnownMemberId: false }))).toEqual(refusedJoin(ErrorCode.UNKNOWN_SERVER_ERROR));
    expect({ state: g.state, members: g.members.size, pending: g.pendingMembers.size, bytes: g.metadataBytes }).toEqual({ state: 'Empty', members: 0, pending: 0, bytes: 0 });
    // Exactly at the limit is accepted.
    const r = await g.join(params({ clientId: 'fits', protocols: [rangeOf(64)], requireKnownMemberId: false }));
    expect(r).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1 });
    expect(g.metadataBytes).toBe(64);
  });

  it('a join that would take the group over its total gets UNKNOWN_SERVER_ERROR; the members keep their generation and metadata', async () => {
    // Per member: protocols 'range' + 'range-subscription' (23 bytes) and an assignment of
    // 'assignment-of-' + the 38-character member id (52 bytes).
    const { g, ids } = await stableGroup(['a', 'b'], [], { maxMetadataBytes: 190 });
    const [a, b] = ids as [string, string];
    expect(g.metadataBytes).toBe(150);
    expect(await g.join(params({ clientId: 'c', protocols: [rangeOf(41)] }))).toEqual(refusedJoin(ErrorCode.UNKNOWN_SERVER_ERROR));
    // A member rejoining with larger metadata is refused the same way and keeps what it had.
    expect(await g.join(params({ clientId: 'b', memberId: b, protocols: [rangeOf(64)] }))).toEqual(refusedJoin(ErrorCode.UNKNOWN_SERVER_ERROR, b));
    expect(g.members.get(b)!.protocols).toEqual([RANGE]);
    expect({ state: g.state, generation: g.generationId, members: [...g.members.keys()], pending: g.pendingMembers.size, bytes: g.metadataBytes }).toEqual({
      state: 'Stable',
      generation: 1,
      members: [a, b],
      pending: 0,
      bytes: 150,
    });
    for (const id of ids) expect(g.heartbeat(id, null, 1)).toBe(ErrorCode.NONE);
    // What fits is accepted: 150 + 40 = 190.
    expect((await g.join(params({ clientId: 'c', protocols: [rangeOf(40)] }))).errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  });

  it("a leader's assignment over a limit gets UNKNOWN_SERVER_ERROR; the followers keep waiting in the generation and a fitting one completes it", async () => {
    const g = newGroup(1000, { maxMemberMetadataBytes: 64, maxMetadataBytes: 150 });
    const a = await joinNew(g, { clientId: 'a' });
    const b = await joinNew(g, { clientId: 'b' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(a.join.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leader: a.memberId });
    expect(g.metadataBytes).toBe(46);
    const follower = track(g.sync(b.memberId, null, 1, null, null, []));
    const assign = (aBytes: number, bBytes: number): { memberId: string; assignment: Buffer }[] => [
      { memberId: a.memberId, assignment: Buffer.alloc(aBytes, 0x41) },
      { memberId: b.memberId, assignment: Buffer.alloc(bBytes, 0x42) },
    ];
    const refused = { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) };
    // One member's assignment over 64 bytes; then both within it but 46 + 2 × 60 over 150.
    expect(await g.sync(a.memberId, null, 1, null, null, assign(1, 65))).toEqual(refused);
    expect(await g.sync(a.memberId, null, 1, null, null, assign(60, 60))).toEqual(refused);
    await flush();
    expect(follower.done).toBe(false);
    expect({ state: g.state, generation: g.generationId, bytes: g.metadataBytes }).toEqual({ state: 'CompletingRebalance', generation: 1, bytes: 46 });
    expect(g.heartbeat(b.memberId, null, 1)).toBe(ErrorCode.NONE);
    // An assignment for a member that is not in the group is ignored, not counted.
    const fitting = [...assign(52, 52), { memberId: 'nobody', assignment: Buffer.alloc(1000) }];
    expect(await g.sync(a.memberId, null, 1, null, null, fitting)).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.alloc(52, 0x41) });
    await flush();
    expect(follower.value).toEqual({ errorCode: ErrorCode.NONE, protocolType: 'consumer', protocolName: 'range', assignment: Buffer.alloc(52, 0x42) });
    expect({ state: g.state, generation: g.generationId, bytes: g.metadataBytes }).toEqual({ state: 'Stable', generation: 1, bytes: 150 });
  });

  it('the group keeps copies: the request buffers it was given can be reused', async () => {
    const g = newGroup(0);
    const metadata = Buffer.from('subscription-bytes');
    const first = await g.join(params({ clientId: 'a', protocols: [{ name: 'range', metadata }] }));
    await g.join(params({ clientId: 'a', memberId: first.memberId, protocols: [{ name: 'range', metadata }] }));
    const assignment = Buffer.from('assignment-bytes');
    await g.sync(first.memberId, null, 1, null, null, [{ memberId: first.memberId, assignment }]);
    metadata.fill(0);
    assignment.fill(0);
    const m = g.members.get(first.memberId)!;
    expect(m.protocols).toEqual([{ name: 'range', metadata: Buffer.from('subscription-bytes') }]);
    expect(m.assignment).toEqual(Buffer.from('assignment-bytes'));
  });

  it('a rejoin with the same metadata keeps the stored protocols (so they are not written again)', async () => {
    const { g, ids } = await stableGroup(['a', 'b']);
    const [a, b] = ids as [string, string];
    const before = [g.members.get(a)!.protocols, g.members.get(b)!.protocols];
    const same = (): Protocol[] => [{ name: 'range', metadata: Buffer.from(RANGE.metadata) }];
    const aJoin = track(g.join(params({ clientId: 'a', memberId: a, protocols: same() })));
    await flush();
    await g.join(params({ clientId: 'b', memberId: b, protocols: same() }));
    await flush();
    expect(aJoin.value).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2 });
    expect(g.members.get(a)!.protocols).toBe(before[0]);
    expect(g.members.get(b)!.protocols).toBe(before[1]);
    // Assignments of the old generation are gone until the leader's SyncGroup.
    expect(g.metadataBytes).toBe(46);
  });
});
