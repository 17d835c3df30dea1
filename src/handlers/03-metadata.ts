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
 */
import { ErrorCode, ZERO_UUID, type MetadataResponseTopic } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';
import type { TopicInfo } from '../cluster/topics.js';

/** "Not requested" for authorized-operations fields (KIP-430). */
const OPERATIONS_NOT_REQUESTED = -2147483648;

export const metadataHandler = defineHandler({
  apiKey: 3,
  versions: [0, 12],
  async handle(ctx, req) {
    const { broker, header } = ctx;
    const v = header.apiVersion;
    const zone = ctx.connection.zone;
    const brokers = broker.brokersFor(zone);
    const topics: MetadataResponseTopic[] = [];

    const describe = (t: TopicInfo): MetadataResponseTopic => ({
      errorCode: ErrorCode.NONE,
      name: t.name,
      topicId: t.topicId,
      isInternal: false,
      partitions: Array.from({ length: t.partitions }, (_, p) => {
        const replicas = broker.replicasFor(t.topicId, p, t.replicationFactor, zone);
        return {
          errorCode: ErrorCode.NONE,
          partitionIndex: p,
          leaderId: replicas[0]!,
          leaderEpoch: 0,
          replicaNodes: replicas,
          isrNodes: replicas,
          offlineReplicas: [],
        };
      }),
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
      for (const t of await broker.topics.all()) topics.push(describe(t));
    } else {
      const autoCreate = broker.config.autoCreateTopics && (v < 4 || req.allowAutoTopicCreation);
      for (const wanted of req.topics!) {
        if (wanted.name === null || wanted.name === '') {
          const t = wanted.topicId !== ZERO_UUID ? await broker.topics.byId(wanted.topicId) : null;
          topics.push(t ? describe(t) : failed(ErrorCode.UNKNOWN_TOPIC_ID, null, wanted.topicId));
          continue;
        }
        let t;
        try {
          t = await broker.topics.byName(wanted.name);
        } catch (err) {
          topics.push(failed(toKafkaErrorCode(err), wanted.name));
          continue;
        }
        if (!t && autoCreate) {
          const created = await broker.topics.create(wanted.name, broker.config.numPartitions, broker.config.defaultReplicationFactor, {});
          if (created.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) t = await broker.topics.byName(wanted.name);
          else if (created.errorCode !== ErrorCode.NONE) {
            topics.push(failed(created.errorCode, wanted.name));
            continue;
          } else t = created.topic;
        }
        topics.push(t ? describe(t) : failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, wanted.name));
      }
    }
    return {
      throttleTimeMs: 0,
      brokers: brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
      clusterId: broker.config.clusterId,
      controllerId: broker.controllerId(zone),
      topics,
      clusterAuthorizedOperations: OPERATIONS_NOT_REQUESTED,
    };
  },
});
