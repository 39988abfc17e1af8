// Pooling against float64 references: max (argmax routing, first maximum on ties), average
// (count_include_pad), global/adaptive average; forward and backward; odd sizes, stride, padding.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { maxPool2d, avgPool2d, globalAvgPool2d, adaptiveAvgPool2d } from '../src/wgsl/pool2d.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

interface Case { shape: [number, number, number, number]; k: [number, number]; s: [number, number]; p: [number, number] }
const CASES: Case[] = [
  { shape: [1, 3, 5, 7], k: [2, 2], s: [2, 2], p: [0, 0] },
  { shape: [3, 2, 7, 6], k: [3, 3], s: [2, 2], p: [1, 1] },
  { shape: [2, 5, 6, 5], k: [3, 2], s: [1, 2], p: [1, 0] },
  { shape: [1, 1, 9, 9], k: [3, 3], s: [3, 3], p: [0, 0] },
];

/** float64 pooling; also returns, for max, the first argmax of each window (row-major). */
function refPool(c: Case, kind: 'max' | 'avg') {
  const [N, C, H, W] = c.shape;
  const [KH, KW] = c.k, [SH, SW] = c.s, [PH, PW] = c.p;
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1, OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  const run = (x: Float64Array) => {
    const y = new Float64Array(N * C * OH * OW), arg = new Int32Array(y.length);
    for (let nc = 0; nc < N * C; nc++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let acc = kind === 'max' ? -Infinity : 0, best = -1;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const v = x[nc * H * W + ih * W + iw]!;
              if (kind === 'avg') acc += v;
              else if (v > acc) (acc = v), (best = nc * H * W + ih * W + iw);
            }
          const o = (nc * OH + oh) * OW + ow;
          y[o] = kind === 'avg' ? acc / (KH * KW) : acc;
          arg[o] = best;
        }
    return { y, arg };
  };
  return { OH, OW, run };
}

async function backwardWith(ctx: Tensor['ctx'], y: Tensor, dOut: Float64Array) {
  backward(sum(mul(y, tensor(ctx, f32(dOut), y.shape))));
}

describe('pool2d', () => {
  for (const kind of ['max', 'avg'] as const)
    it(`${kind}Pool2d: forward and backward match float64`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      for (const c of CASES) {
        const name = `${kind} ${JSON.stringify(c)}`;
        await ctx.scope(async () => {
          const xd = viaF32(rng.uniform(size(c.shape)));
          const x = requireGrad(tensor(ctx, f32(xd), c.shape));
          const y = (kind === 'max' ? maxPool2d : avgPool2d)(x, c.k, c.s, c.p);
          const ref = refPool(c, kind);
          expect(y.shape).toEqual([c.shape[0], c.shape[1], ref.OH, ref.OW]);
          const r = ref.run(xd);
          expectClose(await y.read(), r.y, 1e-5, 1e-6, `${name} forward`);
          const dOut = viaF32(rng.uniform(y.size));
          await backwardWith(ctx, y, dOut);
          let dx: Float64Array;
          if (kind === 'max') {
            dx = new Float64Array(xd.length);
            r.arg.forEach((a, o) => (dx[a]! += dOut[o]!));
          } else dx = refVjp((v) => ref.run(v).y, [xd], dOut)[0]!;
          expectClose(await x.grad!.read(), dx, 1e-4, 1e-5, `${name} dx`);
        });
      }
    });

  it('maxPool2d routes the gradient to the first maximum on ties, like PyTorch', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      // 4x4 plane of equal values except one larger, pooled 2x2 stride 1 (overlapping windows)
      const xd = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1];
      const x = requireGrad(tensor(ctx, f32(xd), [1, 1, 4, 4]));
      const y = maxPool2d(x, 2, 1);
      expectClose(await y.read(), [1, 1, 1, 1, 2, 2, 1, 2, 2], 0, 0, 'forward');
      backward(sum(y));
      // windows without the 2 pick their top-left element; the 4 windows holding the 2 route there
      expectClose(await x.grad!.read(), [1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0, 0, 0, 0, 0], 0, 0, 'dx');
    });
  });

  it('globalAvgPool2d -> [N,C] and adaptiveAvgPool2d(x, 1) -> [N,C,1,1]: forward and backward', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const shape of [[1, 3, 5, 7], [3, 5, 4, 4], [2, 2, 1, 1]] as [number, number, number, number][]) {
      await ctx.scope(async () => {
        const [N, C, H, W] = shape;
        const xd = viaF32(rng.uniform(size(shape)));
        const f = (x: Float64Array) => {
          const y = new Float64Array(N * C);
          for (let i = 0; i < x.length; i++) y[Math.floor(i / (H * W))]! += x[i]! / (H * W);
          return y;
        };
        for (const [fn, outShape] of [[globalAvgPool2d, [N, C]], [(t: Tensor) => adaptiveAvgPool2d(t, 1), [N, C, 1, 1]]] as const) {
          const x = requireGrad(tensor(ctx, f32(xd), shape));
          const y = fn(x);
          expect(y.shape).toEqual(outShape);
          expectClose(await y.read(), f(xd), 1e-5, 1e-6, `global ${shape} forward`);
          const dOut = viaF32(rng.uniform(N * C));
          await backwardWith(ctx, y, dOut);
          expectClose(await x.grad!.read(), refVjp(f, [xd], dOut)[0]!, 1e-4, 1e-5, `global ${shape} dx`);
        }
      });
    }
  });

  it('rejects bad arguments with the op and shapes named', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
      expect(() => maxPool2d(x, 5)).toThrow(/maxPool2d: kernel 5x5 is larger than the padded input 4x4 of input \[2,3,4,4\]/);
      expect(() => avgPool2d(x, 2, 2, 2)).toThrow(/avgPool2d: padding 2,2 must be at most half the kernel 2x2/);
      expect(() => maxPool2d(tensor(ctx, new Float32Array(12), [3, 4]), 2)).toThrow(/maxPool2d: input must be 4-D/);
      expect(() => adaptiveAvgPool2d(x, 2)).toThrow(/adaptiveAvgPool2d: output size 2 is not supported/);
      expect(() => maxPool2d(x, 0)).toThrow(/kernel must be an integer >= 1/);
    });
  });
});
