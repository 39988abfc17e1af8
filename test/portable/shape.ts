// Portable checks of the data-movement kernels: permute / transpose (src/wgsl/permute.ts), slice /
// narrow / pad (src/wgsl/slice.ts) and concat (src/wgsl/concat.ts), forward and backward against
// float64 index maps, odd shapes from rank 1 to rank 8 (the kernels' limit), and their error messages.
// Three pipelines in all (strided copy, embed, concat), so many cases cost little. No reshape (a view).

import { tensor } from '../../src/wgsl/fill.js';
import { permute, transpose } from '../../src/wgsl/permute.js';
import { slice, narrow, pad } from '../../src/wgsl/slice.js';
import { concat } from '../../src/wgsl/concat.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import type { GpuContext } from '../../src/gpu/context.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { Rng, assertThrows, size, strides } from './ref.js';

/** Float64 map over the output coordinates: out[c] = x[src(c)], or `fill` where src returns -1. */
function gatherRef(outShape: readonly number[], src: (c: number[]) => number, fill = 0) {
  const so = strides(outShape);
  return (x: Float64Array) => {
    const y = new Float64Array(size(outShape));
    for (let e = 0; e < y.length; e++) {
      const k = src(so.map((s, d) => Math.floor(e / s) % outShape[d]!));
      y[e] = k < 0 ? fill : x[k]!;
    }
    return y;
  };
}
const dot = (c: number[], st: number[]) => c.reduce((a, v, d) => a + v * st[d]!, 0);

/** Forward + backward of a one-input data-movement op: exact forward, gradients to 1e-6. */
const move = (ctx: GpuContext, rng: Rng, what: string, shape: number[], op: (x: Tensor) => Tensor, outShape: number[], ref: (x: Float64Array) => Float64Array) =>
  checkOp(ctx, rng, { what, inputs: [{ shape }], op, ref, outShape, tol: [0, 0], gradTol: [1e-6, 1e-6] });

/** Python-style slice bounds per dimension: start, step and length. */
function sliceGeometry(shape: number[], starts: number[], ends: number[], steps?: number[]) {
  return shape.map((n, d) => {
    const fix = (v: number | undefined, dflt: number) => (v === undefined ? dflt : Math.min(Math.max(v < 0 ? v + n : v, 0), n));
    const a = fix(starts[d], 0);
    const b = Math.max(fix(ends[d], n), a);
    const s = steps?.[d] ?? 1;
    return { a, s, len: Math.ceil((b - a) / s) };
  });
}

const PERMUTES: [number[], number[]][] = [
  [[3, 5], [1, 0]],
  [[2, 3, 5], [2, 0, 1]],
  [[3, 1, 4, 2], [3, 1, 0, 2]],
  [[2, 1, 3, 1, 2, 1, 3, 2], [7, 6, 5, 4, 3, 2, 1, 0]],
  [[2, 3, 1, 2, 1, 2, 2, 3], [1, 3, 5, 7, 0, 2, 4, 6]],
];

const SLICES: [number[], number[], number[], number[] | undefined][] = [
  [[7], [2], [6], undefined],
  [[7], [1], [7], [3]],
  [[5, 6], [1, -4], [4, 6], [2, 1]],
  [[5, 7], [1, 0], [4, 7], [1, 2]], // rows 1..3, every second column
  [[3, 4, 5], [0, 1, 0], [3, 4, 5], [1, 2, 2]],
  [[4, 3], [-10, 1], [10, 2], undefined], // clamped bounds
  [[3, 4], [1], [3], undefined], // missing trailing entries take the whole dimension
  [[2, 3, 2, 4, 1, 3, 2, 3], [1, 0, 0, 1, 0, 2, 0, -2], [2, 3, 2, 4, 1, 3, 2, 3], [1, 2, 1, 2, 1, 1, 1, 1]],
];

