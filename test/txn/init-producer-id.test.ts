/**
 * InitProducerId (key 22) with a transactional id, through the transaction coordinator
 * (src/txn/coordinator.ts): new ids, epoch bumps that fence older instances and abort their
 * open transaction, KIP-360 continuation, the timeout limit and epoch exhaustion.
 *
 * These belong with test/handlers/22-init-producer-id.test.ts (the non-transactional half).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer, fetchOnce, readPartition } from '../helpers/raw-txn.js';

const MAX_TIMEOUT_MS = 60_000;

let cluster: Cluster;
let c: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', String(MAX_TIMEOUT_MS)] });
  c = await RawClient.connect(cluster.bootstrap, 'init-txn-test');
  await createTopic(c, 'ipi', 1);
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

const init = (version: number, transactionalId: string, transactionTimeoutMs: number, producerId = -1n, producerEpoch = -1) =>
  c.send(ApiKey.InitProducerId, version, { transactionalId, transactionTimeoutMs, producerId, producerEpoch });

describe('InitProducerId with a transactional id', () => {
  it.each([0, 1, 2, 3, 4, 5])('v%i: a new id starts at epoch 0; each later init bumps the epoch of the same id', async (v) => {
    const id = `ipi-new-v${v}`;
    const first = await init(v, id, 10_000);
    expect(first).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 0 });
    expect(first.producerId).toBeGreaterThanOrEqual(0n);
    expect(await init(v, id, 10_000)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
    expect(await init(v, id, 10_000)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 2 });
  });

  it('different transactional ids get different producer ids', async () => {
    const a = await init(4, 'ipi-distinct-a', 10_000);
    const b = await init(4, 'ipi-distinct-b', 10_000);
    expect(a.errorCode).toBe(ErrorCode.NONE);
    expect(b.errorCode).toBe(ErrorCode.NONE);
    expect(a.producerId).not.toBe(b.producerId);
  });

  it('answers INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms and for a timeout ≤ 0', async () => {
    for (const timeout of [MAX_TIMEOUT_MS + 1, 0, -1]) {
      expect(await init(4, 'ipi-timeout', timeout)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.INVALID_TRANSACTION_TIMEOUT, producerId: -1n, producerEpoch: -1 });
    }
    expect((await init(4, 'ipi-timeout', MAX_TIMEOUT_MS)).errorCode).toBe(ErrorCode.NONE);
  });

  it('v3+ with the current id and epoch continues (KIP-360); with a stale pair it is fenced', async () => {
    const first = await init(4, 'ipi-kip360', 10_000);
    const bumped = await init(4, 'ipi-kip360', 10_000, first.producerId, 0);
    expect(bumped).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
    expect(await init(4, 'ipi-kip360', 10_000, first.producerId, 1)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 2 });
    // Epoch 0 is older than the previous instance's: a zombie.
    expect(await init(4, 'ipi-kip360', 10_000, first.producerId, 0)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.PRODUCER_FENCED, producerId: -1n, producerEpoch: -1 });
    expect((await init(3, 'ipi-kip360', 10_000, first.producerId, 0)).errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    expect((await init(5, 'ipi-kip360', 10_000, first.producerId + 7n, 2)).errorCode).toBe(ErrorCode.PRODUCER_FENCED);
  });

  // Kafka's TransactionMetadata.prepareIncrementProducerEpoch: an expected epoch equal to the
  // previous one is a retry of an init whose answer was lost, answered with the current epoch
  // and no second bump (a second bump would fence the instance that got the first answer).
  it('v3+ retried with the previous epoch answers the current epoch without bumping again', async () => {
    const first = await init(4, 'ipi-retry', 10_000);
    const bumped = await init(4, 'ipi-retry', 10_000, first.producerId, 0);
    expect(bumped.producerEpoch).toBe(1);
    expect(await init(4, 'ipi-retry', 10_000, first.producerId, 0)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: first.producerId, producerEpoch: 1 });
  });

  it('a new instance aborts the previous instance’s open transaction and fences it', async () => {
    const old = new RawTxnProducer(c, 'ipi-abort');
    await old.initOk(10_000);
    await old.addPartitionsOk('ipi', [0]);
    const at = await old.produceOk('ipi', 0, ['old-0', 'old-1']);
    const current = new RawTxnProducer(c, 'ipi-abort');
    await current.initOk(10_000);
    expect(current.producerEpoch).toBe(old.producerEpoch + 1);
    // The abort marker carries the new epoch; read_committed sees nothing of the old instance.
    const f = await fetchOnce(c, 'ipi', 0, at, true);
    expect(f.markers).toEqual([{ offset: at + 2, producerId: current.producerId, abort: true }]);
    expect(f.abortedTransactions).toEqual([{ producerId: current.producerId, firstOffset: at }]);
    expect(await readPartition(c, 'ipi', 0, true)).toEqual([]);
    // The old instance is fenced everywhere.
    expect(await old.produce('ipi', 0, ['old-2'])).toEqual({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 });
    expect(await old.addPartitions('ipi', [0])).toEqual([ErrorCode.PRODUCER_FENCED]);
    // The new one works.
    await current.addPartitionsOk('ipi', [0]);
    await current.produceOk('ipi', 0, ['new-0']);
    expect(await current.endTxn(true)).toBe(ErrorCode.NONE);
    expect((await readPartition(c, 'ipi', 0, true)).map((r) => r.value)).toEqual(['new-0']);
  });

  it('an exhausted epoch moves the transactional id to a new producer id at epoch 0', async () => {
    const first = await init(4, 'ipi-exhausted', 10_000);
    // 32,766 inits would take too long: copy the persisted state, at the last usable epoch,
    // to a second id the broker has not loaded yet, so that its first init reads it.
    const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
    try {
      const raw = await redis.get('{x:ipi-exhausted}:state');
      expect(raw).not.toBeNull();
      const record = JSON.parse(raw!) as { producerEpoch: number };
      record.producerEpoch = 32_766;
      await redis.set('{x:ipi-exhausted-2}:state', JSON.stringify(record));
    } finally {
      redis.disconnect();
    }
    const next = await init(4, 'ipi-exhausted-2', 10_000);
    expect(next.errorCode).toBe(ErrorCode.NONE);
    expect(next.producerEpoch).toBe(0);
    expect(next.producerId).not.toBe(first.producerId);
  });

  it('an empty transactional id is INVALID_REQUEST', async () => {
    expect(await init(4, '', 10_000)).toEqual({ throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 });
  });
});
