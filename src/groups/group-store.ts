/**
 * The groups store (docs/architecture.md §5, §6): how consumer groups lie in Redis, and the
 * one place the groups domain reads and writes them. The keys (built by `groupKeys` in
 * coordination/keys.ts) share the group's hash tag:
 *
 *   `{g:G}:state`    the group record, JSON: `{format: 2, state, generationId, protocolType,
 *                    protocolName, leaderId, members: []}`
 *   `{g:G}:members`  hash: `m:<memberId>` → member record, `a:<memberId>` → the member's
 *                    assignment bytes (no field while the assignment is empty)
 *   `{g:G}:offsets`  hash: `topic:partition` → `offset|leaderEpoch|commitTimestamp|metadata`
 *   `{g:G}:staged:<producerId>:<epoch>`, `{g:G}:pending`  offsets staged by transactions
 *   `{strata}:groups`  the set of every group id
 *
 * A member record is one line of JSON (join order, instance id, client id and host, timeouts,
 * protocol type, each protocol's name and metadata length), a newline, then the protocols'
 * metadata back to back. A transition writes the group record if it changed, the record of
 * each member that joined or changed its protocols or settings, the assignment of each member
 * whose assignment changed, and deletes the fields of members that left. So a heartbeat
 * writes nothing, a SyncGroup writes assignments, and a member's metadata is written when a
 * join changed it, not on every rebalance. Planning a write ({@link planGroupWrite}) is pure;
 * {@link GroupStore} runs it (group-write.lua, under the group's lease).
 *
 * Format 1 kept the whole group as one JSON document in `{g:G}:state` (metadata and
 * assignments in base64). It is still read, so a broker upgraded in place continues its
 * groups; the first write after that replaces it with format 2.
 */
import type { Redis } from 'ioredis';
import { GROUPS_SET, groupKeys, parseLeaseValue } from '../coordination/keys.js';
import { fencedHashUpdate, fencedSet } from '../coordination/lease.js';
import { ScriptRunner, redisCall } from '../coordination/redis.js';
import { LostLeaseError } from '../errors.js';
import type { GroupSnapshot, GroupStateName, MemberSnapshot, Protocol } from './group.js';
import { sameProtocols } from './group.js';

/** The group record's `format` that says members live in the members hash. */
export const GROUP_FORMAT = 2;

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);

/** One member as the last successful write left it in Redis. */
interface StoredMember {
  /** Join order: members are restored in this order (the leader choice and member lists follow it). */
  seq: number;
  /** The member record's JSON line. */
  header: string;
  /** The protocols written (the group's own objects: identity means unchanged). */
  protocols: Protocol[];
  assignment: Buffer;
}

/** What Redis holds for a group after the last successful write: the base of the next one. */
export interface StoredGroup {
  record: string;
  members: Map<string, StoredMember>;
  nextSeq: number;
}

/** The changes one transition writes (the arguments of group-write.lua). */
export interface GroupWrite {
  /** Replace the members hash as a whole (the previous content is unknown or of format 1). */
  replace: boolean;
  /** The new group record, or null when it did not change. */
  record: string | null;
  /** Hash fields to set. */
  set: [string, Buffer][];
  /** Hash fields to delete. */
  del: string[];
  /** What Redis holds once this write succeeded. */
  stored: StoredGroup;
}

/** The members' record format (format 2), one JSON line before the metadata bytes. */
type MemberHeader = Omit<MemberSnapshot, 'memberId' | 'protocols' | 'assignment'> & {
  seq: number;
  /** Protocol name and metadata length, in the member's order of preference. */
  protocols: [string, number][];
};

/** The group record of format 1 (the whole group) and 2 (`format` set, members elsewhere). */
interface GroupRecord {
  format?: number;
  state: GroupStateName;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  /** Format 1 only: every member, metadata and assignment in base64. */
  members: (Omit<MemberSnapshot, 'protocols' | 'assignment'> & { protocols: { name: string; metadata: string }[]; assignment: string })[];
}

function groupRecord(snap: GroupSnapshot): string {
  const record: GroupRecord = {
    format: GROUP_FORMAT,
    state: snap.state,
    generationId: snap.generationId,
    protocolType: snap.protocolType,
    protocolName: snap.protocolName,
    leaderId: snap.leaderId,
    // Always empty: a broker of the previous version that takes the group over (during a
    // rolling upgrade, or after a rollback) then finds the generation without members, and
    // they rejoin, instead of it failing to read the group at all.
    members: [],
  };
  return JSON.stringify(record);
}

