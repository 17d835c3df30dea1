/**
 * `strata dev` as a user runs it: the built CLI starts its own redis-server and N brokers;
 * Metadata lists every broker and spreads partition leaders across them; Ctrl-C (SIGINT)
 * stops everything. A redis-server that dies is restarted on the same port over the same AOF
 * (no acknowledged record lost), and the data directory is private to the user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../../src/commands/broker.js';
import { ErrorCode } from '../../wire/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { createTopic, produce } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const CLI = path.resolve(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

/** The live children of `pid` with their command lines (argv), from /proc. */
function children(pid: number): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the second field after the parenthesised command name; a zombie
      // (state Z) has ended and has no command line left.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== pid || fields[0] === 'Z') continue;
      found.push({ pid: Number(entry), argv: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean) });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** The command lines (argv) of the live children of `pid`. */
function childCommandLines(pid: number): string[][] {
  return children(pid).map((c) => c.argv);
}

/** Finds a base port with `count` consecutive free ports on 127.0.0.1 (bounded attempts). */
async function consecutiveFreePorts(count: number): Promise<number> {
  const tryPort = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await tryPort(base + i);
    if (ok) return base;
  }
  throw new Error('no run of free ports found');
}

/** Every `strata dev` process started here, and the folders to remove. */
const started: ChildProcess[] = [];
const scratch: string[] = [];

