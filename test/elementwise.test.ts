// Elementwise kernels against float64 references: every unary and binary op of the table, forward
// and backward, on fresh random inputs of odd and vec4-friendly shapes, with broadcasting.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, strides, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { UNARY, BINARY, unary, add, sub, mul, div, pow, maximum, minimum, where, eq, lt, ge, type UnaryName } from '../src/wgsl/elementwise.js';
import { blockBroadcast } from '../src/wgsl/map.js';
import { requireGrad } from '../src/autograd/graph.js';
import { sum } from '../src/wgsl/reduce.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();
const SHAPES = [[7], [3, 5], [2, 3, 4]];
/** input domain per op (log, sqrt need positives; pow keeps a away from 0) */
const DOMAIN: Partial<Record<UnaryName, [number, number]>> = {
  log: [0.2, 3], sqrt: [0.2, 3], rsqrt: [0.2, 3], reciprocal: [0.5, 3], powScalar: [0.3, 2],
};
const PARAMS: Partial<Record<UnaryName, [number, number]>> = {
  addScalar: [0.75, 0], mulScalar: [-1.5, 0], powScalar: [2.5, 0], clamp: [-0.4, 0.3],
};

/** loss = sum(y * dOut) so backward sees the output gradient dOut */
function backwardWith(y: Tensor, dOut: Float64Array) {
  const ctx = y.ctx;
  const d = tensor(ctx, f32(dOut), y.shape);
  backward(sum(mul(y, d)));
}

describe('unary ops', () => {
  for (const name of Object.keys(UNARY) as UnaryName[]) {
    it(`${name}: forward and backward match float64`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const [lo, hi] = DOMAIN[name] ?? [-2.5, 2.5];
      const [p0, p1] = PARAMS[name] ?? [0, 0];
      const ref = (UNARY[name].ref as (a: number, p0: number, p1: number) => number);
      for (const shape of SHAPES) {
        await ctx.scope(async () => {
          const xd = viaF32(rng.uniform(size(shape), lo, hi));
          const x = requireGrad(tensor(ctx, f32(xd), shape));
          const y = unary(name, x, p0, p1);
          const fRef = (a: Float64Array) => a.map((v) => ref(v, p0, p1));
          expectClose(await y.read(), fRef(xd), 2e-5, 2e-6, `${name}${JSON.stringify(shape)} forward`);
          const dOut = rng.uniform(size(shape));
          backwardWith(y, dOut);
          const [dx] = refVjp(fRef, [xd], viaF32(dOut));
          expectClose(await x.grad!.read(), dx!, 1e-3, 1e-4, `${name}${JSON.stringify(shape)} dx`);
        });
      }
    });
  }
});

/** float64 reference of a broadcast binary op */
function broadcastRef(f: (a: number, b: number) => number, sa: number[], sb: number[]) {
  const n = Math.max(sa.length, sb.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.max(sa[sa.length - n + i] ?? 1, sb[sb.length - n + i] ?? 1));
  const so = strides(out);
  const idx = (shape: number[], coord: number[]) => {
    const st = strides(shape);
    let o = 0;
    shape.forEach((d, j) => (o += (d === 1 ? 0 : coord[coord.length - shape.length + j]!) * st[j]!));
    return o;
  };
  return {
    shape: out,
    f: (a: Float64Array, b: Float64Array) => {
      const y = new Float64Array(size(out));
      for (let i = 0; i < y.length; i++) {
        const coord = so.map((s, j) => Math.floor(i / s) % out[j]!);
        y[i] = f(a[idx(sa, coord)]!, b[idx(sb, coord)]!);
      }
      return y;
    },
  };
}

const PAIRS: [number[], number[]][] = [
  [[3, 5], [3, 5]],
  [[2, 3, 4], [2, 3, 4]],
  [[3, 5], [5]],
  [[4, 1, 3], [1, 5, 1]],
  [[7], [1]],
  [[2, 1], [2, 6]],
  [[2, 3, 4, 5], [1, 3, 1, 1]], // per-channel: vec4 block path, b splat
  [[4, 8], [8]], // row broadcast: vec4 block path, b read as vec4
  [[3, 8], [3, 1]], // column broadcast: vec4 block path, b splat
  [[3, 5], [3, 1]], // block path without vec4 (15 elements)
  [[3, 1, 5], [2, 3, 4, 5]], // broadcast inside the block: general strided path
];
const DIFFERENTIABLE = { add, sub, mul, div, pow, maximum, minimum };

