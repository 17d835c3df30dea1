/**
 * DescribeLogDirs (key 35), versions 1–4. v0 is not served (Kafka 4.0 removed it, KIP-896);
 * v2 is the first flexible version, v3 adds the top-level ErrorCode, v4 TotalBytes and
 * UsableBytes (KIP-827).
 *
 * Strata has no log directories: every partition lives in the object store. A broker answers
 * with one pseudo directory, `strata://object-store`, listing the partitions it is a replica of
 * as Metadata shows them to this client (so summing over brokers counts each partition once per
 * replica, as in Kafka). A partition's size is its stored bytes: the runs from its log start
 * to its high watermark as the index holds them (a run straddling the log start counts
 * whole). `offsetLag` is 0 and `isFutureKey` false: nothing moves between directories. Total
 * and usable bytes (v4) are -1, unknown: an object store has no capacity to report.
 *
 * `topics` null describes every topic; a named topic or partition that does not exist, or
 * of which this broker is no replica, is left out, as Kafka leaves out replicas it does not host.
 */
import { ErrorCode, type DescribeLogDirsResponseDescribeLogDirsTopic } from '../../wire/index.js';
import { defineHandler } from './handler.js';

/** The one directory every broker reports. */
export const PSEUDO_LOG_DIR = 'strata://object-store';

export const describeLogDirsHandler = defineHandler({
  apiKey: 35,
  versions: [1, 4],
  async handle(ctx, req) {
    const { services } = ctx;
    const zone = ctx.connection.zone;
    const all = await services.topics.all();
    const wanted = req.topics === null ? null : new Map(req.topics.map((t) => [t.topic, new Set(t.partitions)]));
    const picked: { name: string; topicId: string; partitions: number[] }[] = [];
    for (const t of all) {
      const only = wanted === null ? null : wanted.get(t.name);
      if (only === undefined) continue;
      const partitions: number[] = [];
      for (let p = 0; p < t.partitions; p++) {
        if (only !== null && !only.has(p)) continue;
        if (services.placement.replicasFor(t.topicId, p, t.replicationFactor, zone).includes(services.nodeId)) partitions.push(p);
      }
      if (partitions.length > 0) picked.push({ name: t.name, topicId: t.topicId, partitions });
    }
    let topics: DescribeLogDirsResponseDescribeLogDirsTopic[] = [];
    // The top-level code is for the request as a whole (Kafka: authorization); a failure to
    // read the index fails the directory, as an unreadable log dir does in Kafka.
    let errorCode: number = ErrorCode.NONE;
    try {
      const refs = picked.flatMap((t) => t.partitions.map((partition) => ({ topicId: t.topicId, partition })));
      const usage = await services.log.usage(refs);
      let at = 0;
      topics = picked.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((partitionIndex) => ({
          partitionIndex,
          partitionSize: BigInt(usage[at++]!.storedBytes),
          offsetLag: 0n,
          isFutureKey: false,
        })),
      }));
    } catch {
      // Kafka's answer for a directory it cannot read; the client may ask again.
      errorCode = ErrorCode.KAFKA_STORAGE_ERROR;
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      results: [{ errorCode, logDir: PSEUDO_LOG_DIR, topics, totalBytes: -1n, usableBytes: -1n }],
    };
  },
});