const PADS: [number[], [number, number][], number][] = [
  [[5], [[2, 3]], 0],
  [[3, 4], [[1, 0], [2, 1]], -1.5],
  [[5, 7], [[1, 2], [0, 1]], 0.5],
  [[2, 3, 3], [[0, 0], [1, 1]], 0], // trailing dimension left alone
  [[2, 1, 2, 1, 2, 1, 2, 2], [[1, 0], [0, 1], [0, 0], [1, 1], [0, 0], [0, 2], [1, 0], [0, 1]], 2],
];

const CONCATS: [number[][], number][] = [
  [[[2, 3], [4, 3], [1, 3]], 0],
  [[[2, 3, 2], [2, 1, 2], [2, 5, 2]], 1],
  [[[3, 1], [3, 4]], -1],
  [[[5, 7], [5, 2]], 1],
  [[[1, 2, 1, 2, 1, 2, 1, 2], [1, 2, 1, 3, 1, 2, 1, 2]], 3],
];

export const SHAPE_CHECKS: Check[] = [
  {
    name: 'permute / transpose: ranks 2 to 8, forward/backward',
    run: async (ctx, rng) => {
      for (const [shape, dims] of PERMUTES) {
        const outShape = dims.map((d) => shape[d]!);
        const st = strides(shape);
        await move(ctx, rng, `permute ${JSON.stringify(shape)} by [${dims}]`, shape, (x) => permute(x, dims), outShape, gatherRef(outShape, (c) => dot(c, dims.map((d) => st[d]!))));
      }
      const shape = [2, 3, 5];
      const st = strides(shape);
      await move(ctx, rng, 'transpose() (last two axes)', shape, (x) => transpose(x), [2, 5, 3], gatherRef([2, 5, 3], (c) => c[0]! * st[0]! + c[2]! * st[1]! + c[1]!));
      await move(ctx, rng, 'transpose(0, 2)', shape, (x) => transpose(x, 0, 2), [5, 3, 2], gatherRef([5, 3, 2], (c) => c[2]! * st[0]! + c[1]! * st[1]! + c[0]!));
      await move(ctx, rng, 'permute with negative axes', shape, (x) => permute(x, [-1, 0, -2]), [5, 2, 3], gatherRef([5, 2, 3], (c) => c[1]! * st[0]! + c[2]! * st[1]! + c[0]!));
    },
  },
  {
    name: 'slice (stepped, negative and clamped bounds) / narrow: ranks 1 to 8, forward/backward',
    run: async (ctx, rng) => {
      for (const [shape, starts, ends, steps] of SLICES) {
        const st = strides(shape);
        const g = sliceGeometry(shape, starts, ends, steps);
        const outShape = g.map((r) => r.len);
        const ref = gatherRef(outShape, (c) => dot(c.map((v, d) => g[d]!.a + v * g[d]!.s), st));
        await move(ctx, rng, `slice ${JSON.stringify(shape)} [${starts}]:[${ends}]:[${steps ?? ''}]`, shape, (x) => slice(x, starts, ends, steps), outShape, ref);
      }
      const shape = [3, 7, 2];
      const st = strides(shape);
      await move(ctx, rng, 'narrow(x, 1, 2, 4)', shape, (x) => narrow(x, 1, 2, 4), [3, 4, 2], gatherRef([3, 4, 2], (c) => dot([c[0]!, c[1]! + 2, c[2]!], st)));
    },
  },
  {
    name: 'pad (constant value): ranks 1 to 8, forward/backward',
    run: async (ctx, rng) => {
      for (const [shape, pads, value] of PADS) {
        const before = shape.map((_, d) => pads[d]?.[0] ?? 0);
        const outShape = shape.map((n, d) => before[d]! + n + (pads[d]?.[1] ?? 0));
        const st = strides(shape);
        const ref = gatherRef(
          outShape,
          (c) => {
            const inner = c.map((v, d) => v - before[d]!);
            return inner.every((v, d) => v >= 0 && v < shape[d]!) ? dot(inner, st) : -1;
          },
          value,
        );
        await move(ctx, rng, `pad ${JSON.stringify(shape)} by ${JSON.stringify(pads)} with ${value}`, shape, (x) => pad(x, pads, value), outShape, ref);
      }
    },
  },
  {
    name: 'concat: 2 and 3 inputs along first, middle, last (negative) axes, up to rank 8, forward/backward',
    run: async (ctx, rng) => {
      for (const [shapes, axis] of CONCATS) {
        const a = axis < 0 ? axis + shapes[0]!.length : axis;
        const outShape = [...shapes[0]!];
        outShape[a] = shapes.reduce((s, sh) => s + sh[a]!, 0);
        const so = strides(outShape);
        const ref = (...xs: Float64Array[]) => {
          const y = new Float64Array(size(outShape));
          for (let e = 0; e < y.length; e++) {
            const c = so.map((s, d) => Math.floor(e / s) % outShape[d]!);
            let k = 0;
            while (c[a]! >= shapes[k]![a]!) c[a] -= shapes[k++]![a]!;
            y[e] = xs[k]![dot(c, strides(shapes[k]!))]!;
          }
          return y;
        };
        await checkOp(ctx, rng, {
          what: `concat ${JSON.stringify(shapes)} along ${axis}`,
          inputs: shapes.map((shape) => ({ shape })),
          op: (...xs) => concat(xs, axis),
          ref,
          outShape,
          tol: [0, 0],
          gradTol: [1e-6, 1e-6],
        });
      }
    },
  },
  {
    name: 'permute / slice / narrow / pad / concat: bad arguments are rejected naming the op and shapes',
    run: async (ctx) =>
      ctx.scope(() => {
        const x = tensor(ctx, new Float32Array(6), [2, 3]);
        assertThrows(() => permute(x, [0, 0]), /permute: dims \[0,0\] repeat an axis/);
        assertThrows(() => permute(x, [0]), /permute: dims \[0\] must list all 2 axes of f32\[2,3\]/);
        assertThrows(() => permute(x, [0, 2]), /permute: axis 2 is out of range for rank 2/);
        assertThrows(() => transpose(tensor(ctx, new Float32Array(3), [3])), /transpose: axis -2 is out of range for rank 1/);
        assertThrows(() => narrow(x, 1, 2, 2), /narrow: \[2, 2\+2\) is outside axis 1 of size 3/);
        assertThrows(() => slice(x, [0], [2], [0]), /slice: step 0 of dimension 0 must be a positive integer/);
        assertThrows(() => slice(x, [0, 0, 0], [1, 1, 1]), /slice: starts\/ends\/steps longer than the rank 2 of f32\[2,3\]/);
        assertThrows(() => slice(x, [0.5], [2]), /slice: bound 0.5 of dimension 0 is not an integer/);
        assertThrows(() => pad(x, [[0, 0], [0, 0], [1, 1]]), /pad: 3 pad pairs for f32\[2,3\] of rank 2/);
        assertThrows(() => pad(x, [[0, -1]]), /pad: padding -1 \(entry 0 of after\) must be a non-negative integer/);
        assertThrows(() => concat([x, tensor(ctx, new Float32Array(7), [7])], 0), /concat: tensor 1 \[7\] does not match \[2,3\] outside axis 0/);
        assertThrows(() => concat([], 0), /concat: needs at least one tensor/);
        assertThrows(() => concat([x, tensor(ctx, new Int32Array(6), [2, 3], 'i32')], 0), /concat: tensor 1 is i32\[2,3\]; expected f32/);
        const rank9 = tensor(ctx, new Float32Array(2), [1, 1, 1, 1, 1, 1, 1, 1, 2]);
        assertThrows(() => permute(rank9, [8, 7, 6, 5, 4, 3, 2, 1, 0]), /permute: rank 9 of \[2,1,1,1,1,1,1,1,1\] exceeds the supported 8/);
        assertThrows(() => pad(rank9, [[1, 1]]), /pad: rank 9 of \[3,1,1,1,1,1,1,1,2\] exceeds the supported 8/);
      }),
  },
];
