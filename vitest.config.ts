import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'threads',
    // The CLI tests run asi-check in-process too (test/cli-run.ts): plain output, as in their child processes.
    env: { NO_COLOR: '1' },
  },
});
