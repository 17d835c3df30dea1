/**
 * Unit tests of the group state layout (src/groups/group-store.ts): which fields each kind of
 * transition writes, reading format 2 back, and reading the whole-JSON format 1 that earlier
 * versions wrote. test/groups/coordinator.test.ts checks the same against a real Redis.
 */
import { describe, expect, it } from 'vitest';
import type { GroupSnapshot, MemberSnapshot } from '../../src/groups/group.js';
import { loadGroup, planGroupWrite, type GroupWrite, type StoredGroup } from '../../src/groups/group-store.js';

function member(memberId: string, over: Partial<MemberSnapshot> = {}): MemberSnapshot {
  return {
    memberId,
    groupInstanceId: null,
    clientId: `client-${memberId}`,
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from(`subscription-of-${memberId}`) }],
    assignment: Buffer.alloc(0),
    ...over,
  };
}

function snapshot(members: MemberSnapshot[], over: Partial<GroupSnapshot> = {}): GroupSnapshot {
  return { state: 'Stable', generationId: 3, protocolType: 'consumer', protocolName: 'range', leaderId: members[0]?.memberId ?? null, members, ...over };
}

/** The hash fields a write sets, by name, with their values as text. */
function fieldsSet(w: GroupWrite): Record<string, string> {
  return Object.fromEntries(w.set.map(([f, v]) => [f, v.toString()]));
}

/** Writes `snap` whole and returns what Redis then holds (the base for the next write). */
function written(snap: GroupSnapshot): StoredGroup {
  return planGroupWrite(null, snap)!.stored;
}

describe('group store: planning writes', () => {
  it('the first write replaces the hash: the group record, every member record and every non-empty assignment', () => {
    const a = member('a', { assignment: Buffer.from('assigned-a'), groupInstanceId: 'inst-a' });
    const b = member('b');
    const w = planGroupWrite(null, snapshot([a, b]))!;
    expect(w.replace).toBe(true);
    expect(JSON.parse(w.record!)).toEqual({ format: 2, state: 'Stable', generationId: 3, protocolType: 'consumer', protocolName: 'range', leaderId: 'a', members: [] });
    expect(fieldsSet(w)).toEqual({
      'm:a':
        '{"seq":0,"groupInstanceId":"inst-a","clientId":"client-a","clientHost":"/127.0.0.1","sessionTimeoutMs":10000,"rebalanceTimeoutMs":30000,"protocolType":"consumer","protocols":[["range",17]]}\nsubscription-of-a',
      'a:a': 'assigned-a',
      'm:b':
        '{"seq":1,"groupInstanceId":null,"clientId":"client-b","clientHost":"/127.0.0.1","sessionTimeoutMs":10000,"rebalanceTimeoutMs":30000,"protocolType":"consumer","protocols":[["range",17]]}\nsubscription-of-b',
    });
    expect(w.del).toEqual([]);
  });

  it('a transition that changes nothing persistent (a heartbeat, a duplicate join) writes nothing', () => {
    const snap = snapshot([member('a'), member('b')]);
    expect(planGroupWrite(written(snap), snapshot([...snap.members]))).toBeNull();
  });

  it('SyncGroup writes the record and the assignments that changed, not the member records', () => {
    const a = member('a');
    const b = member('b');
    const stored = written(snapshot([a, b], { state: 'CompletingRebalance' }));
    const w = planGroupWrite(stored, snapshot([{ ...a, assignment: Buffer.from('pa') }, { ...b, assignment: Buffer.from('pb') }]))!;
    expect({ replace: w.replace, record: JSON.parse(w.record!).state, set: fieldsSet(w), del: w.del }).toEqual({ replace: false, record: 'Stable', set: { 'a:a': 'pa', 'a:b': 'pb' }, del: [] });
    // The same assignment bytes again (a new buffer) are not written.
    const again = planGroupWrite(w.stored, snapshot([{ ...a, assignment: Buffer.from('pa') }, { ...b, assignment: Buffer.from('pb2') }]))!;
    expect({ record: again.record, set: fieldsSet(again) }).toEqual({ record: null, set: { 'a:b': 'pb2' } });
  });

  it('a rebalance with unchanged metadata writes the record and deletes the old assignments only', () => {
    const a = member('a', { assignment: Buffer.from('pa') });
    const b = member('b', { assignment: Buffer.from('pb') });
    const stored = written(snapshot([a, b]));
    const preparing = planGroupWrite(stored, snapshot([a, b], { state: 'PreparingRebalance' }))!;
    expect({ set: preparing.set, del: preparing.del, state: JSON.parse(preparing.record!).state }).toEqual({ set: [], del: [], state: 'PreparingRebalance' });
    const empty = Buffer.alloc(0);
    // Rejoined with equal metadata in new buffers: compared by content, not rewritten.
    const rejoined = [{ ...a, assignment: empty, protocols: [{ name: 'range', metadata: Buffer.from('subscription-of-a') }] }, { ...b, assignment: empty }];
    const completing = planGroupWrite(preparing.stored, snapshot(rejoined, { state: 'CompletingRebalance', generationId: 4 }))!;
    expect({ set: completing.set, del: completing.del, generation: JSON.parse(completing.record!).generationId }).toEqual({ set: [], del: ['a:a', 'a:b'], generation: 4 });
  });

  it("a member's record is rewritten when its metadata or settings change; a member that leaves has its fields deleted", () => {
    const a = member('a', { assignment: Buffer.from('pa') });
    const b = member('b', { assignment: Buffer.from('pb') });
    const stored = written(snapshot([a, b]));
    const newMetadata = planGroupWrite(stored, snapshot([a, { ...b, protocols: [{ name: 'range', metadata: Buffer.from('new-subscription') }] }]))!;
    expect(Object.keys(fieldsSet(newMetadata))).toEqual(['m:b']);
    expect(fieldsSet(newMetadata)['m:b']!.endsWith('\nnew-subscription')).toBe(true);
    const newTimeout = planGroupWrite(stored, snapshot([{ ...a, sessionTimeoutMs: 6000 }, b]))!;
    expect(Object.keys(fieldsSet(newTimeout))).toEqual(['m:a']);
    const left = planGroupWrite(stored, snapshot([a], { state: 'PreparingRebalance' }))!;
    expect({ set: left.set, del: left.del }).toEqual({ set: [], del: ['m:b', 'a:b'] });
  });

  it('a static member replaced under a new id is a new record at the end of the join order', () => {
    const a = member('a');
    const s = member('s-1', { groupInstanceId: 'inst-s', assignment: Buffer.from('ps') });
    const stored = written(snapshot([s, a]));
    const w = planGroupWrite(stored, snapshot([a, { ...s, memberId: 's-2' }], { leaderId: 's-2' }))!;
    expect(Object.keys(fieldsSet(w))).toEqual(['m:s-2', 'a:s-2']);
    expect(w.del).toEqual(['m:s-1', 'a:s-1']);
    expect(JSON.parse(fieldsSet(w)['m:s-2']!.split('\n')[0]!).seq).toBe(2);
  });
});

