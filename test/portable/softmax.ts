// Portable checks of the fused softmax / log-softmax (src/wgsl/softmax.ts) and cross-entropy
// (src/wgsl/cross_entropy.ts): forward and backward against float64 references and against their
// composites from primitives (exp, sum, sub, oneHot) on odd shapes, several axes, large offsets (the
// max subtraction) and label smoothing; out-of-range labels and bad arguments. Not here: losses
// composed from these (composite.ts).
//
// Letters: the softmax input is seen as [O, R, I] around the axis; cross-entropy takes [N, C].

import type { Tensor } from '../../src/autograd/tensor.js';
import { detach, requireGrad } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { tensor } from '../../src/wgsl/fill.js';
import { addScalar, div, exp, log, mul, mulScalar, neg, sub } from '../../src/wgsl/elementwise.js';
import { max, sum } from '../../src/wgsl/reduce.js';
import { softmax, logSoftmax } from '../../src/wgsl/softmax.js';
import { crossEntropy, labelsTensor } from '../../src/wgsl/cross_entropy.js';
import { oneHot } from '../../src/ops/composite.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { assertEqual, assertThrows, f32, size } from './ref.js';

/** Float64 softmax / log-softmax along `axis` of a row-major array. */
function softmaxRef(shape: readonly number[], axis: number, logOut: boolean) {
  const a = axis < 0 ? axis + shape.length : axis;
  const R = shape[a]!, I = size(shape.slice(a + 1)), O = size(shape.slice(0, a));
  return (x: Float64Array) => {
    const y = new Float64Array(x.length);
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++) {
        const at = (j: number) => (o * R + j) * I + i;
        let m = -Infinity;
        for (let j = 0; j < R; j++) m = Math.max(m, x[at(j)]!);
        let s = 0;
        for (let j = 0; j < R; j++) s += Math.exp(x[at(j)]! - m);
        for (let j = 0; j < R; j++) y[at(j)] = logOut ? x[at(j)]! - m - Math.log(s) : Math.exp(x[at(j)]! - m) / s;
      }
    return y;
  };
}

/** Composite softmax from primitives: exp(x - max) / sum(exp(x - max)), or its log. */
function compositeSoftmax(x: Tensor, axis: number, logOut: boolean) {
  const z = sub(x, detach(max(x, axis, true)));
  const s = sum(exp(z), axis, true);
  return logOut ? sub(z, log(s)) : div(exp(z), s);
}

/** Float64 per-sample cross-entropy with label smoothing eps: -sum_c q_c log softmax(x)_c. */
function ceRef(N: number, C: number, eps: number) {
  const ls = softmaxRef([N, C], -1, true);
  return (x: Float64Array, labels: Float64Array) => {
    const l = ls(x);
    return Float64Array.from({ length: N }, (_, n) => {
      let s = 0;
      for (let c = 0; c < C; c++) s -= ((c === labels[n] ? 1 - eps : 0) + eps / C) * l[n * C + c]!;
      return s;
    });
  };
}

/** [shape, axis] */
const SOFTMAX_CASES: [number[], number][] = [
  [[7], -1],
  [[3, 5], -1],
  [[2, 3, 5], 1],
  [[4, 3, 2], 0],
  [[1, 33], -1],
];

