/**
 * ListGroups (key 16), versions 0–5.
 *
 * v1 throttle time; v3 flexible; v4 state filter and group state (KIP-518); v5 type filter
 * and group type (KIP-848): every Strata group is "classic".
 *
 * Clients send ListGroups to every broker and concatenate the answers, so each broker lists
 * the groups it coordinates (owned, or unowned with it as the rendezvous choice).
 */
import { ErrorCode } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

export const listGroupsHandler = defineHandler({
  apiKey: 16,
  versions: [0, 5],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    try {
      const states = v >= 4 ? req.statesFilter.map((s) => s.toLowerCase()) : [];
      const types = v >= 5 ? req.typesFilter.map((s) => s.toLowerCase()) : [];
      const listed = (await ctx.services.groups.list())
        .filter((g) => states.length === 0 || states.includes(g.state.toLowerCase()))
        .filter(() => types.length === 0 || types.includes('classic'))
        .sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        groups: listed.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: v >= 4 ? g.state : '', groupType: v >= 5 ? 'classic' : '' })),
      };
    } catch (err) {
      const code = toKafkaErrorCode(err);
      return { throttleTimeMs: 0, errorCode: code === ErrorCode.UNKNOWN_SERVER_ERROR ? ErrorCode.COORDINATOR_NOT_AVAILABLE : code, groups: [] };
    }
  },
});
