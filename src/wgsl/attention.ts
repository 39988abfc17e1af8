// Fused scaled-dot-product attention (FlashAttention-style, written for this engine): the forward
// walks the keys with an online softmax and keeps only O and one logsumexp per query row, never the
// [L, S] scores; the backward recomputes the scores (dQ, and the score gradient when an additive bias
// needs its own gradient, per query row in one pass; dK/dV per key row in another). One dispatch per
// kernel covers all B x H problems (Swin's windows x heads). The kernels are register-tiled for CPU
// WebGPU (lavapipe): no workgroup memory and no barriers; each invocation owns R rows of its side in
// registers and reads the other side's rows, C per unrolled step, at addresses uniform across the
// workgroup; masking is by select, never by branching. Dropout on the probabilities draws Threefry
// bits at the flat index of the [B, H, L, S] score tensor, exactly what dropout() on the composed path
// draws, so both paths drop the same entries for the same generator state. It does not handle f16,
// head widths over MAX_HEAD_DIM, or a mask that needs a gradient (src/ops/attention.ts falls back to
// the composed path for those).
//
// Letters: B batch, H heads, L queries, S keys, D query/key width, E value width; a "row" is one
// (b, h, i) query (or (b, h, j) key); W invocations per workgroup, R own rows per invocation, C rows
// of the other side per step.

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { grid1d, packUniforms } from './util.js';
import { THREEFRY_WGSL } from './fill.js';
import { stridedCopyRaw } from './permute.js';
import { sumTo } from './reduce.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** Widest D or E the kernels hold in registers. */
export const MAX_HEAD_DIM = 128;
/** Longest L or S the fused kernel accepts (and the composed path would need L x S scores for). */
export const MAX_SEQUENCE = 65536;
/** "no score": below every real score, so exp(NEG - m) = 0 for any row with a real maximum. */
const NEG = '-3.4028234663852886e38';
/** Most invocations per workgroup (a multiple of 8, lavapipe's SIMD width). */
const MAX_LANES = 64;

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

/**
 * Register tiling of one kernel: R rows of its own side per invocation (queries in the forward and
 * dQ kernels, keys in the dK/dV kernel) and C rows of the other side per unrolled step of the loop
 * over the other side. Each value of the other side that is loaded (uniform across the workgroup)
 * serves R rows; the running softmax rescale and the accumulators' loads and stores happen once per
 * C rows.
 */
export interface AttentionTiling {
  R: number;
  C: number;
}
export type AttentionKernel = 'fwd' | 'dq' | 'dkv';

let forcedTiling: Partial<Record<AttentionKernel, AttentionTiling>> | null = null;
/** Force the tiling of some kernels (tests and the bench); null restores the defaults. */
export function setAttentionTiling(t: Partial<Record<AttentionKernel, AttentionTiling>> | null): void {
  for (const x of Object.values(t ?? {}))
    if (!(Number.isInteger(x.R) && x.R >= 1 && x.R <= 4 && Number.isInteger(x.C) && x.C >= 1 && x.C <= 4))
      throw new EngineError('attention', `tiling R ${x.R}, C ${x.C} is outside R 1..4, C 1..4`);
  forcedTiling = t;
}

/**
 * The tiling a kernel uses for head widths D, E: forced, else the default measured on lavapipe
 * (bench/RESULTS.md "attention-fused-speed"). Narrow heads (D + E <= 64, Swin's 32): four rows per
 * invocation and one row of the other side per step (two rows per step ran slower: the extra live
 * values spill). Wider heads: two rows per invocation (with four, lavapipe took 11 minutes to compile
 * the D = 64 kernels), one for heads wider than 64.
 */
export function attentionTiling(kind: AttentionKernel, D: number, E: number): AttentionTiling {
  const f = forcedTiling?.[kind];
  if (f) return f;
  return { R: D + E <= 64 ? 4 : D + E <= 128 ? 2 : 1, C: 1 };
}

/** Invocations per workgroup W (a multiple of 8, at most MAX_LANES) and workgroups per problem for `rows` rows, R per invocation. */
function lanesFor(rows: number, R: number): { W: number; nBlocks: number } {
  const perLane = Math.max(1, Math.ceil(rows / R));
  const nBlocks = Math.ceil(perLane / MAX_LANES);
  return { W: Math.ceil(Math.ceil(perLane / nBlocks) / 8) * 8, nBlocks };
}

