// Kernel checks that run unchanged on every device: Dawn in Node (test/portable.test.ts) and headless
// Chromium (test/browser.test.ts). One or more per kernel, forward and backward, against float64
// references on fresh random inputs. Browser-safe: no Node or vitest imports.

import type { GpuContext } from '../../src/gpu/context.js';
import * as E from '../../src/index.js';
import { randomRef } from '../../src/wgsl/fill.js';
import { u32ToUnit } from '../../src/util/rng.js';
import { Rng, assertClose, f32, viaF32, refVjp, size, strides } from './ref.js';

export interface Check {
  name: string;
  run: (ctx: GpuContext) => Promise<void>;
}

/** loss = sum(y * dOut) so backward sees dOut as the output gradient */
function backwardWith(y: E.Tensor, dOut: Float64Array) {
  E.backward(E.sum(E.mul(y, E.tensor(y.ctx, f32(dOut), y.shape))));
}

export const CHECKS: Check[] = [
  {
    name: 'elementwise: gelu forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const shape = [3, 7];
        const xd = viaF32(rng.uniform(size(shape), -3, 3));
        const x = E.requireGrad(E.tensor(ctx, f32(xd), shape));
        const y = E.gelu(x);
        const ref = (a: Float64Array) => a.map((v) => E.UNARY.gelu.ref(v));
        assertClose(await y.read(), ref(xd), 2e-5, 2e-6, 'gelu');
        const dOut = rng.uniform(size(shape));
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-3, 1e-4, 'gelu dx');
      }),
  },
  {
    name: 'elementwise: broadcast mul/div forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const ad = viaF32(rng.uniform(15, 0.5, 2));
        const bd = viaF32(rng.uniform(5, 0.5, 2));
        const a = E.requireGrad(E.tensor(ctx, f32(ad), [3, 5]));
        const b = E.requireGrad(E.tensor(ctx, f32(bd), [5]));
        const y = E.div(E.mul(a, b), E.addScalar(b, 1));
        const ref = (p: Float64Array, q: Float64Array) => p.map((v, i) => (v * q[i % 5]!) / (q[i % 5]! + 1));
        assertClose(await y.read(), ref(ad, bd), 2e-5, 2e-6, 'mul/div');
        const dOut = rng.uniform(15);
        backwardWith(y, dOut);
        const [da, db] = refVjp(ref, [ad, bd], viaF32(dOut));
        assertClose(await a.grad!.read(), da!, 1e-3, 1e-4, 'da');
        assertClose(await b.grad!.read(), db!, 1e-3, 1e-4, 'db');
      }),
  },
  {
    name: 'reduce: sum/max along an axis with backward, argmax',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [R, C] = [5, 9];
        const xd = viaF32(rng.uniform(R * C));
        const x = E.requireGrad(E.tensor(ctx, f32(xd), [R, C]));
        const s = E.sum(x, 0);
        const m = E.max(x, 1);
        const sumRef = (a: Float64Array) => Float64Array.from({ length: C }, (_, j) => {
          let t = 0;
          for (let i = 0; i < R; i++) t += a[i * C + j]!;
          return t;
        });
        const maxRef = (a: Float64Array) => Float64Array.from({ length: R }, (_, i) => Math.max(...a.slice(i * C, i * C + C)));
        assertClose(await s.read(), sumRef(xd), 1e-5, 1e-6, 'sum');
        assertClose(await m.read(), maxRef(xd), 0, 0, 'max');
        const am = await E.argmax(x, 1).read();
        const amRef = Array.from({ length: R }, (_, i) => { const row = Array.from(xd.slice(i * C, i * C + C)); return row.indexOf(Math.max(...row)); });
        assertClose(am, amRef, 0, 0, 'argmax');
        const d1 = rng.uniform(C), d2 = rng.uniform(R);
        E.backward(E.add(E.sum(E.mul(s, E.tensor(ctx, f32(d1), [C]))), E.sum(E.mul(m, E.tensor(ctx, f32(d2), [R])))));
        const [g1] = refVjp(sumRef, [xd], viaF32(d1));
        const [g2] = refVjp(maxRef, [xd], viaF32(d2));
        assertClose(await x.grad!.read(), g1!.map((v, i) => v + g2![i]!), 1e-3, 1e-4, 'dx');
      }),
  },
  {
    name: 'random: seeded uniform and normal follow the Threefry reference (same counters on every device)',
    run: (ctx) =>
      ctx.scope(async () => {
        const seed = Math.floor(Math.random() * 1e9);
        const g = new E.Generator(seed);
        const n = 1000;
        const u = await E.rand(ctx, [n], g, -2, 3).read();
        const z = await E.randn(ctx, [n], g).read();
        const ref = new E.Generator(seed);
        const su = ref.nextStream(), sz = ref.nextStream();
        assertClose(u, Float64Array.from({ length: n }, (_, i) => randomRef('uniform', ref.k0, ref.k1, su, i, -2, 3)), 1e-6, 1e-6, 'uniform');
        assertClose(z, Float64Array.from({ length: n }, (_, i) => randomRef('normal', ref.k0, ref.k1, sz, i, 0, 1)), 1e-3, 1e-4, 'normal'); // log/cos precision differs by device
      }),
  },
];

