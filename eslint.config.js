// ESLint flat config: @eslint/js and typescript-eslint recommended rules (syntax-only, no type
// information, so `npm run lint` stays fast), with a few relaxations for generated code.

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
);
