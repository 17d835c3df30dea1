/**
 * The Strata benchmark (`npm run bench`; docs/performance.md). For each configuration —
 * storage ∈ {file, s3rver} × flush.ms ∈ {5, 250} — it starts a private redis-server (AOF,
 * `appendfsync always`, as `strata dev` does), the object store, and a broker child process
 * on loopback, then measures:
 *
 * 1. Produce throughput (acks=-1, Produce v9, pre-encoded batches, pipelined on several
 *    connections) for 1 KiB and 100 B records; produce latency at ~50% of that throughput,
 *    at the produce target (100 MB/s) and at a light fixed load (10 MB/s) (open loop, so a
 *    slow answer cannot hide the next ones).
 * 2. Fetch throughput reading everything back from offset 0: from the broker that wrote it
 *    (write cache) and from a second, fresh broker (block cache, ranged GETs). Then a third
 *    fresh broker answers Fetches naming every partition with max_bytes 1 MiB: the GETs and
 *    bytes it reads from the store per MiB it answers show whether it reads past the limit.
 * 3. End-to-end latency: steady producer stamping send times, long-polling consumer.
 * 4. Object-store requests per GB and broker CPU seconds per GB (from /metrics and /proc).
 * 5. PUTs per second at 1 and at 100 partitions for the same total rate.
 * 6. A librdkafka (@confluentinc/kafka-javascript) producer: acks=-1, linger.ms 5.
 *
 * Prints a table and writes bench/results/latest.json. `--profile` instead profiles one
 * broker (file store) under produce and fetch load and prints where its CPU time goes.
 *
 * Options: --quick, --seconds N, --storage file,s3rver, --flush-ms 5,250, --profile.
 * `--lifecycle [--minutes N] [--off-minutes N]` runs the storage-lifecycle phase instead
 * (bench/lifecycle.ts): a steady writer under retention, compaction and GC.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WireClient, connectBench, createTopic, highWatermarks } from './client.js';
import { formatSummary, summarizeProfile, type CpuProfile, type ProfileSummary } from './cpuprofile.js';
import {
  buildProduceRequests,
  endToEnd,
  boundedFetch,
  fetchAll,
  produceClosedLoop,
  produceOpenLoop,
  type BoundedFetchResult,
  type EndToEndResult,
  type FetchResult,
  type ProduceResult,
  type ProduceShape,
} from './load.js';
import { ProcessGroup, REPO_ROOT, cpuSecondsOf, machineBusySeconds, startBroker, startRedis, startS3rver, type BrokerProcess, type Metrics, type Service } from './processes.js';
import { BROKER_NODE_FLAGS } from '../src/commands/broker.js';
import { DEFAULT_LIFECYCLE, runLifecycle, type LifecycleOptions } from './lifecycle.js';

type Storage = 'file' | 's3rver';

interface Options {
  quick: boolean;
  seconds: number;
  storages: Storage[];
  flushMs: number[];
  profile: boolean;
  /** Run the storage-lifecycle phase instead (bench/lifecycle.ts). */
  lifecycle: LifecycleOptions | null;
  /** Wait up to this many seconds for other processes to leave the CPU before each configuration. */
  waitQuietSeconds: number;
}

const GiB = 1024 ** 3;
const RESULTS = path.join(REPO_ROOT, 'bench', 'results');

