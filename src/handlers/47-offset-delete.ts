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
    const flat = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex })));
    const r = await ctx.broker.groups.deleteOffsets(req.groupId, flat);
    if (r.errorCode !== ErrorCode.NONE) return { errorCode: r.errorCode, throttleTimeMs: 0, topics: [] };
    let i = 0;
    return {
      errorCode: ErrorCode.NONE,
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: r.perPartition[i++]! })) })),
    };
  },
});
