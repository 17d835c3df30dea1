#!/usr/bin/env node
// Brings a checkout to a runnable state: npm dependencies, Debian system packages for the
// integration and compatibility tests, and the TypeScript build in dist/. Every npm script
// that needs one of those runs this first, so a newcomer needs only `npm start` and `npm test`.
//
// Each step checks first and acts only when something is missing or stale, so running it
// again is cheap. Plain Node ESM with no dependencies: it runs before `npm ci` has.
//
// Usage: node scripts/setup.mjs [--quiet] [--no-system] [--no-build]

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage: node scripts/setup.mjs [options]

Installs what Strata needs, checking first and acting only when something is missing:
  1. npm dependencies (npm ci) when node_modules is missing or older than package-lock.json
  2. Debian packages used by the tests: redis-server, kcat, python3-confluent-kafka,
     libzstd-dev, libssl-dev, zlib1g-dev (apt-get, as root or through sudo -n)
  3. the TypeScript build in dist/ when a source file changed since the last build

Options:
  --quiet      print only when a step does something (or cannot)
  --no-system  skip the system package check
  --no-build   skip the build
  --help       show this text`;

/**
 * Debian packages the tests need, and how to tell each is present without asking apt.
 * `portable` names the same need on other systems, where only a warning is possible.
 */
const SYSTEM_PACKAGES = [
  { name: 'redis-server', portable: 'redis-server', present: () => onPath('redis-server') },
  { name: 'kcat', portable: 'kcat', present: () => onPath('kcat') },
  {
    name: 'python3-confluent-kafka',
    portable: 'Python confluent-kafka',
    // The Debian package installs for the system Python, whatever python3 PATH finds first.
    present: (debian) => succeeds(debian ? '/usr/bin/python3' : 'python3', ['-c', 'import confluent_kafka']),
  },
  { name: 'libzstd-dev', present: () => dpkgInstalled('libzstd-dev') },
  { name: 'libssl-dev', present: () => dpkgInstalled('libssl-dev') },
  { name: 'zlib1g-dev', present: () => dpkgInstalled('zlib1g-dev') },
];

/**
 * Records the missing set of the last failed apt-get run, so quiet runs (every `npm test`)
 * don't retry a slow, failing install each time. A plain `npm run setup` always retries.
 */
const APT_FAILED_MARKER = path.join(ROOT, '.strata-setup-apt-failed');

/** Folders whose .ts files tsconfig.build.json compiles; wire/codegen is excluded there too. */
const BUILD_ROOTS = ['src', 'wire', 'bench'];
const BUILD_EXCLUDES = new Set([path.join(ROOT, 'wire', 'codegen')]);
const BUILD_CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];
const DIST = path.join(ROOT, 'dist');
const BUILD_STAMP = path.join(DIST, '.build-stamp');

/** A failure that ends the run with one line on stderr. */
class SetupError extends Error {}

function main(argv) {
  const options = parseArgs(argv);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const log = (line) => process.stdout.write(`setup: ${line}\n`);
  const say = options.quiet ? () => {} : log;

  checkNode();
  // System packages first: if a native dependency ever lacks a prebuilt binary, npm ci needs
  // the -dev headers to compile it.
  if (options.system) ensureSystemPackages(log, say, options.quiet);
  else say('system packages: skipped (--no-system)');
  ensureDependencies(log, say);
  if (options.build) ensureBuild(log, say);
  else say('build: skipped (--no-build)');
}

function parseArgs(argv) {
  const options = { quiet: false, system: true, build: true, help: false };
  for (const arg of argv) {
    if (arg === '--quiet') options.quiet = true;
    else if (arg === '--no-system') options.system = false;
    else if (arg === '--no-build') options.build = false;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else throw new SetupError(`unknown option ${JSON.stringify(arg)}; run \`node scripts/setup.mjs --help\``);
  }
  return options;
}

function checkNode() {
  // 20.6 is the first release with import.meta.resolve, which the harness and the file
  // store's writer thread use to find tsx when running from TypeScript sources.
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 6)) {
    throw new SetupError(`Node ${process.versions.node} is too old; Strata needs Node 20.6 or newer`);
  }
}

// ---------------------------------------------------------------------------------------------
// npm dependencies

