/**
 * OffsetCommit (key 8), versions 0–9.
 *
 * v1 generation and member id (and a per-partition commit timestamp, ignored as in Kafka
 * since v2); v2–4 retention time (ignored: offsets live until the group is deleted); v3
 * throttle time; v6 committed leader epoch (KIP-320); v7 static membership (KIP-345); v8
 * flexible; v9 is for the new consumer protocol (KIP-848), whose member epochs Strata does not
 * have: a v9 commit is validated like a classic one (generation = member epoch).
 *
 * Committed offsets are written to Redis under the group's lease, with their metadata string
 * and leader epoch, and are readable from any broker. A commit without a generation (-1) is
 * accepted only while the group has no members (admin tools, assign()-based consumers).
 */
import { ErrorCode } from '../../wire/index.js';
import { checkCommittedOffsets, failRemaining } from './offset-commits.js';
import { defineHandler } from './handler.js';

export const offsetCommitHandler = defineHandler({
  apiKey: 8,
  versions: [0, 9],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    // An empty group id is accepted, as Kafka does for old clients' offset storage.
    const { answer: topics, accepted: valid } = await checkCommittedOffsets(services, req.topics, v >= 6);
    const code = await services.groups.commitOffsets(
      req.groupId,
      v >= 1 ? req.memberId : '',
      v >= 7 ? req.groupInstanceId : null,
      v >= 1 ? req.generationIdOrMemberEpoch : -1,
      valid,
      // A generation for a group that does not exist: ILLEGAL_GENERATION, or from v9 (KIP-848)
      // GROUP_ID_NOT_FOUND, as Kafka answers.
      v >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION,
    );
    return { throttleTimeMs: 0, topics: code === ErrorCode.NONE ? topics : failRemaining(topics, code) };
  },
});
