import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take most of the two cores, heaviest first (measured on a clean clone, where
 * vitest has no durations of its own yet and keeps the glob's order): started last, the kill
 * matrix alone kept one core busy for 8 s after the other had finished.
 */
const HEAVY_FIRST = ['check-equivalence', 'mutants-cpu', 'mutants', 'cli-scripting', 'cli-fuzz', 'explore', 'fixed', 'nightly-workflow', 'argshrink', 'triage', 'report', 'cli-mutants', 'kvm', 'coverage'];

/** Longest first: vitest's own durations once it has them, else HEAVY_FIRST, then larger files first. */
class HeavyFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const known = files.every((f) => this.ctx.cache.getFileTestResults(`${f.project.name}:${f.moduleId.slice(this.ctx.config.root.length + 1)}`));
    if (known) return super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = HEAVY_FIRST.indexOf(basename(f.moduleId, '.test.ts'));
      return i < 0 ? HEAVY_FIRST.length : i;
    };
    return [...files].sort((a, b) => rank(a) - rank(b) || statSync(b.moduleId).size - statSync(a.moduleId).size);
  }
}

/**
 * `npm test` runs test/*.test.ts; `npm run test:nightly` (ASI_CHECK_TESTS=nightly) the long cases
 * in test/nightly/, which the nightly workflow runs: npm test stays within a minute on two cores.
 */
const nightly = process.env.ASI_CHECK_TESTS === 'nightly';

export default defineConfig({
  test: {
    include: [nightly ? 'test/nightly/**/*.test.ts' : 'test/*.test.ts'],
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
    sequence: { sequencer: HeavyFirst },
    // The CLI tests run asi-check in-process too (test/cli-run.ts): plain output, as in their child processes.
    env: { NO_COLOR: '1' },
  },
});