function ensureDependencies(log, say) {
  const reason = dependenciesStale();
  if (reason === undefined) {
    say('dependencies: up to date');
    return;
  }
  log(`${reason}; running npm ci`);
  const [command, args] = npmCommand(['ci', '--no-audit', '--no-fund']);
  const result = spawnSync(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    shell: process.platform === 'win32' && command !== process.execPath,
    // @confluentinc/kafka-javascript (a test client) builds librdkafka from source, linking the
    // system's zstd, OpenSSL and zlib (the -dev packages installed above) instead of
    // downloading a prebuilt binary, which this environment cannot reach.
    env: { ...process.env, CKJS_LINKING: process.env.CKJS_LINKING ?? 'dynamic' },
  });
  if (result.error) throw new SetupError(`could not start npm (${result.error.message}); is npm on PATH?`);
  if (result.status !== 0) throw new SetupError(`npm ci failed (exit ${result.status}); see its output above`);
}

/** Why node_modules needs a fresh `npm ci`, or undefined when it matches package-lock.json. */
function dependenciesStale() {
  const lockTime = mtimeMs(path.join(ROOT, 'package-lock.json'));
  if (lockTime === undefined) {
    throw new SetupError('package-lock.json is missing; run `npm install` once to create it, then commit it');
  }
  if (!fs.existsSync(path.join(ROOT, 'node_modules'))) return 'node_modules is missing';
  // npm writes this hidden lockfile at the end of every install, so its age is the install's age.
  const installTime = mtimeMs(path.join(ROOT, 'node_modules', '.package-lock.json'));
  if (installTime === undefined) return 'node_modules has no .package-lock.json (incomplete install)';
  if (installTime < lockTime) return 'package-lock.json is newer than node_modules';
  return undefined;
}

/** The npm that launched us (npm sets npm_execpath for scripts), else npm from PATH. */
function npmCommand(args) {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.c?js$/.test(execPath)) return [process.execPath, [execPath, ...args]];
  return ['npm', args];
}

// ---------------------------------------------------------------------------------------------
// System packages

function ensureSystemPackages(log, say, quiet) {
  const debian = fs.existsSync('/etc/debian_version') && onPath('apt-get') && onPath('dpkg');
  if (!debian) {
    // Only the portable checks mean anything here; the -dev packages are Debian names.
    const missing = SYSTEM_PACKAGES.filter((p) => p.portable && !p.present(false)).map((p) => p.portable);
    if (missing.length > 0) {
      log(`warning: not a Debian system, so nothing was installed; for the integration tests install ${missing.join(', ')}`);
    } else {
      say('system packages: present (not Debian; -dev headers not checked)');
    }
    return;
  }

  const missing = SYSTEM_PACKAGES.filter((p) => !p.present(true)).map((p) => p.name);
  if (missing.length === 0) {
    say('system packages: present');
    removeFile(APT_FAILED_MARKER);
    return;
  }
  const list = missing.join(' ');
  const root = process.getuid?.() === 0;
  const sudo = root ? '' : 'sudo ';
  const manual = `${sudo}apt-get update && ${sudo}apt-get install -y ${list}`;

  let prefix;
  if (root) prefix = [];
  else if (onPath('sudo') && succeeds('sudo', ['-n', 'true'])) prefix = ['sudo', '-n'];
  else {
    log(`warning: missing system packages (${list}) and no root or password-less sudo to install them; run: ${manual}`);
    return;
  }

  if (quiet && readFile(APT_FAILED_MARKER) === list) {
    log(`warning: still missing ${list}; apt-get failed earlier, run \`npm run setup\` to retry or install them yourself`);
    return;
  }

  log(`installing system packages with apt-get: ${list}`);
  const failure = apt(prefix, ['update', '-q']) ?? apt(prefix, ['install', '-y', '-q', '--no-install-recommends', ...missing]);
  const stillMissing = SYSTEM_PACKAGES.filter((p) => missing.includes(p.name) && !p.present(true)).map((p) => p.name);
  if (failure === undefined && stillMissing.length === 0) {
    removeFile(APT_FAILED_MARKER);
    return;
  }
  // Not fatal: the codec tests need none of these, and the tests that do will say what is
  // missing. The marker stops every later `npm test` from retrying a slow, failing install.
  fs.writeFileSync(APT_FAILED_MARKER, list);
  const why = failure ?? `still missing after apt-get: ${stillMissing.join(' ')}`;
  log(`warning: could not install system packages: ${why}; install them yourself: ${manual}`);
}