interface Variant {
  D: number;
  E: number;
  bias: boolean;
  mask: boolean;
  causal: boolean;
  dropout: boolean;
}

const variantKey = (v: Variant, t: AttentionTiling, W: number) =>
  `D${v.D}E${v.E}R${t.R}C${t.C}W${W}${v.bias ? 'b' : ''}${v.mask ? 'm' : ''}${v.causal ? 'c' : ''}${v.dropout ? 'd' : ''}`;

const PARAMS = /* wgsl */ `
struct Params {
  B: u32, H: u32, L: u32, S: u32,
  G: u32, nBlocks: u32, groups: u32, stream: u32,
  k0: u32, k1: u32, scale: f32, keep: f32,
  invKeep: f32, bsB: u32, bsH: u32, bsL: u32,
  bsS: u32, D: u32, E: u32, pad: u32,
}`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** fma chain: acc + sum_c a(c) * b(c), innermost first. */
const fmaChain = (n: number, a: (c: number) => string, b: (c: number) => string, acc: string) =>
  range(n).reduce((x, c) => `fma(${a(c)}, ${b(c)}, ${x})`, acc);

/** WGSL shared by every kernel: bindings of bias / mask / uniforms, the dropout multiplier, the problem's offsets. */
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
/** Multiplier of probability (i, j) of problem bh after dropout: 0 or 1 / keep (1 without dropout). */
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

/**
 * Start of every kernel: workgroup g = (problem bh, block of W·R own rows); own row r of this
 * invocation is b0 + r·W + lid (clamped to n - 1 in o{r}; real when x{r} < n). Also the offsets of
 * the bias and mask rows (uniform per problem, so the divisions happen once).
 */
function start(v: Variant, W: number, R: number, n: string): string {
  const L = [
    '  let g = groupIndex(wid, nwg);',
    '  if (g >= P.groups) { return; }',
    '  let bh = g / P.nBlocks;',
    `  let b0 = (g % P.nBlocks) * ${W * R}u;`,
    ...range(R).map((r) => `  let x${r} = b0 + ${r * W}u + lid;\n  let o${r} = min(x${r}, ${n} - 1u);`),
  ];
  if (v.bias) L.push('  let biasBase = (bh / P.H) * P.bsB + (bh % P.H) * P.bsH;');
  if (v.mask) L.push('  let maskBase = ((bh / P.H) % P.G) * P.L * P.S;');
  return L.join('\n');
}

/** bias + mask of score (query i, key j) as a WGSL expression (i, j: WGSL u32 expressions). */
function extra(v: Variant, i: string, j: string): string {
  const t = [
    v.bias ? `bias[biasBase + ${i} * P.bsL + ${j} * P.bsS]` : '',
    v.mask ? `mask[maskBase + ${i} * P.S + ${j}]` : '',
  ].filter(Boolean);
  return t.length ? t.join(' + ') : '0.0';
}

/** Score (query i, key j) exists: the key is in range (`inRange`, a WGSL bool) and, when causal, j <= i + S - L. */
const valid = (v: Variant, inRange: string, i: string, j: string) => (v.causal ? `${inRange} && ${j} + P.L <= ${i} + P.S` : inRange);

const XYZW = ['x', 'y', 'z', 'w'];

/**
 * An input of rows of n floats: bound as array<vec4<f32>> when n is a multiple of 4 (one load, and on
 * lavapipe one bounds check, per 4 floats), else as array<f32>. `load(id, row, g)` declares the lets
 * of element group g of row `row` (a WGSL row index); `at(id, i)` names element i.
 */
class Rows {
  readonly vec: boolean;
  readonly groups: number[][];
  constructor(
    readonly name: string,
    readonly n: number,
  ) {
    this.vec = n % 4 === 0;
    const w = this.vec ? 4 : 1;
    this.groups = range(n / w).map((g) => range(w).map((x) => g * w + x));
  }
  decl(binding: number): string {
    return `@group(0) @binding(${binding}) var<storage, read> ${this.name}: array<${this.vec ? 'vec4<f32>' : 'f32'}>;`;
  }
  load(id: string, row: string, g: number, scale = ''): string {
    const w = this.vec ? 4 : 1;
    return `let ${id}_${g} = ${this.name}[${row} * ${this.n / w}u + ${g}u]${scale};`;
  }
  at(id: string, i: number): string {
    return this.vec ? `${id}_${i >> 2}.${XYZW[i & 3]}` : `${id}_${i}`;
  }
}

