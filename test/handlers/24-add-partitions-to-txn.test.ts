import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer, stableOffsets } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'add-partitions-test');
  await createTopic(c, 'apt', 3);
  await createTopic(c, 'apt-other', 1);
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

/** The transaction's state and partitions as DescribeTransactions reports them. */
async function described(id: string): Promise<{ state: string; topics: { topic: string; partitions: number[] }[] }> {
  const r = await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: [id] });
  const t = r.transactionStates[0]!;
  return { state: t.transactionState, topics: t.topics.map((x) => ({ topic: x.topic, partitions: [...x.partitions].sort((a, b) => a - b) })) };
}

describe('AddPartitionsToTxn', () => {
  it.each([0, 1, 2, 3])('v%i adds partitions and starts the transaction; adding one again is harmless', async (v) => {
    const id = `apt-v${v}`;
    const p = await producer(id);
    expect(await described(id)).toEqual({ state: 'Empty', topics: [] });
    expect(await p.addPartitions('apt', [0, 2], v)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
    expect(await described(id)).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt', partitions: [0, 2] }] });
    expect(await p.addPartitions('apt', [2, 1], v)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
    expect(await described(id)).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt', partitions: [0, 1, 2] }] });
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
  });

  it('answers the exact response shape, per topic and partition in request order', async () => {
    const p = await producer('apt-shape');
    const r = await c.send(ApiKey.AddPartitionsToTxn, 3, {
      transactions: [],
      v3AndBelowTransactionalId: 'apt-shape',
      v3AndBelowProducerId: BigInt(p.producerId),
      v3AndBelowProducerEpoch: p.producerEpoch,
      v3AndBelowTopics: [
        { name: 'apt-other', partitions: [0] },
        { name: 'apt', partitions: [2, 0] },
      ],
    });
    expect(r).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      resultsByTransaction: [],
      resultsByTopicV3AndBelow: [
        { name: 'apt-other', resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: ErrorCode.NONE }] },
        { name: 'apt', resultsByPartition: [{ partitionIndex: 2, partitionErrorCode: ErrorCode.NONE }, { partitionIndex: 0, partitionErrorCode: ErrorCode.NONE }] },
      ],
    });
    expect(await described('apt-shape')).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt-other', partitions: [0] }, { topic: 'apt', partitions: [0, 2] }] });
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
  });

  it('refuses the whole request when a partition is unknown: UNKNOWN_TOPIC_OR_PARTITION there, OPERATION_NOT_ATTEMPTED elsewhere', async () => {
    const p = await producer('apt-unknown');
    const r = await c.send(ApiKey.AddPartitionsToTxn, 3, {
      transactions: [],
      v3AndBelowTransactionalId: 'apt-unknown',
      v3AndBelowProducerId: BigInt(p.producerId),
      v3AndBelowProducerEpoch: p.producerEpoch,
      v3AndBelowTopics: [
        { name: 'apt', partitions: [0, 3] },
        { name: 'no-such-topic', partitions: [0] },
        { name: 'apt-other', partitions: [0] },
      ],
    });
    expect(r.resultsByTopicV3AndBelow).toEqual([
      { name: 'apt', resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: ErrorCode.OPERATION_NOT_ATTEMPTED }, { partitionIndex: 3, partitionErrorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      { name: 'no-such-topic', resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      { name: 'apt-other', resultsByPartition: [{ partitionIndex: 0, partitionErrorCode: ErrorCode.OPERATION_NOT_ATTEMPTED }] },
    ]);
    // Nothing was added: the transaction did not start, and apt/0 still refuses its batches.
    expect(await described('apt-unknown')).toEqual({ state: 'Empty', topics: [] });
    expect((await p.produce('apt', 0, ['never'])).errorCode).toBe(ErrorCode.INVALID_TXN_STATE);
  });

  it('answers a fenced epoch with INVALID_PRODUCER_EPOCH (v0–1) and PRODUCER_FENCED (v2+)', async () => {
    const old = await producer('apt-fenced');
    const current = new RawTxnProducer(c, 'apt-fenced');
    await current.initOk(30_000);
    expect(current.producerId).toBe(old.producerId);
    expect(current.producerEpoch).toBe(old.producerEpoch + 1);
    for (const v of [0, 1]) expect(await old.addPartitions('apt', [0], v)).toEqual([ErrorCode.INVALID_PRODUCER_EPOCH]);
    for (const v of [2, 3]) expect(await old.addPartitions('apt', [0], v)).toEqual([ErrorCode.PRODUCER_FENCED]);
    expect(await described('apt-fenced')).toEqual({ state: 'Empty', topics: [] });
  });

  it('answers INVALID_PRODUCER_ID_MAPPING for a producer id the transactional id does not have', async () => {
    const p = await producer('apt-mapping');
    const wrong = new RawTxnProducer(c, 'apt-mapping');
    wrong.producerId = p.producerId + 100;
    wrong.producerEpoch = p.producerEpoch;
    expect(await wrong.addPartitions('apt', [0])).toEqual([ErrorCode.INVALID_PRODUCER_ID_MAPPING]);
    const never = new RawTxnProducer(c, 'apt-never-initialised');
    never.producerId = p.producerId;
    never.producerEpoch = 0;
    expect(await never.addPartitions('apt', [0])).toEqual([ErrorCode.INVALID_PRODUCER_ID_MAPPING]);
  });

  it('v4 batches several transactions; verifyOnly checks without adding', async () => {
    const a = await producer('apt-v4-a');
    const b = await producer('apt-v4-b');
    const tx = (p: RawTxnProducer, verifyOnly: boolean, partitions: number[]) => ({
      transactionalId: p.transactionalId,
      producerId: BigInt(p.producerId),
      producerEpoch: p.producerEpoch,
      verifyOnly,
      topics: [{ name: 'apt', partitions }],
    });
    const result = (id: string, codes: [number, number][]) => ({
      transactionalId: id,
      topicResults: [{ name: 'apt', resultsByPartition: codes.map(([partitionIndex, partitionErrorCode]) => ({ partitionIndex, partitionErrorCode })) }],
    });
    const send = (transactions: ReturnType<typeof tx>[]) =>
      c.send(ApiKey.AddPartitionsToTxn, 4, { transactions, v3AndBelowTransactionalId: '', v3AndBelowProducerId: 0n, v3AndBelowProducerEpoch: 0, v3AndBelowTopics: [] });

    // verifyOnly before anything was added: not part of a transaction.
    expect(await send([tx(a, true, [0])])).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction: [result('apt-v4-a', [[0, ErrorCode.INVALID_TXN_STATE]])], resultsByTopicV3AndBelow: [] });
    expect(await described('apt-v4-a')).toEqual({ state: 'Empty', topics: [] });

    const added = await send([tx(a, false, [0, 1]), tx(b, false, [2])]);
    expect(added.resultsByTransaction).toEqual([result('apt-v4-a', [[0, ErrorCode.NONE], [1, ErrorCode.NONE]]), result('apt-v4-b', [[2, ErrorCode.NONE]])]);
    expect(await described('apt-v4-a')).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt', partitions: [0, 1] }] });
    expect(await described('apt-v4-b')).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt', partitions: [2] }] });

    const verified = await send([tx(a, true, [1, 2]), tx(b, true, [2])]);
    expect(verified.resultsByTransaction).toEqual([result('apt-v4-a', [[1, ErrorCode.NONE], [2, ErrorCode.INVALID_TXN_STATE]]), result('apt-v4-b', [[2, ErrorCode.NONE]])]);
    // verifyOnly added nothing.
    expect(await described('apt-v4-a')).toEqual({ state: 'Ongoing', topics: [{ topic: 'apt', partitions: [0, 1] }] });

    // A fenced epoch in a batched request: PRODUCER_FENCED for that transaction only.
    const a2 = new RawTxnProducer(c, 'apt-v4-a');
    a2.producerId = a.producerId;
    a2.producerEpoch = a.producerEpoch;
    await a2.initOk(30_000);
    const fenced = await send([tx(a, false, [2]), tx(b, false, [1])]);
    expect(fenced.resultsByTransaction).toEqual([result('apt-v4-a', [[2, ErrorCode.PRODUCER_FENCED]]), result('apt-v4-b', [[1, ErrorCode.NONE]])]);
    expect(await b.endTxn(false)).toBe(ErrorCode.NONE);
  });

  it('a transactional batch for a partition not added to the transaction is INVALID_TXN_STATE (server-side defence)', async () => {
    const p = await producer('apt-defence');
    expect(await p.produce('apt', 1, ['before-any-add'])).toEqual({ errorCode: ErrorCode.INVALID_TXN_STATE, baseOffset: -1 });
    const before = await stableOffsets(c, 'apt', 1);
    await p.addPartitionsOk('apt', [0]);
    // Added apt/0 only: apt/1 still refuses, apt/0 accepts.
    expect(await p.produce('apt', 1, ['not-added'])).toEqual({ errorCode: ErrorCode.INVALID_TXN_STATE, baseOffset: -1 });
    expect((await p.produce('apt', 0, ['added'])).errorCode).toBe(ErrorCode.NONE);
    expect(await stableOffsets(c, 'apt', 1)).toEqual(before);
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    // After the commit apt/0 is closed again until the next AddPartitionsToTxn.
    expect((await p.produce('apt', 0, ['after-commit'])).errorCode).toBe(ErrorCode.INVALID_TXN_STATE);
  });
});
