import { defineConfig } from 'vitest/config';

// WebGPU here runs on the CPU (lavapipe): two test files at a time at most, generous timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { XDG_RUNTIME_DIR: '/tmp' },
    // the JSON file feeds scripts/test-summary.mjs, which prints the totals line CI reads
    reporters: ['default', ['json', { outputFile: '.cache/vitest-results.json' }]],
  },
});
