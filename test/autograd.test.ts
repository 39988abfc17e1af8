// The autograd engine itself: a shared subexpression and a residual block accumulate gradients from
// every path, noGrad records nothing, detach cuts the graph, backward with a given output gradient,
// gradients accumulate across backward calls, scopes free intermediates, and misuse is reported.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp } from './helpers.js';
import { tensor, full } from '../src/wgsl/fill.js';
import { add, mul, relu, tanh, addScalar } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { matmul } from '../src/wgsl/matmul.js';
import { detach, requireGrad } from '../src/autograd/graph.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

describe('autograd', () => {
  it('a shared subexpression used three times accumulates all three contributions', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const rng = new Rng();
      const xd = viaF32(rng.uniform(6));
      const x = requireGrad(tensor(ctx, f32(xd), [6]));
      const s = tanh(x); // shared
      const y = sum(add(mul(s, s), s)); // s used three times
      backward(y);
      const ref = (a: Float64Array) => [a.reduce((acc, v) => acc + Math.tanh(v) ** 2 + Math.tanh(v), 0)];
      expectClose(await x.grad!.read(), refVjp(ref, [xd], [1])[0]!, 1e-4, 1e-5, 'dx');
    });
  });

  it('a residual block y = x + W2·relu(W1·x) gets gradients through both paths', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const rng = new Rng();
      const [B, D] = [3, 4];
      const xd = viaF32(rng.uniform(B * D)), w1d = viaF32(rng.uniform(D * D)), w2d = viaF32(rng.uniform(D * D)), gd = viaF32(rng.uniform(B * D));
      const x = requireGrad(tensor(ctx, f32(xd), [B, D]));
      const w1 = requireGrad(tensor(ctx, f32(w1d), [D, D]));
      const w2 = requireGrad(tensor(ctx, f32(w2d), [D, D]));
      const y = add(x, matmul(relu(matmul(x, w1)), w2));
      backward(y, tensor(ctx, f32(gd), [B, D])); // a given output gradient instead of a scalar
      const ref = (a: Float64Array, p: Float64Array, q: Float64Array) => {
        const out = new Float64Array(B * D);
        for (let b = 0; b < B; b++) {
          const h = Array.from({ length: D }, (_, j) => Math.max(0, [...Array(D).keys()].reduce((s, k) => s + a[b * D + k]! * p[k * D + j]!, 0)));
          for (let j = 0; j < D; j++) out[b * D + j] = a[b * D + j]! + h.reduce((s, v, k) => s + v * q[k * D + j]!, 0);
        }
        return out;
      };
      const [dx, dw1, dw2] = refVjp(ref, [xd, w1d, w2d], gd);
      expectClose(await x.grad!.read(), dx!, 1e-3, 1e-4, 'dx');
      expectClose(await w1.grad!.read(), dw1!, 1e-3, 1e-4, 'dW1');
      expectClose(await w2.grad!.read(), dw2!, 1e-3, 1e-4, 'dW2');
    });
  });

  it('noGrad records no graph; detach cuts it; .grad accumulates over two backward calls', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const x = requireGrad(tensor(ctx, [1, 2, 3], [3]));
      const y = ctx.noGrad(() => mul(x, x));
      expect(y.requiresGrad).toBe(false);
      expect(y.node).toBeNull();
      expect(() => backward(sum(y))).toThrow(/does not require grad/);
      // z = x * detach(x): only the first factor carries gradient, dz/dx = detach(x)
      backward(sum(mul(x, detach(x))));
      expectClose(await x.grad!.read(), [1, 2, 3], 0, 0, 'detach');
      backward(sum(mul(x, full(ctx, [3], 2)))); // accumulates +2
      expectClose(await x.grad!.read(), [3, 4, 5], 0, 0, 'accumulated');
    });
  });

  it('backward frees the graph, and a disposed input is reported by name', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const x = requireGrad(tensor(ctx, [1, 2], [2]));
      const h = addScalar(x, 1);
      const y = sum(mul(h, h));
      backward(y);
      expect(y.node).toBeNull(); // swept
      expect(() => backward(y)).toThrow(/freed by an earlier backward/);
      const h2 = addScalar(x, 1);
      const y2 = sum(mul(h2, h2));
      h2.dispose(); // the product's backward needs h2
      expect(() => backward(y2)).toThrow(/used after dispose/);
      expect(() => backward(mul(x, x))).toThrow(/not a scalar/);
    });
  });

  it('a scope frees every intermediate but what it returns; parameters and grads survive', async () => {
    const { ctx } = gpu;
    const w = ctx.keep(requireGrad(tensor(ctx, [1, 2, 3, 4], [4])));
    const before = ctx.stats().liveBuffers;
    const loss = ctx.scope(() => {
      const l = sum(mul(tanh(w), addScalar(w, 3)));
      backward(l);
      return l;
    });
    // alive: the returned loss and w.grad
    expect(ctx.stats().liveBuffers).toBe(before + 2);
    expect(Number.isFinite(await loss.item())).toBe(true);
    expect(w.grad).not.toBeNull();
    loss.dispose();
    w.dispose(); // disposes its grad too
    expect(ctx.stats().liveBuffers).toBe(before - 1);
  });
});
