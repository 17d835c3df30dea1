/**
 * CreateTopics (key 19), versions 0–7.
 *
 * v1 `validateOnly` and error messages; v2 throttle time; v4 default partitions and
 * replication factor (-1, KIP-464); v5 flexible, and the created topic's partition count,
 * replication factor and configs in the response (KIP-525); v6 quota errors (KIP-599: none
 * here); v7 topic ids (KIP-516).
 *
 * Replica assignments are accepted and only their partition count is used: placement is
 * rendezvous hashing over live brokers, and durability is the object store's. Unknown or
 * invalid configs are refused with INVALID_CONFIG, a name twice in one request with
 * INVALID_REQUEST.
 *
 * Partition limits: a topic over `--max-partitions-per-topic` is INVALID_PARTITIONS, one that
 * would take the cluster over `--max-partitions` is POLICY_VIOLATION (what Kafka answers for
 * its own partition limits; KIP-578 proposed these two limits with a new error code, which
 * Kafka never shipped). Each topic of a request is checked against the count left by the
 * topics before it, so a request may create some of its topics and refuse the rest;
 * `validateOnly` checks each topic against the cluster as it is.
 */
import { ErrorCode, type CreateTopicsResponseCreatableTopicConfigs, type CreateTopicsResponseCreatableTopicResult } from '../../wire/index.js';
import { ConfigSource, TOPIC_CONFIGS, effectiveTopicConfig, topicConfigDefaults } from '../cluster/topic-configs.js';
import { toKafkaErrorCode } from '../errors.js';
import type { Services } from './services.js';
import type { TopicInfo } from '../cluster/topic-store.js';
import { defineHandler } from './handler.js';

/** The configs KIP-525 returns for a created topic: every known config, effective value. */
function describeConfigs(services: Services, topic: TopicInfo): CreateTopicsResponseCreatableTopicConfigs[] {
  return [...TOPIC_CONFIGS.values()].map((def) => ({
    name: def.name,
    value: effectiveTopicConfig(def.name, topic.configs, services.config),
    readOnly: false,
    configSource: def.name in topic.configs ? ConfigSource.TOPIC_CONFIG : topicConfigDefaults(def, services.config)[0]!.source,
    isSensitive: false,
  }));
}

export const createTopicsHandler = defineHandler({
  apiKey: 19,
  versions: [0, 7],
  async handle(ctx, req) {
    const { services } = ctx;
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const topics: CreateTopicsResponseCreatableTopicResult[] = [];
    for (const t of req.topics) {
      const out: CreateTopicsResponseCreatableTopicResult = {
        name: t.name,
        topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        topicConfigErrorCode: ErrorCode.NONE,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      };
      topics.push(out);
      if (counts.get(t.name)! > 1) {
        out.errorCode = ErrorCode.INVALID_REQUEST;
        out.errorMessage = `topic "${t.name}" appears more than once in the request`;
        continue;
      }
      let partitions = t.numPartitions;
      let replicationFactor = t.replicationFactor;
      if (t.assignments.length > 0) {
        if (partitions !== -1 || replicationFactor !== -1) {
          out.errorCode = ErrorCode.INVALID_REQUEST;
          out.errorMessage = 'give either replica assignments or numPartitions/replicationFactor, not both';
          continue;
        }
        partitions = t.assignments.length;
        replicationFactor = t.assignments[0]!.brokerIds.length;
      }
      if (partitions === -1) partitions = services.config.numPartitions;
      if (replicationFactor === -1) replicationFactor = services.config.defaultReplicationFactor;
      const configs: Record<string, string> = {};
      for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
      try {
        const limits = { perTopic: services.config.maxPartitionsPerTopic, cluster: services.config.maxPartitions };
        const result = await services.topics.create(t.name, partitions, replicationFactor, configs, limits, req.validateOnly);
        out.errorCode = result.errorCode;
        out.errorMessage = result.errorMessage;
        if (result.topic) {
          out.topicId = req.validateOnly ? out.topicId : result.topic.topicId;
          out.numPartitions = result.topic.partitions;
          out.replicationFactor = result.topic.replicationFactor;
          out.configs = describeConfigs(services, result.topic);
        }
      } catch (err) {
        out.errorCode = toKafkaErrorCode(err);
        out.errorMessage = (err as Error).message;
      }
    }
    return { throttleTimeMs: 0, topics };
  },
});
