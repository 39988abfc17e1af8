// The device-portable kernel checks (ALL_CHECKS of test/portable/index.ts) on Dawn in Node, each run
// by the shared runner (seeded Rng, seed named on failure); test/browser.test.ts runs the same list in
// headless Chromium. TEST_SEED=<seed> replays a failure; TEST_CHECK=<substring> picks checks by name.
import { describe, it } from 'vitest';
import { useGpu } from './helpers.js';
import { ALL_CHECKS } from './portable/index.js';
import { runCheck, selectChecks } from './portable/harness.js';

const gpu = useGpu();
describe('portable kernel checks (Node, Dawn)', () => {
  for (const c of selectChecks(ALL_CHECKS, process.env.TEST_CHECK)) it(c.name, () => runCheck(c, gpu.ctx));
});
