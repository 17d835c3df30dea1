/**
 * `strata topics list|describe` and the admin API's `GET /api/v1/topics/<name>` behind its
 * `--http`: a topic's partitions with log start, high watermark, last stable offset, stored
 * bytes (DescribeLogDirs), objects and runs, read from a live broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import { runTopics } from '../../src/commands/topics.js';
import { WireClient, createTopic } from '../../src/harness/wire-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';

let cluster: Cluster;
let client: WireClient;
let httpPort: number;
/** Sizes of the batches produced to partition 0 of `described`, in order. */
const sizes: number[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--flush-ms', '1', '--http', '127.0.0.1:0'] });
  httpPort = cluster.brokers[0]!.broker!.httpPort!;
  client = await WireClient.connect(cluster.bootstrap, 'topics-test');
  await createTopic(client, 'described', 2);
  await createTopic(client, 'other', 1);
  // Three produce requests one after another: each is flushed on its own, so partition 0's
  // data sits in three objects (three runs); partition 1 stays empty.
  for (let i = 0; i < 3; i++) {
    const batch = encodeBatchSync(
      Array.from({ length: i + 1 }, (_, r) => ({ key: Buffer.from(`k${i}-${r}`), value: Buffer.from(`value ${i}-${r}`), timestamp: Date.now() })),
      {},
    );
    sizes.push(batch.length);
    const res = await client.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 10_000, topicData: [{ name: 'described', partitionData: [{ index: 0, records: batch }] }] });
    expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  }
  // Move the log start past the first batch (1 record): its run drops out of the index.
  const del = await client.send(21, 2, { topics: [{ name: 'described', partitions: [{ partitionIndex: 0, offset: 1n }] }], timeoutMs: 10_000 });
  expect(del.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTopics([...args, '--bootstrap', cluster.bootstrap], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('strata topics', () => {
  it('describes log start, high watermark, last stable offset and stored bytes per partition', async () => {
    const d = await run(['describe', 'described', '--json']);
    expect(d.err).toEqual([]);
    expect(d.code).toBe(0);
    const parsed = JSON.parse(d.out[0]!) as { topic: string; partitions: unknown[] };
    expect(parsed.topic).toBe('described');
    expect(parsed.partitions).toEqual([
      { partition: 0, leader: cluster.brokers[0]!.broker!.nodeId, logStart: 1, highWatermark: 6, lastStable: 6, storedBytes: sizes[1]! + sizes[2]!, objects: null, runs: null },
      { partition: 1, leader: cluster.brokers[0]!.broker!.nodeId, logStart: 0, highWatermark: 0, lastStable: 0, storedBytes: 0, objects: null, runs: null },
    ]);
  });

  it('adds objects and runs from the admin API with --http, and prints a table', async () => {
    const d = await run(['describe', 'described', '--http', `127.0.0.1:${httpPort}`]);
    expect(d.err).toEqual([]);
    expect(d.code).toBe(0);
    const stored = sizes[1]! + sizes[2]!;
    expect(d.out[0]).toMatch(new RegExp(`^topic described \\(\\S+\\): 2 partition\\(s\\), ${stored} bytes stored$`));
    expect(d.out.slice(1).map((l) => l.split(/\s+/))).toEqual([
      ['PARTITION', 'LEADER', 'LOG-START', 'HIGH-WATERMARK', 'LAST-STABLE', 'STORED-BYTES', 'OBJECTS', 'RUNS'],
      ['0', String(cluster.brokers[0]!.broker!.nodeId), '1', '6', '6', String(stored), '2', '2'],
      ['1', String(cluster.brokers[0]!.broker!.nodeId), '0', '0', '0', '0', '0', '0'],
    ]);
  });

  it('lists topics', async () => {
    const l = await run(['list', '--json']);
    expect(l.code).toBe(0);
    expect((JSON.parse(l.out[0]!) as { name: string; partitions: number }[]).map((t) => [t.name, t.partitions])).toEqual([
      ['described', 2],
      ['other', 1],
    ]);
  });

  it('names a missing topic, bad usage and unknown options in one line', async () => {
    const missing = await run(['describe', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.err).toEqual(['strata topics: topic "nope": UNKNOWN_TOPIC_OR_PARTITION']);
    expect((await run(['describe'])).code).toBe(2);
    const unknown = await run(['list', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.err[0]).toBe('strata topics: unknown option --colour');
  });

  it('answers 404 from the admin API for a topic that does not exist', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/topics/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'no topic "nope"' });
  });
});