// ------------------------------------------------------------------------------------------------
// One check (at least) per kernel family: tiny shapes, float64 references, fresh random inputs.

/** Leaf f32 tensor requiring grad, from float64 data rounded through f32 (returned alongside). */
function leaf(ctx: GpuContext, rng: Rng, shape: number[], lo = -1, hi = 1): [E.Tensor, Float64Array] {
  const d = viaF32(rng.uniform(size(shape), lo, hi));
  return [E.requireGrad(E.tensor(ctx, f32(d), shape)), d];
}

/** Float64 C = op(A) op(B) for 2-D operands stored row-major ([M,K] or [K,M]; [K,N] or [N,K]). */
function refMatmul(a: Float64Array, b: Float64Array, M: number, K: number, N: number, transA: boolean, transB: boolean) {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[transA ? k * M + i : i * K + k]! * b[transB ? j * K + k : k * N + j]!;
      c[i * N + j] = s;
    }
  return c;
}

/** Row-wise softmax / log-softmax of [R, C] (float64). */
function refSoftmaxRows(x: Float64Array, R: number, C: number, log: boolean) {
  const y = new Float64Array(R * C);
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c]! - m);
    for (let c = 0; c < C; c++) y[r * C + c] = log ? x[r * C + c]! - m - Math.log(s) : Math.exp(x[r * C + c]! - m) / s;
  }
  return y;
}

/** Generic strided gather reference: out[c] = x[sum c_d * st[d] + base] over outShape. */
function refGather(x: Float64Array, outShape: number[], st: number[], base = 0) {
  const n = size(outShape);
  const os = strides(outShape);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let off = base;
    for (let d = 0; d < outShape.length; d++) off += (Math.floor(i / os[d]!) % outShape[d]!) * st[d]!;
    y[i] = x[off]!;
  }
  return y;
}

/** Float64 conv2d, NCHW / OIHW, groups 1. */
function refConv2d(x: Float64Array, w: Float64Array, b: Float64Array, N: number, C: number, H: number, W: number, O: number, KH: number, KW: number, S: number, P: number) {
  const OH = Math.floor((H + 2 * P - KH) / S) + 1, OW = Math.floor((W + 2 * P - KW) / S) + 1;
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b[o]!;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const ih = oh * S - P + kh, iw = ow * S - P + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += x[((n * C + c) * H + ih) * W + iw]! * w[((o * C + c) * KH + kh) * KW + kw]!;
              }
          y[((n * O + o) * OH + oh) * OW + ow] = s;
        }
  return y;
}

/** Float64 max / avg (count_include_pad) pooling of NCHW with a square window. */
function refPool(kind: 'max' | 'avg', x: Float64Array, N: number, C: number, H: number, W: number, K: number, S: number, P: number) {
  const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - K) / S) + 1;
  const y = new Float64Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let acc = kind === 'max' ? -Infinity : 0;
        for (let kh = 0; kh < K; kh++)
          for (let kw = 0; kw < K; kw++) {
            const ih = oh * S - P + kh, iw = ow * S - P + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const v = x[(nc * H + ih) * W + iw]!;
            acc = kind === 'max' ? Math.max(acc, v) : acc + v;
          }
        y[(nc * OH + oh) * OW + ow] = kind === 'max' ? acc : acc / (K * K);
      }
  return y;
}

