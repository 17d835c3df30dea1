/**
 * Static group membership (KIP-345) with librdkafka clients against Strata: a member with a
 * `group.instance.id` that closes (librdkafka sends no LeaveGroup for a static member) and
 * comes back within its session timeout gets its partitions back, and the group does not
 * rebalance: the other member sees no revoke/assign callback and the generation stays the
 * same. Records produced before and after the restart are each consumed exactly once.
 *
 * The generation is read from the group's persisted state in Redis (`{g:<group>}:state`),
 * which the coordinator writes on every transition; DescribeGroups does not show it.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, produceOk } from '../helpers/topics.js';
import { uniqueTopic } from '../helpers/compat.js';
import { ConsumerProcess, committedOffsets, describeGroup, endOffsets, expectConsumedExactlyOnce, expectContiguousOffsets, type ConsumedRecord } from '../helpers/consumer-groups.js';
import { waitFor } from '../helpers/wait.js';

const PYTHON = '/usr/bin/python3';
const PY_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'groups-rdkafka.py');
const CFK_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'groups-cfk.mjs');
const PARTITIONS = 4;
const PER_PARTITION = 25;

type Kind = 'python' | 'cfk';

let cluster: Cluster;
let redis: Redis;
const processes: ConsumerProcess[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--group-initial-rebalance-delay-ms', '500', '--group-min-session-timeout-ms', '1000'] });
  redis = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  for (const p of processes) p.kill();
  redis?.disconnect();
  await cluster?.stop();
});

function startMember(kind: Kind, name: string, args: Record<string, unknown>): ConsumerProcess {
  const json = JSON.stringify({ bootstrap: cluster.bootstrap, clientId: name, deadlineS: 60, sessionTimeoutMs: 15_000, autoCommit: false, ...args });
  let m: ConsumerProcess;
  if (kind === 'python') {
    const env = { ...process.env };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    m = new ConsumerProcess(name, PYTHON, [PY_DRIVER, json], { env, deadlineS: 60 });
  } else {
    m = new ConsumerProcess(name, process.execPath, [CFK_DRIVER, json], { deadlineS: 60 });
  }
  processes.push(m);
  return m;
}

/** The generation the coordinator last persisted for `groupId`. */
async function generationOf(groupId: string): Promise<number> {
  const raw = await redis.get(`{g:${groupId}}:state`);
  if (raw === null) throw new Error(`no persisted state for group ${groupId}`);
  return (JSON.parse(raw) as { generationId: number }).generationId;
}

