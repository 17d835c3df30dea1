import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withCompatTable } from '../src/tools/compat-table.js';

describe('README', () => {
  it('has the compatibility table the handler registry produces (npm run docs:compat)', () => {
    const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    expect(readme).toBe(withCompatTable(readme));
  });

  it('shows the two commands', () => {
    const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
  });
});
