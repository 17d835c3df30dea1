/**
 * Heartbeat (key 12), versions 0–4.
 *
 * v1 throttle time; v3 static membership `groupInstanceId` (KIP-345); v4 flexible.
 * Answers REBALANCE_IN_PROGRESS while the group prepares a rebalance (the member must rejoin),
 * ILLEGAL_GENERATION for an old generation, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID as Kafka.
 */
import { ErrorCode } from '../../wire/index.js';
import { defineHandler } from './handler.js';

export const heartbeatHandler = defineHandler({
  apiKey: 12,
  versions: [0, 4],
  async handle(ctx, req) {
    if (req.groupId === '') return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_GROUP_ID };
    const instanceId = ctx.header.apiVersion >= 3 ? req.groupInstanceId : null;
    return ctx.services.groups.withGroup(
      req.groupId,
      false,
      (code) => ({ throttleTimeMs: 0, errorCode: code === ErrorCode.GROUP_ID_NOT_FOUND ? ErrorCode.UNKNOWN_MEMBER_ID : code }),
      (group) => ({ throttleTimeMs: 0, errorCode: group.heartbeat(req.memberId, instanceId, req.generationId) }),
    );
  },
});
