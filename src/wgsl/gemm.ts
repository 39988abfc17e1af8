// The one GEMM core: C[m, n] = epilogue(alpha · Σ_k A[m, k] · B[k, n]) as a WGSL generator with
// pluggable operand loaders (a GemmProblem: plain / transposed / batched matmul in matmul.ts, implicit
// im2col conv forward, input-grad and weight-grad in conv2d.ts) and two tilings:
//   - 'reg': no workgroup memory and no barriers (expensive on CPU WebGPU such as lavapipe); each
//     invocation keeps a TM×TN register tile, loads come from the problem's own vec4 / gather code,
//     the K loop can be split into an outer loop (conv taps) around an inner one (channels), and on
//     devices with 8-wide subgroups the A operand (uniform across the workgroup) can be loaded one
//     value per lane and shared with subgroupBroadcast;
//   - 'wg': workgroup-memory tiles (BM×BK of A, BK×BN of B staged by all invocations, then a TM×TN
//     register block per invocation), the shape real GPUs want; operands through the problem's
//     scalar element functions.
// Fused epilogue: alpha scale, bias per row or per column, residual add, activation (relu/silu/gelu),
// in that order: C = act(alpha·AB + bias + R). The register path also has an f16 multiply-accumulate
// variant (operands stay f32 in memory). It does not do f16 storage, split-K inside one dispatch, or
// double buffering.
//
// Which tiling runs is chosen per context (see gemmVariant): forced by setGemmVariant / the
// GEMM_VARIANT environment variable (tests), else a measured choice recorded by tuneGemm (cached per
// adapter and shape class), else 'reg' on CPU adapters and 'wg' elsewhere.
//
// Letters: M rows of C, N columns of C, K the reduction; TM×TN register tile; BM×BN×BK workgroup tile.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { packUniforms, type UniformValue } from './util.js';
import { EngineError } from '../util/errors.js';

export type GemmActivation = 'none' | 'relu' | 'silu' | 'gelu';

/** What happens to each accumulated value before it is stored (C = act(alpha·acc + bias + R)). */
export interface GemmEpilogue {
  /** bias[m] per row of C ('row': conv's output channel) or bias[n] per column ('col': linear) */
  bias?: 'row' | 'col';
  act?: GemmActivation;
  /** add R, a tensor laid out exactly as C */
  residual?: boolean;
  /** scale the product by this value (uniform) */
  alpha?: number;
}

/** Register tiling: TM rows × TN columns per invocation (TN a multiple of 4), workgroup wgx × wgy. */
export interface RegTiling {
  kind: 'reg';
  tm: number;
  tn: number;
  wgx: number;
  wgy: number;
  /** k per inner step: 4 or 8 (default 4); with sg always 8 */
  ku?: number;
  /** A loaded one value per lane and shared by subgroupBroadcast (needs 8-wide subgroups; wgy 1) */
  sg?: boolean;
  /**
   * f16 products and accumulation (operands rounded to f16 after loading, result widened to f32
   * before the epilogue); needs 'shader-f16', else runGemm falls back to f32 and says so once.
   */
  f16?: boolean;
}

