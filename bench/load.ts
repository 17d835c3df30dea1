/**
 * Load generators on the project's codec: pipelined Produce (closed loop for throughput, open
 * loop at a fixed rate for latency), read-everything Fetch, and an end-to-end probe (a steady
 * producer stamping send times, a long-polling consumer measuring their age on arrival).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/harness/ports.js';
import { ErrorCode, ZERO_UUID, decodeResponse, type FetchRequest, type ProduceRequest } from '../wire/index.js';
import { decodeBatchSync, encodeBatchSync } from '../wire/records/index.js';
import { WireClient, prepareRequest, type PreparedRequest } from './client.js';

/** Milliseconds since the epoch with sub-millisecond resolution (one clock for both ends). */
const nowMs = (): number => performance.timeOrigin + performance.now();

/** Percentiles of latency samples in milliseconds. */
export interface Latency {
  samples: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Summarises samples (sorted in place). */
export function latencyOf(samples: Float64Array | number[]): Latency {
  const a = samples instanceof Float64Array ? samples.sort() : Float64Array.from(samples).sort();
  const n = a.length;
  const at = (q: number): number => (n === 0 ? Number.NaN : a[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
  let sum = 0;
  for (const x of a) sum += x;
  return { samples: n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: n ? a[n - 1]! : Number.NaN, mean: n ? sum / n : Number.NaN };
}

/** A growable array of float64 samples. */
class Samples {
  #a = new Float64Array(1 << 14);
  #n = 0;
  push(x: number): void {
    if (this.#n === this.#a.length) {
      const b = new Float64Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.#n++] = x;
  }
  get values(): Float64Array {
    return this.#a.subarray(0, this.#n);
  }
}

/** What a produce load sends: record size, batch size, and how partitions group into requests. */
export interface ProduceShape {
  topic: string;
  partitions: number;
  recordBytes: number;
  recordsPerBatch: number;
  /** Batches (one per partition) in one Produce request. */
  partitionsPerRequest: number;
}

/**
 * Pre-encodes one Produce v9 (acks=-1) request per group of partitions; each partition gets
 * its own batch of random, uncompressed, non-idempotent records.
 */
export function buildProduceRequests(shape: ProduceShape): PreparedRequest[] {
  const groups = Math.ceil(shape.partitions / shape.partitionsPerRequest);
  const requests: PreparedRequest[] = [];
  for (let g = 0; g < groups; g++) {
    const partitionData: { index: number; records: Buffer }[] = [];
    let payload = 0;
    let records = 0;
    for (let k = 0; k < shape.partitionsPerRequest; k++) {
      const index = (g * shape.partitionsPerRequest + k) % shape.partitions;
      if (partitionData.some((p) => p.index === index)) continue;
      const value = randomBytes(shape.recordBytes);
      // Stamped now: brokers apply retention (7 days by default) to the batches' timestamps.
      const stampedAt = Date.now();
      const batch = encodeBatchSync(
        Array.from({ length: shape.recordsPerBatch }, (_, i) => ({ key: null, value: value.subarray(0), timestamp: stampedAt + i })),
        {},
      );
      partitionData.push({ index, records: batch });
      payload += batch.length;
      records += shape.recordsPerBatch;
    }
    const body: ProduceRequest = { transactionalId: null, acks: -1, timeoutMs: 30_000, topicData: [{ name: shape.topic, partitionData }] };
    requests.push(prepareRequest(0, 9, body, payload, records));
  }
  return requests;
}

/** The outcome of a produce load. */
export interface ProduceResult {
  seconds: number;
  bytes: number;
  records: number;
  requests: number;
  errors: number;
  /** Error codes seen, by code (first few only matter). */
  errorCodes: Record<number, number>;
  mbPerSec: number;
  recordsPerSec: number;
  latency: Latency;
  /** Open loop only: sends skipped because too many were outstanding (the broker fell behind). */
  skipped: number;
}

/** Counts one Produce v9 response; returns the number of failed partitions. */
function checkProduce(frame: Buffer, codes: Record<number, number>): number {
  const body = decodeResponse(frame, 0, 9).body;
  let failed = 0;
  for (const t of body.responses) {
    for (const p of t.partitionResponses) {
      if (p.errorCode !== ErrorCode.NONE) {
        failed++;
        codes[p.errorCode] = (codes[p.errorCode] ?? 0) + 1;
      }
    }
  }
  return failed;
}

export interface ClosedLoopOptions {
  connections: WireClient[];
  requests: PreparedRequest[];
  /** Requests kept in flight on each connection. */
  inflightPerConnection: number;
  durationMs: number;
}

/**
 * Throughput: every connection keeps `inflightPerConnection` requests outstanding, sending the
 * next as each answer arrives, until the duration ends; then waits for the stragglers.
 * Throughput counts acknowledged bytes over first send → last answer.
 */
export async function produceClosedLoop(opts: ClosedLoopOptions): Promise<ProduceResult> {
  const { connections, requests } = opts;
  const latencies = new Samples();
  const codes: Record<number, number> = {};
  let bytes = 0;
  let records = 0;
  let count = 0;
  let errors = 0;
  let outstanding = 0;
  let next = 0;
  const start = performance.now();
  const stopAt = start + opts.durationMs;
  let lastAnswer = start;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));

  const send = (conn: WireClient): void => {
    const req = requests[next++ % requests.length]!;
    const sentAt = performance.now();
    outstanding++;
    conn.sendPrepared(req, (frame) => {
      outstanding--;
      const now = performance.now();
      lastAnswer = now;
      count++;
      if (frame instanceof Error) errors++;
      else if (checkProduce(frame, codes) > 0) errors++;
      else {
        bytes += req.payloadBytes;
        records += req.records;
        latencies.push(now - sentAt);
      }
      if (now < stopAt && !(frame instanceof Error)) send(conn);
      else if (outstanding === 0) finished();
    });
  };
  for (let i = 0; i < opts.inflightPerConnection; i++) for (const c of connections) send(c);
  await done;
  const seconds = (lastAnswer - start) / 1000;
  return {
    seconds,
    bytes,
    records,
    requests: count,
    errors,
    errorCodes: codes,
    mbPerSec: bytes / seconds / 1e6,
    recordsPerSec: records / seconds,
    latency: latencyOf(latencies.values),
    skipped: 0,
  };
}

export interface OpenLoopOptions {
  connections: WireClient[];
  requests: PreparedRequest[];
  /** Requests per second, spread evenly over time and round-robin over connections. */
  requestsPerSec: number;
  durationMs: number;
  /** Sends are skipped (and counted) while this many are outstanding. */
  maxOutstanding?: number;
  /** Called with each answered request's send time (ms since start) and latency (ms). */
  onSample?: (sentAtMs: number, latencyMs: number) => void;
}

/**
 * Latency at a fixed offered load: requests go out on a schedule regardless of answers (so a
 * slow answer does not hide later ones), each timed from its write to its answer.
 */
export async function produceOpenLoop(opts: OpenLoopOptions): Promise<ProduceResult> {
  const { connections, requests } = opts;
  const maxOutstanding = opts.maxOutstanding ?? 2000;
  const latencies = new Samples();
  const codes: Record<number, number> = {};
  let bytes = 0;
  let records = 0;
  let count = 0;
  let errors = 0;
  let outstanding = 0;
  let sent = 0;
  let skipped = 0;
  const start = performance.now();
  let lastAnswer = start;
  const interval = setInterval(() => {
    const now = performance.now();
    const elapsed = Math.min(now - start, opts.durationMs);
    const due = Math.floor((elapsed * opts.requestsPerSec) / 1000);
    while (sent + skipped < due) {
      if (outstanding >= maxOutstanding) {
        skipped++;
        continue;
      }
      const i = sent++;
      const req = requests[i % requests.length]!;
      const conn = connections[i % connections.length]!;
      const sentAt = performance.now();
      outstanding++;
      conn.sendPrepared(req, (frame) => {
        outstanding--;
        const t = performance.now();
        lastAnswer = t;
        count++;
        if (frame instanceof Error) errors++;
        else if (checkProduce(frame, codes) > 0) errors++;
        else {
          bytes += req.payloadBytes;
          records += req.records;
          latencies.push(t - sentAt);
          opts.onSample?.(sentAt - start, t - sentAt);
        }
      });
    }
  }, 1);
  await sleep(opts.durationMs);
  clearInterval(interval);
  const deadline = performance.now() + 30_000;
  while (outstanding > 0 && performance.now() < deadline) await sleep(5);
  const seconds = opts.durationMs / 1000;
  return {
    seconds: Math.max(seconds, (lastAnswer - start) / 1000),
    bytes,
    records,
    requests: count,
    errors: errors + outstanding,
    errorCodes: codes,
    mbPerSec: bytes / seconds / 1e6,
    recordsPerSec: records / seconds,
    latency: latencyOf(latencies.values),
    skipped,
  };
}

/** The outcome of reading partitions back. */
export interface FetchResult {
  seconds: number;
  bytes: number;
  records: number;
  batches: number;
  requests: number;
  mbPerSec: number;
  recordsPerSec: number;
  /** Partitions that did not reach their target offset (error or timeout). */
  incomplete: number;
  errors: number;
}

export interface FetchAllOptions {
  connections: WireClient[];
  topic: string;
  /** Target (high watermark) per partition; partition p is read from 0 to targets[p]. */
  targets: number[];
  partitionMaxBytes: number;
  timeoutMs?: number;
  /** Where each partition's read starts (default 0; e.g. the log starts after retention). */
  startOffsets?: number[];
}

function fetchRequest(topic: string, partitions: { partition: number; fetchOffset: number }[], maxBytes: number, partitionMaxBytes: number, maxWaitMs: number): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs,
    minBytes: 1,
    maxBytes,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        topicId: ZERO_UUID,
        partitions: partitions.map((p) => ({
          partition: p.partition,
          currentLeaderEpoch: -1,
          fetchOffset: BigInt(p.fetchOffset),
          lastFetchedEpoch: -1,
          logStartOffset: -1n,
          partitionMaxBytes,
          replicaDirectoryId: ZERO_UUID,
        })),
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  };
}

