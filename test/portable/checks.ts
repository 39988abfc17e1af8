// Portable checks of the kernels without a file of their own here: reductions, random fills, matmul /
// linear, conv2d, batch norm (plain training path), optimizers and gradient clipping; forward and
// backward against float64 on fresh seeded inputs through grad.ts's checkOp. Browser-safe. The
// elementwise, shape, gather, softmax, dropout, composite, pooling and norm checks live in their own
// files (see index.ts).

import type { GpuContext } from '../../src/gpu/context.js';
import * as E from '../../src/index.js';
import { randomRef } from '../../src/wgsl/fill.js';
import { Rng, assertClose, assertEqual, distinct, f32, viaF32, size } from './ref.js';
import { checkOp } from './grad.js';
import type { Check } from './harness.js';

export type { Check } from './harness.js';

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

/** Leaf f32 tensor requiring grad, from float64 data rounded through f32 (returned alongside). */
function leaf(ctx: GpuContext, rng: Rng, shape: number[], lo = -1, hi = 1): [E.Tensor, Float64Array] {
  const d = viaF32(rng.uniform(size(shape), lo, hi));
  return [E.requireGrad(E.tensor(ctx, f32(d), shape)), d];
}

/** Give each parameter the gradient G (backward from the parameter itself with output gradient G). */
function setGrads(ctx: GpuContext, params: E.Tensor[], gs: Float64Array[]) {
  ctx.scope(() => params.forEach((p, i) => E.backward(p, E.tensor(ctx, f32(gs[i]!), p.shape))));
}

/** Run `steps` optimizer steps on params with random gradients, against the float64 update. */
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
      setGrads(ctx, params, gs);
      opt.step();
      opt.zeroGrad();
      refP.forEach((p, i) => refStep(p, gs[i]!, refS[i]!, t));
    }
    for (let i = 0; i < params.length; i++) assertClose(await params[i]!.read(), refP[i]!, 2e-5, 2e-6, `${opt.opName} param ${i} ${shapes[i]} (seed ${rng.seed})`);
  } finally {
    opt.dispose();
  }
}

/** Float64 sum over axis 0 and max over axis 1 of a row-major [R, C]. */
const sumRows = (R: number, C: number) => (a: Float64Array) =>
  Float64Array.from({ length: C }, (_, j) => {
    let t = 0;
    for (let i = 0; i < R; i++) t += a[i * C + j]!;
    return t;
  });
const maxCols = (R: number, C: number) => (a: Float64Array) => Float64Array.from({ length: R }, (_, i) => Math.max(...a.slice(i * C, i * C + C)));