export const SOFTMAX_CHECKS: Check[] = [
  ...[false, true].map(
    (logOut): Check => ({
      name: `${logOut ? 'logSoftmax' : 'softmax'}: every axis position, large offsets, forward/backward vs float64 and the composite`,
      run: async (ctx, rng) => {
        for (const [shape, axis] of SOFTMAX_CASES) {
          const fused = logOut ? logSoftmax : softmax;
          await checkOp(ctx, rng, {
            what: `${logOut ? 'logSoftmax' : 'softmax'}${JSON.stringify(shape)} axis ${axis}`,
            // values near 60: exp would overflow without the max subtraction
            inputs: [{ shape, range: [56, 64] }],
            op: (x) => fused(x, axis),
            ref: softmaxRef(shape, axis, logOut),
            outShape: shape,
            tol: [1e-5, 1e-5], // f32 rounding of x - max at |x| ~ 64
            gradTol: [1e-3, 1e-5],
            composite: { op: (x) => compositeSoftmax(x, axis, logOut), tol: [1e-5, 1e-5], gradTol: [1e-4, 1e-5] },
          });
        }
      },
    }),
  ),
  {
    name: 'crossEntropy: with and without label smoothing, forward/backward vs float64 and the composite',
    run: async (ctx, rng) => {
      for (const [N, C] of [[1, 2], [5, 3], [7, 10], [3, 37]] as const)
        for (const eps of [0, 0.1]) {
          const labels = { shape: [N], dtype: 'i32' as const, range: [0, C] as const, name: 'labels' };
          await checkOp(ctx, rng, {
            what: `crossEntropy [${N},${C}] eps ${eps}`,
            inputs: [{ shape: [N, C], range: [-43, -37], name: 'logits' }, labels],
            op: (x, y) => crossEntropy(x, y, { labelSmoothing: eps }),
            ref: ceRef(N, C, eps),
            outShape: [N],
            tol: [1e-5, 2e-6],
            gradTol: [1e-3, 1e-5],
            // -sum_c ((1 - eps) onehot + eps / C) * logSoftmax, from primitives
            composite: {
              op: (x, y) => neg(sum(mul(compositeSoftmax(x, -1, true), addScalar(mulScalar(oneHot(y, C), 1 - eps), eps / C)), -1)),
              tol: [1e-5, 1e-5],
              gradTol: [1e-4, 1e-5],
            },
          });
        }
    },
  },
  {
    name: 'crossEntropy / softmax: out-of-range labels give NaN rows in the kernel and errors from labelsTensor; bad arguments',
    run: (ctx) =>
      ctx.scope(async () => {
        assertThrows(() => labelsTensor(ctx, [0, 2, 3], 3), /labelsTensor: label at index 2 is 3, outside \[0, 3\)/);
        assertThrows(() => labelsTensor(ctx, [-1], 3), /labelsTensor: label at index 0 is -1/);
        assertThrows(() => labelsTensor(ctx, [0.5], 3), /labelsTensor: label at index 0 is 0.5/);
        assertThrows(() => labelsTensor(ctx, [0], 0), /labelsTensor: numClasses must be a positive integer, got 0/);
        const x = requireGrad(tensor(ctx, f32([0, 1, 2, 3, 4, 5]), [2, 3]));
        const loss = crossEntropy(x, tensor(ctx, new Int32Array([1, 7]), [2], 'i32'));
        const l = await loss.read();
        assertEqual([Number.isFinite(l[0]!), Number.isNaN(l[1]!)], [true, true], 'loss of labels [1, 7] (finite, NaN)');
        backward(loss, tensor(ctx, f32([1, 1]), [2]));
        const g = await x.grad!.read();
        assertEqual([...g.slice(0, 3)].map(Number.isFinite), [true, true, true], 'gradient row of label 1 is finite');
        assertEqual([...g.slice(3)].map(Number.isNaN), [true, true, true], 'gradient row of label 7 is NaN');
        assertThrows(() => crossEntropy(x, tensor(ctx, f32([0, 1]), [2])), /crossEntropy: labels must be i32 \[2\] for logits \[2,3\], got f32\[2\]/);
        assertThrows(() => crossEntropy(x, labelsTensor(ctx, [0, 1], 3), { labelSmoothing: 1.5 }), /crossEntropy: labelSmoothing 1.5 is outside \[0, 1\]/);
        assertThrows(() => crossEntropy(tensor(ctx, f32([1, 2, 3]), [3]), labelsTensor(ctx, [0], 3)), /crossEntropy: logits must be f32 \[N, C\], got f32\[3\]/);
        assertThrows(() => softmax(tensor(ctx, new Int32Array(6), [2, 3], 'i32')), /softmax: argument 0 is i32\[2,3\]; expected f32/);
        assertThrows(() => logSoftmax(x, 2), /logSoftmax: axis 2 is out of range for rank 2/);
        assertThrows(() => softmax(tensor(ctx, f32([1]), [])), /softmax: needs at least one dimension/);
      }),
  },
];
