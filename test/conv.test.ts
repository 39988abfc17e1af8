// conv2d against a float64 reference through the shared checkOp (forward, input / weight / bias
// gradients) over odd sizes, stride, padding, dilation, channel counts not multiples of 4, 1x1 / 3x3 /
// 7x7 kernels, batch 1 and 3, a long weight-gradient reduction (split over rows); and its errors.
// The same checks with each GEMM tiling forced, the subgroup loads on and off, and the fused
// epilogues run in test/portable/gemm.ts (Node and Chromium); these use the context's default choice.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { conv2d } from '../src/wgsl/conv2d.js';
import { checkConv, convName, type ConvCase } from './portable/gemm.js';

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
