/**
 * When the ingest buffer flushes: flush.ms bounds both a batch's wait and the object rate.
 * Real Redis for the commits; the memory store holds the objects (only their count matters).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { PartitionStore } from '../../src/log/partition-store.js';
import { ByteLru } from '../../src/log/cache.js';
import { IngestBuffer, type AppendOutcome } from '../../src/log/ingest.js';
import type { SegmentPieces } from '../../src/log/segment.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryObjectStore } from '../../src/storage/memory.js';
import { encodeBatchSync, splitBatches, type RecordBatchView } from '../../wire/records/index.js';
import { freshPartition, withPartitionStore } from '../helpers/partition-store.js';

let state: PartitionStore;
withPartitionStore((env) => ({ state } = env));

/** One batch of `count` records, as a producer would send it. */
function batch(count: number): RecordBatchView[] {
  const records = Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`), headers: [], timestamp: 1000 + i }));
  return splitBatches(encodeBatchSync(records));
}

function ingestWith(flushMs: number): { ingest: IngestBuffer; store: MemoryObjectStore } {
  const store = new MemoryObjectStore();
  const ingest = new IngestBuffer(store, state, new ByteLru<SegmentPieces>(1 << 20), { nodeId: 1, flushMs, flushBytes: 8 << 20 }, silentLogger());
  return { ingest, store };
}

async function objectCount(store: MemoryObjectStore): Promise<number> {
  let n = 0;
  for await (const _ of store.list('data/')) n++;
  return n;
}

const committed = (baseOffset: number): AppendOutcome => ({ results: [{ errorCode: 0, baseOffset, duplicate: false }], logStart: 0 });

describe('ingest flush timing', () => {
  it('flushes a batch that arrives after a quiet spell without waiting out flush.ms', async () => {
    const { ingest, store } = ingestWith(600_000);
    const outcome = await Promise.race([ingest.append(freshPartition(), batch(3)), sleep(20_000, 'still waiting')]);
    expect(outcome).toEqual(committed(0));
    expect(ingest.flushCount).toBe(1);
    expect(await objectCount(store)).toBe(1);
  });

  it('puts every partition appended in the same event-loop turn into one object', async () => {
    const { ingest, store } = ingestWith(600_000);
    const refs = [freshPartition(0), freshPartition(1), freshPartition(2)];
    const outcomes = await Promise.all(refs.map((ref) => ingest.append(ref, batch(2))));
    expect(outcomes).toEqual([committed(0), committed(0), committed(0)]);
    expect(ingest.flushCount).toBe(1);
    expect(await objectCount(store)).toBe(1);
  });

  it('holds a batch that arrives within flush.ms of the previous flush until its slot', async () => {
    const { ingest, store } = ingestWith(600_000);
    const ref = freshPartition();
    expect(await ingest.append(ref, batch(4))).toEqual(committed(0));
    let second: AppendOutcome | null = null;
    const appending = ingest.append(ref, batch(1)).then((o) => (second = o));
    await sleep(200);
    expect(second).toBeNull();
    expect(ingest.flushCount).toBe(1);
    expect(ingest.pendingBytes).toBeGreaterThan(0);
    await ingest.flush();
    await appending;
    expect(second).toEqual(committed(4));
    expect(ingest.flushCount).toBe(2);
    expect(await objectCount(store)).toBe(2);
  });

  it('starts timed flushes at least flush.ms apart under a steady stream', async () => {
    const flushMs = 100;
    const { ingest } = ingestWith(flushMs);
    const ref = freshPartition();
    const start = performance.now();
    const appends: Promise<AppendOutcome>[] = [];
    for (let i = 0; i < 80; i++) {
      appends.push(ingest.append(ref, batch(1)));
      await sleep(5);
    }
    const outcomes = await Promise.all(appends);
    const elapsed = performance.now() - start;
    // Every batch was committed once, in order.
    expect(outcomes.map((o) => o.results[0]!.baseOffset)).toEqual(Array.from({ length: 80 }, (_, i) => i));
    // All flushes started within `elapsed`, each at least flush.ms after the one before.
    expect(ingest.flushCount).toBeLessThanOrEqual(1 + Math.floor(elapsed / flushMs));
    expect(ingest.flushCount).toBeGreaterThanOrEqual(2);
  });
});
