/**
 * The lifecycle benchmark (`npm run bench -- --lifecycle`, docs/performance.md#storage-lifecycle):
 * does a broker that only writes reach a steady state? One broker produces at a fixed rate
 * to a topic with a short `retention.ms` while retention, object compaction and object GC run
 * with intervals scaled to the run. Every minute it samples what grows without them: the
 * objects in the store and their bytes, Redis `used_memory`, the partitions' index entries,
 * and the broker's object-store requests. Then a fresh broker reads one partition from its log
 * start (a catch-up read of compacted data) and counts its GETs per MiB.
 *
 * The run is done twice, with object compaction on and off (the second run shorter), so
 * requests per GB written and broker CPU per GB can be compared; the difference in CPU is
 * what compaction costs (GC runs in both).
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { openObjectStore } from '../src/storage/index.js';
import { connectBench, createTopic, highWatermarks, logStartOffsets, type WireClient } from './client.js';
import { buildProduceRequests, fetchAll, produceOpenLoop, type ProduceResult } from './load.js';
import { startBroker, startRedis, startS3rver, type Metrics, type ProcessGroup } from './processes.js';

export interface LifecycleOptions {
  /** Minutes of produce with compaction on (0 skips that run). */
  minutes: number;
  /** Minutes of produce with compaction off (0 skips that run). */
  offMinutes: number;
  storage: 'file' | 's3rver';
  mbPerSec: number;
  retentionMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleOptions = { minutes: 15, offMinutes: 4, storage: 'file', mbPerSec: 20, retentionMs: 120_000 };

const PARTITIONS = 16;
const SHAPE = { recordBytes: 1024, recordsPerBatch: 32, partitionsPerRequest: 4 };
const FLUSH_MS = 250;
const MiB = 1024 * 1024;

/** One sample, taken every minute. */
export interface LifecycleSample {
  minute: number;
  objects: number;
  storedBytes: number;
  redisUsedMemory: number;
  indexEntries: number;
  metrics: Metrics;
  brokerCpuSeconds: number;
}

export interface LifecycleRun {
  compaction: boolean;
  produce: ProduceResult;
  samples: LifecycleSample[];
  redisBaseline: number;
  /** Catch-up read by a fresh broker of partition 0 from its log start. */
  catchUp: { mib: number; gets: number; getsPerMiB: number; errors: number };
}

