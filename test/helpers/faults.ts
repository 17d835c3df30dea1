/**
 * Test helper: shared pieces of the fault tests — request bodies, and the checks every fault
 * scenario ends with (each acknowledged record present, offsets contiguous).
 */
import { expect } from 'vitest';
import { ZERO_UUID, type FetchRequest, type ProduceRequest } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import type { ReadRecord } from './read-all.js';

export { ZERO_UUID };

/** A RecordBatch v2 holding `values`, keyed `k<i>`. */
export function batch(values: readonly string[]): Buffer {
  return encodeBatchSync(values.map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v), timestamp: 1_700_000_000_000 + i })));
}

export function produceBody(topic: string, parts: { partition: number; records: Buffer }[], acks = -1): ProduceRequest {
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: parts.map((p) => ({ index: p.partition, records: p.records })) }] };
}

/** A Fetch v11 body for several partitions of one topic (by name). */
export function fetchBody(topic: string, partitions: { partition: number; fetchOffset: number }[], maxWaitMs = 0, minBytes = 0): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs,
    minBytes,
    maxBytes: 4 * 1024 * 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic,
      topicId: ZERO_UUID,
      partitions: partitions.map((p) => ({ partition: p.partition, currentLeaderEpoch: -1, fetchOffset: BigInt(p.fetchOffset), lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1024 * 1024, replicaDirectoryId: ZERO_UUID })),
    }],
    forgottenTopicsData: [],
    rackId: '',
  };
}

/**
 * The checks a fault scenario ends with: every acknowledged value is stored (exactly once
 * when `exactlyOnce`), nothing is stored that was never sent, and each partition's offsets
 * run from 0 without a gap or a repeat — no offset was ever assigned twice.
 */
export function expectAcknowledgedStored(stored: readonly ReadRecord[], acknowledged: ReadonlySet<string>, sent: ReadonlySet<string>, options: { exactlyOnce: boolean }): void {
  const byPartition = new Map<number, number[]>();
  for (const r of stored) {
    const list = byPartition.get(r.partition) ?? [];
    list.push(r.offset);
    byPartition.set(r.partition, list);
  }
  for (const [partition, offsets] of byPartition) {
    const expected = Array.from({ length: offsets.length }, (_, i) => i);
    expect(offsets, `offsets of partition ${partition}`).toEqual(expected);
  }
  const counts = new Map<string, number>();
  for (const r of stored) counts.set(r.value ?? '', (counts.get(r.value ?? '') ?? 0) + 1);
  const missing = [...acknowledged].filter((v) => !counts.has(v));
  expect(missing, 'acknowledged records missing').toEqual([]);
  const unknown = [...counts.keys()].filter((v) => !sent.has(v));
  expect(unknown, 'stored records nobody sent').toEqual([]);
  if (options.exactlyOnce) {
    const repeated = [...counts].filter(([, n]) => n > 1).map(([v]) => v);
    expect(repeated, 'records stored more than once').toEqual([]);
  }
}
