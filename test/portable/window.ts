// Portable checks of the Swin building blocks: roll (src/wgsl/window.ts) over one and several dims
// with negative, repeated and oversized shifts; window partition / reverse with and without the
// shift, non-square windows, round trip; drop path's per-sample mask rebuilt from (seed, stream) on
// the CPU; both GELUs in their tails (relative accuracy) and through the nn layers; LayerNorm and
// GroupNorm modules (torch names, defaults) against float64. Bad input for each.

import { tensor } from '../../src/wgsl/fill.js';
import { randomRef } from '../../src/wgsl/fill.js';
import { roll, windowPartition, windowReverse } from '../../src/wgsl/window.js';
import { dropPath } from '../../src/wgsl/droppath.js';
import { gelu, geluTanh } from '../../src/wgsl/elementwise.js';
import { GELU } from '../../src/nn/layers/activation.js';
import { LayerNorm, GroupNorm } from '../../src/nn/layers/norm.js';
import { Generator } from '../../src/util/rng.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { assertClose, assertEqual, assertThrows, f32, size, strides } from './ref.js';

/** float64 torch.roll: out[c] = x[c - shift (mod size)] along each rolled dim. */
export function rollRef(x: ArrayLike<number>, shape: readonly number[], shifts: readonly number[], dims: readonly number[]): Float64Array {
  const st = strides(shape);
  const total = shape.map(() => 0);
  dims.forEach((d, i) => (total[d < 0 ? d + shape.length : d]! += shifts[i]!));
  const out = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    let src = 0;
    shape.forEach((n, d) => {
      const c = Math.floor(e / st[d]!) % n;
      src += ((((c - total[d]!) % n) + n) % n) * st[d]!;
    });
    out[e] = x[src]!;
  }
  return out;
}

/** float64 Swin window partition of the map rolled by -shift: [B,H,W,C] -> [B*nW, wsH*wsW, C]. */
export function windowPartitionRef(x: ArrayLike<number>, [B, H, W, C]: readonly number[], [wsH, wsW]: readonly number[], [sH, sW]: readonly number[]) {
  const rolled = rollRef(x, [B!, H!, W!, C!], [-sH!, -sW!], [1, 2]);
  const out: number[] = [];
  for (let b = 0; b < B!; b++)
    for (let wy = 0; wy < H! / wsH!; wy++)
      for (let wx = 0; wx < W! / wsW!; wx++)
        for (let iy = 0; iy < wsH!; iy++)
          for (let ix = 0; ix < wsW!; ix++)
            for (let c = 0; c < C!; c++) out.push(rolled[((b * H! + wy * wsH! + iy) * W! + wx * wsW! + ix) * C! + c]!);
  return Float64Array.from(out);
}

/** The inverse of windowPartitionRef (scatter back, then roll by +shift). */
export function windowReverseRef(w: ArrayLike<number>, [B, H, W, C]: readonly number[], ws: readonly number[], [sH, sW]: readonly number[]) {
  const idx = windowPartitionRef(Float64Array.from({ length: B! * H! * W! * C! }, (_, i) => i), [B!, H!, W!, C!], ws, [0, 0]);
  const map = new Float64Array(idx.length);
  idx.forEach((src, k) => (map[src] = w[k]!));
  return rollRef(map, [B!, H!, W!, C!], [sH!, sW!], [1, 2]);
}

function erfcRef(x: number): number {
  // float64 erfc: series for |x| < 2 (as 1 - erf), continued fraction beyond; for the GELU tails
  if (x < 0) return 2 - erfcRef(-x);
  if (x < 2) {
    let term = x,
      sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 80; n >= 1; n--) f = n / 2 / (x + f);
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / (x + f);
}

