/**
 * @confluentinc/kafka-javascript (librdkafka 2.15 inside) idempotent producer against Strata,
 * on the file store and on S3 (s3rver): a large keyed stream over several partitions with a
 * short linger, so many batches are in flight at once. Every record must be stored exactly
 * once, in produce order per partition, at the offset its delivery report named, and the
 * stored batches must carry one producer id with gapless sequences.
 *
 * The producer runs as a child process (helpers/ckjs-producer.mjs), so librdkafka's threads
 * never live in the test worker and a hang is ended by the process deadline.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { readAll } from '../helpers/read-all.js';
import { STORAGES, expectExactlyOnce, readBatches, runClient, uniqueTopic, type ExpectedRecord } from '../helpers/compat.js';
import { createTopic } from '../helpers/topics.js';

const DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'ckjs-producer.mjs');
const PARTITIONS = 6;
const KEYS = 997;
const BASE_TIMESTAMP = 1_700_000_000_000;
const COUNT = 100_000;

/** Record `i`, built by the same rule as the driver's recordOf. */
function expectedRecord(tag: string, i: number): ExpectedRecord {
  return { key: `k-${i % KEYS}`, value: `${tag}-${i}`, headers: [['i', String(i)]], timestamp: BASE_TIMESTAMP + i };
}

describe.each(STORAGES)('@confluentinc/kafka-javascript idempotent producer, %s store', (storage) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ storage });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it(`produces ${COUNT} records, each stored exactly once in order`, { timeout: 180_000 }, async () => {
    const topic = uniqueTopic(`ckjs-idempotent-${storage}`);
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const { stdout } = await runClient(
      process.execPath,
      [DRIVER, JSON.stringify({ bootstrap: cluster.bootstrap, topic, count: COUNT, tag: topic, keys: KEYS, baseTimestamp: BASE_TIMESTAMP, lingerMs: 5, deadlineMs: 90_000 })],
      { timeoutMs: 120_000 },
    );
    const result = JSON.parse(stdout) as { partitions: number[]; offsets: number[] };

    const expected = Array.from({ length: COUNT }, (_, i) => expectedRecord(topic, i));
    const read = await readAll(cluster.bootstrap, topic);
    expectExactlyOnce(read, expected);

    // Each delivery report named the position the record was stored at.
    const reportedWrong: string[] = [];
    const positionOf = new Map(read.map((r) => [r.value, r]));
    for (let i = 0; i < COUNT; i++) {
      const stored = positionOf.get(expected[i]!.value);
      if (stored?.partition !== result.partitions[i] || stored?.offset !== result.offsets[i]) {
        reportedWrong.push(`#${i}: reported ${result.partitions[i]}@${result.offsets[i]}, stored ${stored?.partition}@${stored?.offset}`);
      }
    }
    expect(reportedWrong.slice(0, 5)).toEqual([]);

    // Keyed records: one key, one partition; and the stream used every partition.
    const partitionOfKey = new Map<string | null, Set<number>>();
    for (const r of read) partitionOfKey.set(r.key, (partitionOfKey.get(r.key) ?? new Set()).add(r.partition));
    expect([...partitionOfKey.values()].filter((s) => s.size > 1)).toEqual([]);
    expect(new Set(read.map((r) => r.partition)).size).toBe(PARTITIONS);

    // One producer id; per partition the sequences run from 0 without gaps or repeats.
    const batches = await readBatches(cluster.bootstrap, topic, PARTITIONS);
    expect(new Set(batches.map((b) => b.producerId)).size).toBe(1);
    expect(batches[0]!.producerId).toBeGreaterThanOrEqual(0);
    const sequenceProblems: string[] = [];
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let next = 0;
      for (const b of batches.filter((x) => x.partition === partition)) {
        if (b.baseSequence !== next || b.baseOffset !== next) sequenceProblems.push(`${partition}: batch at offset ${b.baseOffset} has sequence ${b.baseSequence}, expected ${next}`);
        next = b.baseOffset + b.recordCount;
      }
    }
    expect(sequenceProblems.slice(0, 5)).toEqual([]);
  });
});