/** Walks the batches of a records region: bytes, records, and the offset after the last batch. */
function walkBatches(records: Buffer, expectOffset: number): { bytes: number; records: number; batches: number; next: number; gap: boolean } {
  let pos = 0;
  let next = expectOffset;
  let count = 0;
  let batches = 0;
  let gap = false;
  while (pos + 61 <= records.length) {
    const size = 12 + records.readInt32BE(pos + 8);
    if (pos + size > records.length) break;
    const base = Number(records.readBigInt64BE(pos));
    // A fetch inside a batch returns the whole batch; only the first may start before `next`.
    if (base > next) gap = true;
    next = base + records.readInt32BE(pos + 23) + 1;
    count += records.readInt32BE(pos + 57);
    batches++;
    pos += size;
  }
  return { bytes: pos, records: count, batches, next, gap };
}

/**
 * Reads every partition from offset 0 (or its start offset) to its target with one fetch stream per partition
 * (Fetch v12, maxWaitMs 0), streams spread over the connections, all in parallel.
 */
export async function fetchAll(opts: FetchAllOptions): Promise<FetchResult> {
  const { connections, topic, targets } = opts;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let bytes = 0;
  let records = 0;
  let batches = 0;
  let requests = 0;
  let errors = 0;
  let incomplete = 0;
  const start = performance.now();
  const stream = async (partition: number): Promise<void> => {
    const conn = connections[partition % connections.length]!;
    let offset = opts.startOffsets?.[partition] ?? 0;
    const target = targets[partition]!;
    while (offset < target) {
      if (performance.now() - start > timeoutMs) {
        incomplete++;
        return;
      }
      const res = await conn.send(1, 12, fetchRequest(topic, [{ partition, fetchOffset: offset }], opts.partitionMaxBytes, opts.partitionMaxBytes, 0));
      requests++;
      const p = res.responses[0]!.partitions[0]!;
      if (p.errorCode !== ErrorCode.NONE || p.records === null) {
        if (p.errorCode !== ErrorCode.NONE) {
          errors++;
          incomplete++;
          return;
        }
        continue;
      }
      const w = walkBatches(p.records as Buffer, offset);
      if (w.gap) errors++;
      bytes += w.bytes;
      records += w.records;
      batches += w.batches;
      offset = w.next;
    }
  };
  await Promise.all(targets.map((_, p) => stream(p)));
  const seconds = (performance.now() - start) / 1000;
  return { seconds, bytes, records, batches, requests, mbPerSec: bytes / seconds / 1e6, recordsPerSec: records / seconds, incomplete, errors };
}