describe('broadcast index plans', () => {
  it('blockBroadcast finds (i / div) % mod for contiguous blocks and refuses the rest', () => {
    expect(blockBroadcast([5], [3, 5])).toEqual({ div: 1, mod: 5 });
    expect(blockBroadcast([1, 3, 1, 1], [2, 3, 4, 5])).toEqual({ div: 20, mod: 3 });
    expect(blockBroadcast([2, 1], [2, 6])).toEqual({ div: 6, mod: 2 });
    expect(blockBroadcast([1], [7])).toEqual({ div: 1, mod: 1 });
    expect(blockBroadcast([4, 1, 3], [4, 5, 3])).toBeNull();
  });
});

describe('binary ops with broadcasting', () => {
  for (const [name, fn] of Object.entries(DIFFERENTIABLE)) {
    it(`${name}: forward and backward match float64`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const refOp = BINARY[name as keyof typeof BINARY].ref;
      for (const [sa, sb] of PAIRS) {
        await ctx.scope(async () => {
          const positive = name === 'pow' || name === 'div';
          const ad = viaF32(rng.uniform(size(sa), positive ? 0.5 : -2, 2));
          const bd = viaF32(rng.uniform(size(sb), positive ? 0.5 : -2, 2));
          const a = requireGrad(tensor(ctx, f32(ad), sa));
          const b = requireGrad(tensor(ctx, f32(bd), sb));
          const y = fn(a, b);
          const { shape, f } = broadcastRef(refOp, sa, sb);
          expect(y.shape).toEqual(shape);
          expectClose(await y.read(), f(ad, bd), 2e-5, 2e-6, `${name} ${sa}|${sb} forward`);
          const dOut = rng.uniform(size(shape));
          backwardWith(y, dOut);
          const [da, db] = refVjp(f, [ad, bd], viaF32(dOut));
          expectClose(await a.grad!.read(), da!, 1e-3, 2e-4, `${name} ${sa}|${sb} da`);
          expectClose(await b.grad!.read(), db!, 1e-3, 2e-4, `${name} ${sa}|${sb} db`);
        });
      }
    });
  }

  it('comparisons and where', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    await ctx.scope(async () => {
      const ad = viaF32(rng.uniform(15).map((v) => Math.round(v * 2) / 2));
      const bd = viaF32(rng.uniform(5).map((v) => Math.round(v * 2) / 2));
      const a = tensor(ctx, f32(ad), [3, 5]);
      const b = tensor(ctx, f32(bd), [5]);
      for (const [fn, ref] of [[eq, (x: number, y: number) => +(x === y)], [lt, (x: number, y: number) => +(x < y)], [ge, (x: number, y: number) => +(x >= y)]] as const) {
        expectClose(await fn(a, b).read(), broadcastRef(ref, [3, 5], [5]).f(ad, bd), 0, 0, fn.name);
      }
      const cond = lt(a, b);
      const x = requireGrad(tensor(ctx, f32(rng.uniform(15)), [3, 5]));
      const y = requireGrad(tensor(ctx, f32(rng.uniform(5)), [5]));
      const w = where(cond, x, y);
      const cd = await cond.read(), xd = await x.read(), yd = await y.read();
      const expected = Array.from({ length: 15 }, (_, i) => (cd[i] ? xd[i]! : yd[i % 5]!));
      expectClose(await w.read(), expected, 0, 0, 'where');
      backward(sum(w));
      expectClose(await x.grad!.read(), Array.from(cd), 0, 0, 'where dx');
      const dy = [0, 0, 0, 0, 0];
      cd.forEach((c, i) => (dy[i % 5]! += c ? 0 : 1));
      expectClose(await y.grad!.read(), dy, 0, 0, 'where dy');
    });
  });

  it('rejects mismatched shapes and dtypes with the op and shapes named', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const a = tensor(ctx, new Float32Array(6), [2, 3]);
      const b = tensor(ctx, new Float32Array(4), [4]);
      expect(() => add(a, b)).toThrow(/add: shapes \[2,3\] and \[4\] cannot be broadcast/);
      const i = tensor(ctx, new Int32Array(6), [2, 3]);
      expect(() => mul(a, i)).toThrow(/mul: argument 1 is i32\[2,3\]/);
      a.dispose();
      expect(() => add(a, a)).toThrow(/add: f32\[2,3\] was used after dispose/);
    });
  });
});
