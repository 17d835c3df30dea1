// The log cleaner against a real Redis and a real file store (docs/architecture.md §4.6): the
// latest record of each key stays at its offset; tombstones stay until their delete horizon,
// which later passes keep; min.compaction.lag.ms, min.cleanable.dirty.ratio and
// max.compaction.lag.ms decide when; aborted transactions' records go and never count as a
// key's latest, and markers go once their transaction is empty and their horizon passed;
// nothing at or after the last stable offset is touched; a swap racing DeleteRecords changes
// nothing; compact,delete topics get retention too.
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import {
  Compression,
  ControlRecordType,
  decodeBatchSync,
  decodeControlBatch,
  encodeBatchSync,
  encodeControlBatch,
  RecordBatchView,
  splitBatches,
  type EncodeBatchOptions,
} from '../../wire/records/index.js';
import { parseBrokerConfig } from '../../src/config.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { LogCleanerJob, PartitionCleaner, type CleanerPolicy } from '../../src/log/log-cleaner.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import type { PartitionRef, PartitionStore } from '../../src/log/partition-store.js';
import { RetentionJob } from '../../src/log/retention.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { withPartitionLogs } from '../helpers/partition-log.js';
import { freshPartition } from '../helpers/partition-store.js';

const broker = parseBrokerConfig(['--redis', 'redis://127.0.0.1:1', '--storage', 'memory://cleaner-test'], {});

let redis: Redis;
let state: PartitionStore;
let store: FileObjectStore;
let writer: PartitionLog;
let partitionLog: (writeCacheBytes: number) => PartitionLog;
withPartitionLogs({ nodeId: 5, blockSizeBytes: 4096, dirPrefix: 'strata-cleaner-' }, (env) => ({ redis, state, store, writer, partitionLog } = env));

/** A record to produce: `key=value`, `key=` for a tombstone. */
type Rec = string;

/** Produces one batch (its own flush, so its own run) and answers its base offset. */
async function append(ref: PartitionRef, records: readonly Rec[], timestamp: number, options: EncodeBatchOptions = {}): Promise<number> {
  const inputs = records.map((r) => {
    const [key, value] = r.split('=') as [string, string];
    return { key: Buffer.from(key), value: value === '' ? null : Buffer.from(value), timestamp };
  });
  const outcome = await writer.append(ref, splitBatches(encodeBatchSync(inputs, options)));
  expect(outcome.results[0]!.errorCode).toBe(ErrorCode.NONE);
  return outcome.results[0]!.baseOffset;
}

/** Produces a transaction marker of producer `producerId` (epoch 0). */
async function marker(ref: PartitionRef, producerId: number, type: 'ABORT' | 'COMMIT', timestamp: number): Promise<void> {
  const bytes = encodeControlBatch({ type: ControlRecordType[type], coordinatorEpoch: 0, producerId, producerEpoch: 0, timestamp });
  const outcome = await writer.append(ref, splitBatches(bytes));
  expect(outcome.results[0]!.errorCode).toBe(ErrorCode.NONE);
}

/** Every record and marker from the log start, read as another broker would: `offset:key=value`, `offset:ABORT`. */
async function contents(ref: PartitionRef): Promise<string[]> {
  return (await batches(ref)).flatMap((view) => {
    if (view.isControl) return [`${view.baseOffset}:${decodeControlBatch(view).type === ControlRecordType.ABORT ? 'ABORT' : 'COMMIT'}`];
    return decodeBatchSync(view).records.map((r) => `${r.offset}:${r.key!.toString()}=${r.value?.toString() ?? ''}`);
  });
}

