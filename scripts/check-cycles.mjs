// Import-cycle check, run by `npm run lint`: reads every .ts file under src/, wire/, bench/
// and test/, follows the relative imports between them and fails when any set of files imports
// itself round. `import type`, `export … from` and `import()` count as much as a value import:
// a type-only cycle costs nothing at run time, but it still means neither module can be read,
// tested or moved without the other.
//
//   node scripts/check-cycles.mjs [root]
//
// `root` defaults to the repository; the boundaries test points it at a scratch folder.
// TypeScript's own import scanner (`ts.preProcessFile`) finds the specifiers, so comments,
// strings and template literals that merely look like imports are never mistaken for them.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The folders whose files take part, relative to the root. */
const FOLDERS = ['src', 'wire', 'bench', 'test'];

/** Every .ts file under the given folders of `root`, as absolute paths, sorted. */
function tsFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) out.push(path);
    }
  };
  for (const folder of FOLDERS) if (existsSync(join(root, folder))) walk(join(root, folder));
  return out.sort();
}

/**
 * The file a relative specifier names: NodeNext specifiers end in `.js` for a `.ts` source;
 * an extensionless one may name a file or a folder's index. Null for packages and for files
 * outside the checked set.
 */
function resolveSpecifier(from, specifier, known) {
  if (!specifier.startsWith('.')) return null;
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => known.has(c)) ?? null;
}

/** The import graph: file → the files it imports (static, type-only, re-export or dynamic). */
export function importGraph(files) {
  const known = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = new Set();
    for (const { fileName } of importedFiles) {
      const target = resolveSpecifier(file, fileName, known);
      if (target) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * The strongly connected components of the graph that contain a cycle (more than one file, or
 * one file importing itself), by Tarjan's algorithm, iterative so deep chains cannot overflow
 * the stack.
 */
export function cyclicComponents(graph) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const edges = graph.get(frame.node);
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++];
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node), index.get(to)));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)));
      }
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      if (component.length > 1 || edges.includes(frame.node)) components.push(component.sort());
    }
  }
  return components;
}

/** One shortest cycle through the component's first file, by breadth-first search within it. */
export function shortestCycle(graph, component) {
  const members = new Set(component);
  const start = component[0];
  const previous = new Map();
  const queue = [start];
  while (queue.length) {
    const node = queue.shift();
    for (const to of graph.get(node)) {
      if (!members.has(to)) continue;
      if (to === start) {
        const chain = [start];
        for (let at = node; at !== start; at = previous.get(at)) chain.unshift(at);
        chain.unshift(start);
        return chain;
      }
      if (!previous.has(to)) {
        previous.set(to, node);
        queue.push(to);
      }
    }
  }
  throw new Error(`no cycle through ${start} in its own component`);
}

/** Every import cycle under `root`: one line per cycle, empty when there is none. */
export function findCycles(root) {
  const graph = importGraph(tsFiles(root));
  const name = (file) => relative(root, file);
  return cyclicComponents(graph).map((component) => {
    const chain = shortestCycle(graph, component);
    const rest = component.filter((f) => !chain.includes(f));
    const tangled = rest.length ? `; also in this cycle: ${rest.map(name).join(', ')}` : '';
    return `import cycle (${component.length} files): ${chain.map(name).join(' → ')}${tangled}`;
  });
}

function main() {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    console.error(`check-cycles: ${root} is not a folder; pass the repository root`);
    return 1;
  }
  const cycles = findCycles(root);
  for (const line of cycles) console.error(line);
  if (cycles.length) {
    console.error(`check-cycles: ${cycles.length} import cycle(s); move the shared type or function to the module that owns it`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
