// matmul and linear against float64 references: forward and backward, odd sizes and sizes of 1,
// batch broadcasting (incl. rank-2 with batched), all four transpose combinations, vec4-aligned and
// unaligned storage, linear with and without bias, and the errors for mismatched shapes.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, strides, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { matmul, linear } from '../src/wgsl/matmul.js';
import { requireGrad } from '../src/autograd/graph.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

/**
 * float64 matmul with broadcast batch and transposes. Returns the output shape, the forward and an
 * analytic VJP (dA, dB accumulated per product term, which also sums over broadcast batch dims).
 */
function refMatmul(sa: number[], sb: number[], transA: boolean, transB: boolean) {
  const ra = sa.length, rb = sb.length;
  const M = sa[transA ? ra - 1 : ra - 2]!, K = sa[transA ? ra - 2 : ra - 1]!;
  const N = sb[transB ? rb - 2 : rb - 1]!;
  const ba = sa.slice(0, -2), bb = sb.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nb; i++) batch.push(Math.max(ba[ba.length - nb + i] ?? 1, bb[bb.length - nb + i] ?? 1));
  const bst = strides(batch);
  const off = (bs: number[], coord: number[], mat: number) => {
    const st = strides(bs);
    let o = 0;
    bs.forEach((d, j) => (o += (d === 1 ? 0 : coord[coord.length - bs.length + j]!) * st[j]!));
    return o * mat;
  };
  const aIdx = (o: number, m: number, k: number) => o + (transA ? k * M + m : m * K + k);
  const bIdx = (o: number, k: number, n: number) => o + (transB ? n * K + k : k * N + n);
  const nBatch = size(batch);
  const each = (fn: (oa: number, ob: number, oc: number) => void) => {
    for (let z = 0; z < nBatch; z++) {
      const coord = bst.map((s, j) => Math.floor(z / s) % batch[j]!);
      fn(off(ba, coord, M * K), off(bb, coord, K * N), z * M * N);
    }
  };
  const f = (a: Float64Array, b: Float64Array) => {
    const c = new Float64Array(nBatch * M * N);
    each((oa, ob, oc) => {
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a[aIdx(oa, m, k)]! * b[bIdx(ob, k, n)]!;
          c[oc + m * N + n] = s;
        }
    });
    return c;
  };
  const vjp = (a: Float64Array, b: Float64Array, dC: ArrayLike<number>) => {
    const da = new Float64Array(a.length), db = new Float64Array(b.length);
    each((oa, ob, oc) => {
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          const g = dC[oc + m * N + n]!;
          for (let k = 0; k < K; k++) {
            da[aIdx(oa, m, k)] += g * b[bIdx(ob, k, n)]!;
            db[bIdx(ob, k, n)] += g * a[aIdx(oa, m, k)]!;
          }
        }
    });
    return [da, db];
  };
  return { shape: [...batch, M, N], f, vjp };
}

/** loss = sum(y * dOut) so backward sees the output gradient dOut */
function backwardWith(y: Tensor, dOut: Float64Array) {
  backward(sum(mul(y, tensor(y.ctx, f32(dOut), y.shape))));
}

/** stored shape of an operand given its logical [..., R, C] and whether it is transposed */
const stored = (batch: number[], r: number, c: number, t: boolean) => [...batch, ...(t ? [c, r] : [r, c])];

async function check(ba: number[], bb: number[], M: number, K: number, N: number, transA: boolean, transB: boolean) {
  const { ctx } = gpu;
  const rng = new Rng();
  const sa = stored(ba, M, K, transA), sb = stored(bb, K, N, transB);
  const what = `${JSON.stringify(sa)}${transA ? 'ᵀ' : ''}x${JSON.stringify(sb)}${transB ? 'ᵀ' : ''}`;
  await ctx.scope(async () => {
    const ad = viaF32(rng.uniform(size(sa))), bd = viaF32(rng.uniform(size(sb)));
    const a = requireGrad(tensor(ctx, f32(ad), sa));
    const b = requireGrad(tensor(ctx, f32(bd), sb));
    const c = matmul(a, b, { transA, transB });
    const ref = refMatmul(sa, sb, transA, transB);
    expect(c.shape).toEqual(ref.shape);
    const tol = 2e-6 * Math.max(1, K);
    expectClose(await c.read(), ref.f(ad, bd), 1e-5, tol, `${what} forward`);
    const dOut = viaF32(rng.uniform(size(ref.shape)));
    backwardWith(c, dOut);
    const [da, db] = ref.vjp(ad, bd, dOut);
    const gtol = 2e-6 * Math.max(1, K, M, N) * (size(ref.shape) / (M * N));
    expectClose(await a.grad!.read(), da!, 1e-5, gtol, `${what} dA`);
    expectClose(await b.grad!.read(), db!, 1e-5, gtol, `${what} dB`);
  });
}