/** Load shapes: one batch per partition, several partitions per request. */
const CONNECTIONS = 4;
const INFLIGHT_PER_CONNECTION = 32;
const PARTITIONS = 16;
const SHAPE_1K = { recordBytes: 1024, recordsPerBatch: 32, partitionsPerRequest: 4 };
const SHAPE_100 = { recordBytes: 100, recordsPerBatch: 320, partitionsPerRequest: 4 };
/** The produce throughput the broker must reach (issue 3); a latency run offers exactly this. */
const TARGET_PRODUCE_MB_PER_SEC = 100;
/** The light-load latency run: the same requests at this fixed rate. */
const LIGHT_LATENCY_MB_PER_SEC = 10;
/** The partition-count run: one 32 KiB batch per request at a fixed total rate. */
const PUT_RATE_MB_PER_SEC = 10;
const E2E_RECORDS_PER_SEC = 1000;
/** The writing broker's write cache holds the whole data set, so "warm" means write cache. */
const WRITER_CACHE_BYTES = 4 * GiB;

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { quick: false, seconds: 8, storages: ['file', 's3rver'], flushMs: [5, 250], profile: false, lifecycle: null, waitQuietSeconds: 0 };
  const lifecycle = (): LifecycleOptions => (o.lifecycle ??= { ...DEFAULT_LIFECYCLE });
  let secondsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--lifecycle':
        lifecycle();
        break;
      case '--minutes':
        lifecycle().minutes = Number(value());
        if (!(lifecycle().minutes >= 0 && lifecycle().minutes <= 240)) throw new Error('--minutes must be 0 to 240');
        break;
      case '--off-minutes':
        lifecycle().offMinutes = Number(value());
        if (!(lifecycle().offMinutes >= 0 && lifecycle().offMinutes <= 240)) throw new Error('--off-minutes must be 0 to 240');
        break;
      case '--seconds':
        o.seconds = Number(value());
        secondsGiven = true;
        if (!(o.seconds >= 1 && o.seconds <= 120)) throw new Error('--seconds must be 1 to 120');
        break;
      case '--storage':
        o.storages = value().split(',') as Storage[];
        if (o.storages.some((s) => s !== 'file' && s !== 's3rver')) throw new Error('--storage takes file, s3rver or both (file,s3rver)');
        break;
      case '--flush-ms':
        o.flushMs = value().split(',').map(Number);
        if (o.flushMs.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--flush-ms takes whole numbers, e.g. 5,250');
        break;
      case '--wait-quiet':
        o.waitQuietSeconds = Number(value());
        if (!(o.waitQuietSeconds >= 0)) throw new Error('--wait-quiet takes seconds');
        break;
      case '--help':
      case '-h':
        console.log('Usage: npm run bench -- [--quick] [--seconds N] [--storage file,s3rver] [--flush-ms 5,250] [--profile] [--wait-quiet SECONDS]');
        console.log('       npm run bench -- --lifecycle [--minutes 15] [--off-minutes 4] [--storage file|s3rver]');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${flag}; see --help`);
    }
  }
  if (o.quick && !secondsGiven) o.seconds = 3;
  if (o.lifecycle) o.lifecycle.storage = o.storages[0]!;
  return o;
}

/** CPU seconds of the processes involved, and the wall clock. */
interface CpuMark {
  at: number;
  broker: number;
  redis: number;
  s3rver: number;
  bench: number;
  /** Busy CPU seconds of the whole machine. */
  machine: number;
  metrics: Metrics;
}

interface PhaseCost {
  seconds: number;
  /** CPU cores each process used on average during the phase. */
  cores: { broker: number; redis: number; s3rver: number; bench: number; other: number };
  cpuSeconds: { broker: number; redis: number; s3rver: number; bench: number; other: number };
  puts: number;
  gets: number;
  bytesWritten: number;
  bytesRead: number;
  segments: number;
  blockCacheMisses: number;
  retries: number;
  storeErrors: number;
}

function benchCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function mark(broker: BrokerProcess, redis: Service, s3: Service | null): Promise<CpuMark> {
  const metrics = await broker.metrics();
  return {
    at: performance.now(),
    broker: broker.cpuSeconds(),
    redis: cpuSecondsOf(redis.pid) ?? Number.NaN,
    s3rver: s3 ? (cpuSecondsOf(s3.pid) ?? Number.NaN) : 0,
    bench: benchCpu(),
    machine: machineBusySeconds() ?? Number.NaN,
    metrics,
  };
}

/** `extraCpu`: CPU seconds of the phase's own helper processes (the librdkafka client). */
function cost(a: CpuMark, b: CpuMark, extraCpu = 0): PhaseCost {
  const seconds = (b.at - a.at) / 1000;
  const d = (k: string): number => (b.metrics[k] ?? 0) - (a.metrics[k] ?? 0);
  const own = { broker: b.broker - a.broker, redis: b.redis - a.redis, s3rver: b.s3rver - a.s3rver, bench: b.bench - a.bench + extraCpu };
  // Everything else the machine did meanwhile: other people's processes (and the idle second
  // broker, a few milliseconds). Clamped: /proc counters tick at 10 ms.
  const other = Math.max(0, b.machine - a.machine - own.broker - own.redis - own.s3rver - own.bench);
  const cpuSeconds = { ...own, other };
  return {
    seconds,
    cpuSeconds,
    cores: {
      broker: cpuSeconds.broker / seconds,
      redis: cpuSeconds.redis / seconds,
      s3rver: cpuSeconds.s3rver / seconds,
      bench: cpuSeconds.bench / seconds,
      other: cpuSeconds.other / seconds,
    },
    puts: d('strata_object_store_puts_total'),
    gets: d('strata_object_store_gets_total'),
    bytesWritten: d('strata_object_store_bytes_written_total'),
    bytesRead: d('strata_object_store_bytes_read_total'),
    segments: d('strata_segments_flushed_total'),
    blockCacheMisses: d('strata_block_cache_misses_total'),
    retries: d('strata_object_store_retries_total'),
    storeErrors: d('strata_object_store_errors_total'),
  };
}

async function connectAll(port: number, n: number): Promise<WireClient[]> {
  return Promise.all(Array.from({ length: n }, () => connectBench(port)));
}

function closeAll(conns: WireClient[]): void {
  for (const c of conns) c.close();
}

interface RdkafkaResult {
  produced: number;
  delivered: number;
  failed: number;
  errors: string[];
  seconds: number;
  valueBytes: number;
  cpuSeconds: number;
  mbPerSec: number;
  recordsPerSec: number;
}

async function runRdkafka(bootstrap: string, topic: string, durationMs: number): Promise<RdkafkaResult> {
  const script = path.join(REPO_ROOT, 'dist', 'bench', 'rdkafka-producer.js');
  const args = { bootstrap, topic, recordBytes: 1024, durationMs, lingerMs: 5, batchSize: 1_000_000 };
  const child = spawn(process.execPath, [script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), durationMs + 120_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`librdkafka producer exited with ${code}: ${stderr.trim()}`);
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as Omit<RdkafkaResult, 'mbPerSec' | 'recordsPerSec'>;
  return { ...r, mbPerSec: r.valueBytes / r.seconds / 1e6, recordsPerSec: r.delivered / r.seconds };
}

/** Everything measured for one storage × flush.ms configuration. */
/** An open-loop produce run at a fixed offered load. */
type LatencyRun = ProduceResult & { offeredMbPerSec: number; cost: PhaseCost };

/** What the table calls the loads of the three latency runs, in the order they run. */
const LATENCY_LOADS = ['half load', 'target load', 'light load'] as const;

interface ConfigResult {
  storage: Storage;
  flushMs: number;
  produce1k: ProduceResult & { cost: PhaseCost };
  produce100: ProduceResult & { cost: PhaseCost };
  latency: LatencyRun;
  latencyAtTarget: LatencyRun;
  latencyLight: LatencyRun;
  /** `dataSetMbPerSec`: how fast the fetch data set was written (by a broker with a large write cache). */
  fetchWarm: FetchResult & { cost: PhaseCost; dataSetMbPerSec: number };
  fetchCold: FetchResult & { cost: PhaseCost };
  /** Fetches of every partition with max_bytes 1 MiB from a fresh broker: store reads per answered byte. */
  fetchBounded: BoundedFetchResult & { cost: PhaseCost };
  endToEnd: EndToEndResult;
  putRate: { partitions1: { putsPerSec: number; mbPerSec: number; cost: PhaseCost }; partitions100: { putsPerSec: number; mbPerSec: number; cost: PhaseCost }; boundPerSec: number };
  rdkafka: RdkafkaResult & { cost: PhaseCost };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** CPU cores the machine spends busy over `ms` (nothing of the benchmark's runs then). */
async function busyCores(ms: number): Promise<number> {
  const a = machineBusySeconds();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineBusySeconds();
  return a === null || b === null ? 0 : (b - a) / (ms / 1000);
}

/**
 * Waits (up to `maxSeconds`) until the machine has been quiet — under 0.2 busy cores — for
 * three seconds in a row; returns the busy cores seen last. Other processes on a 2-core
 * machine would otherwise take their share out of the numbers.
 */
async function waitQuiet(maxSeconds: number): Promise<number> {
  const until = Date.now() + maxSeconds * 1000;
  let quiet = 0;
  let cores = await busyCores(1000);
  while (Date.now() < until) {
    quiet = cores < 0.2 ? quiet + 1 : 0;
    if (quiet >= 3) break;
    cores = await busyCores(1000);
  }
  if (cores >= 0.2) log(`other processes keep ${cores.toFixed(2)} cores busy; the numbers will be lower than this machine can do`);
  return cores;
}

/**
 * Writes the page cache's dirty data back to disk before a measured phase. s3rver stores
 * objects as plain buffered files and never syncs them, so a phase can leave gigabytes for the
 * kernel to write back, and a writeback burst landing in the next phase stalls Redis's AOF
 * fsyncs: one s3rver latency run measured a p99 of 1080 ms that way (the same run without a
 * burst: 51–69 ms). Syncing first keeps each phase's disk to itself.
 */
function settleDisk(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

async function runConfig(group: ProcessGroup, storage: Storage, flushMs: number, opts: Options): Promise<ConfigResult> {
  const ms = opts.seconds * 1000;
  if (opts.waitQuietSeconds > 0) await waitQuiet(opts.waitQuietSeconds);
  const redis = await startRedis(group);
  const s3 = storage === 's3rver' ? await startS3rver(group) : null;
  const storageUrl = s3 ? s3.url : `file://${group.subdir(`objects-${storage}-${flushMs}-${Date.now()}`)}`;
  const stopStore = async (): Promise<void> => {
    await s3?.stop();
    await redis.stop();
  };
  const measure = async <T extends object>(b: BrokerProcess, fn: () => Promise<T>): Promise<T & { cost: PhaseCost }> => {
    settleDisk();
    const before = await mark(b, redis, s3);
    const r = await fn();
    const after = await mark(b, redis, s3);
    const extra = 'cpuSeconds' in r && typeof r.cpuSeconds === 'number' ? r.cpuSeconds : 0;
    return { ...r, cost: cost(before, after, extra) };
  };
  const closed = async (b: BrokerProcess, shape: ProduceShape, durationMs = ms): Promise<ProduceResult & { cost: PhaseCost }> => {
    const conns = await connectAll(b.port, CONNECTIONS);
    try {
      const requests = buildProduceRequests(shape);
      return await measure(b, () => produceClosedLoop({ connections: conns, requests, inflightPerConnection: INFLIGHT_PER_CONNECTION, durationMs }));
    } finally {
      closeAll(conns);
    }
  };
  const open = async (b: BrokerProcess, shape: ProduceShape, mbPerSec: number, durationMs: number): Promise<ProduceResult & { cost: PhaseCost }> => {
    const conns = await connectAll(b.port, CONNECTIONS);
    try {
      const requests = buildProduceRequests(shape);
      const requestsPerSec = (mbPerSec * 1e6) / requests[0]!.payloadBytes;
      return await measure(b, () => produceOpenLoop({ connections: conns, requests, requestsPerSec, durationMs }));
    } finally {
      closeAll(conns);
    }
  };
  const label = `${storage}/${flushMs}ms`;

  // Produce runs: one broker with the production defaults (256 MiB write cache).
  let produce1k, produce100, latency, latencyAtTarget, latencyLight, e2e, partitions1, partitions100, rdkafka;
  try {
    const broker = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, name: 'broker-writer' });
    const admin = await connectBench(broker.port);
    try {
      const topics = { t1k: 'bench-1k', t100: 'bench-100b', lat: 'bench-latency', target: 'bench-latency-target', light: 'bench-latency-light', e2e: 'bench-e2e', p1: 'bench-1p', p100: 'bench-100p', rd: 'bench-rdkafka' };
      await createTopic(admin, 'bench-warmup', PARTITIONS);
      await createTopic(admin, topics.t1k, PARTITIONS);
      await createTopic(admin, topics.t100, PARTITIONS);
      await createTopic(admin, topics.lat, PARTITIONS);
      await createTopic(admin, topics.target, PARTITIONS);
      await createTopic(admin, topics.light, PARTITIONS);
      await createTopic(admin, topics.e2e, 4);
      await createTopic(admin, topics.p1, 1);
      await createTopic(admin, topics.p100, 100);
      await createTopic(admin, topics.rd, PARTITIONS);

      // Warm-up (not measured): JIT, connections, Redis scripts and the file system settle.
      log(`${label}: warm-up`);
      await closed(broker, { topic: 'bench-warmup', partitions: PARTITIONS, ...SHAPE_1K }, opts.quick ? 1000 : 2000);

      log(`${label}: produce 1 KiB records, ${opts.seconds} s`);
      produce1k = await closed(broker, { topic: topics.t1k, partitions: PARTITIONS, ...SHAPE_1K });

      log(`${label}: produce 100 B records, ${opts.seconds} s`);
      produce100 = await closed(broker, { topic: topics.t100, partitions: PARTITIONS, ...SHAPE_100 });

      const offeredMbPerSec = produce1k.mbPerSec / 2;
      log(`${label}: produce latency at ${offeredMbPerSec.toFixed(0)} MB/s (half the throughput), ${opts.seconds} s`);
      latency = { ...(await open(broker, { topic: topics.lat, partitions: PARTITIONS, ...SHAPE_1K }, offeredMbPerSec, ms)), offeredMbPerSec };

      log(`${label}: produce latency at ${TARGET_PRODUCE_MB_PER_SEC} MB/s (the produce target), ${opts.seconds} s`);
      const atTarget = { topic: topics.target, partitions: PARTITIONS, ...SHAPE_1K };
      latencyAtTarget = { ...(await open(broker, atTarget, TARGET_PRODUCE_MB_PER_SEC, ms)), offeredMbPerSec: TARGET_PRODUCE_MB_PER_SEC };

      log(`${label}: produce latency at ${LIGHT_LATENCY_MB_PER_SEC} MB/s, ${opts.seconds} s`);
      const light = { topic: topics.light, partitions: PARTITIONS, ...SHAPE_1K };
      latencyLight = { ...(await open(broker, light, LIGHT_LATENCY_MB_PER_SEC, ms)), offeredMbPerSec: LIGHT_LATENCY_MB_PER_SEC };

      log(`${label}: end-to-end latency at ${E2E_RECORDS_PER_SEC} records/s, ${opts.seconds} s`);
      const [p, c] = await connectAll(broker.port, 2);
      settleDisk();
      e2e = await endToEnd({ producer: p!, consumer: c!, topic: topics.e2e, partitions: 4, recordsPerSec: E2E_RECORDS_PER_SEC, recordBytes: 1024, durationMs: ms });
      closeAll([p!, c!]);

      log(`${label}: PUTs per second at ${PUT_RATE_MB_PER_SEC} MB/s over 1 and over 100 partitions`);
      const putRun = async (topic: string, partitions: number): Promise<{ putsPerSec: number; mbPerSec: number; cost: PhaseCost }> => {
        const r = await open(broker, { topic, partitions, recordBytes: 1024, recordsPerBatch: 32, partitionsPerRequest: 1 }, PUT_RATE_MB_PER_SEC, Math.max(3000, ms * 0.75));
        return { putsPerSec: r.cost.puts / r.cost.seconds, mbPerSec: r.mbPerSec, cost: r.cost };
      };
      partitions1 = await putRun(topics.p1, 1);
      partitions100 = await putRun(topics.p100, 100);

      log(`${label}: librdkafka producer, 1 KiB records, ${opts.seconds} s`);
      rdkafka = await measure(broker, () => runRdkafka(broker.address, topics.rd, ms));
    } finally {
      admin.close();
      await broker.stop();
    }

    // Fetch runs: a data set written by a broker whose write cache holds all of it (so its
    // reads are write-cache reads), then read again by a fresh broker (block cache, GETs).
    log(`${label}: write the fetch data set (1 KiB records, ${opts.seconds} s)`);
    const writer = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, args: ['--write-cache-bytes', String(WRITER_CACHE_BYTES)], name: 'broker-fetch' });
    let fetchWarm, fetchCold, fetchBounded, dataSet;
    try {
      const admin2 = await connectBench(writer.port);
      await createTopic(admin2, 'bench-fetch', PARTITIONS);
      dataSet = await closed(writer, { topic: 'bench-fetch', partitions: PARTITIONS, ...SHAPE_1K });
      const targets = await highWatermarks(admin2, 'bench-fetch', PARTITIONS);
      admin2.close();
      log(`${label}: fetch ${(dataSet.bytes / 1e6).toFixed(0)} MB back from the broker that wrote it`);
      const warmConns = await connectAll(writer.port, CONNECTIONS);
      fetchWarm = await measure(writer, () => fetchAll({ connections: warmConns, topic: 'bench-fetch', targets, partitionMaxBytes: 8 * 1024 * 1024 }));
      closeAll(warmConns);
      log(`${label}: fetch it from a fresh broker`);
      const cold = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, name: 'broker-cold' });
      try {
        const coldConns = await connectAll(cold.port, CONNECTIONS);
        fetchCold = await measure(cold, () => fetchAll({ connections: coldConns, topic: 'bench-fetch', targets, partitionMaxBytes: 8 * 1024 * 1024 }));
        closeAll(coldConns);
      } finally {
        await cold.stop();
      }
      log(`${label}: fetch all partitions with max_bytes 1 MiB from another fresh broker`);
      const bounded = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, name: 'broker-bounded' });
      try {
        const conn = await connectBench(bounded.port);
        fetchBounded = await measure(bounded, () => boundedFetch({ connection: conn, topic: 'bench-fetch', targets, maxBytes: 1024 * 1024, requests: 200 }));
        conn.close();
      } finally {
        await bounded.stop();
      }
    } finally {
      await writer.stop();
    }
    return {
      storage,
      flushMs,
      produce1k,
      produce100,
      latency,
      latencyAtTarget,
      latencyLight,
      fetchWarm: { ...fetchWarm, dataSetMbPerSec: dataSet.mbPerSec },
      fetchCold,
      fetchBounded,
      endToEnd: e2e,
      putRate: { partitions1, partitions100, boundPerSec: 1000 / flushMs },
      rdkafka,
    };
  } finally {
    await stopStore();
  }
}

