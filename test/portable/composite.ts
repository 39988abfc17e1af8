// Portable checks of the composite ops of src/ops/composite.ts (variance, std, logSumExp, mseLoss,
// klDivFromLogits, oneHot): built from primitives with their own backward rules, so these check the
// composition, forward and backward against float64, plus their argument errors. The primitives
// themselves are checked in elementwise.ts, softmax.ts, gather.ts and checks.ts (reductions).

import { tensor } from '../../src/wgsl/fill.js';
import { labelsTensor } from '../../src/wgsl/cross_entropy.js';
import { variance, std, logSumExp, mseLoss, klDivFromLogits, oneHot } from '../../src/ops/composite.js';
import type { Check } from './harness.js';
import { checkOp, type OpCase } from './grad.js';
import { assertClose, assertEqual, assertThrows, f32, size, strides } from './ref.js';

/** Float64 reduction over `axes` of a row-major array: f(values of one group) per output element. */
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
/** Row-wise log-softmax of x / t over [N, C]. */
function logSoftmaxRows(x: Float64Array, N: number, C: number, t: number) {
  const y = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    const row = Array.from(x.subarray(r * C, r * C + C), (v) => v / t);
    const l = lseOf(row);
    row.forEach((v, j) => (y[r * C + j] = v - l));
  }
  return y;
}

const CASES: Omit<OpCase, 'tol' | 'gradTol'>[] = [
  { what: 'variance axis 1 unbiased', inputs: [{ shape: [3, 5], range: [-2, 2] }], op: (x) => variance(x, 1), ref: reduceRef([3, 5], [1], varOf(true)), outShape: [3] },
  {
    what: 'variance of all, biased',
    inputs: [{ shape: [7], range: [-2, 2] }],
    op: (x) => variance(x, undefined, false, false),
    ref: reduceRef([7], [0], varOf(false)),
    outShape: [],
  },
  {
    what: 'std over [0,2] keepDim biased',
    inputs: [{ shape: [2, 3, 4], range: [-2, 2] }],
    op: (x) => std(x, [0, 2], true, false),
    ref: (x) => reduceRef([2, 3, 4], [0, 2], varOf(false))(x).map(Math.sqrt),
    outShape: [1, 3, 1],
  },
  { what: 'logSumExp last axis', inputs: [{ shape: [4, 7], range: [-2, 2] }], op: (x) => logSumExp(x), ref: reduceRef([4, 7], [1], lseOf), outShape: [4] },
  {
    what: 'logSumExp axis 0 keepDim, large values',
    inputs: [{ shape: [5, 3], range: [40, 44] }],
    op: (x) => logSumExp(x, 0, true),
    ref: reduceRef([5, 3], [0], lseOf),
    outShape: [1, 3],
  },
  {
    what: 'mseLoss with broadcasting',
    inputs: [{ shape: [3, 5], range: [-2, 2] }, { shape: [5], range: [-2, 2] }],
    op: (a, b) => mseLoss(a, b),
    ref: (a, b) => Float64Array.of(a.reduce((s, v, i) => s + (v - b[i % 5]!) ** 2, 0) / 15),
    outShape: [],
  },
  {
    what: 'klDivFromLogits T = 2',
    inputs: [{ shape: [5, 6], range: [-3, 2] }, { shape: [5, 6], range: [-3, 2] }],
    op: (p, q) => klDivFromLogits(p, q, 2),
    ref: (p, q) => {
      const lp = logSoftmaxRows(p, 5, 6, 2);
      const lq = logSoftmaxRows(q, 5, 6, 2);
      return Float64Array.from({ length: 5 }, (_, r) => {
        let s = 0;
        for (let j = 0; j < 6; j++) s += Math.exp(lp[r * 6 + j]!) * (lp[r * 6 + j]! - lq[r * 6 + j]!);
        return s;
      });
    },
    outShape: [5],
  },
];

export const COMPOSITE_CHECKS: Check[] = [
  {
    name: 'composite ops (variance, std, logSumExp, mseLoss, klDivFromLogits): forward/backward vs float64',
    run: async (ctx, rng) => {
      for (const c of CASES) await checkOp(ctx, rng, { ...c, tol: [1e-4, 1e-5], gradTol: [1e-3, 1e-4] });
    },
  },
  {
    name: 'oneHot picks identity rows; composites reject too few elements, bad temperatures and class counts',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const C = 4;
        const labels = rng.int(6, C);
        const y = oneHot(labelsTensor(ctx, labels, C), C);
        assertEqual(y.shape, [6, C], 'oneHot shape');
        assertClose(await y.read(), Array.from({ length: 6 * C }, (_, i) => +(labels[Math.floor(i / C)] === i % C)), 0, 0, 'oneHot');
        assertThrows(() => variance(tensor(ctx, f32([1, 2, 3]), [3, 1]), 1), /variance: 1 element\(s\) per reduction is too few for the unbiased estimate of f32\[3,1\]/);
        assertThrows(() => std(tensor(ctx, f32([1]), [1]), 0), /variance: 1 element\(s\) per reduction is too few/);
        assertThrows(() => klDivFromLogits(y, y, 0), /klDivFromLogits: temperature 0 must be positive/);
        assertThrows(() => oneHot(labelsTensor(ctx, [0], 1), 0), /oneHot: numClasses must be a positive integer, got 0/);
        assertThrows(() => mseLoss(y, tensor(ctx, f32([1, 2, 3]), [3])), /sub: shapes \[6,4\] and \[3\] cannot be broadcast/);
      }),
  },
];
