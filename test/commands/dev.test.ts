/**
 * `strata dev` as a user runs it: the built CLI starts its own redis-server and N brokers;
 * Metadata lists every broker and spreads partition leaders across them; Ctrl-C (SIGINT)
 * stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../../src/commands/broker.js';
import { ErrorCode } from '../../wire/index.js';
import { RawClient } from '../helpers/raw-client.js';

const CLI = path.resolve(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

/** The command lines (argv) of the live children of `pid`, from /proc. */
function childCommandLines(pid: number): string[][] {
  const lines: string[][] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the second field after the parenthesised command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      lines.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean));
    } catch {
      // The process ended while we looked.
    }
  }
  return lines;
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

let child: ChildProcess | null = null;
let dataDir = '';

afterAll(async () => {
  // If the test failed midway, stop dev the way a user would (SIGINT stops its Redis and
  // brokers); SIGKILL only as a last resort, since it would orphan them.
  const c = child;
  if (c && c.exitCode === null && c.signalCode === null) {
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGINT');
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('strata dev --brokers 3', () => {
  it('starts three brokers that Metadata lists, with leaders spread across them, and stops on SIGINT', async () => {
    const base = await consecutiveFreePorts(3);
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'strata-dev-'));
    const proc = spawn(process.execPath, [CLI, 'dev', '--brokers', '3', '--port', String(base), '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', () => undefined);
    const deadline = Date.now() + 60_000;
    while (!out.includes('Press Ctrl-C to stop.')) {
      if (proc.exitCode !== null) throw new Error(`strata dev exited early: ${out}`);
      if (Date.now() > deadline) throw new Error(`strata dev did not come up: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toContain(`bootstrap.servers=127.0.0.1:${base}`);
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
      let meta = await client.send(3, 12, { topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'spread' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      while (meta.brokers.length < 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        meta = await client.send(3, 12, { topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'spread' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      }
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
