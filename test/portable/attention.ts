// Portable checks of attention (src/ops/attention.ts dispatching to the fused kernels of
// src/wgsl/attention.ts): forward and every gradient (q, k, v, bias reduced over its broadcast dims)
// against a float64 reference with an exact backward, and against the composed path on the same
// inputs: plain, full / broadcast bias, Swin's grouped mask, causal, dropout (mask rebuilt from the
// generator's stream on the CPU, and the composed path with an identically seeded generator), odd L
// and S across the workgroups, D != E, Swin's 49-token window with head dim 32, forced register tilings
// (rows per invocation and per step that do not divide L or S), which implementation 'auto' picks. The float64
// reference's own backward is checked against central differences. Bad input. Not here: timing and
// memory (bench/attention.ts).

import type { GpuContext } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import { tensor } from '../../src/wgsl/fill.js';
import { randomRef } from '../../src/wgsl/fill.js';
import { requireGrad } from '../../src/autograd/graph.js';
import { attention, attentionComposed, FUSED_NARROW_HEAD, FUSED_NARROW_MIN_SCORES, type AttentionOptions, type AttentionShape } from '../../src/ops/attention.js';
import { MAX_SEQUENCE, setAttentionTiling, attentionTiling, type AttentionTiling } from '../../src/wgsl/attention.js';
import { Generator } from '../../src/util/rng.js';
import type { Check } from './harness.js';
import { checkOp, type InputSpec } from './grad.js';
import { Rng, assertClose, assertEqual, assertThrows, refVjp, size } from './ref.js';

export interface AttnCase extends AttentionShape {
  bias?: number[];
  /** mask groups G (mask [G, L, S], entries 0 or -100 like Swin's) */
  maskGroups?: number;
  causal?: boolean;
  dropout?: number;
  scale?: number;
}

/** Multiplier of probability (b, h, i, j) after dropout, from the generator's bits (null: none). */
type DropFn = ((flat: number) => number) | null;

/**
 * float64 attention forward and its exact vector-Jacobian product. Inputs row-major: q [B,H,L,D],
 * k [B,H,S,D], v [B,H,S,E], bias (broadcast shape c.bias), mask [G,L,S].
 */
export function attentionRef(
  c: AttnCase,
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  bias: Float64Array | null,
  mask: Float64Array | null,
  drop: DropFn,
  dO?: Float64Array,
): { O: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array; dbias: Float64Array | null } {
  const { B, H, L, S, D, E } = c;
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const bs = c.bias ?? [1, 1, 1, 1];
  const bst = bs.map((n, d) => (n === 1 ? 0 : bs.slice(d + 1).reduce((x, y) => x * y, 1)));
  const G = c.maskGroups ?? 1;
  const O = new Float64Array(B * H * L * E);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dbias = bias ? new Float64Array(bias.length) : null;
  const s = new Float64Array(S);
  const p = new Float64Array(S);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < L; i++) {
        let m = -Infinity;
        for (let j = 0; j < S; j++) {
          if (c.causal && j > i + S - L) {
            s[j] = -Infinity;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(bh * L + i) * D + d]! * k[(bh * S + j) * D + d]!;
          s[j] = dot * scale;
          if (bias) s[j] += bias[b * bst[0]! + h * bst[1]! + i * bst[2]! + j * bst[3]!]!;
          if (mask) s[j] += mask[((b % G) * L + i) * S + j]!;
          m = Math.max(m, s[j]!);
        }
        let z = 0;
        for (let j = 0; j < S; j++) z += p[j] = Math.exp(s[j]! - m);
        const flat = (j: number) => (bh * L + i) * S + j;
        const dm = (j: number) => (drop ? drop(flat(j)) : 1);
        for (let j = 0; j < S; j++) {
          p[j]! /= z;
          const pt = p[j]! * dm(j);
          for (let e = 0; e < E; e++) O[(bh * L + i) * E + e]! += pt * v[(bh * S + j) * E + e]!;
        }
        if (!dO) continue;
        // dPt_ij = dO_i . v_j, dP = dPt * drop, dS = P (dP - sum_j P dP)
        const dP = new Float64Array(S);
        let Di = 0;
        for (let j = 0; j < S; j++) {
          let t = 0;
          for (let e = 0; e < E; e++) {
            t += dO[(bh * L + i) * E + e]! * v[(bh * S + j) * E + e]!;
            dv[(bh * S + j) * E + e]! += p[j]! * dm(j) * dO[(bh * L + i) * E + e]!;
          }
          dP[j] = t * dm(j);
          Di += p[j]! * dP[j]!;
        }
        for (let j = 0; j < S; j++) {
          const ds = p[j]! * (dP[j]! - Di);
          if (ds === 0) continue;
          for (let d = 0; d < D; d++) {
            dq[(bh * L + i) * D + d]! += scale * ds * k[(bh * S + j) * D + d]!;
            dk[(bh * S + j) * D + d]! += scale * ds * q[(bh * L + i) * D + d]!;
          }
          if (dbias) dbias[b * bst[0]! + h * bst[1]! + i * bst[2]! + j * bst[3]!]! += ds;
        }
      }
    }
  return { O, dq, dk, dv, dbias };
}

