/**
 * What the Kafka-protocol subcommands (`strata groups`, `strata topics`) share: their
 * `--bootstrap host:port` / `--json` arguments, error names and plain-text tables.
 */
import { errorInfo } from '../../wire/index.js';

/** Parsed common arguments; `rest` holds the subcommand's own words. */
export interface KafkaCliArgs {
  bootstrap: string;
  json: boolean;
  rest: string[];
  /** Values of the command's own `--name value` options, by name. */
  options: Map<string, string>;
}

/** A Kafka error code's name (`UNKNOWN_TOPIC_OR_PARTITION`), or `error N`. */
export function errorName(code: number): string {
  return errorInfo(code)?.name ?? `error ${code}`;
}

/**
 * Parses `--bootstrap`/`-b host:port` (default `$STRATA_BOOTSTRAP` or 127.0.0.1:9092), `--json`
 * and the value options named in `valueOptions`; returns a message for bad usage.
 */
export function parseKafkaCliArgs(args: readonly string[], valueOptions: readonly string[] = []): KafkaCliArgs | string {
  let bootstrap = process.env.STRATA_BOOTSTRAP ?? '127.0.0.1:9092';
  let json = false;
  const rest: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') ? (a.split(/=(.*)/s, 2) as [string, string | undefined]) : [a, undefined];
    if (flag === '--bootstrap' || flag === '-b') {
      const v = inline ?? args[++i];
      if (v === undefined) return `${flag} needs host:port`;
      bootstrap = v;
    } else if (flag === '--json') json = true;
    else if (valueOptions.includes(flag)) {
      const v = inline ?? args[++i];
      if (v === undefined) return `${flag} needs a value`;
      options.set(flag, v);
    } else if (flag.startsWith('-')) return `unknown option ${flag}`;
    else rest.push(a);
  }
  return { bootstrap: bootstrap.split(',')[0]!, rest, json, options };
}

/** Rows as columns padded to their widest cell, two spaces apart; the first row is the header. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
