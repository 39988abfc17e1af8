// conv2d against a float64 reference through the shared checkOp (forward, input / weight / bias
// gradients) over odd sizes, stride, padding, dilation, channel counts not multiples of 4, 1x1 / 3x3 /
// 7x7 kernels, batch 1 and 3, a long weight-gradient reduction (split over rows); and its errors.
// The same checks with each GEMM tiling forced, the subgroup loads on and off, and the fused
// epilogues run in test/portable/gemm.ts (Node and Chromium); these use the context's default choice.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { conv2d, conv2dFused } from '../src/wgsl/conv2d.js';
import { checkOp } from './helpers.js';
import { checkConv, convName, refConv, type ConvCase } from './portable/gemm.js';

const gpu = useGpu();

const CASES: ConvCase[] = [
  { N: 1, C: 3, H: 7, W: 6, O: 5, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  { N: 3, C: 3, H: 9, W: 9, O: 5, K: [3, 3], s: [2, 2], p: [1, 1], d: [1, 1], bias: true },
  { N: 2, C: 6, H: 5, W: 7, O: 7, K: [1, 1], s: [1, 1], p: [0, 0], d: [1, 1], bias: false },
  { N: 3, C: 5, H: 8, W: 7, O: 6, K: [1, 1], s: [2, 2], p: [0, 0], d: [1, 1], bias: true },
  { N: 1, C: 2, H: 11, W: 10, O: 3, K: [7, 7], s: [2, 2], p: [3, 3], d: [1, 1], bias: true },
  { N: 2, C: 4, H: 9, W: 8, O: 4, K: [3, 3], s: [1, 1], p: [2, 2], d: [2, 2], bias: false },
  { N: 1, C: 3, H: 8, W: 9, O: 5, K: [3, 2], s: [2, 1], p: [0, 1], d: [1, 2], bias: true },
  { N: 3, C: 9, H: 4, W: 4, O: 8, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  { N: 2, C: 3, H: 5, W: 6, O: 17, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  // long N*OH: the weight gradient's reduction is split over rows (partial sums, then summed)
  { N: 3, C: 2, H: 20, W: 13, O: 3, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: false },
];

describe('conv2d', () => {
  for (const c of CASES) it(`${convName(c)}: forward and backward match float64`, () => checkConv(gpu.ctx, new Rng(), c).then(() => undefined));

  // conv + bias + residual, then relu, in one GEMM epilogue: forward and the four gradients (x, w,
  // bias, residual) against float64; and without the activation / residual
  const FUSED: [ConvCase, 'relu' | 'none', boolean][] = [
    [CASES[1]!, 'relu', true],
    [CASES[7]!, 'relu', false],
    [CASES[6]!, 'none', true],
  ];
  for (const [c, act, withR] of FUSED)
    it(`conv2dFused ${convName(c)} act ${act}${withR ? ' +residual' : ''}: forward and backward match float64`, async () => {
      const ref = refConv(c);
      const outShape = [c.N, c.O, ref.OH, ref.OW];
      const inputs = [
        { shape: [c.N, c.C, c.H, c.W], name: 'x' },
        { shape: [c.O, c.C, ...c.K], name: 'w' },
        ...(c.bias ? [{ shape: [c.O], name: 'bias' }] : []),
        ...(withR ? [{ shape: outShape, name: 'residual' }] : []),
      ];
      const nb = c.bias ? 1 : 0;
      await checkOp(gpu.ctx, new Rng(), {
        what: `conv2dFused ${convName(c)}`,
        inputs,
        op: (...t) => conv2dFused(t[0]!, t[1]!, c.bias ? t[2] : undefined, { stride: c.s, padding: c.p, dilation: c.d }, { act, residual: withR ? t[2 + nb] : undefined }),
        ref: (...xs) => {
          const y = ref.f(xs[0]!, xs[1]!, c.bias ? xs[2] : undefined);
          return Array.from(y, (v, i) => {
            const z = v + (withR ? xs[2 + nb]![i]! : 0);
            return act === 'relu' ? Math.max(z, 0) : z;
          });
        },
        outShape,
        tol: [1e-4, 1e-5],
        gradTol: [1e-3, 2e-4],
      });
    });

  it('conv2dFused refuses an activation it cannot differentiate from the output and a residual of the wrong shape', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
      const w = tensor(ctx, new Float32Array(4 * 3 * 9), [4, 3, 3, 3]);
      expect(() => conv2dFused(x, w, undefined, {}, { act: 'gelu' as never })).toThrow(/conv2dFused: activation 'gelu' is not fused here/);
      const r = tensor(ctx, new Float32Array(2 * 4 * 5 * 5), [2, 4, 5, 5]);
      expect(() => conv2dFused(x, w, undefined, {}, { residual: r })).toThrow(/conv2dFused: residual must be f32\[2,4,3,3\].*got f32\[2,4,5,5\]/);
    });
  });

  it('rejects bad shapes with the op and shapes named', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
      const w = tensor(ctx, new Float32Array(4 * 2 * 3 * 3), [4, 2, 3, 3]);
      expect(() => conv2d(x, w)).toThrow(/conv2d: channel mismatch: input \[2,3,5,5\] has C=3 but weight \[4,2,3,3\]/);
      const w7 = tensor(ctx, new Float32Array(4 * 3 * 7 * 7), [4, 3, 7, 7]);
      expect(() => conv2d(x, w7)).toThrow(/conv2d: kernel 7x7 .* larger than the padded input 5x5/);
      expect(() => conv2d(x, w7, undefined, { padding: 1 })).not.toThrow();
      const x3 = tensor(ctx, new Float32Array(3 * 5 * 5), [3, 5, 5]);
      expect(() => conv2d(x3, w7)).toThrow(/conv2d: input must be 4-D \[N,C,H,W\], got f32\[3,5,5\]/);
      const w3 = tensor(ctx, new Float32Array(4 * 3 * 9), [4, 3, 3, 3]);
      expect(() => conv2d(x, w3, tensor(ctx, new Float32Array(3), [3]))).toThrow(/conv2d: bias must be f32\[4\]/);
      expect(() => conv2d(x, w3, undefined, { groups: 3 })).toThrow(/groups=3 is not supported/);
      expect(() => conv2d(x, w3, undefined, { stride: 0 })).toThrow(/stride must be an integer >= 1/);
    });
  });
});
