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
 * Each partition's batch is validated (structure, CRC, size, codec), stamped with the leader
 * epoch (and LogAppendTime when the topic asks for it), buffered, and answered after its
 * commit. acks=0 answers nothing (a failed partition closes the connection instead);
 * acks=1 and acks=-1 both answer after the commit, which is durable in both cases.
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
import { Compression, TimestampType, checkProducedBatch, splitBatches, type RecordBatchView } from '../../wire/records/index.js';
import { effectiveTopicConfig } from '../cluster/topic-configs.js';
import { toKafkaErrorCode } from '../errors.js';
import { NO_RESPONSE, defineHandler, lookUpTopic, type ConnectionInfo } from './handler.js';

/**
 * Per connection, the turn to queue appends. Handlers of one connection run concurrently, and
 * each awaits topic lookups before queuing its batches; without turns, a later pipelined
 * request could reach the ingest buffer first and reorder a partition's batches (fatal for
 * idempotent producers, which pipeline up to five requests). The turn is held only until the
 * batches are queued, not until they commit.
 */
const appendTurns = new WeakMap<ConnectionInfo, Promise<void>>();

const NO_LEADER = { leaderId: -1, leaderEpoch: -1 };

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
    const { broker, header } = ctx;
    const v = header.apiVersion;
    const acks = req.acks;
    const pending: Promise<void>[] = [];
    const responses: ProduceResponseTopicProduceResponse[] = [];
    const previous = appendTurns.get(ctx.connection);
    let release!: () => void;
    appendTurns.set(ctx.connection, new Promise<void>((r) => (release = r)));
    try {
      if (previous) await previous;
      for (const topicData of req.topicData) {
        const topicResponse: ProduceResponseTopicProduceResponse = { name: topicData.name, partitionResponses: [] };
        responses.push(topicResponse);
        const { topic, failure } = await lookUpTopic(broker.topics.byName(topicData.name));
        for (const pd of topicData.partitionData) {
          const out = partitionResponse(pd.index, ErrorCode.NONE);
          topicResponse.partitionResponses.push(out);
          const fail = (code: number, message: string | null = null): void => {
            out.errorCode = code;
            out.errorMessage = message;
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
            fail(ErrorCode[rejection.errorName], rejection.message);
            continue;
          }
          const maxMessageBytes = Number(effectiveTopicConfig('max.message.bytes', topic.configs, broker.config));
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
          // The epoch clients see in Metadata is 0; stamp it so fetch-side epoch checks agree.
          batch.setPartitionLeaderEpoch(0);
          let logAppendTime = -1;
          if (effectiveTopicConfig('message.timestamp.type', topic.configs, broker.config) === 'LogAppendTime') {
            logAppendTime = Date.now();
            batch.setMaxTimestamp(TimestampType.LOG_APPEND_TIME, logAppendTime);
          }
          const appended = broker.ingest.append({ topicId: topic.topicId, partition: pd.index }, batches).then(
            (outcome) => {
              const r = outcome.results[0]!;
              if (r.errorCode !== ErrorCode.NONE) {
                fail(r.errorCode);
                return;
              }
              out.baseOffset = BigInt(r.baseOffset);
              out.logAppendTimeMs = BigInt(logAppendTime);
              out.logStartOffset = BigInt(outcome.logStart);
            },
            (err: unknown) => fail(toKafkaErrorCode(err), (err as Error).message),
          );
          pending.push(appended);
        }
      }
    } finally {
      release();
    }
    if (acks === 0) {
      // Nothing is answered. As Kafka does, a failed partition closes the connection instead:
      // the only signal an acks=0 client gets, which makes it refresh metadata and reconnect.
      void Promise.all(pending).then(() => {
        const failed = responses.flatMap((t) => t.partitionResponses.filter((p) => p.errorCode !== ErrorCode.NONE).map((p) => `${t.name}-${p.index}: ${errorInfo(p.errorCode)?.name ?? p.errorCode}`));
        if (failed.length === 0) return;
        ctx.log.info({ failed }, 'acks=0 produce failed; closing the connection so the client notices');
        ctx.connection.close('acks=0 produce failed');
      });
      return NO_RESPONSE;
    }
    await Promise.all(pending);
    return { responses, throttleTimeMs: 0, nodeEndpoints: [] };
  },
});
