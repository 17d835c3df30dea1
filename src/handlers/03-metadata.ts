/**
 * Metadata (key 3), versions 0–12.
 *
 * v1 adds rack, controller id and internal flag, and a null topic list for "all topics";
 * v2 cluster id; v4 `allowAutoTopicCreation`; v5 offline replicas; v7 leader epoch (KIP-320);
 * v8 authorized operations (KIP-430; Strata has no ACLs, so it reports "not requested");
 * v9 flexible; v10 topic ids (KIP-516); v11 drops cluster authorized operations; v12 lookup
 * by topic id is allowed.
 *
 * Every live broker may be named leader: leadership is a routing hint (rendezvous hashing,
 * within the client's zone when it names one), and any broker serves any partition. Replicas
 * and ISR are the first min(replicationFactor, brokers) brokers of the rendezvous order.
 * `LEADER_NOT_AVAILABLE` is never answered for an existing topic.
 *
 * A topic name that breaks Kafka's rules (empty, over 249 characters, other characters than
 * `[a-zA-Z0-9._-]`, "." or "..") is answered INVALID_TOPIC_EXCEPTION, with or without
 * auto-creation, as Kafka does. Auto-creation respects the partition limits: a topic that
 * would take the cluster over `--max-partitions` is answered POLICY_VIOLATION (Metadata has
 * no error message; the broker logs why). A null name without a topic id in v10–v11 is
 * INVALID_REQUEST on that topic (Kafka refuses the whole request; the response name is
 * nullable only from v12, so there is no "unknown id" answer to give).
 *
 * With many partitions the all-topics answer is what costs: each partition's replica list is
 * a rendezvous ordering of the live brokers. Partition lists are therefore built once per
 * topic and set of brokers and shared by every response until either changes.
 */
import { ErrorCode, ZERO_UUID, type MetadataResponsePartition, type MetadataResponseTopic } from '../../wire/index.js';
import { topicNameProblem, type TopicInfo } from '../cluster/topic-store.js';
import type { Services } from './services.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler, type RequestContext } from './handler.js';

/** "Not requested" for authorized-operations fields (KIP-430). */
const OPERATIONS_NOT_REQUESTED = -2147483648;
/** The (empty) offline replicas of every partition, one list shared by all; never modified. */
const NO_OFFLINE_REPLICAS: number[] = [];

/**
 * Partition lists by topic, then by the node ids a client sees (e.g. "1,2,3"), shared by
 * every response that describes the topic to such a client. Keyed by the TopicInfo object:
 * the topic store builds new ones whenever it rereads topics (on every topic change, and at
 * least every two seconds), so an entry never outlives its topic's partition count, and a
 * deleted topic's entries go with its object. Responses only read these arrays.
 */
const partitionLists = new WeakMap<TopicInfo, Map<string, MetadataResponsePartition[]>>();

/** The partitions of `t` as a client seeing `nodeIds` (key `nodesKey`) is told them. */
function partitionsOf(services: Services, t: TopicInfo, nodeIds: readonly number[], nodesKey: string, zone: string | null): MetadataResponsePartition[] {
  let byNodes = partitionLists.get(t);
  const hit = byNodes?.get(nodesKey);
  if (hit !== undefined) return hit;
  const partitions: MetadataResponsePartition[] = new Array(t.partitions);
  // One broker: every partition has the same single replica, so one shared list serves all.
  const only = nodeIds.length === 1 ? [nodeIds[0]!] : null;
  for (let p = 0; p < t.partitions; p++) {
    const replicas = only ?? services.placement.replicasFor(t.topicId, p, t.replicationFactor, zone);
    partitions[p] = { errorCode: ErrorCode.NONE, partitionIndex: p, leaderId: replicas[0]!, leaderEpoch: 0, replicaNodes: replicas, isrNodes: replicas, offlineReplicas: NO_OFFLINE_REPLICAS };
  }
  if (byNodes === undefined) {
    byNodes = new Map();
    partitionLists.set(t, byNodes);
  }
  byNodes.set(nodesKey, partitions);
  return partitions;
}