function machine(): Record<string, string | number> {
  const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout?.trim().match(/v=(\S+)/)?.[1] ?? 'unknown';
  let rdkafkaVersion = 'unknown';
  try {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', '@confluentinc', 'kafka-javascript', 'package.json'), 'utf8')) as { version: string; librdkafka?: string };
    rdkafkaVersion = `${pkg.version} (librdkafka ${pkg.librdkafka ?? '?'})`;
  } catch {
    // Reported as unknown.
  }
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / GiB),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: redisVersion,
    confluentKafkaJavascript: rdkafkaVersion,
  };
}

const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '—');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '—');
const k = (n: number): string => (Number.isFinite(n) ? `${(n / 1000).toFixed(0)}k` : '—');
const perGB = (count: number, bytes: number): number => (bytes > 0 ? count / (bytes / 1e9) : Number.NaN);
const MIB = 1024 * 1024;
const perMiB = (count: number, bytes: number): number => (bytes > 0 ? count / (bytes / MIB) : Number.NaN);

/** The measured phases of a configuration, with their costs. */
function phases(r: ConfigResult): { name: string; cost: PhaseCost }[] {
  return [
    { name: 'produce 1 KiB', cost: r.produce1k.cost },
    { name: 'fetch (writing broker)', cost: r.fetchWarm.cost },
    { name: 'fetch (fresh broker)', cost: r.fetchCold.cost },
    { name: 'produce 100 B', cost: r.produce100.cost },
    { name: 'produce latency', cost: r.latency.cost },
    { name: 'produce latency, target load', cost: r.latencyAtTarget.cost },
    { name: 'produce latency, light load', cost: r.latencyLight.cost },
    { name: 'PUT rate, 1 partition', cost: r.putRate.partitions1.cost },
    { name: 'PUT rate, 100 partitions', cost: r.putRate.partitions100.cost },
    { name: 'librdkafka', cost: r.rdkafka.cost },
  ];
}

