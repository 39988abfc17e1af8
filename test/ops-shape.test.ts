// permute / transpose / slice / narrow / pad / concat against float64 references, forward and
// backward, on odd shapes up to rank 8.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, strides, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { permute, transpose } from '../src/wgsl/permute.js';
import { slice, narrow } from '../src/wgsl/slice.js';
import { pad } from '../src/wgsl/slice.js';
import { concat } from '../src/wgsl/concat.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

function backwardWith(y: Tensor, dOut: Float64Array) {
  const d = tensor(y.ctx, f32(dOut), y.shape);
  backward(sum(mul(y, d)));
}

/** float64 map over the output coordinates: out[c] = x[src(c)] or `fill` when src returns -1 */
function gatherRef(outShape: number[], src: (c: number[]) => number, fill = 0) {
  const so = strides(outShape);
  return (x: Float64Array) => {
    const y = new Float64Array(size(outShape));
    for (let e = 0; e < y.length; e++) {
      const c = so.map((s, d) => Math.floor(e / s) % outShape[d]!);
      const k = src(c);
      y[e] = k < 0 ? fill : x[k]!;
    }
    return y;
  };
}
const dot = (c: number[], st: number[]) => c.reduce((a, v, d) => a + v * st[d]!, 0);

/** forward + backward of a one-input op against its float64 reference */
async function check(what: string, shape: number[], op: (x: Tensor) => Tensor, outShape: number[], ref: (x: Float64Array) => Float64Array) {
  const { ctx } = gpu;
  const rng = new Rng();
  await ctx.scope(async () => {
    const xd = viaF32(rng.uniform(size(shape)));
    const x = requireGrad(tensor(ctx, f32(xd), shape));
    const y = op(x);
    expect(y.shape, what).toEqual(outShape);
    expectClose(await y.read(), ref(xd), 0, 0, `${what} forward`);
    const dOut = viaF32(rng.uniform(y.size));
    backwardWith(y, dOut);
    const [dx] = refVjp(ref, [xd], dOut);
    expectClose(await x.grad!.read(), dx!, 1e-6, 1e-6, `${what} dx`);
  });
}

describe('permute and transpose', () => {
  const CASES: [number[], number[]][] = [
    [[3, 5], [1, 0]],
    [[2, 3, 5], [2, 0, 1]],
    [[3, 1, 4, 2], [3, 1, 0, 2]],
    [[2, 1, 3, 1, 2, 1, 3, 2], [7, 6, 5, 4, 3, 2, 1, 0]],
  ];
  for (const [shape, dims] of CASES)
    it(`permute ${JSON.stringify(shape)} by [${dims}]`, async () => {
      const outShape = dims.map((d) => shape[d]!);
      const st = strides(shape);
      await check('permute', shape, (x) => permute(x, dims), outShape, gatherRef(outShape, (c) => dot(c, dims.map((d) => st[d]!))));
    });

  it('transpose defaults to the last two axes; errors name the op', async () => {
    const shape = [2, 3, 5];
    const st = strides(shape);
    await check('transpose', shape, (x) => transpose(x), [2, 5, 3], gatherRef([2, 5, 3], (c) => c[0]! * st[0]! + c[2]! * st[1]! + c[1]!));
    await check('transpose(0,2)', shape, (x) => transpose(x, 0, 2), [5, 3, 2], gatherRef([5, 3, 2], (c) => c[2]! * st[0]! + c[1]! * st[1]! + c[0]!));
    gpu.ctx.scope(() => {
      const x = tensor(gpu.ctx, new Float32Array(6), [2, 3]);
      expect(() => permute(x, [0, 0])).toThrow(/permute: dims \[0,0\] repeat an axis/);
      expect(() => permute(x, [0])).toThrow(/permute: dims \[0\] must list all 2 axes/);
    });
  });
});