/** Float64 training-mode batch norm of NCHW: returns y, batch mean and biased batch variance. */
function refBatchNorm(x: Float64Array, w: Float64Array, b: Float64Array, N: number, C: number, HW: number, eps: number) {
  const y = new Float64Array(x.length), mu = new Float64Array(C), va = new Float64Array(C);
  const M = N * HW;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) s += x[(n * C + c) * HW + k]!;
    mu[c] = s / M;
    let v = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) v += (x[(n * C + c) * HW + k]! - mu[c]!) ** 2;
    va[c] = v / M;
    const inv = 1 / Math.sqrt(va[c]! + eps);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        y[i] = (x[i]! - mu[c]!) * inv * w[c]! + b[c]!;
      }
  }
  return { y, mu, va };
}

/** Run `steps` optimizer steps on params with random gradients (grad = G via backward of sum(p*G)). */
async function runOptimizer(
  ctx: GpuContext,
  rng: Rng,
  shapes: number[][],
  make: (params: E.Tensor[]) => E.Optimizer,
  refStep: (p: Float64Array, g: Float64Array, state: Float64Array[], t: number) => void,
  nState: number,
  steps = 3,
) {
  const ps = shapes.map((s) => leaf(ctx, rng, s));
  const params = ps.map(([t]) => t);
  const refP = ps.map(([, d]) => Float64Array.from(d));
  const refS = refP.map((p) => Array.from({ length: nState }, () => new Float64Array(p.length)));
  const opt = make(params);
  try {
    for (let t = 1; t <= steps; t++) {
      const gs = shapes.map((s) => viaF32(rng.uniform(size(s))));
      ctx.scope(() => E.backward(E.add(...(params.map((p, i) => E.sum(E.mul(p, E.tensor(ctx, f32(gs[i]!), p.shape)))) as [E.Tensor, E.Tensor]))));
      opt.step();
      opt.zeroGrad();
      refP.forEach((p, i) => refStep(p, gs[i]!, refS[i]!, t));
    }
    for (let i = 0; i < params.length; i++) assertClose(await params[i]!.read(), refP[i]!, 2e-5, 2e-6, `${opt.opName} param ${i} ${shapes[i]}`);
  } finally {
    opt.dispose();
  }
}

