/**
 * Test helper for the consumer-group handler tests: group requests over a RawClient with
 * defaults filled in, the KIP-394 two-step join, a one-member Stable group, and the consumer
 * protocol's subscription / assignment bytes. Responses come back decoded and unchanged, so
 * tests assert exact fields. A member blocked in JoinGroup or SyncGroup holds its connection's
 * later responses (they are written in request order), so every member gets its own client.
 */
import {
  ApiKey,
  ErrorCode,
  Writer,
  encodeConsumerProtocolAssignment,
  encodeConsumerProtocolSubscription,
  type JoinGroupResponse,
  type OffsetCommitResponse,
  type OffsetFetchResponse,
  type SyncGroupResponse,
} from '../../wire/index.js';
import type { RawClient } from './raw-client.js';
import { waitFor } from './wait.js';

/** ConsumerProtocolSubscription v0 bytes (with their version prefix) for `topics`. */
export function subscription(topics: string[]): Buffer {
  const w = new Writer();
  w.int16(0);
  encodeConsumerProtocolSubscription(w, 0, { topics, userData: null, ownedPartitions: [], generationId: -1, rackId: null });
  return w.finishBuffer();
}

/** ConsumerProtocolAssignment v0 bytes for `partitions` (topic → partition list). */
export function assignment(partitions: Record<string, number[]>): Buffer {
  const w = new Writer();
  w.int16(0);
  encodeConsumerProtocolAssignment(w, 0, { assignedPartitions: Object.entries(partitions).map(([topic, ps]) => ({ topic, partitions: ps })), userData: null });
  return w.finishBuffer();
}

export interface JoinOptions {
  groupId: string;
  memberId?: string;
  groupInstanceId?: string | null;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  protocolType?: string;
  protocols?: { name: string; metadata: Buffer }[];
  /** Topics of the default `range` protocol's subscription. */
  topics?: string[];
}

export function joinGroup(client: RawClient, version: number, o: JoinOptions): Promise<JoinGroupResponse> {
  return client.send(ApiKey.JoinGroup, version, {
    groupId: o.groupId,
    sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000,
    rebalanceTimeoutMs: o.rebalanceTimeoutMs ?? 10_000,
    memberId: o.memberId ?? '',
    groupInstanceId: o.groupInstanceId ?? null,
    protocolType: o.protocolType ?? 'consumer',
    protocols: o.protocols ?? [{ name: 'range', metadata: subscription(o.topics ?? ['t']) }],
    reason: null,
  });
}

/** Joins as a new dynamic member; from v4 the first answer is MEMBER_ID_REQUIRED with the id to use. */
export async function joinNew(client: RawClient, version: number, o: JoinOptions): Promise<JoinGroupResponse> {
  if (version < 4) return joinGroup(client, version, o);
  const first = await joinGroup(client, version, { ...o, memberId: '' });
  if (first.errorCode !== ErrorCode.MEMBER_ID_REQUIRED) throw new Error(`first JoinGroup of ${o.groupId}: error ${first.errorCode}, expected MEMBER_ID_REQUIRED`);
  return joinGroup(client, version, { ...o, memberId: first.memberId });
}

export interface SyncOptions {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
  protocolType?: string | null;
  protocolName?: string | null;
  assignments?: { memberId: string; assignment: Buffer }[];
}

export function syncGroup(client: RawClient, version: number, o: SyncOptions): Promise<SyncGroupResponse> {
  return client.send(ApiKey.SyncGroup, version, {
    groupId: o.groupId,
    generationId: o.generationId,
    memberId: o.memberId,
    groupInstanceId: o.groupInstanceId ?? null,
    protocolType: o.protocolType ?? null,
    protocolName: o.protocolName ?? null,
    assignments: o.assignments ?? [],
  });
}

export async function heartbeat(client: RawClient, version: number, o: { groupId: string; generationId: number; memberId: string; groupInstanceId?: string | null }): Promise<number> {
  const r = await client.send(ApiKey.Heartbeat, version, { groupId: o.groupId, generationId: o.generationId, memberId: o.memberId, groupInstanceId: o.groupInstanceId ?? null });
  return r.errorCode;
}

export interface CommitPartition {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch?: number;
  committedMetadata?: string | null;
}

export function commitOffsets(
  client: RawClient,
  version: number,
  o: { groupId: string; generationId?: number; memberId?: string; groupInstanceId?: string | null; topics: { name: string; partitions: CommitPartition[] }[] },
): Promise<OffsetCommitResponse> {
  return client.send(ApiKey.OffsetCommit, version, {
    groupId: o.groupId,
    generationIdOrMemberEpoch: o.generationId ?? -1,
    memberId: o.memberId ?? '',
    groupInstanceId: o.groupInstanceId ?? null,
    retentionTimeMs: -1n,
    topics: o.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        committedOffset: p.committedOffset,
        committedLeaderEpoch: p.committedLeaderEpoch ?? -1,
        commitTimestamp: -1n,
        committedMetadata: p.committedMetadata === undefined ? '' : p.committedMetadata,
      })),
    })),
  });
}

/** The per-partition error codes of an OffsetCommit response, as `topic:partition` → code. */
export function commitErrors(r: OffsetCommitResponse): Record<string, number> {
  return Object.fromEntries(r.topics.flatMap((t) => t.partitions.map((p) => [`${t.name}:${p.partitionIndex}`, p.errorCode])));
}

