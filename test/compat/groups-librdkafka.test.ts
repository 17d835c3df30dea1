/**
 * librdkafka consumer groups against Strata: confluent-kafka-python (librdkafka 2.0.2) and
 * @confluentinc/kafka-javascript (librdkafka 2.15) with the range, roundrobin and
 * cooperative-sticky assignors, committing synchronously after every batch or automatically;
 * and kcat's balanced consumer (`-G`).
 *
 * Two members per group. Records are produced once both members hold their share of the
 * partitions, so the assertion is exact: the union of what the members consumed is every
 * produced record once, each member read only its own partitions, and the group's committed
 * offsets equal the end offsets. The members are child processes (test/helpers/clients/
 * groups-rdkafka.py and groups-cfk.mjs) reporting line by line.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produceOk } from '../helpers/topics.js';
import { runClient, uniqueTopic } from '../helpers/compat.js';
import { ConsumerProcess, committedOffsets, describeGroup, endOffsets, expectConsumedExactlyOnce, expectContiguousOffsets, type ConsumedRecord } from '../helpers/consumer-groups.js';
import { waitFor } from '../helpers/wait.js';

/** Debian's interpreter: the one with confluent_kafka (the pyenv `python3` on PATH has none). */
const PYTHON = '/usr/bin/python3';
const PY_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'groups-rdkafka.py');
const CFK_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'groups-cfk.mjs');
const PARTITIONS = 6;
const PER_PARTITION = 50;

type Kind = 'python' | 'cfk';

let cluster: Cluster;
const members: ConsumerProcess[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--group-initial-rebalance-delay-ms', '500', '--group-min-session-timeout-ms', '1000'] });
});

afterAll(async () => {
  for (const m of members) m.kill();
  await cluster?.stop();
});

/** Starts a group member of `kind` as a child process. */
function startMember(kind: Kind, name: string, args: Record<string, unknown>): ConsumerProcess {
  const json = JSON.stringify({ bootstrap: cluster.bootstrap, clientId: name, deadlineS: 60, ...args });
  let m: ConsumerProcess;
  if (kind === 'python') {
    const env = { ...process.env };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    m = new ConsumerProcess(name, PYTHON, [PY_DRIVER, json], { env, deadlineS: 60 });
  } else {
    m = new ConsumerProcess(name, process.execPath, [CFK_DRIVER, json], { deadlineS: 60 });
  }
  members.push(m);
  return m;
}

/** True when the assignments are non-empty, disjoint and cover every partition. */
function covering(assignments: number[][]): boolean {
  const all = assignments.flat();
  return assignments.every((a) => a.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS;
}

/** Produces PER_PARTITION values to each partition (one batch each); returns them. */
async function produceAll(topic: string, tag: string): Promise<string[]> {
  const client = await RawClient.connect(cluster.bootstrap, 'groups-librdkafka-producer');
  try {
    const values: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const batch = Array.from({ length: PER_PARTITION }, (_, i) => `${tag}-p${p}-${i}`);
      await produceOk(client, topic, p, batch);
      values.push(...batch);
    }
    return values;
  } finally {
    client.close();
  }
}

async function consumeAsGroup(kind: Kind, strategy: string, autoCommit: boolean): Promise<void> {
  const tag = `${kind}-${strategy}-${autoCommit ? 'auto' : 'manual'}`;
  const topic = uniqueTopic(`groups-${tag}`);
  const groupId = uniqueTopic(`group-${tag}`);
  await createTopic(cluster.bootstrap, topic, PARTITIONS);
  const incremental = strategy === 'cooperative-sticky';
  const group = [1, 2].map((i) => startMember(kind, `${tag}-${i}`, { groupId, topic, strategy, autoCommit }));

  await waitFor(`both ${tag} members to hold a share of the partitions`, () => {
    for (const m of group) m.assertRunning();
    return group.map((m) => m.assignment(incremental));
  }, covering, 30_000);
  const produced = await produceAll(topic, tag);
  const all = (): ConsumedRecord[] => group.flatMap((m) => m.records());
  await waitFor(`${tag}: every record consumed`, () => {
    for (const m of group) m.assertRunning();
    return all().length;
  }, (n) => n >= produced.length, 30_000);
  const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
  await waitFor(`${tag}: offsets committed up to the end`, () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);

  const described = await describeGroup(cluster.bootstrap, groupId);
  expect({ state: described.groupState, protocolType: described.protocolType, protocolData: described.protocolData, members: described.members.length }).toEqual({
    state: 'Stable',
    protocolType: 'consumer',
    protocolData: strategy,
    members: 2,
  });
  expect(described.members.map((m) => m.clientId).sort()).toEqual(group.map((m) => m.name));

  const held = group.map((m) => m.assignment(incremental));
  await Promise.all(group.map((m) => m.stop()));
  expectConsumedExactlyOnce(all(), produced);
  expectContiguousOffsets(all(), ends);
  // Each member read exactly the partitions it held.
  expect(group.map((m) => [...new Set(m.records().map((r) => r.partition))].sort((a, b) => a - b))).toEqual(held);
  expect(await committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS)).toEqual(ends);
  // Both left: the group is empty.
  expect((await describeGroup(cluster.bootstrap, groupId)).groupState).toBe('Empty');
}