/** At most one log line per this many ms about refused auto-creations (clients retry in a loop). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
let lastRefusalLoggedAt = 0;

function logRefusedCreation(ctx: RequestContext, name: string, errorCode: number, message: string | null): void {
  const now = Date.now();
  if (now - lastRefusalLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
  lastRefusalLoggedAt = now;
  ctx.log.warn({ topic: name, errorCode, reason: message, clientId: ctx.header.clientId }, 'auto-creation of a topic refused (later refusals within 10 s are not logged)');
}

export const metadataHandler = defineHandler({
  apiKey: 3,
  versions: [0, 12],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const zone = ctx.connection.zone;
    const brokers = services.placement.brokersFor(zone);
    const nodeIds = brokers.map((b) => b.nodeId);
    const nodesKey = nodeIds.join(',');
    const topics: MetadataResponseTopic[] = [];

    const describe = (t: TopicInfo): MetadataResponseTopic => ({
      errorCode: ErrorCode.NONE,
      name: t.name,
      topicId: t.topicId,
      isInternal: false,
      partitions: partitionsOf(services, t, nodeIds, nodesKey, zone),
      topicAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    });
    const failed = (errorCode: number, name: string | null, topicId = ZERO_UUID): MetadataResponseTopic => ({
      errorCode,
      name,
      topicId,
      isInternal: false,
      partitions: [],
      topicAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    });

    // v0 has no way to say "all topics" but an empty list; v1+ uses null for it.
    const all = req.topics === null || (v === 0 && req.topics.length === 0);
    if (all) {
      for (const t of await services.topics.all()) topics.push(describe(t));
    } else {
      const autoCreate = services.config.autoCreateTopics && (v < 4 || req.allowAutoTopicCreation);
      for (const wanted of req.topics!) {
        // A topic id is looked up in v10 and v11 too (Kafka refuses it there); an answer
        // without a topic can leave the name out only from v12 on.
        const noName = v >= 12 ? null : '';
        if (wanted.topicId !== ZERO_UUID && (wanted.name === null || wanted.name === '')) {
          let t: TopicInfo | null;
          try {
            t = await services.topics.byId(wanted.topicId);
          } catch (err) {
            topics.push(failed(toKafkaErrorCode(err), noName, wanted.topicId));
            continue;
          }
          topics.push(t ? describe(t) : failed(ErrorCode.UNKNOWN_TOPIC_ID, noName, wanted.topicId));
          continue;
        }
        if (wanted.name === null) {
          // Neither a name nor an id.
          topics.push(v >= 12 ? failed(ErrorCode.UNKNOWN_TOPIC_ID, null) : failed(ErrorCode.INVALID_REQUEST, ''));
          continue;
        }
        // Checked before any lookup: no such topic can exist, and a miss would reread Redis.
        if (topicNameProblem(wanted.name) !== null) {
          topics.push(failed(ErrorCode.INVALID_TOPIC_EXCEPTION, wanted.name));
          continue;
        }
        try {
          let t = await services.topics.byName(wanted.name);
          if (!t && autoCreate) {
            const limits = { perTopic: services.config.maxPartitionsPerTopic, cluster: services.config.maxPartitions };
            const created = await services.topics.create(wanted.name, services.config.numPartitions, services.config.defaultReplicationFactor, {}, limits);
            if (created.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) t = await services.topics.byName(wanted.name);
            else if (created.errorCode !== ErrorCode.NONE) {
              logRefusedCreation(ctx, wanted.name, created.errorCode, created.errorMessage);
              topics.push(failed(created.errorCode, wanted.name));
              continue;
            } else t = created.topic;
          }
          topics.push(t ? describe(t) : failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, wanted.name));
        } catch (err) {
          topics.push(failed(toKafkaErrorCode(err), wanted.name));
        }
      }
    }
    return {
      throttleTimeMs: 0,
      brokers: brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
      clusterId: services.config.clusterId,
      controllerId: services.placement.controllerId(zone),
      topics,
      clusterAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    };
  },
});
