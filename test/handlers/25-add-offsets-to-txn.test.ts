import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000', '--group-initial-rebalance-delay-ms', '0'] });
  c = await RawClient.connect(cluster.bootstrap, 'add-offsets-test');
  await createTopic(c, 'aot', 1);
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

describe('AddOffsetsToTxn', () => {
  it.each([0, 1, 2, 3, 4])('v%i starts the transaction for a group; adding it again is harmless', async (v) => {
    const id = `aot-v${v}`;
    const p = await producer(id);
    expect(await c.send(ApiKey.AddOffsetsToTxn, v, { transactionalId: id, producerId: BigInt(p.producerId), producerEpoch: p.producerEpoch, groupId: `g-${id}` })).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
    });
    expect(await state(id)).toBe('Ongoing');
    expect(await p.addOffsets(`g-${id}`, v)).toBe(ErrorCode.NONE);
    // A transaction holding only offsets ends like any other.
    expect(await p.endTxn(true)).toBe(ErrorCode.NONE);
    expect(await state(id)).toBe('CompleteCommit');
  });

  it('answers a fenced epoch with INVALID_PRODUCER_EPOCH (v0–1) and PRODUCER_FENCED (v2+)', async () => {
    const old = await producer('aot-fenced');
    await new RawTxnProducer(c, 'aot-fenced').initOk(30_000);
    for (const v of [0, 1]) expect(await old.addOffsets('g-fenced', v)).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    for (const v of [2, 3, 4]) expect(await old.addOffsets('g-fenced', v)).toBe(ErrorCode.PRODUCER_FENCED);
    expect(await state('aot-fenced')).toBe('Empty');
  });

  it('answers INVALID_PRODUCER_ID_MAPPING for another producer id, INVALID_GROUP_ID for an empty group id', async () => {
    const p = await producer('aot-mapping');
    const wrong = new RawTxnProducer(c, 'aot-mapping');
    wrong.producerId = p.producerId + 100;
    wrong.producerEpoch = p.producerEpoch;
    expect(await wrong.addOffsets('g-mapping')).toBe(ErrorCode.INVALID_PRODUCER_ID_MAPPING);
    expect(await p.addOffsets('')).toBe(ErrorCode.INVALID_GROUP_ID);
    expect(await state('aot-mapping')).toBe('Empty');
  });
});
