/**
 * Request-memory benchmark (issue 14, finding 4): the broker's resident memory before, during
 * and after a burst of connections that each send most of a huge request frame and stop, and
 * whether an honest producer is served meanwhile.
 *
 * It starts a private redis-server, a file store and one broker child (defaults unless
 * `--broker-arg` says otherwise: `socket.request.max.bytes` 100 MiB, request budget 256 MiB),
 * then:
 * 1. idle: RSS after a few quiet seconds;
 * 2. burst: N connections each write a 4-byte length of `--frame-mib` MiB and `--sent-mib` MiB
 *    of body, and stop; a producer sends one small acks=-1 batch every 100 ms throughout.
 *    "During" is the RSS once no stalled connection makes progress any more; "peak" the
 *    largest RSS sampled (every 100 ms) until then;
 * 3. after: the stalled connections close; RSS 1, 5, 15 and 30 s later.
 *
 * `npm run bench:request-memory -- [--connections 10] [--frame-mib 100] [--sent-mib 99]
 * [--broker-arg=--queued-max-request-bytes=...]` (or `npx tsx bench/request-memory.ts`; the
 * broker child always runs the built CLI, `npm run build`). Not part of `npm run bench`.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/harness/ports.js';
import { ErrorCode, type ProduceRequest } from '../wire/index.js';
import { encodeBatchSync } from '../wire/records/index.js';
import { WireClient, connectBench, createTopic } from './client.js';
import { ProcessGroup, startBroker, startRedis, type BrokerProcess, type Metrics } from './processes.js';

const MiB = 1024 * 1024;

interface Options {
  connections: number;
  frameBytes: number;
  sentBytes: number;
  brokerArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const o: Options = { connections: 10, frameBytes: 100 * MiB, sentBytes: 99 * MiB, brokerArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => inline ?? argv[++i] ?? '';
    if (flag === '--connections') o.connections = Number(value());
    else if (flag === '--frame-mib') o.frameBytes = Number(value()) * MiB;
    else if (flag === '--sent-mib') o.sentBytes = Number(value()) * MiB;
    else if (flag === '--broker-arg') o.brokerArgs.push(...value().split('=', 2));
    else throw new Error(`unknown option ${flag}; see the header of bench/request-memory.ts`);
  }
  if (!(o.sentBytes < o.frameBytes)) throw new Error('--sent-mib must be below --frame-mib, so that every frame stays partial');
  return o;
}

/** Resident set size of a process in bytes, from /proc. */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(0);

/**
 * One stalling connection: writes the frame length and `sentBytes` of body as fast as the
 * broker takes them, then stops. `progress` is the body bytes the socket has handed to the
 * kernel so far; a broker that stopped reading leaves it short of `sentBytes`.
 */
class Staller {
  readonly socket: Socket;
  progress = 0;
  done = false;

  constructor(port: number, frameBytes: number, sentBytes: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('error', () => undefined);
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(frameBytes, 0);
    const piece = Buffer.alloc(MiB, 0x5a);
    this.socket.write(prefix);
    const pump = (): void => {
      while (this.progress < sentBytes) {
        const n = Math.min(piece.length, sentBytes - this.progress);
        this.progress += n;
        if (!this.socket.write(piece.subarray(0, n))) {
          this.socket.once('drain', pump);
          return;
        }
      }
      this.done = true;
    };
    this.socket.once('connect', pump);
  }

  /** Body bytes written and flushed to the kernel (the rest sits in the socket's buffer). */
  get flushed(): number {
    return this.progress - this.socket.writableLength;
  }
}

/** A producer sending one small acks=-1 batch every 100 ms; counts answers and latencies. */
class HonestProducer {
  readonly #conn: WireClient;
  readonly #topic: string;
  #stopped = false;
  #loop: Promise<void> | null = null;
  ok = 0;
  failed = 0;
  maxLatencyMs = 0;

  constructor(conn: WireClient, topic: string) {
    this.#conn = conn;
    this.#topic = topic;
  }

