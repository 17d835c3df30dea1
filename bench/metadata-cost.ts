/**
 * What an all-topics Metadata costs with many partitions (issue 14, finding 5), on a real
 * broker process: a private redis-server (AOF, `appendfsync always`, as `strata dev` runs it),
 * a file store and `node dist/src/cli.js broker`, all on loopback.
 *
 * 1. Creates `--partitions` partitions (default 10,000) spread over `--topics` topics.
 * 2. Sends `--requests` all-topics Metadata v12 requests one after another and reports the
 *    response size and the time per request (p50, p99).
 * 3. Runs an honest producer (small batches, acks=-1, open loop at a fixed rate) alone, then
 *    again while `--concurrent` connections each keep one all-topics Metadata in flight, and
 *    reports its latency both times, the Metadata requests answered meanwhile and the
 *    broker's CPU.
 *
 * `npm run bench:metadata -- [--partitions 10000] [--topics 10]
 * [--brokers 1] [--requests 50] [--concurrent 20] [--seconds 5]`. Not part of `npm run bench`.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/harness/ports.js';
import { decodeResponse, type MetadataRequest } from '../wire/index.js';
import { WireClient, connectBench, createTopic, prepareRequest } from './client.js';
import { buildProduceRequests, latencyOf, produceOpenLoop, type Latency, type ProduceResult } from './load.js';
import { ProcessGroup, startBroker, startRedis, type BrokerProcess } from './processes.js';

interface Options {
  partitions: number;
  topics: number;
  brokers: number;
  requests: number;
  concurrent: number;
  seconds: number;
}

const USAGE = 'usage: node dist/bench/metadata-cost.js [--partitions N] [--topics N] [--brokers N] [--requests N] [--concurrent N] [--seconds N]';

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { partitions: 10_000, topics: 10, brokers: 1, requests: 50, concurrent: 20, seconds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const key = flag.replace(/^--/, '') as keyof Options;
    const value = Number(argv[++i]);
    if (!(key in opts) || !Number.isInteger(value) || value < 1) throw new Error(`${flag} ${argv[i] ?? ''}: ${USAGE}`);
    opts[key] = value;
  }
  if (opts.partitions < opts.topics) throw new Error(`--partitions ${opts.partitions} is fewer than --topics ${opts.topics}; ${USAGE}`);
  return opts;
}

/** Metadata v12 for every topic (a null topic list), as clients refresh it. */
const ALL_TOPICS: MetadataRequest = { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };

/** Sends one prepared request and resolves with its response frame. */
function send(conn: WireClient, req: ReturnType<typeof prepareRequest>): Promise<Buffer> {
  return new Promise((resolve, reject) => conn.sendPrepared(req, (frame) => (frame instanceof Error ? reject(frame) : resolve(frame))));
}

const fmt = (ms: number): string => ms.toFixed(ms < 10 ? 2 : 1);
const fmtLatency = (l: Latency): string => `p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms, max ${fmt(l.max)} ms (${l.samples} samples)`;

/** Creates the topics, splitting the partitions as evenly as the count allows. */
async function createTopics(conn: WireClient, opts: Options): Promise<void> {
  const base = Math.floor(opts.partitions / opts.topics);
  const extra = opts.partitions % opts.topics;
  for (let t = 0; t < opts.topics; t++) await createTopic(conn, `metadata-cost-${t}`, base + (t < extra ? 1 : 0));
}

/** Sequential all-topics Metadata: response size and time per request. */
async function sequential(conn: WireClient, opts: Options): Promise<{ bytes: number; topics: number; partitions: number; latency: Latency }> {
  const req = prepareRequest(3, 12, ALL_TOPICS);
  // Warm-up, and one decode to check what comes back.
  const first = await send(conn, req);
  const body = decodeResponse(first, 3, 12).body;
  const partitions = body.topics.reduce((n, t) => n + t.partitions.length, 0);
  for (let i = 0; i < 4; i++) await send(conn, req);
  const samples: number[] = [];
  for (let i = 0; i < opts.requests; i++) {
    const t0 = performance.now();
    await send(conn, req);
    samples.push(performance.now() - t0);
  }
  // The frame here starts at the correlation id; on the wire it has a 4-byte length before it.
  return { bytes: first.length + 4, topics: body.topics.length, partitions, latency: latencyOf(samples) };
}