/** Runs one apt-get command; returns undefined on success, or a one-line description of the failure. */
function apt(prefix, args) {
  const argv = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
  const result = spawnSync(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) return `${argv.join(' ')} could not start (${result.error.message})`;
  if (result.status === 0) return undefined;
  // apt's output is long; the last error line is the one worth showing.
  const lines = `${result.stderr}\n${result.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.findLast((l) => /^(E:|W:|dpkg:)/.test(l)) ?? lines.at(-1) ?? 'no output';
  return `apt-get ${args[0]} exited ${result.status} (${last})`;
}

function dpkgInstalled(name) {
  const result = spawnSync('dpkg', ['-s', name], { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' });
  // `dpkg -s` also succeeds for removed-but-configured packages; only "install ok installed" counts.
  return result.status === 0 && /^Status: install ok installed$/m.test(result.stdout);
}

// ---------------------------------------------------------------------------------------------
// Build

function ensureBuild(log, say) {
  const sources = listSources();
  const reason = buildStale(sources);
  if (reason === undefined) {
    say('build: up to date');
    return;
  }
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) throw new SetupError('node_modules/typescript is missing; delete node_modules and rerun');
  log(`${reason}; building (tsc -p tsconfig.build.json)`);
  // Stamp with the start time, not the end: a file saved while tsc runs must count as newer.
  const startedAt = new Date();
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.error) throw new SetupError(`could not start tsc (${result.error.message})`);
  if (result.status !== 0) {
    // tsc still emits on type errors, so dist/ no longer matches the stamp: force the next run to build.
    removeFile(BUILD_STAMP);
    throw new SetupError(`build failed (tsc exit ${result.status}); fix the errors above, or pass --no-build to skip it`);
  }
  pruneOrphans();
  // The stamp lists the sources it was built from, so an added or deleted file is noticed.
  fs.writeFileSync(BUILD_STAMP, [startedAt.toISOString(), ...sources.keys()].join('\n') + '\n');
  fs.utimesSync(BUILD_STAMP, startedAt, startedAt);
}

/** Why dist/ needs rebuilding, or undefined when it is current. `sources` maps path → mtime. */
function buildStale(sources) {
  if (!fs.existsSync(DIST)) return 'dist/ is missing';
  const stampTime = mtimeMs(BUILD_STAMP);
  if (stampTime === undefined) return 'dist/.build-stamp is missing';
  for (const config of BUILD_CONFIGS) {
    if ((mtimeMs(path.join(ROOT, config)) ?? 0) > stampTime) return `${config} changed since the last build`;
  }
  for (const [file, mtime] of sources) {
    if (mtime > stampTime) return `${file} changed since the last build`;
  }
  const built = new Set(readFile(BUILD_STAMP).split('\n').slice(1).filter(Boolean));
  for (const file of sources.keys()) {
    if (!built.has(file)) return `${file} is new since the last build`;
  }
  for (const file of built) {
    if (!sources.has(file)) return `${file} was removed since the last build`;
  }
  return undefined;
}

/** Every .ts file the build compiles, as a sorted map from repo-relative path to mtime. */
function listSources() {
  const sources = [];
  for (const dir of BUILD_ROOTS) {
    walkFiles(path.join(ROOT, dir), (file, stat) => {
      if (file.endsWith('.ts')) sources.push([path.relative(ROOT, file).split(path.sep).join('/'), stat.mtimeMs]);
    }, BUILD_EXCLUDES);
  }
  return new Map(sources.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Deletes compiled files whose source was removed, so dist/ never serves a deleted module. */
function pruneOrphans() {
  for (const dir of BUILD_ROOTS) {
    walkFiles(path.join(DIST, dir), (file) => {
      const match = /^(.*)\.js(\.map)?$/.exec(path.relative(DIST, file));
      if (match && !fs.existsSync(path.join(ROOT, `${match[1]}.ts`))) fs.rmSync(file, { force: true });
    });
    removeEmptyDirs(path.join(DIST, dir));
  }
}

/** Calls `visit(path, stat)` for each file under `dir`, skipping dot-entries and `skip` folders. */
function walkFiles(dir, visit, skip = new Set()) {
  if (skip.has(dir)) return;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walkFiles(full, visit, skip);
    else if (entry.isFile()) visit(full, fs.statSync(full));
  }
}

function removeEmptyDirs(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) if (entry.isDirectory()) removeEmptyDirs(path.join(dir, entry.name));
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function mtimeMs(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

function readFile(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

function removeFile(file) {
  fs.rmSync(file, { force: true });
}

function onPath(name) {
  const suffixes = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    for (const suffix of suffixes) {
      try {
        fs.accessSync(path.join(dir, name + suffix), fs.constants.X_OK);
        return true;
      } catch {
        // Not in this PATH entry; keep looking.
      }
    }
  }
  return false;
}

function succeeds(command, args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

try {
  main(process.argv.slice(2));
} catch (error) {
  // One actionable line either way; an unexpected error (say EACCES on dist/) names its path.
  const message = error instanceof SetupError ? error.message : `unexpected error: ${error?.message ?? error}`;
  process.stderr.write(`setup: ${message}\n`);
  process.exitCode = 1;
}