CHECKS.push(
  {
    name: 'matmul: plain and transposed operands, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [M, K, N] = [5, 7, 6];
        for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const [a, ad] = leaf(ctx, rng, tA ? [K, M] : [M, K]);
          const [b, bd] = leaf(ctx, rng, tB ? [N, K] : [K, N]);
          const y = E.matmul(a, b, { transA: tA, transB: tB });
          const ref = (p: Float64Array, q: Float64Array) => refMatmul(p, q, M, K, N, tA, tB);
          const what = `matmul transA=${tA} transB=${tB}`;
          assertClose(await y.read(), ref(ad, bd), 1e-5, 1e-5, what);
          const dOut = rng.uniform(M * N);
          backwardWith(y, dOut);
          const [da, db] = refVjp(ref, [ad, bd], viaF32(dOut));
          assertClose(await a.grad!.read(), da!, 1e-4, 1e-4, `${what} dA`);
          assertClose(await b.grad!.read(), db!, 1e-4, 1e-4, `${what} dB`);
        }
      }),
  },
  {
    name: 'matmul: batched with a broadcast matrix, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [Bt, M, K, N] = [3, 2, 5, 3];
        const [a, ad] = leaf(ctx, rng, [Bt, M, K]);
        const [b, bd] = leaf(ctx, rng, [K, N]);
        const ref = (p: Float64Array, q: Float64Array) => {
          const out = new Float64Array(Bt * M * N);
          for (let t = 0; t < Bt; t++) out.set(refMatmul(p.subarray(t * M * K, (t + 1) * M * K), q, M, K, N, false, false), t * M * N);
          return out;
        };
        const y = E.matmul(a, b);
        assertClose(await y.read(), ref(ad, bd), 1e-5, 1e-5, 'batched matmul');
        const dOut = rng.uniform(Bt * M * N);
        backwardWith(y, dOut);
        const [da, db] = refVjp(ref, [ad, bd], viaF32(dOut));
        assertClose(await a.grad!.read(), da!, 1e-4, 1e-4, 'batched dA');
        assertClose(await b.grad!.read(), db!, 1e-4, 1e-4, 'batched dB (summed over the batch)');
      }),
  },
  {
    name: 'linear: x wᵀ + bias forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [N, I, O] = [4, 7, 5];
        const [x, xd] = leaf(ctx, rng, [N, I]);
        const [w, wd] = leaf(ctx, rng, [O, I]);
        const [b, bd] = leaf(ctx, rng, [O]);
        const ref = (p: Float64Array, q: Float64Array, r: Float64Array) => refMatmul(p, q, N, I, O, false, true).map((v, i) => v + r[i % O]!);
        const y = E.linear(x, w, b);
        assertClose(await y.read(), ref(xd, wd, bd), 1e-5, 1e-5, 'linear');
        const dOut = rng.uniform(N * O);
        backwardWith(y, dOut);
        const [dx, dw, db] = refVjp(ref, [xd, wd, bd], viaF32(dOut));
        assertClose(await x.grad!.read(), dx!, 1e-4, 1e-4, 'linear dx');
        assertClose(await w.grad!.read(), dw!, 1e-4, 1e-4, 'linear dw');
        assertClose(await b.grad!.read(), db!, 1e-4, 1e-4, 'linear dbias');
      }),
  },
  {
    name: 'softmax / logSoftmax: forward/backward along the last axis and axis 0',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [R, C] = [3, 7];
        for (const log of [false, true]) {
          const [x, xd] = leaf(ctx, rng, [R, C], -4, 4);
          const ref = (p: Float64Array) => refSoftmaxRows(p, R, C, log);
          const y = log ? E.logSoftmax(x) : E.softmax(x);
          const what = log ? 'logSoftmax' : 'softmax';
          assertClose(await y.read(), ref(xd), 1e-5, 1e-6, what);
          const dOut = rng.uniform(R * C);
          backwardWith(y, dOut);
          assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-3, 1e-5, `${what} dx`);
        }
        // axis 0 of [C, R] is the rows reference on the transpose
        const [x, xd] = leaf(ctx, rng, [C, R], -4, 4);
        const tr = (p: Float64Array, r: number, c: number) => refGather(p, [c, r], [1, c]);
        const ref = (p: Float64Array) => tr(refSoftmaxRows(tr(p, C, R), R, C, false), R, C);
        const y = E.softmax(x, 0);
        assertClose(await y.read(), ref(xd), 1e-5, 1e-6, 'softmax axis 0');
        const dOut = rng.uniform(R * C);
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-3, 1e-5, 'softmax axis 0 dx');
      }),
  },
  {
    name: 'crossEntropy: per-sample loss with and without label smoothing, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [N, C] = [5, 4];
        for (const eps of [0, 0.1]) {
          const [x, xd] = leaf(ctx, rng, [N, C], -3, 3);
          const labels = rng.int(N, C);
          const ref = (p: Float64Array) => {
            const ls = refSoftmaxRows(p, N, C, true);
            return Float64Array.from({ length: N }, (_, n) => {
              let s = 0;
              for (let c = 0; c < C; c++) s -= ((c === labels[n] ? 1 - eps : 0) + eps / C) * ls[n * C + c]!;
              return s;
            });
          };
          const y = E.crossEntropy(x, E.labelsTensor(ctx, labels, C), { labelSmoothing: eps });
          assertClose(await y.read(), ref(xd), 1e-5, 1e-5, `crossEntropy eps=${eps}`);
          const dOut = rng.uniform(N);
          backwardWith(y, dOut);
          assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-3, 1e-5, `crossEntropy eps=${eps} dlogits`);
        }
      }),
  },
  {
    name: 'indexSelect / scatterAdd: repeated indices, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [A, D, K] = [5, 3, 6];
        const idx = rng.int(K, A);
        idx[1] = idx[0]!; // at least one repeat
        const index = E.indexTensor(ctx, idx, A);
        // indexSelect along axis 0 of [A, D]
        const [x, xd] = leaf(ctx, rng, [A, D]);
        const selRef = (p: Float64Array) => Float64Array.from({ length: K * D }, (_, i) => p[idx[Math.floor(i / D)]! * D + (i % D)]!);
        const y = E.indexSelect(x, 0, index);
        assertClose(await y.read(), selRef(xd), 0, 0, 'indexSelect');
        const dOut = rng.uniform(K * D);
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), refVjp(selRef, [xd], viaF32(dOut))[0]!, 1e-5, 1e-5, 'indexSelect dx');
        // scatterAdd along axis 1 of [D, A]: target [D, A], src [D, K]
        const [t, td] = leaf(ctx, rng, [D, A]);
        const [s, sd] = leaf(ctx, rng, [D, K]);
        const addRef = (p: Float64Array, q: Float64Array) => {
          const out = Float64Array.from(p);
          for (let d = 0; d < D; d++) for (let k = 0; k < K; k++) out[d * A + idx[k]!] += q[d * K + k]!;
          return out;
        };
        const z = E.scatterAdd(t, 1, index, s);
        assertClose(await z.read(), addRef(td, sd), 1e-6, 1e-6, 'scatterAdd');
        const dZ = rng.uniform(D * A);
        backwardWith(z, dZ);
        const [dt, ds] = refVjp(addRef, [td, sd], viaF32(dZ));
        assertClose(await t.grad!.read(), dt!, 1e-5, 1e-5, 'scatterAdd dtarget');
        assertClose(await s.grad!.read(), ds!, 1e-5, 1e-5, 'scatterAdd dsrc');
      }),
  },
  {
    name: 'permute: 3-D permutation forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const shape = [2, 3, 5];
        const dims = [2, 0, 1];
        const [x, xd] = leaf(ctx, rng, shape);
        const st = strides(shape);
        const ref = (p: Float64Array) => refGather(p, dims.map((d) => shape[d]!), dims.map((d) => st[d]!));
        const y = E.permute(x, dims);
        assertClose(await y.read(), ref(xd), 0, 0, 'permute');
        const dOut = rng.uniform(size(shape));
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-5, 1e-5, 'permute dx');
      }),
  },
  {
    name: 'slice (stepped) / pad / concat: forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [R, C] = [5, 7];
        // slice rows 1..4, every second column
        const [x, xd] = leaf(ctx, rng, [R, C]);
        const sliceRef = (p: Float64Array) => refGather(p, [3, 4], [C * 1, 2], 1 * C + 0);
        const s = E.slice(x, [1, 0], [4, C], [1, 2]);
        assertClose(await s.read(), sliceRef(xd), 0, 0, 'slice');
        // pad [[1, 2], [0, 1]] with 0.5
        const padRef = (p: Float64Array) => {
          const out = new Float64Array((R + 3) * (C + 1)).fill(0.5);
          for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[(r + 1) * (C + 1) + c] = p[r * C + c]!;
          return out;
        };
        const pd = E.pad(x, [[1, 2], [0, 1]], 0.5);
        assertClose(await pd.read(), padRef(xd), 0, 0, 'pad');
        // concat [x, y] along axis 1 with y [R, 2]
        const [y, yd] = leaf(ctx, rng, [R, 2]);
        const catRef = (p: Float64Array, q: Float64Array) => {
          const out = new Float64Array(R * (C + 2));
          for (let r = 0; r < R; r++) {
            for (let c = 0; c < C; c++) out[r * (C + 2) + c] = p[r * C + c]!;
            for (let c = 0; c < 2; c++) out[r * (C + 2) + C + c] = q[r * 2 + c]!;
          }
          return out;
        };
        const cat = E.concat([x, y], 1);
        assertClose(await cat.read(), catRef(xd, yd), 0, 0, 'concat');
        const d1 = rng.uniform(12), d2 = rng.uniform((R + 3) * (C + 1)), d3 = rng.uniform(R * (C + 2));
        E.backward(E.add(E.add(
          E.sum(E.mul(s, E.tensor(ctx, f32(d1), [3, 4]))),
          E.sum(E.mul(pd, E.tensor(ctx, f32(d2), [R + 3, C + 1])))),
          E.sum(E.mul(cat, E.tensor(ctx, f32(d3), [R, C + 2])))));
        const gS = refVjp(sliceRef, [xd], viaF32(d1))[0]!;
        const gP = refVjp(padRef, [xd], viaF32(d2))[0]!;
        const [gC, gY] = refVjp(catRef, [xd, yd], viaF32(d3));
        assertClose(await x.grad!.read(), gS.map((v, i) => v + gP[i]! + gC![i]!), 1e-5, 1e-5, 'slice+pad+concat dx');
        assertClose(await y.grad!.read(), gY!, 1e-5, 1e-5, 'concat dy');
      }),
  },
  {
    name: 'dropout: mask rebuilt from (seed, stream) on the CPU, reproducible, backward uses the same mask',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const n = 203, p = 0.3;
        const seed = Math.floor(Math.random() * 1e9);
        const [x, xd] = leaf(ctx, rng, [n], 0.5, 2);
        const gen = new E.Generator(seed);
        const ref = new E.Generator(seed);
        const stream = ref.nextStream();
        const keep = Math.fround(1 - p), scale = Math.fround(1 / keep);
        const mask = Float64Array.from({ length: n }, (_, i) => (u32ToUnit(E.threefry2x32(ref.k0, ref.k1, i, stream)[0]) < keep ? 1 : 0));
        const y = E.dropout(x, p, gen, true);
        assertClose(await y.read(), xd.map((v, i) => v * mask[i]! * scale), 1e-6, 0, 'dropout');
        const y2 = E.dropout(x, p, new E.Generator(seed), true);
        assertClose(await y2.read(), await y.read(), 0, 0, 'dropout with the same seed');
        const kept = mask.reduce((s, v) => s + v, 0);
        if (kept === 0 || kept === n) throw new Error(`dropout kept ${kept} of ${n}`);
        const dOut = viaF32(rng.uniform(n));
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), dOut.map((g, i) => g * mask[i]! * scale), 1e-6, 1e-7, 'dropout dx');
      }),
  },
  {
    name: 'conv2d: stride 2, padding 1, bias, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [N, C, H, W, O, K, S, P] = [2, 3, 5, 6, 4, 3, 2, 1];
        const [x, xd] = leaf(ctx, rng, [N, C, H, W]);
        const [w, wd] = leaf(ctx, rng, [O, C, K, K]);
        const [b, bd] = leaf(ctx, rng, [O]);
        const ref = (p: Float64Array, q: Float64Array, r: Float64Array) => refConv2d(p, q, r, N, C, H, W, O, K, K, S, P);
        const y = E.conv2d(x, w, b, { stride: S, padding: P });
        const yRef = ref(xd, wd, bd);
        assertClose(await y.read(), yRef, 1e-5, 1e-5, 'conv2d');
        const dOut = rng.uniform(yRef.length);
        backwardWith(y, dOut);
        const [dx, dw, db] = refVjp(ref, [xd, wd, bd], viaF32(dOut));
        assertClose(await x.grad!.read(), dx!, 1e-4, 1e-4, 'conv2d dx');
        assertClose(await w.grad!.read(), dw!, 1e-4, 1e-4, 'conv2d dw');
        assertClose(await b.grad!.read(), db!, 1e-4, 1e-4, 'conv2d dbias');
      }),
  },
  {
    name: 'batchNorm2d: training forward/backward and running statistics',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [N, C, H, W] = [3, 2, 3, 2];
        const eps = 1e-5, momentum = 0.1, M = N * H * W;
        const [x, xd] = leaf(ctx, rng, [N, C, H, W], -2, 2);
        const [w, wd] = leaf(ctx, rng, [C], 0.5, 1.5);
        const [b, bd] = leaf(ctx, rng, [C]);
        const rmd = viaF32(rng.uniform(C)), rvd = viaF32(rng.uniform(C, 0.5, 2));
        const rm = E.tensor(ctx, f32(rmd), [C]), rv = E.tensor(ctx, f32(rvd), [C]);
        const y = E.batchNorm2d(x, w, b, rm, rv, { training: true, momentum, eps });
        const ref = (p: Float64Array, q: Float64Array, r: Float64Array) => refBatchNorm(p, q, r, N, C, H * W, eps).y;
        const { y: yRef, mu, va } = refBatchNorm(xd, wd, bd, N, C, H * W, eps);
        assertClose(await y.read(), yRef, 1e-4, 1e-5, 'batchNorm2d');
        assertClose(await rm.read(), rmd.map((v, c) => (1 - momentum) * v + momentum * mu[c]!), 1e-5, 1e-6, 'runningMean');
        assertClose(await rv.read(), rvd.map((v, c) => (1 - momentum) * v + momentum * va[c]! * M / (M - 1)), 1e-5, 1e-6, 'runningVar');
        const dOut = rng.uniform(yRef.length);
        backwardWith(y, dOut);
        const [dx, dw, db] = refVjp(ref, [xd, wd, bd], viaF32(dOut));
        assertClose(await x.grad!.read(), dx!, 1e-3, 1e-4, 'batchNorm2d dx');
        assertClose(await w.grad!.read(), dw!, 1e-3, 1e-4, 'batchNorm2d dweight');
        assertClose(await b.grad!.read(), db!, 1e-3, 1e-4, 'batchNorm2d dbias');
      }),
  },
  {
    name: 'maxPool2d / avgPool2d: kernel 3, stride 2, padding 1, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [N, C, H, W, K, S, P] = [2, 2, 5, 6, 3, 2, 1];
        for (const kind of ['max', 'avg'] as const) {
          const [x, xd] = leaf(ctx, rng, [N, C, H, W]);
          const ref = (p: Float64Array) => refPool(kind, p, N, C, H, W, K, S, P);
          const y = kind === 'max' ? E.maxPool2d(x, K, S, P) : E.avgPool2d(x, K, S, P);
          const yRef = ref(xd);
          assertClose(await y.read(), yRef, 1e-6, 1e-6, `${kind}Pool2d`);
          const dOut = rng.uniform(yRef.length);
          backwardWith(y, dOut);
          // random inputs have no ties, so central differences give the max's routing
          assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-4, 1e-5, `${kind}Pool2d dx`);
        }
      }),
  },
  {
    name: 'optimizers: SGD (momentum, weight decay), Adam, AdamW steps match the float64 formulas',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const shapes = [[13], [4, 4]]; // an odd size (scalar path) and a multiple of 4 (vec4 path)
        const lr = 0.05, wd = 0.01, mom = 0.9;
        await runOptimizer(ctx, rng, shapes, (ps) => new E.SGD(ps, { lr }), (p, g) => p.forEach((v, i) => (p[i] = v - lr * g[i]!)), 0);
        await runOptimizer(ctx, rng, shapes, (ps) => new E.SGD(ps, { lr, momentum: mom, weightDecay: wd }), (p, g, [buf], t) => {
          for (let i = 0; i < p.length; i++) {
            const gi = g[i]! + wd * p[i]!;
            buf![i] = t === 1 ? gi : mom * buf![i]! + gi;
            p[i] = p[i]! - lr * buf![i]!;
          }
        }, 1);
        const [b1, b2, eps] = [0.9, 0.999, 1e-8];
        const adamRef = (decoupled: boolean) => (p: Float64Array, g: Float64Array, [m, v]: Float64Array[], t: number) => {
          for (let i = 0; i < p.length; i++) {
            let gi = g[i]!;
            if (decoupled) p[i] = p[i]! * (1 - lr * wd);
            else gi += wd * p[i]!;
            m![i] = b1 * m![i]! + (1 - b1) * gi;
            v![i] = b2 * v![i]! + (1 - b2) * gi * gi;
            const mh = m![i]! / (1 - b1 ** t), vh = v![i]! / (1 - b2 ** t);
            p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + eps);
          }
        };
        await runOptimizer(ctx, rng, shapes, (ps) => new E.Adam(ps, { lr, weightDecay: wd }), adamRef(false), 2);
        await runOptimizer(ctx, rng, shapes, (ps) => new E.AdamW(ps, { lr, weightDecay: wd }), adamRef(true), 2);
      }),
  },
  {
    name: 'clipGradNorm: total 2-norm and in-place scaling of every gradient',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [a] = leaf(ctx, rng, [7]);
        const [b] = leaf(ctx, rng, [3, 4]);
        const ga = viaF32(rng.uniform(7)), gb = viaF32(rng.uniform(12));
        E.backward(E.add(E.sum(E.mul(a, E.tensor(ctx, f32(ga), [7]))), E.sum(E.mul(b, E.tensor(ctx, f32(gb), [3, 4])))));
        const norm = Math.sqrt([...ga, ...gb].reduce((s, v) => s + v * v, 0));
        const maxNorm = norm / 3;
        const total = E.clipGradNorm([a, b], maxNorm);
        assertClose(await total.read(), [norm], 1e-5, 1e-6, 'clipGradNorm total');
        const k = maxNorm / (norm + 1e-6);
        assertClose(await a.grad!.read(), ga.map((v) => v * k), 1e-5, 1e-6, 'clipped grad a');
        assertClose(await b.grad!.read(), gb.map((v) => v * k), 1e-5, 1e-6, 'clipped grad b');
        // below the threshold nothing changes
        E.clipGradNorm([a, b], 1e6);
        assertClose(await a.grad!.read(), ga.map((v) => v * k), 1e-5, 1e-6, 'unclipped grad a');
      }),
  },
);
