/**
 * confluent-kafka-python (librdkafka) after time retention (docs/architecture.md §4.3): a
 * group whose committed offset lies below the log start retention moved to, consumed with
 * `auto.offset.reset=earliest`, resets to the new earliest offset and reads exactly the
 * records kept. The driver is test/helpers/clients/retention_consumer.py.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { runClient, uniqueTopic } from '../helpers/compat.js';
import { RawClient } from '../helpers/raw-client.js';
import { commitErrors, commitOffsets } from '../helpers/raw-group.js';
import { createTopic, partitionOffsets } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

/** Debian's interpreter: the one with confluent_kafka (the pyenv `python3` on PATH has none). */
const PYTHON = '/usr/bin/python3';
const DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'retention_consumer.py');
const HOUR_MS = 3_600_000;

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--log-retention-check-interval-ms', '200', '--group-initial-rebalance-delay-ms', '0'] });
  client = await RawClient.connect(cluster.bootstrap);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

async function produceAt(topic: string, values: string[], timestamp: number): Promise<void> {
  const records = encodeBatchSync(values.map((v) => ({ key: null, value: Buffer.from(v), timestamp })));
  const res = await client.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
}

describe('confluent-kafka-python consumer after retention', () => {
  it('resets a committed offset below the new log start (auto.offset.reset=earliest) and reads exactly the fresh records', async () => {
    const topic = uniqueTopic('retention-py');
    const groupId = `${topic}-group`;
    await createTopic(client, topic, 1, { 'retention.ms': String(HOUR_MS) });
    await produceAt(topic, ['old-0', 'old-1', 'old-2', 'old-3', 'old-4'], Date.now() - 2 * HOUR_MS);
    const committed = await commitOffsets(client, 2, { groupId, topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: 1n }] }] });
    expect(commitErrors(committed)).toEqual({ [`${topic}:0`]: ErrorCode.NONE });
    await produceAt(topic, ['fresh-5', 'fresh-6', 'fresh-7'], Date.now());
    const offsets = await waitFor('retention to move the log start', () => partitionOffsets(client, topic, 0), (o) => o.logStart >= 5n, 20_000);
    expect(offsets).toEqual({ logStart: 5n, hw: 8n });

    const env = { ...process.env };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    const { stdout } = await runClient(PYTHON, [DRIVER, JSON.stringify({ bootstrap: cluster.bootstrap, topic, groupId, count: 3 })], { env, timeoutMs: 45_000 });
    expect(JSON.parse(stdout)).toEqual({
      records: [
        { offset: 5, value: 'fresh-5' },
        { offset: 6, value: 'fresh-6' },
        { offset: 7, value: 'fresh-7' },
      ],
    });
  });
});