function log(line: string): void {
  process.stderr.write(`[bench lifecycle ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function redisCli(url: string, args: string[]): string {
  const port = new URL(url).port;
  const r = spawnSync('redis-cli', ['-p', port, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function usedMemory(url: string): number {
  const m = /used_memory:(\d+)/.exec(redisCli(url, ['INFO', 'memory']));
  return m ? Number(m[1]) : Number.NaN;
}

/** Index entries of every partition of the topic, summed (ZCARD of each idx key). */
function indexEntries(url: string): number {
  const keys = redisCli(url, ['--scan', '--pattern', '{p:*}:idx']).split('\n').filter(Boolean);
  let n = 0;
  for (const k of keys) n += Number(redisCli(url, ['ZCARD', k]).trim());
  return n;
}

async function storeUsage(url: string): Promise<{ objects: number; bytes: number }> {
  const store = openObjectStore(url);
  try {
    let objects = 0;
    let bytes = 0;
    for await (const o of store.list('data/')) {
      objects++;
      bytes += o.size;
    }
    return { objects, bytes };
  } finally {
    await store.close();
  }
}

/** Compaction's window plus two of its intervals (see {@link lifecycleFlags}). */
const COMPACTION_SETTLE_MS = 45_000 + 2 * 15_000;

/** Broker flags: jobs scaled so that a few minutes show several cycles of each. */
function lifecycleFlags(compaction: boolean): string[] {
  return [
    '--log-retention-check-interval-ms', '10000',
    '--object-gc-interval-ms', '20000',
    '--object-gc-grace-ms', '60000',
    '--commit-deadline-ms', '30000',
    '--object-compaction', compaction ? 'on' : 'off',
    '--object-compaction-interval-ms', '15000',
    '--object-compaction-min-age-ms', '15000',
    '--object-compaction-window-ms', '45000',
  ];
}

async function runOnce(group: ProcessGroup, opts: LifecycleOptions, compaction: boolean, minutes: number): Promise<LifecycleRun> {
  const redis = await startRedis(group);
  const s3 = opts.storage === 's3rver' ? await startS3rver(group) : null;
  const storageUrl = s3 ? s3.url : `file://${group.subdir(`objects-lifecycle-${compaction ? 'on' : 'off'}-${Date.now()}`)}`;
  const label = `compaction ${compaction ? 'on' : 'off'}`;
  try {
    const redisBaseline = usedMemory(redis.url);
    const broker = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs: FLUSH_MS, args: lifecycleFlags(compaction), name: 'broker-lifecycle' });
    const samples: LifecycleSample[] = [];
    let produce: ProduceResult;
    const topic = 'bench-lifecycle';
    try {
      const admin = await connectBench(broker.port);
      // LogAppendTime: the pre-encoded batches are resent for minutes, so their own timestamps
      // would all be as old as the run; retention must see when each copy was appended.
      await createTopic(admin, topic, PARTITIONS, { 'retention.ms': String(opts.retentionMs), 'message.timestamp.type': 'LogAppendTime' });
      admin.close();
      const conns: WireClient[] = await Promise.all(Array.from({ length: 4 }, () => connectBench(broker.port)));
      const requests = buildProduceRequests({ topic, partitions: PARTITIONS, ...SHAPE });
      const requestsPerSec = (opts.mbPerSec * 1e6) / requests[0]!.payloadBytes;
      const started = performance.now();
      const sample = async (minute: number): Promise<void> => {
        const usage = await storeUsage(storageUrl);
        const s: LifecycleSample = {
          minute,
          objects: usage.objects,
          storedBytes: usage.bytes,
          redisUsedMemory: usedMemory(redis.url),
          indexEntries: indexEntries(redis.url),
          metrics: await broker.metrics(),
          brokerCpuSeconds: broker.cpuSeconds(),
        };
        samples.push(s);
        log(
          `${label} minute ${minute}: ${s.objects} objects, ${(s.storedBytes / 1e6).toFixed(0)} MB stored, ` +
            `redis ${(s.redisUsedMemory / 1e6).toFixed(1)} MB, ${s.indexEntries} index entries`,
        );
      };
      await sample(0);
      const sampler = (async () => {
        for (let m = 1; m <= minutes; m++) {
          const due = started + m * 60_000;
          while (performance.now() < due) await new Promise((r) => setTimeout(r, Math.min(1000, due - performance.now())));
          await sample(m);
        }
      })();
      produce = await produceOpenLoop({ connections: conns, requests, requestsPerSec, durationMs: minutes * 60_000 });
      await sampler;
      for (const c of conns) c.close();
      if (compaction) {
        // Runs join a group only once seen for the window: wait until the last writes are
        // compacted too (the window plus two cycles), so the catch-up read is of compacted data.
        await new Promise((r) => setTimeout(r, COMPACTION_SETTLE_MS));
      }
    } finally {
      await broker.stop();
    }

    // Catch-up: a fresh broker (cold caches) reads partition 0 from its log start.
    // Its own jobs stay idle: the data must not expire or move while it is read.
    const idle = ['--object-compaction', 'off', '--log-retention-check-interval-ms', '2147483647', '--object-gc-interval-ms', '2147483647'];
    const reader = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs: FLUSH_MS, args: idle, name: 'broker-catchup' });
    let catchUp: LifecycleRun['catchUp'];
    try {
      const conn = await connectBench(reader.port);
      const hws = await highWatermarks(conn, topic, PARTITIONS);
      const starts = await logStartOffsets(conn, topic, PARTITIONS);
      const before = await reader.metrics();
      const read = await fetchAll({ connections: [conn], topic, targets: [hws[0]!], startOffsets: [starts[0]!], partitionMaxBytes: 8 * MiB });
      const after = await reader.metrics();
      conn.close();
      const gets = (after.strata_object_store_gets_total ?? 0) - (before.strata_object_store_gets_total ?? 0);
      const mib = read.bytes / MiB;
      catchUp = { mib, gets, getsPerMiB: mib > 0 ? gets / mib : Number.NaN, errors: read.errors + read.incomplete };
    } finally {
      await reader.stop();
    }
    return { compaction, produce, samples, redisBaseline, catchUp };
  } finally {
    await s3?.stop();
    await redis.stop();
  }
}

