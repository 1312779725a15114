import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The resolver commands run against the same real S3-compatible server (moto on 127.0.0.1) as @ckpt/resolver-b2.
    globalSetup: ['../resolver-b2/test/support/moto.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
