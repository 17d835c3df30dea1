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
import type { ProducerIdAllocator } from '../txn/producer-id-store.js';

/**
 * One API as ApiVersions advertises it. Every `Handler` is one; it is declared here, not in
 * handler.ts, because handler.ts needs `Services` and a type-only cycle still ties the two
 * files together.
 */
export interface ServedApi {
  readonly apiKey: number;
  /** Versions implemented completely: every field of these versions is honoured. */
  readonly versions: readonly [min: number, max: number];
  /**
   * Versions advertised in ApiVersions, when wider than `versions`. Only Produce uses it:
   * librdkafka decides whether a broker supports gzip, snappy and lz4 by checking that the
   * advertised Produce range includes v0 (librdkafka #4956; Kafka 4.0 does the same, KAFKA-18659),
   * so Strata advertises v0 and answers v0–v2 with UNSUPPORTED_VERSION per partition.
   */
  readonly advertised?: readonly [min: number, max: number];
}

/** Topic metadata and its changes. */
export type TopicService = Pick<
  TopicStore,
  'all' | 'byId' | 'byName' | 'create' | 'delete' | 'raisePartitionCount' | 'readById' | 'readByName' | 'setConfigs'
>;

/** Consumer groups and their committed offsets. */
export type GroupService = Pick<
  GroupCoordinator,
  | 'commitOffsets'
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
  | 'usage'
  | 'waitForCommit'
>;

/** Which brokers clients see and where partitions lead. */
export type PlacementService = Pick<Placement, 'brokersFor' | 'controllerId' | 'coordinatorFor' | 'replicasFor'>;

export interface Services {
  readonly config: BrokerConfig;
  /** This broker's node id (known once it has registered). */
  readonly nodeId: number;
  /** True once shutdown began: long-polls return at once. */
  readonly draining: boolean;
  /** Every API this broker serves, by key (ApiVersions advertises them). */
  readonly apis: ReadonlyMap<number, ServedApi>;
  readonly placement: PlacementService;
  readonly topics: TopicService;
  readonly log: LogService;
  readonly groups: GroupService;
  readonly txns: TransactionService;
  readonly producerIds: ProducerIdService;
}
