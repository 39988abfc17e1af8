// Shared test helpers for Node-only test files: a GPU context per test file (outputs poisoned with
// NaN) plus the portable helpers (test/portable/ref.ts, grad.ts): seeded Rng (TEST_SEED replays),
// float64 references, checkOp for forward + backward of an op, assertThrows; expectClose reports
// through vitest. Kernel checks themselves belong in test/portable/ (they run in Chromium too).

import { afterAll, beforeAll, expect } from 'vitest';
import { createNodeContext } from '../src/node.js';
import type { GpuContext } from '../src/gpu/context.js';
import type { Tensor } from '../src/autograd/tensor.js';
import type { Optimizer } from '../src/nn/optim.js';
import { backward } from '../src/autograd/backward.js';
import { tensor } from '../src/ops/index.js';
import { copyTensor } from '../src/nn/module.js';
import { assertClose } from './portable/ref.js';

export { Rng, testSeed, f32, viaF32, refVjp, strides, size, distinct, assertClose, assertEqual, assertThrows } from './portable/ref.js';
export { checkOp } from './portable/grad.js';
export type { OpCase, InputSpec, OpResult } from './portable/grad.js';

/** NaN bit pattern used to poison every freshly acquired buffer. */
export const POISON = 0x7fc00000;

/**
 * `steps` optimizer steps on the loss `lossOf()` builds (each step in its own scope: backward, step,
 * zeroGrad); returns every step's loss, read back. The "a loss goes down" check of the model tests.
 */
export async function fitSteps(ctx: GpuContext, opt: Optimizer, steps: number, lossOf: () => Tensor): Promise<number[]> {
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const l = ctx.scope(() => {
      const loss = lossOf();
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    losses.push(await l.item());
    l.dispose();
  }
  return losses;
}

/**
 * Element `i` of parameter `w` (its .grad filled by a backward of `lossOf`) against central finite
 * differences of `lossOf` (run without grad): the first step h of `hs` whose difference agrees within
 * rtol·|fd| + gtol·max|grad| + f32 rounding of the two losses (noise·(|l₊| + |l₋|)/h) passes. The
 * element is restored afterwards. Used by the model tests (ResNet, UNet, DiT).
 */
export async function expectElementGradMatchesFd(
  ctx: GpuContext,
  w: Tensor,
  i: number,
  lossOf: () => Tensor,
  o: { hs: number[]; rtol: number; gtol: number; noise: number; what: string },
): Promise<void> {
  const w0 = (await w.read()) as Float32Array;
  const g = (await w.grad!.read()) as Float32Array;
  const at = async (v: number) => {
    const wv = w0.slice();
    wv[i] = v;
    ctx.scope(() => copyTensor('test', tensor(ctx, wv, w.shape), w));
    const l = ctx.scope(() => ctx.noGrad(lossOf));
    const r = await l.item();
    l.dispose();
    return r;
  };
  const scale = Math.max(...g.map(Math.abs));
  const tries: string[] = [];
  let ok = false;
  for (const h of o.hs) {
    const lp = await at(w0[i]! + h);
    const lm = await at(w0[i]! - h);
    const fd = (lp - lm) / (2 * h);
    tries.push(`h=${h}: ${fd}`);
    if (Math.abs(g[i]! - fd) <= o.rtol * Math.abs(fd) + o.gtol * scale + (o.noise * (Math.abs(lp) + Math.abs(lm))) / h) {
      ok = true;
      break;
    }
  }
  await at(w0[i]!);
  expect(ok, `${o.what}[${i}]: autograd ${g[i]} vs finite differences ${tries.join(', ')} (max |g| ${scale})`).toBe(true);
}

/** Creates one context for the test file; `gpu.ctx` is valid inside tests. */
export function useGpu(): { ctx: GpuContext } {
  const holder = {} as { ctx: GpuContext };
  beforeAll(async () => {
    holder.ctx = await createNodeContext();
    holder.ctx.pool.setPoison(POISON);
  });
  afterAll(async () => {
    await holder.ctx?.close();
  });
  return holder;
}

/** Assert |a - e| <= atol + rtol |e| elementwise, naming the first offending index. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = 'value') {
  try {
    assertClose(actual, expected, rtol, atol, what);
  } catch (e) {
    expect.fail((e as Error).message);
  }
}