describe('librdkafka consumer groups', () => {
  it.each([
    ['python', 'range', false],
    ['python', 'roundrobin', true],
    ['python', 'cooperative-sticky', false],
    ['cfk', 'range', true],
    ['cfk', 'roundrobin', false],
    ['cfk', 'cooperative-sticky', true],
  ] as [Kind, string, boolean][])('%s, %s, autoCommit=%s: two members consume every record once and commit the end offsets', async (kind, strategy, autoCommit) => {
    await consumeAsGroup(kind, strategy, autoCommit);
  });

  it.each([
    ['python', 'cooperative-sticky'],
    ['cfk', 'range'],
  ] as [Kind, string][])('%s, %s: a member that leaves hands its partitions to the other, which consumes every new record once', async (kind, strategy) => {
    const tag = `${kind}-${strategy}-leave`;
    const topic = uniqueTopic(`groups-${tag}`);
    const groupId = uniqueTopic(`group-${tag}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const incremental = strategy === 'cooperative-sticky';
    const [stays, leaves] = [1, 2].map((i) => startMember(kind, `${tag}-${i}`, { groupId, topic, strategy, autoCommit: false })) as [ConsumerProcess, ConsumerProcess];
    await waitFor('both members to hold a share', () => [stays.assignment(incremental), leaves.assignment(incremental)], covering, 30_000);

    const produced = await produceAll(topic, `${tag}-first`);
    const all = (): ConsumedRecord[] => [stays, leaves].flatMap((m) => m.records());
    await waitFor('the first round consumed', () => (stays.assertRunning(), all().length), (n) => n >= produced.length, 30_000);
    let ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    await waitFor('the first round committed', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);

    await leaves.stop();
    await waitFor('the remaining member to hold every partition', () => (stays.assertRunning(), stays.assignment(incremental)), (a) => a.length === PARTITIONS, 30_000);
    produced.push(...(await produceAll(topic, `${tag}-second`)));
    await waitFor('the second round consumed', () => (stays.assertRunning(), all().length), (n) => n >= produced.length, 30_000);
    ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    await waitFor('the second round committed', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);
    await stays.stop();

    expectConsumedExactlyOnce(all(), produced);
    expectContiguousOffsets(all(), ends);
    expect(leaves.records().filter((r) => r.value.includes('-second-'))).toEqual([]);
  });

  it('kcat -G consumes every record as a balanced consumer and commits on exit', async () => {
    const topic = uniqueTopic('groups-kcat');
    const groupId = uniqueTopic('group-kcat');
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const produced = await produceAll(topic, 'kcat');
    const { stdout } = await runClient('kcat', [
      '-b', cluster.bootstrap,
      '-X', 'broker.address.family=v4',
      '-X', 'auto.offset.reset=earliest',
      '-X', 'session.timeout.ms=6000',
      '-q',
      '-f', '%p\\t%o\\t%s\\n',
      '-c', String(produced.length),
      '-G', groupId, topic,
    ], { timeoutMs: 30_000 });
    const consumed = stdout.trim().split('\n').map((line) => {
      const [p, o, v] = line.split('\t');
      return { consumer: 'kcat', partition: Number(p), offset: Number(o), key: null, value: v! };
    });
    expectConsumedExactlyOnce(consumed, produced);
    const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    expectContiguousOffsets(consumed, ends);
    expect(await committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS)).toEqual(ends);
  });
});