/** Every batch from the log start, through a cold log (block cache reads). */
async function batches(ref: PartitionRef, from?: number): Promise<RecordBatchView[]> {
  const log = partitionLog(0);
  const { hw, logStart } = (await log.offsets([ref]))[0]!;
  const out: RecordBatchView[] = [];
  for (let offset = from ?? logStart; offset < hw; ) {
    const res = await log.read({ ref, fetchOffset: offset, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(res.errorCode).toBe(ErrorCode.NONE);
    if (res.records.length === 0) break;
    for (const b of res.records) {
      const view = new RecordBatchView(Buffer.from(b));
      expect(view.verifyCrc()).toBe(true);
      out.push(view);
      offset = view.nextOffset;
    }
  }
  return out;
}

async function meta(ref: PartitionRef): Promise<Record<string, string>> {
  return redis.hgetall(partitionKeys(ref).meta);
}

interface Clock {
  now: number;
}

/** A cleaner job over one single-partition topic whose configs the test may change. */
function cleaner(ref: PartitionRef, configs: Record<string, string>, clock: Clock, options: { targetBytes?: number } = {}): LogCleanerJob {
  return new LogCleanerJob({
    topics: { all: async () => [{ name: 'compacted', topicId: ref.topicId, partitions: 1, replicationFactor: 1, configs }] },
    leads: () => true,
    log: writer,
    broker,
    intervalMs: 60_000,
    targetBytes: options.targetBytes,
    now: () => clock.now,
  });
}

const COMPACT = { 'cleanup.policy': 'compact' };

describe('LogCleanerJob', () => {
  it('keeps the latest value of every key at its offset, in the batches and codecs they came in', async () => {
    const ref = freshPartition();
    const clock = { now: 5_000_000 };
    for (let round = 0; round < 10; round++) {
      await append(ref, [0, 1, 2, 3, 4].map((k) => `k${k}=v${round}`), clock.now - 100, round % 2 === 0 ? { compression: Compression.GZIP } : {});
    }
    const job = cleaner(ref, COMPACT, clock);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['45:k0=v9', '46:k1=v9', '47:k2=v9', '48:k3=v9', '49:k4=v9']);
    const kept = await batches(ref);
    expect(kept.map((v) => [v.baseOffset, v.lastOffsetDelta, v.recordCount, v.compression])).toEqual([[45, 4, 5, Compression.NONE]]);
    expect(job.stats()).toMatchObject({ cycles: 1, passes: 1, recordsRemoved: 45, objectsWritten: 1, swapsAborted: 0 });
    expect(job.stats().bytesReclaimed).toBeGreaterThan(0);
    const runs = (await writer.indexedRuns(ref, 0, 100)).runs;
    expect(runs.map((r) => [r.base, r.last, r.batchCount, r.ownOffsets])).toEqual([[0, 49, 1, true]]);
    expect(runs[0]!.objectKey).toMatch(/^data\/\d{4}-\d\d-\d\d\/5-[0-9a-f]{8}-k\d{8}\.seg$/);
    expect(await meta(ref)).toMatchObject({ hw: '50', cleanedTo: '50' });
    expect((await writer.offsets([ref]))[0]).toEqual({ hw: 50, logStart: 0, lso: 50 });

    // Nothing dirty: the next cycle passes the partition by.
    await job.runOnce();
    expect(job.stats()).toMatchObject({ cycles: 2, passes: 1 });

    // Overwrites of two keys, gzip: the old values go, the new batch keeps its codec.
    await append(ref, ['k1=w', 'k3=w'], clock.now - 50, { compression: Compression.GZIP });
    await append(ref, ['k3=x'], clock.now - 40, { compression: Compression.GZIP });
    await job.runOnce();
    expect(await contents(ref)).toEqual(['45:k0=v9', '47:k2=v9', '49:k4=v9', '50:k1=w', '52:k3=x']);
    expect((await batches(ref)).map((v) => [v.baseOffset, v.lastOffsetDelta, v.recordCount, v.compression])).toEqual([
      [45, 4, 3, Compression.NONE],
      [50, 1, 1, Compression.GZIP],
      [52, 0, 1, Compression.GZIP],
    ]);
    expect(job.stats()).toMatchObject({ passes: 2, recordsRemoved: 48 });
    // A consumer between records reads on from the next one.
    const res = await partitionLog(0).read({ ref, fetchOffset: 46, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
    expect(res.records.map((b) => new RecordBatchView(b).baseOffset)).toEqual([45, 50, 52]);
  });

  it('keeps a tombstone until the delete horizon its first pass stamped, across later passes, then removes it', async () => {
    const ref = freshPartition();
    const clock = { now: 1_000_000 };
    const configs = { ...COMPACT, 'delete.retention.ms': '1000', 'min.cleanable.dirty.ratio': '0.1' };
    const job = cleaner(ref, configs, clock);
    await append(ref, ['k1=v1', 'k2=v2'], clock.now);
    await append(ref, ['k1='], clock.now);
    // A record after the tombstone: the batch that ends the log is never cleaned (below).
    await append(ref, ['k3=v3'], clock.now);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['1:k2=v2', '2:k1=', '3:k3=v3']);
    const stamped = (await batches(ref))[1]!;
    expect([stamped.baseOffset, stamped.hasDeleteHorizon, stamped.deleteHorizonMs]).toEqual([2, true, 1_001_000]);
    // The record keeps its own timestamp: the horizon only moved the base it is stored against.
    expect(decodeBatchSync(stamped).records.map((r) => r.timestamp)).toEqual([1_000_000]);
    expect(await meta(ref)).toMatchObject({ cleanedTo: '4', cleanHorizon: '1001000' });

    // A later pass keeps the horizon rather than stamping a new one.
    clock.now += 500;
    await append(ref, ['k2=v2b'], clock.now);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['2:k1=', '3:k3=v3', '4:k2=v2b']);
    expect((await batches(ref))[0]!.deleteHorizonMs).toBe(1_001_000);

    clock.now = 1_000_999;
    await job.runOnce();
    expect(job.stats().passes).toBe(2);
    expect(await contents(ref)).toEqual(['2:k1=', '3:k3=v3', '4:k2=v2b']);
    clock.now = 1_001_000;
    await job.runOnce();
    expect(job.stats().passes).toBe(3);
    expect(await contents(ref)).toEqual(['3:k3=v3', '4:k2=v2b']);
    expect(await meta(ref)).not.toHaveProperty('cleanHorizon');

    // A tombstone that ends the log stays while nothing follows it, whatever its age (Kafka
    // keeps the log's last batch: a consumer must be able to reach the high watermark)...
    await append(ref, ['k2='], clock.now);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['3:k3=v3', '5:k2=']);
    clock.now += 10_000;
    await job.runOnce();
    expect(await contents(ref)).toEqual(['3:k3=v3', '5:k2=']);
    // ...and once a record follows it, it is stamped and goes after its horizon; offsets stay.
    await append(ref, ['k4=v4'], clock.now);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['3:k3=v3', '5:k2=', '6:k4=v4']);
    clock.now += 1000;
    await job.runOnce();
    expect(await contents(ref)).toEqual(['3:k3=v3', '6:k4=v4']);
    expect((await writer.offsets([ref]))[0]).toEqual({ hw: 7, logStart: 0, lso: 7 });
  });

  it('leaves runs younger than min.compaction.lag.ms alone until they are old enough', async () => {
    const ref = freshPartition();
    const clock = { now: 10_000_000 };
    const configs = { ...COMPACT, 'min.compaction.lag.ms': '300000', 'min.cleanable.dirty.ratio': '0.01' };
    const job = cleaner(ref, configs, clock);
    await append(ref, ['k0=a0', 'k1=a1'], clock.now - 600_000);
    await append(ref, ['k0=b0'], clock.now - 600_000);
    await append(ref, ['k1=c1', 'k0=c0'], clock.now - 1000);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['1:k1=a1', '2:k0=b0', '3:k1=c1', '4:k0=c0']);
    expect(await meta(ref)).toMatchObject({ cleanedTo: '3' });
    // The young run's max timestamp (now - 1000) must be at least the lag old.
    clock.now += 298_999;
    await job.runOnce();
    expect(job.stats().passes).toBe(1);
    clock.now += 1;
    await job.runOnce();
    expect(await contents(ref)).toEqual(['3:k1=c1', '4:k0=c0']);
  });

  it('skips a partition whose dirty share is at most min.cleanable.dirty.ratio, unless max.compaction.lag.ms has passed', async () => {
    const ref = freshPartition();
    const clock = { now: 20_000_000 };
    const configs: Record<string, string> = { ...COMPACT };
    const job = cleaner(ref, configs, clock);
    for (let b = 0; b < 6; b++) await append(ref, [0, 1, 2, 3, 4].map((k) => `u${5 * b + k}=x`), clock.now - 1000);
    await job.runOnce();
    // Every key is unique: the pass ran and changed nothing.
    expect(job.stats()).toMatchObject({ passes: 1, recordsRemoved: 0, objectsWritten: 0 });
    expect(await meta(ref)).toMatchObject({ cleanedTo: '30' });
    const runsBefore = (await writer.indexedRuns(ref, 0, 100)).runs;
    expect(runsBefore.length).toBe(6);

    await append(ref, ['u0=y'], clock.now - 120_000);
    await job.runOnce();
    expect(job.stats().passes).toBe(1);
    expect((await contents(ref))[0]).toBe('0:u0=x');

    configs['max.compaction.lag.ms'] = '60000';
    await job.runOnce();
    expect(job.stats()).toMatchObject({ passes: 2, recordsRemoved: 1 });
    const after = await contents(ref);
    expect([after.length, after[0], after.at(-1)]).toEqual([30, '1:u1=x', '30:u0=y']);
  });

  it('removes an aborted transaction whose records are never a key latest, and markers once their transaction is empty and their horizon passed', async () => {
    const ref = freshPartition();
    const clock = { now: 30_000_000 };
    const job = cleaner(ref, { ...COMPACT, 'delete.retention.ms': '1000' }, clock);
    const ts = clock.now - 10;
    await append(ref, ['k1=a'], ts);
    expect(await state.openTransaction([ref], 900, 0)).toEqual([ErrorCode.NONE]);
    await append(ref, ['k1=aborted', 'k2=aborted'], ts, { producerId: 900, producerEpoch: 0, baseSequence: 0, isTransactional: true });
    await marker(ref, 900, 'ABORT', ts);
    expect(await state.openTransaction([ref], 901, 0)).toEqual([ErrorCode.NONE]);
    await append(ref, ['k3=committed'], ts, { producerId: 901, producerEpoch: 0, baseSequence: 0, isTransactional: true });
    await marker(ref, 901, 'COMMIT', ts);
    await append(ref, ['k3=later', 'k4=d'], ts);
    expect(await contents(ref)).toEqual(['0:k1=a', '1:k1=aborted', '2:k2=aborted', '3:ABORT', '4:k3=committed', '5:COMMIT', '6:k3=later', '7:k4=d']);
    const aborted = partitionKeys(ref).aborted;
    expect(await redis.zrange(aborted, 0, -1)).toEqual(['900|1|3']);

    await job.runOnce();
    expect(await contents(ref)).toEqual(['0:k1=a', '3:ABORT', '5:COMMIT', '6:k3=later', '7:k4=d']);
    const markers = (await batches(ref)).filter((v) => v.isControl);
    expect(markers.map((v) => [v.baseOffset, v.producerId, v.isTransactional, v.deleteHorizonMs])).toEqual([
      [3, 900, true, 30_001_000],
      [5, 901, true, 30_001_000],
    ]);
    // A read_committed consumer still learns of the aborted transaction while its marker stays.
    expect(await writer.abortedTransactions(ref, 0, 8)).toEqual([{ producerId: 900, firstOffset: 1 }]);

    clock.now += 1000;
    await job.runOnce();
    expect(await contents(ref)).toEqual(['0:k1=a', '6:k3=later', '7:k4=d']);
    expect(await redis.zrange(aborted, 0, -1)).toEqual([]);
    expect(await meta(ref)).not.toHaveProperty('cleanHorizon');
  });

  it('keeps a commit marker while its transaction has records left', async () => {
    const ref = freshPartition();
    const clock = { now: 31_000_000 };
    const job = cleaner(ref, { ...COMPACT, 'delete.retention.ms': '0' }, clock);
    expect(await state.openTransaction([ref], 910, 0)).toEqual([ErrorCode.NONE]);
    await append(ref, ['k1=t', 'k2=t'], clock.now, { producerId: 910, producerEpoch: 0, baseSequence: 0, isTransactional: true });
    await marker(ref, 910, 'COMMIT', clock.now);
    await append(ref, ['k1=u'], clock.now);
    await job.runOnce();
    await job.runOnce();
    expect(await contents(ref)).toEqual(['1:k2=t', '2:COMMIT', '3:k1=u']);
  });

  it('leaves everything at and after the last stable offset as it is', async () => {
    const ref = freshPartition();
    const clock = { now: 40_000_000 };
    const job = cleaner(ref, COMPACT, clock);
    await append(ref, ['k1=a', 'k2=b'], clock.now);
    await append(ref, ['k1=c'], clock.now);
    expect(await state.openTransaction([ref], 902, 0)).toEqual([ErrorCode.NONE]);
    await append(ref, ['k5=open'], clock.now, { producerId: 902, producerEpoch: 0, baseSequence: 0, isTransactional: true });
    await append(ref, ['k1=e', 'k2=f'], clock.now);
    expect((await writer.offsets([ref]))[0]).toEqual({ hw: 6, logStart: 0, lso: 3 });
    const tail = (await batches(ref, 3)).map((v) => v.bytes);
    const runsAfterLso = (await writer.indexedRuns(ref, 3, 100)).runs;

    await job.runOnce();
    expect(await contents(ref)).toEqual(['1:k2=b', '2:k1=c', '3:k5=open', '4:k1=e', '5:k2=f']);
    expect((await batches(ref, 3)).map((v) => v.bytes)).toEqual(tail);
    expect((await writer.indexedRuns(ref, 3, 100)).runs).toEqual(runsAfterLso);
    expect(await meta(ref)).toMatchObject({ cleanedTo: '3' });
  });

  it('abandons a pass whose swap finds a run DeleteRecords removed meanwhile, and cleans what is left next cycle', async () => {
    const ref = freshPartition();
    const clock = { now: 50_000_000 };
    await append(ref, ['k1=a', 'k2=a'], clock.now);
    await append(ref, ['k1=b'], clock.now);
    await append(ref, ['k2=c', 'k3=c'], clock.now);
    await append(ref, ['k2=d'], clock.now);
    const runsBefore = (await writer.indexedRuns(ref, 0, 100)).runs;
    const idxBefore = await redis.zrange(partitionKeys(ref).idx, 0, -1);
    let raced = false;
    const racing = new PartitionCleaner({
      store,
      state: {
        cleanerState: (r) => state.cleanerState(r),
        runsPaged: (r, from, max) => state.runsPaged(r, from, max),
        abortedRanges: (r, from, to) => state.abortedRanges(r, from, to),
        timeMs: () => state.timeMs(),
        async replaceRuns(r, old, replacement, changes, commitByMs) {
          if (!raced && old.length > 0) {
            raced = true;
            expect(await writer.deleteRecords(r, 2)).toEqual({ errorCode: ErrorCode.NONE, logStart: 2 });
          }
          return state.replaceRuns(r, old, replacement, changes, commitByMs);
        },
      },
      cached: () => undefined,
      nodeId: 5,
      maxDecompressedBytes: 1 << 20,
    });
    const job = new LogCleanerJob({
      topics: { all: async () => [{ name: 'raced', topicId: ref.topicId, partitions: 1, replicationFactor: 1, configs: COMPACT }] },
      leads: () => true,
      log: { cleanPartition: (r, policy) => racing.clean(r, policy) },
      broker,
      intervalMs: 60_000,
      now: () => clock.now,
    });
    await job.runOnce();
    expect(job.stats()).toMatchObject({ passes: 1, swapsAborted: 1, objectsWritten: 1, recordsRemoved: 0 });
    // Only DeleteRecords' change: the first run went, nothing of the pass was applied.
    expect(await redis.zrange(partitionKeys(ref).idx, 0, -1)).toEqual(idxBefore.slice(1));
    expect(await meta(ref)).not.toHaveProperty('cleanedTo');
    expect((await writer.indexedRuns(ref, 0, 100)).runs).toEqual(runsBefore.slice(1));

    await job.runOnce();
    expect(job.stats()).toMatchObject({ passes: 2, swapsAborted: 1, objectsWritten: 2, recordsRemoved: 1 });
    expect(await contents(ref)).toEqual(['2:k1=b', '4:k3=c', '5:k2=d']);
  });

  it('on compact,delete topics lets retention delete old runs as well', async () => {
    const ref = freshPartition();
    const clock = { now: 60_000_000_000 };
    const configs = { 'cleanup.policy': 'compact,delete', 'retention.ms': '3600000' };
    // One object per run: retention deletes whole runs, so each run keeps its own age.
    const job = cleaner(ref, configs, clock, { targetBytes: 1 });
    const retention = new RetentionJob({
      topics: { all: async () => [{ name: 'both', topicId: ref.topicId, partitions: 1, replicationFactor: 1, configs }] },
      leads: () => true,
      log: writer,
      broker,
      intervalMs: 60_000,
      now: () => clock.now,
    });
    await append(ref, ['k1=old1', 'k2=old2'], clock.now - 7_200_000);
    await append(ref, ['k1=new1', 'k3=n3'], clock.now - 1000);
    await append(ref, ['k3=n3b'], clock.now - 1000);
    await job.runOnce();
    expect(await contents(ref)).toEqual(['1:k2=old2', '2:k1=new1', '4:k3=n3b']);
    await retention.runOnce();
    expect(retention.stats().logStartAdvances).toBe(1);
    expect(await contents(ref)).toEqual(['2:k1=new1', '4:k3=n3b']);
    expect((await writer.offsets([ref]))[0]).toMatchObject({ logStart: 2, hw: 5 });
  });

  it('logs one line for a failing cycle and cleans the other partitions', async () => {
    const good = freshPartition();
    const clock = { now: 70_000_000 };
    await append(good, ['k=a'], clock.now);
    await append(good, ['k=b'], clock.now);
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((obj: unknown) => void warnings.push(obj)) as typeof logger.warn;
    const job = new LogCleanerJob({
      topics: {
        all: async () => [
          { name: 'broken', topicId: 'x', partitions: 2, replicationFactor: 1, configs: COMPACT },
          { name: 'plain', topicId: 'y', partitions: 1, replicationFactor: 1, configs: {} },
          { name: 'good', topicId: good.topicId, partitions: 1, replicationFactor: 1, configs: COMPACT },
        ],
      },
      leads: () => true,
      log: { cleanPartition: (ref, policy) => (ref.topicId === 'x' ? Promise.reject(new Error('Redis is down')) : writer.cleanPartition(ref, policy)) },
      broker,
      intervalMs: 60_000,
      now: () => clock.now,
    });
    job.start(logger);
    await job.runOnce();
    await job.stop();
    expect(warnings).toEqual([{ topic: 'broken', partition: 0, err: 'Redis is down', failed: 2, partitions: 3 }]);
    expect(job.stats()).toMatchObject({ cycles: 1, passes: 1, recordsRemoved: 1 });
    expect(await contents(good)).toEqual(['1:k=b']);
  });
});