function table(results: ConfigResult[]): string[] {
  const head = ['', ...results.map((r) => `${r.storage} ${r.flushMs}ms`)];
  const rows: string[][] = [];
  const row = (label: string, cell: (r: ConfigResult) => string): void => {
    rows.push([label, ...results.map(cell)]);
  };
  row('produce 1 KiB  MB/s', (r) => f0(r.produce1k.mbPerSec));
  row('produce 1 KiB  records/s', (r) => k(r.produce1k.recordsPerSec));
  row('produce 100 B  MB/s', (r) => f0(r.produce100.mbPerSec));
  row('produce 100 B  records/s', (r) => k(r.produce100.recordsPerSec));
  for (const [i, load] of LATENCY_LOADS.entries()) {
    const run = (r: ConfigResult): LatencyRun => latencyRuns(r)[i]!;
    row(`produce latency: ${load} MB/s`, (r) => f0(run(r).offeredMbPerSec));
    row('  p50 / p99 / p999 ms', (r) => `${f0(run(r).latency.p50)} / ${f0(run(r).latency.p99)} / ${f0(run(r).latency.p999)}`);
    row('  p99 ≤ flush.ms + 20 ms?', (r) => (run(r).latency.p99 <= r.flushMs + 20 ? 'yes' : 'NO'));
  }
  row('fetch, writing broker MB/s', (r) => f0(r.fetchWarm.mbPerSec));
  row('fetch, fresh broker MB/s', (r) => f0(r.fetchCold.mbPerSec));
  row('end-to-end p50 / p99 ms', (r) => `${f0(r.endToEnd.latency.p50)} / ${f0(r.endToEnd.latency.p99)}`);
  row('PUTs per GB (produce 1 KiB)', (r) => f0(perGB(r.produce1k.cost.puts, r.produce1k.bytes)));
  row('GETs per GB (writing broker)', (r) => f0(perGB(r.fetchWarm.cost.gets, r.fetchWarm.bytes)));
  row('GETs per GB (fresh broker)', (r) => f0(perGB(r.fetchCold.cost.gets, r.fetchCold.bytes)));
  row('max_bytes 1 MiB: GETs / MiB read per MiB answered', (r) => `${f2(perMiB(r.fetchBounded.cost.gets, r.fetchBounded.bytes))} / ${f2(perMiB(r.fetchBounded.cost.bytesRead / MIB, r.fetchBounded.bytes))}`);
  row('broker CPU s/GB produce 1 KiB', (r) => f2(perGB(r.produce1k.cost.cpuSeconds.broker, r.produce1k.bytes)));
  row('broker CPU s/GB produce 100 B', (r) => f2(perGB(r.produce100.cost.cpuSeconds.broker, r.produce100.bytes)));
  row('broker CPU s/GB fetch writing', (r) => f2(perGB(r.fetchWarm.cost.cpuSeconds.broker, r.fetchWarm.bytes)));
  row('broker CPU s/GB fetch fresh', (r) => f2(perGB(r.fetchCold.cost.cpuSeconds.broker, r.fetchCold.bytes)));
  row('cores, produce 1 KiB: broker', (r) => f2(r.produce1k.cost.cores.broker));
  row('  redis / s3rver / load gen', (r) => `${f2(r.produce1k.cost.cores.redis)} / ${f2(r.produce1k.cost.cores.s3rver)} / ${f2(r.produce1k.cost.cores.bench)}`);
  row('cores, fetch writing: broker / load gen', (r) => `${f2(r.fetchWarm.cost.cores.broker)} / ${f2(r.fetchWarm.cost.cores.bench)}`);
  row('cores, fetch fresh: broker / load gen', (r) => `${f2(r.fetchCold.cost.cores.broker)} / ${f2(r.fetchCold.cost.cores.bench)}`);
  row('other processes on the machine, cores (max)', (r) => f2(Math.max(...phases(r).map((p) => p.cost.cores.other))));
  row(`PUTs/s @${PUT_RATE_MB_PER_SEC} MB/s: 1 partition`, (r) => f1(r.putRate.partitions1.putsPerSec));
  row('  100 partitions', (r) => f1(r.putRate.partitions100.putsPerSec));
  row('  bound 1000/flush.ms', (r) => f0(r.putRate.boundPerSec));
  row('librdkafka 1 KiB  MB/s', (r) => f0(r.rdkafka.mbPerSec));
  row('librdkafka 1 KiB  records/s', (r) => k(r.rdkafka.recordsPerSec));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
}

