/**
 * Brokers as child processes (`node cli.js broker …`), for `strata dev`, the fault tests and
 * the benchmark: the command line and the spawn (`waitForPort` in ports.ts then waits until
 * the broker listens).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS } from '../commands/broker.js';

/**
 * The repository root: the nearest folder above this module holding package.json. Looked up
 * on call, so that loading this module (as the CLI does for `strata dev`) needs no checkout.
 */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/** The built CLI (`npm run build`), which the tests' and the benchmark's brokers run. */
export function builtCli(): string {
  return path.join(repoRoot(), 'dist', 'src', 'cli.js');
}

/**
 * Node flags and script that run the CLI beside this module: the compiled `cli.js` when this
 * module is compiled, else `cli.ts` through tsx (a devDependency) when it runs from source.
 */
export function siblingCli(): string[] {
  const compiled = fileURLToPath(new URL('../cli.js', import.meta.url));
  if (existsSync(compiled)) return [compiled];
  return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../cli.ts', import.meta.url))];
}

/** How {@link spawnBroker} runs a broker. */
export interface BrokerProcessOptions {
  /** The flags after `broker`: `--redis`, `--storage`, `--listen`, …. */
  args: readonly string[];
  /** Node flags and script of the CLI (default {@link siblingCli}). */
  cli?: readonly string[];
  /** Node's heap flags (default {@link BROKER_NODE_FLAGS}, what a deployment is told to use). */
  heapFlags?: readonly string[];
  /** Further Node flags, before the script (diagnostics, a profiler preload). */
  nodeArgs?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Default: no input, output and errors passed through. */
  stdio?: StdioOptions;
}

/** Spawns `node [flags] cli broker args…` and returns at once. */
export function spawnBroker(options: BrokerProcessOptions): ChildProcess {
  const argv = [...(options.heapFlags ?? BROKER_NODE_FLAGS), ...(options.nodeArgs ?? []), ...(options.cli ?? siblingCli()), 'broker', ...options.args];
  return spawn(process.execPath, argv, { env: options.env ?? process.env, stdio: options.stdio ?? ['ignore', 'inherit', 'inherit'] });
}
