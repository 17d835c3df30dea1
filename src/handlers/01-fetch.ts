/**
 * Fetch (key 1), versions 4–17.
 *
 * v4 isolation level and last stable offset (KIP-98); v5 log start offset; v7 fetch sessions
 * (KIP-227: Strata answers session id 0, "no session", so clients send full fetches — allowed
 * by the KIP); v9 current leader epoch (KIP-320: Strata's epoch is always 0); v11 rack id and
 * preferred read replica (KIP-392: not used, -1); v12 flexible; v13 topic ids (KIP-516);
 * v15 replica state (follower fetching, not applicable: every request is treated as a
 * consumer's); v16–17 leader and directory hints for KRaft followers (not applicable).
 *
 * Reads whole batches up to the high watermark (read_uncommitted) or the LSO
 * (read_committed), honouring `max_bytes` (capped by the broker's `--fetch-max-bytes`, Kafka's
 * `fetch.max.bytes`) and `partition_max_bytes` while reading, with KIP-74's rule that the
 * first batch of the first partition with data is returned even when larger. When fewer
 * than `min_bytes` are available it long-polls up to `max_wait_ms`, woken by commits on this
 * broker or announced by others; a partition error answers at once.
 */
import { ErrorCode, type FetchResponseFetchableTopicResponse, type FetchResponsePartitionData } from '../../wire/index.js';
import { BatchField } from '../../wire/records/index.js';
import type { PartitionRef, ReadResult } from '../log/partition-log.js';
import { toKafkaErrorCode } from '../errors.js';
import { wireToNumber } from '../offsets.js';
import type { Services } from './services.js';
import { defineHandler, lookUpTopic } from './handler.js';

const READ_COMMITTED = 1;

interface Slot {
  out: FetchResponsePartitionData;
  ref: PartitionRef | null;
  fetchOffset: number;
  partitionMaxBytes: number;
}

/**
 * A partition answer with no data. Records are an empty set, never null, even with an error:
 * librdkafka reads a null record set as a parse failure and never sees the error code
 * (it then retries the same fetch forever instead of resetting its offset).
 */
function emptyPartition(partitionIndex: number, errorCode: number): FetchResponsePartitionData {
  return {
    partitionIndex,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    divergingEpoch: { epoch: -1, endOffset: -1n },
    currentLeader: { leaderId: -1, leaderEpoch: -1 },
    snapshotId: { endOffset: -1n, epoch: -1 },
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: [],
  };
}

