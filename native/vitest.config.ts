import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Suites hash gigabytes; one file at a time keeps memory and cores in bounds.
    fileParallelism: false,
    pool: 'forks',
    // Lets tests check that views outlive a garbage collection.
    execArgv: ['--expose-gc'],
  },
});
