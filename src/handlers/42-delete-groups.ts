/**
 * DeleteGroups (key 42), versions 0–2.
 *
 * v1 throttle time semantics (KIP-219); v2 flexible. A group with members answers
 * NON_EMPTY_GROUP; one that does not exist GROUP_ID_NOT_FOUND. Deleting removes the group's
 * state and committed offsets.
 */
import { defineHandler } from './handler.js';

export const deleteGroupsHandler = defineHandler({
  apiKey: 42,
  versions: [0, 2],
  async handle(ctx, req) {
    const results = [];
    for (const groupId of req.groupsNames) results.push({ groupId, errorCode: await ctx.services.groups.deleteGroup(groupId) });
    return { throttleTimeMs: 0, results };
  },
});
