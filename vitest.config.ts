import { defineConfig } from 'vitest/config';

/**
 * Vitest configuration: every `test/**\/*.test.ts`, each file in its own child process.
 *
 * Integration tests start real `redis-server` processes and brokers, so timeouts are generous
 * and the worker count is fixed at two rather than derived from the core count: the same
 * suite then schedules the same way on a laptop and on a 2-core CI runner.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