describe('matmul', () => {
  it('analytic reference VJP agrees with finite differences', () => {
    const rng = new Rng();
    for (const [sa, sb, ta, tb] of [[[2, 1, 3, 2], [4, 2, 3], false, false], [[2, 3], [2, 4, 2], true, true]] as const) {
      const ref = refMatmul([...sa], [...sb], ta, tb);
      const a = rng.uniform(size([...sa])), b = rng.uniform(size([...sb]));
      const d = rng.uniform(size(ref.shape));
      const [fa, fb] = refVjp(ref.f, [a, b], d);
      const [va, vb] = ref.vjp(a, b, d);
      expectClose(va!, fa!, 1e-6, 1e-7, 'ref dA');
      expectClose(vb!, fb!, 1e-6, 1e-7, 'ref dB');
    }
  });

  const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 64, 64], [8, 12, 16], [5, 4, 13], [68, 8, 72]];
  for (const [M, K, N] of SIZES)
    it(`${M}x${K}x${N}, all four transpose combinations${M >= 64 && N >= 64 ? ' (8x8 register tiles, edge guards)' : ''}`, async () => {
      for (const ta of [false, true]) for (const tb of [false, true]) await check([], [], M, K, N, ta, tb);
    });

  it('batched [2,3,5]x[5,4] (rank-2 operand with a batched one, both ways)', async () => {
    await check([2], [], 3, 5, 4, false, false);
    await check([2], [], 3, 5, 4, false, true);
    await check([2], [], 3, 5, 4, true, false);
    await check([], [2], 3, 5, 4, false, false);
    await check([], [3, 2], 4, 8, 5, true, true);
  });

  it('broadcast batch [2,1,3,4]x[1,5,4,6] and friends', async () => {
    await check([2, 1], [1, 5], 3, 4, 6, false, false);
    await check([2, 1], [1, 5], 3, 4, 6, true, true);
    await check([3], [2, 1], 8, 4, 8, false, true);
    await check([1], [2], 5, 3, 2, true, false);
  });

  it('rejects mismatched inner dimensions naming both shapes', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const a = tensor(ctx, new Float32Array(6), [2, 3]);
      const b = tensor(ctx, new Float32Array(8), [4, 2]);
      expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: a \[2,3\] has K=3, b \[4,2\] has K=4/);
      expect(() => matmul(a, tensor(ctx, new Float32Array(12), [2, 2, 3]))).toThrow(/matmul: .*\[2,3\].*\[2,2,3\]/);
      expect(() => matmul(a, tensor(ctx, new Float32Array(3), [3]))).toThrow(/matmul: b is f32\[3\]/);
      expect(() => linear(a, tensor(ctx, new Float32Array(8), [2, 4]))).toThrow(/linear: .*\[2,3\].*\[2,4\]/);
    });
  });
});

describe('linear', () => {
  for (const [xs, IN, OUT, withBias] of [
    [[5], 3, 4, true],
    [[6], 8, 12, true],
    [[2, 3], 7, 5, true],
    [[4], 5, 3, false],
    [[], 4, 3, true],
  ] as [number[], number, number, boolean][])
    it(`x ${JSON.stringify([...xs, IN])}, w [${OUT},${IN}]${withBias ? ', bias' : ''}`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      await ctx.scope(async () => {
        const rows = size(xs);
        const xd = viaF32(rng.uniform(rows * IN)), wd = viaF32(rng.uniform(OUT * IN)), bd = viaF32(rng.uniform(OUT));
        const x = requireGrad(tensor(ctx, f32(xd), [...xs, IN]));
        const w = requireGrad(tensor(ctx, f32(wd), [OUT, IN]));
        const b = withBias ? requireGrad(tensor(ctx, f32(bd), [OUT])) : undefined;
        const y = linear(x, w, b);
        expect(y.shape).toEqual([...xs, OUT]);
        const f = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => {
          const out = new Float64Array(rows * OUT);
          for (let r = 0; r < rows; r++)
            for (let o = 0; o < OUT; o++) {
              let s = withBias ? bv[o]! : 0;
              for (let i = 0; i < IN; i++) s += xv[r * IN + i]! * wv[o * IN + i]!;
              out[r * OUT + o] = s;
            }
          return out;
        };
        expectClose(await y.read(), f(xd, wd, bd), 1e-5, 1e-5, 'linear forward');
        const dOut = viaF32(rng.uniform(rows * OUT));
        backwardWith(y, dOut);
        const [dx, dw, db] = refVjp(f, [xd, wd, bd], dOut);
        expectClose(await x.grad!.read(), dx!, 1e-4, 1e-5, 'linear dx');
        expectClose(await w.grad!.read(), dw!, 1e-4, 1e-5, 'linear dw');
        if (b) expectClose(await b.grad!.read(), db!, 1e-4, 1e-5, 'linear db');
      });
    });
});
