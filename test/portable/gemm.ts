// Device-portable checks of the GEMM core (src/wgsl/gemm.ts) through its two users: matmul (plain,
// transposed, batched, broadcast batch, linear) and conv2d (forward, input and weight gradients via
// backward; stride, padding, dilation, odd sizes), forward and backward against float64 references,
// each tiling variant forced in turn ('reg' register tiles, 'wg' workgroup-memory tiles; 'reg' also
// with and without subgroup loads where the device has them); and the fused epilogues (bias per
// column / per channel, relu / silu / gelu, residual, alpha) forward against float64. Output buffers
// are poisoned by the context's pool. Browser-safe; shapes kept tiny (every variant compiles its own
// pipelines). Groups are not supported by conv2d (it says so; checked in test/conv.test.ts).
//
// Letters: M N K of the GEMM; N C H W O KH KW of the convolution.

import type { GpuContext } from '../../src/gpu/context.js';
import { tensor } from '../../src/wgsl/fill.js';
import { matmul, linear, matmulRaw } from '../../src/wgsl/matmul.js';
import { conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, convGeometry, dgradProblem } from '../../src/wgsl/conv2d.js';
import { setGemmVariant, hasSubgroups, regPipelineKey, type GemmActivation, type GemmVariant } from '../../src/wgsl/gemm.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { Rng, assertClose, f32, viaF32, size } from './ref.js';

const VARIANTS: GemmVariant[] = ['reg', 'wg'];

/** Run `fn` with one GEMM variant forced on the context, then restore the automatic choice. */
async function withVariant<T>(ctx: GpuContext, v: GemmVariant, fn: () => Promise<T>): Promise<T> {
  setGemmVariant(ctx, v);
  try {
    return await fn();
  } finally {
    setGemmVariant(ctx, undefined);
  }
}

/** float64 C = op(A)·op(B) with NumPy batch broadcasting; returns the output shape and the function. */
export function refMatmul(sa: readonly number[], sb: readonly number[], transA: boolean, transB: boolean) {
  const ra = sa.length, rb = sb.length;
  const M = sa[transA ? ra - 1 : ra - 2]!, K = sa[transA ? ra - 2 : ra - 1]!;
  const N = sb[transB ? rb - 2 : rb - 1]!;
  const ba = sa.slice(0, -2), bb = sb.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nb; i++) batch.push(Math.max(ba[ba.length - nb + i] ?? 1, bb[bb.length - nb + i] ?? 1));
  const offOf = (bs: number[], coord: number[], mat: number) => {
    let o = 0, st = 1;
    for (let j = bs.length - 1; j >= 0; j--) {
      o += (bs[j] === 1 ? 0 : coord[coord.length - bs.length + j]!) * st;
      st *= bs[j]!;
    }
    return o * mat;
  };
  const nBatch = size(batch);
  const f = (a: Float64Array, b: Float64Array) => {
    const c = new Float64Array(nBatch * M * N);
    for (let z = 0; z < nBatch; z++) {
      const coord: number[] = [];
      let rem = z;
      for (let j = batch.length - 1; j >= 0; j--) {
        coord[j] = rem % batch[j]!;
        rem = Math.floor(rem / batch[j]!);
      }
      const oa = offOf(ba, coord, M * K), ob = offOf(bb, coord, K * N);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a[oa + (transA ? k * M + m : m * K + k)]! * b[ob + (transB ? n * K + k : k * N + n)]!;
          c[z * M * N + m * N + n] = s;
        }
    }
    return c;
  };
  return { shape: [...batch, M, N], M, N, K, f };
}

/** Stored shape of an operand given its batch, logical rows × columns and whether it is transposed. */
export const stored = (batch: readonly number[], r: number, c: number, t: boolean) => [...batch, ...(t ? [c, r] : [r, c])];

/** matmul forward and backward (dA, dB) against float64 through checkOp. */
export function checkMatmul(ctx: GpuContext, rng: Rng, ba: number[], bb: number[], M: number, K: number, N: number, transA: boolean, transB: boolean, tag = '') {
  const sa = stored(ba, M, K, transA), sb = stored(bb, K, N, transB);
  const ref = refMatmul(sa, sb, transA, transB);
  const tol = 2e-6 * Math.max(1, K);
  return checkOp(ctx, rng, {
    what: `matmul${tag} [${sa}]${transA ? 'ᵀ' : ''}·[${sb}]${transB ? 'ᵀ' : ''}`,
    inputs: [{ shape: sa, name: 'a' }, { shape: sb, name: 'b' }],
    op: (a, b) => matmul(a, b, { transA, transB }),
    ref: ref.f,
    outShape: ref.shape,
    tol: [1e-5, tol],
    gradTol: [1e-3, Math.max(1e-4, 4 * tol * (size(ref.shape) / (M * N)))],
  });
}