/**
 * `${acc}{r}_{c} += own row r · other row c` for the R own rows held in registers (`${ownId}{r}`) and C
 * other-side rows loaded here one element group at a time (`${otherId}{c}` from WGSL row `${rowOf}{c}`):
 * the score and dP blocks of the three kernels.
 */
function rowDots(acc: string, own: Rows, ownId: string, other: Rows, otherId: string, rowOf: string, R: number, C: number): string[] {
  const L: string[] = [];
  for (const [g, idx] of other.groups.entries())
    for (const c of range(C)) {
      L.push(`    ${other.load(`${otherId}${c}`, `${rowOf}${c}`, g)}`);
      for (const r of range(R))
        L.push(`    ${acc}${r}_${c} = ${fmaChain(idx.length, (x) => own.at(`${ownId}${r}`, idx[x]!), (x) => other.at(`${otherId}${c}`, idx[x]!), `${acc}${r}_${c}`)};`);
    }
  return L;
}

/**
 * Forward: out O [B, H, L, E] and stats [B * H * L, 2] (logsumexp of the scaled scores at 2r; 2r + 1
 * is filled by the backward's row-dot kernel). Each invocation owns R query rows (q and the output
 * accumulators in registers) and walks the keys C at a time: C scores per row, one online-softmax
 * rescale per step, then the C value rows. Key and value elements are read straight from storage at
 * addresses uniform across the workgroup (lavapipe loads them once and broadcasts; no workgroup
 * memory, no barriers); invalid scores are selected away, never branched around.
 */
