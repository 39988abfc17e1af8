// Shared by test/unet.test.ts and test/dit.test.ts: a noise model (forward(x, t, y) -> eps, see
// src/models/diffusion/common.ts) fitted to a fixed noisy batch with Adam must lower its loss.

import { expect } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import type { AnyModule } from '../src/nn/module.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { randn, sub, square, mean, backward } from '../src/ops/index.js';
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
  const losses: number[] = [];
  for (let step = 0; step < 12; step++) {
    const l = ctx.scope(() => {
      const loss = mean(square(sub(net.forward(x, t, y), target)));
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    losses.push(await l.item());
    l.dispose();
  }
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(losses[losses.length - 1]!, losses.join(', ')).toBeLessThan(losses[0]! * 0.7);
  opt.dispose();
  model.dispose();
  for (const v of [x, target, t, y]) v.dispose();
}
