import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { WireError } from '../../wire/runtime/errors.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'records');

/** The expectation file written beside each captured batch (see the fixtures README). */
export interface FixtureExpectation {
  source: string;
  timestampsBetween?: [number, number];
  batch: Record<string, number | string | boolean>;
  records: Array<{
    offset: number;
    timestamp?: number;
    key: string | null;
    value: string | null;
    headers: Array<{ key: string; value: string | null }>;
  }>;
}

/** Loads `<name>.bin` and `<name>.json` from test/fixtures/records. */
export function fixture(name: string): { bytes: Buffer; expected: FixtureExpectation } {
  return {
    bytes: readFileSync(join(fixtures, `${name}.bin`)),
    expected: JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')) as FixtureExpectation,
  };
}

/** Every captured batch, by file name. */
export const FIXTURES = [
  'kafkajs-none',
  'kafkajs-gzip',
  'librdkafka-none',
  'librdkafka-gzip',
  'librdkafka-snappy',
  'librdkafka-lz4',
  'librdkafka-zstd',
  'kcat-snappy',
] as const;

/** Runs `fn` and returns the WireError it throws; fails the test on success or any other error. */
export function wireErrorOf(fn: () => unknown): WireError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WireError);
  return thrown as WireError;
}

/** Async form of {@link wireErrorOf}. */
export async function asyncWireErrorOf(fn: () => Promise<unknown>): Promise<WireError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WireError);
  return thrown as WireError;
}

/** A copy of `buf` with byte `at` XOR-ed with `mask`. */
export function flipped(buf: Buffer, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(buf);
  out[at]! ^= mask;
  return out;
}