/** Float64 2-D convolution (NCHW, zero padding) of one geometry. */
export interface ConvCase {
  N: number; C: number; H: number; W: number; O: number;
  K: [number, number]; s: [number, number]; p: [number, number]; d: [number, number];
  bias: boolean;
}
export function refConv(c: ConvCase) {
  const { N, C, H, W, O } = c;
  const [KH, KW] = c.K, [SH, SW] = c.s, [PH, PW] = c.p, [DH, DW] = c.d;
  const OH = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
  const f = (x: Float64Array, w: Float64Array, b?: Float64Array) => {
    const y = new Float64Array(N * O * OH * OW);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            let s = b ? b[o]! : 0;
            for (let ci = 0; ci < C; ci++)
              for (let kh = 0; kh < KH; kh++)
                for (let kw = 0; kw < KW; kw++) {
                  const ih = oh * SH - PH + kh * DH, iw = ow * SW - PW + kw * DW;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  s += x[((n * C + ci) * H + ih) * W + iw]! * w[((o * C + ci) * KH + kh) * KW + kw]!;
                }
            y[((n * O + o) * OH + oh) * OW + ow] = s;
          }
    return y;
  };
  return { OH, OW, f };
}

export const convName = (c: ConvCase) => `N${c.N} C${c.C} ${c.H}x${c.W} O${c.O} k${c.K} s${c.s} p${c.p} d${c.d}${c.bias ? ' +bias' : ''}`;

/** conv2d forward and backward (dx, dw, db) against float64 through checkOp. */
export function checkConv(ctx: GpuContext, rng: Rng, c: ConvCase, tag = '') {
  const ref = refConv(c);
  const inputs = [
    { shape: [c.N, c.C, c.H, c.W], name: 'x' },
    { shape: [c.O, c.C, ...c.K], name: 'w' },
    ...(c.bias ? [{ shape: [c.O], name: 'bias' }] : []),
  ];
  return checkOp(ctx, rng, {
    what: `conv2d${tag} ${convName(c)}`,
    inputs,
    op: (x, w, b) => conv2d(x, w, b, { stride: c.s, padding: c.p, dilation: c.d }),
    ref: (x, w, b) => ref.f(x, w, b),
    outShape: [c.N, c.O, ref.OH, ref.OW],
    tol: [1e-4, 1e-5],
    gradTol: [1e-3, 2e-4],
  });
}

/** Small geometries covering the loaders' edge cases (odd sizes, channel tails, stride phases, dilation). */
export const CONV_CASES: ConvCase[] = [
  { N: 2, C: 3, H: 7, W: 6, O: 5, K: [3, 3], s: [1, 1], p: [1, 1], d: [1, 1], bias: true },
  { N: 1, C: 5, H: 9, W: 8, O: 6, K: [3, 2], s: [2, 1], p: [0, 1], d: [1, 2], bias: false },
  { N: 2, C: 6, H: 5, W: 7, O: 9, K: [1, 1], s: [2, 2], p: [0, 0], d: [1, 1], bias: true },
  { N: 1, C: 4, H: 8, W: 7, O: 4, K: [3, 3], s: [2, 2], p: [2, 2], d: [2, 2], bias: true },
];

const ACTS: Record<GemmActivation, (z: number) => number> = {
  none: (z) => z,
  relu: (z) => Math.max(z, 0),
  silu: (z) => z / (1 + Math.exp(-z)),
  gelu: (z) => 0.5 * z * (1 + erf(z / Math.SQRT2)),
};
/** erf by its Maclaurin series (float64-exact for the |x| < 5 used here; the kernel's is good to 1.5e-7) */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 5) return Math.sign(x);
  let term = ax, s = ax;
  for (let n = 1; n < 200; n++) {
    term *= (-ax * ax) / n;
    const add = term / (2 * n + 1);
    s += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * s;
}

