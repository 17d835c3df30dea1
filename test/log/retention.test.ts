// Time retention against a real Redis (docs/architecture.md §4.3): where the log start moves
// for a cutoff, that moving it is idempotent and never backwards, and what one cycle of the
// retention job touches.
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '../../src/config.js';
import { partitionKeys } from '../../src/coordination/keys.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import type { PartitionRef, PartitionStore } from '../../src/log/partition-store.js';
import { RetentionJob, retentionCutoffMs, type RetentionTopic } from '../../src/log/retention.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryObjectStore } from '../../src/storage/memory.js';
import { freshPartition, plain, withPartitionStore, zsetWithScores } from '../helpers/partition-store.js';

let redis: Redis;
let state: PartitionStore;
let log: PartitionLog;
withPartitionStore((env) => {
  ({ redis, state } = env);
  log = new PartitionLog({
    partitions: state,
    store: new MemoryObjectStore(),
    writeCacheBytes: 0,
    blockCacheBytes: 0,
    blockSizeBytes: 4096,
    maxDecompressedBatchBytes: 1024 * 1024,
    flushMs: 5,
    flushBytes: 1024 * 1024,
  });
});

const broker = parseBrokerConfig(['--redis', 'redis://127.0.0.1:1', '--storage', 'memory://retention-test'], {});

/** Commits one run of ten records (one batch) per timestamp: run i holds offsets 10i..10i+9. */
async function runs(ref: PartitionRef, timestamps: number[]): Promise<void> {
  for (const [i, ts] of timestamps.entries()) {
    await state.commit(`seg-${i}`, [{ ref, batches: [plain(0, 7, 9, ts)] }]);
  }
}

async function logStart(ref: PartitionRef): Promise<number> {
  return (await state.offsets([ref]))[0]!.logStart;
}

describe('PartitionStore.retentionTarget', () => {
  it('is the base of the first run with a batch at or after the cutoff, for increasing timestamps', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 200, 300, 400]);
    expect((await state.retentionTarget(ref, 0)).target).toBe(0);
    expect((await state.retentionTarget(ref, 100)).target).toBe(0);
    expect((await state.retentionTarget(ref, 101)).target).toBe(10);
    expect((await state.retentionTarget(ref, 300)).target).toBe(20);
    expect((await state.retentionTarget(ref, 301)).target).toBe(30);
  });

  it('stops at the first newer run when timestamps are not monotonic', async () => {
    const ref = freshPartition();
    // Run 1 is new; runs 2 and 3 are older than it and stay while it does, as Kafka keeps
    // expired segments behind an unexpired one.
    await runs(ref, [100, 900, 200, 300, 1000]);
    expect((await state.retentionTarget(ref, 150)).target).toBe(10);
    expect((await state.retentionTarget(ref, 900)).target).toBe(10);
    expect((await state.retentionTarget(ref, 901)).target).toBe(40);
  });

  it('is the high watermark when every batch is older than the cutoff', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 300, 200]);
    expect(await state.retentionTarget(ref, 301)).toEqual({ offsets: { hw: 30, logStart: 0, lso: 30 }, target: 30 });
  });

  it('is 0 for a partition that never had a record, and writes nothing there', async () => {
    const ref = freshPartition();
    expect(await state.retentionTarget(ref, Date.now())).toEqual({ offsets: { hw: 0, logStart: 0, lso: 0 }, target: 0 });
    expect(await log.applyRetention(ref, { cutoffMs: Date.now() })).toEqual({ logStart: 0, advanced: false });
    const k = partitionKeys(ref);
    expect(await redis.exists(k.meta, k.idx, k.tidx)).toBe(0);
  });
});

describe('PartitionLog.applyRetention', () => {
  it('moves the log start to the first run that is not wholly older, and then is a no-op', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 200, 300, 400]);
    expect(await log.applyRetention(ref, { cutoffMs: 250 })).toEqual({ logStart: 20, advanced: true });
    expect(await log.applyRetention(ref, { cutoffMs: 250 })).toEqual({ logStart: 20, advanced: false });
    expect((await state.runsFrom(ref, 0, 10)).runs.map((r) => r.base)).toEqual([20, 30]);
    expect(await zsetWithScores(redis, partitionKeys(ref).tidx)).toEqual([
      ['19', '200'],
      ['29', '300'],
      ['39', '400'],
    ]);
  });

  it('keeps everything when no batch is older than the cutoff', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 200]);
    expect(await log.applyRetention(ref, { cutoffMs: 100 })).toEqual({ logStart: 0, advanced: false });
    expect((await state.runsFrom(ref, 0, 10)).runs.map((r) => r.base)).toEqual([0, 10]);
  });

  it('moves the log start to the high watermark when everything is older', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 300, 200]);
    expect(await log.applyRetention(ref, { cutoffMs: 1000 })).toEqual({ logStart: 30, advanced: true });
    expect(await state.runsFrom(ref, 0, 10)).toEqual({ offsets: { hw: 30, logStart: 30, lso: 30 }, runs: [] });
    // Records committed afterwards are kept while they are newer than the cutoff.
    await state.commit('later', [{ ref, batches: [plain(0, 7, 4, 2000)] }]);
    expect(await log.applyRetention(ref, { cutoffMs: 1000 })).toEqual({ logStart: 30, advanced: false });
    expect((await state.runsFrom(ref, 0, 10)).runs.map((r) => [r.base, r.last])).toEqual([[30, 34]]);
  });

  it('never moves the log start back when DeleteRecords already passed the target', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 200, 300, 400]);
    expect(await state.deleteRecords(ref, 25)).toEqual({ errorCode: 0, logStart: 25 });
    // Run 1 is gone; the first remaining batch at or after the cutoff is in run 2, which
    // straddles the log start: its base, 20, is below it, so nothing changes.
    expect(await log.applyRetention(ref, { cutoffMs: 150 })).toEqual({ logStart: 25, advanced: false });
    // A cutoff past run 2 moves the log start to run 3.
    expect(await log.applyRetention(ref, { cutoffMs: 350 })).toEqual({ logStart: 30, advanced: true });
    expect(await logStart(ref)).toBe(30);
  });

  it('expires runs after DeleteRecords removed the run that raised the running max', async () => {
    const ref = freshPartition();
    await runs(ref, [100, 900, 200, 300, 250]);
    expect(await state.deleteRecords(ref, 20)).toEqual({ errorCode: 0, logStart: 20 });
    // tidx keeps the stale entry (19, 900); the remaining runs' own maxima decide.
    expect(await log.applyRetention(ref, { cutoffMs: 280 })).toEqual({ logStart: 30, advanced: true });
    expect(await log.applyRetention(ref, { cutoffMs: 301 })).toEqual({ logStart: 50, advanced: true });
  });
});

