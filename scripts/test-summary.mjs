// Prints the totals of the last vitest run as one line, "tests: N passed, M failed, K skipped",
// from the JSON reporter's file (vitest.config.ts). Exits non-zero when tests failed or none ran.
import { readFileSync } from 'node:fs';
const file = process.argv[2] ?? '.cache/vitest-results.json';
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log('tests: 0 passed, 1 failed');
  console.error(`test-summary: cannot read ${file}: ${e.message}`);
  process.exit(1);
}
const passed = r.numPassedTests ?? 0;
// suites that failed to load count as failures too
const failed = (r.numFailedTests ?? 0) + (r.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0).length;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