function memberHeader(seq: number, m: MemberSnapshot): string {
  const header: MemberHeader = {
    seq,
    groupInstanceId: m.groupInstanceId,
    clientId: m.clientId,
    clientHost: m.clientHost,
    sessionTimeoutMs: m.sessionTimeoutMs,
    rebalanceTimeoutMs: m.rebalanceTimeoutMs,
    protocolType: m.protocolType,
    protocols: m.protocols.map((p) => [p.name, p.metadata.length]),
  };
  return JSON.stringify(header);
}

function memberRecord(header: string, protocols: readonly Protocol[]): Buffer {
  return Buffer.concat([Buffer.from(`${header}\n`), ...protocols.map((p) => p.metadata)]);
}

/**
 * The write that brings Redis from `stored` (null: unknown, so everything is written) to
 * `snap`; null when nothing changed.
 */
export function planGroupWrite(stored: StoredGroup | null, snap: GroupSnapshot): GroupWrite | null {
  const record = groupRecord(snap);
  const next: StoredGroup = { record, members: new Map(), nextSeq: stored?.nextSeq ?? 0 };
  const set: [string, Buffer][] = [];
  const del: string[] = [];
  for (const m of snap.members) {
    const old = stored?.members.get(m.memberId);
    const seq = old?.seq ?? next.nextSeq++;
    const header = memberHeader(seq, m);
    if (old === undefined || old.header !== header || !sameProtocols(old.protocols, m.protocols)) {
      set.push([`m:${m.memberId}`, memberRecord(header, m.protocols)]);
    }
    if (m.assignment.length > 0) {
      if (old === undefined || (old.assignment !== m.assignment && !old.assignment.equals(m.assignment))) set.push([`a:${m.memberId}`, m.assignment]);
    } else if (old !== undefined && old.assignment.length > 0) {
      del.push(`a:${m.memberId}`);
    }
    next.members.set(m.memberId, { seq, header, protocols: m.protocols, assignment: m.assignment });
  }
  if (stored !== null) {
    for (const [id, old] of stored.members) {
      if (next.members.has(id)) continue;
      del.push(`m:${id}`);
      if (old.assignment.length > 0) del.push(`a:${id}`);
    }
    if (record === stored.record && set.length === 0 && del.length === 0) return null;
  }
  return { replace: stored === null, record: stored !== null && record === stored.record ? null : record, set, del, stored: next };
}

/** group-write.lua's arguments after the lease value. */
export function groupWriteArgs(w: GroupWrite): (string | number | Buffer)[] {
  const args: (string | number | Buffer)[] = [w.replace ? '1' : '0', w.record ?? '', w.set.length];
  for (const [field, value] of w.set) args.push(field, value);
  for (const field of w.del) args.push(field);
  return args;
}

/** The state and protocol type of a stored group record of either format (for ListGroups). */
export function readGroupRecord(record: string): { state: GroupStateName; protocolType: string | null } {
  const r = JSON.parse(record) as GroupRecord;
  return { state: r.state, protocolType: r.protocolType };
}

/**
 * Reads a stored group: `record` from `{g:G}:state`, `fields` from `{g:G}:members`. Returns
 * the snapshot to restore and what Redis holds, or `stored` null for format 1 (the first
 * write then replaces everything). Buffers are copied out of the replies.
 */
export function loadGroup(record: string, fields: Record<string, Buffer>): { snapshot: GroupSnapshot; stored: StoredGroup | null } {
  const r = JSON.parse(record) as GroupRecord;
  const base = { state: r.state, generationId: r.generationId, protocolType: r.protocolType, protocolName: r.protocolName, leaderId: r.leaderId };
  if (r.format === undefined) {
    const members = r.members.map(
      (s): MemberSnapshot => ({
        ...s,
        protocols: s.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata, 'base64') })),
        assignment: s.assignment === '' ? EMPTY : Buffer.from(s.assignment, 'base64'),
      }),
    );
    return { snapshot: { ...base, members }, stored: null };
  }
  if (r.format !== GROUP_FORMAT) throw new Error(`group record has format ${r.format}, this broker reads 1 and ${GROUP_FORMAT}; upgrade the broker`);
  const assignments = new Map<string, Buffer>();
  const decoded: { seq: number; header: string; member: MemberSnapshot }[] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith('a:')) assignments.set(field.slice(2), Buffer.from(value));
    else if (field.startsWith('m:')) decoded.push(decodeMember(field.slice(2), value));
  }
  decoded.sort((a, b) => a.seq - b.seq);
  const stored: StoredGroup = { record, members: new Map(), nextSeq: decoded.length === 0 ? 0 : decoded[decoded.length - 1]!.seq + 1 };
  const members: MemberSnapshot[] = [];
  for (const { seq, header, member } of decoded) {
    member.assignment = assignments.get(member.memberId) ?? EMPTY;
    members.push(member);
    stored.members.set(member.memberId, { seq, header, protocols: member.protocols, assignment: member.assignment });
  }
  return { snapshot: { ...base, members }, stored };
}