export function attentionForwardShader(v: Variant, t: AttentionTiling, W: number): string {
  const { D, E } = v;
  const { R, C } = t;
  const Q = new Rows('q', D), K = new Rows('k', D), V = new Rows('v', E);
  const L: string[] = [];
  L.push(`@group(0) @binding(0) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
${Q.decl(2)}
${K.decl(3)}
${V.decl(4)}
${common(v, 5)}
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${start(v, W, R, 'P.L')}`);
  for (const r of range(R)) {
    for (const g of Q.groups.keys()) L.push(`  ${Q.load(`q${r}`, `(bh * P.L + o${r})`, g, ' * P.scale')}`);
    for (const e of range(E)) L.push(`  var a${r}_${e} = 0.0;`);
    L.push(`  var m${r} = ${NEG};`, `  var l${r} = 0.0;`);
  }
  L.push(`  let jEnd = ${v.causal ? `min(P.S, min(b0 + ${W * R}u, P.L) + P.S - P.L)` : 'P.S'};`);
  L.push(`  for (var jb = 0u; jb < jEnd; jb += ${C}u) {`);
  for (const c of range(C)) L.push(`    let j${c} = min(jb + ${c}u, P.S - 1u);`, `    let ink${c} = jb + ${c}u < P.S;`, `    let kr${c} = bh * P.S + j${c};`);
  for (const r of range(R)) for (const c of range(C)) L.push(`    var s${r}_${c} = 0.0;`);
  L.push(...rowDots('s', Q, 'q', K, 'k', 'kr', R, C));
  for (const r of range(R)) {
    for (const c of range(C)) {
      L.push(`    let ok${r}_${c} = ${valid(v, `ink${c}`, `o${r}`, `j${c}`)};`);
      L.push(`    let t${r}_${c} = select(${NEG}, s${r}_${c} + ${extra(v, `o${r}`, `j${c}`)}, ok${r}_${c});`);
    }
    const mx = range(C).reduce((x, c) => `max(${x}, t${r}_${c})`, `m${r}`);
    L.push(`    let mn${r} = ${mx};`, `    let cr${r} = exp(m${r} - mn${r});`);
    for (const c of range(C)) L.push(`    let p${r}_${c} = select(0.0, exp(t${r}_${c} - mn${r}), ok${r}_${c});`);
    L.push(`    l${r} = l${r} * cr${r} + ${range(C).map((c) => `p${r}_${c}`).join(' + ')};`, `    m${r} = mn${r};`);
    for (const c of range(C)) L.push(`    let w${r}_${c} = ${v.dropout ? `p${r}_${c} * dropScale(bh, o${r}, j${c})` : `p${r}_${c}`};`);
  }
  for (const [g, es] of V.groups.entries()) {
    for (const c of range(C)) L.push(`    ${V.load(`v${c}`, `kr${c}`, g)}`);
    for (const e of es)
      for (const r of range(R))
        L.push(`    a${r}_${e} = ${fmaChain(C, (c) => `w${r}_${c}`, (c) => V.at(`v${c}`, e), `a${r}_${e} * cr${r}`)};`);
  }
  L.push('  }');
  for (const r of range(R)) {
    L.push(`  if (x${r} < P.L) {`, `    let inv = 1.0 / l${r};`, `    let ob = (bh * P.L + x${r}) * ${E}u;`);
    for (const e of range(E)) L.push(`    O[ob + ${e}u] = a${r}_${e} * inv;`);
    L.push(`    stats[2u * (bh * P.L + x${r})] = m${r} + log(l${r});`, '  }');
  }
  L.push('}');
  return L.join('\n');
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
 * What both backward kernels open with: the q, k, v and dO rows, their bindings (the output `out`
 * at 0, the row statistics at 5, the shared parameters after), and the entry point up to the
 * invocation's own R rows along `extent` (P.L query rows, P.S key rows).
 */
function backwardPrologue(v: Variant, t: AttentionTiling, W: number, out: string, extent: string) {
  const Q = new Rows('q', v.D), K = new Rows('k', v.D), V = new Rows('v', v.E), G = new Rows('dO', v.E);
  const head = `@group(0) @binding(0) var<storage, read_write> ${out}: array<f32>;
${Q.decl(1)}
${K.decl(2)}
${V.decl(3)}
${G.decl(4)}
@group(0) @binding(5) var<storage, read> stats: array<f32>;
${common(v, 6)}
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${start(v, W, t.R, extent)}`;
  return { Q, K, V, G, head };
}

/**
 * Backward per query row: dQ_i = scale * sum_j dS_ij k_j into out[0 .. B·H·L·D), and with `ds` also
 * the score gradient dS [B, H, L, S] (for a bias gradient) into out from B·H·L·D on; dS_ij = P_ij
 * (dP_ij - D_i) with dP_ij = (dO_i . v_j) * dropScale_ij and P_ij = exp(s_ij - lse_i) recomputed.
 * Same register tiling as the forward (R query rows per invocation, C keys per step).
 */
export function attentionQueryBackwardShader(v: Variant, t: AttentionTiling, W: number, ds: boolean): string {
  const { D } = v;
  const { R, C } = t;
  const { Q, K, V, G, head } = backwardPrologue(v, t, W, 'out', 'P.L');
  const L: string[] = [head];
  if (ds) L.push(`  let dsBase = P.B * P.H * P.L * ${D}u;`);
  for (const r of range(R)) {
    L.push(`  let row${r} = bh * P.L + o${r};`);
    for (const g of Q.groups.keys()) L.push(`  ${Q.load(`q${r}`, `row${r}`, g, ' * P.scale')}`);
    for (const g of G.groups.keys()) L.push(`  ${G.load(`g${r}`, `row${r}`, g)}`);
    for (const d of range(D)) L.push(`  var dq${r}_${d} = 0.0;`);
    L.push(`  let lse${r} = stats[2u * row${r}];`, `  let dd${r} = stats[2u * row${r} + 1u];`);
  }
  // every dS entry is written (zeros included), so the key loop then runs to S
  L.push(`  let jEnd = ${v.causal && !ds ? `min(P.S, min(b0 + ${W * R}u, P.L) + P.S - P.L)` : 'P.S'};`);
  L.push(`  for (var jb = 0u; jb < jEnd; jb += ${C}u) {`);
  for (const c of range(C)) L.push(`    let j${c} = min(jb + ${c}u, P.S - 1u);`, `    let ink${c} = jb + ${c}u < P.S;`, `    let kr${c} = bh * P.S + j${c};`);
  for (const r of range(R)) for (const c of range(C)) L.push(`    var s${r}_${c} = 0.0;`, `    var dp${r}_${c} = 0.0;`);
  L.push(...rowDots('s', Q, 'q', K, 'k', 'kr', R, C), ...rowDots('dp', G, 'g', V, 'v', 'kr', R, C));
  for (const r of range(R))
    for (const c of range(C)) {
      L.push(`    let ok${r}_${c} = ${valid(v, `ink${c}`, `o${r}`, `j${c}`)};`);
      L.push(`    let p${r}_${c} = select(0.0, exp(s${r}_${c} + ${extra(v, `o${r}`, `j${c}`)} - lse${r}), ok${r}_${c});`);
      L.push(`    let ds${r}_${c} = p${r}_${c} * (dp${r}_${c}${v.dropout ? ` * dropScale(bh, o${r}, j${c})` : ''} - dd${r});`);
      if (ds) L.push(`    if (x${r} < P.L && ink${c}) { out[dsBase + (bh * P.L + x${r}) * P.S + jb + ${c}u] = ds${r}_${c}; }`);
    }
  for (const [g, dd] of K.groups.entries()) {
    // the key rows again (uniform loads are cheap; keeping C x D of them live is not)
    for (const c of range(C)) L.push(`    ${K.load(`kk${c}`, `kr${c}`, g)}`);
    for (const d of dd)
      for (const r of range(R)) L.push(`    dq${r}_${d} = ${fmaChain(C, (c) => `ds${r}_${c}`, (c) => K.at(`kk${c}`, d), `dq${r}_${d}`)};`);
  }
  L.push('  }');
  for (const r of range(R)) {
    L.push(`  if (x${r} < P.L) {`);
    for (const d of range(D)) L.push(`    out[row${r} * ${D}u + ${d}u] = dq${r}_${d} * P.scale;`);
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
}

/**
 * Backward per key row: dV_j = sum_i P_ij dropScale_ij dO_i, dK_j = scale * sum_i dS_ij q_i, written
 * into one buffer dKV (dK [B, H, S, D] first, then dV [B, H, S, E]; one buffer keeps the kernel within
 * 8 storage bindings). Each invocation owns R key rows (k, v, dK, dV in registers) and walks the
 * queries C at a time, reading q, dO and the row statistics at uniform addresses.
 */
export function attentionKeyBackwardShader(v: Variant, t: AttentionTiling, W: number): string {
  const { D, E } = v;
  const { R, C } = t;
  const { Q, K, V, G, head } = backwardPrologue(v, t, W, 'dKV', 'P.S');
  const L: string[] = [head];
  for (const r of range(R)) {
    L.push(`  let col${r} = bh * P.S + o${r};`);
    for (const g of K.groups.keys()) L.push(`  ${K.load(`k${r}`, `col${r}`, g, ' * P.scale')}`);
    for (const g of V.groups.keys()) L.push(`  ${V.load(`v${r}`, `col${r}`, g)}`);
    for (const d of range(D)) L.push(`  var dk${r}_${d} = 0.0;`);
    for (const e of range(E)) L.push(`  var dv${r}_${e} = 0.0;`);
  }
  // causal: query i sees key j only when i >= j - (S - L); earlier queries are skipped
  L.push(`  let iStart = ${v.causal ? 'select(0u, b0 + P.L - P.S, b0 + P.L > P.S)' : '0u'};`);
  L.push(`  for (var ib = iStart; ib < P.L; ib += ${C}u) {`);
  for (const c of range(C))
    L.push(
      `    let i${c} = min(ib + ${c}u, P.L - 1u);`,
      `    let ink${c} = ib + ${c}u < P.L;`,
      `    let row${c} = bh * P.L + i${c};`,
      `    let lse${c} = stats[2u * row${c}];`,
      `    let dd${c} = stats[2u * row${c} + 1u];`,
    );
  for (const r of range(R)) for (const c of range(C)) L.push(`    var s${r}_${c} = 0.0;`, `    var dp${r}_${c} = 0.0;`);
  L.push(...rowDots('s', K, 'k', Q, 'q', 'row', R, C), ...rowDots('dp', V, 'v', G, 'g', 'row', R, C));
  for (const r of range(R))
    for (const c of range(C)) {
      L.push(`    let ok${r}_${c} = ${valid(v, `ink${c}`, `i${c}`, `o${r}`)};`);
      L.push(`    let p${r}_${c} = select(0.0, exp(s${r}_${c} + ${extra(v, `i${c}`, `o${r}`)} - lse${c}), ok${r}_${c});`);
      L.push(`    let pd${r}_${c} = ${v.dropout ? `p${r}_${c} * dropScale(bh, i${c}, o${r})` : `p${r}_${c}`};`);
      L.push(`    let ds${r}_${c} = pd${r}_${c} * dp${r}_${c} - p${r}_${c} * dd${c};`);
    }
  // q and dO rows again (see the dQ kernel)
  for (const [g, es] of G.groups.entries()) {
    for (const c of range(C)) L.push(`    ${G.load(`gg${c}`, `row${c}`, g)}`);
    for (const e of es)
      for (const r of range(R)) L.push(`    dv${r}_${e} = ${fmaChain(C, (c) => `pd${r}_${c}`, (c) => G.at(`gg${c}`, e), `dv${r}_${e}`)};`);
  }
  for (const [g, dd] of Q.groups.entries()) {
    for (const c of range(C)) L.push(`    ${Q.load(`qq${c}`, `row${c}`, g)}`);
    for (const d of dd)
      for (const r of range(R)) L.push(`    dk${r}_${d} = ${fmaChain(C, (c) => `ds${r}_${c}`, (c) => Q.at(`qq${c}`, d), `dk${r}_${d}`)};`);
  }
  L.push('  }');
  L.push(`  let vBase = P.B * P.H * P.S * ${D}u;`);
  for (const r of range(R)) {
    L.push(`  if (x${r} < P.S) {`, `    let cb = bh * P.S + x${r};`);
    for (const d of range(D)) L.push(`    dKV[cb * ${D}u + ${d}u] = dk${r}_${d} * P.scale;`);
    for (const e of range(E)) L.push(`    dKV[vBase + cb * ${E}u + ${e}u] = dv${r}_${e};`);
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
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
  /** Uniforms and grid of a kernel whose invocations own `rowsPerProblem` rows of one side, R each. */
  const launch = (kind: AttentionKernel, rowsPerProblem: number) => {
    const t = attentionTiling(kind, D, E);
    const { W, nBlocks } = lanesFor(rowsPerProblem, t.R);
    const groups = nBlocks * B * H;
    const data = packUniforms([
      B, H, L, S,
      mask ? mask.shape[0]! : 1, nBlocks, groups, stream,
      drop ? a.gen!.k0 : 0, drop ? a.gen!.k1 : 0, { f: a.scale }, { f: keep },
      { f: 1 / keep }, bs[0]!, bs[1]!, bs[2]!,
      bs[3]!, D, E, 0,
    ]);
    return { t, W, key: variantKey(variant, t, W), data, workgroups: grid1d(groups, 1) };
  };
  const extras = (name: string) => [...(bias ? [bias.binding(name)] : []), ...(mask ? [mask.binding(name)] : [])];
  const fw = launch('fwd', L);
  ctx.dispatch({
    op,
    key: `attention:fwd:${fw.key}`,
    code: () => attentionForwardShader(variant, fw.t, fw.W),
    buffers: [out.binding(op), stats.binding(op), q.binding(op), k.binding(op), v.binding(op), ...extras(op)],
    uniforms: fw.data,
    workgroups: fw.workgroups,
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
    // dQ, and with a bias gradient the score gradient dS behind it in the same buffer (one pass)
    const withDs = !!bias?.requiresGrad;
    const dQS = new Tensor(ctx, [B * H * L * (D + (withDs ? S : 0))], 'f32');
    const bq = launch('dq', L);
    ctx.dispatch({
      op: bop,
      key: `attention:${withDs ? 'dqs' : 'dq'}:${bq.key}`,
      code: () => attentionQueryBackwardShader(variant, bq.t, bq.W, withDs),
      buffers: [dQS.binding(bop), q.binding(bop), k.binding(bop), v.binding(bop), dO.binding(bop), stats.binding(bop), ...extras(bop)],
      uniforms: bq.data,
      workgroups: bq.workgroups,
    });
    const dKV = new Tensor(ctx, [B * H * S * (D + E)], 'f32');
    const bk = launch('dkv', S);
    ctx.dispatch({
      op: bop,
      key: `attention:dkv:${bk.key}`,
      code: () => attentionKeyBackwardShader(variant, bk.t, bk.W),
      buffers: [dKV.binding(bop), q.binding(bop), k.binding(bop), v.binding(bop), dO.binding(bop), stats.binding(bop), ...extras(bop)],
      uniforms: bk.data,
      workgroups: bk.workgroups,
    });
    const dQ = view(dQS, q.shape);
    const dK = view(dKV, k.shape);
    const dV = stridedCopyRaw(bop, dKV, v.shape, [H * S * E, S * E, E, 1], B * H * S * D);
    let dBias: Tensor | null = null;
    if (withDs) {
      const dS = stridedCopyRaw(bop, dQS, [B, H, L, S], [H * L * S, L * S, S, 1], B * H * L * D);
      dBias = sumTo(dS, bias!.shape);
    }
    return [dQ, dK, dV, ...(bias ? [dBias] : [])];
  });
}