describe('retentionCutoffMs', () => {
  const now = 10_000_000_000;
  it('is now minus retention.ms, the topic override over --log-retention-ms', () => {
    expect(retentionCutoffMs({}, broker, now)).toBe(now - 604_800_000);
    expect(retentionCutoffMs({ 'retention.ms': '60000' }, broker, now)).toBe(now - 60_000);
    expect(retentionCutoffMs({}, { ...broker, logRetentionMs: 1000 }, now)).toBe(now - 1000);
    expect(retentionCutoffMs({ 'retention.ms': '0' }, broker, now)).toBe(now);
  });

  it('is null for unlimited retention and for topics that only compact', () => {
    expect(retentionCutoffMs({ 'retention.ms': '-1' }, broker, now)).toBeNull();
    expect(retentionCutoffMs({}, { ...broker, logRetentionMs: -1 }, now)).toBeNull();
    expect(retentionCutoffMs({ 'cleanup.policy': 'compact', 'retention.ms': '1' }, broker, now)).toBeNull();
    expect(retentionCutoffMs({ 'cleanup.policy': 'compact,delete', 'retention.ms': '1' }, broker, now)).toBe(now - 1);
    expect(retentionCutoffMs({ 'cleanup.policy': 'delete, compact', 'retention.ms': '1' }, broker, now)).toBe(now - 1);
  });
});

describe('RetentionJob.runOnce', () => {
  it('applies retention to the partitions this broker leads on topics that delete by time', async () => {
    const now = 1_000_000;
    const topicId = freshPartition().topicId;
    const other = freshPartition().topicId;
    const unlimited = freshPartition().topicId;
    const topics: RetentionTopic[] = [
      { name: 'timed', topicId, partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '1000' } },
      { name: 'compacted', topicId: other, partitions: 1, replicationFactor: 1, configs: { 'cleanup.policy': 'compact', 'retention.ms': '1000' } },
      { name: 'forever', topicId: unlimited, partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '-1' } },
    ];
    for (const [t, p] of [[topicId, 0], [topicId, 1], [topicId, 2], [other, 0], [unlimited, 0]] as const) {
      await runs({ topicId: t, partition: p }, [now - 5000, now - 2000, now - 10]);
    }
    const job = new RetentionJob({
      topics: { all: async () => topics },
      // This broker leads partitions 0 and 2 of every topic.
      leads: (_id, partition) => partition !== 1,
      log,
      broker,
      intervalMs: 60_000,
      now: () => now,
    });
    await job.runOnce();
    expect(job.stats()).toEqual({ cycles: 1, logStartAdvances: 2 });
    expect(await logStart({ topicId, partition: 0 })).toBe(20);
    expect(await logStart({ topicId, partition: 1 })).toBe(0);
    expect(await logStart({ topicId, partition: 2 })).toBe(20);
    expect(await logStart({ topicId: other, partition: 0 })).toBe(0);
    expect(await logStart({ topicId: unlimited, partition: 0 })).toBe(0);
    await job.runOnce();
    expect(job.stats()).toEqual({ cycles: 2, logStartAdvances: 2 });
  });

  it('logs a failing partition and goes on with the others; the cycle still completes', async () => {
    const now = 1_000_000;
    const good = freshPartition().topicId;
    await runs({ topicId: good, partition: 0 }, [now - 5000, now]);
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((obj: unknown) => void warnings.push(obj)) as typeof logger.warn;
    const job = new RetentionJob({
      topics: {
        all: async (): Promise<RetentionTopic[]> => [
          { name: 'broken', topicId: 'x', partitions: 2, replicationFactor: 1, configs: {} },
          { name: 'good', topicId: good, partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '1000' } },
        ],
      },
      leads: () => true,
      log: {
        applyRetention: (ref, limits) => (ref.topicId === 'x' ? Promise.reject(new Error('Redis is down')) : log.applyRetention(ref, limits)),
      },
      broker,
      intervalMs: 60_000,
      now: () => now,
    });
    job.start(logger);
    await job.runOnce();
    await job.stop();
    expect(job.stats()).toEqual({ cycles: 1, logStartAdvances: 1 });
    expect(await logStart({ topicId: good, partition: 0 })).toBe(10);
    expect(warnings).toEqual([{ topic: 'broken', partition: 0, err: 'Redis is down', failed: 2, partitions: 3 }]);
  });
});
