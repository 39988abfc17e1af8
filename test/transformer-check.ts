// Shared by test/swin.test.ts and test/vit.test.ts (not a test file): a directional finite-difference
// check of every parameter gradient at once (as JAX's check_vjp: one random direction d over all
// parameters, central differences, Richardson-extrapolated, against Σ ⟨∂L/∂θ, d⟩), and a few-step loss decrease.
import type { GpuContext } from '../src/gpu/context.js';
import type { Tensor } from '../src/autograd/tensor.js';
import type { AnyModule } from '../src/nn/module.js';
import { copyTensor } from '../src/nn/module.js';
import { backward, crossEntropy, labelsTensor, mean, mul, randn, sum, tensor } from '../src/ops/index.js';
import { AdamW } from '../src/nn/optim.js';
import { Generator } from '../src/util/rng.js';
import { fitSteps } from './helpers.js';

/** Returns { analytic, numeric } directional derivatives of sum(model(x) · dir) along a random direction. */
export async function directionalCheck(ctx: GpuContext, model: AnyModule, inputShape: number[], seed: number, h = 1e-3) {
  const gen = new Generator(seed);
  const x = ctx.keep(randn(ctx, inputShape, gen));
  const out = ctx.scope(() => model.forward(x) as Tensor);
  const dir = ctx.keep(randn(ctx, out.shape, gen));
  out.dispose();
  const loss = () => sum(mul(model.forward(x) as Tensor, dir));
  model.zeroGrad();
  ctx.scope(() => backward(loss()));
  const params = model.parameters();
  const w0 = await Promise.all(params.map(async (p) => (await p.read()) as Float32Array));
  const d = params.map((p) => {
    const v = new Float32Array(p.size);
    for (let i = 0; i < v.length; i++) v[i] = gen.cpuUniform() * 2 - 1;
    return v;
  });
  let analytic = 0;
  for (let k = 0; k < params.length; k++) {
    const g = (await params[k]!.grad!.read()) as Float32Array;
    for (let i = 0; i < g.length; i++) analytic += g[i]! * d[k]![i]!;
  }
  const at = async (s: number) => {
    params.forEach((p, k) => ctx.scope(() => copyTensor('test', tensor(ctx, w0[k]!.map((v, i) => v + s * d[k]![i]!), p.shape), p)));
    const l = ctx.scope(() => ctx.noGrad(loss));
    const r = await l.item();
    l.dispose();
    return r;
  };
  // central differences at h and 2h, Richardson-extrapolated (error O(h⁴): the nets are smooth but
  // curved enough along a direction that moves every parameter that plain O(h²) needs tiny steps)
  const central = async (s: number) => ((await at(s)) - (await at(-s))) / (2 * s);
  const d1 = await central(h);
  const d2 = await central(2 * h);
  const numeric = (4 * d1 - d2) / 3;
  await at(0);
  x.dispose();
  dir.dispose();
  return { analytic, numeric };
}

/** Losses of `steps` AdamW steps on one fixed random batch. */
export async function fitLosses(ctx: GpuContext, model: AnyModule, inputShape: number[], numClasses: number, steps: number, lr = 3e-3): Promise<number[]> {
  const gen = new Generator(5);
  const N = inputShape[0]!;
  const x = ctx.keep(randn(ctx, inputShape, gen));
  const y = ctx.keep(labelsTensor(ctx, Array.from({ length: N }, (_, i) => i % numClasses), numClasses));
  const opt = new AdamW(model.parameters(), { lr, weightDecay: 0 });
  const losses = await fitSteps(ctx, opt, steps, () => mean(crossEntropy(model.forward(x) as Tensor, y)));
  opt.dispose();
  x.dispose();
  y.dispose();
  return losses;
}
