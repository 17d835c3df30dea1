/**
 * The group coordinator of one broker (docs/architecture.md §6). A group is owned by the
 * broker holding its Redis lease (coordination/lease-owner.ts); the owner keeps the membership
 * state machine (group.ts) in memory and persists what each transition changed, under the
 * lease, so a new owner continues the same generation. Committed offsets live only in Redis,
 * written under the lease. Every Redis access goes through the groups store (group-store.ts).
 */
import { ErrorCode, Reader, WireError, decodeConsumerProtocolSubscription, type ConsumerProtocolSubscription } from '../../wire/index.js';
import type { BrokerRegistry } from '../cluster/broker-store.js';
import { rendezvousOrder } from '../cluster/routing.js';
import { groupKeys } from '../coordination/keys.js';
import type { LeaseClient } from '../coordination/lease.js';
import { LeaseOwner, type Loaded } from '../coordination/lease-owner.js';
import { LostLeaseError, toKafkaErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { Group, type GroupOptions, type GroupStateName } from './group.js';
import { planGroupWrite, readGroupRecord, type CommittedOffset, type GroupStore, type PartitionOffset, type StoredGroup } from './group-store.js';

export type { CommittedOffset } from './group-store.js';

/** A group this broker owns. */
interface Owned {
  group: Group;
  readonly leaseValue: string;
  /** The chain of state writes, in transition order; awaited before answering clients. */
  saving: Promise<void>;
  saveError: unknown;
  /** A write is chained and has not started: later transitions ride on it. */
  writeQueued: boolean;
  /** What Redis holds for the group after the last successful write; null when unknown. */
  stored: StoredGroup | null;
}

export interface GroupCoordinatorOptions {
  initialRebalanceDelayMs: number;
  /** group.max.size (see {@link GroupOptions}). */
  maxSize: number;
  /** Largest protocol metadata or assignment of one member. */
  maxMemberMetadataBytes: number;
  /** Largest total of a group's member metadata and assignments. */
  maxMetadataBytes: number;
  /** How often members' sessions are checked. */
  expiryCheckMs?: number;
}

/** A group as ListGroups/DescribeGroups see it. */
export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupStateName;
}

export class GroupCoordinator {
  readonly #store: GroupStore;
  readonly #registry: BrokerRegistry;
  readonly #log: Logger;
  readonly #opts: Required<GroupCoordinatorOptions>;
  readonly #owner: LeaseOwner<Owned>;
  #timers: NodeJS.Timeout[] = [];

