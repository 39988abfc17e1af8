// Fused softmax / log-softmax / cross-entropy against float64 references and against their
// composite versions (exp, sum, sub), forward and backward, on odd shapes and several axes.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { exp, log, sub, mul, div } from '../src/wgsl/elementwise.js';
import { sum, max } from '../src/wgsl/reduce.js';
import { requireGrad, detach } from '../src/autograd/graph.js';
import { softmax, logSoftmax } from '../src/wgsl/softmax.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

function backwardWith(y: Tensor, dOut: Float64Array) {
  const d = tensor(y.ctx, f32(dOut), y.shape);
  backward(sum(mul(y, d)));
}

/** float64 softmax / log-softmax along `axis` of a row-major array */
function softmaxRef(shape: number[], axis: number, log: boolean) {
  const a = axis < 0 ? axis + shape.length : axis;
  const r = shape[a]!;
  const inner = size(shape.slice(a + 1));
  const outer = size(shape.slice(0, a));
  return (x: Float64Array) => {
    const y = new Float64Array(x.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const at = (j: number) => o * r * inner + j * inner + i;
        let m = -Infinity;
        for (let j = 0; j < r; j++) m = Math.max(m, x[at(j)]!);
        let s = 0;
        for (let j = 0; j < r; j++) s += Math.exp(x[at(j)]! - m);
        for (let j = 0; j < r; j++) y[at(j)] = log ? x[at(j)]! - m - Math.log(s) : Math.exp(x[at(j)]! - m) / s;
      }
    return y;
  };
}

/** composite reference on the GPU: exp(x - max) / sum(exp(x - max)) */
function compositeSoftmax(x: Tensor, axis: number, logOut: boolean) {
  const m = detach(max(x, axis, true));
  const z = sub(x, m);
  const s = sum(exp(z), axis, true);
  return logOut ? sub(z, log(s)) : div(exp(z), s);
}

const CASES: [number[], number][] = [
  [[7], -1],
  [[3, 5], -1],
  [[2, 3, 5], 1],
  [[4, 3, 2], 0],
  [[1, 33], -1],
];

describe('softmax and logSoftmax', () => {
  for (const logOut of [false, true]) {
    const name = logOut ? 'logSoftmax' : 'softmax';
    it(`${name}: forward and backward match float64 and the composite`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      for (const [shape, axis] of CASES) {
        await ctx.scope(async () => {
          const what = `${name}${JSON.stringify(shape)} axis ${axis}`;
          // large offset checks the max subtraction
          const xd = viaF32(rng.uniform(size(shape), -4, 4).map((v) => v + 60));
          const x = requireGrad(tensor(ctx, f32(xd), shape));
          const y = (logOut ? logSoftmax : softmax)(x, axis);
          const ref = softmaxRef(shape, axis, logOut);
          // atol covers f32 rounding of x - max at |x| ~ 64
          expectClose(await y.read(), ref(xd), 1e-5, 1e-5, `${what} forward`);
          const dOut = viaF32(rng.uniform(size(shape)));
          backwardWith(y, dOut);
          const [dx] = refVjp(ref, [xd], dOut);
          expectClose(await x.grad!.read(), dx!, 1e-3, 1e-5, `${what} dx`);
          // the composite version agrees, forward and backward
          const x2 = requireGrad(tensor(ctx, f32(xd), shape));
          const y2 = compositeSoftmax(x2, axis, logOut);
          expectClose(await y.read(), await y2.read(), 1e-5, 1e-5, `${what} vs composite`);
          backwardWith(y2, dOut);
          expectClose(await x.grad!.read(), await x2.grad!.read(), 1e-4, 1e-5, `${what} dx vs composite`);
        });
      }
    });
  }

  it('rejects non-f32 input and bad axes', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const i = tensor(ctx, new Int32Array(6), [2, 3]);
      expect(() => softmax(i)).toThrow(/softmax: argument 0 is i32\[2,3\]/);
      const x = tensor(ctx, new Float32Array(6), [2, 3]);
      expect(() => logSoftmax(x, 2)).toThrow(/logSoftmax: axis 2 is out of range for rank 2/);
    });
  });
});

