/**
 * The group coordinator of one broker (ARCHITECTURE §10). A group is owned by the broker
 * holding its Redis lease; the owner keeps the membership state machine in memory and
 * persists what each transition changed (under the lease), so a new owner continues the same
 * generation. Committed offsets live only in Redis, written under the lease.
 *
 * Redis keys of group G (one hash tag, built by `groupKeys`): `{g:G}:lease`, `{g:G}:fence`,
 * `{g:G}:state` (the group record) and `{g:G}:members` (one field per member and per
 * assignment; see group-store.ts), `{g:G}:offsets` (hash `topic:partition` →
 * `offset|leaderEpoch|commitTimestamp|metadata`). `{strata}:groups` lists group ids.
 */
import type { Redis } from 'ioredis';
import { ErrorCode, Reader, WireError, decodeConsumerProtocolSubscription, type ConsumerProtocolSubscription } from '../../wire/index.js';
import type { BrokerInfo, BrokerRegistry } from '../cluster/broker-store.js';
import { rendezvousOrder } from '../cluster/routing.js';
import { GROUPS_SET, groupKeys } from '../coordination/keys.js';
import { LeaseClient } from '../coordination/lease.js';
import { ScriptRunner, redisCall } from '../coordination/redis.js';
import { LostLeaseError, toKafkaErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { Group, type GroupOptions, type GroupStateName } from './group.js';
import { groupWriteArgs, loadGroup, planGroupWrite, readGroupRecord, type StoredGroup } from './group-store.js';

// The transaction coordinator reaches group keys through this module.
export { GROUPS_SET, groupKeys };

/** A group this broker owns. */
interface Owned {
  group: Group;
  leaseValue: string;
  /** The chain of state writes, in transition order; awaited before answering clients. */
  saving: Promise<void>;
  saveError: unknown;
  /** A write is chained and has not started: later transitions ride on it. */
  writeQueued: boolean;
  /** What Redis holds for the group after the last successful write; null when unknown. */
  stored: StoredGroup | null;
}

/** One committed offset as stored. */
export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
}

export interface GroupCoordinatorOptions {
  initialRebalanceDelayMs: number;
  /** group.max.size (see {@link GroupOptions}). */
  maxSize: number;
  /** Largest protocol metadata or assignment of one member. */
  maxMemberMetadataBytes: number;
  /** Largest total of a group's member metadata and assignments. */
  maxMetadataBytes: number;
  leaseMs: number;
  /** How often members' sessions are checked. */
  expiryCheckMs?: number;
}

/** A group as ListGroups/DescribeGroups see it. */
export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupStateName;
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

export class GroupCoordinator {
  readonly #redis: Redis;
  readonly #registry: BrokerRegistry;
  readonly #log: Logger;
  readonly #opts: Required<GroupCoordinatorOptions>;
  readonly #scripts: ScriptRunner;
  #lease: LeaseClient | null = null;
  readonly #owned = new Map<string, Owned>();
  readonly #loading = new Map<string, Promise<Owned | number>>();
  #timers: NodeJS.Timeout[] = [];

  constructor(redis: Redis, registry: BrokerRegistry, opts: GroupCoordinatorOptions, log: Logger) {
    this.#redis = redis;
    this.#registry = registry;
    this.#opts = { expiryCheckMs: 250, ...opts };
    this.#scripts = new ScriptRunner(redis);
    this.#log = log;
  }