describe('slice and narrow', () => {
  const CASES: [number[], number[], number[], number[] | undefined][] = [
    [[7], [2], [6], undefined],
    [[7], [1], [7], [3]],
    [[5, 6], [1, -4], [4, 6], [2, 1]],
    [[3, 4, 5], [0, 1, 0], [3, 4, 5], [1, 2, 2]],
    [[4, 3], [-10, 1], [10, 2], undefined], // clamped bounds
  ];
  for (const [shape, starts, ends, steps] of CASES)
    it(`slice ${JSON.stringify(shape)} [${starts}]:[${ends}]:[${steps ?? ''}]`, async () => {
      const st = strides(shape);
      const res = shape.map((n, d) => {
        const fix = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
        const a = fix(starts[d]!);
        const b = Math.max(fix(ends[d]!), a);
        const s = steps?.[d] ?? 1;
        return { a, s, len: Math.ceil((b - a) / s) };
      });
      const outShape = res.map((r) => r.len);
      await check('slice', shape, (x) => slice(x, starts, ends, steps), outShape, gatherRef(outShape, (c) => dot(c.map((v, d) => res[d]!.a + v * res[d]!.s), st)));
    });

  it('narrow picks [start, start+length) along one axis', async () => {
    const shape = [3, 7, 2];
    const st = strides(shape);
    await check('narrow', shape, (x) => narrow(x, 1, 2, 4), [3, 4, 2], gatherRef([3, 4, 2], (c) => dot([c[0]!, c[1]! + 2, c[2]!], st)));
    gpu.ctx.scope(() => {
      const x = tensor(gpu.ctx, new Float32Array(6), [2, 3]);
      expect(() => narrow(x, 1, 2, 2)).toThrow(/narrow: \[2, 2\+2\) is outside axis 1 of size 3/);
      expect(() => slice(x, [0], [2], [0])).toThrow(/slice: step 0 of dimension 0/);
    });
  });
});

describe('pad', () => {
  const CASES: [number[], [number, number][], number][] = [
    [[5], [[2, 3]], 0],
    [[3, 4], [[1, 0], [2, 1]], -1.5],
    [[2, 3, 3], [[0, 0], [1, 1]], 0], // trailing dimension left alone
  ];
  for (const [shape, pads, value] of CASES)
    it(`pad ${JSON.stringify(shape)} by ${JSON.stringify(pads)} with ${value}`, async () => {
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
      await check('pad', shape, (x) => pad(x, pads, value), outShape, ref);
    });
});

describe('concat', () => {
  for (const [shapes, axis] of [
    [[[2, 3], [4, 3], [1, 3]], 0],
    [[[2, 3, 2], [2, 1, 2], [2, 5, 2]], 1],
    [[[3, 1], [3, 4]], -1],
  ] as [number[][], number][])
    it(`concat ${JSON.stringify(shapes)} along ${axis}`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const r = shapes[0]!.length;
      const a = axis < 0 ? axis + r : axis;
      const outShape = [...shapes[0]!];
      outShape[a] = shapes.reduce((s, sh) => s + sh[a]!, 0);
      const ref = (...xs: Float64Array[]) => {
        const so = strides(outShape);
        const y = new Float64Array(size(outShape));
        for (let e = 0; e < y.length; e++) {
          const c = so.map((s, d) => Math.floor(e / s) % outShape[d]!);
          let k = 0;
          let off = c[a]!;
          while (off >= shapes[k]![a]!) off -= shapes[k++]![a]!;
          const cc = [...c];
          cc[a] = off;
          y[e] = xs[k]![dot(cc, strides(shapes[k]!))]!;
        }
        return y;
      };
      await ctx.scope(async () => {
        const xd = shapes.map((s) => viaF32(rng.uniform(size(s))));
        const xs = xd.map((d, k) => requireGrad(tensor(ctx, f32(d), shapes[k]!)));
        const y = concat(xs, axis);
        expect(y.shape).toEqual(outShape);
        expectClose(await y.read(), ref(...xd), 0, 0, 'concat forward');
        const dOut = viaF32(rng.uniform(y.size));
        backwardWith(y, dOut);
        const grads = refVjp(ref, xd, dOut);
        for (const [k, x] of xs.entries()) expectClose(await x.grad!.read(), grads[k]!, 1e-6, 1e-6, `concat d${k}`);
        expect(() => concat([xs[0]!, tensor(ctx, new Float32Array(7), [7])], 0)).toThrow(/concat: tensor 1 \[7\] does not match/);
      });
    });
});
