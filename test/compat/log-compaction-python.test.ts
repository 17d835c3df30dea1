/**
 * confluent-kafka-python (librdkafka) on compacted topics (docs/architecture.md §4.6): records
 * produced by librdkafka, some in a transaction it aborts, some tombstones; once the log
 * cleaner has run, a librdkafka consumer reading from the beginning (read_uncommitted) gets
 * exactly what Kafka would give: the latest value of each key at its original offset, offsets
 * increasing across the gaps, no aborted record, and tombstones while `delete.retention.ms`
 * keeps them. The driver is test/helpers/clients/compaction_client.py.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { runClient, uniqueTopic } from '../helpers/compat.js';
import { readAll } from '../helpers/read-all.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

/** Debian's interpreter: the one with confluent_kafka (the pyenv `python3` on PATH has none). */
const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'compaction_client.py');

type Produced = [offset: number, key: string, value: string | null, aborted: boolean];
type Consumed = [offset: number, key: string, value: string | null];

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--log-cleaner', 'true', '--log-cleaner-interval-ms', '200'] });
});

afterAll(async () => {
  await cluster?.stop();
});

async function driver(args: Record<string, unknown>): Promise<{ records: unknown[] }> {
  const env = { ...process.env };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  const { stdout } = await runClient(PYTHON, [DRIVER, JSON.stringify({ bootstrap: cluster.bootstrap, ...args })], { env, timeoutMs: 45_000 });
  return JSON.parse(stdout) as { records: unknown[] };
}

/** What a compacted log holds of `produced`: each key's latest committed record, tombstones kept or not. */
function compacted(produced: readonly Produced[], keepTombstones: boolean): Consumed[] {
  const latest = new Map<string, Produced>();
  for (const p of produced) if (!p[3] && (latest.get(p[1])?.[0] ?? -1) < p[0]) latest.set(p[1], p);
  return [...latest.values()]
    .filter((p) => keepTombstones || p[2] !== null)
    .sort((a, b) => a[0] - b[0])
    .map(([offset, key, value]) => [offset, key, value]);
}

/** Steps of the producer: overwrites, an aborted transaction, tombstones, more overwrites. */
const STEPS = [
  { records: [['k0', 'r0'], ['k1', 'r0'], ['k2', 'r0'], ['k3', 'r0'], ['k4', 'r0']] },
  { records: [['k0', 'r1'], ['k1', 'r1'], ['k2', 'r1'], ['k3', 'r1'], ['k4', 'r1']] },
  { aborted: [['k0', 'aborted'], ['k5', 'aborted']] },
  { records: [['k3', null], ['k1', 'r2']] },
  { records: [['k4', 'r3'], ['k2', null]] },
  { records: [['k2', 'r4']] },
];

async function compactAndConsume(topic: string, keepTombstones: boolean): Promise<void> {
  const { records } = await driver({ mode: 'produce', topic, steps: STEPS });
  const produced = records as Produced[];
  expect(produced.map((p) => p[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17]);
  const expected = compacted(produced, keepTombstones);
  // Read back through a raw Fetch until the cleaner has left exactly that.
  await waitFor(
    'the log cleaner to compact the topic',
    async () => (await readAll(cluster.bootstrap, topic)).map((r): Consumed => [r.offset, r.key!, r.value]),
    (read) => JSON.stringify(read) === JSON.stringify(expected),
    30_000,
  );
  const consumed = (await driver({ mode: 'consume', topic })).records as Consumed[];
  expect(consumed).toEqual(expected);
}

describe('confluent-kafka-python on a compacted topic', () => {
  it('reads the latest value per key at its offset, tombstones kept within delete.retention.ms, no aborted records', async () => {
    const topic = uniqueTopic('compacted-py');
    await createTopic(cluster.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0' });
    await compactAndConsume(topic, true);
  });

  it('reads no tombstone once delete.retention.ms has passed since the cleaner kept it', async () => {
    const topic = uniqueTopic('compacted-py-0');
    await createTopic(cluster.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0', 'delete.retention.ms': '0' });
    await compactAndConsume(topic, false);
  });
});
