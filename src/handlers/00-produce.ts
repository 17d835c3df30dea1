/**
 * Produce (key 0), versions 3–11 implemented; 0–11 advertised.
 *
 * v3 requires RecordBatch v2 and adds the transactional id; v5 log start offset; v7 allows
 * zstd (KIP-110); v8 per-record errors (KIP-467); v9 flexible; v10 current-leader hints on
 * NOT_LEADER (never needed: any broker accepts any partition); v11 is v10 for clients that
 * understand those hints. Versions 0–2 are advertised only because librdkafka enables gzip,
 * snappy and lz4 by checking that Produce v0 is advertised (librdkafka #4956; Kafka 4.0 does
 * the same); they are answered with UNSUPPORTED_VERSION.
 *
 * Each partition's batch is validated as Kafka's LogValidator does: structure and CRC
 * (CORRUPT_MESSAGE), the header rules for produced batches, size (MESSAGE_TOO_LARGE) and codec,
 * then every record, walked once (`wire/records/validate.ts`): count, lengths, varints, headers,
 * offset deltas (INVALID_RECORD), timestamps against `message.timestamp.type` and the KIP-937
 * bounds (INVALID_TIMESTAMP), keys on compacted topics (INVALID_RECORD), with Produce v8+
 * record errors (KIP-467) and Kafka's partition message where Kafka gives them. Compressed
 * batches are decompressed off the main thread for that walk, up to
 * `--max-decompressed-batch-bytes`, and stored as sent. A refused batch stores nothing; the
 * request's other partitions proceed. Accepted batches are stamped with the leader epoch and
 * with the maxTimestamp Kafka writes (the largest record timestamp under CreateTime, the append
 * time under LogAppendTime), buffered, and answered after their commit. acks=0 answers nothing
 * (a failed partition closes the connection instead); acks=1 and acks=-1 both answer after the
 * commit, which is durable in both cases.
 *
 * Transactional batches are accepted only for partitions their producer added to its current
 * transaction (checked by the commit script, so old clients are protected too).
 */
import {
  ErrorCode,
  WireError,
  errorInfo,
  type ProduceResponsePartitionProduceResponse,
  type ProduceResponseTopicProduceResponse,
} from '../../wire/index.js';
import {
  Compression,
  TimestampType,
  checkProducedBatch,
  splitBatches,
  validateCompressedRecords,
  validateRecords,
  type BatchRejection,
  type RecordBatchView,
  type RecordPolicy,
} from '../../wire/records/index.js';
import type { TopicInfo } from '../cluster/topic-store.js';
import { effectiveTopicConfig, timestampLimits } from '../cluster/topic-configs.js';
import type { BrokerConfig } from '../config.js';
import { toKafkaErrorCode } from '../errors.js';
import { NO_RESPONSE, defineHandler, lookUpTopic } from './handler.js';

const NO_LEADER = { leaderId: -1, leaderEpoch: -1 };

/** A batch that passed validation, waiting for the request's turn to be queued. */
interface ValidBatch {
  out: ProduceResponsePartitionProduceResponse;
  topicId: string;
  partition: number;
  batch: RecordBatchView;
  logAppendTime: boolean;
  /** The largest record timestamp under CreateTime (what maxTimestamp must say), else -1. */
  maxTimestamp: number;
}

/** What the record walk needs from a topic's configs. */
type TopicRules = Omit<RecordPolicy, 'nowMs' | 'topic' | 'maxDecompressedBytes'>;

/**
 * Topic rules by the topic's config overrides object. The topic cache replaces that object
 * whenever a topic's configs change and never edits it, so it can key the cache; reading the
 * configs (BigInt parsing included) cost about 1 µs per topic per request.
 */
const topicRules = new WeakMap<Readonly<Record<string, string>>, TopicRules>();

