/**
 * Transaction coordinator failover (docs/architecture.md §7): three brokers as child processes
 * with a short coordinator lease (--coordinator-lease-ms 3000). The broker coordinating a
 * transactional id is SIGKILLed between AddPartitionsToTxn and EndTxn, or while it answers
 * EndTxn; another broker takes the id's lease once it runs out and continues from the
 * persisted state (finishing a half-written commit or abort itself). A transaction always ends
 * committed or aborted as a whole, on every partition; the client — a RawClient retrying
 * EndTxn at the new coordinator, or kafkajs — completes; a client that never comes back has
 * its transaction aborted by a surviving broker's timeout sweep.
 *
 * Needs the built CLI in dist/ (`node scripts/setup.mjs --quiet`, which `npm test` runs).
 */
import { Redis } from 'ioredis';
import kafkajs, { type Producer } from 'kafkajs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { uniqueTopic } from '../helpers/compat.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { RawTxnProducer, findCoordinator, readPartition, stableOffsets, waitSettled, withClient } from '../helpers/raw-txn.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const PARTITIONS = 3;
const LEASE_MS = 3000;

let cluster: Cluster;
const producers: Producer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ processes: true, brokers: 3, brokerArgs: ['--coordinator-lease-ms', String(LEASE_MS), '--transaction-max-timeout-ms', '60000'] });
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  await cluster?.stop();
});

/** Restarts brokers an earlier test killed and waits until every broker lists all three. */
beforeEach(async () => {
  for (let i = 0; i < cluster.brokers.length; i++) {
    const child = cluster.brokers[i]!.child!;
    if (child.exitCode !== null || child.signalCode !== null) await cluster.restartBroker(i);
  }
  for (const b of cluster.brokers) {
    await withClient(`127.0.0.1:${b.port}`, (c) =>
      waitFor('three brokers in Metadata', () => c.send(ApiKey.Metadata, 9, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }).then((m) => m.brokers.length), (n) => n === 3, 15_000),
    );
  }
});

const address = (i: number): string => `127.0.0.1:${cluster.brokers[i]!.port}`;

/** The index (in cluster.brokers) of the broker coordinating `transactionalId` now. */
async function coordinatorIndex(transactionalId: string): Promise<number> {
  const found = await withClient(address(0), (c) => findCoordinator(c, transactionalId, 'txn'));
  expect(found.errorCode).toBe(ErrorCode.NONE);
  const i = cluster.brokers.findIndex((b) => `127.0.0.1:${b.port}` === found.address);
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
}

const RETRIABLE: number[] = [ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.CONCURRENT_TRANSACTIONS];

/**
 * Sends EndTxn for `p` to whichever broker FindCoordinator (asked of a surviving broker) names,
 * retrying retriable answers and connection failures until a final answer (bounded).
 */
function endTxnAtNewCoordinator(p: RawTxnProducer, commit: boolean, survivor: number): Promise<{ code: number; coordinator: number }> {
  // A retriable answer is thrown, so that waitFor retries it like a refused connection and
  // names the last one if time runs out.
  return waitFor(
    `a final EndTxn answer for ${p.transactionalId}`,
    async () => {
      const found = await withClient(address(survivor), (c) => findCoordinator(c, p.transactionalId, 'txn'));
      if (found.errorCode !== ErrorCode.NONE) throw new Error(`FindCoordinator error ${found.errorCode}`);
      const code = await withClient(found.address, async (c) => {
        p.client = c;
        return p.endTxn(commit);
      });
      if (RETRIABLE.includes(code)) throw new Error(`EndTxn error ${code} at ${found.address}`);
      return { code, coordinator: cluster.brokers.findIndex((b) => `127.0.0.1:${b.port}` === found.address) };
    },
    45_000,
    200,
  );
}

/** Writes `per` records into each partition of `topic` within `p`'s transaction; returns them by partition. */
async function writeTransaction(p: RawTxnProducer, topic: string, tag: string, per: number): Promise<string[][]> {
  await p.addPartitionsOk(topic, Array.from({ length: PARTITIONS }, (_, i) => i));
  const written: string[][] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const values = Array.from({ length: per }, (_, i) => `${tag}-${partition}-${i}`);
    await p.produceOk(topic, partition, values);
    written.push(values);
  }
  return written;
}

/** Asserts every partition is settled (LSO = hw) and read_committed shows exactly `expected[p]`. */
async function expectSettled(topic: string, expected: string[][], via: number): Promise<void> {
  await withClient(address(via), async (c) => {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const o = await stableOffsets(c, topic, partition);
      expect(o.lso, `partition ${partition} LSO`).toBe(o.hw);
      expect((await readPartition(c, topic, partition, true)).map((r) => r.value), `partition ${partition}`).toEqual(expected[partition]);
    }
  });
}

/**
 * A fresh topic and a raw transactional producer on its id's coordinator (initialised with
 * `timeoutMs`), and the broker that will survive the coordinator's kill.
 */
async function transactionAtCoordinator(name: string, timeoutMs: number): Promise<{ topic: string; id: string; ci: number; survivor: number; c: RawClient; p: RawTxnProducer }> {
  const topic = uniqueTopic(name);
  const id = `${topic}-tx`;
  await createTopic(address(0), topic, PARTITIONS);
  const ci = await coordinatorIndex(id);
  const c = await RawClient.connect(address(ci), 'txn-failover');
  const p = new RawTxnProducer(c, id);
  await p.initOk(timeoutMs);
  return { topic, id, ci, survivor: (ci + 1) % 3, c, p };
}

