// The import boundaries of docs/architecture.md §1 are lint rules (eslint.config.js) and a cycle
// check (scripts/check-cycles.mjs), both run by `npm run lint`. These tests prove each rule
// fires: a probe import is linted as if it sat in the guarded folder, and the cycle check runs
// on a scratch folder with files that import each other.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.join(import.meta.dirname, '..');
const RULE = 'no-restricted-imports';

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: REPO });
});

/**
 * Lints `import … from '<specifier>'` as the file `file` (relative to the repository; it need
 * not exist) and returns every problem as `ruleId: message`.
 */
async function lintImport(file: string, specifier: string, typeOnly = false): Promise<string[]> {
  const code = typeOnly
    ? `import type { Probe } from '${specifier}';\nexport type { Probe };\n`
    : `import { probe } from '${specifier}';\nexport { probe };\n`;
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

/** The one problem a restricted import must produce: the rule, the specifier and the advice. */
function restricted(specifier: string, advice: string): string[] {
  return [`${RULE}: '${specifier}' import is restricted from being used by a pattern. ${advice}`];
}

const HANDLER_INFRASTRUCTURE =
  'Handlers reach Redis and storage only through Services (src/handlers/services.ts); add what the handler needs to a service there.';
const HANDLER_BROKER = 'Handlers get everything through ctx.services (src/handlers/services.ts), never from the composition root src/broker.ts.';
const SERVER_BROKER = 'The server is given its handler table, limits and Services by src/broker.ts; it does not import the composition root.';
const IOREDIS =
  'Redis is reached through a store (src/**/*-store.ts) or src/coordination/; only those and the composition root src/broker.ts import ioredis.';
const WIRE_SRC = 'wire/ is the sans-I/O codec and imports nothing from src/; move what both need into wire/.';

describe('lint boundaries', () => {
  describe('src/handlers/** reaches everything through Services', () => {
    it.each([
      ['../coordination/keys.js', false],
      ['../storage/object-store.js', true],
      ['../storage/index.js', false],
      ['ioredis', false],
    ])('refuses %s (type-only: %s)', async (specifier, typeOnly) => {
      expect(await lintImport('src/handlers/zz-probe.ts', specifier, typeOnly)).toEqual(restricted(specifier, HANDLER_INFRASTRUCTURE));
    });

    it('refuses the composition root', async () => {
      expect(await lintImport('src/handlers/zz-probe.ts', '../broker.js')).toEqual(restricted('../broker.js', HANDLER_BROKER));
    });

    it('refuses them from a subfolder too', async () => {
      expect(await lintImport('src/handlers/sub/zz-probe.ts', '../../coordination/redis.js')).toEqual(
        restricted('../../coordination/redis.js', HANDLER_INFRASTRUCTURE),
      );
    });

    it.each(['./services.js', './handler.js', '../cluster/topic-store.js', '../commands/broker.js', '../../wire/index.js'])(
      'allows %s',
      async (specifier) => {
        expect(await lintImport('src/handlers/zz-probe.ts', specifier)).toEqual([]);
      },
    );
  });

  describe('src/server/** does not import the composition root or Redis', () => {
    it('refuses ../broker.js', async () => {
      expect(await lintImport('src/server/zz-probe.ts', '../broker.js')).toEqual(restricted('../broker.js', SERVER_BROKER));
    });

    it('refuses ioredis', async () => {
      expect(await lintImport('src/server/zz-probe.ts', 'ioredis')).toEqual(restricted('ioredis', IOREDIS));
    });

    it.each(['../handlers/handler.js', '../handlers/services.js', '../errors.js'])('allows %s', async (specifier) => {
      expect(await lintImport('src/server/zz-probe.ts', specifier)).toEqual([]);
    });
  });

  describe('ioredis is imported only by stores, coordination/ and the composition root', () => {
    it.each(['src/log/zz-probe.ts', 'src/groups/zz-probe.ts', 'src/txn/zz-probe.ts', 'src/zz-probe.ts', 'src/cluster/zz-probe.ts'])(
      'refuses it in %s',
      async (file) => {
        expect(await lintImport(file, 'ioredis', true)).toEqual(restricted('ioredis', IOREDIS));
      },
    );

    it.each(['src/log/zz-probe-store.ts', 'src/coordination/zz-probe.ts', 'src/broker.ts', 'test/zz-probe.test.ts', 'bench/zz-probe.ts'])(
      'allows it in %s',
      async (file) => {
        expect(await lintImport(file, 'ioredis')).toEqual([]);
      },
    );
  });

  describe('wire/** imports nothing from src/', () => {
    it.each([
      ['wire/runtime/zz-probe.ts', '../../src/errors.js'],
      ['wire/codegen/zz-probe.ts', '../../src/handlers/index.js'],
      ['wire/zz-probe.ts', '../src/config.js'],
    ])('refuses it in %s', async (file, specifier) => {
      expect(await lintImport(file, specifier)).toEqual(restricted(specifier, WIRE_SRC));
    });

    it.each([
      ['wire/runtime/zz-probe.ts', './reader.js'],
      ['wire/records/zz-probe.ts', '../runtime/errors.js'],
    ])('allows %s → %s', async (file, specifier) => {
      expect(await lintImport(file, specifier)).toEqual([]);
    });
  });

  it('leaves test/ and bench/ free to reach into src/', async () => {
    expect(await lintImport('test/zz-probe.test.ts', '../src/broker.js')).toEqual([]);
    expect(await lintImport('bench/zz-probe.ts', '../src/coordination/redis.js')).toEqual([]);
  });
});

describe('import cycle check (scripts/check-cycles.mjs)', () => {
  const scratch: string[] = [];

  afterEach(() => {
    for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the check on a scratch root holding `files` (path → source). */
  function checkCycles(files: Record<string, string>): { status: number | null; stderr: string } {
    const root = mkdtempSync(path.join(tmpdir(), 'strata-cycles-'));
    scratch.push(root);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    }
    return run(root);
  }

  function run(root: string): { status: number | null; stderr: string } {
    const result = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'check-cycles.mjs'), root], { encoding: 'utf8', timeout: 60_000 });
    return { status: result.status, stderr: result.stderr };
  }

  const FIX = "check-cycles: 1 import cycle(s); move the shared type or function to the module that owns it\n";

  it('reports two files that import each other, type-only imports included', () => {
    const result = checkCycles({
      'src/a.ts': "import type { B } from './b.js';\nexport interface A { b: B }\n",
      'src/b.ts': "import { type A } from './a.js';\nexport interface B { a: A }\n",
    });
    expect(result).toEqual({ status: 1, stderr: `import cycle (2 files): src/a.ts → src/b.ts → src/a.ts\n${FIX}` });
  });

  it('reports a cycle across folders through re-exports and dynamic imports, naming every file in it', () => {
    const result = checkCycles({
      'src/a.ts': "export * from './b/index.js';\n",
      'src/b/index.ts': "export { c } from '../../wire/c.js';\nexport { d } from './d.js';\n",
      'src/b/d.ts': "export const d = async () => (await import('../a.js'));\n",
      'wire/c.ts': "import '../src/a.js';\nexport const c = 1;\n",
    });
    expect(result).toEqual({
      status: 1,
      stderr: `import cycle (4 files): src/a.ts → src/b/index.ts → src/b/d.ts → src/a.ts; also in this cycle: wire/c.ts\n${FIX}`,
    });
  });

  it('ignores imports written in comments and strings, and imports of packages', () => {
    const result = checkCycles({
      'test/a.ts': "import { b } from './b.js';\nimport 'ioredis';\nexport const a = b;\n",
      'test/b.ts': "// import { a } from './a.js';\nexport const b = \"import { a } from './a.js'\";\n",
    });
    expect(result).toEqual({ status: 0, stderr: '' });
  });

  it('finds no cycle in the repository', () => {
    expect(run(REPO)).toEqual({ status: 0, stderr: '' });
  });
});
