// indexSelect and scatterAdd against float64 references, forward and backward, with duplicate
// indices, several axes and odd sizes; out-of-range indices: CPU error, and no wild reads or writes.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { indexSelect, indexTensor } from '../src/wgsl/gather.js';
import { scatterAdd } from '../src/wgsl/gather.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

function backwardWith(y: Tensor, dOut: Float64Array) {
  const d = tensor(y.ctx, f32(dOut), y.shape);
  backward(sum(mul(y, d)));
}

function geometry(shape: number[], axis: number) {
  const a = axis < 0 ? axis + shape.length : axis;
  return { a, outer: size(shape.slice(0, a)), n: shape[a]!, inner: size(shape.slice(a + 1)) };
}

/** float64 index_select */
function selectRef(shape: number[], axis: number, idx: Int32Array) {
  const { outer, n, inner } = geometry(shape, axis);
  const k = idx.length;
  return (x: Float64Array) => {
    const y = new Float64Array(outer * k * inner);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < k; j++) for (let i = 0; i < inner; i++) y[(o * k + j) * inner + i] = x[(o * n + idx[j]!) * inner + i]!;
    return y;
  };
}

/** float64 index_add */
function scatterRef(shape: number[], axis: number, idx: Int32Array) {
  const { outer, n, inner } = geometry(shape, axis);
  const k = idx.length;
  return (t: Float64Array, s: Float64Array) => {
    const y = Float64Array.from(t);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < k; j++) for (let i = 0; i < inner; i++) y[(o * n + idx[j]!) * inner + i]! += s[(o * k + j) * inner + i]!;
    return y;
  };
}

const CASES: [number[], number, number][] = [
  [[7], 0, 5],
  [[5, 3], 0, 9], // embedding-like, duplicates certain
  [[3, 5], 1, 4],
  [[2, 5, 3], 1, 7],
  [[2, 3, 4], -1, 1],
];

describe('indexSelect', () => {
  it('forward and backward match float64', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const [shape, axis, k] of CASES) {
      await ctx.scope(async () => {
        const what = `indexSelect${JSON.stringify(shape)} axis ${axis} K ${k}`;
        const { n } = geometry(shape, axis);
        const idx = rng.int(k, n);
        const xd = viaF32(rng.uniform(size(shape)));
        const x = requireGrad(tensor(ctx, f32(xd), shape));
        const y = indexSelect(x, axis, indexTensor(ctx, idx, n));
        const ref = selectRef(shape, axis, idx);
        const want = [...shape];
        want[geometry(shape, axis).a] = k;
        expect(y.shape).toEqual(want);
        expectClose(await y.read(), ref(xd), 0, 0, `${what} forward`);
        const dOut = viaF32(rng.uniform(y.size));
        backwardWith(y, dOut);
        const [dx] = refVjp(ref, [xd], dOut);
        expectClose(await x.grad!.read(), dx!, 1e-5, 1e-5, `${what} dx`);
      });
    }
  });
});

describe('scatterAdd', () => {
  it('forward and both gradients match float64 (duplicates accumulate)', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const [shape, axis, k] of CASES) {
      await ctx.scope(async () => {
        const what = `scatterAdd${JSON.stringify(shape)} axis ${axis} K ${k}`;
        const { a, n } = geometry(shape, axis);
        const idx = rng.int(k, n);
        const srcShape = [...shape];
        srcShape[a] = k;
        const td = viaF32(rng.uniform(size(shape)));
        const sd = viaF32(rng.uniform(size(srcShape)));
        const t = requireGrad(tensor(ctx, f32(td), shape));
        const s = requireGrad(tensor(ctx, f32(sd), srcShape));
        const y = scatterAdd(t, axis, indexTensor(ctx, idx, n), s);
        const ref = scatterRef(shape, axis, idx);
        expectClose(await y.read(), ref(td, sd), 1e-6, 1e-6, `${what} forward`);
        const dOut = viaF32(rng.uniform(y.size));
        backwardWith(y, dOut);
        const [dt, ds] = refVjp(ref, [td, sd], dOut);
        expectClose(await t.grad!.read(), dt!, 1e-5, 1e-5, `${what} dTarget`);
        expectClose(await s.grad!.read(), ds!, 1e-5, 1e-5, `${what} dSrc`);
      });
    }
  });

  it('is deterministic: the same inputs give bit-identical sums', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    await ctx.scope(async () => {
      const idx = indexTensor(ctx, rng.int(40, 3), 3);
      const t = tensor(ctx, new Float32Array(6), [3, 2]);
      const s = tensor(ctx, f32(rng.uniform(80, -100, 100)), [40, 2]);
      const a = await scatterAdd(t, 0, idx, s).read();
      const b = await scatterAdd(t, 0, idx, s).read();
      expect(Array.from(a)).toEqual(Array.from(b));
    });
  });
});

describe('out-of-range indices', () => {
  it('indexTensor throws naming the op, position and value; kernels stay in bounds', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      expect(() => indexTensor(ctx, [0, 4, 1], 4, 'embedding')).toThrow(/embedding: index at position 1 is 4, outside \[0, 4\)/);
      expect(() => indexTensor(ctx, [-2], 4)).toThrow(/indexTensor: index at position 0 is -2/);
      const x = tensor(ctx, f32([1, 2, 3, 4, 5, 6]), [3, 2]);
      const bad = tensor(ctx, new Int32Array([2, 3, -1]), [3], 'i32');
      const y = await indexSelect(x, 0, bad).read();
      expect(Array.from(y.slice(0, 2))).toEqual([5, 6]);
      expect(Array.from(y.slice(2)).every(Number.isNaN)).toBe(true);
      const z = await scatterAdd(x, 0, bad, tensor(ctx, f32([10, 20, 30, 40, 50, 60]), [3, 2])).read();
      expect(Array.from(z)).toEqual([1, 2, 3, 4, 15, 26]);
      expect(() => indexSelect(x, 0, tensor(ctx, f32([0]), [1]))).toThrow(/indexSelect: index must be i32 \[K\]/);
      expect(() => scatterAdd(x, 0, indexTensor(ctx, [0], 3), x)).toThrow(/scatterAdd: src must be \[1,2\]/);
    });
  });
});