/** Swin-like additive mask: 0 or -100 per entry, never a whole row masked. */
function maskValues(rng: Rng, G: number, L: number, S: number): Float64Array {
  const m = Float64Array.from(rng.uniform(G * L * S), (u) => (u < 0.3 ? -100 : 0));
  for (let r = 0; r < G * L; r++) m[r * S + (r % S)] = 0;
  return m;
}

const describe = (c: AttnCase) =>
  `attention B${c.B} H${c.H} L${c.L} S${c.S} D${c.D} E${c.E}` +
  (c.bias ? ` bias [${c.bias}]` : '') +
  (c.maskGroups ? ` mask G${c.maskGroups}` : '') +
  (c.causal ? ' causal' : '') +
  (c.dropout ? ` dropout ${c.dropout}` : '') +
  (c.scale !== undefined ? ` scale ${c.scale}` : '');

/** Check one case: fused vs float64 forward/backward and vs the composed path. */
export async function checkAttentionCase(ctx: GpuContext, rng: Rng, c: AttnCase): Promise<void> {
  const { B, H, L, S, D, E } = c;
  const inputs: InputSpec[] = [
    { shape: [B, H, L, D], name: 'q' },
    { shape: [B, H, S, D], name: 'k' },
    { shape: [B, H, S, E], name: 'v' },
  ];
  if (c.bias) inputs.push({ shape: c.bias, name: 'bias', range: [-0.5, 0.5] });
  if (c.maskGroups) inputs.push({ shape: [c.maskGroups, L, S], name: 'mask', grad: false, values: maskValues(rng, c.maskGroups, L, S) });
  const seed = rng.u32();
  const gen = new Generator(seed);
  const genComposed = new Generator(seed);
  const stream = gen.state().stream;
  let drop: DropFn = null;
  if (c.dropout) {
    const keep = Math.fround(1 - c.dropout);
    const inv = Math.fround(1 / keep);
    drop = (flat) => randomRef('bernoulli', gen.k0, gen.k1, stream, flat, keep, 0) * inv;
  }
  const split = (xs: Float64Array[]) => {
    let n = 3;
    const bias = c.bias ? xs[n++]! : null;
    const mask = c.maskGroups ? xs[n++]! : null;
    return { bias, mask };
  };
  const opts = (ts: Tensor[], g: Generator): AttentionOptions => {
    let n = 3;
    return {
      bias: c.bias ? ts[n++] : undefined,
      mask: c.maskGroups ? ts[n++] : undefined,
      causal: c.causal,
      dropout: c.dropout,
      training: true,
      generator: g,
      scale: c.scale,
      impl: 'fused',
    };
  };
  const what = describe(c);
  await checkOp(ctx, rng, {
    what,
    inputs,
    op: (...ts) => {
      const y = attention(ts[0]!, ts[1]!, ts[2]!, opts(ts, gen));
      // the fused kernel, not the composed fallback, produced it
      assertEqual(y.node?.op, 'attention', `${what}: op recorded`);
      return y;
    },
    ref: (...xs) => {
      const { bias, mask } = split(xs);
      return attentionRef(c, xs[0]!, xs[1]!, xs[2]!, bias, mask, drop).O;
    },
    vjp: (xs, dOut) => {
      const { bias, mask } = split(xs);
      const r = attentionRef(c, xs[0]!, xs[1]!, xs[2]!, bias, mask, drop, dOut);
      return [r.dq, r.dk, r.dv, ...(c.bias ? [r.dbias] : []), ...(c.maskGroups ? [null] : [])];
    },
    outShape: [B, H, L, E],
    tol: [2e-5, 2e-6],
    gradTol: [2e-4, 2e-5],
    composite: { op: (...ts) => attentionComposed(ts[0]!, ts[1]!, ts[2]!, opts(ts, genComposed)), tol: [2e-5, 2e-6], gradTol: [2e-4, 2e-5] },
  });
  if (c.dropout) assertEqual([gen.state().stream, genComposed.state().stream], [stream + 1, stream + 1], `${what}: streams used`);
}

