import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'threads',
    // Both cores: vitest's default leaves one for the main thread, which idles here (the CLI tests
    // run in-process, and the worker pools they start are short).
    maxWorkers: 2,
    // Test files share a worker's modules instead of loading the model afresh each (a third of the
    // CPU of `npm test`): no test mocks a module or leaves a global changed (test/in-process.ts
    // puts back what it patches), and each file registers its own cleanup (tempDirs in test/cli-run.ts).
    isolate: false,
    // The CLI tests run asi-check in-process too (test/cli-run.ts): plain output, as in their child processes.
    env: { NO_COLOR: '1' },
  },
});
