/**
 * Test helper: a Strata cluster on free loopback ports — a real redis-server, a real object
 * store (a temporary file store, or s3rver), and brokers either in this process (fast, for
 * handler tests) or as child processes running the built CLI (for SIGKILL fault tests).
 * `storage: 'memory'` gives in-process brokers one shared, uniquely named memory store
 * (`memory://<name>`), each broker with its own fault controller for injection tests.
 * `stop()` tears everything down; an exit hook kills child brokers left behind.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Broker } from '../../src/broker.js';
import { parseBrokerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/observability/logger.js';
import { builtCli, spawnBroker } from '../../src/harness/broker-process.js';
import { exitOf } from '../../src/harness/children.js';
import { freePort, waitForPort } from '../../src/harness/ports.js';
import { startRedisServer, type RedisServer } from '../../src/harness/redis-server.js';
import { startS3rver, type S3rver } from '../../src/harness/s3rver.js';
import { MemoryObjectStore } from '../../src/storage/memory.js';

/** `memory` needs in-process brokers: the store lives in this process. */
export type StorageKind = 'file' | 's3' | 'memory';

export interface ClusterOptions {
  brokers?: number;
  storage?: StorageKind;
  /** Run brokers as child processes of the built CLI instead of in this process. */
  processes?: boolean;
  /** Extra broker flags, e.g. ['--flush-ms', '5']. */
  brokerArgs?: string[];
  /** Zones to give the brokers, one per broker (cycled). */
  zones?: string[];
  /**
   * Keep the broker's default retention (7 days). Off by default: test helpers stamp records
   * in 2023, which that retention would expire in the middle of a test (retention tests set
   * retention.ms per topic instead). A test about the defaults themselves turns it on.
   */
  defaultRetention?: boolean;
}

/** A broker the harness started, in-process or as a child. */
export interface ClusterBroker {
  readonly port: number;
  readonly nodeIdHint: number;
  /** The in-process broker, when not a child process. */
  readonly broker: Broker | null;
  readonly child: ChildProcess | null;
  /**
   * The broker's own view of the shared memory store (storage 'memory' only): its `faults`
   * inject failures and latency into this broker's operations, its `stats()` count them.
   */
  readonly memoryStore: MemoryObjectStore | null;
  /** SIGKILL (child) or abrupt stop without drain (in-process is not supported: throws). */
  kill(): Promise<void>;
  /** Graceful stop (SIGTERM for children). */
  stop(): Promise<void>;
}

export interface Cluster {
  readonly redis: RedisServer;
  readonly storageUrl: string;
  readonly brokers: ClusterBroker[];
  /** `127.0.0.1:port` of the first live broker. */
  readonly bootstrap: string;
  /** All brokers' addresses, comma-separated. */
  readonly bootstrapAll: string;
  /** Starts one more broker (returns it). */
  addBroker(zone?: string): Promise<ClusterBroker>;
  /** Restarts a stopped/killed broker on the same port. */
  restartBroker(index: number): Promise<ClusterBroker>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let hookInstalled = false;
function installHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
}

/** Starts Redis, the object store and `brokers` brokers. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  if (options.storage === 'memory' && options.processes) {
    throw new Error("storage 'memory' lives in the test process; it needs in-process brokers (processes: false)");
  }
  const redis = await startRedisServer();
  let s3: S3rver | null = null;
  let dir: string | null = null;
  let storageUrl: string;
  if (options.storage === 's3') {
    s3 = await startS3rver();
    storageUrl = s3.url;
  } else if (options.storage === 'memory') {
    storageUrl = `memory://strata-test-${randomBytes(6).toString('hex')}`;
  } else {
    dir = mkdtempSync(path.join(os.tmpdir(), 'strata-objects-'));
    storageUrl = `file://${dir}`;
  }
  const brokers: ClusterBroker[] = [];
  const zones = options.zones ?? [];
  const baseArgs = (port: number, zone: string | undefined): string[] => {
    const args = ['--redis', redis.url, '--storage', storageUrl, '--listen', `127.0.0.1:${port}`, '--flush-ms', '5', '--broker-session-timeout-ms', '3000', '--broker-heartbeat-ms', '250'];
    if (!options.defaultRetention) args.push('--log-retention-ms', '-1');
    if (zone) args.push('--zone', zone);
    return [...args, ...(options.brokerArgs ?? [])];
  };

  const launch = async (port: number, zone: string | undefined): Promise<ClusterBroker> => {
    const args = baseArgs(port, zone);
    if (options.processes) {
      installHook();
      const child = spawnBroker({
        cli: [builtCli()],
        heapFlags: [],
        args: [...args, '--log-level', process.env.STRATA_TEST_LOG ?? 'warn'],
        stdio: ['ignore', 'ignore', process.env.STRATA_TEST_LOG ? 'inherit' : 'ignore'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      await waitForPort(port, 30000, child, 'broker');
      const exited = (): Promise<void> => exitOf(child);
      return {
        port,
        nodeIdHint: -1,
        broker: null,
        child,
        memoryStore: null,
        async kill() {
          child.kill('SIGKILL');
          await exited();
        },
        async stop() {
          child.kill('SIGTERM');
          await exited();
        },
      };
    }
    const config = parseBrokerConfig(args, {});
    const broker = new Broker(config, silentLogger());
    await broker.start();
    let stopped = false;
    return {
      port,
      nodeIdHint: broker.nodeId,
      broker,
      child: null,
      memoryStore: broker.store instanceof MemoryObjectStore ? broker.store : null,
      kill() {
        throw new Error('kill() needs processes: true');
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await broker.stop();
      },
    };
  };

  const count = options.brokers ?? 1;
  for (let i = 0; i < count; i++) brokers.push(await launch(await freePort(), zones.length ? zones[i % zones.length] : undefined));

  const cluster: Cluster = {
    redis,
    storageUrl,
    brokers,
    get bootstrap() {
      return `127.0.0.1:${brokers[0]!.port}`;
    },
    get bootstrapAll() {
      return brokers.map((b) => `127.0.0.1:${b.port}`).join(',');
    },
    async addBroker(zone?: string) {
      const b = await launch(await freePort(), zone);
      brokers.push(b);
      return b;
    },
    async restartBroker(index: number) {
      const old = brokers[index]!;
      const b = await launch(old.port, undefined);
      brokers[index] = b;
      return b;
    },
    async stop() {
      await Promise.all(brokers.map((b) => b.stop().catch(() => undefined)));
      await redis.stop();
      await s3?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
