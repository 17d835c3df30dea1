/**
 * Test helper: shared pieces of the client compatibility suites — unique topic names, client
 * child processes with hard deadlines, a batch-header reader, and the exact "every record
 * once, in order per partition" check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { Compression, splitBatches, type CompressionCodec } from '../../wire/records/index.js';
import { RawClient } from './raw-client.js';
import type { ReadRecord } from './read-all.js';
import { oneFetchRequest } from './topics.js';

/** The two object stores every compatibility scenario runs against. */
export const STORAGES = ['file', 's3'] as const;

/** A topic name unique to this run: `<prefix>-<8 hex>`. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** The API keys the broker advertises in ApiVersions. */
export async function advertisedApiKeys(bootstrap: string): Promise<Set<number>> {
  const client = await RawClient.connect(bootstrap, 'compat-api-versions');
  try {
    const res = await client.send(ApiKey.ApiVersions, 3, { clientSoftwareName: 'strata-compat', clientSoftwareVersion: '1.0.0' });
    if (res.errorCode !== ErrorCode.NONE) throw new Error(`ApiVersions: error ${res.errorCode}`);
    return new Set(res.apiKeys.map((k) => k.apiKey));
  } finally {
    client.close();
  }
}

/**
 * The codec a librdkafka producer configured with `codec` actually writes to this broker.
 * librdkafka enables LZ4 only when the broker advertises FindCoordinator (its feature map,
 * `RD_KAFKA_FEATURE_LZ4` in rdkafka_feature.c, dates LZ4 by that API's 0.8.2 release); without
 * it an lz4 producer logs "Broker does not support compression type lz4: not compressing
 * batch" and sends the batch uncompressed.
 */
export async function librdkafkaStoredCodec(bootstrap: string, codec: CompressionCodec): Promise<CompressionCodec> {
  if (codec !== Compression.LZ4) return codec;
  return (await advertisedApiKeys(bootstrap)).has(ApiKey.FindCoordinator) ? codec : Compression.NONE;
}

/** One record a test produced, in produce order; `partition` undefined when the client chose it. */
export interface ExpectedRecord {
  partition?: number;
  key: string | null;
  value: string;
  headers: [string, string | null][];
  timestamp: number;
}

/**
 * Asserts that `read` (from readAll, ordered by partition then offset) holds every expected
 * record exactly once, with key, value, headers and timestamp intact, in the partition the
 * producer asked for, at offsets 0..n-1 of each partition, and in produce order within each
 * partition. Values must be unique; they identify records. Reports the first few differences
 * only, so a 100,000-record run fails readably.
 */