/** Workgroup-memory tiling: BM×BN output tile per workgroup, BK deep, TM×TN per invocation. */
export interface WgTiling {
  kind: 'wg';
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export type GemmTiling = RegTiling | WgTiling;
export type GemmVariant = 'reg' | 'wg';

/** The register path's view of a problem: WGSL fragments around the core's loop and tile. */
export interface RegLoaders {
  /** invocations along x (column tiles) and workgroups along z */
  lanes: number;
  z: number;
  /** per-invocation code; may use m0, lane (gid.x clamped to the lanes), wid.z, and for sg `sl` */
  setup: (t: RegTiling) => string;
  /** loop(s) around the inner k loop (conv taps): opening and closing code */
  outer?: [string, string];
  /** WGSL extent of the inner k loop and its value (for the tail guard) */
  kInner: string;
  kInnerValue: number;
  /** code defining a{i}_{q}: vec4 of A[m0+i, k..k+3] for i < TM (k: WGSL expression; kGuard as emitB) */
  emitA: (t: RegTiling, q: number, k: string, kGuard: boolean) => string;
  /** A[m0+i, k] as an f32 expression (the subgroup path; k may run past the end: clamp) */
  aScalar?: (t: RegTiling, i: number, k: string) => string;
  /**
   * code defining b{kk}_{j}_{q}: vec4 of B[k+kk, columns 4j..4j+3 of the tile], kk < 4, j < TN/4;
   * `kGuard`: zero the rows at or past kInner
   */
  emitB: (t: RegTiling, q: number, k: string, kGuard: boolean, kk?: number) => string;
  /** emitB emits only row kk when given one; the core then loads and uses the rows one at a time, each behind a fence */
  bRows?: boolean;
  /** element index in C of tile element (i, 4j+e), and the guard that it exists ('' = always) */
  outIdx: (t: RegTiling, i: number, j: number, e: number) => string;
  outOk: (t: RegTiling, i: number, j: number, e: number) => string;
  /** when 4 columns are contiguous and vec4-aligned in C: their vec4 index and guard */
  outVec?: (t: RegTiling, i: number, j: number) => { idx: string; ok: string };
  /** GEMM column of tile column 4j+e (for per-column bias) */
  col?: (t: RegTiling, j: number, e: number) => string;
}

/** The workgroup-memory path's view: scalar element functions over flat M×N×K (+ batch z). */
export interface FlatLoaders {
  M: number;
  N: number;
  K: number;
  z: number;
  /** WGSL functions A_at(m, k, z) -> f32, B_at(k, n, z) -> f32, C_idx(m, n, z) -> u32; called in range */
  fns: string;
}

/** One GEMM: its storage inputs, uniforms and both loader views. */
export interface GemmProblem {
  /** names the generated WGSL apart from the tiling and epilogue (geometry lives in uniforms) */
  key: string;
  /** storage inputs bound after C (binding 1...), read-only */
  inputs: { name: string; tensor: Tensor; vec4?: boolean }[];
  /** extra uniform fields after M, N, K, lanes (WGSL struct field text) and their values, in order */
  params: string;
  paramValues: UniformValue[];
  /** C's element count and whether it is stored as vec4 (reg path with outVec) */
  out: Tensor;
  outVec4?: boolean;
  /** WGSL helper functions the loaders use */
  helpers?: string;
  reg?: RegLoaders;
  flat: FlatLoaders;
}

// ------------------------------------------------------------------------------------------------
// Epilogue

const INV_SQRT2 = 0.7071067811865476;
const ACT: Record<GemmActivation, (v: string) => string> = {
  none: (v) => v,
  relu: (v) => `max(${v}, T(0.0))`,
  silu: (v) => `(${v} / (T(1.0) + exp(-(${v}))))`,
  gelu: (v) => `(T(0.5) * ${v} * (T(1.0) + gemm_erf(${v} * T(${INV_SQRT2}))))`,
};
const ERF = (T: string) => `fn gemm_erf${T === 'f32' ? '' : '4'}(x: ${T}) -> ${T} {
  // Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7 (as elementwise gelu)
  let s = sign(x);
  let z = abs(x);
  let t = ${T}(1.0) / (${T}(1.0) + ${T}(0.3275911) * z);
  let poly = t * (${T}(0.254829592) + t * (${T}(-0.284496736) + t * (${T}(1.421413741) + t * (${T}(-1.453152027) + t * ${T}(1.061405429)))));
  return s * (${T}(1.0) - poly * exp(-z * z));
}`;

/**
 * WGSL of epilogue(v) for a scalar (f32) or vec4 value; row / col are WGSL index expressions (col: one
 * per component for vec4), `resid` the residual value expression of the same type.
 */
function epilogueExpr(e: GemmEpilogue, v: string, vec: boolean, row: string, col: string[] | string, resid: string): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  let x = e.alpha !== undefined ? `(${v} * P.alpha)` : v;
  if (e.bias === 'row') x = `(${x} + ${vec ? `vec4<f32>(bias[${row}])` : `bias[${row}]`})`;
  if (e.bias === 'col') x = `(${x} + ${Array.isArray(col) ? `vec4<f32>(${col.map((c) => `bias[${c}]`).join(', ')})` : `bias[${col}]`})`;
  if (e.residual) x = `(${x} + ${resid})`;
  const out = ACT[e.act ?? 'none'](x).replaceAll('T(', `${T}(`);
  return vec ? out.replaceAll('gemm_erf(', 'gemm_erf4(') : out;
}

