// Time retention end to end on an in-process broker (docs/architecture.md §4.3): the retention
// job moves the log start of a topic past batches older than its retention.ms, and ListOffsets,
// Fetch and its logStartOffset follow; unlimited and compact-only topics keep everything.
// Assertions wait for the job's cycle counter, never for a length of time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker.js';
import { ErrorCode } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, fetchFrom, oneFetchRequest, partitionOffsets } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const HOUR_MS = 3_600_000;

let cluster: Cluster;
let client: RawClient;
let broker: Broker;

/** Produces keyed records stamped `timestamp` (CreateTime) as one batch; returns its base offset. */
async function produceAt(topic: string, values: string[], timestamp: number): Promise<bigint> {
  const records = encodeBatchSync(values.map((v) => ({ key: Buffer.from(`k-${v}`), value: Buffer.from(v), timestamp })));
  const res = await client.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  const p = res.responses[0]!.partitionResponses[0]!;
  if (p.errorCode !== ErrorCode.NONE) throw new Error(`produce to ${topic} failed with error ${p.errorCode}`);
  return p.baseOffset;
}

/**
 * A batch two hours old (offsets 0–4), then a fresh one (5–7). One old batch, so a cycle
 * running between the two produces moves the log start exactly where a later one would.
 */
async function oldThenFresh(topic: string): Promise<void> {
  expect(await produceAt(topic, ['old-0', 'old-1', 'old-2', 'old-3', 'old-4'], Date.now() - 2 * HOUR_MS)).toBe(0n);
  expect(await produceAt(topic, ['fresh-5', 'fresh-6', 'fresh-7'], Date.now())).toBe(5n);
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--log-retention-check-interval-ms', '200'] });
  broker = cluster.brokers[0]!.broker!;
  client = await RawClient.connect(cluster.bootstrap);
  // One hour rather than a minute, so the fresh batch stays fresh however slow the machine.
  await createTopic(client, 'timed', 1, { 'retention.ms': String(HOUR_MS) });
  await createTopic(client, 'unlimited', 1, { 'retention.ms': '-1' });
  await createTopic(client, 'compacted', 1, { 'cleanup.policy': 'compact', 'retention.ms': String(HOUR_MS) });
  for (const topic of ['timed', 'unlimited', 'compacted']) await oldThenFresh(topic);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

describe('time retention', () => {
  it('moves the log start to the first fresh batch; ListOffsets, Fetch and logStartOffset follow', async () => {
    const offsets = await waitFor('the log start of "timed" to move', () => partitionOffsets(client, 'timed', 0), (o) => o.logStart >= 5n, 20_000);
    expect(offsets).toEqual({ logStart: 5n, hw: 8n });
    expect(await fetchFrom(client, 'timed', 0, 0n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    expect(await fetchFrom(client, 'timed', 0, 4n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    expect(await fetchFrom(client, 'timed', 0, 5n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [5, 6, 7], values: ['fresh-5', 'fresh-6', 'fresh-7'] });
    const res = await client.send(1, 12, oneFetchRequest('timed', 0, 5n, 0));
    expect(res.responses[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 8n, logStartOffset: 5n });
  });

  it('keeps every record of topics with retention.ms -1 or cleanup.policy=compact', async () => {
    // The cycles counted from here on began after every topic and record above existed.
    const topics = await broker.topics.all();
    expect(topics.map((t) => t.name).sort()).toEqual(['compacted', 'timed', 'unlimited']);
    const from = broker.retention.stats().cycles;
    await waitFor('two more retention cycles', () => broker.retention.stats().cycles, (n) => n >= from + 2, 20_000);
    for (const topic of ['unlimited', 'compacted']) {
      expect(await partitionOffsets(client, topic, 0)).toEqual({ logStart: 0n, hw: 8n });
      expect((await fetchFrom(client, topic, 0, 0n)).offsets).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    }
    // Only "timed" moved, once.
    expect(broker.metricsText()).toContain('\nstrata_retention_log_start_advances_total 1\n');
    expect(await partitionOffsets(client, 'timed', 0)).toEqual({ logStart: 5n, hw: 8n });
  });
});