export const WINDOW_CHECKS: Check[] = [
  {
    name: 'roll: forward/backward vs float64 over one and several dims, negative, repeated and oversized shifts',
    run: async (ctx, rng) => {
      const cases: [number[], number[], number[]][] = [
        [[7], [3], [0]],
        [[2, 5, 6, 3], [-2, -2], [1, 2]],
        [[3, 4, 5], [9, -1, 2], [2, 0, -1]],
        [[4, 6], [1, 2], [1, 1]],
      ];
      for (const [shape, shifts, dims] of cases)
        await checkOp(ctx, rng, {
          what: `roll ${JSON.stringify(shape)} shifts ${shifts} dims ${dims}`,
          inputs: [{ shape }],
          op: (x) => roll(x, shifts, dims),
          ref: (x) => rollRef(x, shape, shifts, dims),
          outShape: shape,
          tol: [0, 0],
          gradTol: [1e-6, 1e-7],
        });
      const x = tensor(ctx, new Float32Array(6), [2, 3]);
      assertThrows(() => roll(x, [1, 2], [0]), /roll: shifts \[1, 2\] and dims \[0\]/);
      assertThrows(() => roll(x, [1], [2]), /roll: axis 2/);
      assertThrows(() => roll(x, [0.5], [0]), /roll: shift 0.5 is not an integer/);
    },
  },
  {
    name: 'windowPartition/windowReverse: forward/backward vs float64 with shift, non-square windows, round trip, bad input',
    run: async (ctx, rng) => {
      const cases: [number[], number[], number[]][] = [
        [[2, 4, 6, 3], [2, 3], [0, 0]],
        [[1, 6, 6, 5], [3, 3], [1, 1]],
        [[2, 4, 4, 2], [2, 2], [-1, 3]],
        [[1, 7, 7, 4], [7, 7], [3, 3]],
      ];
      for (const [shape, ws, shift] of cases) {
        const [B, H, W, C] = shape as [number, number, number, number];
        const nW = (H / ws[0]!) * (W / ws[1]!);
        const wShape = [B * nW, ws[0]! * ws[1]!, C];
        const what = `window ${JSON.stringify(shape)} ws ${ws} shift ${shift}`;
        await checkOp(ctx, rng, {
          what: `windowPartition ${what}`,
          inputs: [{ shape }],
          op: (x) => windowPartition(x, ws, shift),
          ref: (x) => windowPartitionRef(x, shape, ws, shift),
          outShape: wShape,
          tol: [0, 0],
          gradTol: [1e-6, 1e-7],
        });
        await checkOp(ctx, rng, {
          what: `windowReverse ${what}`,
          inputs: [{ shape: wShape }],
          op: (w) => windowReverse(w, ws, H, W, shift),
          ref: (w) => windowReverseRef(w, shape, ws, shift),
          outShape: shape,
          tol: [0, 0],
          gradTol: [1e-6, 1e-7],
        });
        await ctx.scope(async () => {
          const xd = f32(rng.uniform(size(shape)));
          const back = windowReverse(windowPartition(tensor(ctx, xd, shape), ws, shift), ws, H, W, shift);
          assertClose(await back.read(), xd, 0, 0, `${what} round trip`);
        });
      }
      await ctx.scope(async () => {
        const x = tensor(ctx, new Float32Array(2 * 4 * 6 * 3), [2, 4, 6, 3]);
        assertThrows(() => windowPartition(x, 7), /windowPartition: window \[7,7\] is larger than the 4x6 map of x \[2,4,6,3\]/);
        assertThrows(() => windowPartition(x, [4, 4]), /windowPartition: the 4x6 map of x \[2,4,6,3\] is not a multiple of the window \[4,4\]/);
        assertThrows(() => windowPartition(x, 0), /windowPartition: window size \[0,0\] must be positive integers/);
        assertThrows(() => windowPartition(tensor(ctx, new Float32Array(4), [2, 2]), 1), /windowPartition: x must be f32 \[B, H, W, C\], got f32\[2,2\]/);
        const w = tensor(ctx, new Float32Array(10 * 4 * 3), [10, 4, 3]);
        assertThrows(() => windowReverse(w, 2, 4, 4), /windowReverse: windows \[10,4,3\] do not tile a 4x4 map/);
        assertThrows(() => windowReverse(w, 3, 2, 2), /windowReverse: window \[3,3\] is larger than the 2x2 map/);
      });
    },
  },
  {
    name: 'dropPath: per-sample mask rebuilt from (seed, stream) on the CPU, forward/backward, identity, p = 1, bad p',
    run: async (ctx, rng) => {
      for (const [shape, p] of [[[6, 5], 0.5], [[9, 2, 3, 3], 0.2], [[64, 7], 0.3]] as [number[], number][]) {
        const gen = new Generator(rng.u32());
        gen.nextStream();
        const stream = gen.state().stream;
        const keep = Math.fround(1 - p);
        const scale = Math.fround(1 / keep);
        const N = shape[0]!;
        const per = size(shape) / N;
        const mask = Float64Array.from({ length: N }, (_, n) => randomRef('bernoulli', gen.k0, gen.k1, stream, n, keep, 0));
        const kept = mask.reduce((a, b) => a + b, 0);
        if (N >= 64 && (kept === 0 || kept === N)) throw new Error(`dropPath: reference mask keeps ${kept} of ${N}`);
        await checkOp(ctx, rng, {
          what: `dropPath ${JSON.stringify(shape)} p ${p}`,
          inputs: [{ shape }],
          op: (x) => dropPath(x, p, gen, true),
          ref: (x) => x.map((v, i) => v * mask[Math.floor(i / per)]! * scale),
          outShape: shape,
          tol: [1e-6, 0],
          gradTol: [1e-6, 1e-7],
        });
        assertEqual(gen.state().stream, stream + 1, `dropPath ${JSON.stringify(shape)}: streams used`);
      }
      await ctx.scope(async () => {
        const gen = new Generator(rng.u32());
        const xd = f32(rng.uniform(12));
        const x = tensor(ctx, xd, [4, 3]);
        assertClose(await dropPath(x, 0.5, gen, false).read(), xd, 0, 0, 'dropPath eval');
        assertClose(await dropPath(x, 0, gen, true).read(), xd, 0, 0, 'dropPath p = 0');
        assertEqual(gen.state().stream, 0, 'identity dropPath streams');
        assertClose(await dropPath(x, 1, gen, true).read(), new Float32Array(12), 0, 0, 'dropPath p = 1');
        assertThrows(() => dropPath(x, 1.5, gen, true), /dropPath: drop probability 1.5 is outside \[0, 1\]/);
        assertThrows(() => dropPath(x, NaN, gen, true), /dropPath: drop probability NaN/);
      });
    },
  },
  {
    name: 'gelu (erf) and geluTanh: relative accuracy over [-9, 9] including the tails, and the nn GELU layer',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const xs = f32([...rng.uniform(200, -9, 9), ...rng.uniform(100, -0.5, 0.5), -8.5, -6, -4, -1e-4, 0, 1e-4, 3, 9]);
        const x = tensor(ctx, xs, [xs.length]);
        const exact = Float64Array.from(xs, (v) => 0.5 * v * erfcRef(-v / Math.SQRT2));
        const c = Math.sqrt(2 / Math.PI);
        // 0.5 x (1 + tanh u) written as x / (1 + exp(-2u)) so the float64 reference does not cancel
        const approx = Float64Array.from(xs, (v) => v / (1 + Math.exp(-2 * c * (v + 0.044715 * v * v * v))));
        // relative error 2e-6, plus the conditioning of exp(-x^2/2) on an f32 x in the far tail
        // (an f32 rounding of x moves gelu by ~x^2 * 6e-8 relative whatever the implementation)
        const near = (got: Float32Array, want: Float64Array, what: string) =>
          got.forEach((g, i) => {
            const tol = (2e-6 + 2e-7 * xs[i]! * xs[i]!) * Math.abs(want[i]!);
            if (!(Math.abs(g - want[i]!) <= tol)) throw new Error(`${what} at x = ${xs[i]}: got ${g}, expected ${want[i]} (tolerance ${tol})`);
          });
        near(await gelu(x).read(), exact, 'gelu (erf)');
        near(await geluTanh(x).read(), approx, 'gelu (tanh)');
        near(await new GELU(ctx).forward(x).read(), exact, 'nn GELU()');
        near(await new GELU(ctx, { approximate: 'tanh' }).forward(x).read(), approx, "nn GELU('tanh')");
        assertEqual(new GELU(ctx, { approximate: 'tanh' }).spawn().config, { kind: 'geluTanh' }, 'GELU spawn');
        assertThrows(() => new GELU(ctx, { approximate: 'erf' as 'none' }), /GELU: approximate must be 'none' or 'tanh'/);
      }),
  },
  {
    name: 'LayerNorm / GroupNorm modules: torch names and defaults, forward and gradients vs float64, bad config',
    run: async (ctx, rng) => {
      const lnShape = [3, 5, 8];
      await ctx.scope(async () => {
        const ln = new LayerNorm(ctx, { normalizedShape: 8 });
        assertEqual([...ln.namedParameters()].map(([n, t]) => [n, t.shape]), [['weight', [8]], ['bias', [8]]], 'LayerNorm parameters');
        assertEqual(new LayerNorm(ctx, { normalizedShape: [5, 8], elementwiseAffine: false }).parameters().length, 0, 'LayerNorm no affine');
      });
      const lnRef = (x: Float64Array, wt: ArrayLike<number>, bs: ArrayLike<number>, D: number, eps: number) => {
        const y = new Float64Array(x.length);
        for (let r = 0; r < x.length / D; r++) {
          const row = x.subarray(r * D, r * D + D);
          const m = row.reduce((a, v) => a + v, 0) / D;
          const v = row.reduce((a, u) => a + (u - m) ** 2, 0) / D;
          for (let j = 0; j < D; j++) y[r * D + j] = ((row[j]! - m) / Math.sqrt(v + eps)) * wt[j % wt.length]! + bs[j % bs.length]!;
        }
        return y;
      };
      const ln = new LayerNorm(ctx, { normalizedShape: 8, eps: 1e-6 });
      await checkOp(ctx, rng, {
        what: 'LayerNorm(8, eps 1e-6)',
        inputs: [{ shape: lnShape }],
        op: (x) => ln.forward(x),
        ref: (x) => lnRef(x, [1], [0], 8, 1e-6),
        outShape: lnShape,
        tol: [1e-4, 1e-5],
        gradTol: [2e-3, 2e-4],
      });
      ln.dispose();
      await ctx.scope(async () => {
        const gn = new GroupNorm(ctx, { numGroups: 2, numChannels: 6 });
        assertEqual([...gn.namedParameters()].map(([n, t]) => [n, t.shape]), [['weight', [6]], ['bias', [6]]], 'GroupNorm parameters');
        const xd = f32(rng.uniform(2 * 6 * 3));
        const y = await gn.forward(tensor(ctx, xd, [2, 6, 3])).read();
        // each (sample, group) of 3 channels x 3 positions is one LayerNorm row of 9
        assertClose(y, lnRef(Float64Array.from(xd), [1], [0], 9, 1e-5), 1e-4, 1e-5, 'GroupNorm(2, 6) forward');
        assertThrows(() => gn.forward(tensor(ctx, xd, [2, 9, 2])), /GroupNorm: expected \[N, 6, \*\], got f32\[2,9,2\]/);
        assertThrows(() => new GroupNorm(ctx, { numGroups: 4, numChannels: 6 }), /GroupNorm: numGroups 4 must be a positive integer dividing numChannels 6/);
        assertThrows(() => new LayerNorm(ctx, { normalizedShape: [0] }), /LayerNorm: normalizedShape must be positive integers/);
        assertEqual(new GroupNorm(ctx, { numGroups: 3, numChannels: 6, affine: false }).parameters().length, 0, 'GroupNorm no affine');
      });
    },
  },
];
