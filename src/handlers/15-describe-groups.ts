/**
 * DescribeGroups (key 15), versions 0–5.
 *
 * v1 throttle time; v3 authorized operations (KIP-430: Strata has no ACLs, so "not
 * requested"); v4 static member instance ids (KIP-345); v5 flexible.
 *
 * A group that does not exist is described as state "Dead" with no error, as Kafka does.
 */
import { ErrorCode, type DescribeGroupsResponseDescribedGroup } from '../../wire/index.js';
import { defineHandler } from './handler.js';

const OPERATIONS_NOT_REQUESTED = -2147483648;
const EMPTY = Buffer.alloc(0);

export const describeGroupsHandler = defineHandler({
  apiKey: 15,
  versions: [0, 5],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    const groups = await Promise.all(
      req.groups.map(async (groupId): Promise<DescribeGroupsResponseDescribedGroup> => {
        const base: DescribeGroupsResponseDescribedGroup = {
          errorCode: ErrorCode.NONE,
          groupId,
          groupState: 'Dead',
          protocolType: '',
          protocolData: '',
          members: [],
          authorizedOperations: OPERATIONS_NOT_REQUESTED,
        };
        const g = await ctx.services.groups.describe(groupId);
        if (g === null) return base;
        if (typeof g === 'number') return { ...base, errorCode: g, groupState: '' };
        const stable = g.state === 'Stable';
        return {
          ...base,
          groupState: g.state,
          protocolType: g.protocolType ?? '',
          // Kafka gives the protocol name, member metadata and assignments only while Stable.
          protocolData: stable ? (g.protocolName ?? '') : '',
          members: [...g.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: v >= 4 ? m.groupInstanceId : null,
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberMetadata: stable ? (m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? EMPTY) : EMPTY,
            memberAssignment: stable ? m.assignment : EMPTY,
          })),
        };
      }),
    );
    return { throttleTimeMs: 0, groups };
  },
});
