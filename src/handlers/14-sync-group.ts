/**
 * SyncGroup (key 14), versions 0–5.
 *
 * v1 throttle time; v3 static membership `groupInstanceId` (KIP-345); v4 flexible; v5
 * protocol type and name, checked against the group's (KIP-559).
 *
 * Followers wait until the leader's SyncGroup brings the assignment; the answers are sent
 * after the assignment is persisted under the group's lease.
 *
 * The leader's assignments are bounded like member metadata (`--group-max-member-metadata-bytes`
 * per member, `--group-max-metadata-bytes` for the group with its metadata). Over a bound the
 * leader alone gets UNKNOWN_SERVER_ERROR, which is what Kafka answers when the group's record
 * does not fit its offsets topic (see 11-join-group.ts); nothing is kept, and the followers
 * stay in the generation, waiting for the leader's next SyncGroup or a rebalance.
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
    return ctx.services.groups.withGroup(
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
          // Views of the request frame: the group checks them and copies the ones it keeps.
          req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
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
