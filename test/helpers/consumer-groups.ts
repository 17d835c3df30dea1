/**
 * Test helper: shared pieces of the consumer-group compatibility suites: a group's committed offsets, a
 * topic's end offsets and a group's description read over the project's own client (at the
 * group's coordinator), and the "each produced record consumed exactly once / at least once"
 * checks over records identified by their value.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { ApiKey, ErrorCode, type DescribeGroupsResponseDescribedGroup } from '../../wire/index.js';
import { RawClient } from './raw-client.js';
import { partitionOffsets } from './topics.js';

/** One record a consumer handed to the application. */
export interface ConsumedRecord {
  consumer: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string;
}

async function withClient<T>(address: string, fn: (c: RawClient) => Promise<T>): Promise<T> {
  const c = await RawClient.connect(address, 'groups-compat-admin');
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** The high watermark of each partition 0..n-1 of `topic`. */
export function endOffsets(bootstrap: string, topic: string, partitions: number): Promise<number[]> {
  return withClient(bootstrap, async (c) => {
    const out: number[] = [];
    for (let p = 0; p < partitions; p++) out.push(Number((await partitionOffsets(c, topic, p)).hw));
    return out;
  });
}

/** The committed offset of each partition 0..n-1 of `topic` for `groupId` (-1 where none). */
export function committedOffsets(bootstrap: string, groupId: string, topic: string, partitions: number): Promise<number[]> {
  return withClient(bootstrap, async (c) => {
    const r = await c.send(ApiKey.OffsetFetch, 7, { groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, i) => i) }], groups: [], requireStable: false });
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`OffsetFetch of ${groupId}: error ${r.errorCode}`);
    return r.topics[0]!.partitions.map((p) => Number(p.committedOffset));
  });
}

/** The address of `groupId`'s coordinator, as FindCoordinator v3 names it. */
export function coordinatorOf(bootstrap: string, groupId: string): Promise<{ nodeId: number; address: string }> {
  return withClient(bootstrap, async (c) => {
    const r = await c.send(ApiKey.FindCoordinator, 3, { key: groupId, keyType: 0, coordinatorKeys: [] });
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`FindCoordinator of ${groupId}: error ${r.errorCode}`);
    return { nodeId: r.nodeId, address: `${r.host}:${r.port}` };
  });
}

/** DescribeGroups v5 of `groupId` at its coordinator. */
export async function describeGroup(bootstrap: string, groupId: string): Promise<DescribeGroupsResponseDescribedGroup> {
  const { address } = await coordinatorOf(bootstrap, groupId);
  return withClient(address, async (c) => {
    const r = await c.send(ApiKey.DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false });
    return r.groups[0]!;
  });
}

/** How often each value was consumed. */
export function countByValue(consumed: readonly { value: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of consumed) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
  return counts;
}

/**
 * Asserts every value of `expected` was consumed exactly once and nothing else was consumed.
 * Reports only the first few problems so a large run fails readably.
 */
export function expectConsumedExactlyOnce(consumed: readonly { value: string }[], expected: readonly string[]): void {
  const counts = countByValue(consumed);
  const want = new Set(expected);
  expect(want.size, 'expected values must be unique').toBe(expected.length);
  const missing = expected.filter((v) => !counts.has(v));
  const twice = [...counts].filter(([, n]) => n > 1).map(([v, n]) => `${v}×${n}`);
  const unexpected = [...counts.keys()].filter((v) => !want.has(v));
  expect({ missing: missing.length, firstMissing: missing.slice(0, 5), duplicated: twice.length, firstDuplicated: twice.slice(0, 5), unexpected: unexpected.slice(0, 5) }).toEqual({
    missing: 0,
    firstMissing: [],
    duplicated: 0,
    firstDuplicated: [],
    unexpected: [],
  });
  expect(consumed.length).toBe(expected.length);
}

/**
 * Asserts each partition's consumed offsets are contiguous from 0 with no repeats, up to the
 * partition's end offset: what exactly-once consumption of a whole topic looks like.
 */