export const CHECKS: Check[] = [
  {
    name: 'reduce: sum along axis 0 and max along axis 1 forward/backward, argmax',
    run: async (ctx, rng) => {
      const [R, C] = [5, 9];
      await checkOp(ctx, rng, { what: 'sum axis 0', inputs: [{ shape: [R, C] }], op: (x) => E.sum(x, 0), ref: sumRows(R, C), outShape: [C] });
      // distinct values: no near-ties for the max's central differences
      const r = await checkOp(ctx, rng, {
        what: 'max axis 1',
        inputs: [{ shape: [R, C], values: distinct(rng, R * C) }],
        op: (x) => E.max(x, 1),
        ref: maxCols(R, C),
        outShape: [R],
        tol: [0, 0],
      });
      await ctx.scope(async () => {
        const xd = r.xs[0]!;
        const am = await E.argmax(E.tensor(ctx, f32(xd), [R, C]), 1).read();
        const amRef = Array.from({ length: R }, (_, i) => {
          const row = Array.from(xd.slice(i * C, i * C + C));
          return row.indexOf(Math.max(...row));
        });
        assertEqual(Array.from(am), amRef, `argmax (seed ${rng.seed})`);
      });
    },
  },
  {
    name: 'random: seeded uniform and normal follow the Threefry reference (same counters on every device)',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const seed = rng.u32();
        const g = new E.Generator(seed);
        const n = 1000;
        const u = await E.rand(ctx, [n], g, -2, 3).read();
        const z = await E.randn(ctx, [n], g).read();
        const ref = new E.Generator(seed);
        const su = ref.nextStream(), sz = ref.nextStream();
        assertClose(u, Float64Array.from({ length: n }, (_, i) => randomRef('uniform', ref.k0, ref.k1, su, i, -2, 3)), 1e-6, 1e-6, `uniform (generator seed ${seed})`);
        // log/cos precision differs by device
        assertClose(z, Float64Array.from({ length: n }, (_, i) => randomRef('normal', ref.k0, ref.k1, sz, i, 0, 1)), 1e-3, 1e-4, `normal (generator seed ${seed})`);
      }),
  },
  {
    name: 'matmul: plain and transposed operands, forward/backward',
    run: async (ctx, rng) => {
      const [M, K, N] = [5, 7, 6];
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const)
        await checkOp(ctx, rng, {
          what: `matmul transA=${tA} transB=${tB}`,
          inputs: [
            { shape: tA ? [K, M] : [M, K], name: 'A' },
            { shape: tB ? [N, K] : [K, N], name: 'B' },
          ],
          op: (a, b) => E.matmul(a, b, { transA: tA, transB: tB }),
          ref: (a, b) => refMatmul(a, b, M, K, N, tA, tB),
          outShape: [M, N],
          tol: [1e-5, 1e-5],
          gradTol: [1e-4, 1e-4],
        });
    },
  },
  {
    name: 'matmul: batched with a broadcast matrix, forward/backward',
    run: async (ctx, rng) => {
      const [B, M, K, N] = [3, 2, 5, 3];
      await checkOp(ctx, rng, {
        what: 'batched matmul [B,M,K] x [K,N]',
        inputs: [
          { shape: [B, M, K], name: 'A' },
          { shape: [K, N], name: 'B (summed over the batch)' },
        ],
        op: (a, b) => E.matmul(a, b),
        ref: (a, b) => {
          const out = new Float64Array(B * M * N);
          for (let t = 0; t < B; t++) out.set(refMatmul(a.subarray(t * M * K, (t + 1) * M * K), b, M, K, N, false, false), t * M * N);
          return out;
        },
        outShape: [B, M, N],
        tol: [1e-5, 1e-5],
        gradTol: [1e-4, 1e-4],
      });
    },
  },
  {
    name: 'linear: x wᵀ + bias forward/backward',
    run: async (ctx, rng) => {
      const [N, I, O] = [4, 7, 5];
      await checkOp(ctx, rng, {
        what: 'linear',
        inputs: [
          { shape: [N, I], name: 'x' },
          { shape: [O, I], name: 'weight' },
          { shape: [O], name: 'bias' },
        ],
        op: (x, w, b) => E.linear(x, w, b),
        ref: (x, w, b) => refMatmul(x, w, N, I, O, false, true).map((v, i) => v + b[i % O]!),
        outShape: [N, O],
        tol: [1e-5, 1e-5],
        gradTol: [1e-4, 1e-4],
      });
    },
  },
  {
    name: 'conv2d: stride 2, padding 1, bias, forward/backward',
    run: async (ctx, rng) => {
      const [N, C, H, W, O, K, S, P] = [2, 3, 5, 6, 4, 3, 2, 1];
      await checkOp(ctx, rng, {
        what: 'conv2d',
        inputs: [
          { shape: [N, C, H, W], name: 'x' },
          { shape: [O, C, K, K], name: 'weight' },
          { shape: [O], name: 'bias' },
        ],
        op: (x, w, b) => E.conv2d(x, w, b, { stride: S, padding: P }),
        ref: (x, w, b) => refConv2d(x, w, b, N, C, H, W, O, K, K, S, P),
        tol: [1e-5, 1e-5],
        gradTol: [1e-4, 1e-4],
      });
    },
  },
  {
    name: 'batchNorm2d: training forward/backward (no activation) and running statistics',
    run: async (ctx, rng) => {
      const [N, C, H, W] = [3, 2, 3, 2];
      const eps = 1e-5, momentum = 0.1, M = N * H * W;
      const rmd = viaF32(rng.uniform(C)), rvd = viaF32(rng.uniform(C, 0.5, 2));
      await ctx.scope(async () => {
        const rm = E.tensor(ctx, f32(rmd), [C]), rv = E.tensor(ctx, f32(rvd), [C]);
        const r = await checkOp(ctx, rng, {
          what: 'batchNorm2d',
          inputs: [
            { shape: [N, C, H, W], range: [-2, 2], name: 'x' },
            { shape: [C], range: [0.5, 1.5], name: 'weight' },
            { shape: [C], name: 'bias' },
          ],
          op: (x, w, b) => E.batchNorm2d(x, w, b, rm, rv, { training: true, momentum, eps }),
          ref: (x, w, b) => refBatchNorm(x, w, b, N, C, H * W, eps).y,
          tol: [1e-4, 1e-5],
          gradTol: [1e-3, 1e-4],
        });
        // the backward above must not have touched the running statistics again
        const { mu, va } = refBatchNorm(r.xs[0]!, r.xs[1]!, r.xs[2]!, N, C, H * W, eps);
        assertClose(await rm.read(), rmd.map((v, c) => (1 - momentum) * v + momentum * mu[c]!), 1e-5, 1e-6, `runningMean (seed ${rng.seed})`);
        assertClose(await rv.read(), rvd.map((v, c) => (1 - momentum) * v + (momentum * va[c]! * M) / (M - 1)), 1e-5, 1e-6, `runningVar (seed ${rng.seed})`);
      });
    },
  },
  {
    name: 'optimizers: SGD (momentum, weight decay), Adam, AdamW steps match the float64 formulas',
    run: (ctx, rng) =>
      ctx.scope(async () => {
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
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const [a] = leaf(ctx, rng, [7]);
        const [b] = leaf(ctx, rng, [3, 4]);
        const ga = viaF32(rng.uniform(7)), gb = viaF32(rng.uniform(12));
        setGrads(ctx, [a, b], [ga, gb]);
        const norm = Math.sqrt([...ga, ...gb].reduce((s, v) => s + v * v, 0));
        const maxNorm = norm / 3;
        const total = E.clipGradNorm([a, b], maxNorm);
        assertClose(await total.read(), [norm], 1e-5, 1e-6, `clipGradNorm total (seed ${rng.seed})`);
        const k = maxNorm / (norm + 1e-6);
        assertClose(await a.grad!.read(), ga.map((v) => v * k), 1e-5, 1e-6, 'clipped grad a');
        assertClose(await b.grad!.read(), gb.map((v) => v * k), 1e-5, 1e-6, 'clipped grad b');
        // below the threshold nothing changes
        E.clipGradNorm([a, b], 1e6);
        assertClose(await a.grad!.read(), ga.map((v) => v * k), 1e-5, 1e-6, 'unclipped grad a');
      }),
  },
];
