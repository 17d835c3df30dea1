/**
 * One consumer group's membership state machine (the classic protocol), as Kafka's group
 * coordinator runs it:
 *
 *   Empty → PreparingRebalance → CompletingRebalance → Stable → (PreparingRebalance …)
 *                                                     any → Dead (deleted / unloaded)
 *
 * PreparingRebalance waits until every known member has rejoined (or the rebalance timeout
 * passes, and stragglers are removed); then a new generation starts, the leader receives the
 * members' metadata, and CompletingRebalance waits for the leader's SyncGroup with the
 * assignment. Stable members heartbeat; one that stops is removed after its session timeout.
 *
 * Limits (Kafka's `group.max.size`, and Strata's bounds on member metadata) are checked before
 * anything of a request is kept: protocol metadata and assignments arrive as views of the
 * request frame, and the group copies only what it accepts.
 *
 * This class holds no I/O: the coordinator persists `snapshot()` after every transition the
 * class reports through `onTransition`, and answers clients with what the methods return.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../../wire/index.js';

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface Protocol {
  name: string;
  metadata: Buffer;
}

/** One member as persisted: what a new owner needs to continue the generation. */
export interface MemberSnapshot {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  assignment: Buffer;
}

/** A member as the state machine keeps it: what is persisted, plus its timers and waiters. */
export interface Member extends MemberSnapshot {
  lastHeartbeatMs: number;
  joinWaiter: ((r: JoinResult) => void) | null;
  syncWaiter: ((r: SyncResult) => void) | null;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  skipAssignment: boolean;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export interface JoinParams {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  /** May be views of the request frame: the group copies what it keeps. */
  protocols: Protocol[];
  /** JoinGroup v4+: a first join without a member id gets MEMBER_ID_REQUIRED (KIP-394). */
  requireKnownMemberId: boolean;
  /** JoinGroup v9+: the client understands `skipAssignment` (KIP-814). Default false. */
  supportsSkipAssignment?: boolean;
}

export interface GroupOptions {
  initialRebalanceDelayMs: number;
  /** Kafka's group.max.size: most members the group admits. Default: no limit. */
  maxSize?: number;
  /**
   * Largest protocol metadata of one member (names and bytes of all its protocols together),
   * and largest assignment of one member. Default: no limit.
   */
  maxMemberMetadataBytes?: number;
  /** Largest total of all members' protocol metadata and assignments. Default: no limit. */
  maxMetadataBytes?: number;
  now?: () => number;
}


/**
 * The group's persistent state (the coordinator writes it after every transition). Buffers
 * are the group's own, not copies: a snapshot is read at once, never kept while the group
 * changes.
 */
export interface GroupSnapshot {
  state: GroupStateName;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: MemberSnapshot[];
}

const EMPTY = Buffer.alloc(0);

/** The bytes group limits count for a member's protocols: every name and metadata together. */
export function protocolsBytes(protocols: readonly Protocol[]): number {
  let n = 0;
  for (const p of protocols) n += Buffer.byteLength(p.name) + p.metadata.length;
  return n;
}

/** True when two protocol lists have the same names and metadata, in the same order. */
export function sameProtocols(a: readonly Protocol[], b: readonly Protocol[]): boolean {
  return a === b || (a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata)));
}

/** Copies protocols out of a request (its frame is reused once the request is answered). */
function copyProtocols(protocols: readonly Protocol[]): Protocol[] {
  return protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
}

function errorJoin(errorCode: number, memberId = ''): JoinResult {
  return { errorCode, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, skipAssignment: false, members: [] };
}

function errorSync(errorCode: number): SyncResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

export class Group {
  readonly groupId: string;
  state: GroupStateName = 'Empty';
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** group.instance.id → member id of static members. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, not yet joined: id → expiry. */
  readonly pendingMembers = new Map<string, number>();
  /** Called after each transition that must be persisted (the coordinator saves a snapshot). */
  onTransition: () => void = () => undefined;