export const fetchHandler = defineHandler({
  apiKey: 1,
  versions: [4, 17],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const readCommitted = req.isolationLevel === READ_COMMITTED;
    const responses: FetchResponseFetchableTopicResponse[] = [];
    const slots: Slot[] = [];

    for (const ft of req.topics) {
      const { topic, failure } = await lookUpTopic(v >= 13 ? services.topics.byId(ft.topicId) : services.topics.byName(ft.topic));
      const tr: FetchResponseFetchableTopicResponse = { topic: v <= 12 ? ft.topic : '', topicId: ft.topicId, partitions: [] };
      responses.push(tr);
      for (const fp of ft.partitions) {
        const out = emptyPartition(fp.partition, ErrorCode.NONE);
        tr.partitions.push(out);
        const fetchOffset = wireToNumber(fp.fetchOffset);
        if (failure) out.errorCode = failure.errorCode;
        else if (!topic) out.errorCode = v >= 13 ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (fp.partition < 0 || fp.partition >= topic.partitions) out.errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (fp.currentLeaderEpoch > 0) out.errorCode = ErrorCode.UNKNOWN_LEADER_EPOCH;
        else if (fetchOffset === null) out.errorCode = ErrorCode.OFFSET_OUT_OF_RANGE;
        slots.push({
          out,
          ref: out.errorCode === ErrorCode.NONE ? { topicId: topic!.topicId, partition: fp.partition } : null,
          fetchOffset: fetchOffset ?? -1,
          partitionMaxBytes: Math.max(0, fp.partitionMaxBytes),
        });
      }
    }

    const live = slots.filter((s) => s.ref !== null);
    const refs = live.map((s) => s.ref!);
    const deadline = Date.now() + Math.max(0, req.maxWaitMs);
    // The broker's fetch.max.bytes caps every answer, whatever the request asks for.
    const maxBytes = Math.min(req.maxBytes > 0 ? req.maxBytes : Number.MAX_SAFE_INTEGER, services.config.fetchMaxBytes);
    const failed = (err: unknown): number => {
      ctx.log.warn({ err: (err as Error).message }, 'fetch read failed');
      return toKafkaErrorCode(err);
    };

    for (;;) {
      // Look every partition up first (offsets and index entries, no record bytes), then
      // share the request's byte budget out in request order, as Kafka fills partitions, and
      // read each partition within its share. Reads stop at their limit while reading, so
      // the bytes fetched from the object store track the bytes answered (KIP-74: the first
      // partition with data returns its first batch even when that is over the limit).
      const plans = await Promise.all(live.map((s) => services.log.plan({ ref: s.ref!, fetchOffset: s.fetchOffset, readCommitted }).catch(failed)));
      let left = maxBytes;
      let firstWithData = true;
      const reads = await Promise.all(
        plans.map((plan, i): Promise<ReadResult | number> | number => {
          if (typeof plan === 'number') return plan;
          const share = Math.min(live[i]!.partitionMaxBytes, left, plan.availableBytes);
          const minOne = firstWithData && plan.availableBytes > 0;
          if (minOne) firstWithData = false;
          left -= share;
          return services.log.readPlanned(plan, share, minOne).catch(failed);
        }),
      );
      let total = 0;
      let anyError = false;
      live.forEach((s, i) => {
        const r = reads[i]!;
        const out = s.out;
        if (typeof r === 'number') {
          out.errorCode = r;
          out.records = [];
          anyError = true;
          return;
        }
        out.errorCode = r.errorCode;
        out.highWatermark = BigInt(r.offsets.hw);
        out.lastStableOffset = BigInt(r.offsets.lso);
        out.logStartOffset = BigInt(r.offsets.logStart);
        out.abortedTransactions = readCommitted ? [] : null;
        const records = total > 0 ? trimTo(r.records, maxBytes - total) : r.records;
        out.records = records;
        total += byteLength(records);
        if (r.errorCode !== ErrorCode.NONE) anyError = true;
      });
      if (anyError || total >= req.minBytes || Date.now() >= deadline || services.draining) {
        if (readCommitted) await addAbortedTransactions(services, live);
        break;
      }
      // Woken by a commit or the deadline; either way read again (a commit at the deadline counts).
      await services.log.waitForCommit(refs, deadline - Date.now());
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses, nodeEndpoints: [] };
  },
});

/**
 * The leading batches of `records` that fit in `room` bytes. Only the KIP-74 partition can
 * read past its share (its first batch), so later partitions, read in parallel with it, give
 * back what it took over; everything else already fits.
 */
function trimTo(records: readonly Buffer[], room: number): readonly Buffer[] {
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    bytes += records[i]!.length;
    if (bytes > room) return records.slice(0, i);
  }
  return records;
}

function byteLength(records: readonly Buffer[]): number {
  let bytes = 0;
  for (const r of records) bytes += r.length;
  return bytes;
}

/**
 * Fills in, for read_committed answers, the aborted transactions overlapping the returned
 * batches, so the client can drop those records (KIP-98).
 */
async function addAbortedTransactions(services: Services, slots: readonly Slot[]): Promise<void> {
  await Promise.all(
    slots.map(async (s) => {
      const records = s.out.records as Buffer[] | null;
      if (!records || records.length === 0 || s.out.errorCode !== ErrorCode.NONE) return;
      const last = records[records.length - 1]!;
      const end = Number(last.readBigInt64BE(BatchField.baseOffset)) + last.readInt32BE(BatchField.lastOffsetDelta) + 1;
      try {
        const aborted = await services.log.abortedTransactions(s.ref!, s.fetchOffset, end);
        s.out.abortedTransactions = aborted.map((a) => ({ producerId: BigInt(a.producerId), firstOffset: BigInt(a.firstOffset) }));
      } catch (err) {
        s.out.errorCode = toKafkaErrorCode(err);
        s.out.records = [];
      }
    }),
  );
}
