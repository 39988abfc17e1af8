// Fused scaled-dot-product attention (FlashAttention-style, written for this engine): the forward
// walks key tiles with an online softmax and keeps only O and one logsumexp per query row, never the
// [L, S] scores; the backward recomputes the scores tile by tile (dQ per query row, dK/dV per key row,
// and the score gradient only when an additive bias needs its own gradient). One dispatch covers all
// B x H problems (Swin's windows x heads). Dropout on the probabilities draws Threefry bits at the
// flat index of the [B, H, L, S] score tensor, exactly what dropout() on the composed path draws, so
// both paths drop the same entries for the same generator state. It does not handle f16, head widths
// over MAX_HEAD_DIM, or a mask that needs a gradient (src/ops/attention.ts falls back to the
// composed path for those).
//
// Letters: B batch, H heads, L queries, S keys, D query/key width, E value width; a "row" is one
// (b, h, i) query; WG rows per workgroup, T rows of the other side per shared-memory tile.

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { grid1d, packUniforms } from './util.js';
import { THREEFRY_WGSL } from './fill.js';
import { stridedCopyRaw } from './permute.js';
import { sumTo } from './reduce.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** Queries (or keys, in the dK/dV kernel) per workgroup: one invocation each. */
const WG = 32;
/** Widest D or E the kernels hold in registers. */
export const MAX_HEAD_DIM = 128;
/** Longest L or S the fused kernel accepts (and the composed path would need L x S scores for). */
export const MAX_SEQUENCE = 65536;
/** "no score": below every real score, so exp(NEG - m) = 0 for any row with a real maximum. */
const NEG = '-3.4028234663852886e38';

export interface FusedAttentionInputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  bias?: Tensor | null;
  mask?: Tensor | null;
  scale: number;
  causal: boolean;
  /** drop probability (0 = none) and the generator's (k0, k1, stream) */
  dropout: number;
  gen?: Generator | null;
}

interface Variant {
  D: number;
  E: number;
  bias: boolean;
  mask: boolean;
  causal: boolean;
  dropout: boolean;
}

const variantKey = (v: Variant, T: number) =>
  `D${v.D}E${v.E}T${T}${v.bias ? 'b' : ''}${v.mask ? 'm' : ''}${v.causal ? 'c' : ''}${v.dropout ? 'd' : ''}`;

const PARAMS = /* wgsl */ `
struct Params {
  B: u32, H: u32, L: u32, S: u32,
  G: u32, nBlocks: u32, groups: u32, stream: u32,
  k0: u32, k1: u32, scale: f32, keep: f32,
  invKeep: f32, bsB: u32, bsH: u32, bsL: u32,
  bsS: u32, D: u32, E: u32, T: u32,
}`;

/** WGSL shared by every kernel: the additive terms of score (i, j) of problem bh and the dropout bit. */
function common(v: Variant, firstOptional: number): string {
  let k = firstOptional;
  const bindings = [
    v.bias ? `@group(0) @binding(${k++}) var<storage, read> bias: array<f32>;` : '',
    v.mask ? `@group(0) @binding(${k++}) var<storage, read> mask: array<f32>;` : '',
    `@group(0) @binding(${k++}) var<uniform> P: Params;`,
  ].join('\n');
  return /* wgsl */ `
${PARAMS}
${bindings}
${v.dropout ? THREEFRY_WGSL : ''}
/** bias + mask of score (i, j) in problem bh (the causal test is separate). */
fn extra(bh: u32, i: u32, j: u32) -> f32 {
  var a = 0.0;
  ${v.bias ? 'a += bias[(bh / P.H) * P.bsB + (bh % P.H) * P.bsH + i * P.bsL + j * P.bsS];' : ''}
  ${v.mask ? 'a += mask[(((bh / P.H) % P.G) * P.L + i) * P.S + j];' : ''}
  return a;
}
/** Score (i, j) exists: j < S and, when causal, j <= i + S - L. */
fn valid(i: u32, j: u32) -> bool {
  return j < P.S ${v.causal ? '&& j + P.L <= i + P.S' : ''};
}
/** Multiplier of probability (i, j) after dropout: 0 or 1 / keep (1 without dropout). */
fn dropScale(bh: u32, i: u32, j: u32) -> f32 {
  ${
    v.dropout
      ? `let r = threefry(P.k0, P.k1, (bh * P.L + i) * P.S + j, P.stream);
  return select(0.0, P.invKeep, f32(r.x >> 8u) * 5.960464477539063e-8 < P.keep);`
      : 'return 1.0;'
  }
}
fn groupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }`;
}

