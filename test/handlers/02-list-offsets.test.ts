/**
 * ListOffsets by timestamp when the batch holding the answer cannot be decoded (issue 14,
 * finding 6): a batch stored under a larger decompression limit than the answering broker's
 * used to earn UNKNOWN_SERVER_ERROR on every request. It is now answered from the batch header.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { parseBrokerConfig } from '../../src/config.js';
import { ErrorCode } from '../../wire/index.js';
import { Compression, encodeBatchSync } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { freePort } from '../helpers/redis.js';
import { createTopic } from '../helpers/topics.js';

const T0 = Date.now() - 60_000;
/** The second broker's limit; batch B expands to more than this. */
const SMALL_LIMIT = 1024 * 1024;

let cluster: Cluster;
let client: RawClient;
let strict: Broker;
let strictClient: RawClient;
const strictLog: Record<string, unknown>[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'timeline', 1);
  // A: offsets 0-1; B (gzip, expands to 1.5 MiB): offsets 2-3; C: offset 4.
  const batches = [
    encodeBatchSync([
      { value: Buffer.from('a0'), timestamp: T0 },
      { value: Buffer.from('a1'), timestamp: T0 + 1 },
    ]),
    encodeBatchSync(
      [
        { value: Buffer.from('b0'), timestamp: T0 + 10 },
        { value: Buffer.alloc(1536 * 1024, 'b'), timestamp: T0 + 20 },
      ],
      { compression: Compression.GZIP },
    ),
    encodeBatchSync([{ value: Buffer.from('c0'), timestamp: T0 + 30 }]),
  ];
  for (const records of batches) {
    const res = await client.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'timeline', partitionData: [{ index: 0, records }] }] });
    expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  }
  // A second broker on the same cluster whose limit batch B exceeds, logging to this test.
  const port = await freePort();
  const config = parseBrokerConfig(
    ['--redis', cluster.redis.url, '--storage', cluster.storageUrl, '--listen', `127.0.0.1:${port}`, '--flush-ms', '5', '--max-decompressed-batch-bytes', String(SMALL_LIMIT), '--log-retention-ms', '-1'],
    {},
  );
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      strictLog.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  strict = new Broker(config, pino({ level: 'warn' }, sink));
  await strict.start();
  strictClient = await RawClient.connect(`127.0.0.1:${port}`);
});

afterAll(async () => {
  strictClient?.close();
  client?.close();
  await strict?.stop();
  await cluster?.stop();
});

async function listOffset(c: RawClient, timestamp: number): Promise<{ errorCode: number; offset: bigint; timestamp: bigint }> {
  const res = await c.send(2, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: 'timeline', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: BigInt(timestamp), maxNumOffsets: 1 }] }],
    timeoutMs: 0,
  });
  const p = res.topics[0]!.partitions[0]!;
  return { errorCode: p.errorCode, offset: p.offset, timestamp: p.timestamp };
}

function undecodableWarnings(): Record<string, unknown>[] {
  return strictLog.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('list offsets could not decode the batch holding the answer'));
}

describe('ListOffsets by timestamp', () => {
  it('finds the exact record where the batch can be decoded', async () => {
    expect(await listOffset(client, T0 + 15)).toEqual({ errorCode: ErrorCode.NONE, offset: 3n, timestamp: BigInt(T0 + 20) });
    expect(await listOffset(client, T0)).toEqual({ errorCode: ErrorCode.NONE, offset: 0n, timestamp: BigInt(T0) });
    expect(await listOffset(client, T0 + 31)).toEqual({ errorCode: ErrorCode.NONE, offset: -1n, timestamp: -1n });
  });

  it('answers a batch over the decompression limit with its first offset and maxTimestamp, the same every time, with one warning each', async () => {
    // Was UNKNOWN_SERVER_ERROR on every request: the stored batch never gets smaller.
    const before = undecodableWarnings().length;
    expect(await listOffset(strictClient, T0 + 15)).toEqual({ errorCode: ErrorCode.NONE, offset: 2n, timestamp: BigInt(T0 + 20) });
    expect(await listOffset(strictClient, T0 + 15)).toEqual({ errorCode: ErrorCode.NONE, offset: 2n, timestamp: BigInt(T0 + 20) });
    const warnings = undecodableWarnings().slice(before);
    expect(warnings.map((w) => [w.level, w.topic, w.partition, w.offset, w.timestamp])).toEqual([
      [40, 'timeline', 0, 2, T0 + 20],
      [40, 'timeline', 0, 2, T0 + 20],
    ]);
    expect(warnings[0]!.err).toBe(`gzip data decodes to more than the ${SMALL_LIMIT}-byte decompression limit`);
  });

  it('still decodes the batches it can on that broker, without warnings', async () => {
    const before = undecodableWarnings().length;
    expect(await listOffset(strictClient, T0 + 1)).toEqual({ errorCode: ErrorCode.NONE, offset: 1n, timestamp: BigInt(T0 + 1) });
    expect(await listOffset(strictClient, T0 + 25)).toEqual({ errorCode: ErrorCode.NONE, offset: 4n, timestamp: BigInt(T0 + 30) });
    expect(undecodableWarnings().length).toBe(before);
  });

  it('answers from the log start when DeleteRecords cut into the undecodable batch', async () => {
    const res = await client.send(21, 2, { topics: [{ name: 'timeline', partitions: [{ partitionIndex: 0, offset: 3n }] }], timeoutMs: 5000 });
    expect(res.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await listOffset(client, T0 + 5)).toEqual({ errorCode: ErrorCode.NONE, offset: 3n, timestamp: BigInt(T0 + 20) });
    expect(await listOffset(strictClient, T0 + 5)).toEqual({ errorCode: ErrorCode.NONE, offset: 3n, timestamp: BigInt(T0 + 20) });
  });
});