export interface BoundedFetchOptions {
  connection: WireClient;
  topic: string;
  /** Each partition's high watermark; every request names all of them. */
  targets: readonly number[];
  /** The request's max_bytes; each partition may give up to 8× more on its own. */
  maxBytes: number;
  requests: number;
}

/** What {@link boundedFetch} answered: requests made and record bytes returned. */
export interface BoundedFetchResult {
  requests: number;
  bytes: number;
  errors: number;
}

/**
 * A consumer of many partitions with a small request limit: each Fetch names every partition
 * (partition_max_bytes 8 × max_bytes) and moves on from what came back, so the broker must
 * honour max_bytes while reading to keep object-store reads near the bytes it answers.
 */
export async function boundedFetch(opts: BoundedFetchOptions): Promise<BoundedFetchResult> {
  const offsets = opts.targets.map(() => 0);
  let bytes = 0;
  let errors = 0;
  let requests = 0;
  for (let i = 0; i < opts.requests; i++) {
    const parts = offsets.map((fetchOffset, partition) => ({ partition, fetchOffset })).filter((p) => p.fetchOffset < opts.targets[p.partition]!);
    if (parts.length === 0) break;
    const res = await opts.connection.send(1, 12, fetchRequest(opts.topic, parts, opts.maxBytes, opts.maxBytes * 8, 0));
    requests++;
    for (const p of res.responses[0]!.partitions) {
      if (p.errorCode !== ErrorCode.NONE) errors++;
      if (p.records === null || (p.records as Buffer).length === 0) continue;
      const w = walkBatches(p.records as Buffer, offsets[p.partitionIndex]!);
      if (w.gap) errors++;
      bytes += w.bytes;
      offsets[p.partitionIndex] = w.next;
    }
  }
  return { requests, bytes, errors };
}

