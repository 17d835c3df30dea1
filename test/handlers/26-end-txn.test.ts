import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer, fetchOnce, readPartition, stableOffsets } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'end-txn-test');
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

async function producer(id: string): Promise<RawTxnProducer> {
  const p = new RawTxnProducer(c, id);
  await p.initOk(30_000);
  return p;
}

async function state(id: string): Promise<string> {
  const r = await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: [id] });
  return r.transactionStates[0]!.transactionState;
}

/** Values a read_committed reader is given (aborted records dropped as a consumer drops them). */
async function committedValues(topic: string, partition: number): Promise<string[]> {
  return (await readPartition(c, topic, partition, true)).map((r) => r.value);
}

describe('EndTxn', () => {
  it.each([0, 1, 2, 3, 4])('v%i commit writes a COMMIT marker into every partition and makes the records stable', async (v) => {
    const topic = `end-commit-v${v}`;
    await createTopic(c, topic, 2);
    const p = await producer(topic);
    await p.addPartitionsOk(topic, [0, 1]);
    expect(await p.produceOk(topic, 0, ['a0', 'a1'])).toBe(0);
    expect(await p.produceOk(topic, 1, ['b0'])).toBe(0);
    expect(await stableOffsets(c, topic, 0)).toEqual({ hw: 2, lso: 0 });
    expect(await c.send(ApiKey.EndTxn, v, { transactionalId: topic, producerId: BigInt(p.producerId), producerEpoch: p.producerEpoch, committed: true })).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      producerId: -1n,
      producerEpoch: -1,
    });
    expect(await state(topic)).toBe('CompleteCommit');
    // The marker follows the data: offsets 2 and 1; the LSO is the high watermark again.
    const p0 = await fetchOnce(c, topic, 0, 0, false);
    expect(p0.records.map((r) => [r.offset, r.value])).toEqual([[0, 'a0'], [1, 'a1']]);
    expect(p0.markers).toEqual([{ offset: 2, producerId: p.producerId, abort: false }]);
    expect((await fetchOnce(c, topic, 1, 0, false)).markers).toEqual([{ offset: 1, producerId: p.producerId, abort: false }]);
    expect(await stableOffsets(c, topic, 0)).toEqual({ hw: 3, lso: 3 });
    expect(await stableOffsets(c, topic, 1)).toEqual({ hw: 2, lso: 2 });
    expect(await committedValues(topic, 0)).toEqual(['a0', 'a1']);
    expect(await committedValues(topic, 1)).toEqual(['b0']);
  });

  it('abort writes an ABORT marker; read_committed readers are told to drop the records', async () => {
    await createTopic(c, 'end-abort', 1);
    const p = await producer('end-abort');
    await p.addPartitionsOk('end-abort', [0]);
    await p.produceOk('end-abort', 0, ['x0', 'x1', 'x2']);
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
    expect(await state('end-abort')).toBe('CompleteAbort');
    const f = await fetchOnce(c, 'end-abort', 0, 0, true);
    expect(f.lastStableOffset).toBe(4);
    expect(f.abortedTransactions).toEqual([{ producerId: p.producerId, firstOffset: 0 }]);
    expect(f.markers).toEqual([{ offset: 3, producerId: p.producerId, abort: true }]);
    expect(await committedValues('end-abort', 0)).toEqual([]);
  });

  it('a retried EndTxn with the same outcome succeeds; the other outcome is INVALID_TXN_STATE', async () => {
    await createTopic(c, 'end-retry', 1);
    const p = await producer('end-retry');
    await p.addPartitionsOk('end-retry', [0]);
    await p.produceOk('end-retry', 0, ['r0']);
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await p.endTxn(false)).toBe(ErrorCode.INVALID_TXN_STATE);
    // The retry wrote no second marker.
    expect((await fetchOnce(c, 'end-retry', 0, 0, false)).markers).toEqual([{ offset: 1, producerId: p.producerId, abort: false }]);

    await p.addPartitionsOk('end-retry', [0]);
    await p.produceOk('end-retry', 0, ['r1']);
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
    expect(await p.endTxn(true)).toBe(ErrorCode.INVALID_TXN_STATE);
    expect(await committedValues('end-retry', 0)).toEqual(['r0']);
  });

  it('EndTxn with no transaction begun is INVALID_TXN_STATE', async () => {
    const p = await producer('end-empty');
    expect(await p.endTxn(true)).toBe(ErrorCode.INVALID_TXN_STATE);
    expect(await p.endTxn(false)).toBe(ErrorCode.INVALID_TXN_STATE);
    expect(await state('end-empty')).toBe('Empty');
  });

  it('answers a fenced epoch with INVALID_PRODUCER_EPOCH (v0–1) and PRODUCER_FENCED (v2+), and leaves the transaction alone', async () => {
    await createTopic(c, 'end-fenced', 1);
    const old = await producer('end-fenced');
    await old.addPartitionsOk('end-fenced', [0]);
    await old.produceOk('end-fenced', 0, ['zombie']);
    // A new instance: the old one's transaction is aborted with the new epoch.
    const current = await producer('end-fenced');
    for (const v of [0, 1]) expect(await old.endTxn(true, v)).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    for (const v of [2, 3, 4]) expect(await old.endTxn(true, v)).toBe(ErrorCode.PRODUCER_FENCED);
    expect(await state('end-fenced')).toBe('Empty');
    expect((await fetchOnce(c, 'end-fenced', 0, 0, false)).markers).toEqual([{ offset: 1, producerId: current.producerId, abort: true }]);
    expect(await committedValues('end-fenced', 0)).toEqual([]);
  });

  it('answers INVALID_PRODUCER_ID_MAPPING for an unknown transactional id', async () => {
    const ghost = new RawTxnProducer(c, 'end-never-initialised');
    ghost.producerId = 1;
    ghost.producerEpoch = 0;
    expect(await ghost.endTxn(true)).toBe(ErrorCode.INVALID_PRODUCER_ID_MAPPING);
  });
});
