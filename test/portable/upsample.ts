// Portable checks of nearest upsampling (src/wgsl/upsample.ts): forward and backward against float64
// for factors 1, 2 and 3 on odd, non-square sizes (the backward sums each s x s block); errors.
//
// Letters: N batch, C channels, H W input size, S factor.

import { tensor } from '../../src/wgsl/fill.js';
import { upsampleNearest2d } from '../../src/wgsl/upsample.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { assertThrows, distinct, size } from './ref.js';

/** Float64 nearest upsampling of NCHW by S. */
function refUpsample(N: number, C: number, H: number, W: number, S: number) {
  return (x: Float64Array) => {
    const OH = H * S, OW = W * S;
    const y = new Float64Array(N * C * OH * OW);
    for (let p = 0; p < N * C; p++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) y[(p * OH + oh) * OW + ow] = x[(p * H + Math.floor(oh / S)) * W + Math.floor(ow / S)]!;
    return y;
  };
}

export const UPSAMPLE_CHECKS: Check[] = [
  {
    name: 'upsampleNearest2d: factors 1, 2, 3 on odd sizes, forward/backward',
    run: async (ctx, rng) => {
      const cases: [number, number, number, number, number][] = [
        [2, 3, 5, 7, 2],
        [1, 2, 4, 4, 2],
        [3, 1, 3, 2, 3],
        [1, 4, 3, 5, 1],
      ];
      for (const [N, C, H, W, S] of cases)
        await checkOp(ctx, rng, {
          what: `upsampleNearest2d [${N},${C},${H},${W}] x${S}`,
          inputs: [{ shape: [N, C, H, W], values: distinct(rng, size([N, C, H, W])) }],
          op: (x) => upsampleNearest2d(x, S),
          ref: refUpsample(N, C, H, W, S),
          outShape: [N, C, H * S, W * S],
          tol: [0, 0],
          gradTol: [1e-4, 1e-5],
        });
    },
  },
  {
    name: 'upsampleNearest2d rejects bad arguments naming the op and the input',
    run: (ctx) =>
      ctx.scope(async () => {
        const x = tensor(ctx, new Float32Array(12), [3, 4]);
        assertThrows(() => upsampleNearest2d(x), /upsampleNearest2d: input must be 4-D \[N,C,H,W\], got f32\[3,4\]/);
        const y = tensor(ctx, new Float32Array(16), [1, 1, 4, 4]);
        assertThrows(() => upsampleNearest2d(y, 1.5), /upsampleNearest2d: scale must be an integer >= 1, got 1.5/);
        assertThrows(() => upsampleNearest2d(tensor(ctx, new Int32Array(16), [1, 1, 4, 4], 'i32')), /upsampleNearest2d: input must be f32, got i32\[1,1,4,4\]/);
      }),
  },
];