  start(): void {
    this.#loop = (async () => {
      for (let i = 0; !this.#stopped; i++) {
        const records = encodeBatchSync([{ key: null, value: Buffer.from(`honest-${i}`), timestamp: Date.now() }], {});
        const body: ProduceRequest = { transactionalId: null, acks: -1, timeoutMs: 30_000, topicData: [{ name: this.#topic, partitionData: [{ index: 0, records }] }] };
        const t0 = performance.now();
        try {
          const res = await this.#conn.send(0, 9, body);
          const code = res.responses[0]!.partitionResponses[0]!.errorCode;
          if (code === ErrorCode.NONE) this.ok++;
          else this.failed++;
        } catch {
          this.failed++;
          return;
        }
        this.maxLatencyMs = Math.max(this.maxLatencyMs, performance.now() - t0);
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

function metricOr(m: Metrics, name: string): string {
  return name in m ? String(m[name]) : 'n/a';
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const group = new ProcessGroup();
  try {
    const redis = await startRedis(group, 'everysec');
    const broker: BrokerProcess = await startBroker(group, { redisUrl: redis.url, storageUrl: `file://${group.subdir('objects')}`, flushMs: 5, args: o.brokerArgs });
    const conn = await connectBench(broker.port);
    await createTopic(conn, 'request-memory', 1);
    const producer = new HonestProducer(conn, 'request-memory');
    producer.start();
    await sleep(3000);
    const idle = rssOf(broker.pid);
    const idleOk = producer.ok;

    const start = performance.now();
    const stallers = Array.from({ length: o.connections }, () => new Staller(broker.port, o.frameBytes, o.sentBytes));
    let peak = idle;
    let last = -1;
    let still = 0;
    // Settled: two seconds without progress on any stalled connection (all done, or paused).
    while (still < 20) {
      await sleep(100);
      peak = Math.max(peak, rssOf(broker.pid));
      const now = stallers.reduce((s, c) => s + c.flushed, 0);
      still = now === last ? still + 1 : 0;
      last = now;
    }
    const during = rssOf(broker.pid);
    const duringMetrics = await broker.metrics();
    const burstSeconds = (performance.now() - start) / 1000;
    const okDuringBurst = producer.ok - idleOk;
    const complete = stallers.filter((s) => s.done && s.socket.writableLength === 0).length;
    const sentMiB = stallers.map((s) => (s.flushed / MiB).toFixed(0));

    for (const s of stallers) s.socket.destroy();
    const after: [number, number][] = [];
    const closedAt = performance.now();
    for (const at of [1, 5, 15, 30]) {
      await sleep(closedAt + at * 1000 - performance.now());
      after.push([at, rssOf(broker.pid)]);
    }
    const afterMetrics = await broker.metrics();
    await producer.stop();
    conn.close();

    const lines = [
      `request memory: ${o.connections} connections × ${o.sentBytes / MiB} MiB of a ${o.frameBytes / MiB} MiB frame; broker args: ${o.brokerArgs.join(' ') || '(defaults)'}`,
      `  RSS idle                 ${mb(idle)} MB`,
      `  RSS peak during burst    ${mb(peak)} MB`,
      `  RSS during (settled)     ${mb(during)} MB   after ${burstSeconds.toFixed(1)} s; body MiB taken per connection: ${sentMiB.join(' ')} (${complete} complete)`,
      ...after.map(([at, rss]) => `  RSS ${String(at).padStart(2)} s after close     ${mb(rss)} MB`),
      `  request budget in use    during ${metricOr(duringMetrics, 'strata_request_memory_bytes')} B, after ${metricOr(afterMetrics, 'strata_request_memory_bytes')} B (limit ${metricOr(duringMetrics, 'strata_request_memory_limit_bytes')} B)`,
      `  connections paused       during ${metricOr(duringMetrics, 'strata_request_memory_waiting_connections')}, after ${metricOr(afterMetrics, 'strata_request_memory_waiting_connections')}`,
      `  honest producer          ${okDuringBurst} produces answered during the burst, ${producer.ok} in all, ${producer.failed} failed, slowest ${producer.maxLatencyMs.toFixed(0)} ms`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await group.stopAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`request-memory: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
