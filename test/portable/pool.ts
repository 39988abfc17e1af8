// Portable checks of 2-D pooling (src/wgsl/pool2d.ts): max (gradient to the first maximum of each
// window, as PyTorch), average (count_include_pad true and false), global / adaptive average; forward and backward
// against float64 on odd sizes, rectangular windows, strides and padding; planted ties; errors. Each
// window geometry compiles its own pipelines, so the cases share few geometries. No ceil_mode.
//
// Letters: N batch, C channels, H W input size, KH KW window, SH SW stride, PH PW padding.

import { tensor } from '../../src/wgsl/fill.js';
import { maxPool2d, avgPool2d, globalAvgPool2d, adaptiveAvgPool2d } from '../../src/wgsl/pool2d.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { assertThrows, distinct, size } from './ref.js';

interface Case {
  shape: [number, number, number, number];
  k: [number, number];
  s: [number, number];
  p: [number, number];
}
const CASES: Case[] = [
  { shape: [1, 3, 5, 7], k: [2, 2], s: [2, 2], p: [0, 0] },
  { shape: [3, 2, 7, 6], k: [3, 3], s: [2, 2], p: [1, 1] },
  { shape: [2, 2, 5, 6], k: [3, 3], s: [2, 2], p: [1, 1] },
  { shape: [2, 5, 6, 5], k: [3, 2], s: [1, 2], p: [1, 0] },
  { shape: [1, 1, 9, 9], k: [3, 3], s: [3, 3], p: [0, 0] },
  { shape: [2, 3, 5, 4], k: [3, 3], s: [1, 1], p: [1, 1] },
];

/**
 * Float64 pooling of NCHW (padding never wins a max and counts as 0 in an average; 'avgx' divides
 * by the in-bounds count, count_include_pad=False).
 */
function refPool(c: Case, kind: 'max' | 'avg' | 'avgx') {
  const [N, C, H, W] = c.shape;
  const [KH, KW] = c.k, [SH, SW] = c.s, [PH, PW] = c.p;
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1, OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  const f = (x: Float64Array) => {
    const y = new Float64Array(N * C * OH * OW);
    for (let nc = 0; nc < N * C; nc++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let acc = kind === 'max' ? -Infinity : 0;
          let count = 0;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const v = x[(nc * H + ih) * W + iw]!;
              acc = kind === 'max' ? Math.max(acc, v) : acc + v;
              count++;
            }
          y[(nc * OH + oh) * OW + ow] = kind === 'max' ? acc : acc / (kind === 'avgx' ? count : KH * KW);
        }
    return y;
  };
  return { outShape: [N, C, OH, OW], f };
}

export const POOL_CHECKS: Check[] = [
  ...(['max', 'avg', 'avgx'] as const).map(
    (kind): Check => ({
      name: `${kind === 'avgx' ? 'avgPool2d countIncludePad false' : `${kind}Pool2d`}: rectangular windows, strides, padding, forward/backward`,
      run: async (ctx, rng) => {
        for (const c of CASES) {
          const { outShape, f } = refPool(c, kind);
          await checkOp(ctx, rng, {
            what: `${kind === 'avgx' ? 'avgPool2d(countIncludePad false)' : `${kind}Pool2d`} ${JSON.stringify(c)}`,
            inputs: [{ shape: c.shape, values: distinct(rng, size(c.shape)) }],
            op: (x) => (kind === 'max' ? maxPool2d(x, c.k, c.s, c.p) : avgPool2d(x, c.k, c.s, c.p, { countIncludePad: kind === 'avg' })),
            ref: f,
            outShape,
            tol: [1e-5, 1e-6],
            gradTol: [1e-4, 1e-5],
          });
        }
      },
    }),
  ),
  {
    name: 'maxPool2d routes the gradient to the first maximum on ties, like PyTorch',
    run: (ctx, rng) =>
      // a 4x4 plane of ones except one 2, pooled 2x2 stride 1 (overlapping windows): windows without
      // the 2 pick their top-left element; the four holding the 2 route there
      checkOp(ctx, rng, {
        what: 'maxPool2d ties',
        inputs: [{ shape: [1, 1, 4, 4], values: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1] }],
        op: (x) => maxPool2d(x, 2, 1),
        ref: () => [1, 1, 1, 1, 2, 2, 1, 2, 2],
        tol: [0, 0],
        gradTol: [1e-6, 1e-6],
        // exact routing (central differences are meaningless at ties): window (oh, ow) -> its first max
        vjp: (_, g) => {
          const to = [0, 1, 2, 4, 10, 10, 8, 10, 10];
          const dx = new Float64Array(16);
          to.forEach((i, o) => (dx[i] += g[o]!));
          return [dx];
        },
      }),
  },
  {
    name: 'globalAvgPool2d -> [N,C] and adaptiveAvgPool2d(x, 1) -> [N,C,1,1]: forward/backward',
    run: async (ctx, rng) => {
      for (const shape of [[1, 3, 5, 7], [3, 5, 4, 4], [2, 2, 1, 1]] as [number, number, number, number][]) {
        const [N, C, H, W] = shape;
        const f = (x: Float64Array) => {
          const y = new Float64Array(N * C);
          for (let i = 0; i < x.length; i++) y[Math.floor(i / (H * W))]! += x[i]! / (H * W);
          return y;
        };
        for (const [name, op, outShape] of [
          ['globalAvgPool2d', globalAvgPool2d, [N, C]],
          ['adaptiveAvgPool2d', (t: Tensor) => adaptiveAvgPool2d(t, 1), [N, C, 1, 1]],
        ] as const)
          await checkOp(ctx, rng, { what: `${name} ${JSON.stringify(shape)}`, inputs: [{ shape }], op, ref: f, outShape, gradTol: [1e-4, 1e-5] });
      }
    },
  },
  {
    name: 'pooling rejects bad arguments naming the op and shapes',
    run: (ctx) =>
      ctx.scope(async () => {
        const x = tensor(ctx, new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
        assertThrows(() => maxPool2d(x, 5), /maxPool2d: kernel 5x5 is larger than the padded input 4x4 of input \[2,3,4,4\]/);
        assertThrows(() => avgPool2d(x, 2, 2, 2), /avgPool2d: padding 2,2 must be at most half the kernel 2x2/);
        assertThrows(() => maxPool2d(tensor(ctx, new Float32Array(12), [3, 4]), 2), /maxPool2d: input must be 4-D \[N,C,H,W\], got f32\[3,4\]/);
        assertThrows(() => adaptiveAvgPool2d(x, 2), /adaptiveAvgPool2d: output size 2 is not supported \(only 1\)/);
        assertThrows(() => maxPool2d(x, 0), /maxPool2d: kernel must be an integer >= 1, got 0/);
        assertThrows(() => avgPool2d(x, 2, [1, 0]), /avgPool2d: stride must be an integer >= 1, got \[1,0\]/);
        assertThrows(() => maxPool2d(tensor(ctx, new Int32Array(16), [1, 1, 4, 4], 'i32'), 2), /maxPool2d: input must be f32, got i32\[1,1,4,4\]/);
        assertThrows(() => globalAvgPool2d(tensor(ctx, new Float32Array(0), [1, 2, 0, 3])), /globalAvgPool2d: cannot average an empty plane of input \[1,2,0,3\]/);
      }),
  },
];