export function expectContiguousOffsets(consumed: readonly { partition: number; offset: number }[], ends: readonly number[]): void {
  const byPartition = ends.map(() => [] as number[]);
  for (const r of consumed) byPartition[r.partition]!.push(r.offset);
  const problems: string[] = [];
  byPartition.forEach((offsets, p) => {
    offsets.sort((a, b) => a - b);
    if (offsets.length !== ends[p] || offsets.some((o, i) => o !== i)) problems.push(`partition ${p}: ${offsets.length} records for end offset ${ends[p]}, first gap or repeat near ${offsets.find((o, i) => o !== i)}`);
  });
  expect(problems).toEqual([]);
}

// ---------------------------------------------------------------------------------------
// Consumer processes speaking the groups-rdkafka.py / groups-cfk.mjs line protocol. Each runs
// under coreutils `timeout` in its own process group, killed as one on deadline or exit.

/** One event a consumer process reported. */
export type ClientEvent =
  | { e: 'assign' | 'revoke' | 'lost'; partitions: number[] }
  | { e: 'r'; p: number; o: number; k: string | null; v: string }
  | { e: 'closed' };

const running = new Set<ChildProcess>();
let exitHook = false;

function killTree(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** A consumer group member running as a child process. */
export class ConsumerProcess {
  readonly events: ClientEvent[] = [];
  readonly exited: Promise<{ code: number | null; stderr: string }>;
  readonly #child: ChildProcess;
  #stderr = '';

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; deadlineS: number },
  ) {
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const c of running) killTree(c);
      });
    }
    this.#child = spawn('timeout', ['--signal=KILL', String(options.deadlineS + 10), command, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env, detached: true });
    running.add(this.#child);
    let partial = '';
    this.#child.stdout!.setEncoding('utf8');
    this.#child.stdout!.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.events.push(JSON.parse(line) as ClientEvent);
    });
    this.#child.stderr!.setEncoding('utf8');
    this.#child.stderr!.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    this.#child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.#child.on('close', (code) => {
        running.delete(this.#child);
        resolve({ code, stderr: this.#stderr });
      });
    });
  }

  /** The records handed to this member, in order. */
  records(): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    for (const ev of this.events) if (ev.e === 'r') out.push({ consumer: this.name, partition: ev.p, offset: ev.o, key: ev.k, value: ev.v });
    return out;
  }

  /** The partitions this member holds now, from its assign/revoke events (eager or incremental). */
  assignment(incremental: boolean): number[] {
    let held = new Set<number>();
    for (const ev of this.events) {
      if (ev.e === 'assign') held = incremental ? new Set([...held, ...ev.partitions]) : new Set(ev.partitions);
      else if (ev.e === 'revoke' || ev.e === 'lost') held = incremental ? new Set([...held].filter((p) => !ev.partitions.includes(p))) : new Set();
    }
    return [...held].sort((a, b) => a - b);
  }

  /** Number of assign/revoke/lost callbacks seen so far. */
  rebalanceCallbacks(): number {
    return this.events.filter((ev) => ev.e !== 'r' && ev.e !== 'closed').length;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Asks the member to close (and leave, unless static) and waits for a clean exit. */
  async stop(): Promise<void> {
    this.#child.stdin!.end('stop\n');
    const r = await Promise.race([this.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000))]);
    if (r === null) {
      killTree(this.#child);
      throw new Error(`${this.name} did not exit within 20 s of "stop"; stderr: ${this.#stderr}`);
    }
    if (r.code !== 0) throw new Error(`${this.name} exited with ${r.code}; stderr: ${r.stderr}`);
  }

  /** Kills the member's process group at once (no close, no commit). */
  kill(): void {
    killTree(this.#child);
  }

  /** Fails with the member's stderr if it already exited (it must keep running until told to stop). */
  assertRunning(): void {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) throw new Error(`${this.name} exited early (${this.#child.exitCode ?? this.#child.signalCode}); stderr: ${this.#stderr}`);
  }
}
