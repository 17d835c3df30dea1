/**
 * transaction.timeout.ms: a producer that begins a transaction, writes and dies (no EndTxn)
 * holds read_committed readers back — the LSO stays at its first record — only until its
 * timeout; then the coordinator aborts the transaction with a bumped epoch, the LSO moves to
 * the high watermark, the records never become visible read_committed, and the dead
 * instance is fenced if it comes back.
 *
 * The only timing check is a lower bound (the abort cannot come before the timeout); waits
 * for the abort are bounded but generous.
 */
import kafkajs, { type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { uniqueTopic } from '../helpers/compat.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produceOk } from '../helpers/topics.js';
import { RawTxnProducer, fetchOnce, readPartition, stableOffsets } from '../helpers/raw-txn.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const TIMEOUT_MS = 3000;

let cluster: Cluster;
let c: RawClient;
const producers: Producer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'timeout-test');
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  c?.close();
  await cluster?.stop();
});

/** Polls until the partition's LSO reaches its high watermark (bounded); returns when it did. */
async function untilStable(topic: string, partition: number, timeoutMs = 30_000): Promise<number> {
  await waitFor(`the LSO of ${topic}/${partition} to reach its high watermark`, () => stableOffsets(c, topic, partition), (o) => o.lso === o.hw, timeoutMs, 50);
  return Date.now();
}

describe('transaction timeout', () => {
  it('a dead producer holds the LSO until its timeout; then its transaction is aborted and it is fenced', async () => {
    const topic = uniqueTopic('txn-timeout');
    await createTopic(cluster.bootstrap, topic, 2);
    expect(await produceOk(c, topic, 0, ['plain-before'])).toBe(0n);

    const dc = await RawClient.connect(cluster.bootstrap, 'dying-producer');
    const dead = new RawTxnProducer(dc, `${topic}-tx`);
    await dead.initOk(TIMEOUT_MS);
    const startedAt = Date.now();
    await dead.addPartitionsOk(topic, [0, 1]);
    expect(await dead.produceOk(topic, 0, ['dead-0a', 'dead-0b'])).toBe(1);
    expect(await dead.produceOk(topic, 1, ['dead-1'])).toBe(0);
    // The producer dies: its connection goes, no EndTxn is ever sent.
    dc.close();
    expect(await produceOk(c, topic, 0, ['plain-after'])).toBe(3n);

    // Blocked: read_committed readers stop at the dead transaction's first record.
    expect(await stableOffsets(c, topic, 0)).toEqual({ hw: 4, lso: 1 });
    expect(await stableOffsets(c, topic, 1)).toEqual({ hw: 1, lso: 0 });
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['plain-before']);

    const stableAt = Math.max(await untilStable(topic, 0), await untilStable(topic, 1));
    // Not before the timeout (a lower bound only; the sweep may take a while after it).
    expect(stableAt - startedAt).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);

    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['plain-before', 'plain-after']);
    expect(await readPartition(c, topic, 1, true)).toEqual([]);
    // The abort markers carry the bumped epoch.
    const described = await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: [`${topic}-tx`] });
    expect(described.transactionStates.map((t) => [t.errorCode, t.transactionState, Number(t.producerId), t.producerEpoch])).toEqual([
      [ErrorCode.NONE, 'CompleteAbort', dead.producerId, dead.producerEpoch + 1],
    ]);
    expect((await fetchOnce(c, topic, 0, 0, false)).markers).toEqual([{ offset: 4, producerId: dead.producerId, abort: true }]);
    expect((await fetchOnce(c, topic, 1, 0, false)).markers).toEqual([{ offset: 1, producerId: dead.producerId, abort: true }]);

    // The dead instance comes back with its old epoch: fenced everywhere.
    dead.client = c;
    expect(await dead.produce(topic, 0, ['dead-0c'])).toEqual({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 });
    expect(await dead.addPartitions(topic, [0])).toEqual([ErrorCode.PRODUCER_FENCED]);
    expect(await dead.endTxn(true)).toBe(ErrorCode.PRODUCER_FENCED);
    expect(await dead.endTxn(true, 1)).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['plain-before', 'plain-after']);
  });

  it('kafkajs: a transaction left open past its timeout cannot be committed, and stays invisible', async () => {
    const topic = uniqueTopic('txn-timeout-kafkajs');
    await createTopic(cluster.bootstrap, topic, 1);
    const kafka = new Kafka({ clientId: 'timeout-kafkajs', brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
    const producer = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: TIMEOUT_MS, allowAutoTopicCreation: false });
    producers.push(producer);
    await producer.connect();
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ partition: 0, value: 'too-late' }] });
    expect(await stableOffsets(c, topic, 0)).toEqual({ hw: 1, lso: 0 });
    await untilStable(topic, 0);
    const err = await txn.commit().then(
      () => null,
      (e: unknown) => e as { type?: string; message?: string },
    );
    expect(err?.type).toBe('INVALID_PRODUCER_EPOCH');
    expect(await readPartition(c, topic, 0, true)).toEqual([]);
    expect((await fetchOnce(c, topic, 0, 0, false)).markers.map((m) => m.abort)).toEqual([true]);
  });
});
