// f16 matrix multiply with f32 accumulation, the mixed-precision linear and matmul built on it, and
// the autocast switch that routes the public `linear`/`matmul` ops to them.
//
// TO BE FOLDED INTO THE GEMM CORE: this is a stand-alone kernel (f16 operands in storage, products
// widened to f32 and accumulated with fma in f32, output f32 or f16, optional f32 bias in the
// epilogue) written while the shared GEMM core (src/wgsl/gemm.ts, branch `gemm`) is being built. Once
// that core has an f16 loader, matmulF16Raw should become a thin call into it and this shader goes.
// The shader is deliberately plain: each invocation computes a 4×4 tile of C from scalar loads (no
// workgroup memory), correct for every shape and transpose; it is not tuned for any device.
//
// Precision: f16 × f16 products are exact in f32 (11-bit significands, 22-bit product), so against
// the f32 product of the same f16-rounded operands the only difference is f32 summation order. The
// rounding of f32 operands to f16 (relative 2^-11 each) bounds |C16 - C32| <= ~2^-10 · Σ_k |a_ik||b_kj|;
// the tests (test/portable/f16.ts) use that bound. (lavapipe carries f16 register values at f32
// precision, so there only the f16 storage of the operands and of an f16 C is really binary16.)
//
// Autocast: inside `autocast(ctx, fn)` (src/nn/amp.ts) the public `linear` runs as linearMixed and
// `matmul` of two matrices (rank 2, or A batched against a rank-2 B) as matmulMixed: f32 tensors in
// and out, f16 compute inside, the backward matmuls in f16 too (dY rounded to f16). Other matmuls
// (batched B) stay f32. A context without 'shader-f16' runs everything in f32 and says so once.

