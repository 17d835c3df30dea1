/**
 * Fetch under read_committed (KIP-98) against transactions driven over RawClient: the answer
 * stops at the LSO (the first offset of the oldest open transaction), reports the LSO, and
 * lists the aborted transactions overlapping the returned batches so the client can drop
 * them; read_uncommitted reads to the high watermark and gets no aborted list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produceOk } from '../helpers/topics.js';
import { RawTxnProducer, committedRecords, fetchOnce, readPartition, stableOffsets } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'read-committed-test');
  await createTopic(c, 'rc', 1);
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

async function txnProducer(id: string): Promise<RawTxnProducer> {
  const p = new RawTxnProducer(c, id);
  await p.initOk(30_000);
  await p.addPartitionsOk('rc', [0]);
  return p;
}

const offsetsOf = (records: { offset: number }[]): number[] => records.map((r) => r.offset);

describe('Fetch read_committed', () => {
  it('stops at the LSO, lists aborted transactions, and lets the reader drop exactly their records', async () => {
    // 0-1 plain, 2-3 transaction A (open), 4 plain.
    expect(await produceOk(c, 'rc', 0, ['n0', 'n1'])).toBe(0n);
    const a = await txnProducer('rc-a');
    expect(await a.produceOk('rc', 0, ['a0', 'a1'])).toBe(2);
    expect(await produceOk(c, 'rc', 0, ['n2'])).toBe(4n);

    const open = await fetchOnce(c, 'rc', 0, 0, true);
    expect(open.errorCode).toBe(ErrorCode.NONE);
    expect([open.highWatermark, open.lastStableOffset]).toEqual([5, 2]);
    expect(offsetsOf(open.records)).toEqual([0, 1]);
    expect(open.abortedTransactions).toEqual([]);
    // At the LSO itself: nothing yet, no error.
    const atLso = await fetchOnce(c, 'rc', 0, 2, true);
    expect([atLso.errorCode, atLso.records.length, atLso.lastStableOffset]).toEqual([ErrorCode.NONE, 0, 2]);
    // read_uncommitted: everything to the high watermark, and no aborted list at all.
    const uncommitted = await fetchOnce(c, 'rc', 0, 0, false);
    expect(offsetsOf(uncommitted.records)).toEqual([0, 1, 2, 3, 4]);
    expect([uncommitted.lastStableOffset, uncommitted.abortedTransactions]).toEqual([2, null]);

    // A aborts: marker at 5. The batches come back with the aborted range listed.
    expect(await a.endTxn(false)).toBe(ErrorCode.NONE);
    const aborted = await fetchOnce(c, 'rc', 0, 0, true);
    expect([aborted.highWatermark, aborted.lastStableOffset]).toEqual([6, 6]);
    expect(offsetsOf(aborted.records)).toEqual([0, 1, 2, 3, 4]);
    expect(aborted.markers).toEqual([{ offset: 5, producerId: a.producerId, abort: true }]);
    expect(aborted.abortedTransactions).toEqual([{ producerId: a.producerId, firstOffset: 2 }]);
    expect(committedRecords(aborted).map((r) => r.value)).toEqual(['n0', 'n1', 'n2']);
    // A fetch starting inside the aborted range still gets it; one after the marker does not.
    expect((await fetchOnce(c, 'rc', 0, 3, true)).abortedTransactions).toEqual([{ producerId: a.producerId, firstOffset: 2 }]);

    // 6 B (committed below), 7 C (open), 8 B's commit marker: the LSO waits for C.
    const b = await txnProducer('rc-b');
    const cc = await txnProducer('rc-c');
    expect(await b.produceOk('rc', 0, ['b0'])).toBe(6);
    expect(await cc.produceOk('rc', 0, ['c0'])).toBe(7);
    expect(await b.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await stableOffsets(c, 'rc', 0)).toEqual({ hw: 9, lso: 7 });
    const afterB = await fetchOnce(c, 'rc', 0, 6, true);
    expect(offsetsOf(afterB.records)).toEqual([6]);
    expect(afterB.abortedTransactions).toEqual([]);
    expect((await readPartition(c, 'rc', 0, true)).map((r) => r.value)).toEqual(['n0', 'n1', 'n2', 'b0']);

    // C commits: everything stable, A's records still dropped.
    expect(await cc.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await stableOffsets(c, 'rc', 0)).toEqual({ hw: 10, lso: 10 });
    expect((await readPartition(c, 'rc', 0, true)).map((r) => r.value)).toEqual(['n0', 'n1', 'n2', 'b0', 'c0']);
    expect((await readPartition(c, 'rc', 0, false)).map((r) => r.value)).toEqual(['n0', 'n1', 'a0', 'a1', 'n2', 'b0', 'c0']);
  });

  it('a transaction opened on a partition but not yet written to does not hold the LSO', async () => {
    await createTopic(c, 'rc-empty-open', 1);
    const p = new RawTxnProducer(c, 'rc-empty-open');
    await p.initOk(30_000);
    await p.addPartitionsOk('rc-empty-open', [0]);
    expect(await produceOk(c, 'rc-empty-open', 0, ['plain'])).toBe(0n);
    expect(await stableOffsets(c, 'rc-empty-open', 0)).toEqual({ hw: 1, lso: 1 });
    expect(await p.produceOk('rc-empty-open', 0, ['t'])).toBe(1);
    expect(await stableOffsets(c, 'rc-empty-open', 0)).toEqual({ hw: 2, lso: 1 });
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await stableOffsets(c, 'rc-empty-open', 0)).toEqual({ hw: 3, lso: 3 });
  });
});
