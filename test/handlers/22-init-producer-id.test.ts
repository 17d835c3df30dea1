import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produce } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'idempotent', 1);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

const fresh = { transactionalId: null, transactionTimeoutMs: -1, producerId: -1n, producerEpoch: -1 };

describe('InitProducerId', () => {
  // A fresh Redis hands out the first block, 0–999, one id at a time.
  it('v0 gives an idempotent producer a new id at epoch 0', async () => {
    expect(await client.send(22, 0, fresh)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 0n, producerEpoch: 0 });
    expect(await client.send(22, 0, fresh)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 1n, producerEpoch: 0 });
  });

  it('v4 without a current id gives a new id', async () => {
    expect(await client.send(22, 4, fresh)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 2n, producerEpoch: 0 });
  });

  it('v5 with the current id and epoch bumps the epoch and keeps the id (KIP-360)', async () => {
    const res = await client.send(22, 5, { ...fresh, producerId: 2n, producerEpoch: 0 });
    expect(res).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 2n, producerEpoch: 1 });
  });

  it('the producer continues at the bumped epoch from sequence 0, and the old epoch is fenced', async () => {
    const first = await client.send(22, 5, fresh);
    const pid = Number(first.producerId);
    expect(await produce(client, 'idempotent', 0, ['a', 'b'], { producerId: pid, producerEpoch: 0, baseSequence: 0 })).toEqual({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    const bumped = await client.send(22, 5, { ...fresh, producerId: first.producerId, producerEpoch: 0 });
    expect(bumped).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
    expect(await produce(client, 'idempotent', 0, ['c'], { producerId: pid, producerEpoch: 1, baseSequence: 0 })).toEqual({ errorCode: ErrorCode.NONE, baseOffset: 2n });
    expect(await produce(client, 'idempotent', 0, ['d'], { producerId: pid, producerEpoch: 0, baseSequence: 2 })).toEqual({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1n });
  });

  it('an epoch that would pass 32767 gets a new id at epoch 0', async () => {
    expect(await client.send(22, 3, { ...fresh, producerId: 0n, producerEpoch: 32766 })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 0n, producerEpoch: 32767 });
    expect(await client.send(22, 3, { ...fresh, producerId: 0n, producerEpoch: 32767 })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 4n, producerEpoch: 0 });
  });

  it('an id the cluster has not handed out is not bumped: it gets a new id', async () => {
    expect(await client.send(22, 5, { ...fresh, producerId: 5_000_000n, producerEpoch: 3 })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: 5n, producerEpoch: 0 });
  });

  it('gives a transactional id a producer id at epoch 0, then bumps the epoch on every init', async () => {
    const first = await client.send(22, 0, { ...fresh, transactionalId: 'txn-init-1', transactionTimeoutMs: 60000 });
    expect(first).toMatchObject({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerEpoch: 0 });
    expect(first.producerId >= 0n).toBe(true);
    const second = await client.send(22, 5, { ...fresh, transactionalId: 'txn-init-1', transactionTimeoutMs: 60000 });
    expect(second).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
  });

  it('refuses a transaction timeout above transaction.max.timeout.ms with INVALID_TRANSACTION_TIMEOUT', async () => {
    expect(await client.send(22, 4, { ...fresh, transactionalId: 'txn-init-2', transactionTimeoutMs: 900001 })).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.INVALID_TRANSACTION_TIMEOUT,
      producerId: -1n,
      producerEpoch: -1,
    });
  });

  it('refuses an empty transactional id with INVALID_REQUEST', async () => {
    expect(await client.send(22, 2, { ...fresh, transactionalId: '' })).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 });
  });
});