function notes(results: ConfigResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const problems: string[] = [];
    const add = (what: string, n: number): void => {
      if (n > 0) problems.push(`${what} ${n}`);
    };
    add('produce 1 KiB errors', r.produce1k.errors);
    add('produce 100 B errors', r.produce100.errors);
    add('latency-run errors', r.latency.errors);
    add('latency-run skipped sends (broker fell behind)', r.latency.skipped);
    add('target-load latency-run errors', r.latencyAtTarget.errors + r.latencyAtTarget.skipped);
    add('light latency-run errors', r.latencyLight.errors + r.latencyLight.skipped);
    add('fetch (writing) errors', r.fetchWarm.errors + r.fetchWarm.incomplete);
    add('fetch (fresh) errors', r.fetchCold.errors + r.fetchCold.incomplete);
    add('fetch (max_bytes 1 MiB) errors', r.fetchBounded.errors);
    add('fetch (writing) block-cache misses', r.fetchWarm.cost.blockCacheMisses);
    add('end-to-end missing records', r.endToEnd.missing);
    add('end-to-end produce errors', r.endToEnd.produceErrors);
    add('librdkafka delivery failures', r.rdkafka.failed);
    add('object store retries', r.produce1k.cost.retries + r.fetchCold.cost.retries + r.rdkafka.cost.retries);
    const busy = phases(r).filter((p) => p.cost.cores.other > 0.15);
    if (busy.length) {
      problems.push(`other processes used CPU during ${busy.map((p) => `${p.name} (${f2(p.cost.cores.other)} cores)`).join(', ')}: those numbers are low`);
    }
    if (problems.length) out.push(`${r.storage} ${r.flushMs}ms: ${problems.join(', ')}`);
    if (r.produce1k.errors > 0) out.push(`  produce error codes: ${JSON.stringify(r.produce1k.errorCodes)}`);
    if (r.rdkafka.errors.length) out.push(`  librdkafka: ${r.rdkafka.errors.join('; ')}`);
  }
  return out;
}

