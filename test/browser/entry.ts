// Page script for the browser tests: creates a context from navigator.gpu and runs the portable
// kernel checks on request. Bundled by esbuild from test/browser.test.ts.
import { GpuContext } from '../../src/index.js';
import { ALL_CHECKS as CHECKS } from '../portable/index.js';

declare global {
  interface Window {
    runChecks: () => Promise<{ adapter: string; results: { name: string; ok: boolean; error?: string }[] }>;
  }
}

window.runChecks = async () => {
  const ctx = await GpuContext.fromGPU(navigator.gpu);
  ctx.pool.setPoison(0x7fc00000);
  const results: { name: string; ok: boolean; error?: string }[] = [];
  for (const c of CHECKS) {
    try {
      // a check that hangs (e.g. a shader the browser's compiler chokes on) fails alone
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        c.run(ctx),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out after 60 s')), 60_000))),
      ]).finally(() => clearTimeout(timer));
      results.push({ name: c.name, ok: true });
    } catch (e) {
      results.push({ name: c.name, ok: false, error: String((e as Error)?.stack ?? e) });
    }
  }
  const adapter = ctx.deviceName;
  ctx.destroy();
  return { adapter, results };
};
