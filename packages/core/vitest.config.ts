import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Importing Python references (torch, numpy) in a fresh process takes seconds, more on a loaded machine.
    hookTimeout: 60_000,
  },
});
