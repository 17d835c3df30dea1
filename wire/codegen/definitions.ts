/**
 * The vendored Kafka message definitions (wire/definitions/) and the proof that they are what
 * was vendored: `KAFKA_VERSION` names the Kafka release and commit they come from, the README
 * names the same, and `SHA256SUMS` lists the SHA-256 of every file in `messages/`. The
 * generator refuses to run, and `wire:check` fails, while any of that disagrees, so a definition
 * edited by hand (or a file added or lost) cannot quietly change the generated codec. Moving to
 * a newer Kafka is deliberate: replace `messages/`, update `KAFKA_VERSION` and the README, and
 * run `npm run wire:gen -- --update-sums`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The folder of Kafka's JSON definitions, inside the definitions folder. */
export const MESSAGES_DIR = 'messages';
/** One line, `<release> <commit>`: the Kafka release and apache/kafka commit vendored. */
export const VERSION_FILE = 'KAFKA_VERSION';
/** `sha256sum` output for every file of `messages/` (so `sha256sum -c SHA256SUMS` works too). */
export const SUMS_FILE = 'SHA256SUMS';

const UPDATE = 'npm run wire:gen -- --update-sums';

/** `messages/<file>` → SHA-256 (hex) of the file's bytes, for every file in the folder. */
export function hashMessages(definitions: string): Map<string, string> {
  const sums = new Map<string, string>();
  const dir = join(definitions, MESSAGES_DIR);
  for (const name of readdirSync(dir).sort()) {
    sums.set(`${MESSAGES_DIR}/${name}`, createHash('sha256').update(readFileSync(join(dir, name))).digest('hex'));
  }
  return sums;
}

/** The text of a `SHA256SUMS` file: `<hash>  <path>` per line, sorted by path. */
export function formatSums(sums: ReadonlyMap<string, string>): string {
  return [...sums].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, hash]) => `${hash}  ${path}\n`).join('');
}

/** Parses a `SHA256SUMS` file; a line that is not `<64 hex digits>  <path>` is an error. */
export function parseSums(text: string, shown: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    const m = /^([0-9a-f]{64}) {2}(\S.*)$/.exec(line);
    if (!m) throw new Error(`${shown} line ${i + 1} is not "<sha256>  <path>": ${JSON.stringify(line)}; restore it from git or run ${UPDATE}`);
    sums.set(m[2]!, m[1]!);
  });
  return sums;
}

/** The release and commit `KAFKA_VERSION` names, or null when it is missing or malformed. */
export function readKafkaVersion(definitions: string): { release: string; commit: string } | null {
  const path = join(definitions, VERSION_FILE);
  if (!existsSync(path)) return null;
  const m = /^(\S+) ([0-9a-f]{40})\n?$/.exec(readFileSync(path, 'utf8'));
  return m ? { release: m[1]!, commit: m[2]! } : null;
}

/**
 * Everything wrong with a definitions folder, one line a person can act on per problem; empty
 * when the folder is exactly what was vendored. `shown` is how messages name the folder.
 */
export function checkDefinitions(definitions: string, shown: string): string[] {
  if (!existsSync(join(definitions, MESSAGES_DIR))) {
    // A check that cannot read its input has checked nothing: fail rather than pass.
    return [`definitions folder ${shown}/${MESSAGES_DIR} not found; restore it from git`];
  }
  const problems: string[] = [];
  const version = readKafkaVersion(definitions);
  if (!version) {
    problems.push(`${shown}/${VERSION_FILE} is missing or not one line "<kafka release> <apache/kafka commit>"; restore it from git`);
  } else {
    const readme = existsSync(join(definitions, 'README.md')) ? readFileSync(join(definitions, 'README.md'), 'utf8') : '';
    if (!readme.includes(version.commit) || !readme.includes(version.release)) {
      problems.push(`${shown}/README.md does not name ${version.release} ${version.commit} from ${VERSION_FILE}; make the two agree`);
    }
  }
  const sumsPath = join(definitions, SUMS_FILE);
  if (!existsSync(sumsPath)) {
    problems.push(`${shown}/${SUMS_FILE} not found; restore it from git, or after vendoring new definitions run ${UPDATE}`);
    return problems;
  }
  let expected: Map<string, string>;
  try {
    expected = parseSums(readFileSync(sumsPath, 'utf8'), `${shown}/${SUMS_FILE}`);
  } catch (err) {
    problems.push((err as Error).message);
    return problems;
  }
  const actual = hashMessages(definitions);
  const fix = `restore it from git, or if you are moving to a newer Kafka run ${UPDATE} (see ${shown}/README.md)`;
  for (const [path, hash] of actual) {
    const listed = expected.get(path);
    if (listed === undefined) problems.push(`${shown}/${path} is not listed in ${SUMS_FILE}: remove it, or if you are moving to a newer Kafka run ${UPDATE}`);
    else if (listed !== hash) problems.push(`${shown}/${path} differs from the vendored copy (${SUMS_FILE}): ${fix}`);
  }
  for (const path of expected.keys()) {
    if (!actual.has(path)) problems.push(`${shown}/${path} is listed in ${SUMS_FILE} but missing: ${fix}`);
  }
  return problems;
}

/** Rewrites `SHA256SUMS` from the folder as it is; returns one line per file added, changed or removed. */
export function updateSums(definitions: string): string[] {
  const sumsPath = join(definitions, SUMS_FILE);
  let before = new Map<string, string>();
  try {
    if (existsSync(sumsPath)) before = parseSums(readFileSync(sumsPath, 'utf8'), SUMS_FILE);
  } catch {
    // A malformed list is what --update-sums replaces; every file then reads as added.
  }
  const after = hashMessages(definitions);
  const changes: string[] = [];
  for (const [path, hash] of after) {
    const old = before.get(path);
    if (old === undefined) changes.push(`added ${path}`);
    else if (old !== hash) changes.push(`changed ${path}`);
  }
  for (const path of before.keys()) if (!after.has(path)) changes.push(`removed ${path}`);
  writeFileSync(sumsPath, formatSums(after));
  return changes;
}