  constructor(store: GroupStore, leases: LeaseClient, registry: BrokerRegistry, opts: GroupCoordinatorOptions, log: Logger) {
    this.#store = store;
    this.#registry = registry;
    this.#opts = { expiryCheckMs: 250, ...opts };
    this.#log = log;
    this.#owner = new LeaseOwner<Owned>({
      leases,
      noun: 'group',
      idField: 'groupId',
      keys: groupKeys,
      isLive: (nodeId) => registry.live().some((b) => b.nodeId === nodeId),
      load: (groupId, leaseValue) => this.#load(groupId, leaseValue),
      onLost: (_, o) => o.group.unload(ErrorCode.NOT_COORDINATOR),
      onStop: async (_, o) => {
        o.group.unload(ErrorCode.NOT_COORDINATOR);
        await o.saving;
      },
      logger: log,
    });
  }

  /** Starts lease renewal and session expiry checks (after the broker has its node id). */
  start(): void {
    this.#owner.start(this.#registry.nodeId);
    const expire = setInterval(() => {
      for (const [, o] of this.#owner.entries()) o.group.expireMembers();
    }, this.#opts.expiryCheckMs);
    expire.unref();
    this.#timers = [expire];
  }

  /** Persists and releases every owned group (graceful shutdown: others take over at once). */
  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.#owner.stop();
  }

  /** Group ids this broker owns now. */
  ownedGroups(): string[] {
    return this.#owner.ids();
  }

  /**
   * The owned group, taking the lease and loading persisted state if needed; otherwise a
   * Kafka error code (see {@link LeaseOwner.own}). With `create` false, a group with no
   * persisted state answers GROUP_ID_NOT_FOUND.
   */
  async #own(groupId: string, create: boolean): Promise<Owned | number> {
    const check = create ? undefined : async () => ((await this.#store.exists(groupId)) ? ErrorCode.NONE : ErrorCode.GROUP_ID_NOT_FOUND);
    const r = await this.#owner.own(groupId, check);
    // A caller that may create the group shared the load of one that may not.
    if (typeof r === 'number' && r === ErrorCode.GROUP_ID_NOT_FOUND && create) return this.#own(groupId, true);
    return r;
  }

  async #load(groupId: string, leaseValue: string): Promise<Loaded<Owned>> {
    const loaded = await this.#store.read(groupId);
    const opts: GroupOptions = {
      initialRebalanceDelayMs: this.#opts.initialRebalanceDelayMs,
      maxSize: this.#opts.maxSize,
      maxMemberMetadataBytes: this.#opts.maxMemberMetadataBytes,
      maxMetadataBytes: this.#opts.maxMetadataBytes,
    };
    const group = loaded ? Group.restore(groupId, loaded.snapshot, opts) : new Group(groupId, opts);
    const owned: Owned = { group, leaseValue, saving: Promise.resolve(), saveError: null, writeQueued: false, stored: loaded?.stored ?? null };
    group.onTransition = () => this.#persist(groupId, owned);
    const afterOwned = async (): Promise<void> => {
      if (!loaded) {
        await this.#store.register(groupId);
        this.#persist(groupId, owned);
        return;
      }
      // A group saved mid-rebalance restarts it: the waiting requests died with the old owner.
      if (group.state === 'PreparingRebalance') this.#persist(groupId, owned);
      this.#log.info({ groupId, generation: group.generationId, state: group.state }, 'took over group');
    };
    return { entry: owned, afterOwned };
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
    try {
      await this.#store.write(groupId, o.leaseValue, plan);
      o.stored = plan.stored;
    } catch (err) {
      // Whether Redis applied the write is unknown (a reply can be lost after the script
      // ran): the next write replaces the whole group instead of building on a guess.
      o.stored = null;
      o.saveError = err;
      if (err instanceof LostLeaseError) this.#owner.lose(groupId, o, 'state write fenced');
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
    offsets: PartitionOffset[],
    groupNotFoundCode: number = ErrorCode.ILLEGAL_GENERATION,
  ): Promise<number> {
    // Only a commit from outside any generation may create the group (Kafka's simple commit).
    const o = await this.#own(groupId, generationId < 0);
    if (o === ErrorCode.GROUP_ID_NOT_FOUND) return groupNotFoundCode;
    if (typeof o === 'number') return o;
    const code = o.group.validateCommit(memberId, groupInstanceId, generationId);
    if (code !== ErrorCode.NONE) return code;
    try {
      await this.#store.commitOffsets(groupId, o.leaseValue, offsets, Date.now());
    } catch (err) {
      if (err instanceof LostLeaseError) {
        this.#owner.lose(groupId, o, 'offset commit fenced');
        return ErrorCode.NOT_COORDINATOR;
      }
      return toKafkaErrorCode(err);
    }
    return ErrorCode.NONE;
  }

  /**
   * Stages offsets of a transaction (TxnOffsetCommit): they become committed when the
   * transaction commits and vanish when it aborts ({@link endTransactionalOffsets}, called by
   * the transaction coordinator). Validated like a commit when a generation is given (KIP-447).
   */
  async stageTransactionalOffsets(
    groupId: string,
    producerId: number,
    producerEpoch: number,
    memberId: string,
    groupInstanceId: string | null,
    generationId: number,
    offsets: PartitionOffset[],
  ): Promise<number> {
    const o = await this.#own(groupId, true);
    if (typeof o === 'number') return o;
    if (generationId >= 0 || memberId !== '') {
      const code = o.group.validateCommit(memberId, groupInstanceId, generationId);
      if (code !== ErrorCode.NONE) return code;
    }
    try {
      await this.#store.stageOffsets(groupId, o.leaseValue, producerId, producerEpoch, offsets, Date.now());
    } catch (err) {
      if (err instanceof LostLeaseError) {
        this.#owner.lose(groupId, o, 'staged offset commit fenced');
        return ErrorCode.NOT_COORDINATOR;
      }
      return toKafkaErrorCode(err);
    }
    return ErrorCode.NONE;
  }

  /**
   * Settles the offsets a transaction staged in `groupId`: materialised on commit, dropped on
   * abort. The transaction coordinator calls this while it holds the transaction's lease,
   * not the group's (docs/architecture.md §7, departure): the move is atomic on the group's
   * hash tag and only touches what `producerId` staged at `producerEpoch`.
   */
  endTransactionalOffsets(groupId: string, producerId: number, producerEpoch: number, commit: boolean): Promise<void> {
    return this.#store.endTransactionalOffsets(groupId, producerId, producerEpoch, commit);
  }

  /** Partitions of `groupId` with offsets staged by an open transaction (for requireStable). */
  pendingPartitions(groupId: string): Promise<Set<string>> {
    return this.#store.pendingPartitions(groupId);
  }

  /** Committed offsets of `groupId` (all of them when `partitions` is null). Any broker may read. */
  fetchOffsets(groupId: string, partitions: { topic: string; partition: number }[] | null): Promise<Map<string, CommittedOffset>> {
    return this.#store.fetchOffsets(groupId, partitions);
  }

  /** Deletes committed offsets; refuses partitions of topics the group's members subscribe to. */
  async deleteOffsets(groupId: string, partitions: { topic: string; partition: number }[]): Promise<{ errorCode: number; perPartition: number[] }> {
    const o = await this.#own(groupId, false);
    if (typeof o === 'number') return { errorCode: o, perPartition: [] };
    const subscribed = subscribedTopics(o.group);
    const perPartition = partitions.map((p) => (subscribed === 'all' || subscribed.has(p.topic) ? ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC : ErrorCode.NONE));
    const del = partitions.filter((_, i) => perPartition[i] === ErrorCode.NONE).map((p) => `${p.topic}:${p.partition}`);
    try {
      if (del.length) await this.#store.deleteOffsets(groupId, o.leaseValue, del);
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
    const ids = await this.#store.listIds();
    const out: GroupListing[] = [];
    const unowned = ids.filter((id) => this.#owner.get(id) === undefined);
    for (const [id, o] of this.#owner.entries()) out.push({ groupId: id, protocolType: o.group.protocolType ?? '', state: o.group.state });
    if (unowned.length === 0) return out;
    const listings = await this.#store.readListings(unowned);
    unowned.forEach((id, i) => {
      const { holder, record } = listings[i]!;
      if (!record) return;
      let mine: boolean;
      if (holder !== null) mine = holder === this.#registry.nodeId;
      else {
        const order = rendezvousOrder(`g:${id}`, 0, this.#registry.live().map((b) => b.nodeId));
        mine = order[0] === this.#registry.nodeId;
      }
      if (!mine) return;
      const r = readGroupRecord(record);
      out.push({ groupId: id, protocolType: r.protocolType ?? '', state: r.state });
    });
    return out;
  }

  /** Deletes an empty group: its state, members, offsets and lease. */
  async deleteGroup(groupId: string): Promise<number> {
    const o = await this.#own(groupId, false);
    if (typeof o === 'number') return o;
    if (o.group.state !== 'Empty' && o.group.state !== 'Dead') return ErrorCode.NON_EMPTY_GROUP;
    try {
      await o.saving;
      await this.#store.delete(groupId, o.leaseValue);
      o.group.markDead();
      await this.#owner.release(groupId, o);
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
