/**
 * OffsetDelete (key 47), version 0 (KIP-496).
 *
 * Deletes a group's committed offsets for the given partitions. Partitions of topics that the
 * group's active members subscribe to answer GROUP_SUBSCRIBED_TO_TOPIC; a group that does not
 * exist answers GROUP_ID_NOT_FOUND.
 */
import { ErrorCode } from '../../wire/index.js';
import { defineHandler } from './handler.js';

export const offsetDeleteHandler = defineHandler({
  apiKey: 47,
  versions: [0, 0],
  async handle(ctx, req) {
    // Partitions of unknown topics answer UNKNOWN_TOPIC_OR_PARTITION; the rest are deleted
    // unless the group's members subscribe to their topic.
    const known = new Map<string, number>();
    for (const t of req.topics) {
      const topic = await ctx.services.topics.byName(t.name);
      if (topic) known.set(t.name, topic.partitions);
    }
    const exists = (topic: string, p: number): boolean => p >= 0 && p < (known.get(topic) ?? 0);
    const flat = req.topics.flatMap((t) => t.partitions.filter((p) => exists(t.name, p.partitionIndex)).map((p) => ({ topic: t.name, partition: p.partitionIndex })));
    const r = await ctx.services.groups.deleteOffsets(req.groupId, flat);
    if (r.errorCode !== ErrorCode.NONE) return { errorCode: r.errorCode, throttleTimeMs: 0, topics: [] };
    let i = 0;
    return {
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: exists(t.name, p.partitionIndex) ? r.perPartition[i++]! : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        })),
      })),
    };
  },
});