/** float64 per-sample cross-entropy with label smoothing */
function ceRef(n: number, c: number, labels: Int32Array, eps: number) {
  return (x: Float64Array) => {
    const out = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      const row = x.subarray(r * c, r * c + c);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      let l = 0;
      for (let j = 0; j < c; j++) l -= ((j === labels[r] ? 1 - eps : 0) + eps / c) * (row[j]! - lse);
      out[r] = l;
    }
    return out;
  };
}

describe('crossEntropy', () => {
  it('forward and backward match float64, with and without label smoothing', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const [n, c] of [[1, 2], [5, 3], [7, 10], [3, 37]] as const) {
      for (const eps of [0, 0.1]) {
        await ctx.scope(async () => {
          const what = `crossEntropy [${n},${c}] eps ${eps}`;
          const xd = viaF32(rng.uniform(n * c, -3, 3).map((v) => v - 40));
          const lab = rng.int(n, c);
          const x = requireGrad(tensor(ctx, f32(xd), [n, c]));
          const loss = crossEntropy(x, labelsTensor(ctx, lab, c), { labelSmoothing: eps });
          expect(loss.shape).toEqual([n]);
          const ref = ceRef(n, c, lab, eps);
          expectClose(await loss.read(), ref(xd), 1e-5, 2e-6, `${what} forward`);
          const dOut = viaF32(rng.uniform(n));
          backwardWith(loss, dOut);
          const [dx] = refVjp(ref, [xd], dOut);
          expectClose(await x.grad!.read(), dx!, 1e-3, 1e-5, `${what} dx`);
        });
      }
    }
  });

  it('equals the composite -logSoftmax picked at the label', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    await ctx.scope(async () => {
      const [n, c] = [6, 5];
      const xd = viaF32(rng.uniform(n * c, -2, 2));
      const lab = rng.int(n, c);
      const onehot = new Float32Array(n * c);
      lab.forEach((l, r) => (onehot[r * c + l] = 1));
      const x = tensor(ctx, f32(xd), [n, c]);
      const fused = crossEntropy(x, labelsTensor(ctx, Array.from(lab), c));
      const composite = sum(mul(compositeSoftmax(x, -1, true), tensor(ctx, onehot, [n, c])), -1);
      const neg = Array.from(await composite.read(), (v) => -v);
      expectClose(await fused.read(), neg, 1e-5, 1e-6, 'fused vs composite');
    });
  });

  it('an out-of-range label gives NaN in the kernel and an error from labelsTensor', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      expect(() => labelsTensor(ctx, [0, 2, 3], 3)).toThrow(/labelsTensor: label at index 2 is 3, outside \[0, 3\)/);
      expect(() => labelsTensor(ctx, [-1], 3)).toThrow(/label at index 0 is -1/);
      expect(() => labelsTensor(ctx, [0.5], 3)).toThrow(/label at index 0 is 0.5/);
      const x = requireGrad(tensor(ctx, f32([0, 1, 2, 3, 4, 5]), [2, 3]));
      const raw = tensor(ctx, new Int32Array([1, 7]), [2], 'i32');
      const loss = crossEntropy(x, raw);
      const l = await loss.read();
      expect(Number.isFinite(l[0])).toBe(true);
      expect(Number.isNaN(l[1])).toBe(true);
      backward(sum(mul(loss, tensor(ctx, f32([1, 1]), [2]))));
      const g = await x.grad!.read();
      expect(Array.from(g.slice(0, 3)).every(Number.isFinite)).toBe(true);
      expect(Array.from(g.slice(3)).every(Number.isNaN)).toBe(true);
      expect(() => crossEntropy(x, tensor(ctx, f32([0, 1]), [2]))).toThrow(/crossEntropy: labels must be i32 \[2\]/);
    });
  });
});
