// conv2d against a float64 reference: forward, input/weight/bias gradients (analytic float64
// loops, cross-checked once against finite differences) over odd sizes, stride, padding, dilation,
// channel counts not multiples of 4, 1x1 / 3x3 / 7x7 kernels, batch 1 and 3; and its errors.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, convGeometry, hasSubgroups } from '../src/wgsl/conv2d.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

interface Case { N: number; C: number; H: number; W: number; O: number; K: [number, number]; s: [number, number]; p: [number, number]; d: [number, number]; bias: boolean }

/** float64 conv: y = conv(x, w) + b, and its exact vector-Jacobian product for dy. */
function refConv(c: Case) {
  const { N, C, H, W, O } = c;
  const [KH, KW] = c.K, [SH, SW] = c.s, [PH, PW] = c.p, [DH, DW] = c.d;
  const OH = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
  const taps = (fn: (n: number, o: number, oh: number, ow: number, ci: number, kh: number, kw: number, xi: number, wi: number, yi: number) => void) => {
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++)
            for (let ci = 0; ci < C; ci++)
              for (let kh = 0; kh < KH; kh++)
                for (let kw = 0; kw < KW; kw++) {
                  const ih = oh * SH - PH + kh * DH, iw = ow * SW - PW + kw * DW;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  fn(n, o, oh, ow, ci, kh, kw, ((n * C + ci) * H + ih) * W + iw, ((o * C + ci) * KH + kh) * KW + kw, ((n * O + o) * OH + oh) * OW + ow);
                }
  };
  const forward = (x: Float64Array, w: Float64Array, b: Float64Array) => {
    const y = new Float64Array(N * O * OH * OW);
    for (let i = 0; i < y.length; i++) y[i] = c.bias ? b[Math.floor(i / (OH * OW)) % O]! : 0;
    taps((_n, _o, _oh, _ow, _c, _kh, _kw, xi, wi, yi) => (y[yi]! += x[xi]! * w[wi]!));
    return y;
  };
  const vjp = (x: Float64Array, w: Float64Array, dy: Float64Array) => {
    const dx = new Float64Array(x.length), dw = new Float64Array(w.length), db = new Float64Array(O);
    taps((_n, _o, _oh, _ow, _c, _kh, _kw, xi, wi, yi) => {
      dx[xi]! += dy[yi]! * w[wi]!;
      dw[wi]! += dy[yi]! * x[xi]!;
    });
    for (let i = 0; i < dy.length; i++) db[Math.floor(i / (OH * OW)) % O]! += dy[i]!;
    return { dx, dw, db };
  };
  return { OH, OW, forward, vjp };
}