import type { GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { numel, shapeStr } from '../autograd/shape.js';
import { packUniforms } from './util.js';
import { sum } from './reduce.js';
import { castRaw, hasF16, requireF16 } from './cast.js';
import { linear as linearF32, matmul as matmulF32, type MatmulOptions } from './matmul.js';
import { EngineError } from '../util/errors.js';

export interface MatmulF16Options extends MatmulOptions {
  /** dtype of C (default f32). */
  out?: 'f32' | 'f16';
  /** f32 [N] added in the epilogue, before any rounding to f16. */
  bias?: Tensor;
}

const TM = 4;
const TN = 4;
const WGX = 8;
const WGY = 8;

function matmulF16Shader(transA: boolean, transB: boolean, outF16: boolean, bias: boolean): string {
  const aIdx = transA ? '(k * P.M + m)' : '(m * P.K + k)';
  const bIdx = transB ? '(n * P.K + k)' : '(k * P.N + n)';
  const L: string[] = [];
  L.push(`enable f16;
struct Params { M: u32, N: u32, K: u32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> C: array<${outF16 ? 'f16' : 'f32'}>;
@group(0) @binding(1) var<storage, read> A: array<f16>;
@group(0) @binding(2) var<storage, read> B: array<f16>;
${bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;\n' : ''}@group(0) @binding(${bias ? 4 : 3}) var<uniform> P: Params;
fn loadA(m: u32, k: u32) -> f32 {
  if (m >= P.M) { return 0.0; }
  return f32(A[${aIdx}]);
}
fn loadB(k: u32, n: u32) -> f32 {
  if (n >= P.N) { return 0.0; }
  return f32(B[${bIdx}]);
}
@compute @workgroup_size(${WGX}, ${WGY}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = gid.y * ${TM}u;
  let n0 = gid.x * ${TN}u;
  if (m0 >= P.M || n0 >= P.N) { return; }`);
  for (let i = 0; i < TM; i++) L.push(`  var acc${i} = vec4<f32>(0.0);`);
  L.push('  for (var k = 0u; k < P.K; k++) {');
  L.push(`    let b = vec4<f32>(${[0, 1, 2, 3].map((j) => `loadB(k, n0 + ${j}u)`).join(', ')});`);
  for (let i = 0; i < TM; i++) L.push(`    acc${i} = fma(vec4<f32>(loadA(m0 + ${i}u, k)), b, acc${i});`);
  L.push('  }');
  if (bias)
    L.push(`  let bv = vec4<f32>(${[0, 1, 2, 3].map((j) => `select(0.0, bias[min(n0 + ${j}u, P.N - 1u)], n0 + ${j}u < P.N)`).join(', ')});`);
  for (let i = 0; i < TM; i++) {
    const val = bias ? `acc${i} + bv` : `acc${i}`;
    const stores = [0, 1, 2, 3]
      .map((j) => `if (n0 + ${j}u < P.N) { C[(m0 + ${i}u) * P.N + n0 + ${j}u] = ${outF16 ? `f16(v[${j}])` : `v[${j}]`}; }`)
      .join(' ');
    L.push(`  if (m0 + ${i}u < P.M) { let v = ${val}; ${stores} }`);
  }
  L.push('}');
  return L.join('\n');
}

/**
 * The f16 GEMM launch without autograd. `a` f16 [M, K] ([K, M] with transA), `b` f16 [K, N] ([N, K]
 * with transB); returns C [M, N] in `opts.out` (default f32), accumulated in f32. Needs 'shader-f16'.
 */
export function matmulF16Raw(a: Tensor, b: Tensor, opts: MatmulF16Options = {}, op = 'matmulF16'): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  for (const [name, t] of [['a', a], ['b', b]] as const) {
    if (t.dtype !== 'f16') throw new EngineError(op, `${name} is ${t.describe()}; the f16 matmul takes f16 operands (cast first)`);
    if (t.rank !== 2) throw new EngineError(op, `${name} is ${t.describe()}; the f16 matmul takes matrices (rank 2)`);
  }
  if (a.ctx !== b.ctx) throw new EngineError(op, 'a and b live on different GPU contexts');
  requireF16(a.ctx, op, 'the f16 matmul');
  const M = a.shape[transA ? 1 : 0]!;
  const K = a.shape[transA ? 0 : 1]!;
  const Kb = b.shape[transB ? 1 : 0]!;
  const N = b.shape[transB ? 0 : 1]!;
  if (K !== Kb)
    throw new EngineError(
      op,
      `inner dimensions differ: a ${shapeStr(a.shape)}${transA ? ' (transposed)' : ''} has K=${K}, b ${shapeStr(b.shape)}${transB ? ' (transposed)' : ''} has K=${Kb}`,
    );
  const bias = opts.bias;
  if (bias && (bias.dtype !== 'f32' || bias.rank !== 1 || bias.shape[0] !== N))
    throw new EngineError(op, `bias ${bias.describe()} must be f32 [${N}] (the output columns)`);
  const outF16 = opts.out === 'f16';
  const out = new Tensor(a.ctx, [M, N], outF16 ? 'f16' : 'f32');
  if (out.size === 0) return out;
  if (K === 0) throw new EngineError(op, `K = 0 (a ${shapeStr(a.shape)}, b ${shapeStr(b.shape)}): nothing to accumulate`);
  a.ctx.dispatch({
    op,
    key: `matmulF16:${+transA}${+transB}:${+outF16}${+!!bias}`,
    code: () => matmulF16Shader(transA, transB, outF16, !!bias),
    buffers: [out.binding(op), a.binding(op), b.binding(op), ...(bias ? [bias.binding(op)] : [])],
    uniforms: packUniforms([M, N, K, 0]),
    workgroups: [Math.ceil(N / (TN * WGX)), Math.ceil(M / (TM * WGY)), 1],
  });
  return out;
}

/** `t` rounded to f16 without autograd (a copy even when it is f16 already, so the caller may dispose it). */
function toF16(t: Tensor, op: string): Tensor {
  return t.dtype === 'f16' ? new Tensor(t.ctx, t.shape, 'f16', t) : castRaw(t, 'f16', op);
}