/** The rules a topic's records are validated against, for a request that started at `nowMs`. */
function recordPolicy(topicName: string, topic: TopicInfo, config: BrokerConfig, nowMs: number): RecordPolicy {
  let rules = topicRules.get(topic.configs);
  if (!rules) {
    const limits = timestampLimits(topic.configs, config);
    rules = {
      timestampType:
        effectiveTopicConfig('message.timestamp.type', topic.configs, config) === 'LogAppendTime' ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME,
      timestampBeforeMaxMs: limits.beforeMaxMs,
      timestampAfterMaxMs: limits.afterMaxMs,
      compacted: effectiveTopicConfig('cleanup.policy', topic.configs, config)
        .split(',')
        .some((p) => p.trim() === 'compact'),
    };
    topicRules.set(topic.configs, rules);
  }
  return { ...rules, nowMs, topic: topicName, maxDecompressedBytes: config.maxDecompressedBatchBytes };
}

function partitionResponse(index: number, errorCode: number, errorMessage: string | null = null): ProduceResponsePartitionProduceResponse {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    recordErrors: [],
    errorMessage,
    currentLeader: NO_LEADER,
  };
}

export const produceHandler = defineHandler({
  apiKey: 0,
  versions: [3, 11],
  advertised: [0, 11],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const acks = req.acks;
    const pending: Promise<void>[] = [];
    const responses: ProduceResponseTopicProduceResponse[] = [];
    // A request claims its connection's turn when it starts, validates while earlier requests
    // are still validating, and waits for the turn only to queue (see PartitionLog.appendTurn).
    const turn = services.log.appendTurn(ctx.connection);
    try {
      const valid: ValidBatch[] = [];
      const nowMs = Date.now();
      for (const topicData of req.topicData) {
        const topicResponse: ProduceResponseTopicProduceResponse = { name: topicData.name, partitionResponses: [] };
        responses.push(topicResponse);
        const { topic, failure } = await lookUpTopic(services.topics.byName(topicData.name));
        let policy: RecordPolicy | null = null;
        for (const pd of topicData.partitionData) {
          const out = partitionResponse(pd.index, ErrorCode.NONE);
          topicResponse.partitionResponses.push(out);
          const fail = (code: number, message: string | null = null): void => {
            out.errorCode = code;
            out.errorMessage = message;
          };
          const refuse = (rejection: BatchRejection): void => {
            // The codec layer knows the limit, not the setting behind it.
            const setting = rejection.errorName === 'MESSAGE_TOO_LARGE' ? ' (or raise --max-decompressed-batch-bytes)' : '';
            fail(ErrorCode[rejection.errorName], rejection.message + setting);
            if (rejection.recordErrors) out.recordErrors = rejection.recordErrors.map((e) => ({ batchIndex: e.batchIndex, batchIndexErrorMessage: e.message }));
          };
          if (failure) {
            fail(failure.errorCode, failure.message);
            continue;
          }
          if (v < 3) {
            fail(ErrorCode.UNSUPPORTED_VERSION, 'Produce v0-v2 (message format v0/v1) is not supported; use a client that sends Produce v3+');
            continue;
          }
          if (acks !== -1 && acks !== 0 && acks !== 1) {
            fail(ErrorCode.INVALID_REQUIRED_ACKS, `acks=${acks}; use -1, 0 or 1`);
            continue;
          }
          if (!topic || pd.index < 0 || pd.index >= topic.partitions) {
            fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
            continue;
          }
          const records = pd.records as Buffer | null;
          let batches: RecordBatchView[];
          try {
            batches = records === null ? [] : splitBatches(records);
          } catch (err) {
            fail(ErrorCode.CORRUPT_MESSAGE, (err as WireError).message);
            continue;
          }
          // Produce v3+ carries exactly one batch per partition (Kafka rejects anything else).
          if (batches.length !== 1) {
            fail(ErrorCode.INVALID_RECORD, `a produce request must carry exactly one record batch per partition, found ${batches.length}`);
            continue;
          }
          const batch = batches[0]!;
          const rejection = checkProducedBatch(batch);
          if (rejection) {
            refuse(rejection);
            continue;
          }
          const maxMessageBytes = Number(effectiveTopicConfig('max.message.bytes', topic.configs, services.config));
          if (batch.sizeInBytes > maxMessageBytes) {
            fail(ErrorCode.MESSAGE_TOO_LARGE, `record batch of ${batch.sizeInBytes} bytes exceeds max.message.bytes ${maxMessageBytes}`);
            continue;
          }
          if (batch.compression === Compression.ZSTD && v < 7) {
            fail(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 'zstd needs Produce v7 or later');
            continue;
          }
          if (batch.isTransactional && req.transactionalId === null) {
            fail(ErrorCode.INVALID_RECORD, 'a transactional record batch needs the request to carry its transactional id');
            continue;
          }
          // The record walk comes last, after every check that reads only the header. An
          // uncompressed batch is walked here in place; a compressed one is decompressed on
          // the thread pool first, one batch at a time so that a request holds at most one
          // decompressed batch.
          policy ??= recordPolicy(topicData.name, topic, services.config, nowMs);
          const verdict =
            batch.compression === Compression.NONE
              ? validateRecords(batch, batch.payload, policy, pd.index)
              : await validateCompressedRecords(batch, policy, pd.index);
          if (verdict.rejection) {
            refuse(verdict.rejection);
            continue;
          }
          valid.push({
            out,
            topicId: topic.topicId,
            partition: pd.index,
            batch,
            logAppendTime: policy.timestampType === TimestampType.LOG_APPEND_TIME,
            maxTimestamp: verdict.maxTimestamp,
          });
        }
      }

      // Queue in request order per connection: wait for the previous request to queue its own.
      await turn.ready;
      for (const { out, topicId, partition, batch, logAppendTime, maxTimestamp } of valid) {
        // The epoch clients see in Metadata is 0; stamp it so fetch-side epoch checks agree.
        batch.setPartitionLeaderEpoch(0);
        // Kafka rewrites maxTimestamp: the append time under LogAppendTime, otherwise the largest
        // record timestamp (which also clears a LogAppendTime bit the client set). Readers and the
        // time index trust it, so a client's wrong value must not be stored. Both recompute the
        // CRC only when something changes.
        const appendTimeMs = logAppendTime ? Date.now() : -1;
        batch.setMaxTimestamp(logAppendTime ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME, logAppendTime ? appendTimeMs : maxTimestamp);
        const fail = (code: number, message: string | null = null): void => {
          out.errorCode = code;
          out.errorMessage = message;
        };
        const appended = services.log.append({ topicId, partition }, [batch]).then(
          (outcome) => {
            const r = outcome.results[0]!;
            if (r.errorCode !== ErrorCode.NONE) {
              fail(r.errorCode);
              return;
            }
            out.baseOffset = BigInt(r.baseOffset);
            out.logAppendTimeMs = BigInt(appendTimeMs);
            out.logStartOffset = BigInt(outcome.logStart);
          },
          (err: unknown) => fail(toKafkaErrorCode(err), (err as Error).message),
        );
        pending.push(appended);
      }
    } finally {
      turn.release();
    }
    // acks=0 too waits for its commit before its slot completes, as Kafka keeps a connection
    // muted until each request is processed: the request's frame, which the ingest buffer
    // holds views of, stays counted in the broker's request memory until it is committed, and
    // a fast acks=0 producer is held back by its in-flight limit instead of growing the
    // flush queue without bound.
    await Promise.all(pending);
    if (acks === 0) {
      // Nothing is answered. As Kafka does, a failed partition closes the connection instead:
      // the only signal an acks=0 client gets, which makes it refresh metadata and reconnect.
      const failed = responses.flatMap((t) => t.partitionResponses.filter((p) => p.errorCode !== ErrorCode.NONE).map((p) => `${t.name}-${p.index}: ${errorInfo(p.errorCode)?.name ?? p.errorCode}`));
      if (failed.length > 0) {
        ctx.log.info({ failed }, 'acks=0 produce failed; closing the connection so the client notices');
        ctx.connection.close('acks=0 produce failed');
      }
      return NO_RESPONSE;
    }
    return { responses, throttleTimeMs: 0, nodeEndpoints: [] };
  },
});
