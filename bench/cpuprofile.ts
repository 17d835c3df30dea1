/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof` or the benchmark's profile hook):
 * self time by function, self time by file or package, and total (inclusive) time of the
 * project's own functions. Positions in `dist/` are mapped back to the TypeScript sources
 * through the build's source maps.
 *
 * Also a command: `node dist/bench/cpuprofile.js FILE.cpuprofile [--top 30]`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The JSON V8 writes. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One row of a summary: a function, file or area, with milliseconds and share of busy time. */
export interface ProfileRow {
  name: string;
  where: string;
  ms: number;
  /** Percent of busy (non-idle) time. */
  pct: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers. */
  totalMs: number;
  /** Time the thread was not idle. */
  busyMs: number;
  /** Self time by function, largest first. */
  functions: ProfileRow[];
  /** Self time by source file, node internal module or npm package. */
  areas: ProfileRow[];
  /** Inclusive time of the project's own functions (src/, wire/), largest first. */
  inclusive: ProfileRow[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Maps `file:///…/dist/x.js` positions to `x.ts:line` through the build's source maps. */
class Locator {
  readonly #root: string;
  readonly #maps = new Map<string, SourceMap | null>();

  constructor(root: string) {
    this.#root = root;
  }

  /** `[file, area]` of a call frame: a repo-relative source position and its grouping key. */
  locate(frame: CallFrame): [string, string] {
    const url = frame.url;
    if (url === '') return ['(native)', '(native V8/C++/addons)'];
    if (url.startsWith('node:')) return [`${url}:${frame.lineNumber + 1}`, url];
    let file = url.startsWith('file://') ? fileURLToPath(url) : url;
    let line = frame.lineNumber + 1;
    const map = this.#map(file);
    if (map) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string; originalLine?: number };
      if (entry.originalSource) {
        const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource);
        file = source;
        line = (entry.originalLine ?? 0) + 1;
      }
    }
    const nm = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    if (nm >= 0) {
      const rest = file.slice(nm + 14).split(path.sep);
      const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
      return [`${pkg}/…/${path.basename(file)}:${line}`, `npm:${pkg}`];
    }
    const rel = path.relative(this.#root, file);
    return [`${rel}:${line}`, rel];
  }

  #map(file: string): SourceMap | null {
    let m = this.#maps.get(file);
    if (m !== undefined) return m;
    m = null;
    const mapFile = `${file}.map`;
    if (file.endsWith('.js') && existsSync(mapFile)) {
      try {
        m = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as never);
      } catch {
        m = null;
      }
    }
    this.#maps.set(file, m);
    return m;
  }
}

/** Summarises a profile; `root` is the repository root for relative paths. */
export function summarizeProfile(profile: CpuProfile, root: string, top = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Every sample counts the mean interval. Weighting samples by their time deltas instead
  // would charge a whole descheduled gap to one function when other processes compete for
  // the CPU, as they do on a small machine.
  const selfUs = new Map<number, number>();
  const n = profile.samples.length;
  const totalUs = profile.endTime - profile.startTime;
  const meanUs = n > 0 ? totalUs / n : 0;
  for (let i = 0; i < n; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + meanUs);
  }

  const locator = new Locator(root);
  const located = new Map<number, { key: string; name: string; where: string; area: string; own: boolean }>();
  const locate = (id: number) => {
    let l = located.get(id);
    if (l) return l;
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    if (SPECIAL.has(name) && frame.url === '') {
      l = { key: name, name, where: '', area: name, own: false };
    } else if (frame.url === '') {
      // Native names are often wrong (addon symbols resolve to neighbours, e.g. crc32c shows as
      // "DecompressorFinish"): name the JavaScript caller too.
      let caller: number | undefined = parent.get(id);
      while (caller !== undefined && byId.get(caller)!.callFrame.url === '') caller = parent.get(caller);
      const c = caller === undefined ? null : byId.get(caller)!.callFrame;
      const where = c ? `native, called from ${c.functionName || '(anonymous)'} ${locator.locate(c)[0]}` : 'native';
      l = { key: `${name} ${where}`, name, where, area: '(native V8/C++/addons)', own: false };
    } else {
      const [where, area] = locator.locate(frame);
      l = { key: `${name} ${where}`, name, where, area, own: /^(src|wire|bench)\//.test(where) };
    }
    located.set(id, l);
    return l;
  };

  let idleUs = 0;
  const fnSelf = new Map<string, { name: string; where: string; us: number }>();
  const areaSelf = new Map<string, number>();
  const fnTotal = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const l = locate(id);
    if (l.name === '(idle)') {
      idleUs += us;
      continue;
    }
    const f = fnSelf.get(l.key) ?? { name: l.name, where: l.where, us: 0 };
    f.us += us;
    fnSelf.set(l.key, f);
    areaSelf.set(l.area, (areaSelf.get(l.area) ?? 0) + us);
    // Inclusive time: credit every distinct own function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const c = locate(cur);
      if (!c.own || seen.has(c.key)) continue;
      seen.add(c.key);
      const t = fnTotal.get(c.key) ?? { name: c.name, where: c.where, us: 0 };
      t.us += us;
      fnTotal.set(c.key, t);
    }
  }
  const busyUs = totalUs - idleUs;
  const rows = (entries: Iterable<{ name: string; where: string; us: number }>): ProfileRow[] =>
    [...entries]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, pct: busyUs > 0 ? (100 * e.us) / busyUs : 0 }));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    functions: rows(fnSelf.values()),
    areas: rows([...areaSelf].map(([area, us]) => ({ name: area, where: '', us }))),
    inclusive: rows(fnTotal.values()),
  };
}

/** The summary as text lines, for the console. */
export function formatSummary(title: string, s: ProfileSummary, limits = { functions: 25, areas: 15, inclusive: 15 }): string[] {
  const out: string[] = [];
  out.push(`${title}: ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.totalMs / 1000).toFixed(2)} s (${((100 * s.busyMs) / s.totalMs).toFixed(0)}% of one core)`);
  const row = (r: ProfileRow): string => `    ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}${r.where ? `  ${r.where}` : ''}`;
  out.push('  self time by function:');
  for (const r of s.functions.slice(0, limits.functions)) out.push(row(r));
  out.push('  self time by file / module / package:');
  for (const r of s.areas.slice(0, limits.areas)) out.push(row(r));
  out.push("  total (inclusive) time of Strata's own functions:");
  for (const r of s.inclusive.slice(0, limits.inclusive)) out.push(row(r));
  return out;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  return script !== undefined && path.resolve(script) === fileURLToPath(import.meta.url);
}

if (isEntryPoint()) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
  if (args.length === 0) {
    process.stderr.write('usage: node dist/bench/cpuprofile.js FILE.cpuprofile… [--top N]\n');
    process.exit(2);
  }
  const { REPO_ROOT } = await import('./processes.js');
  for (const file of args) {
    const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, REPO_ROOT, top);
    for (const line of formatSummary(file, summary, { functions: top, areas: top, inclusive: top })) console.log(line);
  }
}
