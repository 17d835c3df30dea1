/**
 * The `strata` command line: parses argv, picks a command from an explicit table and runs it.
 *
 * Commands: `broker` (one production broker), `dev` (the one-command playground), `groups`
 * and `topics` (what a cluster holds, over the Kafka protocol), `help` and `version` (also `--help`/`-h`, `--version`/`-V`); each is one entry in {@link COMMANDS}. `bin/strata` calls {@link runAsProcess}; `node dist/src/cli.js …` runs it directly.
 */

import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBroker } from './commands/broker.js';
import { runDev } from './commands/dev.js';
import { runGroups } from './commands/groups.js';
import { runTopics } from './commands/topics.js';

/** Where a command writes; the process streams by default, a buffer in tests. */
export interface CliOutput {
  /** Writes one line (a newline is appended) to standard output. */
  out(line: string): void;
  /** Writes one line (a newline is appended) to standard error. */
  err(line: string): void;
}

/** One `strata <name>` subcommand. */
export interface Command {
  /** The word typed after `strata`. */
  readonly name: string;
  /** Usage line shown in help, without the leading `strata `. */
  readonly usage: string;
  /** One line describing what the command does. */
  readonly summary: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(args: readonly string[], output: CliOutput): number | Promise<number>;
}

/** Exit codes the CLI uses, following the shell convention that 2 means "bad usage". */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
} as const;

const PROGRAM = 'strata';

/** Option spellings accepted in place of a command, as shown in help. */
const OPTION_ALIASES: Readonly<Record<string, string>> = {
  '-h, --help': 'help',
  '-V, --version': 'version',
};

/** Each accepted option word, mapped to the command it stands for. */
const ALIASES: ReadonlyMap<string, string> = new Map(
  Object.entries(OPTION_ALIASES).flatMap(([flags, name]) => flags.split(', ').map((flag): [string, string] => [flag, name])),
);

/** The `version` field of Strata's package.json, found by walking up from this module. */
export function packageVersion(): string {
  // From src/ (tsx) and dist/src/ (built) alike, the nearest package.json up the tree is Strata's.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    let text: string | undefined;
    try {
      text = readFileSync(candidate, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      const version: unknown = (JSON.parse(text) as { version?: unknown }).version;
      if (typeof version !== 'string') throw new Error(`${candidate} has no "version" string`);
      return version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function versionLine(): string {
  return `${PROGRAM} ${packageVersion()}`;
}

function usageLines(): string[] {
  const commands = COMMANDS.map((c): [string, string] => [c.usage, c.summary]);
  const options = Object.entries(OPTION_ALIASES).map(([flags, name]): [string, string] => [flags, `same as \`${PROGRAM} ${name}\``]);
  const width = Math.max(...[...commands, ...options].map(([left]) => left.length));
  const row = ([left, right]: [string, string]): string => `  ${left.padEnd(width)}  ${right}`;
  return [`Usage: ${PROGRAM} <command> [options]`, '', 'Commands:', ...commands.map(row), '', 'Options:', ...options.map(row)];
}

const helpCommand: Command = {
  name: 'help',
  usage: 'help',
  summary: 'show this help',
  run(_args, output) {
    for (const line of [versionLine(), '', ...usageLines()]) output.out(line);
    return ExitCode.OK;
  },
};

const versionCommand: Command = {
  name: 'version',
  usage: 'version',
  summary: 'print the version',
  run(_args, output) {
    output.out(versionLine());
    return ExitCode.OK;
  },
};

const devCommand: Command = {
  name: 'dev',
  usage: 'dev [--port 9092] [--brokers 1] [--data-dir ./data]',
  summary: 'local playground: a private Redis, a file object store and N brokers',
  run: (args, output) => runDev(args, output),
};

const groupsCommand: Command = {
  name: 'groups',
  usage: 'groups list | describe <group> [--bootstrap host:port]',
  summary: 'consumer groups: members, assignments, committed offsets and lag',
  run: (args, output) => runGroups(args, output),
};

const topicsCommand: Command = {
  name: 'topics',
  usage: 'topics list | describe <topic> [--bootstrap host:port] [--http host:port]',
  summary: 'topics: partitions, log start, high watermark, stored bytes (and objects with --http)',
  run: (args, output) => runTopics(args, output),
};

const brokerCommand: Command = {
  name: 'broker',
  usage: 'broker --redis URL --storage URL [options]',
  summary: 'run one broker (all options: strata broker --help)',
  run: (args, output) => runBroker(args, output),
};

/** Every subcommand, in the order help lists them. */
export const COMMANDS: readonly Command[] = [brokerCommand, devCommand, groupsCommand, topicsCommand, helpCommand, versionCommand];


/**
 * Runs the CLI with `args` (argv without node and the script) and resolves to the exit code.
 * Never calls `process.exit`, so pending output is flushed before the process ends.
 */
export async function main(args: readonly string[], output: CliOutput = processOutput): Promise<number> {
  const [word, ...rest] = args;
  if (word === undefined) {
    for (const line of usageLines()) output.err(line);
    return ExitCode.USAGE;
  }
  const name = ALIASES.get(word) ?? word;
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    output.err(`${PROGRAM}: unknown command "${word}"; run \`${PROGRAM} help\` to list the commands`);
    return ExitCode.USAGE;
  }
  return command.run(rest, output);
}

const processOutput: CliOutput = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/**
 * Runs the CLI as the process: {@link main} with the process streams, its result as the exit
 * code, and any unexpected error as one line on stderr with exit code 1.
 */
export async function runAsProcess(args: readonly string[]): Promise<void> {
  // A reader that stops early (`strata help | head -1`) is normal use, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? ExitCode.OK);
  });
  try {
    process.exitCode = await main(args, processOutput);
  } catch (error) {
    process.stderr.write(`${PROGRAM}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = ExitCode.FAILURE;
  }
}

/** True when node was started with this file as its script (`node dist/src/cli.js …`). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    // An unresolvable argv[1] (e.g. `node -e`) is some other entry point.
    return false;
  }
}

if (isEntryPoint()) await runAsProcess(process.argv.slice(2));
