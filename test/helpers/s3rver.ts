/**
 * Starts a real S3 endpoint (`s3rver`) for tests, on 127.0.0.1 and a port the OS picks.
 *
 * s3rver runs in a child process because it needs `--openssl-legacy-provider` on current
 * Node, which the test process should not inherit. The child prints `{"port":N}` once it
 * listens. When its stdin closes it removes its directory and exits, so it goes away with the
 * test process even when that is killed without running any cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running s3rver. */
export interface S3rver {
  /** Storage URL for `openObjectStore`, credentials included: `s3://bucket?endpoint=…`. */
  url: string;
  /** The HTTP endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string;
  bucket: string;
  port: number;
  /** Stops the server and removes its directory. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Options for {@link startS3rver}. */
export interface StartS3rverOptions {
  /** Bucket created at startup (default `strata-test`). */
  bucket?: string;
  /** How long to wait for the server to listen (default 30 s: slow 2-core runners). */
  readyTimeoutMs?: number;
}

/** s3rver's built-in account; it checks request signatures against this pair. */
const ACCESS_KEY = 'S3RVER';

/** Runs in the child: start s3rver from the JSON config in the environment, report the port. */
const CHILD_SCRIPT = `
const config = JSON.parse(process.env.STRATA_S3RVER_CONFIG);
const S3rver = require(config.module);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: config.directory,
  configureBuckets: [{ name: config.bucket }],
});
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
  (err) => { process.stderr.write(String(err && err.stack || err) + '\\n'); process.exit(1); },
);
const quit = () => {
  require('node:fs').rmSync(config.directory, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
`;

const running = new Set<ChildProcess>();
const directories = new Set<string>();
let exitHookInstalled = false;

/** Last resort when a test file ends without stop(): kill children, remove directories. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  });
}

/** Starts s3rver with one empty bucket; resolves once it accepts requests. */
export async function startS3rver(options: StartS3rverOptions = {}): Promise<S3rver> {
  const bucket = options.bucket ?? 'strata-test';
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  installExitHook();
  const directory = mkdtempSync(join(tmpdir(), 'strata-s3rver-'));
  directories.add(directory);
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD_SCRIPT], {
    env: { ...process.env, NODE_OPTIONS: '', STRATA_S3RVER_CONFIG: JSON.stringify({ module: modulePath, directory, bucket }) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
      rmSync(directory, { recursive: true, force: true });
      directories.delete(directory);
    })();
    return stopped;
  };

  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error(`s3rver did not report a port within ${readyTimeoutMs} ms; stderr: ${stderr.trim() || '(empty)'}`)),
        readyTimeoutMs,
      );
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
        const line = stdout.split('\n')[0];
        if (stdout.includes('\n')) {
          clearTimeout(timer);
          try {
            resolve((JSON.parse(line) as { port: number }).port);
          } catch (err) {
            reject(new Error(`s3rver printed ${JSON.stringify(line)} instead of {"port":N}`, { cause: err }));
          }
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not start s3rver: ${err.message}`, { cause: err }));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr.trim() || '(empty)'}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    url: `s3://${bucket}?endpoint=${endpoint}&region=us-east-1&accessKeyId=${ACCESS_KEY}&secretAccessKey=${ACCESS_KEY}`,
    endpoint,
    bucket,
    port,
    stop,
  };
}