const CASES: Case[] = [
  { N: 1, C: 3, H: 7, W: 6, O: 5, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  { N: 3, C: 3, H: 9, W: 9, O: 5, K: [3, 3], s: [2, 2], p: [1, 1], d: [1, 1], bias: true },
  { N: 2, C: 6, H: 5, W: 7, O: 7, K: [1, 1], s: [1, 1], p: [0, 0], d: [1, 1], bias: false },
  { N: 3, C: 5, H: 8, W: 7, O: 6, K: [1, 1], s: [2, 2], p: [0, 0], d: [1, 1], bias: true },
  { N: 1, C: 2, H: 11, W: 10, O: 3, K: [7, 7], s: [2, 2], p: [3, 3], d: [1, 1], bias: true },
  { N: 2, C: 4, H: 9, W: 8, O: 4, K: [3, 3], s: [1, 1], p: [2, 2], d: [2, 2], bias: false },
  { N: 1, C: 3, H: 8, W: 9, O: 5, K: [3, 2], s: [2, 1], p: [0, 1], d: [1, 2], bias: true },
  { N: 3, C: 9, H: 4, W: 4, O: 8, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  { N: 2, C: 3, H: 5, W: 6, O: 17, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
];

describe('conv2d', () => {
  for (const c of CASES) {
    const name = `N${c.N} C${c.C} ${c.H}x${c.W} O${c.O} k${c.K} s${c.s} p${c.p} d${c.d}${c.bias ? ' +bias' : ''}`;
    it(`${name}: forward and backward match float64`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const ref = refConv(c);
      await ctx.scope(async () => {
        const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W));
        const wd = viaF32(rng.uniform(c.O * c.C * c.K[0] * c.K[1]));
        const bd = viaF32(rng.uniform(c.O));
        const x = requireGrad(tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]));
        const w = requireGrad(tensor(ctx, f32(wd), [c.O, c.C, ...c.K]));
        const b = c.bias ? requireGrad(tensor(ctx, f32(bd), [c.O])) : undefined;
        const y = conv2d(x, w, b, { stride: c.s, padding: c.p, dilation: c.d });
        expect(y.shape).toEqual([c.N, c.O, ref.OH, ref.OW]);
        expectClose(await y.read(), ref.forward(xd, wd, bd), 1e-4, 1e-5, `${name} forward`);
        const dyd = viaF32(rng.uniform(size(y.shape)));
        backward(sum(mul(y, tensor(ctx, f32(dyd), y.shape))));
        const r = ref.vjp(xd, wd, dyd);
        expectClose(await x.grad!.read(), r.dx, 1e-4, 1e-5, `${name} dx`);
        expectClose(await w.grad!.read(), r.dw, 1e-4, 1e-5, `${name} dw`);
        if (b) expectClose(await b.grad!.read(), r.db, 1e-4, 1e-5, `${name} db`);
      });
    });
  }

  it('forward, dgrad and wgrad with and without the subgroup weight broadcast match float64', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const c of [CASES[1]!, CASES[6]!, CASES[7]!, CASES[8]!]) {
      await ctx.scope(async () => {
        const ref = refConv(c);
        const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W)), wd = viaF32(rng.uniform(c.O * c.C * c.K[0] * c.K[1]));
        const bd = viaF32(rng.uniform(c.O));
        const x = tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]), w = tensor(ctx, f32(wd), [c.O, c.C, ...c.K]);
        const b = c.bias ? tensor(ctx, f32(bd), [c.O]) : undefined;
        const g = convGeometry(x, w, b, { stride: c.s, padding: c.p, dilation: c.d });
        const dyd = viaF32(rng.uniform(c.N * c.O * ref.OH * ref.OW));
        const dy = tensor(ctx, f32(dyd), [c.N, c.O, ref.OH, ref.OW]);
        const { dx, dw } = ref.vjp(xd, wd, dyd);
        for (const subgroups of hasSubgroups(ctx) ? [false, true] : [false]) {
          expectClose(await conv2dForwardRaw(x, w, b, g, { subgroups }).read(), ref.forward(xd, wd, bd), 1e-4, 1e-5, `subgroups=${subgroups} forward`);
          expectClose(await conv2dInputGradRaw(dy, w, g, { subgroups }).read(), dx, 1e-4, 1e-5, `subgroups=${subgroups} dgrad`);
          expectClose(await conv2dWeightGradRaw(dy, x, g, { subgroups }).read(), dw, 1e-4, 1e-5, `subgroups=${subgroups} wgrad`);
        }
      });
    }
  });

  it('the analytic reference VJP agrees with finite differences', () => {
    const c = CASES[6]!;
    const rng = new Rng();
    const ref = refConv(c);
    const xd = rng.uniform(c.N * c.C * c.H * c.W), wd = rng.uniform(c.O * c.C * c.K[0] * c.K[1]), bd = rng.uniform(c.O);
    const dy = rng.uniform(c.N * c.O * ref.OH * ref.OW);
    const [dx, dw, db] = refVjp(ref.forward, [xd, wd, bd], dy);
    const r = ref.vjp(xd, wd, dy);
    expectClose(r.dx, dx!, 1e-6, 1e-7, 'ref dx');
    expectClose(r.dw, dw!, 1e-6, 1e-7, 'ref dw');
    expectClose(r.db, db!, 1e-6, 1e-7, 'ref db');
  });

  it('weight gradient with a split reduction (long N*OH) matches float64', async () => {
    const { ctx } = gpu;
    const c: Case = { N: 3, C: 2, H: 20, W: 13, O: 3, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true };
    const rng = new Rng();
    const ref = refConv(c);
    await ctx.scope(async () => {
      const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W)), wd = viaF32(rng.uniform(c.O * c.C * 9));
      const x = tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]);
      const w = requireGrad(tensor(ctx, f32(wd), [c.O, c.C, 3, 3]));
      const y = conv2d(x, w, undefined, { padding: 1 });
      const dyd = viaF32(rng.uniform(size(y.shape)));
      backward(sum(mul(y, tensor(ctx, f32(dyd), y.shape))));
      expectClose(await w.grad!.read(), ref.vjp(xd, wd, dyd).dw, 1e-4, 1e-5, 'split dw');
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