  /** Starts lease renewal and session expiry checks (after the broker has its node id). */
  start(): void {
    this.#lease = new LeaseClient(this.#redis, this.#registry.nodeId, this.#opts.leaseMs);
    const renew = setInterval(() => void this.#renewLeases(), Math.max(100, Math.floor(this.#opts.leaseMs / 3)));
    const expire = setInterval(() => {
      for (const o of this.#owned.values()) o.group.expireMembers();
    }, this.#opts.expiryCheckMs);
    renew.unref();
    expire.unref();
    this.#timers = [renew, expire];
  }

  /** Persists and releases every owned group (graceful shutdown: others take over at once). */
  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const [groupId, o] of [...this.#owned]) {
      o.group.unload(ErrorCode.NOT_COORDINATOR);
      this.#owned.delete(groupId);
      try {
        await o.saving;
        await this.#lease!.release(groupKeys(groupId).lease, o.leaseValue);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, groupId }, 'could not release a group lease; it expires by itself');
      }
    }
  }

  /** Group ids this broker owns now. */
  ownedGroups(): string[] {
    return [...this.#owned.keys()];
  }

  async #renewLeases(): Promise<void> {
    for (const [groupId, o] of [...this.#owned]) {
      try {
        if (!(await this.#lease!.renew(groupKeys(groupId).lease, o.leaseValue))) this.#lose(groupId, o, 'lease taken over');
      } catch (err) {
        // Redis unreachable: keep the group while the lease may still be valid; if it
        // expires meanwhile, the next write fails its fence check and the group is dropped.
        this.#log.warn({ err: (err as Error).message, groupId }, 'could not renew a group lease');
      }
    }
  }

  #lose(groupId: string, o: Owned, why: string): void {
    if (this.#owned.get(groupId) !== o) return;
    this.#log.warn({ groupId, why }, 'lost group ownership');
    this.#owned.delete(groupId);
    o.group.unload(ErrorCode.NOT_COORDINATOR);
  }

  /**
   * The broker a client should talk to about `key` (a group id, or with `prefix` 'x' a
   * transactional id): the current lease holder when it is alive, else the rendezvous choice.
   */
  async coordinatorFor(key: string, kind: 'g' | 'x'): Promise<BrokerInfo> {
    const live = this.#registry.live();
    const holder = await this.#redis.get(`{${kind}:${key}}:lease`);
    if (holder) {
      const nodeId = Number(holder.slice(0, holder.indexOf(':')));
      const b = live.find((x) => x.nodeId === nodeId);
      if (b) return b;
    }
    const order = rendezvousOrder(`${kind}:${key}`, 0, live.map((b) => b.nodeId));
    return live.find((b) => b.nodeId === order[0])!;
  }

  /**
   * The owned group, taking the lease and loading persisted state if needed. Returns a Kafka
   * error code when this broker cannot own it now: NOT_COORDINATOR when a live broker holds
   * the lease, COORDINATOR_LOAD_IN_PROGRESS while a dead owner's lease runs out. With
   * `create` false, a group with no persisted state answers GROUP_ID_NOT_FOUND.
   */
  async #own(groupId: string, create: boolean): Promise<Owned | number> {
    const have = this.#owned.get(groupId);
    if (have) return have;
    let loading = this.#loading.get(groupId);
    if (!loading) {
      loading = this.#load(groupId, create).finally(() => this.#loading.delete(groupId));
      this.#loading.set(groupId, loading);
    }
    const r = await loading;
    if (typeof r === 'number' && r === ErrorCode.GROUP_ID_NOT_FOUND && create) return this.#own(groupId, true);
    return r;
  }

  async #load(groupId: string, create: boolean): Promise<Owned | number> {
    const keys = groupKeys(groupId);
    try {
      if (!create && !(await this.#redis.exists(keys.state))) return ErrorCode.GROUP_ID_NOT_FOUND;
      const acquired = await this.#lease!.acquire(keys);
      if (!acquired.held) {
        const live = this.#registry.live().some((b) => b.nodeId === acquired.holder);
        return live ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
      }
      const [[recordErr, raw], [fieldsErr, fields]] = (await this.#redis.pipeline().get(keys.state).hgetallBuffer(keys.members).exec()) as [
        [Error | null, string | null],
        [Error | null, Record<string, Buffer>],
      ];
      if (recordErr ?? fieldsErr) throw recordErr ?? fieldsErr;
      const opts: GroupOptions = {
        initialRebalanceDelayMs: this.#opts.initialRebalanceDelayMs,
        maxSize: this.#opts.maxSize,
        maxMemberMetadataBytes: this.#opts.maxMemberMetadataBytes,
        maxMetadataBytes: this.#opts.maxMetadataBytes,
      };
      const loaded = raw ? loadGroup(raw, fields) : null;
      const group = loaded ? Group.restore(groupId, loaded.snapshot, opts) : new Group(groupId, opts);
      const owned: Owned = { group, leaseValue: acquired.value, saving: Promise.resolve(), saveError: null, writeQueued: false, stored: loaded?.stored ?? null };
      group.onTransition = () => this.#persist(groupId, owned);
      this.#owned.set(groupId, owned);
      if (!raw) {
        await this.#redis.sadd(GROUPS_SET, groupId);
        this.#persist(groupId, owned);
      } else if (group.state === 'PreparingRebalance') {
        this.#persist(groupId, owned);
      }
      if (raw) this.#log.info({ groupId, generation: group.generationId, state: group.state }, 'took over group');
      return owned;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, groupId }, 'could not load group');
      // Clients retry COORDINATOR_NOT_AVAILABLE after rediscovering the coordinator.
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }

  /**
   * Chains a write of the group's changes. The write is planned when it starts, from the
   * group as it is then, so transitions made while an earlier write is in flight share one
   * write; every answer still waits for a write that began after its transition.
   */
  #persist(groupId: string, o: Owned): void {
    if (o.writeQueued) return;
    o.writeQueued = true;
    o.saving = o.saving.then(() => this.#write(groupId, o));
  }

  async #write(groupId: string, o: Owned): Promise<void> {
    o.writeQueued = false;
    const plan = planGroupWrite(o.stored, o.group.snapshot());
    if (plan === null) return;
    const keys = groupKeys(groupId);
    try {
      const ok = await this.#scripts.run({ script: 'group-write', keys: [keys.lease, keys.state, keys.members], args: [o.leaseValue, ...groupWriteArgs(plan)] });
      if (ok !== 1) throw new LostLeaseError(`lease ${keys.lease} is no longer held by this broker`);
      o.stored = plan.stored;
    } catch (err) {
      // Whether Redis applied the write is unknown (a reply can be lost after the script
      // ran): the next write replaces the whole group instead of building on a guess.
      o.stored = null;
      o.saveError = err;
      if (err instanceof LostLeaseError) this.#lose(groupId, o, 'state write fenced');
      else this.#log.warn({ err: (err as Error).message, groupId }, 'could not persist group state');
    }
  }

  /** Waits for the state writes so far; an error code if one failed (the answer must say so). */
  async #settled(o: Owned): Promise<number> {
    await o.saving;
    if (o.saveError) {
      const code = o.saveError instanceof LostLeaseError ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_NOT_AVAILABLE;
      o.saveError = null;
      return code;
    }
    return ErrorCode.NONE;
  }

  /** Runs `fn` on the owned group; answers `fail(code)` when the group cannot be owned. */
  async withGroup<T>(groupId: string, create: boolean, fail: (code: number) => T, fn: (g: Group) => Promise<T> | T): Promise<T> {
    const o = await this.#own(groupId, create);
    if (typeof o === 'number') return fail(o);
    const result = await fn(o.group);
    const code = await this.#settled(o);
    return code === ErrorCode.NONE ? result : fail(code);
  }

  // ---------------------------------------------------------------------------------------------
  // Offsets

  /** Commits offsets under the group's lease; returns NONE or the error for every partition. */
  async commitOffsets(
    groupId: string,
    memberId: string,
    groupInstanceId: string | null,
    generationId: number,
    offsets: { topic: string; partition: number; offset: CommittedOffset }[],
    groupNotFoundCode: number = ErrorCode.ILLEGAL_GENERATION,
  ): Promise<number> {
    // Only a commit from outside any generation may create the group (Kafka's simple commit).
    const o = await this.#own(groupId, generationId < 0);
    if (o === ErrorCode.GROUP_ID_NOT_FOUND) return groupNotFoundCode;
    if (typeof o === 'number') return o;
    const code = o.group.validateCommit(memberId, groupInstanceId, generationId);
    if (code !== ErrorCode.NONE) return code;
    const now = Date.now();
    const fields: [string, string][] = offsets.map((x) => [`${x.topic}:${x.partition}`, encodeOffset(x.offset, now)]);
    try {
      for (let i = 0; i < fields.length; i += 1000) {
        await this.#lease!.fencedHashUpdate(groupKeys(groupId).lease, o.leaseValue, groupKeys(groupId).offsets, fields.slice(i, i + 1000));
      }
    } catch (err) {
      if (err instanceof LostLeaseError) {
        this.#lose(groupId, o, 'offset commit fenced');
        return ErrorCode.NOT_COORDINATOR;
      }
      return toKafkaErrorCode(err);
    }
    return ErrorCode.NONE;
  }

  /**
   * Stages offsets of a transaction (TxnOffsetCommit): they become committed when the
   * transaction commits and vanish when it aborts (txn-offsets-end.lua, run by the
   * transaction coordinator). Validated like a commit when a generation is given (KIP-447).
   */
  async stageTransactionalOffsets(
    groupId: string,
    producerId: number,
    producerEpoch: number,
    memberId: string,
    groupInstanceId: string | null,
    generationId: number,
    offsets: { topic: string; partition: number; offset: CommittedOffset }[],
  ): Promise<number> {
    const o = await this.#own(groupId, true);
    if (typeof o === 'number') return o;
    if (generationId >= 0 || memberId !== '') {
      const code = o.group.validateCommit(memberId, groupInstanceId, generationId);
      if (code !== ErrorCode.NONE) return code;
    }
    const keys = groupKeys(groupId);
    const now = Date.now();
    const staged: [string, string][] = offsets.map((x) => [`${x.topic}:${x.partition}`, encodeOffset(x.offset, now)]);
    try {
      await this.#lease!.fencedHashUpdate(keys.lease, o.leaseValue, keys.staged(producerId, producerEpoch), staged);
      await this.#lease!.fencedHashUpdate(keys.lease, o.leaseValue, keys.pending, staged.map(([f]) => [f, String(producerId)]));
    } catch (err) {
      if (err instanceof LostLeaseError) {
        this.#lose(groupId, o, 'staged offset commit fenced');
        return ErrorCode.NOT_COORDINATOR;
      }
      return toKafkaErrorCode(err);
    }
    return ErrorCode.NONE;
  }

  /** Partitions of `groupId` with offsets staged by an open transaction (for requireStable). */
  async pendingPartitions(groupId: string): Promise<Set<string>> {
    return new Set(await redisCall('read pending offsets', () => this.#redis.hkeys(groupKeys(groupId).pending)));
  }

  /** Committed offsets of `groupId` (all of them when `partitions` is null). Any broker may read. */
  async fetchOffsets(groupId: string, partitions: { topic: string; partition: number }[] | null): Promise<Map<string, CommittedOffset>> {
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

  /** Deletes committed offsets; refuses partitions of topics the group's members subscribe to. */
  async deleteOffsets(groupId: string, partitions: { topic: string; partition: number }[]): Promise<{ errorCode: number; perPartition: number[] }> {
    const o = await this.#own(groupId, false);
    if (typeof o === 'number') return { errorCode: o, perPartition: [] };
    const subscribed = subscribedTopics(o.group);
    const perPartition = partitions.map((p) => (subscribed === 'all' || subscribed.has(p.topic) ? ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC : ErrorCode.NONE));
    const del = partitions.filter((_, i) => perPartition[i] === ErrorCode.NONE).map((p) => `${p.topic}:${p.partition}`);
    try {
      if (del.length) await this.#lease!.fencedHashUpdate(groupKeys(groupId).lease, o.leaseValue, groupKeys(groupId).offsets, [], del);
    } catch (err) {
      return { errorCode: err instanceof LostLeaseError ? ErrorCode.NOT_COORDINATOR : toKafkaErrorCode(err), perPartition: [] };
    }
    return { errorCode: ErrorCode.NONE, perPartition };
  }

  // ---------------------------------------------------------------------------------------------
  // Admin

  /** The group as DescribeGroups shows it; `null` when it does not exist. */
  async describe(groupId: string): Promise<Group | number | null> {
    const o = await this.#own(groupId, false);
    if (o === ErrorCode.GROUP_ID_NOT_FOUND) return null;
    if (typeof o === 'number') return o;
    return o.group;
  }

  /**
   * Groups this broker coordinates (ListGroups is sent to every broker and the answers are
   * concatenated, so each group must be listed by exactly one): the ones it owns, and the
   * unowned ones whose rendezvous choice it is.
   */
  async list(): Promise<GroupListing[]> {
    const ids = await redisCall('list groups', () => this.#redis.smembers(GROUPS_SET));
    const out: GroupListing[] = [];
    const unowned = ids.filter((id) => !this.#owned.has(id));
    for (const [id, o] of this.#owned) out.push({ groupId: id, protocolType: o.group.protocolType ?? '', state: o.group.state });
    if (unowned.length === 0) return out;
    const pipeline = this.#redis.pipeline();
    for (const id of unowned) pipeline.get(groupKeys(id).lease).get(groupKeys(id).state);
    const replies = (await redisCall('list groups', () => pipeline.exec())) ?? [];
    unowned.forEach((id, i) => {
      const lease = replies[2 * i]?.[1] as string | null;
      const state = replies[2 * i + 1]?.[1] as string | null;
      if (!state) return;
      let mine: boolean;
      if (lease) mine = Number(lease.slice(0, lease.indexOf(':'))) === this.#registry.nodeId;
      else {
        const order = rendezvousOrder(`g:${id}`, 0, this.#registry.live().map((b) => b.nodeId));
        mine = order[0] === this.#registry.nodeId;
      }
      if (!mine) return;
      const record = readGroupRecord(state);
      out.push({ groupId: id, protocolType: record.protocolType ?? '', state: record.state });
    });
    return out;
  }

  /** Deletes an empty group: its state, members, offsets and lease. */
  async deleteGroup(groupId: string): Promise<number> {
    const o = await this.#own(groupId, false);
    if (typeof o === 'number') return o;
    if (o.group.state !== 'Empty' && o.group.state !== 'Dead') return ErrorCode.NON_EMPTY_GROUP;
    const keys = groupKeys(groupId);
    try {
      await o.saving;
      await this.#lease!.fencedSet(keys.lease, o.leaseValue, keys.state, undefined);
      await this.#lease!.fencedSet(keys.lease, o.leaseValue, keys.members, undefined);
      await this.#lease!.fencedSet(keys.lease, o.leaseValue, keys.offsets, undefined);
      await this.#redis.srem(GROUPS_SET, groupId);
      o.group.markDead();
      this.#owned.delete(groupId);
      await this.#lease!.release(keys.lease, o.leaseValue);
    } catch (err) {
      return err instanceof LostLeaseError ? ErrorCode.NOT_COORDINATOR : toKafkaErrorCode(err);
    }
    return ErrorCode.NONE;
  }
}

/**
 * Topics the members of a consumer group subscribe to (from their subscription metadata), or
 * 'all' when a member's metadata cannot be read — then no offset may be deleted.
 */
function subscribedTopics(group: Group): Set<string> | 'all' {
  const topics = new Set<string>();
  if (group.protocolType !== 'consumer' || group.state === 'Empty') return topics;
  for (const m of group.members.values()) {
    const proto = m.protocols.find((p) => p.name === group.protocolName) ?? m.protocols[0];
    if (!proto) continue;
    try {
      const r = new Reader(proto.metadata);
      const version = r.int16();
      const sub: ConsumerProtocolSubscription = decodeConsumerProtocolSubscription(r, Math.min(Math.max(version, 0), 3));
      for (const t of sub.topics) topics.add(t);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      return 'all';
    }
  }
  return topics;
}
