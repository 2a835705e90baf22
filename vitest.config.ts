import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Node imports the code itself, through tsx (as `npx asi-check` runs it), instead of Vite's
    // module runner, whose rewritten imports made the model's hot paths a fifth slower (npm test:
    // 113 s of CPU against 92). Forks: on Node 20 a worker thread's --import does not reach the
    // modules vitest loads in it, and the run fails (loudly: no test file passes).
    experimental: { viteModuleRunner: false, nodeLoader: false },
    execArgv: ['--import', 'tsx'],
    pool: 'forks',
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