function decodeMember(memberId: string, value: Buffer): { seq: number; header: string; member: MemberSnapshot } {
  const newline = value.indexOf(NEWLINE);
  if (newline < 0) throw new Error(`member record of ${memberId} has no header line; the group's Redis state is damaged`);
  const header = value.toString('utf8', 0, newline);
  const h = JSON.parse(header) as MemberHeader;
  let offset = newline + 1;
  const protocols: Protocol[] = h.protocols.map(([name, length]) => {
    const metadata = Buffer.from(value.subarray(offset, offset + length));
    offset += length;
    return { name, metadata };
  });
  if (offset !== value.length) throw new Error(`member record of ${memberId} holds ${value.length - newline - 1} metadata bytes, its header says ${offset - newline - 1}; the group's Redis state is damaged`);
  const member: MemberSnapshot = {
    memberId,
    groupInstanceId: h.groupInstanceId,
    clientId: h.clientId,
    clientHost: h.clientHost,
    sessionTimeoutMs: h.sessionTimeoutMs,
    rebalanceTimeoutMs: h.rebalanceTimeoutMs,
    protocolType: h.protocolType,
    protocols,
    assignment: EMPTY,
  };
  return { seq: h.seq, header, member };
}

/** One committed offset as stored. */
export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
}

/** An offset to commit or stage for one partition. */
export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: CommittedOffset;
}

function encodeOffset(o: CommittedOffset, now: number): string {
  return `${o.offset}|${o.leaderEpoch}|${now}|${o.metadata}`;
}

function decodeOffset(s: string): CommittedOffset {
  const a = s.indexOf('|');
  const b = s.indexOf('|', a + 1);
  const c = s.indexOf('|', b + 1);
  return { offset: Number(s.slice(0, a)), leaderEpoch: Number(s.slice(a + 1, b)), metadata: s.slice(c + 1) };
}

/** Offset fields written per fenced script call (bounds one script's run time). */
const OFFSETS_PER_WRITE = 1000;

/**
 * Reads and writes consumer groups in Redis. Writes of an owned group take the owner's lease
 * value and fail with LostLeaseError when the lease has moved on; reads are open to any
 * broker.
 */
export class GroupStore {
  readonly #redis: Redis;
  readonly #scripts: ScriptRunner;

  constructor(redis: Redis) {
    this.#redis = redis;
    this.#scripts = new ScriptRunner(redis);
  }