  readonly #opts: GroupOptions;
  readonly #now: () => number;
  readonly #maxSize: number;
  readonly #maxMemberBytes: number;
  readonly #maxTotalBytes: number;
  /** Protocol metadata and assignment bytes of all members (see {@link protocolsBytes}). */
  #metadataBytes = 0;
  #rebalanceTimer: NodeJS.Timeout | null = null;
  #rebalanceDeadline = 0;
  /** While the first rebalance of an empty group waits for more members to arrive. */
  #initialDelay = false;

  constructor(groupId: string, opts: GroupOptions) {
    this.groupId = groupId;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#maxSize = opts.maxSize ?? Infinity;
    this.#maxMemberBytes = opts.maxMemberMetadataBytes ?? Infinity;
    this.#maxTotalBytes = opts.maxMetadataBytes ?? Infinity;
  }

  /** Protocol metadata and assignment bytes the group holds, over all members. */
  get metadataBytes(): number {
    return this.#metadataBytes;
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** Protocols every member supports (the candidates for the next generation). */
  #candidateProtocols(): Set<string> | null {
    let candidates: Set<string> | null = null;
    for (const m of this.members.values()) {
      const names = new Set(m.protocols.map((p) => p.name));
      const previous: Set<string> | null = candidates;
      candidates = previous === null ? names : new Set([...previous].filter((n: string) => names.has(n)));
    }
    return candidates;
  }

