// Shared by test/unet.test.ts and test/dit.test.ts, for a noise model (forward(x, t, y) -> eps, see
// src/models/diffusion/common.ts): fitted to a fixed noisy batch with Adam it must lower its loss, and
// its parameter gradients must match central finite differences of the GPU forward (helpers.ts).

import { expect } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import type { AnyModule } from '../src/nn/module.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { randn, sub, square, mean, sum, mul, backward } from '../src/ops/index.js';
import { expectElementGradMatchesFd, fitSteps } from './helpers.js';
import { Adam } from '../src/nn/optim.js';
import { Generator } from '../src/util/rng.js';
import { timestepsTensor, classesTensor } from '../src/models/diffusion/common.js';

/** 12 Adam steps on a [4, 3, 8, 8] batch (T 50, 4 classes): finite losses, the last below 0.7 x the first. Disposes the model. */
export async function expectEpsLossDecreases(ctx: GpuContext, model: AnyModule, lr: number): Promise<void> {
  const net = model as AnyModule & { forward(x: Tensor, t: Tensor, y: Tensor): Tensor };
  const opt = new Adam(model.parameters(), { lr });
  const g = new Generator(9);
  const x = ctx.keep(randn(ctx, [4, 3, 8, 8], g));
  const target = ctx.keep(randn(ctx, [4, 3, 8, 8], g));
  const t = ctx.keep(timestepsTensor(ctx, [3, 10, 25, 49], 50));
  const y = ctx.keep(classesTensor(ctx, [0, 1, 4, 3], 4));
  const losses = await fitSteps(ctx, opt, 12, () => mean(square(sub(net.forward(x, t, y), target))));
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(losses[losses.length - 1]!, losses.join(', ')).toBeLessThan(losses[0]! * 0.7);
  opt.dispose();
  model.dispose();
  for (const v of [x, target, t, y]) v.dispose();
}

/**
 * Gradients of loss = sum(model(x, t, y) · dir) for one element of each named parameter (`pick` chooses
 * it, e.g. a used row of a label table) against central finite differences of the GPU forward; h = 1e-2,
 * 3e-3, 1e-3, the first within 2% of |fd| + 0.2% of the largest |gradient| + f32 rounding noise wins.
 */
export async function expectParamGradsMatchFd(
  ctx: GpuContext,
  model: AnyModule & { forward(x: Tensor, t: Tensor, y: Tensor): Tensor },
  inputs: { x: Tensor; t: Tensor; y: Tensor; dir: Tensor },
  names: string[],
  pick: (name: string, size: number) => number,
): Promise<void> {
  const { x, t, y, dir } = inputs;
  const forwardLoss = () => sum(mul(model.forward(x, t, y), dir));
  ctx.scope(() => backward(forwardLoss()));
  const sd = model.stateDict();
  for (const name of names) {
    const w = sd.get(name)!;
    await expectElementGradMatchesFd(ctx, w, pick(name, w.size), forwardLoss, { hs: [1e-2, 3e-3, 1e-3], rtol: 0.02, gtol: 0.002, noise: 3e-7, what: name });
  }
}
