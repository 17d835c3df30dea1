/**
 * LeaveGroup (key 13), versions 0–5.
 *
 * v1 throttle time; v3 batch leave by member identities (KIP-345, used by admins to remove
 * static members); v4 flexible; v5 leave reason (KIP-800).
 */
import { ErrorCode, type LeaveGroupResponse } from '../../wire/index.js';
import { defineHandler } from './handler.js';

export const leaveGroupHandler = defineHandler({
  apiKey: 13,
  versions: [0, 5],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    const identities = v >= 3 ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId })) : [{ memberId: req.memberId, groupInstanceId: null }];
    const fail = (errorCode: number): LeaveGroupResponse => ({ throttleTimeMs: 0, errorCode, members: [] });
    if (req.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    return ctx.services.groups.withGroup(
      req.groupId,
      false,
      (code): LeaveGroupResponse => {
        if (code !== ErrorCode.GROUP_ID_NOT_FOUND) return fail(code);
        // No such group: every member is unknown (per member from v3, as Kafka answers).
        if (v < 3) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, members: identities.map((m) => ({ ...m, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })) };
      },
      (group): LeaveGroupResponse => {
        const codes = group.leave(identities);
        if (v < 3) return { throttleTimeMs: 0, errorCode: codes[0]!, members: [] };
        return {
          throttleTimeMs: 0,
          errorCode: ErrorCode.NONE,
          members: identities.map((m, i) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: codes[i]! })),
        };
      },
    );
  },
});
