// The device-portable kernel checks (test/portable/checks.ts) on Dawn in Node; test/browser.test.ts
// runs the same list in headless Chromium.
import { describe, it } from 'vitest';
import { useGpu } from './helpers.js';
import { ALL_CHECKS as CHECKS } from './portable/index.js';

const gpu = useGpu();
describe('portable kernel checks (Node, Dawn)', () => {
  for (const c of CHECKS) it(c.name, () => c.run(gpu.ctx));
});
