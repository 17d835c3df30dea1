/**
 * What handlers may use: the one door from `handlers/` inward (docs/architecture.md §3). Each
 * service is narrowed to the members handlers call, so this file lists exactly what the
 * protocol layer depends on; lint keeps handlers from importing Redis, the object store,
 * `coordination/` or the broker itself.
 */
import type { Placement } from '../cluster/routing.js';
import type { TopicStore } from '../cluster/topic-store.js';
import type { BrokerConfig } from '../config.js';
import type { GroupCoordinator } from '../groups/coordinator.js';
import type { PartitionLog } from '../log/partition-log.js';
import type { TransactionCoordinator } from '../txn/coordinator.js';
import type { ProducerIdAllocator } from '../txn/producer-ids.js';
import type { Handler } from './handler.js';

/** Topic metadata and its changes. */
export type TopicService = Pick<
  TopicStore,
  'all' | 'byId' | 'byName' | 'create' | 'delete' | 'raisePartitionCount' | 'readById' | 'readByName' | 'setConfigs'
>;

/** Consumer groups and their committed offsets. */
export type GroupService = Pick<
  GroupCoordinator,
  | 'commitOffsets'
  | 'coordinatorFor'
  | 'deleteGroup'
  | 'deleteOffsets'
  | 'describe'
  | 'fetchOffsets'
  | 'list'
  | 'pendingPartitions'
  | 'stageTransactionalOffsets'
  | 'withGroup'
>;

/** Transactions, by transactional id. */
export type TransactionService = Pick<TransactionCoordinator, 'addOffsets' | 'addPartitions' | 'describe' | 'endTxn' | 'initProducerId' | 'listIds'>;

/** Producer ids for idempotent producers without a transactional id. */
export type ProducerIdService = Pick<ProducerIdAllocator, 'allocate' | 'isAllocated'>;

/** The partition log: appends, reads, offsets, producers and transactions per partition. */
export type LogService = Pick<
  PartitionLog,
  | 'abortedTransactions'
  | 'append'
  | 'appendTurn'
  | 'deletePartition'
  | 'deleteRecords'
  | 'maxTimestampOffset'
  | 'offsetForTimestamp'
  | 'offsets'
  | 'openTransactions'
  | 'plan'
  | 'producers'
  | 'readPlanned'
  | 'waitForCommit'
>;

/** Which brokers clients see and where partitions lead. */
export type PlacementService = Pick<Placement, 'brokersFor' | 'controllerId' | 'replicasFor'>;

export interface Services {
  readonly config: BrokerConfig;
  /** This broker's node id (known once it has registered). */
  readonly nodeId: number;
  /** True once shutdown began: long-polls return at once. */
  readonly draining: boolean;
  /** Every API this broker serves, by key (ApiVersions advertises them). */
  readonly apis: ReadonlyMap<number, Handler>;
  readonly placement: PlacementService;
  readonly topics: TopicService;
  readonly log: LogService;
  readonly groups: GroupService;
  readonly txns: TransactionService;
  readonly producerIds: ProducerIdService;
}
