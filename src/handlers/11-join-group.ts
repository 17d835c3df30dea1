/**
 * JoinGroup (key 11), versions 0–9.
 *
 * v1 rebalance timeout; v2 throttle time; v4 MEMBER_ID_REQUIRED for first joins (KIP-394);
 * v5 static membership `groupInstanceId` (KIP-345); v6 flexible; v7 protocol type and name in
 * the response (KIP-559); v8 join reason (KIP-800); v9 `skipAssignment` for a static leader
 * that rejoins (KIP-814).
 *
 * The request waits in the group's state machine (src/groups/group.ts) until the generation
 * completes; the answer is sent after the generation is persisted under the group's lease.
 *
 * Limits:
 * - `--group-max-size` is Kafka's group.max.size: a join that would add a member to a full
 *   group gets GROUP_MAX_SIZE_REACHED (with no member id), before MEMBER_ID_REQUIRED. Members
 *   rejoining, and a static member restarting under its group.instance.id, are not new
 *   members (Kafka lets a static member replace itself in a full group since KAFKA-20601).
 * - `--group-max-member-metadata-bytes` bounds one member's protocol names and metadata,
 *   `--group-max-metadata-bytes` the group's total of metadata and assignments. Kafka bounds
 *   them only indirectly: the group's record in __consumer_offsets must fit the topic's
 *   max.message.bytes, and when it does not, the coordinator answers the JoinGroup or
 *   SyncGroup with UNKNOWN_SERVER_ERROR (appendGroupMetadataErrorToResponseError maps
 *   MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE to it). Strata answers the same code, which
 *   Kafka clients already handle for this case (the Java consumer raises it from poll(),
 *   librdkafka reports it and joins again later), but earlier: before the metadata is copied
 *   into the group or written to Redis, and without the rebalance Kafka's failed write
 *   causes, so the other members keep their generation. A first join over the per-member
 *   bound is refused before the group is even loaded, so it leaves no group behind.
 */
import { ErrorCode, type JoinGroupResponse } from '../../wire/index.js';
import { protocolsBytes } from '../groups/group.js';
import { defineHandler } from './handler.js';

export const joinGroupHandler = defineHandler({
  apiKey: 11,
  versions: [0, 9],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const fail = (errorCode: number, memberId = req.memberId): JoinGroupResponse => ({
      throttleTimeMs: 0,
      errorCode,
      generationId: -1,
      protocolType: null,
      protocolName: v >= 7 ? null : '',
      leader: '',
      skipAssignment: false,
      memberId,
      members: [],
    });
    if (req.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    const cfg = services.config;
    if (req.sessionTimeoutMs < cfg.groupMinSessionTimeoutMs || req.sessionTimeoutMs > cfg.groupMaxSessionTimeoutMs) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    }
    if (req.protocolType === '' || req.protocols.length === 0) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    if (protocolsBytes(req.protocols) > cfg.groupMaxMemberMetadataBytes) return fail(ErrorCode.UNKNOWN_SERVER_ERROR);
    // Only a first join (no member id) may create the group; a member id for a group that
    // does not exist is simply unknown.
    const create = req.memberId === '';
    const onFail = (code: number): JoinGroupResponse => fail(code === ErrorCode.GROUP_ID_NOT_FOUND ? ErrorCode.UNKNOWN_MEMBER_ID : code);
    return services.groups.withGroup(req.groupId, create, onFail, async (group) => {
      const r = await group.join({
        memberId: req.memberId,
        groupInstanceId: v >= 5 ? req.groupInstanceId : null,
        clientId: header.clientId ?? '',
        clientHost: `/${ctx.connection.remoteAddress.replace(/:\d+$/, '')}`,
        sessionTimeoutMs: req.sessionTimeoutMs,
        // v0 has no rebalance timeout; Kafka uses the session timeout for it.
        rebalanceTimeoutMs: v >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
        protocolType: req.protocolType,
        // Views of the request frame: the group copies them only if it accepts them.
        protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
        requireKnownMemberId: v >= 4,
        supportsSkipAssignment: v >= 9,
      });
      if (r.errorCode !== ErrorCode.NONE) return fail(r.errorCode, r.memberId);
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        generationId: r.generationId,
        protocolType: v >= 7 ? r.protocolType : null,
        protocolName: r.protocolName ?? (v >= 7 ? null : ''),
        leader: r.leader,
        skipAssignment: v >= 9 ? r.skipAssignment : false,
        memberId: r.memberId,
        members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: v >= 5 ? m.groupInstanceId : null, metadata: m.metadata })),
      };
    });
  },
});