/** Runs the lifecycle phase (compaction on, then off) and returns printable lines and the data. */
export async function runLifecycle(group: ProcessGroup, opts: LifecycleOptions): Promise<{ lines: string[]; runs: LifecycleRun[] }> {
  const runs: LifecycleRun[] = [];
  if (opts.minutes > 0) runs.push(await runOnce(group, opts, true, opts.minutes));
  if (opts.offMinutes > 0) runs.push(await runOnce(group, opts, false, opts.offMinutes));
  const lines: string[] = [
    `lifecycle: ${opts.storage} store, flush.ms ${FLUSH_MS}, ${PARTITIONS} partitions, ${opts.mbPerSec} MB/s offered (1 KiB records, LogAppendTime), retention.ms ${opts.retentionMs}`,
    '',
  ];
  for (const r of runs) {
    lines.push(`compaction ${r.compaction ? 'on' : 'off'}: produced ${(r.produce.bytes / 1e9).toFixed(2)} GB at ${r.produce.mbPerSec.toFixed(1)} MB/s, ${r.produce.errors} errors`);
    lines.push('| minute | objects | stored MB | redis used MB | index entries | PUT | GET | DELETE | LIST | broker CPU s |');
    lines.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const s of r.samples) {
      const m = s.metrics;
      lines.push(
        `| ${s.minute} | ${s.objects} | ${(s.storedBytes / 1e6).toFixed(0)} | ${(s.redisUsedMemory / 1e6).toFixed(2)} | ${s.indexEntries} | ` +
          `${m.strata_object_store_puts_total ?? 0} | ${m.strata_object_store_gets_total ?? 0} | ${m.strata_object_store_deletes_total ?? 0} | ` +
          `${m.strata_object_store_lists_total ?? 0} | ${s.brokerCpuSeconds.toFixed(1)} |`,
      );
    }
    const last = r.samples[r.samples.length - 1]!;
    const gb = r.produce.bytes / 1e9;
    const per = (k: string): string => ((last.metrics[k] ?? 0) / gb).toFixed(0);
    const redisGrowth = last.redisUsedMemory - r.redisBaseline;
    lines.push(
      `per GB written: ${per('strata_object_store_puts_total')} PUT, ${per('strata_object_store_gets_total')} GET, ` +
        `${per('strata_object_store_deletes_total')} DELETE, ${per('strata_object_store_lists_total')} LIST; broker CPU ${(last.brokerCpuSeconds / gb).toFixed(2)} s/GB`,
    );
    lines.push(
      `end state: Redis +${(redisGrowth / 1e6).toFixed(2)} MB over the empty broker = ${(redisGrowth / PARTITIONS / 1024).toFixed(1)} KiB per partition, ` +
        `${last.storedBytes > 0 ? (redisGrowth / (last.storedBytes / 1e9) / 1e6).toFixed(2) : '-'} MB per GB stored; ` +
        `compaction wrote ${last.metrics.strata_compaction_objects_written_total ?? 0} objects, GC deleted ${last.metrics.strata_object_gc_deleted_objects_total ?? 0}`,
    );
    lines.push(
      `catch-up read of partition 0 by a fresh broker: ${r.catchUp.mib.toFixed(1)} MiB in ${r.catchUp.gets} GETs = ${r.catchUp.getsPerMiB.toFixed(2)} GET/MiB, ${r.catchUp.errors} errors`,
      '',
    );
  }
  if (runs.length === 2 && runs[0]!.compaction && !runs[1]!.compaction) {
    const cpuPerGb = (r: LifecycleRun): number => r.samples[r.samples.length - 1]!.brokerCpuSeconds / (r.produce.bytes / 1e9);
    lines.push(`compaction CPU: ${(cpuPerGb(runs[0]!) - cpuPerGb(runs[1]!)).toFixed(2)} broker s/GB (on minus off; GC runs in both)`);
  }
  return { lines, runs };
}
