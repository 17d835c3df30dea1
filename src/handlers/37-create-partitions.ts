/**
 * CreatePartitions (key 37), versions 0–3.
 *
 * v1 changes only quota behaviour; v2 is flexible; v3 may answer quota errors (KIP-599:
 * Strata has no quotas).
 *
 * Raises a topic's partition count. New partitions start empty at offset 0, and every broker
 * serves them as soon as the topics-changed announcement refreshes its cache. As in Kafka, a
 * count equal to the current one or lower is INVALID_PARTITIONS with Kafka's messages, and a
 * topic named twice in one request is INVALID_REQUEST. A count over
 * `--max-partitions-per-topic` is INVALID_PARTITIONS, and an increase that would take the
 * cluster over `--max-partitions` is POLICY_VIOLATION (as CreateTopics; the cluster count is
 * checked and raised in the same Redis script as the topic's). `validateOnly` runs the same
 * checks and writes nothing.
 *
 * Replica assignments are accepted and only their number is checked (one per new partition,
 * else INVALID_REPLICA_ASSIGNMENT, as Kafka): placement is rendezvous hashing over live
 * brokers and durability is the object store's, so the broker ids are not used.
 */
import { ErrorCode, type CreatePartitionsResponseCreatePartitionsTopicResult } from '../../wire/index.js';
import { clusterLimitMessage, perTopicLimitMessage } from '../cluster/topic-store.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

/** Kafka's message when `requested` does not raise `current`, else null. */
function notAnIncrease(current: number, requested: number): string | null {
  if (requested < current) return `Topic currently has ${current} partitions, which is higher than the requested ${requested}.`;
  if (requested === current) return `Topic already has ${current} partition(s).`;
  return null;
}

export const createPartitionsHandler = defineHandler({
  apiKey: 37,
  versions: [0, 3],
  async handle(ctx, req) {
    const { services } = ctx;
    const { maxPartitionsPerTopic, maxPartitions } = services.config;
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const results: CreatePartitionsResponseCreatePartitionsTopicResult[] = [];
    const answered = new Set<string>();
    for (const t of req.topics) {
      if (answered.has(t.name)) continue;
      answered.add(t.name);
      const out: CreatePartitionsResponseCreatePartitionsTopicResult = { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
      results.push(out);
      const fail = (errorCode: number, errorMessage: string): void => {
        out.errorCode = errorCode;
        out.errorMessage = errorMessage;
      };
      if (counts.get(t.name)! > 1) {
        fail(ErrorCode.INVALID_REQUEST, 'Duplicate topic in request.');
        continue;
      }
      try {
        // Read Redis, not the cache: a count from a stale cache could lower the real one.
        const topic = await services.topics.readByName(t.name);
        if (!topic) {
          fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${t.name}" does not exist`);
          continue;
        }
        const notHigher = notAnIncrease(topic.partitions, t.count);
        if (notHigher !== null) {
          fail(ErrorCode.INVALID_PARTITIONS, notHigher);
          continue;
        }
        if (t.count > maxPartitionsPerTopic) {
          fail(ErrorCode.INVALID_PARTITIONS, perTopicLimitMessage(t.count, maxPartitionsPerTopic));
          continue;
        }
        const added = t.count - topic.partitions;
        if (t.assignments !== null && t.assignments.length !== added) {
          fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Increasing the number of partitions by ${added} but ${t.assignments.length} assignments provided.`);
          continue;
        }
        // Checked again in Redis: a concurrent increase or delete since the read above wins.
        const raised = await services.topics.raisePartitionCount(topic, t.count, maxPartitions, req.validateOnly);
        if (raised.outcome === 'gone') {
          fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${t.name}" does not exist`);
          continue;
        }
        if (raised.outcome === 'not-higher') {
          fail(ErrorCode.INVALID_PARTITIONS, notAnIncrease(raised.before, t.count)!);
          continue;
        }
        if (raised.outcome === 'over-cluster-limit') {
          fail(ErrorCode.POLICY_VIOLATION, clusterLimitMessage(`adding partitions to topic "${t.name}"`, t.count - raised.before, raised.clusterPartitions, maxPartitions));
          continue;
        }
        if (!req.validateOnly) ctx.log.info({ topic: t.name, from: raised.before, to: t.count }, 'partitions added');
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message, topic: t.name }, 'create partitions failed');
        fail(toKafkaErrorCode(err), (err as Error).message);
      }
    }
    return { throttleTimeMs: 0, results };
  },
});
