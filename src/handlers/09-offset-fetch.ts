/**
 * OffsetFetch (key 9), versions 0–9.
 *
 * v1 offsets from the group store (v0 meant ZooKeeper; served the same); v2 all topics when
 * `topics` is null and a top-level error code; v3 throttle time; v5 committed leader epoch
 * (KIP-320); v6 flexible; v7 `requireStable` (KIP-447); v8 several groups per request (KIP-709); v9
 * member id/epoch for the new protocol (KIP-848), not checked.
 * With `requireStable`, partitions whose offset an open transaction has staged answer
 * UNSTABLE_OFFSET_COMMIT (retriable) until the transaction ends.
 *
 * Committed offsets live in Redis, so any broker answers. A partition with no committed
 * offset answers -1 with no error, as Kafka does.
 */
import { ErrorCode, type OffsetFetchResponsePartition } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import type { Services } from './services.js';
import { defineHandler } from './handler.js';

interface TopicAnswer {
  name: string;
  partitions: OffsetFetchResponsePartition[];
}

async function fetchGroup(
  services: Services,
  groupId: string,
  topics: { name: string; partitionIndexes: number[] }[] | null,
  v: number,
  requireStable: boolean,
): Promise<{ errorCode: number; topics: TopicAnswer[] }> {
  try {
    const wanted = topics === null ? null : topics.flatMap((t) => t.partitionIndexes.map((p) => ({ topic: t.name, partition: p })));
    const [found, pending] = await Promise.all([
      services.groups.fetchOffsets(groupId, wanted),
      requireStable ? services.groups.pendingPartitions(groupId) : Promise.resolve(new Set<string>()),
    ]);
    const answer = (partition: number, key: string): OffsetFetchResponsePartition => {
      // KIP-447: an offset a still-open transaction will change is not answered yet.
      if (pending.has(key)) {
        return { partitionIndex: partition, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT };
      }
      const c = found.get(key);
      return {
        partitionIndex: partition,
        committedOffset: c ? BigInt(c.offset) : -1n,
        committedLeaderEpoch: v >= 5 && c ? c.leaderEpoch : -1,
        metadata: c ? c.metadata : '',
        errorCode: ErrorCode.NONE,
      };
    };
    if (topics !== null) {
      return { errorCode: ErrorCode.NONE, topics: topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => answer(p, `${t.name}:${p}`)) })) };
    }
    const byTopic = new Map<string, OffsetFetchResponsePartition[]>();
    for (const key of [...found.keys()].sort()) {
      const at = key.lastIndexOf(':');
      const name = key.slice(0, at);
      const list = byTopic.get(name) ?? [];
      list.push(answer(Number(key.slice(at + 1)), key));
      byTopic.set(name, list);
    }
    return { errorCode: ErrorCode.NONE, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.sort((a, b) => a.partitionIndex - b.partitionIndex) })) };
  } catch (err) {
    const code = toKafkaErrorCode(err);
    return { errorCode: code === ErrorCode.UNKNOWN_SERVER_ERROR ? ErrorCode.COORDINATOR_NOT_AVAILABLE : code, topics: [] };
  }
}

export const offsetFetchHandler = defineHandler({
  apiKey: 9,
  versions: [0, 9],
  async handle(ctx, req) {
    const v = ctx.header.apiVersion;
    if (v >= 8) {
      const groups = await Promise.all(
        req.groups.map(async (g) => {
          const r = await fetchGroup(ctx.services, g.groupId, g.topics, v, req.requireStable);
          return { groupId: g.groupId, errorCode: r.errorCode, topics: r.topics };
        }),
      );
      return { throttleTimeMs: 0, topics: [], errorCode: ErrorCode.NONE, groups };
    }
    const r = await fetchGroup(ctx.services, req.groupId, v >= 2 ? req.topics : (req.topics ?? []), v, v >= 7 && req.requireStable);
    if (v < 2 && r.errorCode !== ErrorCode.NONE) {
      // v0–1 have no top-level error: report it on every partition asked for.
      for (const t of req.topics ?? []) {
        r.topics.push({ name: t.name, partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: r.errorCode })) });
      }
    }
    return { throttleTimeMs: 0, topics: r.topics, errorCode: v >= 2 ? r.errorCode : ErrorCode.NONE, groups: [] };
  },
});