/** [...batch, R, C] seen as [batch·R, C] (a free view). */
function fold(t: Tensor): Tensor {
  return view(t, [numel(t.shape.slice(0, -1)), t.shape[t.rank - 1]!]);
}

/** C = op(A)·op(B) on f16-rounded operands, for f32 (or f16) operands of rank 2; returns f32 C. */
function mixedGemm(a: Tensor, b: Tensor, opts: MatmulF16Options, op: string): Tensor {
  const a16 = toF16(a, op);
  const b16 = toF16(b, op);
  const c = matmulF16Raw(a16, b16, opts, op);
  a16.dispose();
  b16.dispose();
  return c;
}

/**
 * Mixed-precision matmul: f32 `a` [M, K] (or [...batch, M, K] against a rank-2 `b`, folded into M;
 * transA only for rank 2) and f32 `b` [K, N] are rounded to f16, multiplied with f32 accumulation,
 * and C is f32. Backward: dA and dB by the same f16 GEMM, with dC rounded to f16 (so tiny gradients
 * underflow unless the loss is scaled: see GradScaler). Needs 'shader-f16'.
 */
export function matmulMixed(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = 'matmulMixed';
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  for (const [name, t] of [['a', a], ['b', b]] as const)
    if (t.dtype !== 'f32') throw new EngineError(op, `${name} is ${t.describe()}; the mixed-precision matmul takes f32 tensors`);
  if (b.rank !== 2 || a.rank < 2 || (a.rank > 2 && transA))
    throw new EngineError(op, `a ${a.describe()} and b ${b.describe()}: needs rank-2 b and rank-2 a (or batched a, not transposed)`);
  const a2 = a.rank === 2 ? view(a) : fold(a);
  const c2 = mixedGemm(a2, b, opts, op);
  a2.dispose();
  const M = transA ? a.shape[1]! : a.shape[a.rank - 2]!;
  const c = a.rank === 2 ? c2 : view(c2, [...a.shape.slice(0, -2), M, c2.shape[1]!]);
  if (c !== c2) c2.dispose();
  return record(c, op, [a, b], (dC) => {
    const d2 = view(dC, [numel(dC.shape.slice(0, -1)), dC.shape[dC.rank - 1]!]);
    const d16 = castRaw(d2, 'f16', op);
    d2.dispose();
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      const b16 = toF16(b, op);
      // dA (stored orientation): transA ? op(B)·dCᵀ : dC·op(B)ᵀ
      const g = transA ? matmulF16Raw(b16, d16, { transA: transB, transB: true }, op) : matmulF16Raw(d16, b16, { transB: !transB }, op);
      b16.dispose();
      da = a.rank === 2 ? g : view(g, a.shape);
      if (da !== g) g.dispose();
    }
    if (b.requiresGrad) {
      const af = a.rank === 2 ? view(a) : fold(a);
      const a16 = toF16(af, op);
      af.dispose();
      // dB (stored orientation): transB ? dCᵀ·op(A) : op(A)ᵀ·dC
      db = transB ? matmulF16Raw(d16, a16, { transA: true, transB: transA }, op) : matmulF16Raw(a16, d16, { transA: !transA }, op);
      a16.dispose();
    }
    d16.dispose();
    return [da, db];
  });
}

/**
 * Mixed-precision fully connected layer: y = x·wᵀ + bias with x [..., IN] and w [OUT, IN] (f32)
 * rounded to f16, f32 accumulation, the f32 bias added in the epilogue; y is f32. The backward
 * matmuls run in f16 too (dY rounded to f16), db is summed in f32. Needs 'shader-f16'.
 */