describe('PartitionCleaner', () => {
  const policy = (nowMs: number, maxKeys: number): CleanerPolicy => ({
    nowMs,
    deleteRetentionMs: 86_400_000,
    minCompactionLagMs: 0,
    maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
    minCleanableDirtyRatio: 0,
    maxKeys,
    targetBytes: 1 << 20,
  });

  it('cleans a prefix per pass when the dirty part has more keys than --log-cleaner-max-keys', async () => {
    const ref = freshPartition();
    const now = 80_000_000;
    await append(ref, ['a=1', 'b=1'], now);
    await append(ref, ['a=2', 'c=1'], now);
    await append(ref, ['b=2', 'c=2'], now);
    expect(await writer.cleanPartition(ref, policy(now, 2))).toMatchObject({ due: 'dirty-ratio', completed: true, cleanedTo: 2, recordsRemoved: 0 });
    expect(await writer.cleanPartition(ref, policy(now, 2))).toMatchObject({ completed: true, cleanedTo: 4, recordsRemoved: 1 });
    expect(await contents(ref)).toEqual(['1:b=1', '2:a=2', '3:c=1', '4:b=2', '5:c=2']);
    expect(await writer.cleanPartition(ref, policy(now, 2))).toMatchObject({ completed: true, cleanedTo: 6, recordsRemoved: 2 });
    expect(await contents(ref)).toEqual(['2:a=2', '4:b=2', '5:c=2']);
    expect(await writer.cleanPartition(ref, policy(now, 2))).toMatchObject({ due: null, completed: false });
  });
});
