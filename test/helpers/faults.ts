/**
 * Shared pieces of the fault tests: request bodies, bounded polling, and the checks every
 * fault scenario ends with (each acknowledged record present, offsets contiguous).
 */
import { expect } from 'vitest';
import { ErrorCode, ZERO_UUID, type FetchRequest, type ProduceRequest } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import type { RawClient } from '../helpers/raw-client.js';
import type { ReadRecord } from '../helpers/read-all.js';

export { ZERO_UUID };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

/** Creates topics through CreateTopics v5 and expects each to succeed. */
export async function createTopics(client: RawClient, topics: { name: string; partitions: number }[]): Promise<void> {
  const res = await client.send(19, 5, {
    topics: topics.map((t) => ({ name: t.name, numPartitions: t.partitions, replicationFactor: 1, assignments: [], configs: [] })),
    timeoutMs: 10_000,
    validateOnly: false,
  });
  expect(res.topics.map((t) => [t.name, t.errorCode])).toEqual(topics.map((t) => [t.name, ErrorCode.NONE]));
}

/**
 * Polls `check` until it returns a value other than undefined, at most `timeoutMs`; throws
 * naming `what` otherwise. No assertion depends on how quickly it succeeds.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(everyMs);
  }
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