describe('group store: loading', () => {
  it('reads format 2 back: same group, members in join order, metadata and assignments; the next write builds on it', () => {
    const c = member('c', { protocols: [{ name: 'range', metadata: Buffer.from([0, 10, 255]) }, { name: 'rr', metadata: Buffer.alloc(0) }] });
    const a = member('a', { assignment: Buffer.from([1, 2, 3]), groupInstanceId: 'inst-a' });
    const snap = snapshot([c, a], { leaderId: 'a' });
    const w = planGroupWrite(null, snap)!;
    // HGETALL returns fields in no particular order.
    const loaded = loadGroup(w.record!, Object.fromEntries([...w.set].reverse()));
    expect(loaded.snapshot).toEqual(snap);
    expect(planGroupWrite(loaded.stored, loaded.snapshot)).toBeNull();
    const withNewMember = planGroupWrite(loaded.stored, snapshot([c, a, member('d')], { leaderId: 'a' }))!;
    expect(Object.keys(fieldsSet(withNewMember))).toEqual(['m:d']);
    expect(JSON.parse(fieldsSet(withNewMember)['m:d']!.split('\n')[0]!).seq).toBe(2);
  });

  // The whole-group JSON document (base64 metadata) that brokers before format 2 wrote on every
  // transition, as one of them left it.
  it('reads the format-1 document of earlier versions; the first write then replaces the hash as a whole', () => {
    const v1 = JSON.stringify({
      state: 'Stable',
      generationId: 7,
      protocolType: 'consumer',
      protocolName: 'range',
      leaderId: 'm-1',
      members: [
        { memberId: 'm-1', groupInstanceId: null, clientId: 'c1', clientHost: '/10.0.0.1', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('sub-1').toString('base64') }], assignment: Buffer.from('asg-1').toString('base64') },
        { memberId: 'm-2', groupInstanceId: 'inst-2', clientId: 'c2', clientHost: '/10.0.0.2', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('sub-2').toString('base64') }], assignment: '' },
      ],
    });
    const loaded = loadGroup(v1, { 'm:stale': Buffer.from('left by a newer broker') });
    expect(loaded.stored).toBeNull();
    expect(loaded.snapshot).toEqual({
      state: 'Stable',
      generationId: 7,
      protocolType: 'consumer',
      protocolName: 'range',
      leaderId: 'm-1',
      members: [
        { memberId: 'm-1', groupInstanceId: null, clientId: 'c1', clientHost: '/10.0.0.1', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('sub-1') }], assignment: Buffer.from('asg-1') },
        { memberId: 'm-2', groupInstanceId: 'inst-2', clientId: 'c2', clientHost: '/10.0.0.2', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('sub-2') }], assignment: Buffer.alloc(0) },
      ],
    });
    const w = planGroupWrite(loaded.stored, loaded.snapshot)!;
    expect({ replace: w.replace, fields: Object.keys(fieldsSet(w)) }).toEqual({ replace: true, fields: ['m:m-1', 'a:m-1', 'm:m-2'] });
  });

  it('refuses a damaged member record and a format it does not know', () => {
    const w = planGroupWrite(null, snapshot([member('a')]))!;
    const record = w.set[0]![1];
    expect(() => loadGroup(w.record!, { 'm:a': record.subarray(0, record.length - 1) })).toThrow('member record of a holds 16 metadata bytes, its header says 17');
    expect(() => loadGroup(w.record!, { 'm:a': Buffer.from('no header line') })).toThrow('member record of a has no header line');
    expect(() => loadGroup(w.record!.replace('"format":2', '"format":3'), {})).toThrow('group record has format 3, this broker reads 1 and 2; upgrade the broker');
  });
});