/** The open-loop latency runs of a configuration, in the order of {@link LATENCY_LOADS}. */
function latencyRuns(r: ConfigResult): LatencyRun[] {
  return [r.latency, r.latencyAtTarget, r.latencyLight];
}

/** The latency target's verdict over the latency runs: met at all loads, at none, or which. */
function latencyVerdict(r: ConfigResult): string {
  const runs = latencyRuns(r);
  const loads = (ok: boolean): string => runs.filter((x) => x.latency.p99 <= r.flushMs + 20 === ok).map((x) => f0(x.offeredMbPerSec)).join(', ');
  const met = loads(true);
  const missed = loads(false);
  if (missed === '') return 'met';
  return met === '' ? 'NOT met' : `met at ${met} MB/s, NOT at ${missed} MB/s`;
}

function targets(results: ConfigResult[]): string[] {
  const out: string[] = [];
  for (const r of results.filter((x) => x.storage === 'file')) {
    const fetch = Math.min(r.fetchWarm.mbPerSec, r.fetchCold.mbPerSec);
    out.push(
      `file ${r.flushMs}ms: produce ${f0(r.produce1k.mbPerSec)} MB/s (target ≥ 100: ${r.produce1k.mbPerSec >= 100 ? 'met' : 'NOT met'}), ` +
        `fetch ${f0(r.fetchWarm.mbPerSec)}/${f0(r.fetchCold.mbPerSec)} MB/s writing/fresh (target ≥ 200: ${fetch >= 200 ? 'met' : r.fetchWarm.mbPerSec >= 200 ? 'met from cache only' : 'NOT met'}), ` +
        `produce p99 ${latencyRuns(r).map((x) => `${f0(x.latency.p99)} ms at ${f0(x.offeredMbPerSec)} MB/s`).join(', ')} ` +
        `(target ≤ ${r.flushMs + 20}: ${latencyVerdict(r)})`,
    );
  }
  return out;
}

