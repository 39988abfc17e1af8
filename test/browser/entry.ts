// Page script for the browser tests: creates a context from navigator.gpu and runs the portable
// kernel checks through the shared runner on request (seeded; the page's ?TEST_SEED= replays a
// seed, ?TEST_CHECK= picks checks by name). Bundled by esbuild from test/browser.test.ts.
import { GpuContext } from '../../src/index.js';
import { ALL_CHECKS } from '../portable/index.js';
import { runCheck, selectChecks } from '../portable/harness.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  error?: string;
  /** wall time of the check in the page, compiles included (reported, never asserted) */
  ms: number;
}

declare global {
  interface Window {
    runChecks: () => Promise<{ adapter: string; results: CheckResult[] }>;
  }
}

window.runChecks = async () => {
  const ctx = await GpuContext.fromGPU(navigator.gpu);
  ctx.pool.setPoison(0x7fc00000);
  const results: CheckResult[] = [];
  for (const c of selectChecks(ALL_CHECKS, new URLSearchParams(location.search).get('TEST_CHECK'))) {
    const t0 = performance.now();
    try {
      // a check that hangs (e.g. a shader the browser's compiler chokes on) fails alone
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        runCheck(c, ctx),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out after 60 s')), 60_000))),
      ]).finally(() => clearTimeout(timer));
      results.push({ name: c.name, ok: true, ms: performance.now() - t0 });
    } catch (e) {
      results.push({ name: c.name, ok: false, error: String((e as Error)?.stack ?? e), ms: performance.now() - t0 });
    }
  }
  const adapter = ctx.deviceName;
  ctx.destroy();
  return { adapter, results };
};
