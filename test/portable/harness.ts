// The one runner of the device-portable checks: test/portable.test.ts (Dawn in Node) and
// test/browser/entry.ts (headless Chromium) both call runCheck, which hands each check a seeded Rng
// and, on failure, names the seed and how to replay it. Browser-safe; it does not create contexts.

import type { GpuContext } from '../../src/gpu/context.js';
import { Rng, testSeed } from './ref.js';

/**
 * One portable check. `rng` is seeded by the runner (TEST_SEED replays it); draw every random
 * input, index and Generator seed from it so the whole check replays from that one number.
 */
export interface Check {
  name: string;
  run: (ctx: GpuContext, rng: Rng) => Promise<unknown>;
}

/** How to replay a failed check with its seed, in Node and in Chromium. */
export const replayHint = (name: string, seed: number) =>
  `seed ${seed}; replay: TEST_SEED=${seed} npx vitest run test/portable.test.ts -t '${name.replace(/'/g, '.')}' ` +
  `(Chromium: TEST_SEED=${seed} TEST_CHECK='${name.replace(/'/g, '.')}' npx vitest run test/browser.test.ts)`;

/**
 * Run one check with a fresh Rng (TEST_SEED's seed when set). A failure is rethrown with the seed and
 * the replay command appended to its message; the stack is kept.
 */
export async function runCheck(check: Check, ctx: GpuContext, seed = testSeed()): Promise<void> {
  try {
    await check.run(ctx, new Rng(seed));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const message = `${err.message}\n  [${replayHint(check.name, seed)}]`;
    if (err.stack?.includes(err.message)) err.stack = err.stack.replace(err.message, () => message);
    err.message = message;
    throw err;
  }
}

/** Checks whose name contains `filter` (all when it is empty): TEST_CHECK in Node, ?TEST_CHECK= in a page. */
export function selectChecks(checks: readonly Check[], filter: string | null | undefined): Check[] {
  return filter ? checks.filter((c) => c.name.includes(filter)) : [...checks];
}
