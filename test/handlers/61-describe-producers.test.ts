import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type DescribeProducersResponseProducerState } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produce } from '../helpers/topics.js';
import { RawTxnProducer } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'describe-producers-test');
  await createTopic(c, 'dp', 2);
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

async function describeProducers(topics: { name: string; partitionIndexes: number[] }[]) {
  return c.send(ApiKey.DescribeProducers, 0, { topics });
}

/** Active producers of dp/`partition`, ordered by producer id. */
async function active(partition: number): Promise<DescribeProducersResponseProducerState[]> {
  const r = await describeProducers([{ name: 'dp', partitionIndexes: [partition] }]);
  const p = r.topics[0]!.partitions[0]!;
  expect(p.errorCode).toBe(ErrorCode.NONE);
  return [...p.activeProducers].sort((a, b) => Number(a.producerId - b.producerId));
}

/** Runs `action` and returns the wall-clock interval around it, in ms. */
async function timed(action: () => Promise<unknown>): Promise<[bigint, bigint]> {
  const before = BigInt(Date.now());
  await action();
  return [before, BigInt(Date.now())];
}

/**
 * A producer as DescribeProducers should show it; `committedWithin` is the interval its latest
 * batch was committed in (its lastTimestamp), or an exact value.
 */
const state = (
  producerId: number,
  producerEpoch: number,
  lastSequence: number,
  currentTxnStartOffset: number,
  committedWithin: [bigint, bigint] | bigint,
): DescribeProducersResponseProducerState => ({
  producerId: BigInt(producerId),
  producerEpoch,
  lastSequence,
  lastTimestamp: typeof committedWithin === 'bigint'
    ? committedWithin
    : (expect.toSatisfy((t: bigint) => t >= committedWithin[0] && t <= committedWithin[1], `committed within ${committedWithin.join('..')}`) as bigint),
  coordinatorEpoch: 0,
  currentTxnStartOffset: BigInt(currentTxnStartOffset),
});

describe('DescribeProducers', () => {
  it('lists idempotent and transactional producers with epoch, last sequence and open transaction start', async () => {
    expect(await active(0)).toEqual([]);
    const init = await c.send(ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: -1, producerId: -1n, producerEpoch: -1 });
    const idem = Number(init.producerId);
    expect((await produce(c, 'dp', 0, ['i0', 'i1', 'i2'], { producerId: idem, producerEpoch: 0, baseSequence: 0 })).errorCode).toBe(ErrorCode.NONE);
    const idemAt = await timed(async () => {
      expect((await produce(c, 'dp', 0, ['i3', 'i4'], { producerId: idem, producerEpoch: 0, baseSequence: 3 })).errorCode).toBe(ErrorCode.NONE);
    });
    const [idemShown] = await active(0);
    expect([idemShown]).toEqual([state(idem, 0, 4, -1, idemAt)]);
    const idemStamp = idemShown!.lastTimestamp;

    const txn = new RawTxnProducer(c, 'dp-txn');
    await txn.initOk(30_000);
    await txn.addPartitionsOk('dp', [0]);
    expect(await txn.produceOk('dp', 0, ['t0', 't1'])).toBe(5);
    const txnAt = await timed(async () => expect(await txn.produceOk('dp', 0, ['t2'])).toBe(7));
    const byId = (a: DescribeProducersResponseProducerState, b: DescribeProducersResponseProducerState): number => Number(a.producerId - b.producerId);
    expect(await active(0)).toEqual([state(idem, 0, 4, -1, idemStamp), state(txn.producerId, txn.producerEpoch, 2, 5, txnAt)].sort(byId));
    // The commit marker is the transactional producer's latest batch.
    const markerAt = await timed(async () => expect(await txn.endTxn(true)).toBe(ErrorCode.NONE));
    expect(await active(0)).toEqual([state(idem, 0, 4, -1, idemStamp), state(txn.producerId, txn.producerEpoch, 2, -1, markerAt)].sort(byId));
    // Partition 1 saw none of them.
    expect(await active(1)).toEqual([]);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION per unknown partition and topic, in request order', async () => {
    const r = await describeProducers([
      { name: 'dp', partitionIndexes: [5, 1] },
      { name: 'dp-no-such-topic', partitionIndexes: [0] },
    ]);
    expect(r).toEqual({
      throttleTimeMs: 0,
      topics: [
        {
          name: 'dp',
          partitions: [
            { partitionIndex: 5, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null, activeProducers: [] },
            { partitionIndex: 1, errorCode: ErrorCode.NONE, errorMessage: null, activeProducers: [] },
          ],
        },
        { name: 'dp-no-such-topic', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null, activeProducers: [] }] },
      ],
    });
  });
});
