// ESLint flat config: @eslint/js and typescript-eslint recommended rules (syntax-only, no type
// information, so `npm run lint` stays fast), a few relaxations for generated code, and the
// import boundaries between the rooms of docs/architecture.md §1, proven by
// test/boundaries.test.ts. `npm run lint` also runs scripts/check-cycles.mjs, which fails on
// any import cycle.

import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Node globals used by the plain JavaScript files (scripts/, bin/, this file). */
const nodeGlobals = {
  Buffer: 'readonly',
  URL: 'readonly',
  clearTimeout: 'readonly',
  console: 'readonly',
  process: 'readonly',
  setTimeout: 'readonly',
};

// Import boundaries. `no-restricted-imports` matches the specifier as written, so the globs
// name folders wherever they sit on the relative path (`../coordination/keys.js` from a
// handler, `../../src/errors.js` from wire/). Type-only imports count: a handler that imports a
// type from coordination/ is already coupled to it. In flat config a later block's options for
// the same rule replace an earlier block's, so each block below lists every restriction that
// applies to its files, not only the one it adds. test/ and bench/ are outside these rules.

/** ioredis stays behind the Redis door. */
const IOREDIS = {
  group: ['ioredis', 'ioredis/**'],
  message:
    'Redis is reached through a store (src/**/*-store.ts) or src/coordination/; only those and the composition root src/broker.ts import ioredis.',
};

/** What handlers may not reach around Services for: Redis, the Redis layer, the object store. */
const HANDLER_INFRASTRUCTURE = {
  group: ['ioredis', 'ioredis/**', '**/coordination', '**/coordination/**', '**/storage', '**/storage/**'],
  message:
    'Handlers reach Redis and storage only through Services (src/handlers/services.ts); add what the handler needs to a service there.',
};

/** The composition root, seen from below it (`../broker.js`, not `../commands/broker.js`). */
const COMPOSITION_ROOT = /^(?:\.\.\/)+broker(?:\.[jt]s)?$/.source;

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', 'data/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // bin/strata has no extension; naming it here is what makes `eslint .` lint it.
    files: ['**/*.js', '**/*.mjs', 'bin/strata'],
    languageOptions: { globals: nodeGlobals, sourceType: 'module' },
  },
  {
    rules: {
      // A leading underscore marks a parameter or binding as deliberately unused.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Generated codec: templates shared by every API and version leave some parameters and
    // imports unused (touched with `void`), write version-dependent calls as `c ? a() : b()`,
    // declare `unknownTaggedFields` even where no version has tagged fields, and initialise
    // each field's local before the version checks assign it. Special-casing each of these in
    // the generator would make it longer without making the output safer.
    files: ['wire/generated/**'],
    rules: {
      '@typescript-eslint/no-unused-vars': 'off',
      '@typescript-eslint/no-unused-expressions': 'off',
      'no-unassigned-vars': 'off',
      'no-useless-assignment': 'off',
    },
  },
  {
    // ioredis: only the stores and coordination/ talk to Redis. src/broker.ts is the one other
    // importer: as the composition root it creates the Redis clients the stores are given.
    files: ['src/**'],
    ignores: ['src/**/*-store.ts', 'src/coordination/**', 'src/broker.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [IOREDIS] }] },
  },
  {
    // Handlers: one door inward, Services. This block also repeats the ioredis rule, because
    // its options replace the block above for these files.
    files: ['src/handlers/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            HANDLER_INFRASTRUCTURE,
            {
              regex: COMPOSITION_ROOT,
              message:
                'Handlers get everything through ctx.services (src/handlers/services.ts), never from the composition root src/broker.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    // The server is given its limits, handler table and Services; it never reaches back up to
    // the composition root that built them. Repeats the ioredis rule (see above).
    files: ['src/server/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            IOREDIS,
            {
              regex: COMPOSITION_ROOT,
              message:
                'The server is given its handler table, limits and Services by src/broker.ts; it does not import the composition root.',
            },
          ],
        },
      ],
    },
  },
  {
    // The codec is sans-I/O and stands alone: wire/ (runtime, records, codegen, generated) never
    // imports the broker.
    files: ['wire/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src', '**/src/**'],
              message: 'wire/ is the sans-I/O codec and imports nothing from src/; move what both need into wire/.',
            },
          ],
        },
      ],
    },
  },
);