async function describeState(id: string, via: number): Promise<string> {
  return withClient(address(via), async (c) => (await c.send(ApiKey.DescribeTransactions, 0, { transactionalIds: [id] })).transactionStates[0]!.transactionState);
}

describe('transaction coordinator failover', () => {
  it('killed between AddPartitionsToTxn and EndTxn: the retried commit at the new coordinator commits every partition', async () => {
    const { topic, id, ci, survivor, c, p } = await transactionAtCoordinator('txn-failover-commit', 60_000);
    const written = await writeTransaction(p, topic, 'committed', 4);
    await cluster.brokers[ci]!.kill();
    c.close();

    const end = await endTxnAtNewCoordinator(p, true, survivor);
    expect(end.code).toBe(ErrorCode.NONE);
    expect(end.coordinator).not.toBe(ci);
    await expectSettled(topic, written, survivor);
    expect(await describeState(id, survivor)).toBe('CompleteCommit');
  });

  it.each([
    ['commit', true],
    ['abort', false],
  ])('killed while answering EndTxn (%s): the transaction ends that way on every partition, and the retry succeeds', async (_name, commit) => {
    const { topic, id, ci, survivor, c, p } = await transactionAtCoordinator(`txn-failover-mid-${commit ? 'commit' : 'abort'}`, 60_000);
    const written = await writeTransaction(p, topic, 'mid', 4);
    // EndTxn is sent and the coordinator dies right away: it may have done none, some or all
    // of the work (persisted Prepare state, some markers, the answer).
    void p.endTxn(commit).catch(() => undefined);
    await cluster.brokers[ci]!.kill();
    c.close();

    const end = await endTxnAtNewCoordinator(p, commit, survivor);
    expect(end.code).toBe(ErrorCode.NONE);
    await expectSettled(topic, commit ? written : written.map(() => []), survivor);
    expect(await describeState(id, survivor)).toBe(commit ? 'CompleteCommit' : 'CompleteAbort');
  });

  it('a client that never comes back: a surviving broker aborts its transaction at the timeout', async () => {
    const { topic, id, ci, survivor, c, p } = await transactionAtCoordinator('txn-failover-orphan', 3000);
    await writeTransaction(p, topic, 'orphan', 2);
    await cluster.brokers[ci]!.kill();
    c.close();

    await withClient(address(survivor), (sc) => waitSettled(sc, topic, PARTITIONS, 'every partition to settle', 45_000, 200));
    await expectSettled(topic, [[], [], []], survivor);
    expect(await describeState(id, survivor)).toBe('CompleteAbort');
    // The orphan's producer is fenced: the timeout abort bumped its epoch.
    const end = await endTxnAtNewCoordinator(p, true, survivor);
    expect(end.code).toBe(ErrorCode.PRODUCER_FENCED);
  });

  // The persisted state a coordinator leaves when it dies inside EndTxn after recording its
  // decision (PrepareCommit, which #save marks as due at once in the sweep's set) and before
  // writing the first marker — set up directly, since a SIGKILL lands there only by chance.
  // Nobody retries: the client died too. Kafka's new coordinator finishes Prepare states
  // when it loads the transaction log; here a surviving broker's sweep must do the same.
  it('killed after deciding to commit, with nobody retrying: a surviving broker finishes the commit', async () => {
    const { topic, id, ci, survivor, c, p } = await transactionAtCoordinator('txn-failover-prepared', 60_000);
    const written = await writeTransaction(p, topic, 'prepared', 2);
    await cluster.brokers[ci]!.kill();
    c.close();
    const redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
    try {
      const state = JSON.parse((await redis.get(`{x:${id}}:state`))!) as { state: string };
      expect(state.state).toBe('Ongoing');
      state.state = 'PrepareCommit';
      await redis.set(`{x:${id}}:state`, JSON.stringify(state));
      await redis.zadd('{strata}:txn-deadlines', Date.now(), id);
    } finally {
      redis.disconnect();
    }

    await withClient(address(survivor), (sc) => waitSettled(sc, topic, PARTITIONS, 'every partition to settle without any client request', 20_000, 200));
    await expectSettled(topic, written, survivor);
    expect(await describeState(id, survivor)).toBe('CompleteCommit');
  });

  it('kafkajs: the coordinator dies before commit; the commit completes at the new coordinator', async () => {
    const topic = uniqueTopic('txn-failover-kafkajs');
    const id = `${topic}-tx`;
    await createTopic(address(0), topic, PARTITIONS);
    const ci = await coordinatorIndex(id);
    const survivor = (ci + 1) % 3;
    const kafka = new Kafka({
      clientId: 'txn-failover-kafkajs',
      brokers: [address(survivor), address((ci + 2) % 3)],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      requestTimeout: 10_000,
      retry: { retries: 20, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const producer = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    producers.push(producer);
    await producer.connect();
    const txn = await producer.transaction();
    const values = Array.from({ length: PARTITIONS * 4 }, (_, i) => ({ partition: i % PARTITIONS, value: `kafkajs-${i % PARTITIONS}-${Math.floor(i / PARTITIONS)}` }));
    await txn.send({ topic, messages: values });
    await cluster.brokers[ci]!.kill();
    await txn.commit();
    await expectSettled(
      topic,
      Array.from({ length: PARTITIONS }, (_, p) => values.filter((v) => v.partition === p).map((v) => v.value)),
      survivor,
    );
    expect(await describeState(id, survivor)).toBe('CompleteCommit');
  });
});
