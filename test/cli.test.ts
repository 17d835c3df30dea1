import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../src/commands/broker.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs a built entry point (dist/src/cli.js or bin/strata) and captures everything it printed. */
function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [path.join(root, script), ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    // Nothing here may start a long-running process; a bounded wait turns a mistake into a failure.
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('strata CLI (built)', () => {
  beforeAll(() => {
    // Builds dist/ when it is missing or stale, so this file also runs on its own.
    const setup = run('scripts/setup.mjs', ['--quiet', '--no-system']);
    expect(setup.stderr).toBe('');
    expect(setup.status).toBe(0);
  });

  it('prints the package version for --version', () => {
    expect(run('dist/src/cli.js', ['--version'])).toEqual({ status: 0, stdout: `strata ${version}\n`, stderr: '' });
  });

  it('prints the same through bin/strata and the version command', () => {
    expect(run('bin/strata', ['--version'])).toEqual({ status: 0, stdout: `strata ${version}\n`, stderr: '' });
    expect(run('dist/src/cli.js', ['version'])).toEqual({ status: 0, stdout: `strata ${version}\n`, stderr: '' });
  });

  it('runs bin/strata as an executable with the brokers\' heap settings on node\'s command line', () => {
    const shebang = readFileSync(path.join(root, 'bin', 'strata'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${BROKER_NODE_FLAGS.join(' ')}`);
    // Run through the shebang (not `node bin/strata`), so env -S and the flags are exercised.
    const direct = spawnSync(path.join(root, 'bin', 'strata'), ['--version'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect({ status: direct.status, stdout: direct.stdout, stderr: direct.stderr }).toEqual({ status: 0, stdout: `strata ${version}\n`, stderr: '' });
  });

  it('rejects an unknown command with one line on stderr and exit code 2', () => {
    expect(run('dist/src/cli.js', ['frobnicate'])).toEqual({
      status: 2,
      stdout: '',
      stderr: 'strata: unknown command "frobnicate"; run `strata help` to list the commands\n',
    });
  });

  it('shows usage on stderr with exit code 2 when no command is given', () => {
    const result = run('dist/src/cli.js', []);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe('Usage: strata <command> [options]');
  });

  it('lists every command in help', () => {
    const result = run('dist/src/cli.js', ['help']);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`strata ${version}`);
    for (const name of ['broker', 'dev', 'groups', 'help', 'version']) {
      expect(lines.some((line) => line.startsWith(`  ${name} `))).toBe(true);
    }
  });

  it('explains bad broker configuration with one line per problem and exit code 2', () => {
    const result = run('dist/src/cli.js', ['broker', '--storage', 'ftp://x', '--flush-ms', 'soon', '--nope', '1']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      'strata broker: unknown option --nope; see strata broker --help',
      'strata broker: --redis (or STRATA_REDIS) is required: Redis URL, e.g. redis://127.0.0.1:6379',
      'strata broker: --flush-ms "soon" is not a whole number',
      'strata broker: --storage "ftp://x" is not an s3://, file:// or memory:// URL',
    ]);
  });

  it('documents every broker option with its environment variable', () => {
    const result = run('dist/src/cli.js', ['broker', '--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('--flush-ms');
    expect(result.stdout).toContain('STRATA_FLUSH_MS');
    expect(result.stdout).toContain('STRATA_REDIS');
  });

  it('rejects a bad dev option with one line and exit code 2, starting nothing', () => {
    const result = run('dist/src/cli.js', ['dev', '--brokers', 'many']);
    expect(result).toEqual({ status: 2, stdout: '', stderr: 'strata dev: --brokers "many" must be a whole number from 1 to 16\n' });
  });
});