export const GEMM_CHECKS: Check[] = [
  ...VARIANTS.map(
    (v): Check => ({
      name: `gemm ${v}: matmul plain / transposed / odd sizes, forward and backward`,
      run: (ctx, rng) =>
        withVariant(ctx, v, async () => {
          for (const [M, K, N] of [[1, 1, 1], [5, 7, 6], [9, 8, 12], [17, 5, 3]] as const)
            for (const ta of [false, true]) for (const tb of [false, true]) await checkMatmul(ctx, rng, [], [], M, K, N, ta, tb, ` (${v})`);
        }),
    }),
  ),
  ...VARIANTS.map(
    (v): Check => ({
      name: `gemm ${v}: matmul batched and broadcast batch, linear with bias, forward and backward`,
      run: (ctx, rng) =>
        withVariant(ctx, v, async () => {
          await checkMatmul(ctx, rng, [2], [], 3, 5, 4, false, false, ` (${v})`);
          await checkMatmul(ctx, rng, [], [2], 3, 8, 5, true, false, ` (${v})`);
          await checkMatmul(ctx, rng, [2, 1], [1, 3], 3, 4, 6, false, true, ` (${v})`);
          await checkMatmul(ctx, rng, [3], [2, 1], 4, 4, 8, true, true, ` (${v})`);
          const rows = 6, IN = 7, OUT = 5;
          await checkOp(ctx, rng, {
            what: `linear (${v}) x[2,3,${IN}] w[${OUT},${IN}] +bias`,
            inputs: [{ shape: [2, 3, IN], name: 'x' }, { shape: [OUT, IN], name: 'w' }, { shape: [OUT], name: 'bias' }],
            op: (x, w, b) => linear(x, w, b),
            ref: (x, w, b) => {
              const y = new Float64Array(rows * OUT);
              for (let r = 0; r < rows; r++)
                for (let o = 0; o < OUT; o++) {
                  let s = b[o]!;
                  for (let i = 0; i < IN; i++) s += x[r * IN + i]! * w[o * IN + i]!;
                  y[r * OUT + o] = s;
                }
              return y;
            },
            outShape: [2, 3, OUT],
            tol: [1e-5, 1e-5],
          });
        }),
    }),
  ),
  ...VARIANTS.flatMap((v) =>
    [CONV_CASES.slice(0, 2), CONV_CASES.slice(2)].map(
      (cases, part): Check => ({
        name: `gemm ${v}: conv2d forward, input and weight gradients (stride, padding, dilation, odd sizes) ${part + 1}/2`,
        run: (ctx, rng) =>
          withVariant(ctx, v, async () => {
            for (const c of cases) await checkConv(ctx, rng, c, ` (${v})`);
          }),
      }),
    ),
  ),
  {
    name: 'gemm reg: conv2d with and without subgroup loads agree with float64',
    run: async (ctx, rng) => {
      if (!hasSubgroups(ctx)) return; // nothing to compare: the device has no 8-wide subgroups
      for (const c of [CONV_CASES[0]!, CONV_CASES[1]!]) {
        await ctx.scope(async () => {
          const ref = refConv(c);
          const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W)), wd = viaF32(rng.uniform(c.O * c.C * c.K[0] * c.K[1]));
          const x = tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]), w = tensor(ctx, f32(wd), [c.O, c.C, ...c.K]);
          const g = convGeometry(x, w, undefined, { stride: c.s, padding: c.p, dilation: c.d });
          const dyd = viaF32(rng.uniform(c.N * c.O * ref.OH * ref.OW));
          const dy = tensor(ctx, f32(dyd), [c.N, c.O, ref.OH, ref.OW]);
          for (const subgroups of [false, true]) {
            const k = { variant: 'reg' as const, subgroups };
            const y = await conv2dForwardRaw(x, w, undefined, g, k).read();
            assertClose(y, ref.f(xd, wd), 1e-4, 1e-5, `${convName(c)} subgroups=${subgroups} forward`);
            const dx = await conv2dInputGradRaw(dy, w, g, k).read();
            const dw = await conv2dWeightGradRaw(dy, x, g, k).read();
            // <dy, conv(x, w)> = <dx, x> = <dw, w> (adjoint identities, float64)
            const yx = ref.f(xd, wd);
            let s0 = 0, s1 = 0, s2 = 0;
            for (let i = 0; i < yx.length; i++) s0 += yx[i]! * dyd[i]!;
            for (let i = 0; i < xd.length; i++) s1 += dx[i]! * xd[i]!;
            for (let i = 0; i < wd.length; i++) s2 += dw[i]! * wd[i]!;
            assertClose([s1, s2], [s0, s0], 1e-4, 1e-4, `${convName(c)} subgroups=${subgroups} <dx,x> and <dw,w> vs <dy,y>`);
          }
        });
      }
    },
  },
  ...VARIANTS.map(
    (v): Check => ({
      name: `gemm ${v}: matmul fused epilogues (bias per column, relu / silu / gelu, residual, alpha) forward`,
      run: (ctx, rng) =>
        withVariant(ctx, v, () =>
          ctx.scope(async () => {
            // C = act(alpha·A·B + bias[n] + R), odd sizes and a vec4-aligned one (two activations
            // per size: every activation compiles its own pipeline)
            for (const [M, K, N, acts] of [[5, 7, 6, ['relu', 'silu']], [8, 12, 16, ['none', 'gelu']]] as const)
              for (const act of acts) {
                const ad = viaF32(rng.uniform(M * K)), bd = viaF32(rng.uniform(K * N));
                const biasd = viaF32(rng.uniform(N)), rd = viaF32(rng.uniform(M * N));
                const alpha = 0.75;
                const base = refMatmul([M, K], [K, N], false, false).f(ad, bd);
                const want = base.map((z, i) => ACTS[act](alpha * z + biasd[i % N]! + rd[i]!));
                const y = matmulRaw(tensor(ctx, f32(ad), [M, K]), tensor(ctx, f32(bd), [K, N]), {}, {
                  bias: tensor(ctx, f32(biasd), [N]),
                  act,
                  residual: tensor(ctx, f32(rd), [M, N]),
                  alpha,
                });
                assertClose(await y.read(), want, 1e-5, 2e-6 * K, `matmul ${M}x${K}x${N} epilogue ${act} (${v})`);
              }
          }),
        ),
    }),
  ),
  ...VARIANTS.flatMap((v) =>
    ([[CONV_CASES[0]!, 'relu'], [CONV_CASES[2]!, 'gelu']] as const).map(
      ([c, act]): Check => ({
        name: `gemm ${v}: conv2d fused epilogue (bias per channel, ${act}, residual) forward`,
        run: (ctx, rng) =>
          withVariant(ctx, v, () =>
            ctx.scope(async () => {
              // out = act(conv + bias[o] + R)
              const ref = refConv(c);
              const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W)), wd = viaF32(rng.uniform(c.O * c.C * c.K[0] * c.K[1]));
              const biasd = viaF32(rng.uniform(c.O)), rd = viaF32(rng.uniform(c.N * c.O * ref.OH * ref.OW));
              const x = tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]), w = tensor(ctx, f32(wd), [c.O, c.C, ...c.K]);
              const b = tensor(ctx, f32(biasd), [c.O]);
              const g = convGeometry(x, w, b, { stride: c.s, padding: c.p, dilation: c.d });
              const residual = tensor(ctx, f32(rd), [c.N, c.O, ref.OH, ref.OW]);
              const y = conv2dForwardRaw(x, w, b, g, {}, { act, residual });
              const want = ref.f(xd, wd, biasd).map((z, i) => ACTS[act](z + rd[i]!));
              assertClose(await y.read(), want, 1e-4, 1e-5, `conv ${convName(c)} epilogue ${act} (${v})`);
            }),
          ),
      }),
    ),
  ),
  {
    name: 'gemm reg: a conv input gradient whose O needs the k-tail guard gets its own pipeline key (O = 8 vs 9), and is right',
    run: (ctx, rng) =>
      withVariant(ctx, 'reg', () =>
        ctx.scope(async () => {
          // the guard is baked into the WGSL; with it missing from the pipeline key, O = 9 reused O = 8's
          // unguarded kernel when that ran first, and read past w and dy (zeros on lavapipe by luck,
          // garbage on SwiftShader)
          const make = (O: number) => {
            const x = tensor(ctx, f32(viaF32(rng.uniform(2 * 6 * 5 * 7))), [2, 6, 5, 7]);
            const w = tensor(ctx, f32(viaF32(rng.uniform(O * 6))), [O, 6, 1, 1]);
            const g = convGeometry(x, w, undefined, { stride: 2 });
            const dy = tensor(ctx, f32(viaF32(rng.uniform(2 * O * g.OH * g.OW))), [2, O, g.OH, g.OW]);
            return { w, dy, g };
          };
          const p8 = make(8), p9 = make(9);
          const t = { kind: 'reg' as const, tm: 4, tn: 4, wgx: 8, wgy: 1, ku: 4 };
          const key = (q: typeof p8) => regPipelineKey(dgradProblem(q.dy, q.w, tensor(ctx, [0], [1]), q.g, 1, 1), t, {});
          if (key(p8) === key(p9)) throw new Error(`conv input gradients with O = 8 and O = 9 share the pipeline key ${key(p8)}`);
          conv2dInputGradRaw(p8.dy, p8.w, p8.g, { subgroups: false });
          const dx = conv2dInputGradRaw(p9.dy, p9.w, p9.g, { subgroups: false });
          const { g } = p9;
          const [wd, dyd] = [await p9.w.read(), await p9.dy.read()];
          const want = new Float64Array(2 * 6 * 5 * 7);
          for (let n = 0; n < 2; n++)
            for (let c = 0; c < 6; c++)
              for (let oh = 0; oh < g.OH; oh++)
                for (let ow = 0; ow < g.OW; ow++)
                  for (let o = 0; o < 9; o++) want[((n * 6 + c) * 5 + 2 * oh) * 7 + 2 * ow] += wd[o * 6 + c]! * dyd[((n * 9 + o) * g.OH + oh) * g.OW + ow]!;
          assertClose(await dx.read(), want, 1e-5, 1e-5, 'conv dx O = 9, 1x1 stride 2', [2, 6, 5, 7]);
        }),
      ),
  },
  {
    name: 'gemm reg 1x4 (the SwiftShader tile): a transposed A goes through a contiguous copy, batched and not, against float64',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const t = { kind: 'reg' as const, tm: 1, tn: 4, wgx: 8, wgy: 8, ku: 4 };
        for (const [batch, M, K, N, tb] of [[[], 5, 7, 6, false], [[3], 9, 4, 8, true], [[2], 1, 3, 5, false]] as const) {
          const sa = stored([...batch], M, K, true), sb = stored([...batch], K, N, tb);
          const ad = viaF32(rng.uniform(size(sa))), bd = viaF32(rng.uniform(size(sb)));
          const ref = refMatmul(sa, sb, true, tb);
          const y = matmulRaw(tensor(ctx, f32(ad), sa), tensor(ctx, f32(bd), sb), { transA: true, transB: tb }, {}, t);
          assertClose(await y.read(), ref.f(ad, bd), 1e-5, 2e-6 * K, `matmul 1x4 tile [${sa}]ᵀ·[${sb}]${tb ? 'ᵀ' : ''}`, ref.shape);
        }
      }),
  },
  {
    name: "gemm reg f16: matmul and conv forward in f16 against float64 within the f16 rounding bound (f32 fallback without 'shader-f16')",
    run: (ctx, rng) =>
      ctx.scope(async () => {
        // |f16 result - exact| <= (K + 2)·u·Σ_k |a_ik||b_kj| + 1e-6 with u = 2^-11 (operands rounded
        // once, then K fused multiply-adds in f16); without the feature the f32 path must meet it too
        const u = 2 ** -11;
        const has = ctx.features.has('shader-f16');
        const [M, K, N] = [13, 40, 20];
        const ad = viaF32(rng.uniform(M * K)), bd = viaF32(rng.uniform(K * N));
        const ref = refMatmul([M, K], [K, N], false, false);
        const want = ref.f(ad, bd), absSum = ref.f(ad.map(Math.abs), bd.map(Math.abs));
        const t = { kind: 'reg' as const, tm: 4, tn: 4, wgx: 8, wgy: 8, f16: true };
        const y = await matmulRaw(tensor(ctx, f32(ad), [M, K]), tensor(ctx, f32(bd), [K, N]), {}, {}, t).read();
        let diff = 0;
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(y[i]! - want[i]!);
          diff = Math.max(diff, err);
          if (!(err <= (K + 2) * u * absSum[i]! + 1e-6))
            throw new Error(`f16 matmul ${M}x${K}x${N} [${i}]: got ${y[i]}, expected ${want[i]} (bound ${(K + 2) * u * absSum[i]!})`);
        }
        // the f16 path really ran: f32 would agree to ~1e-6 everywhere
        if (has && !(diff > 1e-4)) throw new Error(`f16 matmul agrees with float64 to ${diff}: the f16 path did not run`);
        const c = CONV_CASES[0]!;
        const rc = refConv(c);
        const xd = viaF32(rng.uniform(c.N * c.C * c.H * c.W)), wd = viaF32(rng.uniform(c.O * c.C * c.K[0] * c.K[1]));
        const x = tensor(ctx, f32(xd), [c.N, c.C, c.H, c.W]), w = tensor(ctx, f32(wd), [c.O, c.C, ...c.K]);
        const g = convGeometry(x, w, undefined, { stride: c.s, padding: c.p, dilation: c.d });
        const yc = await conv2dForwardRaw(x, w, undefined, g, { variant: 'reg', f16: true }).read();
        const wantC = rc.f(xd, wd), sumC = rc.f(xd.map(Math.abs), wd.map(Math.abs));
        const Kc = c.C * c.K[0] * c.K[1];
        for (let i = 0; i < wantC.length; i++)
          if (!(Math.abs(yc[i]! - wantC[i]!) <= (Kc + 2) * u * sumC[i]! + 1e-6))
            throw new Error(`f16 conv ${convName(c)} [${i}]: got ${yc[i]}, expected ${wantC[i]} (bound ${(Kc + 2) * u * sumC[i]!})`);
      }),
  },
];