afterAll(async () => {
  // If a test failed midway, stop dev the way a user would (SIGINT stops its Redis and
  // brokers); SIGKILL only as a last resort, since it would orphan them.
  for (const c of started) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGINT');
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** Starts `strata dev` with `args` and waits (bounded) until it says it is up; collects its output. */
async function startDev(args: string[]): Promise<{ proc: ChildProcess; out: () => string; err: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const READY = 'Press Ctrl-C to stop.';
  await waitFor(
    'strata dev to come up',
    () => {
      // A process that died before saying it is up ends the wait at once.
      if (!out.includes(READY) && proc.exitCode !== null) throw new Error(`strata dev exited early: ${out}${err}`);
      return { out, err };
    },
    (output) => output.out.includes(READY),
    60_000,
    100,
  );
  return { proc, out: () => out, err: () => err };
}

/** The permission bits of `p`. */
const modeOf = (p: string): number => statSync(p).mode & 0o777;

/** Every file and directory below `dir` with its permission bits, as relative path → mode. */
function modesBelow(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      out.set(path.relative(dir, full), modeOf(full));
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

describe('strata dev --brokers 3', () => {
  it('starts three brokers that Metadata lists, with leaders spread across them, and stops on SIGINT', async () => {
    const base = await consecutiveFreePorts(3);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-dev-'));
    scratch.push(dataDir);
    const { proc, out } = await startDev(['--brokers', '3', '--port', String(base), '--data-dir', dataDir]);
    expect(out()).toContain(`bootstrap.servers=127.0.0.1:${base}`);
    // The brokers run with the heap settings a deployment is told to use.
    const brokers = childCommandLines(proc.pid!).filter((argv) => argv.includes('broker'));
    expect(brokers).toHaveLength(3);
    for (const argv of brokers) expect(argv.slice(0, 1 + BROKER_NODE_FLAGS.length)).toEqual([process.execPath, ...BROKER_NODE_FLAGS]);

    const client = await RawClient.connect(`127.0.0.1:${base}`);
    try {
      const created = await client.send(19, 5, {
        topics: [{ name: 'spread', numPartitions: 12, replicationFactor: 3, assignments: [], configs: [] }],
        timeoutMs: 10000,
        validateOnly: false,
      });
      expect(created.topics[0]!.errorCode).toBe(ErrorCode.NONE);
      // Brokers learn of each other through their heartbeats; wait (bounded) until all three show.
      const meta = await waitFor(
        'three brokers in Metadata',
        () => client.send(3, 12, { topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'spread' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
        (m) => m.brokers.length >= 3,
        60_000,
        200,
      );
      expect(meta.brokers.map((b) => b.port).sort()).toEqual([base, base + 1, base + 2]);
      const partitions = meta.topics[0]!.partitions;
      expect(partitions).toHaveLength(12);
      const leaders = new Set(partitions.map((p) => p.leaderId));
      expect(leaders.size).toBeGreaterThanOrEqual(2);
      for (const p of partitions) {
        expect(p.errorCode).toBe(ErrorCode.NONE);
        expect(p.replicaNodes).toHaveLength(3);
        expect(meta.brokers.map((b) => b.nodeId)).toContain(p.leaderId);
      }
    } finally {
      client.close();
    }

    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});

describe('strata dev when its redis-server dies', () => {
  it('restarts it on the same port over the same AOF: no acknowledged record is lost, and a kafkajs producer and consumer work after', { timeout: 120_000 }, async () => {
    const port = await consecutiveFreePorts(1);
    const parent = mkdtempSync(path.join(os.tmpdir(), 'strata-dev-redis-'));
    scratch.push(parent);
    // A data directory dev creates itself, so its mode is dev's doing.
    const dataDir = path.join(parent, 'data');
    const { proc, out, err } = await startDev(['--port', String(port), '--data-dir', dataDir]);
    const bootstrap = `127.0.0.1:${port}`;

    const redisBefore = children(proc.pid!).filter((c) => c.argv[0]!.startsWith('redis-server'));
    expect(redisBefore).toHaveLength(1);
    const redisPort = redisPortOf(out());

    const client = await RawClient.connect(bootstrap);
    const before = Array.from({ length: 20 }, (_, i) => `before-${i}`);
    try {
      await createTopic(client, 'survives', 1);
      for (let i = 0; i < before.length; i += 5) {
        expect(await produce(client, 'survives', 0, before.slice(i, i + 5))).toEqual({ errorCode: ErrorCode.NONE, baseOffset: BigInt(i) });
      }
    } finally {
      client.close();
    }

    process.kill(redisBefore[0]!.pid, 'SIGKILL');
    const line = await waitFor('the restart line', () => (err().includes('strata dev: redis-server exited') ? err() : undefined));
    expect(line).toContain(`strata dev: redis-server exited (signal SIGKILL); restarting it on port ${redisPort} in 100 ms (restart 1 of at most 4 a minute)`);
    const redisAfter = await waitFor('a new redis-server', () => {
      const found = children(proc.pid!).filter((c) => c.argv[0]!.includes('redis-server') && c.pid !== redisBefore[0]!.pid);
      return found.length === 1 ? found[0] : undefined;
    });
    // Once running, redis-server shows its address as its command line.
    await waitFor('the new redis-server to listen', async () => ((await canConnect(redisPort)) ? true : undefined));
    expect(children(proc.pid!).find((c) => c.pid === redisAfter.pid)?.argv).toEqual([`redis-server 127.0.0.1:${redisPort}`]);

    // The broker reconnects on its own; a real client's produce and consume then work.
    const kafka = new Kafka({ clientId: 'dev-redis-restart', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 200 } });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const consumer = kafka.consumer({ groupId: 'dev-redis-restart', maxWaitTimeInMs: 200 });
    const after = Array.from({ length: 5 }, (_, i) => `after-${i}`);
    const consumed: string[] = [];
    try {
      await producer.connect();
      await producer.send({ topic: 'survives', acks: -1, messages: after.map((value) => ({ value })) });
      await consumer.connect();
      await consumer.subscribe({ topics: ['survives'], fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void consumed.push(message.value!.toString()) });
      await waitFor('the consumer to read every record', () => (consumed.length >= before.length + after.length ? true : undefined), 60_000);
    } finally {
      await producer.disconnect().catch(() => undefined);
      await consumer.disconnect().catch(() => undefined);
    }
    expect(consumed).toEqual([...before, ...after]);
    const stored = await readAll(bootstrap, 'survives');
    expect(stored.map((r) => [r.offset, r.value])).toEqual([...before, ...after].map((v, i) => [i, v]));

    // Private files: the directories dev created are 0700, Redis's files and the objects 0600.
    expect(modeOf(dataDir)).toBe(0o700);
    const modes = modesBelow(dataDir);
    const dirs = [...modes].filter(([p]) => statSync(path.join(dataDir, p)).isDirectory());
    const files = [...modes].filter(([p]) => !statSync(path.join(dataDir, p)).isDirectory());
    expect(dirs.map(([p]) => p)).toEqual(expect.arrayContaining(['redis', 'redis/appendonlydir', 'objects']));
    expect(files.some(([p]) => p.startsWith('redis/appendonlydir/'))).toBe(true);
    expect(files.some(([p]) => p.startsWith('objects/'))).toBe(true);
    expect(dirs.filter(([, m]) => m !== 0o700)).toEqual([]);
    expect(files.filter(([, m]) => m !== 0o600)).toEqual([]);

    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});

describe('strata dev when its redis-server keeps dying', () => {
  it('stops everything with one line after the fifth death within a minute', { timeout: 120_000 }, async () => {
    const port = await consecutiveFreePorts(1);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-dev-dying-'));
    scratch.push(dataDir);
    const { proc, out, err } = await startDev(['--port', String(port), '--data-dir', dataDir]);
    const redisPort = redisPortOf(out());
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const broker = children(proc.pid!).find((c) => c.argv.includes('broker'))!;
    const killed: number[] = [];
    for (let death = 1; death <= 5; death++) {
      const redis = await waitFor(`redis-server number ${death}`, () => children(proc.pid!).find((c) => c.argv[0]!.startsWith('redis-server') && !killed.includes(c.pid)));
      // Wait until it serves, so each death is a running server's, as a crash would be.
      await waitFor(`redis-server number ${death} to listen`, async () => ((await canConnect(redisPort)) ? true : undefined));
      process.kill(redis.pid, 'SIGKILL');
      killed.push(redis.pid);
    }
    expect(await exited).toBe(1);
    const lines = err().split('\n').filter((l) => l.startsWith('strata dev: redis-server'));
    expect(lines).toHaveLength(5);
    expect(lines[3]).toBe(`strata dev: redis-server exited (signal SIGKILL); restarting it on port ${redisPort} in 800 ms (restart 4 of at most 4 a minute)`);
    expect(lines[4]).toBe('strata dev: redis-server exited (signal SIGKILL), 5 times within a minute; stopping everything (see its errors above)');
    // The broker was stopped with it.
    expect(readdirSync('/proc').includes(String(broker.pid))).toBe(false);
  });
});

/** The port of dev's redis-server, from the line dev prints when it is up. */
function redisPortOf(out: string): number {
  const m = /redis: +redis:\/\/127\.0\.0\.1:(\d+) /.exec(out);
  if (m === null) throw new Error(`no redis line in ${JSON.stringify(out)}`);
  return Number(m[1]);
}

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