async function runBenchmark(group: ProcessGroup, opts: Options): Promise<void> {
  const m = machine();
  const started = new Date();
  const results: ConfigResult[] = [];
  for (const storage of opts.storages) {
    for (const flushMs of opts.flushMs) results.push(await runConfig(group, storage, flushMs, opts));
  }
  const lines = [
    `Strata benchmark — ${started.toISOString()}, ${opts.quick ? 'quick' : 'full'} (${opts.seconds} s per run)`,
    `machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGiB} GiB, ${m.os}; node ${m.node}; redis ${m.redis} (AOF, appendfsync always); ${m.confluentKafkaJavascript}`,
    `brokers: node ${BROKER_NODE_FLAGS.join(' ')} (the heap settings strata dev uses)`,
    `load: acks=-1 Produce v9 over ${CONNECTIONS} connections × ${INFLIGHT_PER_CONNECTION} in flight, ${PARTITIONS} partitions, ` +
      `${SHAPE_1K.partitionsPerRequest} batches per request (1 KiB: ${SHAPE_1K.recordsPerBatch} records/batch; 100 B: ${SHAPE_100.recordsPerBatch}); ` +
      'MB/s = record-batch bytes (librdkafka: value bytes), 1 MB = 10^6 B',
    `fetch: Fetch v12, one stream per partition, 8 MiB per response, reading a data set written for it (${opts.seconds} s of 1 KiB produce) by a broker whose write cache holds it all; the fresh broker has default caches; other runs use a broker with default settings`,
    `end-to-end: ${E2E_RECORDS_PER_SEC} records/s of 1 KiB, a batch every 5 ms, 4 partitions, consumer long-polls (maxWaitMs 500)`,
    '',
    ...table(results),
    '',
    ...targets(results),
    ...notes(results),
  ];
  console.log(lines.join('\n'));
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, 'latest.json');
  writeFileSync(file, JSON.stringify({ started: started.toISOString(), machine: m, options: opts, table: lines, results }, null, 2) + '\n');
  log(`wrote ${path.relative(process.cwd(), file)}`);
}

