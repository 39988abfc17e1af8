// Composite ops (variance, std, logSumExp, mseLoss, klDivFromLogits, oneHot): forward against
// float64 references; gradients by finite differences in a random direction (two float32 forward
// runs on the GPU) and against float64 central differences.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, strides, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { variance, std, logSumExp, mseLoss, klDivFromLogits, oneHot } from '../src/ops/composite.js';
import { labelsTensor } from '../src/wgsl/cross_entropy.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

/** float64 reduction over `axes` of a row-major array: f(values of one group) per output */
function reduceRef(shape: number[], axes: number[], f: (v: number[]) => number) {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const st = strides(shape);
  const so = strides(outShape);
  return (x: Float64Array) => {
    const groups: number[][] = Array.from({ length: size(outShape) }, () => []);
    for (let e = 0; e < x.length; e++) {
      const c = st.map((s, d) => Math.floor(e / s) % shape[d]!);
      groups[c.reduce((a, v, d) => a + (axes.includes(d) ? 0 : v * so[d]!), 0)]!.push(x[e]!);
    }
    return Float64Array.from(groups, f);
  };
}
const varOf = (unbiased: boolean) => (v: number[]) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - (unbiased ? 1 : 0));
};
const lseOf = (v: number[]) => {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
};
function logSoftmaxRows(x: Float64Array, n: number, c: number, t: number) {
  const y = new Float64Array(n * c);
  for (let r = 0; r < n; r++) {
    const row = Array.from(x.subarray(r * c, r * c + c), (v) => v / t);
    const l = lseOf(row);
    row.forEach((v, j) => (y[r * c + j] = v - l));
  }
  return y;
}

interface Case {
  name: string;
  shapes: number[][];
  f: (...xs: Tensor[]) => Tensor;
  ref: (...xs: Float64Array[]) => Float64Array;
  lo?: number;
}

const CASES: Case[] = [
  { name: 'variance axis 1 unbiased', shapes: [[3, 5]], f: (x) => variance(x, 1), ref: reduceRef([3, 5], [1], varOf(true)) },
  { name: 'variance of all, biased', shapes: [[7]], f: (x) => variance(x, undefined, false, false), ref: reduceRef([7], [0], varOf(false)) },
  {
    name: 'std over [0,2] keepDim biased',
    shapes: [[2, 3, 4]],
    f: (x) => std(x, [0, 2], true, false),
    ref: (x) => reduceRef([2, 3, 4], [0, 2], varOf(false))(x).map(Math.sqrt),
  },
  { name: 'logSumExp last axis', shapes: [[4, 7]], f: (x) => logSumExp(x), ref: reduceRef([4, 7], [1], lseOf) },
  { name: 'logSumExp axis 0 keepDim', shapes: [[5, 3]], f: (x) => logSumExp(x, 0, true), ref: reduceRef([5, 3], [0], lseOf) },
  {
    name: 'mseLoss with broadcasting',
    shapes: [[3, 5], [5]],
    f: (a, b) => mseLoss(a, b),
    ref: (a, b) => Float64Array.of(a.reduce((s, v, i) => s + (v - b[i % 5]!) ** 2, 0) / 15),
  },
  {
    name: 'klDivFromLogits T = 2',
    shapes: [[5, 6], [5, 6]],
    lo: -3,
    f: (p, q) => klDivFromLogits(p, q, 2),
    ref: (p, q) => {
      const lp = logSoftmaxRows(p, 5, 6, 2);
      const lq = logSoftmaxRows(q, 5, 6, 2);
      return Float64Array.from({ length: 5 }, (_, r) => {
        let s = 0;
        for (let j = 0; j < 6; j++) s += Math.exp(lp[r * 6 + j]!) * (lp[r * 6 + j]! - lq[r * 6 + j]!);
        return s;
      });
    },
  },
];

describe('composite ops', () => {
  for (const c of CASES)
    it(`${c.name}: forward matches float64; gradient matches finite differences`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      await ctx.scope(async () => {
        const xd = c.shapes.map((s) => viaF32(rng.uniform(size(s), c.lo ?? -2, 2)));
        const xs = xd.map((d, k) => requireGrad(tensor(ctx, f32(d), c.shapes[k]!)));
        const y = c.f(...xs);
        const yRef = c.ref(...xd);
        expect(y.size).toBe(yRef.length);
        expectClose(await y.read(), yRef, 1e-4, 1e-5, `${c.name} forward`);
        // L = sum(y * w): analytic directional derivative vs two float32 forward runs on the GPU
        const wd = viaF32(rng.uniform(y.size, 0.5, 1.5));
        const w = tensor(ctx, f32(wd), y.shape);
        backward(sum(mul(y, w)));
        const grads = await Promise.all(xs.map((x) => x.grad!.read()));
        const vs = xd.map((d) => rng.uniform(d.length));
        const eps = 1e-2;
        const lossAt = (sign: number) =>
          ctx.noGrad(() => {
            const shifted = xd.map((d, k) => tensor(ctx, f32(d.map((v, i) => v + sign * eps * vs[k]![i]!)), c.shapes[k]!));
            return sum(mul(c.f(...shifted), w)).item();
          });
        const fd = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
        const analytic = grads.reduce((s, g, k) => s + g.reduce((a, v, i) => a + v * vs[k]![i]!, 0), 0);
        expect(Math.abs(fd - analytic), `${c.name}: finite difference ${fd} vs analytic ${analytic}`).toBeLessThanOrEqual(0.02 * Math.abs(analytic) + 1e-3);
        // and elementwise against float64 central differences
        const refGrads = refVjp(c.ref, xd, wd);
        grads.forEach((g, k) => expectClose(g, refGrads[k]!, 1e-3, 1e-4, `${c.name} d${k}`));
      });
    });

  it('oneHot picks identity rows; too few elements for variance is an error', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const y = oneHot(labelsTensor(ctx, [2, 0, 3, 2, 1], 4), 4);
      expect(y.shape).toEqual([5, 4]);
      const want = [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0];
      expect(Array.from(await y.read())).toEqual(want);
      const x = tensor(ctx, f32([1, 2, 3]), [3, 1]);
      expect(() => variance(x, 1)).toThrow(/variance: 1 element\(s\) per reduction is too few for the unbiased estimate/);
    });
  });
});
