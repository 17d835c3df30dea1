/**
 * `strata dev`: the one-command playground. Starts a private `redis-server` (AOF with
 * `appendfsync always`, in the data directory), and N brokers as child processes on
 * consecutive ports over a file object store in the same directory. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS, type Output } from './broker.js';

interface DevOptions {
  port: number;
  brokers: number;
  dataDir: string;
  flushMs: number;
  logLevel: string;
  httpPort: number | null;
}

function parseDevArgs(args: readonly string[]): DevOptions | string {
  const opts: DevOptions = { port: 9092, brokers: 1, dataDir: './data', flushMs: 5, logLevel: 'warn', httpPort: null };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = inline ?? args[++i];
    if (value === undefined) return `option ${flag} needs a value`;
    const int = (min: number, max: number): number | string => {
      const n = Number(value);
      return /^\d+$/.test(value) && n >= min && n <= max ? n : `${flag} "${value}" must be a whole number from ${min} to ${max}`;
    };
    let parsed: number | string;
    switch (flag) {
      case '--port':
        parsed = int(1, 65535);
        if (typeof parsed === 'string') return parsed;
        opts.port = parsed;
        break;
      case '--brokers':
        parsed = int(1, 16);
        if (typeof parsed === 'string') return parsed;
        opts.brokers = parsed;
        break;
      case '--flush-ms':
        parsed = int(1, 60000);
        if (typeof parsed === 'string') return parsed;
        opts.flushMs = parsed;
        break;
      case '--http-port':
        parsed = int(1, 65535);
        if (typeof parsed === 'string') return parsed;
        opts.httpPort = parsed;
        break;
      case '--data-dir':
        opts.dataDir = value;
        break;
      case '--log-level':
        opts.logLevel = value;
        break;
      default:
        return `unknown option ${flag}; options: --port, --brokers, --data-dir, --flush-ms, --http-port, --log-level`;
    }
  }
  if (opts.port + opts.brokers - 1 > 65535) return `--port ${opts.port} leaves no room for ${opts.brokers} brokers`;
  return opts;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function runDev(args: readonly string[], output: Output): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    output.out('Usage: strata dev [--port 9092] [--brokers 1] [--data-dir ./data] [--flush-ms 5] [--http-port P] [--log-level warn]');
    return 0;
  }
  const opts = parseDevArgs(args);
  if (typeof opts === 'string') {
    output.err(`strata dev: ${opts}`);
    return 2;
  }
  const dataDir = path.resolve(opts.dataDir);
  const redisDir = path.join(dataDir, 'redis');
  const objectsDir = path.join(dataDir, 'objects');
  mkdirSync(redisDir, { recursive: true });
  mkdirSync(objectsDir, { recursive: true });

  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    const brokers = children.slice(1);
    await Promise.all(brokers.map((c) => stopChild(c, 20000)));
    if (children[0]) await stopChild(children[0], 10000);
  };

  try {
    const redisPort = await freePort();
    const redis = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--loglevel', 'warning'],
      // Its own process group, so a Ctrl-C in the terminal does not stop Redis before the
      // brokers have drained into it; this process stops it last.
      { stdio: ['ignore', 'ignore', 'inherit'], detached: true },
    );
    children.push(redis);
    const spawnFailed = new Promise<never>((_, reject) => redis.once('error', reject));
    await Promise.race([waitForPort(redisPort, 15000, redis), spawnFailed]);

    const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
    const brokerPorts: number[] = [];
    for (let i = 0; i < opts.brokers; i++) {
      const port = opts.port + i;
      brokerPorts.push(port);
      const brokerArgs = [
        cli,
        'broker',
        '--redis',
        `redis://127.0.0.1:${redisPort}`,
        '--storage',
        `file://${objectsDir}`,
        '--listen',
        `127.0.0.1:${port}`,
        '--flush-ms',
        String(opts.flushMs),
        '--log-level',
        opts.logLevel,
        '--broker-session-timeout-ms',
        '3000',
      ];
      if (opts.httpPort !== null) brokerArgs.push('--http', `127.0.0.1:${opts.httpPort + i}`);
      const child = spawn(process.execPath, [...BROKER_NODE_FLAGS, ...brokerArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
      child.once('exit', (code, signal) => {
        if (!stopping) output.err(`strata dev: broker on port ${port} exited (${signal ?? `code ${code}`})`);
      });
      children.push(child);
    }
    await Promise.all(brokerPorts.map((p, i) => waitForPort(p, 30000, children[i + 1])));
    output.out(`Strata dev cluster is up: bootstrap.servers=127.0.0.1:${opts.port}`);
    output.out(`  brokers: ${brokerPorts.map((p) => `127.0.0.1:${p}`).join(', ')}`);
    output.out(`  redis:   redis://127.0.0.1:${redisPort} (AOF, appendfsync always)`);
    output.out(`  data:    ${dataDir}`);
    output.out('Press Ctrl-C to stop.');
  } catch (err) {
    const message = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'redis-server not found on PATH; install it (apt-get install redis-server) or run `npm start`, which does' : (err as Error).message;
    output.err(`strata dev: ${message}`);
    await stopAll();
    return 1;
  }

  await new Promise<void>((resolve) => {
    let received = false;
    // Stays installed: a second Ctrl-C while stopping kills the children instead of leaving them.
    const onSignal = (): void => {
      if (received) {
        for (const c of children) c.kill('SIGKILL');
        return;
      }
      received = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // If Redis dies, the playground cannot work; stop everything.
    children[0]!.once('exit', () => {
      if (!stopping) {
        output.err('strata dev: redis-server exited; stopping');
        onSignal();
      }
    });
  });
  output.out('stopping…');
  await stopAll();
  return 0;
}