const epilogueKey = (e: GemmEpilogue) => `${e.bias ?? '-'}${e.act ?? '-'}${e.residual ? 'r' : '-'}${e.alpha !== undefined ? 'a' : '-'}`;

/** Subgroup width the subgroup paths assume (lavapipe's; devices with smaller subgroups fall back). */
export const SG = 8;
/** True when the device has subgroups of at least SG lanes. */
export function hasSubgroups(ctx: GpuContext): boolean {
  if (!ctx.features.has('subgroups')) return false;
  const info = (ctx.device as unknown as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return (info?.subgroupMinSize ?? 0) >= SG;
}

// ------------------------------------------------------------------------------------------------
// Shader generators

function header(p: GemmProblem, e: GemmEpilogue, sg: boolean, vecOut: boolean, f16 = false): string {
  const L: string[] = [];
  if (f16) L.push('enable f16;');
  if (sg) L.push('enable subgroups;');
  const fields = ['M: u32', 'N: u32', 'K: u32', 'lanes: u32', p.params, e.alpha !== undefined ? 'alpha: f32' : ''].filter(Boolean);
  L.push(`struct Params { ${fields.join(', ')} }`);
  L.push(`@group(0) @binding(0) var<storage, read_write> C: ${vecOut ? 'array<vec4<f32>>' : 'array<f32>'};`);
  let b = 1;
  for (const inp of p.inputs) L.push(`@group(0) @binding(${b++}) var<storage, read> ${inp.name}: ${inp.vec4 ? 'array<vec4<f32>>' : 'array<f32>'};`);
  if (e.bias) L.push(`@group(0) @binding(${b++}) var<storage, read> bias: array<f32>;`);
  if (e.residual) L.push(`@group(0) @binding(${b++}) var<storage, read> R: ${vecOut ? 'array<vec4<f32>>' : 'array<f32>'};`);
  L.push(`@group(0) @binding(${b}) var<uniform> P: Params;`);
  if (e.act === 'gelu') L.push(ERF('f32'), ERF('vec4<f32>'));
  if (p.helpers) L.push(p.helpers);
  return L.join('\n');
}

const XYZW = 'xyzw';

/**
 * The pipeline-cache key of regShader(p, t, e). Everything regShader bakes in must be in it: the
 * tiling, the output form, the epilogue, the problem, and whether the inner k loop needs its tail
 * guard (kInnerValue not a multiple of the step). Without the last, a conv input gradient with O = 9
 * reused an O = 8 pipeline and read past w and dy.
 */
export function regPipelineKey(p: GemmProblem, t: RegTiling, e: GemmEpilogue): string {
  const r = p.reg;
  if (!r) throw new EngineError('gemm', `problem ${p.key} has no register loaders`);
  const vecOut = !!(r.outVec && p.outVec4);
  const kGuard = r.kInnerValue % (t.sg ? SG : (t.ku ?? 4)) !== 0;
  return `gemm:reg:${t.tm}x${t.tn}k${t.ku ?? 4}:${t.wgx}x${t.wgy}${t.sg ? 'sg' : ''}${t.f16 ? 'h' : ''}:${vecOut ? 'v' : ''}${kGuard ? 'g' : ''}:${epilogueKey(e)}:${p.key}`;
}

/** WGSL of the register-tiled kernel. */
export function regShader(p: GemmProblem, t: RegTiling, e: GemmEpilogue): string {
  const r = p.reg;
  if (!r) throw new EngineError('gemm', `problem ${p.key} has no register loaders`);
  const { tm, tn, wgx, wgy } = t;
  const sg = !!t.sg;
  const nv = tn / 4;
  const ku = sg ? SG : (t.ku ?? 4);
  const vecOut = !!(r.outVec && p.outVec4);
  const f16 = !!t.f16;
  const H = f16 ? 'vec4<f16>' : 'vec4<f32>';
  const L: string[] = [header(p, e, sg, vecOut, f16)];
  L.push(`@compute @workgroup_size(${wgx}, ${wgy}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>${sg ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  let m0 = ${wgy === 1 ? 'wid.y' : 'gid.y'} * ${tm}u;
  let valid = gid.x < P.lanes && m0 < P.M;
  ${sg ? `let sl = sid % ${SG}u;` : 'if (!valid) { return; }'}
  let lane = min(gid.x, P.lanes - 1u);`);
  L.push(r.setup(t));
  for (let i = 0; i < tm; i++) for (let j = 0; j < nv; j++) L.push(`  var acc${i}_${j} = ${H}(0.0);`);
  if (r.outer) L.push(r.outer[0]);
  const kGuard = r.kInnerValue % ku !== 0;
  L.push(`  for (var k = 0u; k < ${r.kInner}; k += ${ku}u) {`);
  if (sg) {
    if (!r.aScalar) throw new EngineError('gemm', `problem ${p.key} has no scalar A loader for the subgroup path`);
    for (let i = 0; i < tm; i++) L.push(`    let ar${i} = ${r.aScalar(t, i, 'k + sl')};`);
  }
  for (let q = 0; q < ku / 4; q++) {
    const k = q ? `k + ${4 * q}u` : 'k';
    const body: string[] = [];
    // subgroup path: A values go straight from the broadcast into the multiply-add (no vec4 of A
    // kept live: fewer registers, which lavapipe's 8-wide lanes turn into spills)
    if (!sg) body.push(r.emitA(t, q, k, kGuard));
    // Row by row (loaders with bRows, f32): each B row is loaded, used by all multiply-adds and
    // dropped inside its own uniform `if`. The branch is a scheduling fence for lavapipe's LLVM: in
    // one straight block it hoisted every row's gather to the top and spilled (the conv weight
    // gradient ran 25-35% slower than with the fences; bench/RESULTS.md "gemm-core").
    const perRow = !!r.bRows && !f16;
    if (!perRow) body.push(r.emitB(t, q, k, kGuard));
    // f16: round the loaded operands once, then multiply-add in f16
    const h = f16 ? 'h' : '';
    const aOf = (i: number, kk: number) =>
      sg ? `${f16 ? 'f16' : ''}(subgroupBroadcast(ar${i}, ${4 * q + kk}u))` : `${h}a${i}_${q}.${XYZW[kk]}`;
    if (f16) {
      if (!sg) for (let i = 0; i < tm; i++) body.push(`    let ha${i}_${q} = ${H}(a${i}_${q});`);
      for (let kk = 0; kk < 4; kk++) for (let j = 0; j < nv; j++) body.push(`    let hb${kk}_${j}_${q} = ${H}(b${kk}_${j}_${q});`);
    }
    if (perRow)
      for (let kk = 0; kk < 4; kk++) {
        body.push(`    if (${k} + ${kk}u < ${r.kInner}) {`, r.emitB(t, q, k, false, kk)); // the fence already keeps k + kk in range
        for (let i = 0; i < tm; i++) for (let j = 0; j < nv; j++) body.push(`    acc${i}_${j} = fma(${H}(${aOf(i, kk)}), b${kk}_${j}_${q}, acc${i}_${j});`);
        body.push('    }');
      }
    else
      for (let i = 0; i < tm; i++)
        for (let j = 0; j < nv; j++) {
          let x = `acc${i}_${j}`;
          for (let kk = 3; kk >= 0; kk--) x = `fma(${H}(${aOf(i, kk)}), ${h}b${kk}_${j}_${q}, ${x})`;
          body.push(`    acc${i}_${j} = ${x};`);
        }
    // later quads of a step that can run past the end are skipped as a whole (uniform branch)
    if (q > 0 && kGuard) L.push(`    if (${k} < ${r.kInner}) {`, ...body, '    }');
    else L.push(...body);
  }
  L.push('  }');
  if (r.outer) L.push(r.outer[1]);
  if (sg) L.push('  if (!valid) { return; }');
  for (let i = 0; i < tm; i++) {
    const row = `min(m0 + ${i}u, P.M - 1u)`;
    for (let j = 0; j < nv; j++) {
      if (vecOut) {
        const o = r.outVec!(t, i, j);
        const cols = [0, 1, 2, 3].map((c) => (r.col ? r.col(t, j, c) : '0u'));
        const val = epilogueExpr(e, `vec4<f32>(acc${i}_${j})`, true, row, cols, `R[${o.idx}]`);
        L.push(`  ${o.ok ? `if (${o.ok}) ` : ''}{ C[${o.idx}] = ${val}; }`);
      } else {
        // the epilogue on the vec4 (activation code once per 4 outputs: unrolled scalar erf/exp made
        // lavapipe's compiler take minutes), then guarded scalar stores
        const idx = [0, 1, 2, 3].map((c) => r.outIdx(t, i, j, c));
        const cols = [0, 1, 2, 3].map((c) => (r.col ? r.col(t, j, c) : '0u'));
        const resid = `vec4<f32>(${idx.map((x) => `R[min(${x}, arrayLength(&R) - 1u)]`).join(', ')})`;
        L.push(`  { let v = ${epilogueExpr(e, `vec4<f32>(acc${i}_${j})`, true, row, cols, resid)};`);
        for (let c = 0; c < 4; c++) {
          const ok = r.outOk(t, i, j, c);
          L.push(`    ${ok ? `if (${ok}) ` : ''}{ C[${idx[c]}] = v.${XYZW[c]}; }`);
        }
        L.push('  }');
      }
    }
  }
  L.push('}');
  return L.join('\n');
}

/** WGSL of the workgroup-memory tiled kernel. */
export function wgShader(p: GemmProblem, t: WgTiling, e: GemmEpilogue): string {
  const { bm, bn, bk, tm, tn } = t;
  const wx = bn / tn, wy = bm / tm, nt = wx * wy;
  const L: string[] = [header({ ...p, helpers: `${p.helpers ?? ''}\n${p.flat.fns}` }, e, false, false)];
  L.push(`var<workgroup> As: array<f32, ${bk * bm}>;
var<workgroup> Bs: array<f32, ${bk * bn}>;
@compute @workgroup_size(${wx}, ${wy}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z;
  let row0 = wid.y * ${bm}u;
  let col0 = wid.x * ${bn}u;
  let tid = lid.y * ${wx}u + lid.x;
  var acc: array<f32, ${tm * tn}>;
  for (var k0 = 0u; k0 < P.K; k0 += ${bk}u) {
    for (var s = tid; s < ${bm * bk}u; s += ${nt}u) {
      let m = row0 + s / ${bk}u;
      let k = k0 + s % ${bk}u;
      var v = 0.0;
      if (m < P.M && k < P.K) { v = A_at(m, k, z); }
      As[(s % ${bk}u) * ${bm}u + s / ${bk}u] = v;
    }
    for (var s = tid; s < ${bn * bk}u; s += ${nt}u) {
      let k = k0 + s / ${bn}u;
      let n = col0 + s % ${bn}u;
      var v = 0.0;
      if (n < P.N && k < P.K) { v = B_at(k, n, z); }
      Bs[s] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      ${Array.from({ length: tm }, (_, i) => `let a${i} = As[kk * ${bm}u + lid.y * ${tm}u + ${i}u];`).join(' ')}
      ${Array.from({ length: tn }, (_, j) => `let b${j} = Bs[kk * ${bn}u + lid.x * ${tn}u + ${j}u];`).join(' ')}
      ${Array.from({ length: tm * tn }, (_, q) => `acc[${q}] = fma(a${Math.floor(q / tn)}, b${q % tn}, acc[${q}]);`).join(' ')}
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${tm}u; i++) {
    let m = row0 + lid.y * ${tm}u + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < ${tn}u; j++) {
      let n = col0 + lid.x * ${tn}u + j;
      if (n >= P.N) { break; }
      let idx = C_idx(m, n, z);
      C[idx] = ${epilogueExpr(e, `acc[i * ${tn}u + j]`, false, 'm', 'n', 'R[idx]')};
    }
  }
}`);
  return L.join('\n');
}

// ------------------------------------------------------------------------------------------------
// Tiling choice

/** The default workgroup tiling (64×64 outputs, 16 deep, 4×4 per invocation: 256 invocations). */
export const WG_TILING: WgTiling = { kind: 'wg', bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };

const forced = new WeakMap<GpuContext, GemmVariant>();
const f16Warned = new WeakSet<GpuContext>();
const tuned = new Map<string, GemmVariant>();

/** Adapters that are CPUs (lavapipe, SwiftShader): barriers and workgroup memory cost more than they save. */
export function isCpuAdapter(ctx: GpuContext): boolean {
  const a = ctx.adapterInfo;
  return /llvmpipe|lavapipe|swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

/** Key of the adapter in the tiling cache. */
export const adapterKey = (ctx: GpuContext) => {
  const a = ctx.adapterInfo;
  return `${a.vendor}|${a.architecture}|${a.device}|${a.description}`;
};

/** Shape class of a problem in the tiling cache: kind and log2 size buckets of M, N, K. */
export function shapeClass(kind: string, M: number, N: number, K: number): string {
  const b = (v: number) => Math.min(12, Math.max(4, Math.round(Math.log2(Math.max(1, v)))));
  return `${kind}:${b(M)}:${b(N)}:${b(K)}`;
}

/** Force one variant on this context (tests, benchmarks); undefined restores the automatic choice. */
export function setGemmVariant(ctx: GpuContext, v: GemmVariant | undefined): void {
  if (v) forced.set(ctx, v);
  else forced.delete(ctx);
}

/** Record a measured choice for (adapter, shape class) (tuneGemm and its on-disk cache fill this). */
export function recordGemmChoice(key: string, v: GemmVariant): void {
  tuned.set(key, v);
}

/** Every recorded choice, keyed `adapter#shapeClass` (what the on-disk cache stores). */
export function gemmChoices(): Record<string, GemmVariant> {
  return Object.fromEntries(tuned);
}

function envVariant(): GemmVariant | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.GEMM_VARIANT;
  return env === 'reg' || env === 'wg' ? env : undefined;
}

/**
 * Which tiling this problem runs with: forced (setGemmVariant, then GEMM_VARIANT), else the recorded
 * measurement for this adapter and shape class, else 'reg' on CPU adapters and 'wg' on others.
 * Deterministic: nothing here measures.
 */
export function gemmVariant(ctx: GpuContext, cls: string): GemmVariant {
  const f = forced.get(ctx) ?? envVariant();
  if (f) return f;
  return tuned.get(`${adapterKey(ctx)}#${cls}`) ?? (isCpuAdapter(ctx) ? 'reg' : 'wg');
}

// ------------------------------------------------------------------------------------------------
// Launch

/** Run one GEMM problem with the given tiling and epilogue; bias / residual as the epilogue needs. */
export function runGemm(
  ctx: GpuContext,
  op: string,
  p: GemmProblem,
  tiling: GemmTiling,
  e: GemmEpilogue = {},
  extra: { bias?: Tensor; residual?: Tensor } = {},
): void {
  if (!!e.bias !== !!extra.bias) throw new EngineError(op, `epilogue bias ${e.bias ?? 'none'} but ${extra.bias ? 'a' : 'no'} bias tensor`);
  if (!!e.residual !== !!extra.residual) throw new EngineError(op, 'residual epilogue needs exactly one residual tensor');
  if (extra.residual && extra.residual.size !== p.out.size)
    throw new EngineError(op, `residual ${extra.residual.describe()} does not match the output ${p.out.describe()}`);
  const buffers = [p.out.binding(op), ...p.inputs.map((i) => i.tensor.binding(op))];
  if (extra.bias) buffers.push(extra.bias.binding(op));
  if (extra.residual) buffers.push(extra.residual.binding(op));
  const alpha = e.alpha !== undefined ? [{ f: e.alpha }] : [];
  const ek = epilogueKey(e);
  if (tiling.kind === 'reg') {
    const r = p.reg;
    if (!r) throw new EngineError(op, `${p.key} has no register path`);
    let t = tiling;
    if (t.f16 && !ctx.features.has('shader-f16')) {
      if (!f16Warned.has(ctx)) console.warn(`${op}: the adapter has no 'shader-f16'; the f16 GEMM falls back to f32`);
      f16Warned.add(ctx);
      t = { ...t, f16: false };
    }
    const rowTiles = Math.ceil(p.flat.M / t.tm);
    ctx.dispatch({
      op,
      key: regPipelineKey(p, t, e),
      code: () => regShader(p, t, e),
      buffers,
      uniforms: packUniforms([p.flat.M, p.flat.N, p.flat.K, r.lanes, ...p.paramValues, ...alpha]),
      workgroups: [Math.ceil(r.lanes / t.wgx), Math.ceil(rowTiles / t.wgy), r.z],
    });
  } else {
    const t = tiling;
    const f = p.flat;
    ctx.dispatch({
      op,
      key: `gemm:wg:${t.bm}x${t.bn}x${t.bk}:${t.tm}x${t.tn}:${ek}:${p.key}`,
      code: () => wgShader(p, t, e),
      buffers,
      uniforms: packUniforms([f.M, f.N, f.K, 0, ...p.paramValues, ...alpha]),
      workgroups: [Math.ceil(f.N / t.bn), Math.ceil(f.M / t.bm), f.z],
    });
  }
}

// ------------------------------------------------------------------------------------------------
// Measured choice

/** Where measured choices persist between runs (Node: a JSON file, see gemm-cache-node.ts; browser: none). */
export interface GemmChoiceStore {
  load(): Promise<Record<string, GemmVariant>>;
  save(choices: Record<string, GemmVariant>): Promise<void>;
}

/** One shape class to measure: its class key (shapeClass) and a launch of a representative problem. */
export interface GemmTuneCase {
  cls: string;
  /** launches the problem once (under whichever variant is forced) and returns its output to dispose */
  run: () => Tensor;
}

/**
 * The short measured sweep: for each case whose (adapter, class) has no recorded choice, time every
 * variant (one warm-up launch to compile, then `reps` launches, best of them) and record the faster.
 * Choices already in `store` are loaded first and the new ones saved back. Never runs implicitly:
 * call it once at start-up (training scripts, benchmarks); ops stay deterministic without it.
 * Returns the choices made or found for the cases.
 */
export async function tuneGemm(ctx: GpuContext, cases: GemmTuneCase[], opts: { store?: GemmChoiceStore; reps?: number } = {}): Promise<Record<string, GemmVariant>> {
  const reps = opts.reps ?? 3;
  if (opts.store) for (const [k, v] of Object.entries(await opts.store.load())) if (v === 'reg' || v === 'wg') tuned.set(k, v);
  const out: Record<string, GemmVariant> = {};
  const before = forced.get(ctx);
  let measured = false;
  try {
    for (const c of cases) {
      const key = `${adapterKey(ctx)}#${c.cls}`;
      const known = tuned.get(key);
      if (known) {
        out[c.cls] = known;
        continue;
      }
      const best: Record<string, number> = {};
      for (const v of ['reg', 'wg'] as GemmVariant[]) {
        forced.set(ctx, v);
        c.run().dispose();
        await ctx.sync();
        let t = Infinity;
        for (let r = 0; r < reps; r++) {
          const t0 = performance.now();
          c.run().dispose();
          await ctx.sync();
          t = Math.min(t, performance.now() - t0);
        }
        best[v] = t;
      }
      const v: GemmVariant = best.wg! < best.reg! ? 'wg' : 'reg';
      tuned.set(key, v);
      out[c.cls] = v;
      measured = true;
    }
  } finally {
    if (before) forced.set(ctx, before);
    else forced.delete(ctx);
  }
  if (measured && opts.store) await opts.store.save(gemmChoices());
  return out;
}
