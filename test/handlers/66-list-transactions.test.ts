import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type ListTransactionsResponseTransactionState } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer, findCoordinator } from '../helpers/raw-txn.js';

let cluster: Cluster;
const clients: RawClient[] = [];
/** The producers, by transactional id, each talking to its coordinator. */
const producers = new Map<string, RawTxnProducer>();

/** Two brokers: each transactional id is listed by its coordinator only. */
beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  for (const b of cluster.brokers) clients.push(await RawClient.connect(`127.0.0.1:${b.port}`, 'list-transactions-test'));
  // Brokers learn of each other by heartbeat: wait until both list both (bounded).
  for (let tries = 0; ; tries++) {
    const seen = await Promise.all(clients.map(async (c) => (await c.send(ApiKey.Metadata, 12, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false })).brokers.length));
    if (seen.every((n) => n === 2)) break;
    if (tries > 100) throw new Error(`brokers still see ${JSON.stringify(seen)} brokers`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await createTopic(clients[0]!, 'lt', 1);
  const ids = ['lt-empty', 'lt-ongoing', 'lt-aborted', 'lt-committed', 'lt-x1', 'lt-x2', 'lt-x3', 'lt-x4'];
  for (const id of ids) {
    const coordinator = await findCoordinator(clients[0]!, id, 'txn');
    expect(coordinator.errorCode).toBe(ErrorCode.NONE);
    const client = clients[cluster.brokers.findIndex((b) => `127.0.0.1:${b.port}` === coordinator.address)]!;
    const p = new RawTxnProducer(client, id);
    await p.initOk(30_000);
    producers.set(id, p);
  }
  await producers.get('lt-ongoing')!.addPartitionsOk('lt', [0]);
  await producers.get('lt-aborted')!.addPartitionsOk('lt', [0]);
  expect(await producers.get('lt-aborted')!.endTxn(false)).toBe(ErrorCode.NONE);
  await producers.get('lt-committed')!.addPartitionsOk('lt', [0]);
  expect(await producers.get('lt-committed')!.endTxn(true)).toBe(ErrorCode.NONE);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

const entry = (id: string, state: string): ListTransactionsResponseTransactionState => ({ transactionalId: id, producerId: BigInt(producers.get(id)!.producerId), transactionState: state });

/** Every broker's answer merged, as an admin client merges them, sorted by id. */
async function listAll(version: number, filters: { stateFilters?: string[]; producerIdFilters?: bigint[]; durationFilter?: bigint } = {}) {
  const answers = await Promise.all(
    clients.map((c) => c.send(ApiKey.ListTransactions, version, { stateFilters: filters.stateFilters ?? [], producerIdFilters: filters.producerIdFilters ?? [], durationFilter: filters.durationFilter ?? -1n })),
  );
  for (const a of answers) expect(a.errorCode).toBe(ErrorCode.NONE);
  const states = answers.flatMap((a) => a.transactionStates).sort((a, b) => a.transactionalId.localeCompare(b.transactionalId));
  return { states, unknownStateFilters: answers.map((a) => a.unknownStateFilters), perBroker: answers.map((a) => a.transactionStates.length) };
}

describe('ListTransactions', () => {
  it('lists every transactional id once across the brokers, with producer id and state', async () => {
    const { states, perBroker } = await listAll(0);
    expect(states).toEqual([
      entry('lt-aborted', 'CompleteAbort'),
      entry('lt-committed', 'CompleteCommit'),
      entry('lt-empty', 'Empty'),
      entry('lt-ongoing', 'Ongoing'),
      entry('lt-x1', 'Empty'),
      entry('lt-x2', 'Empty'),
      entry('lt-x3', 'Empty'),
      entry('lt-x4', 'Empty'),
    ]);
    expect(perBroker.reduce((a, b) => a + b, 0)).toBe(8);
  });

  it('filters by state and reports unknown state names', async () => {
    const { states, unknownStateFilters } = await listAll(0, { stateFilters: ['Ongoing', 'CompleteAbort', 'Sleeping'] });
    expect(states).toEqual([entry('lt-aborted', 'CompleteAbort'), entry('lt-ongoing', 'Ongoing')]);
    expect(unknownStateFilters).toEqual([['Sleeping'], ['Sleeping']]);
  });

  it('filters by producer id', async () => {
    const { states } = await listAll(0, { producerIdFilters: [BigInt(producers.get('lt-empty')!.producerId), BigInt(producers.get('lt-committed')!.producerId), 999_999n] });
    expect(states).toEqual([entry('lt-committed', 'CompleteCommit'), entry('lt-empty', 'Empty')]);
  });

  it('v1 filters by duration: ongoing transactions running at least that long (KIP-994)', async () => {
    expect((await listAll(1, { durationFilter: 0n })).states).toEqual([entry('lt-ongoing', 'Ongoing')]);
    expect((await listAll(1, { durationFilter: 3_600_000n })).states).toEqual([]);
    expect((await listAll(1, { durationFilter: -1n })).states).toHaveLength(8);
  });
});