/** The per-query-row kernels' start: group g = (batch·head bh, block of WG query rows), row ir (clamped; `live` when real). */
const QUERY_ROW = /* wgsl */ `  let g = groupIndex(wid, nwg);
  if (g >= P.groups) { return; }
  let bh = g / P.nBlocks;
  let i0 = (g % P.nBlocks) * ${WG}u;
  let i = i0 + lid;
  let live = i < P.L;
  let ir = min(i, P.L - 1u);`;

/** Load key/value rows j0 .. j0 + T - 1 (clamped to S - 1) of bh into the workgroup tiles Ks, Vs. */
const kvTile = (D: number, E: number, T: number) => /* wgsl */ `    workgroupBarrier();
    for (var r = lid; r < ${T}u; r += ${WG}u) {
      let j = min(j0 + r, P.S - 1u);
      for (var d = 0u; d < P.D; d++) { Ks[r * ${D}u + d] = k[(bh * P.S + j) * ${D}u + d]; }
      for (var e = 0u; e < P.E; e++) { Vs[r * ${E}u + e] = v[(bh * P.S + j) * ${E}u + e]; }
    }
    workgroupBarrier();`;

/**
 * Forward: out O [B, H, L, E] and stats [B * H * L, 2] (logsumexp of the scaled scores at 2r; 2r + 1
 * is filled by the backward's row-dot kernel). One invocation per query row; key/value tiles of T
 * rows in workgroup memory; online softmax per key. The query row and the accumulator are private
 * arrays walked only by constant-trip loops (unrollable into registers); the loop over a tile's keys
 * has a runtime bound, because unrolling it too made lavapipe's compile take minutes.
 */
export function attentionForwardShader(v: Variant, T: number): string {
  const { D, E } = v;
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
${common(v, 5)}
var<workgroup> Ks: array<f32, ${T * D}>;
var<workgroup> Vs: array<f32, ${T * E}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${QUERY_ROW}
  var qr: array<f32, ${D}>;
  for (var d = 0u; d < ${D}u; d++) { qr[d] = q[(bh * P.L + ir) * ${D}u + d] * P.scale; }
  var acc: array<f32, ${E}>;
  for (var e = 0u; e < ${E}u; e++) { acc[e] = 0.0; }
  var m = ${NEG};
  var l = 0.0;
  let jEnd = ${v.causal ? `min(P.S, min(i0 + ${WG}u, P.L) + P.S - P.L)` : 'P.S'};
  for (var j0 = 0u; j0 < jEnd; j0 += ${T}u) {
${kvTile(D, E, T)}
    for (var c = 0u; c < P.T; c++) {
      let j = j0 + c;
      if (!valid(ir, j)) { continue; }
      var dot = 0.0;
      for (var d = 0u; d < ${D}u; d++) { dot += qr[d] * Ks[c * ${D}u + d]; }
      let s = dot + extra(bh, ir, j);
      let mNew = max(m, s);
      let corr = exp(m - mNew);
      let p = exp(s - mNew);
      l = l * corr + p;
      let pd = p * dropScale(bh, ir, j);
      for (var e = 0u; e < ${E}u; e++) { acc[e] = acc[e] * corr + pd * Vs[c * ${E}u + e]; }
      m = mNew;
    }
  }
  if (live) {
    let inv = 1.0 / l;
    for (var e = 0u; e < ${E}u; e++) { O[(bh * P.L + i) * ${E}u + e] = acc[e] * inv; }
    stats[2u * (bh * P.L + i)] = m + log(l);
  }
}`;
}

/** Backward step 1: stats[2r + 1] = dO_r . O_r (the softmax backward's row term; dropout included). */
export function attentionRowDotShader(E: number): string {
  return /* wgsl */ `