  /** Whether the group has a stored record (errors unmapped: the caller is loading). */
  async exists(groupId: string): Promise<boolean> {
    return (await this.#redis.exists(groupKeys(groupId).state)) > 0;
  }

  /** The stored group (see {@link loadGroup}), or null when it has no record. */
  async read(groupId: string): Promise<{ snapshot: GroupSnapshot; stored: StoredGroup | null } | null> {
    const keys = groupKeys(groupId);
    const [[recordErr, raw], [fieldsErr, fields]] = (await this.#redis.pipeline().get(keys.state).hgetallBuffer(keys.members).exec()) as [
      [Error | null, string | null],
      [Error | null, Record<string, Buffer>],
    ];
    if (recordErr ?? fieldsErr) throw recordErr ?? fieldsErr;
    return raw ? loadGroup(raw, fields) : null;
  }

  /** Adds the group to the set of all groups. */
  async register(groupId: string): Promise<void> {
    await this.#redis.sadd(GROUPS_SET, groupId);
  }

  /** Every group id with stored state. */
  listIds(): Promise<string[]> {
    return redisCall('list groups', () => this.#redis.smembers(GROUPS_SET));
  }

  /** For each group, the node holding its lease (null: none) and its stored record (null: none). */
  async readListings(groupIds: readonly string[]): Promise<{ holder: number | null; record: string | null }[]> {
    const pipeline = this.#redis.pipeline();
    for (const id of groupIds) pipeline.get(groupKeys(id).lease).get(groupKeys(id).state);
    const replies = (await redisCall('list groups', () => pipeline.exec())) ?? [];
    return groupIds.map((_, i) => {
      const lease = replies[2 * i]?.[1] as string | null;
      return { holder: lease ? (parseLeaseValue(lease)?.nodeId ?? null) : null, record: (replies[2 * i + 1]?.[1] as string | null) ?? null };
    });
  }

  /** Runs a planned write under the lease (group-write.lua); LostLeaseError if not held. */
  async write(groupId: string, leaseValue: string, plan: GroupWrite): Promise<void> {
    const keys = groupKeys(groupId);
    const ok = await this.#scripts.run({ script: 'group-write', keys: [keys.lease, keys.state, keys.members], args: [leaseValue, ...groupWriteArgs(plan)] });
    if (ok !== 1) throw new LostLeaseError(`lease ${keys.lease} is no longer held by this broker`);
  }

  /** Commits offsets under the lease, stamped `nowMs`. */
  async commitOffsets(groupId: string, leaseValue: string, offsets: readonly PartitionOffset[], nowMs: number): Promise<void> {
    const keys = groupKeys(groupId);
    const fields: [string, string][] = offsets.map((x) => [`${x.topic}:${x.partition}`, encodeOffset(x.offset, nowMs)]);
    for (let i = 0; i < fields.length; i += OFFSETS_PER_WRITE) {
      await fencedHashUpdate(this.#scripts, keys.lease, leaseValue, keys.offsets, fields.slice(i, i + OFFSETS_PER_WRITE));
    }
  }

  /** Stages a transaction's offsets under the lease and marks their partitions pending. */
  async stageOffsets(groupId: string, leaseValue: string, producerId: number, producerEpoch: number, offsets: readonly PartitionOffset[], nowMs: number): Promise<void> {
    const keys = groupKeys(groupId);
    const staged: [string, string][] = offsets.map((x) => [`${x.topic}:${x.partition}`, encodeOffset(x.offset, nowMs)]);
    await fencedHashUpdate(this.#scripts, keys.lease, leaseValue, keys.staged(producerId, producerEpoch), staged);
    await fencedHashUpdate(this.#scripts, keys.lease, leaseValue, keys.pending, staged.map(([f]) => [f, String(producerId)]));
  }

  /**
   * Materialises (commit) or drops (abort) the offsets `producerId` staged at
   * `producerEpoch`, and clears their pending marks (txn-offsets-end.lua, atomic on the
   * group's hash tag). Not fenced by the group's lease: the transaction's coordinator calls
   * it, and a staged value only ever comes from that producer's TxnOffsetCommit.
   */
  async endTransactionalOffsets(groupId: string, producerId: number, producerEpoch: number, commit: boolean): Promise<void> {
    const keys = groupKeys(groupId);
    await this.#scripts.run({ script: 'txn-offsets-end', keys: [keys.offsets, keys.staged(producerId, producerEpoch), keys.pending], args: [producerId, commit ? 1 : 0] });
  }

  /** Partitions with offsets staged by an open transaction (for requireStable). */
  async pendingPartitions(groupId: string): Promise<Set<string>> {
    return new Set(await redisCall('read pending offsets', () => this.#redis.hkeys(groupKeys(groupId).pending)));
  }

  /** Committed offsets (all of them when `partitions` is null), by `topic:partition`. */
  async fetchOffsets(groupId: string, partitions: readonly { topic: string; partition: number }[] | null): Promise<Map<string, CommittedOffset>> {
    const key = groupKeys(groupId).offsets;
    const out = new Map<string, CommittedOffset>();
    if (partitions === null) {
      const all = await redisCall('fetch offsets', () => this.#redis.hgetall(key));
      for (const [f, v] of Object.entries(all)) out.set(f, decodeOffset(v));
      return out;
    }
    if (partitions.length === 0) return out;
    const fields = partitions.map((p) => `${p.topic}:${p.partition}`);
    const values = await redisCall('fetch offsets', () => this.#redis.hmget(key, ...fields));
    fields.forEach((f, i) => {
      const v = values[i];
      if (v !== null && v !== undefined) out.set(f, decodeOffset(v));
    });
    return out;
  }

  /** Deletes committed offsets (`topic:partition` fields) under the lease. */
  async deleteOffsets(groupId: string, leaseValue: string, fields: readonly string[]): Promise<void> {
    const keys = groupKeys(groupId);
    await fencedHashUpdate(this.#scripts, keys.lease, leaseValue, keys.offsets, [], fields);
  }

  /** Deletes the group's record, members and offsets under the lease, and forgets the id. */
  async delete(groupId: string, leaseValue: string): Promise<void> {
    const keys = groupKeys(groupId);
    await fencedSet(this.#scripts, keys.lease, leaseValue, keys.state, undefined);
    await fencedSet(this.#scripts, keys.lease, leaseValue, keys.members, undefined);
    await fencedSet(this.#scripts, keys.lease, leaseValue, keys.offsets, undefined);
    await this.#redis.srem(GROUPS_SET, groupId);
  }
}
