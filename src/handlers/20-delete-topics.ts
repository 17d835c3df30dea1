/**
 * DeleteTopics (key 20), versions 0–6.
 *
 * v1 adds throttle time; v2 and v3 change only quota behaviour and allow
 * TOPIC_DELETION_DISABLED (never answered: deletion is always enabled); v4 is flexible; v5
 * adds error messages (and quota errors, KIP-599: Strata has no quotas); v6 names topics by
 * name or by topic id (KIP-516).
 *
 * Deletion removes the topic's metadata first (name → id and the topic's hash, and its
 * partitions from the cluster's count that `--max-partitions` is checked against, in one
 * script), so no broker resolves the topic any more, then every partition's Redis state
 * (offsets, run index, producer state). The segment objects are left in place, since they
 * may hold other partitions' bytes too; object GC deletes each once no partition references
 * it, a grace period later (docs/architecture.md §4.4). A topic created again under the same
 * name gets a new topic id and starts empty.
 *
 * v6 entries follow Kafka's rules (ControllerApis.deleteTopics): an entry with neither name
 * nor id, or with both, is INVALID_REQUEST; a name or id given twice is answered once with
 * INVALID_REQUEST and not deleted; an unknown id is UNKNOWN_TOPIC_ID. An unknown name is
 * UNKNOWN_TOPIC_OR_PARTITION. `timeoutMs` is not needed: deletion is complete when answered.
 *
 * Not implemented: consumer-group offsets of the deleted topic are kept (groups land later).
 */
import { ErrorCode, ZERO_UUID, type DeleteTopicsResponseDeletableTopicResult } from '../../wire/index.js';
import type { TopicInfo } from '../cluster/topic-store.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler, type RequestContext } from './handler.js';

interface Wanted {
  name: string | null;
  topicId: string;
}

/** Removes the topic's metadata, then its partitions' Redis state (pipelined by ioredis). */
async function deleteTopic(ctx: RequestContext, topic: TopicInfo): Promise<void> {
  const { services } = ctx;
  await services.topics.delete(topic);
  await Promise.all(Array.from({ length: topic.partitions }, (_, p) => services.log.deletePartition({ topicId: topic.topicId, partition: p })));
  ctx.log.info({ topic: topic.name, topicId: topic.topicId, partitions: topic.partitions }, 'topic deleted');
}

export const deleteTopicsHandler = defineHandler({
  apiKey: 20,
  versions: [0, 6],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const wanted: Wanted[] = v >= 6 ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId })) : req.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
    const responses: DeleteTopicsResponseDeletableTopicResult[] = [];
    const answer = (name: string | null, topicId: string, errorCode: number, errorMessage: string | null = null): void => {
      // Before v6 the name is not nullable and there is no topic id; the encoder refuses both.
      responses.push({ name: v >= 6 ? name : (name ?? ''), topicId: v >= 6 ? topicId : ZERO_UUID, errorCode, errorMessage });
    };

    const nameCount = new Map<string, number>();
    const idCount = new Map<string, number>();
    for (const w of wanted) {
      if (w.name !== null && w.topicId === ZERO_UUID) nameCount.set(w.name, (nameCount.get(w.name) ?? 0) + 1);
      if (w.name === null && w.topicId !== ZERO_UUID) idCount.set(w.topicId, (idCount.get(w.topicId) ?? 0) + 1);
    }
    const answeredDuplicate = new Set<string>();

    for (const w of wanted) {
      if (w.name === null && w.topicId === ZERO_UUID) {
        answer(null, ZERO_UUID, ErrorCode.INVALID_REQUEST, 'Neither topic name nor id were specified.');
        continue;
      }
      if (w.name !== null && w.topicId !== ZERO_UUID) {
        answer(w.name, w.topicId, ErrorCode.INVALID_REQUEST, 'You may not specify both topic name and topic id.');
        continue;
      }
      const byName = w.name !== null;
      const key = byName ? `n:${w.name}` : `i:${w.topicId}`;
      if ((byName ? nameCount.get(w.name!) : idCount.get(w.topicId))! > 1) {
        if (!answeredDuplicate.has(key)) {
          answeredDuplicate.add(key);
          answer(w.name, w.topicId, ErrorCode.INVALID_REQUEST, byName ? 'Duplicate topic name.' : 'Duplicate topic id.');
        }
        continue;
      }
      try {
        // Read Redis, not the cache: deciding on a stale view could delete a recreated topic.
        const topic = byName ? await services.topics.readByName(w.name!) : await services.topics.readById(w.topicId);
        if (!topic) {
          if (byName) answer(w.name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${w.name}" does not exist`);
          else answer(null, w.topicId, ErrorCode.UNKNOWN_TOPIC_ID, `no topic has id ${w.topicId}`);
          continue;
        }
        if (byName && idCount.has(topic.topicId)) {
          answer(topic.name, topic.topicId, ErrorCode.INVALID_REQUEST, 'The provided topic name maps to an ID that was already supplied.');
          continue;
        }
        await deleteTopic(ctx, topic);
        answer(topic.name, topic.topicId, ErrorCode.NONE);
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message, topic: w.name, topicId: w.topicId }, 'topic deletion failed');
        answer(w.name, w.topicId, toKafkaErrorCode(err), (err as Error).message);
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