/** Tilings forced in their own checks, each with a case whose L and S leave partial rows and steps. */
const TILING_CASES: [AttentionTiling, AttnCase][] = [
  [{ R: 2, C: 3 }, { B: 2, H: 2, L: 13, S: 11, D: 5, E: 6, bias: [1, 2, 13, 11], maskGroups: 2, dropout: 0.3 }],
  [{ R: 3, C: 1 }, { B: 1, H: 2, L: 10, S: 17, D: 4, E: 4, causal: true }],
  [{ R: 4, C: 1 }, { B: 2, H: 2, L: 23, S: 23, D: 8, E: 8, bias: [1, 2, 23, 23], maskGroups: 2 }],
  [{ R: 4, C: 4 }, { B: 2, H: 1, L: 9, S: 21, D: 3, E: 2, causal: true, bias: [2, 1, 9, 21] }],
  [{ R: 1, C: 3 }, { B: 1, H: 1, L: 70, S: 7, D: 2, E: 3, maskGroups: 1 }],
];

export const ATTENTION_CHECKS: Check[] = [
  {
    name: 'attention reference: its exact backward equals central differences (bias, mask, causal, dropout)',
    run: async (_ctx, rng) => {
      const c: AttnCase = { B: 2, H: 2, L: 3, S: 4, D: 3, E: 2, bias: [1, 2, 3, 4], maskGroups: 2, causal: true, dropout: 0.4 };
      const n = (shape: number[]) => rng.uniform(size(shape));
      const q = n([2, 2, 3, 3]), k = n([2, 2, 4, 3]), v = n([2, 2, 4, 2]), bias = n([1, 2, 3, 4]);
      const mask = maskValues(rng, 2, 3, 4);
      const bits = Float64Array.from(rng.uniform(2 * 2 * 3 * 4), (u) => (u < 0.4 ? 0 : 1 / 0.6));
      const drop = (f: number) => bits[f]!;
      const dO = rng.uniform(2 * 2 * 3 * 2);
      const exact = attentionRef(c, q, k, v, bias, mask, drop, dO);
      const fd = refVjp((a, b, d, e) => attentionRef(c, a, b, d, e, mask, drop).O, [q, k, v, bias], dO);
      ['dq', 'dk', 'dv', 'dbias'].forEach((name, t) =>
        assertClose(exact[name as 'dq']!, fd[t]!, 1e-6, 1e-8, `reference ${name} vs central differences`),
      );
    },
  },
  {
    name: 'attention: fused forward/backward vs float64 and composed: plain, odd sizes across tiles, D != E, scale',
    run: async (ctx, rng) => {
      await checkAttentionCase(ctx, rng, { B: 2, H: 2, L: 5, S: 7, D: 4, E: 3 });
      await checkAttentionCase(ctx, rng, { B: 1, H: 2, L: 37, S: 70, D: 16, E: 8, scale: 0.3 });
      await checkAttentionCase(ctx, rng, { B: 1, H: 1, L: 1, S: 1, D: 1, E: 1 });
    },
  },
  {
    name: 'attention: bias (full, [1,H,L,S] relative-position style, [B,1,1,S]) with its reduced gradient, grouped mask',
    run: async (ctx, rng) => {
      await checkAttentionCase(ctx, rng, { B: 2, H: 3, L: 6, S: 5, D: 8, E: 8, bias: [2, 3, 6, 5] });
      await checkAttentionCase(ctx, rng, { B: 4, H: 2, L: 9, S: 9, D: 8, E: 4, bias: [1, 2, 9, 9], maskGroups: 2 });
      await checkAttentionCase(ctx, rng, { B: 3, H: 2, L: 4, S: 33, D: 5, E: 6, bias: [3, 1, 1, 33] });
      await checkAttentionCase(ctx, rng, { B: 6, H: 1, L: 4, S: 4, D: 4, E: 4, maskGroups: 3 });
    },
  },
  {
    name: 'attention: causal (S = L and S > L, across the 32-row tiles) and dropout (mask from the generator, same as composed)',
    run: async (ctx, rng) => {
      await checkAttentionCase(ctx, rng, { B: 1, H: 2, L: 37, S: 37, D: 8, E: 8, causal: true });
      await checkAttentionCase(ctx, rng, { B: 2, H: 1, L: 5, S: 41, D: 4, E: 4, causal: true, bias: [1, 1, 5, 41] });
      await checkAttentionCase(ctx, rng, { B: 2, H: 2, L: 11, S: 35, D: 8, E: 5, dropout: 0.3 });
      await checkAttentionCase(ctx, rng, { B: 2, H: 2, L: 9, S: 9, D: 4, E: 4, dropout: 0.5, causal: true, bias: [1, 2, 9, 9], maskGroups: 2 });
    },
  },
  {
    name: 'attention: Swin window shape (49 tokens, head dim 32, relative bias [1,H,49,49], shifted-window mask)',
    run: async (ctx, rng) => {
      // one row per invocation: the default four-row kernels for D = 32 take lavapipe minutes to
      // compile on a machine without a shader cache (the four-row code is checked at small widths
      // above and below; bench/attention.ts checks the default at this shape against composed)
      const t = { R: 1, C: 1 };
      setAttentionTiling({ fwd: t, dq: t, dkv: t });
      try {
        await checkAttentionCase(ctx, rng, { B: 4, H: 3, L: 49, S: 49, D: 32, E: 32, bias: [1, 3, 49, 49], maskGroups: 2 });
      } finally {
        setAttentionTiling(null);
      }
    },
  },
  {
    name: "attention: without gradients 'auto' takes the fused kernel (one dispatch) for narrow heads from FUSED_NARROW_MIN_SCORES scores; composed below, for wider heads and when recording gradients",
    run: (ctx) =>
      ctx.scope(async () => {
        const t = (shape: number[]) => requireGrad(tensor(ctx, new Float32Array(size(shape)).fill(0.5), shape));
        const dispatches = (fn: () => Tensor) => {
          const d0 = ctx.stats().dispatches;
          fn();
          return ctx.stats().dispatches - d0;
        };
        const n = Math.sqrt(FUSED_NARROW_MIN_SCORES);
        const w = FUSED_NARROW_HEAD + 1;
        const inference = (lq: number, d: number, e: number) => {
          const [qq, kk, vv] = [t([1, 1, lq, d]), t([1, 1, n, d]), t([1, 1, n, e])];
          return dispatches(() => ctx.noGrad(() => attention(qq, kk, vv)));
        };
        assertEqual(inference(n, 1, 1), 1, `auto, no grad, ${n} x ${n} scores, D = E = 1: dispatches`);
        assertEqual(inference(n - 1, 1, 1) > 1, true, `auto, no grad, ${n - 1} x ${n} scores composed`);
        assertEqual(inference(n, w, 1) > 1, true, `auto, no grad, D = ${w} composed`);
        assertEqual(inference(n, 1, w) > 1, true, `auto, no grad, E = ${w} composed`);
        assertEqual(attention(t([1, 1, n, 1]), t([1, 1, n, 1]), t([1, 1, n, 1])).node?.op, 'matmul', 'auto, recording gradients: composed');
      }),
  },
  // forced register tilings, one check per tiling (each stays within the browser's 60 s per check)
  ...TILING_CASES.map(
    ([t, c]): Check => ({
      name: `attention: forced tiling R ${t.R} C ${t.C} (L ${c.L}, S ${c.S} not multiples of R, C or 8)${c.causal ? ', causal' : ''}${c.bias ? ', bias' : ''}${c.maskGroups ? ', mask' : ''}${c.dropout ? ', dropout' : ''}`,
      run: async (ctx, rng) => {
        setAttentionTiling({ fwd: t, dq: t, dkv: t });
        try {
          assertEqual(attentionTiling('dkv', c.D, c.E), t, 'forced tiling in effect');
          await checkAttentionCase(ctx, rng, c);
        } finally {
          setAttentionTiling(null);
        }
        assertThrows(() => setAttentionTiling({ fwd: { R: 0, C: 4 } }), /attention: tiling R 0, C 4 is outside R 1\.\.4, C 1\.\.4/);
      },
    }),
  ),
  {
    name: 'attention: bad input (mask shape, bias shape, sequence too long, dropout without generator, mismatched k/v)',
    run: (ctx) =>
      ctx.scope(async () => {
        const t = (shape: number[]) => tensor(ctx, new Float32Array(size(shape)), shape);
        const q = t([4, 2, 5, 8]), k = t([4, 2, 6, 8]), v = t([4, 2, 6, 3]);
        assertThrows(() => attention(q, k, v, { mask: t([3, 5, 6]) }), /attention: mask \[3,5,6\] must be \[G, 5, 6\] with G dividing the batch 4/);
        assertThrows(() => attention(q, k, v, { mask: t([2, 6, 5]) }), /attention: mask \[2,6,5\] must be \[G, 5, 6\]/);
        assertThrows(() => attention(q, k, v, { bias: t([1, 3, 5, 6]) }), /attention: bias \[1,3,5,6\] does not broadcast to \[4, 2, 5, 6\]/);
        assertThrows(() => attention(q, k, t([4, 2, 5, 3])), /attention: v \[4,2,5,3\] does not match k \[4,2,6,8\]/);
        assertThrows(() => attention(q, k, v, { dropout: 0.1, training: true }), /attention: dropout in training needs a generator/);
        assertThrows(() => attention(q, t([4, 2, 4, 8]), t([4, 2, 4, 3]), { causal: true }), /attention: causal attention needs at least as many keys \(4\) as queries \(5\)/);
        const long = MAX_SEQUENCE + 1;
        const ql = t([1, 1, long, 1]);
        assertThrows(() => attention(ql, ql, ql), new RegExp(`attention: sequence of ${long} queries x ${long} keys .* exceeds the limit of ${MAX_SEQUENCE} tokens`));
        // wide heads take the composed fallback and still work
        const qw = requireGrad(tensor(ctx, new Float32Array(2 * 130).fill(0.01), [1, 1, 2, 130]));
        const yw = attention(qw, qw, qw, { impl: 'fused' });
        assertEqual(yw.node?.op, 'matmul', 'D = 130 falls back to the composed path');
        // 'auto' keeps small score matrices on the composed path
        assertEqual(attention(qw, qw, tensor(ctx, new Float32Array(6), [1, 1, 2, 3])).node?.op, 'matmul', "impl 'auto' on 4 scores");
        assertThrows(() => attention(q, k, v, { impl: 'flash' as 'auto' }), /attention: impl 'flash' is not auto, fused or composed/);
        assertClose(await yw.read(), new Float32Array(260).fill(0.01), 1e-6, 0, 'D = 130 composed output');
      }),
  },
];
