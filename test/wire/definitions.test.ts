// The vendored Kafka definitions are pinned by KAFKA_VERSION and SHA256SUMS, and `wire:check`
// fails when the folder is missing or differs. Every damaging case runs on a scratch copy named
// by STRATA_WIRE_DEFINITIONS, never on wire/definitions itself.
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkDefinitions, formatSums, hashMessages, readKafkaVersion, updateSums } from '../../wire/codegen/definitions.js';

const REPO = path.join(import.meta.dirname, '..', '..');
const VENDORED = path.join(REPO, 'wire', 'definitions');
const UPDATE = 'npm run wire:gen -- --update-sums';

/** Runs `wire:check` (the generator with --check) against the definitions folder `definitions`. */
function wireCheck(definitions: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'wire', 'codegen', 'main.ts'), '--check'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, STRATA_WIRE_DEFINITIONS: definitions },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('vendored definitions', () => {
  it('are what SHA256SUMS and KAFKA_VERSION say was vendored', () => {
    expect(checkDefinitions(VENDORED, 'wire/definitions')).toEqual([]);
    expect(readKafkaVersion(VENDORED)).toEqual({ release: '4.0.0-SNAPSHOT', commit: '1eb7644349cb07139d6a3c1ad1986979647cac99' });
    expect(hashMessages(VENDORED).size).toBe(186);
    expect(formatSums(hashMessages(VENDORED))).toBe(readFileSync(path.join(VENDORED, 'SHA256SUMS'), 'utf8'));
  });
});

describe('wire:check on a damaged copy', () => {
  let copy: string;

  beforeEach(() => {
    copy = path.join(mkdtempSync(path.join(tmpdir(), 'strata-definitions-')), 'definitions');
    cpSync(VENDORED, copy, { recursive: true });
  });

  afterEach(() => {
    rmSync(path.dirname(copy), { recursive: true, force: true });
  });

  it('passes on an exact copy', () => {
    expect(wireCheck(copy)).toEqual({ status: 0, stdout: 'wire:check: 93 generated files are current\n', stderr: '' });
  });

  it('fails with one line when the messages folder is missing', () => {
    rmSync(path.join(copy, 'messages'), { recursive: true });
    expect(wireCheck(copy)).toEqual({
      status: 1,
      stdout: '',
      stderr: `wire:check: definitions folder ${copy}/messages not found; restore it from git\n`,
    });
  });

  it('fails with one line naming a definition that differs', () => {
    appendFileSync(path.join(copy, 'messages', 'FetchRequest.json'), '\n');
    expect(wireCheck(copy)).toEqual({
      status: 1,
      stdout: '',
      stderr:
        `wire:check: ${copy}/messages/FetchRequest.json differs from the vendored copy (SHA256SUMS): restore it from git, ` +
        `or if you are moving to a newer Kafka run ${UPDATE} (see ${copy}/README.md)\n`,
    });
  });

  it('names a definition added or removed since it was vendored', () => {
    writeFileSync(path.join(copy, 'messages', 'ZzProbeRequest.json'), '{}\n');
    rmSync(path.join(copy, 'messages', 'HeartbeatRequest.json'));
    expect(checkDefinitions(copy, 'copy')).toEqual([
      `copy/messages/ZzProbeRequest.json is not listed in SHA256SUMS: remove it, or if you are moving to a newer Kafka run ${UPDATE}`,
      `copy/messages/HeartbeatRequest.json is listed in SHA256SUMS but missing: restore it from git, or if you are moving to a newer Kafka run ${UPDATE} (see copy/README.md)`,
    ]);
  });

  it('fails when SHA256SUMS or KAFKA_VERSION is missing, or the README names another commit', () => {
    rmSync(path.join(copy, 'SHA256SUMS'));
    rmSync(path.join(copy, 'KAFKA_VERSION'));
    expect(checkDefinitions(copy, 'copy')).toEqual([
      'copy/KAFKA_VERSION is missing or not one line "<kafka release> <apache/kafka commit>"; restore it from git',
      `copy/SHA256SUMS not found; restore it from git, or after vendoring new definitions run ${UPDATE}`,
    ]);
    writeFileSync(path.join(copy, 'KAFKA_VERSION'), `4.1.0 ${'a'.repeat(40)}\n`);
    expect(checkDefinitions(copy, 'copy')[0]).toBe(`copy/README.md does not name 4.1.0 ${'a'.repeat(40)} from KAFKA_VERSION; make the two agree`);
  });

  it('accepts new definitions once --update-sums records them, listing each change', () => {
    appendFileSync(path.join(copy, 'messages', 'FetchRequest.json'), '\n');
    writeFileSync(path.join(copy, 'messages', 'ZzProbeRequest.json'), '{}\n');
    rmSync(path.join(copy, 'messages', 'HeartbeatRequest.json'));
    expect(updateSums(copy)).toEqual(['changed messages/FetchRequest.json', 'added messages/ZzProbeRequest.json', 'removed messages/HeartbeatRequest.json']);
    expect(checkDefinitions(copy, 'copy')).toEqual([]);
    expect(updateSums(copy)).toEqual([]);
  });
});