struct Params { rows: u32 }
@group(0) @binding(0) var<storage, read_write> stats: array<f32>;
@group(0) @binding(1) var<storage, read> dO: array<f32>;
@group(0) @binding(2) var<storage, read> O: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * (nwg.x * 64u);
  if (r >= P.rows) { return; }
  var s = 0.0;
  for (var e = 0u; e < ${E}u; e++) { s += dO[r * ${E}u + e] * O[r * ${E}u + e]; }
  stats[2u * r + 1u] = s;
}`;
}

/**
 * Backward, per query row (mode 'dq'): dQ_i = scale * sum_j dS_ij k_j, or (mode 'ds') the score
 * gradient dS [B, H, L, S] itself (for a bias gradient); dS_ij = P_ij (dP_ij - D_i) with
 * dP_ij = (dO_i . v_j) * dropScale_ij and P_ij = exp(s_ij - lse_i) recomputed.
 */
export function attentionQueryBackwardShader(v: Variant, T: number, mode: 'dq' | 'ds'): string {
  const { D, E } = v;
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dO: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
${common(v, 6)}
var<workgroup> Ks: array<f32, ${T * D}>;
var<workgroup> Vs: array<f32, ${T * E}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${QUERY_ROW}
  let row = bh * P.L + ir;
  var qr: array<f32, ${D}>;
  for (var d = 0u; d < ${D}u; d++) { qr[d] = q[row * ${D}u + d] * P.scale; }
  var gr: array<f32, ${E}>;
  for (var e = 0u; e < ${E}u; e++) { gr[e] = dO[row * ${E}u + e]; }
  ${mode === 'dq' ? `var dq: array<f32, ${D}>;\n  for (var d = 0u; d < ${D}u; d++) { dq[d] = 0.0; }` : ''}
  let lse = stats[2u * row];
  let Di = stats[2u * row + 1u];
  let jEnd = ${v.causal && mode === 'dq' ? `min(P.S, min(i0 + ${WG}u, P.L) + P.S - P.L)` : 'P.S'};
  for (var j0 = 0u; j0 < jEnd; j0 += ${T}u) {
${kvTile(D, E, T)}
    if (live) {
      for (var c = 0u; c < P.T; c++) {
        let j = j0 + c;
        if (j >= P.S) { break; }
        var ds = 0.0;
        if (valid(ir, j)) {
          var dot = 0.0;
          for (var d = 0u; d < ${D}u; d++) { dot += qr[d] * Ks[c * ${D}u + d]; }
          let p = exp(dot + extra(bh, ir, j) - lse);
          var dp = 0.0;
          for (var e = 0u; e < ${E}u; e++) { dp += gr[e] * Vs[c * ${E}u + e]; }
          ds = p * (dp * dropScale(bh, ir, j) - Di);
        }
        ${
          mode === 'dq'
            ? `for (var d = 0u; d < ${D}u; d++) { dq[d] += ds * Ks[c * ${D}u + d]; }`
            : 'out[row * P.S + j] = ds;'
        }
      }
    }
  }
  ${mode === 'dq' ? `if (live) { for (var d = 0u; d < ${D}u; d++) { out[row * ${D}u + d] = dq[d] * P.scale; } }` : ''}
}`;
}

/**
 * Backward, per key row: dV_j = sum_i P_ij dropScale_ij dO_i, dK_j = scale * sum_i dS_ij q_i, written
 * into one buffer dKV (dK [B, H, S, D] first, then dV [B, H, S, E]; one buffer keeps the kernel within
 * 8 storage bindings). Query tiles of T rows (q, dO, lse, D_i) in workgroup memory.
 */