  #supports(protocolType: string, protocols: Protocol[]): boolean {
    if (this.members.size === 0) return protocols.length > 0;
    if (this.protocolType !== protocolType) return false;
    const candidates = this.#candidateProtocols()!;
    return protocols.some((p) => candidates.has(p.name));
  }

  /**
   * Picks the protocol for a generation as Kafka does: among the protocols all members
   * support, each member votes for the first one in its own preference order; most votes wins.
   */
  #selectProtocol(): string {
    const candidates = this.#candidateProtocols()!;
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const choice = m.protocols.find((p) => candidates.has(p.name))!;
      votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = '';
    let bestVotes = -1;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    return best;
  }

  #allJoined(): boolean {
    for (const m of this.members.values()) if (m.joinWaiter === null) return false;
    return this.pendingMembers.size === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // JoinGroup

  join(p: JoinParams): Promise<JoinResult> {
    if (this.state === 'Dead') return Promise.resolve(errorJoin(ErrorCode.COORDINATOR_NOT_AVAILABLE, p.memberId));
    // The member whose place this join takes: the member itself, or the static member a
    // restarted instance replaces (which is not a new member either).
    const existing = p.memberId !== '' ? this.members.get(p.memberId) : this.#staticMember(p.groupInstanceId);
    if (!this.#acceptsJoin(existing)) return Promise.resolve(this.#refuseOverSize(p.memberId, existing));
    if (!this.#supports(p.protocolType, p.protocols)) {
      return Promise.resolve(errorJoin(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, p.memberId));
    }
    const bytes = protocolsBytes(p.protocols);
    const replaced = existing ? protocolsBytes(existing.protocols) : 0;
    if (bytes > this.#maxMemberBytes || this.#metadataBytes - replaced + bytes > this.#maxTotalBytes) {
      // Refused before anything is kept or a rebalance starts: the group carries on as it was.
      return Promise.resolve(errorJoin(ErrorCode.UNKNOWN_SERVER_ERROR, p.memberId));
    }
    if (p.memberId === '') return this.#joinUnknownMember(p);
    return this.#joinKnownMember(p);
  }

  #staticMember(groupInstanceId: string | null): Member | undefined {
    if (groupInstanceId === null) return undefined;
    const id = this.staticMembers.get(groupInstanceId);
    return id === undefined ? undefined : this.members.get(id);
  }

  /**
   * Kafka's acceptJoiningMember (group.max.size): an existing member is always taken back
   * while the group is Stable or completing a rebalance, and a new one only below the limit.
   * While a rebalance is prepared, the members that already rejoined are counted instead of
   * all members: the group may be over the limit (loaded over it, or the limit lowered), and
   * this sheds the last members to rejoin.
   */
  #acceptsJoin(existing: Member | undefined): boolean {
    switch (this.state) {
      case 'Empty':
      case 'Dead':
        return true;
      case 'PreparingRebalance':
        return (existing !== undefined && existing.joinWaiter !== null) || this.#awaitingJoin() < this.#maxSize;
      default:
        return existing !== undefined || this.members.size < this.#maxSize;
    }
  }

  #awaitingJoin(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.joinWaiter !== null) n++;
    return n;
  }

  /**
   * Answers GROUP_MAX_SIZE_REACHED (with no member id, as Kafka) and, like Kafka, removes the
   * member that was refused its place. A pending id from MEMBER_ID_REQUIRED is dropped too:
   * the client forgets it, and an unclaimed pending id would hold up the rebalance until it
   * expires.
   */
  #refuseOverSize(memberId: string, existing: Member | undefined): JoinResult {
    const refused = errorJoin(ErrorCode.GROUP_MAX_SIZE_REACHED, '');
    if (existing !== undefined) {
      existing.joinWaiter?.(errorJoin(ErrorCode.GROUP_MAX_SIZE_REACHED, ''));
      existing.syncWaiter?.(errorSync(ErrorCode.GROUP_MAX_SIZE_REACHED));
      existing.joinWaiter = null;
      existing.syncWaiter = null;
      this.#removeMember(existing);
      this.#membershipChanged();
    } else if (this.pendingMembers.delete(memberId)) {
      this.#tryCompleteJoin();
    }
    return refused;
  }

  #joinUnknownMember(p: JoinParams): Promise<JoinResult> {
    if (p.groupInstanceId !== null) {
      const oldId = this.staticMembers.get(p.groupInstanceId);
      const newId = `${p.groupInstanceId}-${randomUUID()}`;
      if (oldId !== undefined && this.members.has(oldId)) return this.#replaceStaticMember(oldId, newId, p);
      return this.#addMemberAndRebalance(newId, p);
    }
    const memberId = `${p.clientId}-${randomUUID()}`;
    if (p.requireKnownMemberId) {
      // KIP-394: hand out the id first, so a client that loses the response cannot leave an
      // orphan member behind; it must come back with this id before its session times out.
      this.pendingMembers.set(memberId, this.#now() + p.sessionTimeoutMs);
      return Promise.resolve(errorJoin(ErrorCode.MEMBER_ID_REQUIRED, memberId));
    }
    return this.#addMemberAndRebalance(memberId, p);
  }

  #joinKnownMember(p: JoinParams): Promise<JoinResult> {
    if (this.pendingMembers.has(p.memberId)) {
      this.pendingMembers.delete(p.memberId);
      return this.#addMemberAndRebalance(p.memberId, p);
    }
    const member = this.members.get(p.memberId);
    if (p.groupInstanceId !== null) {
      const mapped = this.staticMembers.get(p.groupInstanceId);
      if (mapped !== undefined && mapped !== p.memberId) return Promise.resolve(errorJoin(ErrorCode.FENCED_INSTANCE_ID, p.memberId));
    }
    if (!member) return Promise.resolve(errorJoin(ErrorCode.UNKNOWN_MEMBER_ID, p.memberId));
    switch (this.state) {
      case 'PreparingRebalance':
        return this.#updateMemberAndWait(member, p);
      case 'CompletingRebalance':
        if (sameProtocols(member.protocols, p.protocols)) {
          // A duplicate join (the response got lost): answer with the current generation.
          member.lastHeartbeatMs = this.#now();
          return Promise.resolve(this.#joinResultFor(member));
        }
        return this.#updateMemberAndRebalance(member, p);
      case 'Stable':
        if (member.memberId === this.leaderId || !sameProtocols(member.protocols, p.protocols)) {
          // The leader rejoining means it wants a new assignment (e.g. its subscription changed).
          return this.#updateMemberAndRebalance(member, p);
        }
        member.lastHeartbeatMs = this.#now();
        return Promise.resolve(this.#joinResultFor(member));
      default:
        return Promise.resolve(errorJoin(ErrorCode.UNKNOWN_MEMBER_ID, p.memberId));
    }
  }

  #newMember(memberId: string, p: JoinParams): Member {
    return {
      memberId,
      groupInstanceId: p.groupInstanceId,
      clientId: p.clientId,
      clientHost: p.clientHost,
      sessionTimeoutMs: p.sessionTimeoutMs,
      rebalanceTimeoutMs: p.rebalanceTimeoutMs,
      protocolType: p.protocolType,
      protocols: copyProtocols(p.protocols),
      assignment: EMPTY,
      lastHeartbeatMs: this.#now(),
      joinWaiter: null,
      syncWaiter: null,
    };
  }

  /**
   * Gives `member` the protocols of a join. Identical ones keep the stored copy, so the
   * coordinator sees (by identity) that the member's metadata need not be written again.
   */
  #setProtocols(member: Member, protocols: Protocol[]): void {
    if (sameProtocols(member.protocols, protocols)) return;
    this.#metadataBytes += protocolsBytes(protocols) - protocolsBytes(member.protocols);
    member.protocols = copyProtocols(protocols);
  }

  #setAssignment(member: Member, assignment: Buffer): void {
    this.#metadataBytes += assignment.length - member.assignment.length;
    member.assignment = assignment;
  }

  #addMember(member: Member): void {
    this.members.set(member.memberId, member);
    this.#metadataBytes += protocolsBytes(member.protocols) + member.assignment.length;
  }

  #addMemberAndRebalance(memberId: string, p: JoinParams): Promise<JoinResult> {
    const member = this.#newMember(memberId, p);
    if (this.members.size === 0) this.protocolType = p.protocolType;
    this.#addMember(member);
    if (p.groupInstanceId !== null) this.staticMembers.set(p.groupInstanceId, memberId);
    const result = this.#awaitJoin(member);
    if (this.state === 'PreparingRebalance' && this.#initialDelay) this.#extendInitialDelay();
    this.#prepareRebalance();
    this.#tryCompleteJoin();
    return result;
  }

  #updateMemberAndWait(member: Member, p: JoinParams): Promise<JoinResult> {
    this.#setProtocols(member, p.protocols);
    member.sessionTimeoutMs = p.sessionTimeoutMs;
    member.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    member.clientId = p.clientId;
    member.clientHost = p.clientHost;
    const result = this.#awaitJoin(member);
    this.#tryCompleteJoin();
    return result;
  }

  #updateMemberAndRebalance(member: Member, p: JoinParams): Promise<JoinResult> {
    this.#setProtocols(member, p.protocols);
    member.sessionTimeoutMs = p.sessionTimeoutMs;
    member.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    const result = this.#awaitJoin(member);
    this.#prepareRebalance();
    this.#tryCompleteJoin();
    return result;
  }

  /**
   * A static member rejoined without its member id (it restarted): it gets a new id and the
   * old one is fenced. If nothing else changed and the group is Stable, no rebalance happens:
   * the member keeps its assignment (KIP-345).
   */
  #replaceStaticMember(oldId: string, newId: string, p: JoinParams): Promise<JoinResult> {
    const old = this.members.get(oldId)!;
    old.joinWaiter?.(errorJoin(ErrorCode.FENCED_INSTANCE_ID, oldId));
    old.syncWaiter?.(errorSync(ErrorCode.FENCED_INSTANCE_ID));
    this.members.delete(oldId);
    this.#metadataBytes -= protocolsBytes(old.protocols) + old.assignment.length;
    const member: Member = {
      ...old,
      memberId: newId,
      joinWaiter: null,
      syncWaiter: null,
      lastHeartbeatMs: this.#now(),
      clientId: p.clientId,
      clientHost: p.clientHost,
      sessionTimeoutMs: p.sessionTimeoutMs,
      rebalanceTimeoutMs: p.rebalanceTimeoutMs,
      // The new subscription bytes are kept (they carry e.g. cooperative-sticky's owned
      // partitions, which legitimately change across restarts).
      protocols: sameProtocols(old.protocols, p.protocols) ? old.protocols : copyProtocols(p.protocols),
    };
    this.#addMember(member);
    this.staticMembers.set(p.groupInstanceId!, newId);
    const wasLeader = this.leaderId === oldId;
    if (wasLeader) this.leaderId = newId;
    // Kafka rebalances only when the group's protocol would change, or when the old member id
    // may already be in an assignment being computed (CompletingRebalance).
    if (this.state === 'Stable' && this.#selectProtocol() === this.protocolName) {
      this.onTransition();
      const r = this.#joinResultFor(member);
      if (!wasLeader) return Promise.resolve(r);
      // A static leader that rejoins must not reassign (KIP-814): v9+ clients are told to skip
      // the assignment; older ones are answered as a follower (the old leader id, no members)
      // and simply sync the assignment they had.
      return Promise.resolve(p.supportsSkipAssignment === true ? { ...r, skipAssignment: true } : { ...r, leader: oldId, members: [] });
    }
    const result = this.#awaitJoin(member);
    if (this.state !== 'PreparingRebalance') this.#prepareRebalance();
    this.#tryCompleteJoin();
    return result;
  }

  #awaitJoin(member: Member): Promise<JoinResult> {
    return new Promise((resolve) => {
      // A second join from the same member replaces the first, which is answered as a retry.
      member.joinWaiter?.(errorJoin(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
      member.joinWaiter = resolve;
    });
  }

  #joinResultFor(member: Member): JoinResult {
    const isLeader = member.memberId === this.leaderId;
    return {
      errorCode: ErrorCode.NONE,
      generationId: this.generationId,
      protocolType: this.protocolType,
      protocolName: this.protocolName,
      leader: this.leaderId ?? '',
      memberId: member.memberId,
      skipAssignment: false,
      members: isLeader ? this.#memberList() : [],
    };
  }

  #memberList(): JoinResult['members'] {
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.protocols.find((p) => p.name === this.protocolName)?.metadata ?? EMPTY,
    }));
  }

  #prepareRebalance(): void {
    if (this.state === 'PreparingRebalance') return;
    // Members waiting for an assignment of the old generation must rejoin.
    for (const m of this.members.values()) {
      if (m.syncWaiter) {
        m.syncWaiter(errorSync(ErrorCode.REBALANCE_IN_PROGRESS));
        m.syncWaiter = null;
      }
    }
    const wasEmpty = this.state === 'Empty';
    this.state = 'PreparingRebalance';
    const maxRebalance = Math.max(0, ...[...this.members.values()].map((m) => m.rebalanceTimeoutMs));
    if (wasEmpty && this.#opts.initialRebalanceDelayMs > 0) {
      // group.initial.rebalance.delay.ms: the first members of an empty group wait a little so
      // that consumers starting together land in one generation instead of several.
      this.#initialDelay = true;
      this.#rebalanceDeadline = this.#now() + maxRebalance;
      this.#setRebalanceTimer(Math.min(this.#opts.initialRebalanceDelayMs, maxRebalance));
    } else {
      this.#initialDelay = false;
      this.#setRebalanceTimer(maxRebalance);
    }
    this.onTransition();
  }

  #extendInitialDelay(): void {
    const remaining = this.#rebalanceDeadline - this.#now();
    this.#setRebalanceTimer(Math.max(0, Math.min(this.#opts.initialRebalanceDelayMs, remaining)));
  }

  #setRebalanceTimer(ms: number): void {
    if (this.#rebalanceTimer) clearTimeout(this.#rebalanceTimer);
    this.#rebalanceTimer = setTimeout(() => {
      this.#rebalanceTimer = null;
      this.#initialDelay = false;
      this.#completeJoin();
    }, ms);
    this.#rebalanceTimer.unref?.();
  }

  #tryCompleteJoin(): void {
    if (this.state !== 'PreparingRebalance' || this.#initialDelay) return;
    if (this.#allJoined()) this.#completeJoin();
  }

  /** Starts the next generation with the members that rejoined; the rest are removed. */
  #completeJoin(): void {
    if (this.state !== 'PreparingRebalance') return;
    if (this.#rebalanceTimer) {
      clearTimeout(this.#rebalanceTimer);
      this.#rebalanceTimer = null;
    }
    // Dynamic members that did not rejoin leave the group; static ones stay (they may be
    // restarting) until their session expires, as Kafka does.
    for (const m of [...this.members.values()]) if (m.joinWaiter === null && m.groupInstanceId === null) this.#removeMember(m);
    this.generationId++;
    if (this.members.size === 0) {
      this.state = 'Empty';
      this.protocolName = null;
      this.leaderId = null;
      this.onTransition();
      return;
    }
    this.protocolName = this.#selectProtocol();
    if (this.leaderId === null || !this.members.get(this.leaderId)?.joinWaiter) {
      // The leader must be a member that is waiting for this answer.
      this.leaderId = [...this.members.values()].find((m) => m.joinWaiter !== null)?.memberId ?? this.members.keys().next().value!;
    }
    this.state = 'CompletingRebalance';
    for (const m of this.members.values()) this.#setAssignment(m, EMPTY);
    this.onTransition();
    const now = this.#now();
    for (const m of this.members.values()) {
      const waiter = m.joinWaiter;
      if (!waiter) continue;
      m.joinWaiter = null;
      m.lastHeartbeatMs = now;
      waiter(this.#joinResultFor(m));
    }
  }

  #removeMember(m: Member): void {
    this.members.delete(m.memberId);
    this.#metadataBytes -= protocolsBytes(m.protocols) + m.assignment.length;
    if (m.groupInstanceId !== null && this.staticMembers.get(m.groupInstanceId) === m.memberId) this.staticMembers.delete(m.groupInstanceId);
    if (this.leaderId === m.memberId) this.leaderId = null;
  }

  // ---------------------------------------------------------------------------------------------
  // SyncGroup, Heartbeat, LeaveGroup

  #validateMember(memberId: string, groupInstanceId: string | null, generationId: number): number {
    if (groupInstanceId !== null) {
      const mapped = this.staticMembers.get(groupInstanceId);
      if (mapped !== undefined && mapped !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    }
    if (!this.members.has(memberId)) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== this.generationId) return ErrorCode.ILLEGAL_GENERATION;
    return ErrorCode.NONE;
  }

  /**
   * SyncGroup. `assignments` (the leader's) may be views of the request frame: they are
   * checked against the metadata limits and copied only when the group takes them.
   */
  sync(
    memberId: string,
    groupInstanceId: string | null,
    generationId: number,
    protocolType: string | null,
    protocolName: string | null,
    assignments: { memberId: string; assignment: Buffer }[],
  ): Promise<SyncResult> {
    if (this.state === 'Dead' || this.state === 'Empty') return Promise.resolve(errorSync(ErrorCode.UNKNOWN_MEMBER_ID));
    const code = this.#validateMember(memberId, groupInstanceId, generationId);
    if (code !== ErrorCode.NONE) return Promise.resolve(errorSync(code));
    if ((protocolType !== null && protocolType !== this.protocolType) || (protocolName !== null && protocolName !== this.protocolName)) {
      return Promise.resolve(errorSync(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    const member = this.members.get(memberId)!;
    member.lastHeartbeatMs = this.#now();
    if (this.state === 'PreparingRebalance') return Promise.resolve(errorSync(ErrorCode.REBALANCE_IN_PROGRESS));
    if (this.state === 'Stable') return Promise.resolve(this.#syncResultFor(member));
    // CompletingRebalance: wait for the leader's assignment.
    const byMember = memberId === this.leaderId ? new Map(assignments.map((a) => [a.memberId, a.assignment])) : null;
    if (byMember !== null && !this.#assignmentsFit(byMember)) {
      // Only the leader is answered: the followers keep waiting in this generation, and the
      // leader's client rejoins (Kafka clients do on an unexpected SyncGroup error).
      return Promise.resolve(errorSync(ErrorCode.UNKNOWN_SERVER_ERROR));
    }
    const result = new Promise<SyncResult>((resolve) => {
      member.syncWaiter?.(errorSync(ErrorCode.REBALANCE_IN_PROGRESS));
      member.syncWaiter = resolve;
    });
    if (byMember !== null) {
      for (const m of this.members.values()) {
        const a = byMember.get(m.memberId);
        this.#setAssignment(m, a === undefined || a.length === 0 ? EMPTY : Buffer.from(a));
      }
      this.state = 'Stable';
      this.onTransition();
      const now = this.#now();
      for (const m of this.members.values()) {
        if (m.syncWaiter) {
          const w = m.syncWaiter;
          m.syncWaiter = null;
          m.lastHeartbeatMs = now;
          w(this.#syncResultFor(m));
        }
      }
    }
    return result;
  }

  /** Whether the leader's assignments (for members of the group; others are ignored) fit the limits. */
  #assignmentsFit(byMember: Map<string, Buffer>): boolean {
    let total = this.#metadataBytes;
    for (const m of this.members.values()) {
      const a = byMember.get(m.memberId);
      const bytes = a === undefined ? 0 : a.length;
      if (bytes > this.#maxMemberBytes) return false;
      total += bytes - m.assignment.length;
    }
    return total <= this.#maxTotalBytes;
  }

  #syncResultFor(m: Member): SyncResult {
    return { errorCode: ErrorCode.NONE, protocolType: this.protocolType, protocolName: this.protocolName, assignment: m.assignment };
  }

  heartbeat(memberId: string, groupInstanceId: string | null, generationId: number): number {
    if (this.state === 'Dead') return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (this.state === 'Empty') return ErrorCode.UNKNOWN_MEMBER_ID;
    if (groupInstanceId !== null) {
      const mapped = this.staticMembers.get(groupInstanceId);
      if (mapped !== undefined && mapped !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    }
    const member = this.members.get(memberId);
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
    member.lastHeartbeatMs = this.#now();
    if (this.state === 'PreparingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    if (generationId !== this.generationId) return ErrorCode.ILLEGAL_GENERATION;
    return ErrorCode.NONE;
  }

  /** Removes members; returns an error code per member (in input order). */
  leave(members: { memberId: string; groupInstanceId: string | null }[]): number[] {
    const pendingOnly: string[] = [];
    const codes = members.map(({ memberId, groupInstanceId }) => {
      let id = memberId;
      if (groupInstanceId !== null) {
        const mapped = this.staticMembers.get(groupInstanceId);
        if (mapped === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
        // An admin may remove a static member by instance id alone (KIP-345).
        if (memberId !== '' && mapped !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
        id = mapped;
      }
      if (this.pendingMembers.delete(id)) {
        // Only an id that never joined: nothing to rebalance, but a waiting join may now complete.
        pendingOnly.push(id);
        return ErrorCode.NONE;
      }
      const member = this.members.get(id);
      if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
      member.joinWaiter?.(errorJoin(ErrorCode.UNKNOWN_MEMBER_ID, id));
      member.syncWaiter?.(errorSync(ErrorCode.UNKNOWN_MEMBER_ID));
      this.#removeMember(member);
      return ErrorCode.NONE;
    });
    const removed = codes.filter((c) => c === ErrorCode.NONE).length - pendingOnly.length;
    if (removed > 0) this.#membershipChanged();
    else if (pendingOnly.length > 0) this.#tryCompleteJoin();
    return codes;
  }

  #membershipChanged(): void {
    if (this.state === 'Stable' || this.state === 'CompletingRebalance') {
      if (this.members.size === 0) {
        this.state = 'PreparingRebalance';
        this.#completeJoin();
      } else this.#prepareRebalance();
    } else if (this.state === 'PreparingRebalance') {
      if (this.members.size === 0) this.#completeJoin();
      else this.#tryCompleteJoin();
    }
    this.onTransition();
  }

  /**
   * Removes members whose session expired (no heartbeat within their session timeout) and
   * pending member ids nobody claimed. Members waiting in a join or sync are not expired: they
   * are answered when the generation completes.
   */
  expireMembers(): void {
    const now = this.#now();
    let changed = false;
    for (const [id, expiry] of this.pendingMembers) {
      // An unclaimed id was never a member: dropping it changes nothing for the others.
      if (now > expiry) this.pendingMembers.delete(id);
    }
    for (const m of [...this.members.values()]) {
      if (m.joinWaiter || m.syncWaiter) continue;
      if (now - m.lastHeartbeatMs > m.sessionTimeoutMs) {
        this.#removeMember(m);
        changed = true;
      }
    }
    if (changed) this.#membershipChanged();
    else if (this.state === 'PreparingRebalance') this.#tryCompleteJoin();
  }

  /** Answers every waiting request with `errorCode` and stops timers (ownership lost, shutdown). */
  unload(errorCode: number): void {
    if (this.#rebalanceTimer) clearTimeout(this.#rebalanceTimer);
    this.#rebalanceTimer = null;
    for (const m of this.members.values()) {
      m.joinWaiter?.(errorJoin(errorCode, m.memberId));
      m.syncWaiter?.(errorSync(errorCode));
      m.joinWaiter = null;
      m.syncWaiter = null;
    }
  }

  /** Marks the group deleted. */
  markDead(): void {
    this.unload(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    this.state = 'Dead';
  }

  /** True when the generation's members and assignments allow committing with `generationId`. */
  validateCommit(memberId: string, groupInstanceId: string | null, generationId: number): number {
    if (this.state === 'Dead') return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    // Kafka's order: a fenced static member first, then a commit from outside the group (an
    // admin reset or an assign()-based consumer; allowed only while the group has no
    // members), then membership and generation, and only then the rebalance state.
    if (groupInstanceId !== null) {
      const mapped = this.staticMembers.get(groupInstanceId);
      if (mapped !== undefined && mapped !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    }
    if (generationId < 0 && this.state === 'Empty') return ErrorCode.NONE;
    const code = this.#validateMember(memberId, groupInstanceId, generationId);
    if (code !== ErrorCode.NONE) return code;
    if (this.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    this.members.get(memberId)!.lastHeartbeatMs = this.#now();
    return ErrorCode.NONE;
  }

  // ---------------------------------------------------------------------------------------------
  // Persistence

  /** The persistent state, in member order (the group's own buffers, see {@link GroupSnapshot}). */
  snapshot(): GroupSnapshot {
    return {
      state: this.state,
      generationId: this.generationId,
      protocolType: this.protocolType,
      protocolName: this.protocolName,
      leaderId: this.leaderId,
      members: [...this.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocolType: m.protocolType,
        protocols: m.protocols,
        assignment: m.assignment,
      })),
    };
  }

  /**
   * Restores a group a previous owner persisted: same generation, members and assignments.
   * A rebalance that was in progress cannot resume (its waiting requests died with the old
   * owner), so it restarts: members learn it from their next heartbeat and rejoin. So does a
   * group with more members than group.max.size allows, as Kafka does with a group loaded over
   * capacity: members rejoin and the last ones are refused. The snapshot's protocol and
   * assignment objects become the members' own (not copied).
   */
  static restore(groupId: string, snap: GroupSnapshot, opts: GroupOptions): Group {
    const g = new Group(groupId, opts);
    const now = (opts.now ?? Date.now)();
    g.generationId = snap.generationId;
    g.protocolType = snap.protocolType;
    g.protocolName = snap.protocolName;
    g.leaderId = snap.leaderId;
    for (const s of snap.members) {
      g.#addMember({
        memberId: s.memberId,
        groupInstanceId: s.groupInstanceId,
        clientId: s.clientId,
        clientHost: s.clientHost,
        sessionTimeoutMs: s.sessionTimeoutMs,
        rebalanceTimeoutMs: s.rebalanceTimeoutMs,
        protocolType: s.protocolType,
        protocols: s.protocols,
        assignment: s.assignment,
        lastHeartbeatMs: now,
        joinWaiter: null,
        syncWaiter: null,
      });
      if (s.groupInstanceId !== null) g.staticMembers.set(s.groupInstanceId, s.memberId);
    }
    const overCapacity = g.members.size > g.#maxSize;
    if (snap.state === 'Empty' || (snap.state === 'Stable' && !overCapacity)) g.state = snap.state;
    else if (g.members.size === 0) g.state = 'Empty';
    else {
      g.state = 'Stable';
      g.#prepareRebalance();
    }
    return g;
  }
}