/** Keeps one all-topics Metadata in flight on each connection until `stop` is set. */
function metadataStorm(conns: WireClient[], state: { stop: boolean; answered: number; failed: number }): Promise<void> {
  const req = prepareRequest(3, 12, ALL_TOPICS);
  return Promise.all(
    conns.map(async (c) => {
      while (!state.stop) {
        try {
          await send(c, req);
          state.answered++;
        } catch {
          state.failed++;
          return;
        }
      }
    }),
  ).then(() => undefined);
}

async function honestProducer(conn: WireClient, seconds: number): Promise<ProduceResult> {
  // 1 KiB × 4 records per batch, one partition per request, 200 requests a second: a light,
  // latency-sensitive client.
  const requests = buildProduceRequests({ topic: 'metadata-cost-honest', partitions: 4, recordBytes: 1024, recordsPerBatch: 4, partitionsPerRequest: 1 });
  return produceOpenLoop({ connections: [conn], requests, requestsPerSec: 200, durationMs: seconds * 1000 });
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const group = new ProcessGroup();
  try {
    const redis = await startRedis(group);
    const storageUrl = `file://${group.subdir('objects')}`;
    const brokers: BrokerProcess[] = [];
    // Room for the partitions asked for, whatever the defaults of the limits are.
    const limits = ['--max-partitions', String(opts.partitions + 100), '--max-partitions-per-topic', String(Math.max(10_000, Math.ceil(opts.partitions / opts.topics)))];
    for (let b = 0; b < opts.brokers; b++) brokers.push(await startBroker(group, { redisUrl: redis.url, storageUrl, flushMs: 5, args: limits, name: `broker-${b}` }));
    const broker = brokers[0]!;
    const admin = await connectBench(broker.port);
    const t0 = performance.now();
    await createTopics(admin, opts);
    const createMs = performance.now() - t0;
    await createTopic(admin, 'metadata-cost-honest', 4);
    // Brokers learn of each other through heartbeats; let every Metadata name all of them.
    await sleep(opts.brokers > 1 ? 3000 : 500);

    const seq = await sequential(admin, opts);
    const cpu0 = broker.cpuSeconds();

    const quiet = await honestProducer(admin, opts.seconds);
    const cpuQuiet = broker.cpuSeconds() - cpu0;

    const stormConns = await Promise.all(Array.from({ length: opts.concurrent }, () => connectBench(broker.port)));
    const state = { stop: false, answered: 0, failed: 0 };
    const storm = metadataStorm(stormConns, state);
    await sleep(200);
    const cpu1 = broker.cpuSeconds();
    const answeredBefore = state.answered;
    const stormStart = performance.now();
    const loaded = await honestProducer(admin, opts.seconds);
    const stormSeconds = (performance.now() - stormStart) / 1000;
    const answered = state.answered - answeredBefore;
    const cpu2 = broker.cpuSeconds();
    state.stop = true;
    await storm;
    for (const c of stormConns) c.close();
    admin.close();

    const lines = [
      `metadata cost: ${seq.partitions} partitions over ${seq.topics} topics, ${opts.brokers} broker(s); topics created in ${createMs.toFixed(0)} ms`,
      `  all-topics Metadata v12: ${(seq.bytes / 1024).toFixed(0)} KiB per response; ${fmtLatency(seq.latency)} over ${opts.requests} sequential requests`,
      `  honest producer alone (200 req/s, 4 KiB batches, acks=-1): ${fmtLatency(quiet.latency)}, ${quiet.errors} errors`,
      `  honest producer with ${opts.concurrent} concurrent all-topics Metadata: ${fmtLatency(loaded.latency)}, ${loaded.errors} errors`,
      `  Metadata answered meanwhile: ${answered} (${(answered / stormSeconds).toFixed(1)}/s, ${((answered * seq.bytes) / stormSeconds / 1e6).toFixed(1)} MB/s), ${state.failed} connections failed`,
      `  broker CPU: ${(cpuQuiet / quiet.seconds).toFixed(2)} cores with the producer alone, ${((cpu2 - cpu1) / stormSeconds).toFixed(2)} cores during the storm`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await group.stopAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`metadata-cost: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
