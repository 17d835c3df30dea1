/**
 * SyncGroup (key 14), versions 0–5.
 *
 * v1 throttle time; v3 static membership `groupInstanceId` (KIP-345); v4 flexible; v5
 * protocol type and name, checked against the group's (KIP-559).
 *
 * Followers wait until the leader's SyncGroup brings the assignment; the answers are sent
 * after the assignment is persisted under the group's lease.
 */
import { ErrorCode, type SyncGroupResponse } from '../../wire/index.js';
import { defineHandler } from './handler.js';

const EMPTY = Buffer.alloc(0);

export const syncGroupHandler = defineHandler({
  apiKey: 14,
  versions: [0, 5],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    const fail = (errorCode: number): SyncGroupResponse => ({ throttleTimeMs: 0, errorCode, protocolType: null, protocolName: null, assignment: EMPTY });
    if (req.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    return ctx.broker.groups.withGroup(
      req.groupId,
      false,
      (code) => fail(code === ErrorCode.GROUP_ID_NOT_FOUND ? ErrorCode.UNKNOWN_MEMBER_ID : code),
      async (group): Promise<SyncGroupResponse> => {
        const r = await group.sync(
          req.memberId,
          v >= 3 ? req.groupInstanceId : null,
          req.generationId,
          v >= 5 ? req.protocolType : null,
          v >= 5 ? req.protocolName : null,
          req.assignments.map((a) => ({ memberId: a.memberId, assignment: Buffer.from(a.assignment) })),
        );
        return {
          throttleTimeMs: 0,
          errorCode: r.errorCode,
          protocolType: v >= 5 ? r.protocolType : null,
          protocolName: v >= 5 ? r.protocolName : null,
          assignment: r.assignment,
        };
      },
    );
  },
});