export function attentionKeyBackwardShader(v: Variant, T: number): string {
  const { D, E } = v;
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> dKV: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dO: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
${common(v, 6)}
var<workgroup> Qs: array<f32, ${T * D}>;
var<workgroup> Gs: array<f32, ${T * E}>;
var<workgroup> Ls: array<f32, ${2 * T}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= P.groups) { return; }
  let bh = g / P.nBlocks;
  let j0 = (g % P.nBlocks) * ${WG}u;
  let j = j0 + lid;
  let live = j < P.S;
  let jr = min(j, P.S - 1u);
  let col = bh * P.S + jr;
  var kr: array<f32, ${D}>;
  for (var d = 0u; d < ${D}u; d++) { kr[d] = k[col * ${D}u + d] * P.scale; }
  var vr: array<f32, ${E}>;
  for (var e = 0u; e < ${E}u; e++) { vr[e] = v[col * ${E}u + e]; }
  var dk: array<f32, ${D}>;
  for (var d = 0u; d < ${D}u; d++) { dk[d] = 0.0; }
  var dv: array<f32, ${E}>;
  for (var e = 0u; e < ${E}u; e++) { dv[e] = 0.0; }
  // causal: query i sees key j only when i >= j - (S - L); earlier query tiles are skipped
  let iStart = ${v.causal ? `(select(0u, j0 + P.L - P.S, j0 + P.L > P.S) / ${T}u) * ${T}u` : '0u'};
  for (var i0 = iStart; i0 < P.L; i0 += ${T}u) {
    workgroupBarrier();
    for (var r = lid; r < ${T}u; r += ${WG}u) {
      let row = bh * P.L + min(i0 + r, P.L - 1u);
      for (var d = 0u; d < P.D; d++) { Qs[r * ${D}u + d] = q[row * ${D}u + d]; }
      for (var e = 0u; e < P.E; e++) { Gs[r * ${E}u + e] = dO[row * ${E}u + e]; }
      Ls[2u * r] = stats[2u * row];
      Ls[2u * r + 1u] = stats[2u * row + 1u];
    }
    workgroupBarrier();
    if (live) {
      for (var c = 0u; c < P.T; c++) {
        let i = i0 + c;
        if (i >= P.L) { break; }
        if (!valid(i, jr)) { continue; }
        var dot = 0.0;
        for (var d = 0u; d < ${D}u; d++) { dot += Qs[c * ${D}u + d] * kr[d]; }
        let p = exp(dot + extra(bh, i, jr) - Ls[2u * c]);
        let pd = p * dropScale(bh, i, jr);
        var dp = 0.0;
        for (var e = 0u; e < ${E}u; e++) {
          let ge = Gs[c * ${E}u + e];
          dv[e] += pd * ge;
          dp += ge * vr[e];
        }
        let ds = pd * dp - p * Ls[2u * c + 1u];
        for (var d = 0u; d < ${D}u; d++) { dk[d] += ds * Qs[c * ${D}u + d]; }
      }
    }
  }
  if (live) {
    for (var d = 0u; d < ${D}u; d++) { dKV[col * ${D}u + d] = dk[d] * P.scale; }
    let vBase = P.B * P.H * P.S * ${D}u;
    for (var e = 0u; e < ${E}u; e++) { dKV[vBase + col * ${E}u + e] = dv[e]; }
  }
}`;
}

/** Rows of the other side per shared tile: the largest of 32, 16, 8 whose tiles fit workgroup memory. */
function tileRows(ctx: Tensor['ctx'], perRow: number): number {
  const floats = ctx.limits.maxComputeWorkgroupStorageSize / 4;
  for (const t of [32, 16, 8]) if (t * perRow <= floats) return t;
  return 4;
}

/** Whether the fused kernels take this problem (else the caller composes it). */
export function fusedAttentionSupported(D: number, E: number): boolean {
  return D >= 1 && E >= 1 && D <= MAX_HEAD_DIM && E <= MAX_HEAD_DIM;
}

/**
 * Fused attention with autograd (no validation of shapes: src/ops/attention.ts's checkAttention does
 * that). q [B, H, L, D], k [B, H, S, D], v [B, H, S, E] -> [B, H, L, E]. Gradients for q, k, v and
 * the bias (reduced to its broadcast shape); never for the mask.
 */
export function fusedAttention(a: FusedAttentionInputs): Tensor {
  const op = 'attention';
  const { q, k, v } = a;
  const ctx = q.ctx;
  const [B, H, L, D] = q.shape as [number, number, number, number];
  const S = k.shape[2]!;
  const E = v.shape[3]!;
  if (L > MAX_SEQUENCE || S > MAX_SEQUENCE)
    throw new EngineError(op, `sequence of ${L} queries x ${S} keys exceeds the fused kernel's limit of ${MAX_SEQUENCE} tokens`);
  if (!fusedAttentionSupported(D, E)) throw new EngineError(op, `head widths D ${D}, E ${E} exceed the fused kernel's limit ${MAX_HEAD_DIM}`);
  const drop = a.dropout > 0;
  if (drop && B * H * L * S > 0xffffffff)
    throw new EngineError(op, `dropout counters overflow: ${B}x${H}x${L}x${S} scores exceed 2^32 (shorten the sequence or split the batch)`);
  const bias = a.bias ?? null;
  const mask = a.mask ?? null;
  const variant: Variant = { D, E, bias: !!bias, mask: !!mask, causal: a.causal, dropout: drop };
  const out = new Tensor(ctx, [B, H, L, E], 'f32');
  if (out.size === 0) return out;
  const stats = new Tensor(ctx, [B * H * L, 2], 'f32');
  const bs = bias ? bias.shape.map((n, d) => (n === 1 ? 0 : bias.shape.slice(d + 1).reduce((x, y) => x * y, 1))) : [0, 0, 0, 0];
  const stream = drop ? a.gen!.nextStream() : 0;
  const keep = 1 - a.dropout;
  const uniforms = (rowsPerProblem: number, T: number) => {
    const nBlocks = Math.ceil(rowsPerProblem / WG);
    const groups = nBlocks * B * H;
    return {
      groups,
      data: packUniforms([
        B, H, L, S,
        mask ? mask.shape[0]! : 1, nBlocks, groups, stream,
        drop ? a.gen!.k0 : 0, drop ? a.gen!.k1 : 0, { f: a.scale }, { f: keep },
        { f: 1 / keep }, bs[0]!, bs[1]!, bs[2]!,
        bs[3]!, D, E, T,
      ]),
    };
  };
  const extras = (name: string) => [...(bias ? [bias.binding(name)] : []), ...(mask ? [mask.binding(name)] : [])];
  const Tf = tileRows(ctx, D + E);
  const fw = uniforms(L, Tf);
  ctx.dispatch({
    op,
    key: `attention:fwd:${variantKey(variant, Tf)}`,
    code: () => attentionForwardShader(variant, Tf),
    buffers: [out.binding(op), stats.binding(op), q.binding(op), k.binding(op), v.binding(op), ...extras(op)],
    uniforms: fw.data,
    workgroups: grid1d(fw.groups, 1),
  });

  const inputs = [q, k, v, ...(bias ? [bias] : [])];
  return record(out, op, inputs, (dO) => {
    const bop = 'attention.backward';
    const rows = B * H * L;
    ctx.dispatch({
      op: bop,
      key: `attention:rowdot:E${E}`,
      code: () => attentionRowDotShader(E),
      buffers: [stats.binding(bop), dO.binding(bop), out.binding(bop)],
      uniforms: packUniforms([rows]),
      workgroups: grid1d(rows, 64),
    });
    const dQ = new Tensor(ctx, q.shape, 'f32');
    const bq = uniforms(L, Tf);
    ctx.dispatch({
      op: bop,
      key: `attention:dq:${variantKey(variant, Tf)}`,
      code: () => attentionQueryBackwardShader(variant, Tf, 'dq'),
      buffers: [dQ.binding(bop), q.binding(bop), k.binding(bop), v.binding(bop), dO.binding(bop), stats.binding(bop), ...extras(bop)],
      uniforms: bq.data,
      workgroups: grid1d(bq.groups, 1),
    });
    const dKV = new Tensor(ctx, [B * H * S * (D + E)], 'f32');
    const Tk = tileRows(ctx, D + E + 2);
    const bk = uniforms(S, Tk);
    ctx.dispatch({
      op: bop,
      key: `attention:dkv:${variantKey(variant, Tk)}`,
      code: () => attentionKeyBackwardShader(variant, Tk),
      buffers: [dKV.binding(bop), q.binding(bop), k.binding(bop), v.binding(bop), dO.binding(bop), stats.binding(bop), ...extras(bop)],
      uniforms: bk.data,
      workgroups: grid1d(bk.groups, 1),
    });
    const dK = view(dKV, k.shape);
    const dV = stridedCopyRaw(bop, dKV, v.shape, [H * S * E, S * E, E, 1], B * H * S * D);
    let dBias: Tensor | null = null;
    if (bias?.requiresGrad) {
      const dS = new Tensor(ctx, [B, H, L, S], 'f32');
      ctx.dispatch({
        op: bop,
        key: `attention:ds:${variantKey(variant, Tf)}`,
        code: () => attentionQueryBackwardShader(variant, Tf, 'ds'),
        buffers: [dS.binding(bop), q.binding(bop), k.binding(bop), v.binding(bop), dO.binding(bop), stats.binding(bop), ...extras(bop)],
        uniforms: bq.data,
        workgroups: grid1d(bq.groups, 1),
      });
      dBias = sumTo(dS, bias.shape);
    }
    return [dQ, dK, dV, ...(bias ? [dBias] : [])];
  });
}