function covering(assignments: number[][]): boolean {
  const all = assignments.flat();
  return assignments.every((a) => a.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS;
}

async function produceRound(topic: string, tag: string): Promise<string[]> {
  const client = await RawClient.connect(cluster.bootstrap, 'groups-static-producer');
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

interface Scenario {
  kind: Kind;
  strategy: string;
  /** Start the member that will restart alone first, so the group goes through two generations. */
  restartedJoinsFirst: boolean;
}

async function restartWithoutRebalance({ kind, strategy, restartedJoinsFirst }: Scenario): Promise<void> {
  const tag = `static-${kind}-${strategy}`;
  const topic = uniqueTopic(tag);
  const groupId = uniqueTopic(`group-${tag}`);
  await createTopic(cluster.bootstrap, topic, PARTITIONS);
  const incremental = strategy === 'cooperative-sticky';
  const member = (name: string, instanceId: string): ConsumerProcess => startMember(kind, name, { groupId, topic, strategy, instanceId });
  const alive = (ms: ConsumerProcess[]): void => ms.forEach((m) => m.assertRunning());

  let restarting: ConsumerProcess;
  let steady: ConsumerProcess;
  if (restartedJoinsFirst) {
    restarting = member(`${tag}-restarting`, 'instance-restarting');
    await waitFor('the first member to hold every partition', () => (alive([restarting]), restarting.assignment(incremental)), (a) => a.length === PARTITIONS, 30_000);
    steady = member(`${tag}-steady`, 'instance-steady');
  } else {
    restarting = member(`${tag}-restarting`, 'instance-restarting');
    steady = member(`${tag}-steady`, 'instance-steady');
  }
  await waitFor('both static members to hold a share', () => (alive([restarting, steady]), [restarting.assignment(incremental), steady.assignment(incremental)]), covering, 30_000);

  const produced = await produceRound(topic, `${tag}-before`);
  const consumedBy = (ms: ConsumerProcess[]): ConsumedRecord[] => ms.flatMap((m) => m.records());
  await waitFor('the first round consumed', () => (alive([restarting, steady]), consumedBy([restarting, steady]).length), (n) => n >= produced.length, 30_000);
  let ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
  await waitFor('the first round committed', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);

  const generation = await generationOf(groupId);
  const before = await describeGroup(cluster.bootstrap, groupId);
  expect(before.groupState).toBe('Stable');
  const idOf = (d: typeof before, instance: string): string | undefined => d.members.find((m) => m.groupInstanceId === instance)?.memberId;
  expect(before.members.map((m) => m.groupInstanceId).sort()).toEqual(['instance-restarting', 'instance-steady']);
  const held = restarting.assignment(incremental);
  const steadyCallbacks = steady.rebalanceCallbacks();

  // Close without leaving, and come back under the same instance id within the session timeout.
  await restarting.stop();
  expect((await describeGroup(cluster.bootstrap, groupId)).members).toHaveLength(2);
  const restarted = member(`${tag}-restarted`, 'instance-restarting');
  await waitFor('the restarted member to get its partitions back', () => (alive([restarted, steady]), restarted.assignment(incremental)), (a) => a.join() === held.join(), 30_000);

  produced.push(...(await produceRound(topic, `${tag}-after`)));
  const everyone = [restarting, steady, restarted];
  await waitFor('the second round consumed', () => (alive([restarted, steady]), consumedBy(everyone).length), (n) => n >= produced.length, 30_000);
  ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
  await waitFor('the second round committed', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);

  // No rebalance: same generation, the other member saw no callback, same members but a new id.
  const after = await describeGroup(cluster.bootstrap, groupId);
  expect({ generation: await generationOf(groupId), steadyCallbacks: steady.rebalanceCallbacks(), state: after.groupState }).toEqual({ generation, steadyCallbacks, state: 'Stable' });
  expect(idOf(after, 'instance-steady')).toBe(idOf(before, 'instance-steady'));
  expect(idOf(after, 'instance-restarting')).not.toBe(idOf(before, 'instance-restarting'));
  expect(after.members).toHaveLength(2);

  await Promise.all([steady.stop(), restarted.stop()]);
  expectConsumedExactlyOnce(consumedBy(everyone), produced);
  expectContiguousOffsets(consumedBy(everyone), ends);
  // The restarted member read exactly its old partitions, from where its predecessor stopped.
  expect([...new Set(restarted.records().map((r) => r.partition))].sort((a, b) => a - b)).toEqual(held);
}

describe('static membership (KIP-345)', () => {
  it('python, range: a static member restarted within its session timeout gets its partitions back without a rebalance', async () => {
    await restartWithoutRebalance({ kind: 'python', strategy: 'range', restartedJoinsFirst: false });
  });

  // The restarted member first owned every partition, so its last JoinGroup carried owned
  // partitions (KIP-429) and sticky user data; after the restart its subscription bytes differ
  // while its protocol does not. Kafka stores the new metadata without a rebalance.
  it('confluent-kafka-javascript, cooperative-sticky, after two generations: the restart causes no rebalance either', async () => {
    await restartWithoutRebalance({ kind: 'cfk', strategy: 'cooperative-sticky', restartedJoinsFirst: true });
  });

  it('python, roundrobin, after two generations: the restart causes no rebalance either', async () => {
    await restartWithoutRebalance({ kind: 'python', strategy: 'roundrobin', restartedJoinsFirst: true });
  });
});
