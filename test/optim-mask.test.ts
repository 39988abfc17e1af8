// maskGradients (nn/optim.ts): g ⊙= m on the GPU against the float64 product, only for parameters
// that have a mask and a gradient, with checks naming the parameter; and how it differs from the
// optimizer's strict update mask (weight decay still moves gradient-masked entries).
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { requireGrad } from '../src/autograd/graph.js';
import { SGD, maskGradients } from '../src/nn/optim.js';
import type { Tensor } from '../src/autograd/tensor.js';

const gpu = useGpu();

describe('maskGradients', () => {
  it('multiplies each masked gradient by its mask; unmasked and gradient-less parameters are untouched', async () => {
    const { ctx } = gpu;
    const seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : Math.floor(Math.random() * 2 ** 32);
    const rng = new Rng(seed);
    const shapes = [[5], [3, 4], [2, 2, 3]];
    const params = shapes.map((s) => ctx.keep(requireGrad(tensor(ctx, f32(rng.uniform(s.reduce((a, b) => a * b))), s))));
    const grads = shapes.map((s) => viaF32(rng.uniform(s.reduce((a, b) => a * b))));
    const masks = shapes.map((s) => Float64Array.from(rng.uniform(s.reduce((a, b) => a * b)), (u) => (u > 0 ? 1 : u < -0.5 ? 0.5 : 0)));
    params.forEach((p, k) => (p.grad = ctx.keep(tensor(ctx, f32(grads[k]!), p.shape))));
    params[2]!.grad!.dispose();
    params[2]!.grad = null; // a parameter without a gradient
    const m = new Map<Tensor, Tensor>([
      [params[0]!, ctx.keep(tensor(ctx, f32(masks[0]!), shapes[0]!))],
      [params[2]!, ctx.keep(tensor(ctx, f32(masks[2]!), shapes[2]!))],
    ]); // params[1] has no mask
    maskGradients(params, m);
    expectClose(await params[0]!.grad!.read(), grads[0]!.map((g, i) => g * masks[0]![i]!), 0, 0, `masked grad (seed ${seed})`);
    expectClose(await params[1]!.grad!.read(), grads[1]!, 0, 0, `unmasked grad (seed ${seed})`);
    expect(params[2]!.grad).toBeNull();
    for (const t of [...params, ...m.values()]) t.dispose();
  });

  it('rejects a mask of another shape or dtype, naming the parameter, before changing anything', async () => {
    const { ctx } = gpu;
    const a = ctx.keep(requireGrad(tensor(ctx, [1, 2, 3], [3])));
    const b = ctx.keep(requireGrad(tensor(ctx, [1, 2], [2])));
    a.grad = ctx.keep(tensor(ctx, [1, 1, 1], [3]));
    b.grad = ctx.keep(tensor(ctx, [2, 2], [2]));
    const good = ctx.keep(tensor(ctx, [0, 0, 0], [3]));
    const bad = ctx.keep(tensor(ctx, [0, 0, 0], [3]));
    expect(() => maskGradients([a, b], new Map([[a, good], [b, bad]]))).toThrow(/parameter 1 .*\[2\]/);
    expect(Array.from(await a.grad!.read())).toEqual([1, 1, 1]); // checked first, nothing applied
    const int = ctx.keep(tensor(ctx, new Int32Array([1, 1]), [2], 'i32'));
    expect(() => maskGradients([b], new Map([[b, int]]))).toThrow(/expected f32/);
    for (const t of [a, b, good, bad, int]) t.dispose();
  });

  it('unlike a strict update mask, weight decay still moves entries whose gradient is masked', async () => {
    const { ctx } = gpu;
    const p = ctx.keep(requireGrad(tensor(ctx, [1, 2], [2])));
    const mask = ctx.keep(tensor(ctx, [0, 1], [2]));
    const opt = new SGD([p], { lr: 0.5, weightDecay: 0.1 });
    p.grad = ctx.keep(tensor(ctx, [10, 10], [2]));
    maskGradients([p], new Map([[p, mask]]));
    opt.step();
    // p0: 1 − 0.5·(0 + 0.1·1) = 0.95; p1: 2 − 0.5·(10 + 0.2) = −3.1
    expectClose(await p.read(), [0.95, -3.1], 1e-6, 1e-7, 'after one step');
    p.grad = ctx.keep(tensor(ctx, [10, 10], [2]));
    opt.setUpdateMask(p, mask);
    opt.step();
    expect((await p.read())[0]).toBe(Math.fround(0.95)); // strict: frozen bit for bit
    opt.dispose();
    p.dispose();
    mask.dispose();
  });
});
