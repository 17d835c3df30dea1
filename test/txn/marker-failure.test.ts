/**
 * EndTxn when writing a marker fails (the object store refuses the put): the coordinator has
 * already persisted its decision (PrepareCommit), so the transaction must still end that way
 * — the client is told to retry with a retriable error, and the coordinator finishes the
 * markers itself even if the client never returns (Kafka's coordinator keeps retrying its
 * WriteTxnMarkers). A new producer instance arriving meanwhile must wait
 * (CONCURRENT_TRANSACTIONS, as Kafka answers InitProducerId in PrepareCommit) rather than
 * drop the decided transaction.
 *
 * In-process broker on the memory store, whose fault controller fails the puts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { uniqueTopic } from '../helpers/compat.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import type { MemoryObjectStore } from '../../src/storage/memory.js';
import { RawTxnProducer, readPartition, stableOffsets, waitSettled } from '../helpers/raw-txn.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let c: RawClient;
let store: MemoryObjectStore;

beforeAll(async () => {
  cluster = await startCluster({ storage: 'memory', brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'marker-failure-test');
  store = cluster.brokers[0]!.memoryStore!;
});

afterAll(async () => {
  store?.faults.reset();
  c?.close();
  await cluster?.stop();
});

/** A transaction with one record in each of two partitions, then an EndTxn(commit) whose marker puts fail. */
async function commitWithFailingMarkers(topic: string): Promise<{ p: RawTxnProducer; code: number }> {
  await createTopic(cluster.bootstrap, topic, 2);
  const p = new RawTxnProducer(c, `${topic}-tx`);
  await p.initOk(60_000);
  await p.addPartitionsOk(topic, [0, 1]);
  await p.produceOk(topic, 0, ['x0']);
  await p.produceOk(topic, 1, ['x1']);
  const stop = store.faults.failWhile((ctx) => ctx.op === 'put');
  try {
    return { p, code: await p.endTxn(true) };
  } finally {
    stop();
  }
}

const RETRIABLE_FOR_END_TXN: number[] = [ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR, ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS];

describe('EndTxn when a marker cannot be written', () => {
  it('answers a retriable error, and the coordinator completes the commit without the client', async () => {
    const topic = uniqueTopic('marker-fail-sweep');
    const { code } = await commitWithFailingMarkers(topic);
    expect.soft(RETRIABLE_FOR_END_TXN).toContain(code);
    await waitSettled(c, topic, 2, 'both partitions to settle with no further request', 10_000, 100);
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['x0']);
    expect((await readPartition(c, topic, 1, true)).map((r) => r.value)).toEqual(['x1']);
  });

  it('a new instance’s InitProducerId waits for the decided commit instead of dropping it', async () => {
    const topic = uniqueTopic('marker-fail-reinit');
    await commitWithFailingMarkers(topic);
    const next = new RawTxnProducer(c, `${topic}-tx`);
    const answers: number[] = [];
    await waitFor(
      'InitProducerId to stop answering CONCURRENT_TRANSACTIONS',
      async () => {
        const r = await next.init(60_000);
        answers.push(r.errorCode);
        return r.errorCode;
      },
      (code) => code !== ErrorCode.CONCURRENT_TRANSACTIONS,
      10_000,
      100,
    );
    expect(answers[answers.length - 1]).toBe(ErrorCode.NONE);
    // The new instance can use the partitions (CONCURRENT_TRANSACTIONS only until the old
    // transaction's markers are written)...
    const added = await waitFor(
      'AddPartitionsToTxn to stop answering CONCURRENT_TRANSACTIONS',
      () => next.addPartitions(topic, [0, 1]),
      (codes) => !codes.includes(ErrorCode.CONCURRENT_TRANSACTIONS),
      10_000,
      100,
    );
    expect.soft(added).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
    // ...and the decided commit happened on both partitions.
    await waitSettled(c, topic, 2, 'both partitions to settle', 10_000, 100);
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['x0']);
    expect((await readPartition(c, topic, 1, true)).map((r) => r.value)).toEqual(['x1']);
  });

  it('the client’s retried EndTxn completes the commit once the store is back', async () => {
    const topic = uniqueTopic('marker-fail-retry');
    const { p } = await commitWithFailingMarkers(topic);
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['x0']);
    expect((await readPartition(c, topic, 1, true)).map((r) => r.value)).toEqual(['x1']);
    expect(await stableOffsets(c, topic, 0)).toEqual({ hw: 2, lso: 2 });
  });
});