export function linearMixed(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const op = 'linearMixed';
  if (x.dtype !== 'f32' || x.rank < 1) throw new EngineError(op, `x is ${x.describe()}; linear takes f32 with at least one dimension`);
  if (w.dtype !== 'f32' || w.rank !== 2) throw new EngineError(op, `weight ${w.describe()} must be f32 [out, in]`);
  const inF = x.shape[x.rank - 1]!;
  if (w.shape[1] !== inF)
    throw new EngineError(op, `inner dimensions differ: x ${shapeStr(x.shape)} has ${inF} features, weight ${shapeStr(w.shape)} expects ${w.shape[1]}`);
  const OUT = w.shape[0]!;
  const x2 = view(x, [numel(x.shape.slice(0, -1)), inF]);
  const y2 = mixedGemm(x2, w, { transB: true, ...(bias ? { bias } : {}) }, op);
  x2.dispose();
  const y = view(y2, [...x.shape.slice(0, -1), OUT]);
  y2.dispose();
  return record(y, op, bias ? [x, w, bias] : [x, w], (dY) => {
    const d2 = view(dY, [numel(dY.shape.slice(0, -1)), OUT]);
    const d16 = castRaw(d2, 'f16', op);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const w16 = castRaw(w, 'f16', op);
      const g = matmulF16Raw(d16, w16, {}, op); // [rows, IN]
      w16.dispose();
      dx = view(g, x.shape);
      g.dispose();
    }
    let dw: Tensor | null = null;
    if (w.requiresGrad) {
      const xf = view(x, [d2.shape[0]!, inF]);
      const x16 = castRaw(xf, 'f16', op);
      xf.dispose();
      dw = matmulF16Raw(d16, x16, { transA: true }, op); // [OUT, IN]
      x16.dispose();
    }
    d16.dispose();
    const db = bias?.requiresGrad ? sum(d2, 0) : null;
    d2.dispose();
    return [dx, dw, db];
  });
}

// ------------------------------------------------------------------------------------------------
// Autocast state (per context; set by src/nn/amp.ts's autocast) and the routed public ops

const autocastDepth = new WeakMap<GpuContext, number>();
const warned = new WeakSet<GpuContext>();

/** The one line printed (once per context) when autocast runs in f32 for lack of 'shader-f16'. */
export const F16_FALLBACK_MESSAGE =
  "mixed precision: this device has no 'shader-f16'; running in f32 instead (results as without autocast)";

/** Enter (+1) or leave (-1) an autocast region on `ctx`. Prefer autocast() from src/nn/amp.ts. */
export function autocastEnter(ctx: GpuContext, delta: 1 | -1): void {
  const d = (autocastDepth.get(ctx) ?? 0) + delta;
  if (d < 0) throw new EngineError('autocast', 'left an autocast region that was not entered');
  autocastDepth.set(ctx, d);
  if (delta === 1 && d === 1 && !hasF16(ctx) && !warned.has(ctx)) {
    warned.add(ctx);
    console.warn(F16_FALLBACK_MESSAGE);
  }
}

/** True inside an autocast region on a device with 'shader-f16' (the mixed kernels will be used). */
export function autocastActive(ctx: GpuContext): boolean {
  return (autocastDepth.get(ctx) ?? 0) > 0 && hasF16(ctx);
}

/** The public `linear`: f32 (matmul.ts) normally, linearMixed inside autocast. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  return autocastActive(x.ctx) && x.dtype === 'f32' && w.dtype === 'f32' && w.rank === 2 && x.rank >= 1
    ? linearMixed(x, w, bias)
    : linearF32(x, w, bias);
}

/** The public `matmul`: f32 (matmul.ts) normally; matmulMixed inside autocast where it applies. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const mixable = a.dtype === 'f32' && b.dtype === 'f32' && b.rank === 2 && (a.rank === 2 || (a.rank > 2 && !opts.transA));
  return autocastActive(a.ctx) && mixable ? matmulMixed(a, b, opts) : matmulF32(a, b, opts);
}
