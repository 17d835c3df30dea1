import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type DescribeTransactionsResponseTransactionState } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'describe-transactions-test');
  await createTopic(c, 'dt-a', 3);
  await createTopic(c, 'dt-b', 1);
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

async function describeOne(id: string): Promise<DescribeTransactionsResponseTransactionState> {
  const r = await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: [id] });
  expect(r.throttleTimeMs).toBe(0);
  expect(r.transactionStates).toHaveLength(1);
  const t = r.transactionStates[0]!;
  return { ...t, topics: t.topics.map((x) => ({ topic: x.topic, partitions: [...x.partitions].sort((a, b) => a - b) })) };
}

describe('DescribeTransactions', () => {
  it('answers TRANSACTIONAL_ID_NOT_FOUND for an id never initialised', async () => {
    expect(await describeOne('dt-unknown')).toEqual({
      errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
      transactionalId: 'dt-unknown',
      transactionState: '',
      transactionTimeoutMs: 0,
      transactionStartTimeMs: -1n,
      producerId: -1n,
      producerEpoch: -1,
      topics: [],
    });
  });

  it('follows one transactional id through Empty, Ongoing and CompleteCommit', async () => {
    const p = new RawTxnProducer(c, 'dt-life');
    await p.initOk(12_345);
    const base = { errorCode: ErrorCode.NONE, transactionalId: 'dt-life', transactionTimeoutMs: 12_345, producerId: BigInt(p.producerId), producerEpoch: 0 };
    expect(await describeOne('dt-life')).toEqual({ ...base, transactionState: 'Empty', transactionStartTimeMs: -1n, topics: [] });

    const before = Date.now();
    await p.addPartitionsOk('dt-a', [2, 0]);
    const after = Date.now();
    await p.addPartitionsOk('dt-b', [0]);
    const ongoing = await describeOne('dt-life');
    expect({ ...ongoing, transactionStartTimeMs: 0n }).toEqual({
      ...base,
      transactionState: 'Ongoing',
      transactionStartTimeMs: 0n,
      topics: [
        { topic: 'dt-a', partitions: [0, 2] },
        { topic: 'dt-b', partitions: [0] },
      ],
    });
    // The start is the first AddPartitionsToTxn, not the later one.
    expect(Number(ongoing.transactionStartTimeMs)).toBeGreaterThanOrEqual(before);
    expect(Number(ongoing.transactionStartTimeMs)).toBeLessThanOrEqual(after);

    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await describeOne('dt-life')).toEqual({ ...base, transactionState: 'CompleteCommit', transactionStartTimeMs: -1n, topics: [] });

    // A new instance: same producer id, epoch 1, its own timeout.
    const again = new RawTxnProducer(c, 'dt-life');
    await again.initOk(23_456);
    expect(await describeOne('dt-life')).toEqual({ ...base, transactionTimeoutMs: 23_456, producerEpoch: 1, transactionState: 'Empty', transactionStartTimeMs: -1n, topics: [] });
  });

  it('answers several ids in request order, CompleteAbort after an abort', async () => {
    const p = new RawTxnProducer(c, 'dt-aborted');
    await p.initOk(30_000);
    await p.addPartitionsOk('dt-b', [0]);
    expect(await p.endTxn(false)).toBe(ErrorCode.NONE);
    const r = await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: ['dt-nope', 'dt-aborted'] });
    expect(r.transactionStates.map((t) => [t.transactionalId, t.errorCode, t.transactionState, t.producerId])).toEqual([
      ['dt-nope', ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, '', -1n],
      ['dt-aborted', ErrorCode.NONE, 'CompleteAbort', BigInt(p.producerId)],
    ]);
  });
});