export function expectExactlyOnce(read: ReadRecord[], expected: ExpectedRecord[]): void {
  const indexByValue = new Map<string, number>();
  for (const [i, e] of expected.entries()) indexByValue.set(e.value, i);
  expect(indexByValue.size, 'expected values must be unique').toBe(expected.length);

  const problems: string[] = [];
  const note = (p: string): void => {
    if (problems.length < 10) problems.push(p);
  };
  const seen = new Set<number>();
  const lastIndex = new Map<number, number>();
  const nextOffset = new Map<number, number>();
  for (const r of read) {
    const i = r.value === null ? undefined : indexByValue.get(r.value);
    if (i === undefined) {
      note(`unexpected record ${r.partition}@${r.offset}: ${JSON.stringify(r)}`);
      continue;
    }
    if (seen.has(i)) note(`record ${JSON.stringify(r.value)} read twice (again at ${r.partition}@${r.offset})`);
    seen.add(i);
    const e = expected[i]!;
    if (e.partition !== undefined && e.partition !== r.partition) note(`${JSON.stringify(e.value)} in partition ${r.partition}, produced to ${e.partition}`);
    const got = { key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp };
    const want = { key: e.key, value: e.value, headers: e.headers, timestamp: e.timestamp };
    if (JSON.stringify(got) !== JSON.stringify(want)) note(`${r.partition}@${r.offset}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    const offset = nextOffset.get(r.partition) ?? 0;
    if (r.offset !== offset) note(`partition ${r.partition}: offset ${r.offset} where ${offset} was next`);
    nextOffset.set(r.partition, r.offset + 1);
    const before = lastIndex.get(r.partition) ?? -1;
    if (i <= before) note(`partition ${r.partition}: ${JSON.stringify(e.value)} (produced #${i}) after produced #${before}`);
    lastIndex.set(r.partition, i);
  }
  const missing = expected.filter((_, i) => !seen.has(i));
  if (missing.length > 0) note(`${missing.length} of ${expected.length} records never read back, first: ${JSON.stringify(missing.slice(0, 3))}`);
  expect(problems).toEqual([]);
  expect(read.length).toBe(expected.length);
}

/** The header of one stored batch, as a Fetch returns it. */
export interface BatchInfo {
  partition: number;
  baseOffset: number;
  recordCount: number;
  compression: CompressionCodec;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

/** Reads the batch headers of every partition of `topic` (0..numPartitions-1) up to the high watermark. */
export async function readBatches(bootstrap: string, topic: string, numPartitions: number): Promise<BatchInfo[]> {
  const client = await RawClient.connect(bootstrap, 'compat-batches');
  try {
    const out: BatchInfo[] = [];
    for (let partition = 0; partition < numPartitions; partition++) {
      let offset = 0;
      for (;;) {
        const res = await client.send(ApiKey.Fetch, 11, oneFetchRequest(topic, partition, BigInt(offset), 0));
        const p = res.responses[0]!.partitions[0]!;
        if (p.errorCode !== ErrorCode.NONE) throw new Error(`fetch ${topic}/${partition}@${offset}: error ${p.errorCode}`);
        const batches = splitBatches(p.records as Buffer).filter((b) => b.nextOffset > offset);
        if (batches.length === 0) break;
        for (const b of batches) {
          out.push({
            partition,
            baseOffset: b.baseOffset,
            recordCount: b.recordCount,
            compression: b.compression,
            producerId: b.producerId,
            producerEpoch: b.producerEpoch,
            baseSequence: b.baseSequence,
          });
          offset = b.nextOffset;
        }
        if (offset >= Number(p.highWatermark)) break;
      }
    }
    return out;
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------
// Client child processes. Each runs under coreutils `timeout`, so it dies at its deadline
// even when the test process itself is SIGKILLed (vitest kills timed-out workers); the test
// process also kills it on its own deadline and on exit.

const children = new Set<ChildProcess>();
let hookInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (err) {
    // ESRCH: the group is already gone, which is what was wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** What a finished client process wrote. */
export interface ClientOutput {
  stdout: string;
  stderr: string;
}

/** Options for {@link runClient}. */
export interface RunClientOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Hard deadline; the process is killed when it passes (default 60 s). */
  timeoutMs?: number;
}

/** Runs `command args` to completion; rejects with its stderr on a non-zero exit or on the deadline. */
export function runClient(command: string, args: string[], options: RunClientOptions = {}): Promise<ClientOutput> {
  if (!hookInstalled) {
    hookInstalled = true;
    process.once('exit', () => {
      for (const c of children) killGroup(c);
    });
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const seconds = String(Math.ceil(timeoutMs / 1000) + 5);
  return new Promise((resolve, reject) => {
    // Detached: `timeout` and the client form their own process group, killed as one.
    const child = spawn('timeout', ['--signal=KILL', seconds, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env, detached: true });
    children.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const describe = (): string => `${command} ${args.join(' ').slice(0, 200)}`;
    const tail = (): string => Buffer.concat(stderr).toString().slice(-3000);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${describe()} could not start: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const out = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
      if (timedOut) reject(new Error(`${describe()} did not finish within ${timeoutMs} ms; stderr: ${tail()}`));
      else if (code === 0) resolve(out);
      else reject(new Error(`${describe()} exited with ${code ?? signal}; stderr: ${tail()}; stdout: ${out.stdout.slice(-1000)}`));
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}