/** OffsetFetch v0–v7 for one group (`topics` null = all, from v2). */
export function fetchOffsets(client: RawClient, version: number, groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null): Promise<OffsetFetchResponse> {
  return client.send(ApiKey.OffsetFetch, version, { groupId, topics, groups: [], requireStable: false });
}

/** A member that joined, got `assigned` from its own SyncGroup as the only member, and is Stable. */
export interface StableMember {
  memberId: string;
  generationId: number;
}

export async function stableSingleMember(client: RawClient, groupId: string, topics: string[], assigned: Record<string, number[]> = {}): Promise<StableMember> {
  const join = await joinNew(client, 5, { groupId, topics });
  if (join.errorCode !== ErrorCode.NONE) throw new Error(`JoinGroup of ${groupId}: error ${join.errorCode}`);
  const sync = await syncGroup(client, 3, { groupId, generationId: join.generationId, memberId: join.memberId, assignments: [{ memberId: join.memberId, assignment: assignment(assigned) }] });
  if (sync.errorCode !== ErrorCode.NONE) throw new Error(`SyncGroup of ${groupId}: error ${sync.errorCode}`);
  return { memberId: join.memberId, generationId: join.generationId };
}

/** Group settings for handler tests: no initial delay, session timeouts from 1 s. */
export const GROUP_BROKER_ARGS = ['--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '1000', '--group-max-session-timeout-ms', '60000'];

/**
 * Waits (bounded) until `member`'s heartbeat answers REBALANCE_IN_PROGRESS: proof that a join
 * sent on another connection has reached the group, before `member` itself rejoins.
 */
export async function untilRebalancing(client: RawClient, groupId: string, member: { memberId: string; generationId: number }, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `${groupId} to start rebalancing`,
    async () => {
      const code = await heartbeat(client, 4, { groupId, generationId: member.generationId, memberId: member.memberId });
      if (code !== ErrorCode.NONE && code !== ErrorCode.REBALANCE_IN_PROGRESS) throw new Error(`heartbeat of ${member.memberId} in ${groupId}: error ${code} while waiting for a rebalance`);
      return code;
    },
    (code) => code === ErrorCode.REBALANCE_IN_PROGRESS,
    timeoutMs,
    20,
  );
}

/** Two members of one generation: their member ids and the generation. */
export interface TwoMembers {
  a: string;
  b: string;
  generationId: number;
}

function ok(what: string, code: number): void {
  if (code !== ErrorCode.NONE) throw new Error(`${what} failed with error ${code}`);
}

/**
 * Two members joined in one generation, neither synced yet (CompletingRebalance): `a` (on
 * `ca`) joins and syncs alone, `b` (on `cb`) joins (KIP-394's two steps unless static), and
 * `a` rejoins. `first`/`second` add join options, e.g. a group instance id.
 */
export async function twoJoined(ca: RawClient, cb: RawClient, groupId: string, first: Partial<JoinOptions> = {}, second: Partial<JoinOptions> = {}): Promise<TwoMembers> {
  const a = first.groupInstanceId ? await joinGroup(ca, 5, { groupId, ...first }) : await joinNew(ca, 5, { groupId, ...first });
  ok(`first join of ${groupId}`, a.errorCode);
  ok(`first sync of ${groupId}`, (await syncGroup(ca, 3, { groupId, generationId: a.generationId, memberId: a.memberId, groupInstanceId: first.groupInstanceId ?? null })).errorCode);
  const bFirst = await joinGroup(cb, 5, { groupId, ...second });
  const bJoin = second.groupInstanceId ? Promise.resolve(bFirst) : joinGroup(cb, 5, { groupId, ...second, memberId: bFirst.memberId });
  await untilRebalancing(ca, groupId, a);
  const aJoin = await joinGroup(ca, 5, { groupId, ...first, memberId: a.memberId });
  const b = await bJoin;
  ok(`rejoin of ${groupId}`, aJoin.errorCode);
  ok(`second member's join of ${groupId}`, b.errorCode);
  if (b.generationId !== aJoin.generationId) throw new Error(`${groupId}: members joined generations ${aJoin.generationId} and ${b.generationId}`);
  return { a: a.memberId, b: b.memberId, generationId: aJoin.generationId };
}

/**
 * Syncs two joined members ({@link twoJoined}) in generation `g.generationId`: `a` leads with
 * assignments `assigned-a` and `assigned-b`.
 */
export async function syncTwo(ca: RawClient, cb: RawClient, groupId: string, g: TwoMembers, first: Partial<JoinOptions> = {}, second: Partial<JoinOptions> = {}): Promise<void> {
  const follower = syncGroup(cb, 3, { groupId, generationId: g.generationId, memberId: g.b, groupInstanceId: second.groupInstanceId ?? null });
  const assignments = [
    { memberId: g.a, assignment: Buffer.from('assigned-a') },
    { memberId: g.b, assignment: Buffer.from('assigned-b') },
  ];
  ok(`leader's sync of ${groupId}`, (await syncGroup(ca, 3, { groupId, generationId: g.generationId, memberId: g.a, groupInstanceId: first.groupInstanceId ?? null, assignments })).errorCode);
  ok(`follower's sync of ${groupId}`, (await follower).errorCode);
}

/** A Stable group of two: {@link twoJoined}, then {@link syncTwo}. */
export async function stableTwo(ca: RawClient, cb: RawClient, groupId: string, first: Partial<JoinOptions> = {}, second: Partial<JoinOptions> = {}): Promise<TwoMembers> {
  const g = await twoJoined(ca, cb, groupId, first, second);
  await syncTwo(ca, cb, groupId, g, first, second);
  return g;
}