/** Sends SIGUSR2 (profile hook toggle) and, when stopping, waits for `<n>.cpuprofile`. */
async function toggleProfile(broker: BrokerProcess, dir: string, stopN?: number): Promise<string | null> {
  process.kill(broker.pid, 'SIGUSR2');
  if (stopN === undefined) {
    await new Promise((r) => setTimeout(r, 200));
    return null;
  }
  const file = path.join(dir, `${stopN}.cpuprofile`);
  const deadline = Date.now() + 30_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`the broker did not write ${file}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return file;
}

async function runProfile(group: ProcessGroup, opts: Options): Promise<void> {
  const flushMs = opts.flushMs.length === 1 ? opts.flushMs[0]! : 250;
  const storage = opts.storages.length === 1 ? opts.storages[0]! : 'file';
  const ms = opts.seconds * 1000;
  if (opts.waitQuietSeconds > 0) await waitQuiet(opts.waitQuietSeconds);
  const redis = await startRedis(group);
  const s3 = storage === 's3rver' ? await startS3rver(group) : null;
  const storageUrl = s3 ? s3.url : `file://${group.subdir('objects-profile')}`;
  const writerDir = group.subdir('profile-writer');
  const coldDir = group.subdir('profile-cold');
  const outDir = path.join(RESULTS, 'profiles');
  mkdirSync(outDir, { recursive: true });
  const fetchDir = group.subdir('profile-fetch');
  const broker = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, profileDir: writerDir, name: 'broker-writer' });
  const admin = await connectBench(broker.port);
  const summaries: { phase: string; file: string; summary: ProfileSummary; result: unknown; stats: unknown }[] = [];
  const keep = (phase: string, file: string, result: unknown): void => {
    const dest = path.join(outDir, `${storage}-${flushMs}ms-${phase}.cpuprofile`);
    copyFileSync(file, dest);
    const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, REPO_ROOT, 40);
    const statsFile = file.replace(/\.cpuprofile$/, '.stats.json');
    const stats: unknown = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) : null;
    summaries.push({ phase, file: path.relative(REPO_ROOT, dest), summary, result, stats });
  };
  try {
    await createTopic(admin, 'profile-1k', PARTITIONS);
    await createTopic(admin, 'profile-100b', PARTITIONS);
    await createTopic(admin, 'profile-latency', PARTITIONS);
    /** Runs `load` inside a profile window of broker `b` (whose hook writes into `dir`). */
    const counts = new Map<string, number>();
    const window = async <T>(phase: string, load: () => Promise<T>, describe: (r: T, cpu: number) => unknown, b = broker, dir = writerDir): Promise<T> => {
      log(`profile ${storage}/${flushMs}ms: ${phase}`);
      await toggleProfile(b, dir);
      const before = b.cpuSeconds();
      const r = await load();
      const cpu = b.cpuSeconds() - before;
      const n = (counts.get(dir) ?? 0) + 1;
      counts.set(dir, n);
      keep(phase, (await toggleProfile(b, dir, n))!, describe(r, cpu));
      return r;
    };
    const produceDescription = (r: ProduceResult, cpu: number) => ({
      mbPerSec: Math.round(r.mbPerSec),
      recordsPerSec: Math.round(r.recordsPerSec),
      latencyMs: { p50: Math.round(r.latency.p50), p99: Math.round(r.latency.p99), max: Math.round(r.latency.max) },
      errors: r.errors,
      brokerCores: Number((cpu / r.seconds).toFixed(2)),
    });
    const closedLoad = async (topic: string, shape: typeof SHAPE_1K, durationMs = ms): Promise<ProduceResult> => {
      const conns = await connectAll(broker.port, CONNECTIONS);
      try {
        const requests = buildProduceRequests({ topic, partitions: PARTITIONS, ...shape });
        return await produceClosedLoop({ connections: conns, requests, inflightPerConnection: INFLIGHT_PER_CONNECTION, durationMs });
      } finally {
        closeAll(conns);
      }
    };
    await createTopic(admin, 'profile-warmup', PARTITIONS);
    log(`profile ${storage}/${flushMs}ms: warm-up`);
    await closedLoad('profile-warmup', SHAPE_1K, 2000);
    const p1k = await window('produce-1k', () => closedLoad('profile-1k', SHAPE_1K), produceDescription);
    await window('produce-100b', () => closedLoad('profile-100b', SHAPE_100), produceDescription);
    // The latency run of the benchmark: open loop at half the throughput just measured.
    await window(
      'produce-latency',
      async () => {
        const conns = await connectAll(broker.port, CONNECTIONS);
        try {
          const requests = buildProduceRequests({ topic: 'profile-latency', partitions: PARTITIONS, ...SHAPE_1K });
          return await produceOpenLoop({ connections: conns, requests, requestsPerSec: (p1k.mbPerSec * 1e6) / 2 / requests[0]!.payloadBytes, durationMs: ms });
        } finally {
          closeAll(conns);
        }
      },
      produceDescription,
    );

    admin.close();
    await broker.stop();

    // Fetch windows: a data set written by a broker whose write cache holds it all, read back
    // by that broker and then by a fresh one (as the benchmark does).
    const writer = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, args: ['--write-cache-bytes', String(WRITER_CACHE_BYTES)], profileDir: fetchDir, name: 'broker-fetch' });
    try {
      const admin2 = await connectBench(writer.port);
      await createTopic(admin2, 'profile-fetch', PARTITIONS);
      log(`profile ${storage}/${flushMs}ms: writing the fetch data set`);
      const conns = await connectAll(writer.port, CONNECTIONS);
      await produceClosedLoop({ connections: conns, requests: buildProduceRequests({ topic: 'profile-fetch', partitions: PARTITIONS, ...SHAPE_1K }), inflightPerConnection: INFLIGHT_PER_CONNECTION, durationMs: ms });
      closeAll(conns);
      const targets = await highWatermarks(admin2, 'profile-fetch', PARTITIONS);
      admin2.close();
      const fetchDescription = (r: FetchResult, cpu: number) => ({ mbPerSec: Math.round(r.mbPerSec), mb: Math.round(r.bytes / 1e6), errors: r.errors, brokerCores: Number((cpu / r.seconds).toFixed(2)) });
      const warmConns = await connectAll(writer.port, CONNECTIONS);
      await window('fetch-writer', () => fetchAll({ connections: warmConns, topic: 'profile-fetch', targets, partitionMaxBytes: 8 * 1024 * 1024 }), fetchDescription, writer, fetchDir);
      closeAll(warmConns);
      const cold = await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs, profileDir: coldDir, name: 'broker-cold' });
      try {
        const coldConns = await connectAll(cold.port, CONNECTIONS);
        await window('fetch-fresh', () => fetchAll({ connections: coldConns, topic: 'profile-fetch', targets, partitionMaxBytes: 8 * 1024 * 1024 }), fetchDescription, cold, coldDir);
        closeAll(coldConns);
      } finally {
        await cold.stop();
      }
    } finally {
      await writer.stop();
    }
  } finally {
    admin.close();
    await broker.stop();
    await s3?.stop();
    await redis.stop();
  }
  const lines: string[] = [
    `Strata broker CPU profile — ${storage} store, flush.ms ${flushMs}, ${opts.seconds} s produce windows, node ${process.version}, ${os.availableParallelism()} cores`,
    'brokerCores counts every thread of the broker process (GC helpers, libuv pool); "busy" below is the main thread.',
  ];
  for (const s of summaries) {
    lines.push('', `== ${s.phase} ${JSON.stringify(s.result)} (${s.file})`);
    if (s.stats) lines.push(`  GC pauses and event-loop delay: ${JSON.stringify(s.stats, (_k, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(1)) : v))}`);
    lines.push(...formatSummary(s.phase, s.summary, { functions: 25, areas: 15, inclusive: 20 }));
  }
  console.log(lines.join('\n'));
  const base = `profile-${storage}-${flushMs}ms`;
  writeFileSync(path.join(RESULTS, `${base}.txt`), lines.join('\n') + '\n');
  writeFileSync(path.join(RESULTS, `${base}.json`), JSON.stringify(summaries, null, 2) + '\n');
  log(`wrote bench/results/${base}.txt and the .cpuprofile files under bench/results/profiles/`);
}

async function runLifecyclePhase(group: ProcessGroup, opts: LifecycleOptions): Promise<void> {
  const m = machine();
  const started = new Date();
  const { lines, runs } = await runLifecycle(group, opts);
  const header = [`Strata lifecycle benchmark — ${started.toISOString()}`, `machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGiB} GiB, ${m.os}; node ${m.node}; redis ${m.redis}`];
  const all = [...header, ...lines];
  console.log(all.join('\n'));
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'lifecycle.txt'), all.join('\n') + '\n');
  writeFileSync(path.join(RESULTS, 'lifecycle.json'), JSON.stringify({ started: started.toISOString(), machine: m, options: opts, table: all, runs }, null, 2) + '\n');
  log('wrote bench/results/lifecycle.txt and lifecycle.json');
}

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const group = new ProcessGroup();
  try {
    if (opts.profile) await runProfile(group, opts);
    else if (opts.lifecycle) await runLifecyclePhase(group, opts.lifecycle);
    else await runBenchmark(group, opts);
  } finally {
    await group.stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