export interface EndToEndOptions {
  producer: WireClient;
  consumer: WireClient;
  topic: string;
  partitions: number;
  recordsPerSec: number;
  recordBytes: number;
  durationMs: number;
  /** How often the producer sends a batch (all its records carry that send time). */
  tickMs?: number;
}

export interface EndToEndResult {
  records: number;
  latency: Latency;
  produceErrors: number;
  missing: number;
}

/**
 * End-to-end latency: the producer sends a batch every `tickMs` to the next partition, each
 * record's value starting with its send time (float64 ms since the epoch); the consumer
 * long-polls all partitions (Fetch v12, minBytes 1, maxWaitMs 500) and records, per record,
 * arrival time − send time.
 */
export async function endToEnd(opts: EndToEndOptions): Promise<EndToEndResult> {
  const tickMs = opts.tickMs ?? 5;
  const perTick = Math.max(1, Math.round((opts.recordsPerSec * tickMs) / 1000));
  const latencies = new Samples();
  const filler = randomBytes(opts.recordBytes);
  let produced = 0;
  let produceErrors = 0;
  let consumed = 0;
  let producing = true;

  const offsets = Array.from({ length: opts.partitions }, () => 0);
  // After the producer stops, the consumer has this long to see the rest.
  let drainUntil = Number.POSITIVE_INFINITY;
  const consumer = (async () => {
    while (producing || (consumed < produced && performance.now() < drainUntil)) {
      const res = await opts.consumer.send(
        1,
        12,
        fetchRequest(opts.topic, offsets.map((fetchOffset, partition) => ({ partition, fetchOffset })), 8 * 1024 * 1024, 1024 * 1024, 500),
      );
      const arrived = nowMs();
      for (const p of res.responses[0]!.partitions) {
        if (p.errorCode !== ErrorCode.NONE || p.records === null) continue;
        const region = p.records as Buffer;
        let pos = 0;
        while (pos + 61 <= region.length) {
          const size = 12 + region.readInt32BE(pos + 8);
          if (pos + size > region.length) break;
          const batch = decodeBatchSync(region.subarray(pos, pos + size));
          for (const r of batch.records) {
            if (r.offset < offsets[p.partitionIndex]!) continue;
            latencies.push(arrived - r.value!.readDoubleLE(0));
            consumed++;
          }
          offsets[p.partitionIndex] = batch.baseOffset + batch.lastOffsetDelta + 1;
          pos += size;
        }
      }
    }
  })();

  const start = performance.now();
  let tick = 0;
  const pending: Promise<void>[] = [];
  while (performance.now() - start < opts.durationMs) {
    const partition = tick % opts.partitions;
    const sentAt = nowMs();
    const records = Array.from({ length: perTick }, () => {
      const value = Buffer.allocUnsafe(opts.recordBytes);
      filler.copy(value);
      value.writeDoubleLE(sentAt, 0);
      return { key: null, value, timestamp: Math.floor(sentAt) };
    });
    const body: ProduceRequest = {
      transactionalId: null,
      acks: -1,
      timeoutMs: 30_000,
      topicData: [{ name: opts.topic, partitionData: [{ index: partition, records: encodeBatchSync(records, {}) }] }],
    };
    produced += perTick;
    pending.push(
      opts.producer.send(0, 9, body).then(
        (r) => {
          if (r.responses[0]!.partitionResponses[0]!.errorCode !== ErrorCode.NONE) produceErrors++;
        },
        () => {
          produceErrors++;
        },
      ),
    );
    tick++;
    const nextAt = start + tick * tickMs;
    await sleep(Math.max(0, nextAt - performance.now()));
  }
  await Promise.all(pending);
  drainUntil = performance.now() + 5_000;
  producing = false;
  await consumer;
  return { records: consumed, latency: latencyOf(latencies.values), produceErrors, missing: Math.max(0, produced - consumed) };
}
