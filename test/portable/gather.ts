// Portable checks of indexSelect / scatterAdd (src/wgsl/gather.ts): forward and backward against
// float64 index_select / index_add with planted duplicate indices, several axes and odd sizes;
// scatterAdd's sums are deterministic; out-of-range indices are a CPU error from indexTensor and
// never a wild read or write in the kernels. Not here: embeddings built on them (layers).
//
// Letters: x / target [O, A, I] around the axis; index [K]; indexSelect's output and src [O, K, I].

import { tensor } from '../../src/wgsl/fill.js';
import { indexSelect, indexTensor, scatterAdd } from '../../src/wgsl/gather.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { Rng, assertClose, assertEqual, assertThrows, f32, size } from './ref.js';

function geometry(shape: readonly number[], axis: number) {
  const a = axis < 0 ? axis + shape.length : axis;
  return { a, O: size(shape.slice(0, a)), A: shape[a]!, I: size(shape.slice(a + 1)) };
}

/** Float64 index_select along `axis`: y[o, k, i] = x[o, idx[k], i]. */
function selectRef(shape: readonly number[], axis: number) {
  const { O, A, I } = geometry(shape, axis);
  return (x: Float64Array, idx: Float64Array) => {
    const K = idx.length;
    const y = new Float64Array(O * K * I);
    for (let o = 0; o < O; o++)
      for (let k = 0; k < K; k++) for (let i = 0; i < I; i++) y[(o * K + k) * I + i] = x[(o * A + idx[k]!) * I + i]!;
    return y;
  };
}

/** Float64 index_add along `axis`: y = target; y[o, idx[k], i] += src[o, k, i]. */
function scatterRef(shape: readonly number[], axis: number) {
  const { O, A, I } = geometry(shape, axis);
  return (t: Float64Array, idx: Float64Array, s: Float64Array) => {
    const K = idx.length;
    const y = Float64Array.from(t);
    for (let o = 0; o < O; o++)
      for (let k = 0; k < K; k++) for (let i = 0; i < I; i++) y[(o * A + idx[k]!) * I + i]! += s[(o * K + k) * I + i]!;
    return y;
  };
}

/** K indices in [0, A) with the first value repeated (duplicates must accumulate). */
function indices(rng: Rng, K: number, A: number): Int32Array {
  const idx = rng.int(K, A);
  if (K > 1) idx[K - 1] = idx[0]!;
  return idx;
}

/** [x shape, axis, K] */
const CASES: [number[], number, number][] = [
  [[7], 0, 5],
  [[5, 3], 0, 9], // embedding-like
  [[3, 5], 1, 4],
  [[2, 5, 3], 1, 7],
  [[2, 3, 4], -1, 1],
  [[3, 4], 0, 6],
];

export const GATHER_CHECKS: Check[] = [
  {
    name: 'indexSelect / scatterAdd: several axes, repeated indices, forward/backward',
    run: async (ctx, rng) => {
      for (const [shape, axis, K] of CASES) {
        const { a, A } = geometry(shape, axis);
        const outShape = [...shape];
        outShape[a] = K;
        const idx = { shape: [K], dtype: 'i32' as const, values: indices(rng, K, A), name: 'index' };
        await checkOp(ctx, rng, {
          what: `indexSelect${JSON.stringify(shape)} axis ${axis} K ${K}`,
          inputs: [{ shape, name: 'x' }, idx],
          op: (x, index) => indexSelect(x, axis, index),
          ref: selectRef(shape, axis),
          outShape,
          tol: [0, 0],
          gradTol: [1e-5, 1e-5],
        });
        await checkOp(ctx, rng, {
          what: `scatterAdd${JSON.stringify(shape)} axis ${axis} K ${K}`,
          inputs: [{ shape, name: 'target' }, { ...idx, values: indices(rng, K, A) }, { shape: outShape, name: 'src' }],
          op: (t, index, s) => scatterAdd(t, axis, index, s),
          ref: scatterRef(shape, axis),
          outShape: shape,
          tol: [1e-6, 1e-6],
          gradTol: [1e-5, 1e-5],
        });
      }
    },
  },
  {
    name: 'scatterAdd: the same inputs give bit-identical sums (no atomics, fixed order)',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const idx = indexTensor(ctx, rng.int(40, 3), 3);
        const t = tensor(ctx, new Float32Array(6), [3, 2]);
        const s = tensor(ctx, f32(rng.uniform(80, -100, 100)), [40, 2]);
        const first = await scatterAdd(t, 0, idx, s).read();
        const again = await scatterAdd(t, 0, idx, s).read();
        assertClose(again, first, 0, 0, 'second scatterAdd');
      }),
  },
  {
    name: 'indexTensor / indexSelect / scatterAdd: bad indices are a CPU error; the kernels never read or write out of bounds',
    run: (ctx) =>
      ctx.scope(async () => {
        assertThrows(() => indexTensor(ctx, [0, 4, 1], 4, 'embedding'), /embedding: index at position 1 is 4, outside \[0, 4\)/);
        assertThrows(() => indexTensor(ctx, [-2], 4), /indexTensor: index at position 0 is -2, outside \[0, 4\)/);
        assertThrows(() => indexTensor(ctx, [1.5], 4), /indexTensor: index at position 0 is 1.5/);
        const x = tensor(ctx, f32([1, 2, 3, 4, 5, 6]), [3, 2]);
        // unchecked indices straight to the kernels: out of range reads NaN, out of range adds are skipped
        const bad = tensor(ctx, new Int32Array([2, 3, -1]), [3], 'i32');
        const y = await indexSelect(x, 0, bad).read();
        assertEqual(Array.from(y.slice(0, 2)), [5, 6], 'indexSelect of a valid index');
        assertEqual(Array.from(y.slice(2), Number.isNaN), [true, true, true, true], 'indexSelect of indices 3 and -1 is NaN');
        const z = await scatterAdd(x, 0, bad, tensor(ctx, f32([10, 20, 30, 40, 50, 60]), [3, 2])).read();
        assertEqual(Array.from(z), [1, 2, 3, 4, 15, 26], 'scatterAdd skips indices 3 and -1');
        assertThrows(() => indexSelect(x, 0, tensor(ctx, f32([0]), [1])), /indexSelect: index must be i32 \[K\], got f32\[1\]/);
        assertThrows(() => indexSelect(x, 2, indexTensor(ctx, [0], 3)), /indexSelect: axis 2 is out of range for rank 2/);
        assertThrows(() => scatterAdd(x, 0, indexTensor(ctx, [0], 3), x), /scatterAdd: src must be \[1,2\] \(target \[3,2\] with axis 0 = K 1\), got \[3,2\]/);
      }),
  },
];
