/**
 * The one way the project starts a real S3 endpoint (`s3rver`), for the tests and the
 * benchmark: on 127.0.0.1 and a port the OS picks, with one empty bucket.
 *
 * s3rver runs in a child process (s3rver-child.ts) because it needs `--openssl-legacy-provider`
 * on current Node, which this process should not run with. The child prints `{"port":N}` once
 * it listens. When its stdin closes it exits (removing its directory if the harness made it),
 * so it goes away with this process even when that is killed without running any cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3rverChildConfig } from './s3rver-child.js';

/** A running s3rver. */
export interface S3rver {
  /** Storage URL for `openObjectStore`, credentials included: `s3://bucket?endpoint=…`. */
  url: string;
  /** The HTTP endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string;
  bucket: string;
  port: number;
  /** The server process. */
  child: ChildProcess;
  /** Stops the server and removes its directory if the harness made it. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Options for {@link startS3rver}. */
export interface StartS3rverOptions {
  /** Bucket created at startup (default `strata-test`). */
  bucket?: string;
  /** How long to wait for the server to listen (default 30 s: slow 2-core runners). */
  readyTimeoutMs?: number;
  /** Where s3rver keeps its data, owned by the caller; by default a fresh temporary directory. */
  directory?: string;
}

/** s3rver's built-in account; it checks request signatures against this pair. */
const ACCESS_KEY = 'S3RVER';

const CHILD_JS = new URL('./s3rver-child.js', import.meta.url);
const CHILD_TS = new URL('./s3rver-child.ts', import.meta.url);

/** Node flags and entry file of the child: the compiled module, or the source through tsx. */
function childCommand(): string[] {
  if (existsSync(fileURLToPath(CHILD_JS))) return [fileURLToPath(CHILD_JS)];
  // From the source tree (tests, tsx): tsx, a devDependency, loads the TypeScript module. Its
  // URL is resolved here, since the child's working directory may be anywhere.
  return ['--import', import.meta.resolve('tsx'), fileURLToPath(CHILD_TS)];
}

const running = new Set<ChildProcess>();
const directories = new Set<string>();
let exitHookInstalled = false;

/** Last resort when a process ends without stop(): kill children, remove the directories made. */
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
  const removeOnExit = options.directory === undefined;
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), 'strata-s3rver-'));
  if (removeOnExit) directories.add(directory);
  const config: S3rverChildConfig = { directory, bucket, removeOnExit };
  const child = spawn(process.execPath, ['--openssl-legacy-provider', ...childCommand()], {
    env: { ...process.env, NODE_OPTIONS: '', STRATA_S3RVER_CONFIG: JSON.stringify(config) },
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
      if (removeOnExit) {
        rmSync(directory, { recursive: true, force: true });
        directories.delete(directory);
      }
    })();
    return stopped;
  };

  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
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
            resolve((JSON.parse(line!) as { port: number }).port);
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
    child,
    stop,
  };
}
