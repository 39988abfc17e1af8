// Batched matrix multiply C = op(A)·op(B) with NumPy batch broadcasting and in-kernel transposes, plus
// `linear` (y = x·wᵀ + b, PyTorch semantics) with the bias fused into the same kernel's epilogue.
// No shared memory and no barriers (expensive on CPU WebGPU): each invocation computes a TM×TN
// register tile from vec4 loads when the storage rows allow it, scalar guarded loads otherwise.
// It does not do f16, split-K, or integer matrices.
//
// Dimension letters: M rows of C, N columns of C, K the inner dimension; "batch" are the leading
// dimensions, broadcast between A and B.

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { broadcastShapes, broadcastStrides, numel, shapeStr } from '../autograd/shape.js';
import { packUniforms } from './util.js';
import { sum, sumTo } from './reduce.js';
import { EngineError } from '../util/errors.js';

export interface MatmulOptions {
  /** A is stored as [...batch, K, M] and used transposed. */
  transA?: boolean;
  /** B is stored as [...batch, N, K] and used transposed. */
  transB?: boolean;
}

/** Register tile per invocation (rows × columns of C) and workgroup shape (invocations along N, M). */
export interface MatmulTiling {
  tm: number;
  tn: number;
  wgx: number;
  wgy: number;
  /** k values per loop step (4 or 8; default 4) */
  ku?: number;
}

/**
 * The tiling matmul() uses for an M×N output, chosen with `bench/matmul.ts --variants` on lavapipe
 * (bench/RESULTS.md). Large outputs: 8×8 register tiles on a 4×4 workgroup (a quiet-machine sweep
 * at 256-1024 and a ResNet im2col shape put it level with or ahead of one 16-wide row of invocations,
 * 9.6 vs 8.0 GFLOP/s at 512). Small or not vec4-aligned shapes keep 4×4
 * tiles on an 8×8 workgroup: an 8×8 tile with guarded scalar loads took minutes to compile on
 * lavapipe, and at small sizes compile time dominates anyway.
 */
export function chooseTiling(M: number, N: number, K: number, adapter?: { architecture: string; vendor: string }): MatmulTiling {
  // SwiftShader (Chromium's CPU Vulkan) takes minutes to compile the unrolled 4x4 register tile
  // (a 5x7x6 product did not finish in 100 s); one output per invocation compiles in ~0.1 s.
  if (adapter && (adapter.architecture === 'swiftshader' || /swiftshader/i.test(adapter.vendor))) return { tm: 1, tn: 1, wgx: 8, wgy: 8, ku: 4 };
  if (M >= 64 && N >= 64 && M % 4 === 0 && N % 4 === 0 && K % 4 === 0) return { tm: 8, tn: 8, wgx: 4, wgy: 4, ku: 4 };
  return { tm: 4, tn: 4, wgx: 8, wgy: 8, ku: 4 };
}

const MAX_BATCH_RANK = 8;

/** Static facts about one launch that select the generated shader (all part of the cache key). */
interface Variant {
  transA: boolean;
  transB: boolean;
  /** vec4 loads of A / B (contiguous storage dimension is a multiple of 4). */
  vecA: boolean;
  vecB: boolean;
  /** guards needed on stored rows / columns of A and B, and on C's rows / columns */
  rowA: boolean;
  colA: boolean;
  rowB: boolean;
  colB: boolean;
  rowC: boolean;
  colC: boolean;
  vecC: boolean;
  batched: boolean;
  bias: boolean;
  tiling: MatmulTiling;
}

function variantKey(v: Variant): string {
  const f = (b: boolean) => (b ? '1' : '0');
  const t = v.tiling;
  return `matmul:${t.tm}x${t.tn}k${t.ku ?? 4}:${t.wgx}x${t.wgy}:${f(v.transA)}${f(v.transB)}:${f(v.vecA)}${f(v.vecB)}${f(v.vecC)}:${f(v.rowA)}${f(v.colA)}${f(v.rowB)}${f(v.colB)}${f(v.rowC)}${f(v.colC)}:${f(v.batched)}${f(v.bias)}`;
}

/**
 * WGSL of one variant. Stored matrices: A is rowsA×colsA (M×K, or K×M when transposed), B is
 * rowsB×colsB (K×N, or N×K). The k loop advances 4 at a time; per step each invocation loads
 * TM vec4 of A and 4·TN/4 vec4 of B (transposed operands are re-oriented in registers).
 */
export function matmulShader(v: Variant): string {
  const { tm, tn, wgx, wgy } = v.tiling;
  const ku = v.tiling.ku ?? 4;
  const nv = tn / 4; // vec4 columns per row of the register tile
  const L: string[] = [];
  const arr = (vec: boolean) => (vec ? 'array<vec4<f32>>' : 'array<f32>');
  // load4(X, r, c): stored row r, columns c..c+3 of operand X as a vec4 (zeros outside)
  const loadFn = (name: string, vec: boolean, rowCheck: boolean, colCheck: boolean, rows: string, cols: string) => {
    if (vec) {
      const conds = [rowCheck ? `r < ${rows}` : '', colCheck ? `c < ${cols}` : ''].filter(Boolean);
      const body = `return ${name}[(off + r * ${cols} + c) / 4u];`;
      return `fn load_${name}(off: u32, r: u32, c: u32) -> vec4<f32> {
  ${conds.length ? `if (${conds.join(' && ')}) { ${body} }\n  return vec4<f32>(0.0);` : body}
}`;
    }
    const el = (e: number) => {
      const conds = [rowCheck ? `r < ${rows}` : '', `c + ${e}u < ${cols}`].filter(Boolean).join(' && ');
      return `select(0.0, ${name}[min(off + r * ${cols} + c + ${e}u, arrayLength(&${name}) - 1u)], ${conds})`;
    };
    return `fn load_${name}(off: u32, r: u32, c: u32) -> vec4<f32> {
  return vec4<f32>(${[0, 1, 2, 3].map(el).join(', ')});
}`;
  };
  const rowsA = v.transA ? 'P.K' : 'P.M';
  const colsA = v.transA ? 'P.M' : 'P.K';
  const rowsB = v.transB ? 'P.N' : 'P.K';
  const colsB = v.transB ? 'P.K' : 'P.N';
  L.push(`struct Params { M: u32, N: u32, K: u32, batchRank: u32, shape: array<vec4<u32>, 2>, stA: array<vec4<u32>, 2>, stB: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read_write> C: ${arr(v.vecC)};
@group(0) @binding(1) var<storage, read> A: ${arr(v.vecA)};
@group(0) @binding(2) var<storage, read> B: ${arr(v.vecB)};
${v.bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;\n' : ''}@group(0) @binding(${v.bias ? 4 : 3}) var<uniform> P: Params;
${loadFn('A', v.vecA, v.rowA, v.colA, rowsA, colsA)}
${loadFn('B', v.vecB, v.rowB, v.colB, rowsB, colsB)}
@compute @workgroup_size(${wgx}, ${wgy}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let m0 = ${wgy === 1 ? 'wid.y' : 'gid.y'} * ${tm}u;
  let n0 = gid.x * ${tn}u;
  if (m0 >= P.M || n0 >= P.N) { return; }`);
  if (v.batched)
    L.push(`  var rem = wid.z;
  var offA = 0u;
  var offB = 0u;
  for (var d = i32(P.batchRank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = P.shape[du / 4u][du % 4u];
    let coord = rem % size;
    rem = rem / size;
    offA += coord * P.stA[du / 4u][du % 4u];
    offB += coord * P.stB[du / 4u][du % 4u];
  }
  let offC = wid.z * P.M * P.N;`);
  else L.push('  let offA = 0u;\n  let offB = 0u;\n  let offC = 0u;');
  for (let i = 0; i < tm; i++) for (let j = 0; j < nv; j++) L.push(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < P.K; k += ${ku}u) {`);
  for (let q = 0; q < ku / 4; q++) {
    const k = q ? `k + ${4 * q}u` : 'k';
    // A rows over k: a{i}
    if (!v.transA) for (let i = 0; i < tm; i++) L.push(`    let a${i}_${q} = load_A(offA, m0 + ${i}u, ${k});`);
    else
      for (let ib = 0; ib < tm / 4; ib++) {
        for (let kk = 0; kk < 4; kk++) L.push(`    let at${ib}_${kk}_${q} = load_A(offA, ${k} + ${kk}u, m0 + ${4 * ib}u);`);
        for (let ii = 0; ii < 4; ii++) {
          const c = 'xyzw'[ii];
          L.push(`    let a${4 * ib + ii}_${q} = vec4<f32>(${[0, 1, 2, 3].map((kk) => `at${ib}_${kk}_${q}.${c}`).join(', ')});`);
        }
      }
    // B rows over n: b{kk}_{j}
    if (!v.transB)
      for (let kk = 0; kk < 4; kk++)
        for (let j = 0; j < nv; j++) L.push(`    let b${kk}_${j}_${q} = load_B(offB, ${k} + ${kk}u, n0 + ${4 * j}u);`);
    else
      for (let j = 0; j < nv; j++) {
        for (let jj = 0; jj < 4; jj++) L.push(`    let bt${j}_${jj}_${q} = load_B(offB, n0 + ${4 * j + jj}u, ${k});`);
        for (let kk = 0; kk < 4; kk++) {
          const c = 'xyzw'[kk];
          L.push(`    let b${kk}_${j}_${q} = vec4<f32>(${[0, 1, 2, 3].map((jj) => `bt${j}_${jj}_${q}.${c}`).join(', ')});`);
        }
      }
    for (let i = 0; i < tm; i++)
      for (let j = 0; j < nv; j++) {
        let e = `acc${i}_${j}`;
        for (let kk = 3; kk >= 0; kk--) e = `fma(vec4<f32>(a${i}_${q}.${'xyzw'[kk]}), b${kk}_${j}_${q}, ${e})`;
        L.push(`    acc${i}_${j} = ${e};`);
      }
  }
  L.push('  }');
  // epilogue: bias, guarded stores
  for (let j = 0; j < nv; j++) {
    if (v.bias)
      L.push(
        `  let bias${j} = vec4<f32>(${[0, 1, 2, 3]
          .map((e) => `select(0.0, bias[min(n0 + ${4 * j + e}u, P.N - 1u)], n0 + ${4 * j + e}u < P.N)`)
          .join(', ')});`,
      );
  }
  for (let i = 0; i < tm; i++) {
    const rowGuard = v.rowC ? `if (m0 + ${i}u < P.M) ` : '';
    const parts: string[] = [];
    for (let j = 0; j < nv; j++) {
      const val = v.bias ? `acc${i}_${j} + bias${j}` : `acc${i}_${j}`;
      const c = `n0 + ${4 * j}u`;
      const idx = `offC + (m0 + ${i}u) * P.N + ${c}`;
      if (v.vecC) parts.push(`${v.colC ? `if (${c} < P.N) ` : ''}{ C[(${idx}) / 4u] = ${val}; }`);
      else
        parts.push(
          `{ let v = ${val};${[0, 1, 2, 3].map((e) => ` if (${c} + ${e}u < P.N) { C[${idx} + ${e}u] = v[${e}]; }`).join('')} }`,
        );
    }
    L.push(`  ${rowGuard}{ ${parts.join(' ')} }`);
  }
  L.push('}');
  return L.join('\n');
}

function checkOperand(op: string, name: string, t: Tensor) {
  if (t.dtype !== 'f32') throw new EngineError(op, `${name} is ${t.describe()}; matmul takes f32`);
  if (t.rank < 2) throw new EngineError(op, `${name} is ${t.describe()}; matmul needs matrices (rank >= 2)`);
}

/**
 * The kernel launch without autograd. `a` is [...batch, M, K] ([..., K, M] when transA), `b` is
 * [...batch, K, N] ([..., N, K] when transB), `bias` is [N]. Returns [...broadcast batch, M, N].
 */
export function matmulRaw(
  a: Tensor,
  b: Tensor,
  opts: MatmulOptions = {},
  bias?: Tensor,
  tilingOpt?: MatmulTiling,
  op = 'matmul',
): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  checkOperand(op, 'a', a);
  checkOperand(op, 'b', b);
  if (a.ctx !== b.ctx) throw new EngineError(op, 'a and b live on different GPU contexts');
  const ra = a.rank;
  const rb = b.rank;
  const M = a.shape[transA ? ra - 1 : ra - 2]!;
  const K = a.shape[transA ? ra - 2 : ra - 1]!;
  const Kb = b.shape[transB ? rb - 1 : rb - 2]!;
  const N = b.shape[transB ? rb - 2 : rb - 1]!;
  if (K !== Kb)
    throw new EngineError(
      op,
      `inner dimensions differ: a ${shapeStr(a.shape)}${transA ? ' (transposed)' : ''} has K=${K}, b ${shapeStr(b.shape)}${transB ? ' (transposed)' : ''} has K=${Kb}`,
    );
  if (bias && (bias.dtype !== 'f32' || bias.rank !== 1 || bias.shape[0] !== N))
    throw new EngineError(op, `bias ${bias.describe()} does not match the ${N} output columns`);
  const batchA = a.shape.slice(0, ra - 2);
  const batchB = b.shape.slice(0, rb - 2);
  const batch = broadcastShapes(op, batchA, batchB);
  if (batch.length > MAX_BATCH_RANK) throw new EngineError(op, `more than ${MAX_BATCH_RANK} batch dimensions`);
  const nBatch = numel(batch);
  const out = new Tensor(a.ctx, [...batch, M, N], 'f32');
  if (out.size === 0) return out;
  const tiling = tilingOpt ?? chooseTiling(M, N, K, a.ctx.adapterInfo);
  const { tm, tn, wgx, wgy } = tiling;
  const ku = tiling.ku ?? 4;
  if (ku !== 4 && ku !== 8) throw new EngineError(op, `tiling.ku must be 4 or 8, got ${ku}`);
  const maxWg = a.ctx.limits.maxComputeWorkgroupsPerDimension;
  if (nBatch > maxWg) throw new EngineError(op, `${nBatch} batch matrices exceed the dispatch limit ${maxWg}`);
  // batch strides in elements (0 along broadcast dims); rank-2 operands have no batch dims at all
  const stA = batchA.length ? broadcastStrides(batchA, batch).map((s) => s * M * K) : batch.map(() => 0);
  const stB = batchB.length ? broadcastStrides(batchB, batch).map((s) => s * K * N) : batch.map(() => 0);
  const colsA = transA ? M : K;
  const rowsA = transA ? K : M;
  const colsB = transB ? K : N;
  const rowsB = transB ? N : K;
  const v: Variant = {
    transA,
    transB,
    vecA: colsA % 4 === 0,
    vecB: colsB % 4 === 0,
    vecC: N % 4 === 0,
    // stored-dimension extents one invocation touches: M→tm, N→tn, K→ku
    rowA: rowsA % (transA ? ku : tm) !== 0,
    colA: colsA % (transA ? tm : ku) !== 0,
    rowB: rowsB % (transB ? tn : ku) !== 0,
    colB: colsB % (transB ? ku : tn) !== 0,
    rowC: M % tm !== 0,
    colC: N % tn !== 0,
    batched: nBatch > 1,
    bias: !!bias,
    tiling,
  };
  a.ctx.dispatch({
    op,
    key: variantKey(v),
    code: () => matmulShader(v),
    buffers: [out.binding(op), a.binding(op), b.binding(op), ...(bias ? [bias.binding(op)] : [])],
    uniforms: packUniforms([M, N, K, batch.length, { u32x4: batch, pad: 8 }, { u32x4: stA, pad: 8 }, { u32x4: stB, pad: 8 }]),
    workgroups: [Math.ceil(N / (tn * wgx)), Math.ceil(M / (tm * wgy)), nBatch],
  });
  return out;
}

/** [...batch, R, C] seen as [batch·R, C] (a free view). */
function fold(t: Tensor): Tensor {
  return view(t, [numel(t.shape.slice(0, -1)), t.shape[t.rank - 1]!]);
}

/**
 * matmulRaw, folding A's batch into M when B is a plain matrix and A is not transposed (one large
 * GEMM instead of many small ones).
 */
function matmulFolded(a: Tensor, b: Tensor, opts: MatmulOptions, bias?: Tensor, op = 'matmul'): Tensor {
  if (b.rank === 2 && a.rank > 2 && !opts.transA) {
    const a2 = fold(a);
    const y2 = matmulRaw(a2, b, opts, bias, undefined, op);
    a2.dispose();
    const y = view(y2, [...a.shape.slice(0, -1), y2.shape[1]!]);
    y2.dispose();
    return y;
  }
  return matmulRaw(a, b, opts, bias, undefined, op);
}

/**
 * C = op(A)·op(B). `a`: [...batch, M, K] ([..., K, M] with transA); `b`: [...batch, K, N]
 * ([..., N, K] with transB); batch dimensions broadcast. Returns [...batch, M, N].
 * Backward: dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC (stored orientation), summed over broadcast batch dims.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const c = matmulFolded(a, b, opts);
  return record(c, 'matmul', [a, b], (dC) => [
    a.requiresGrad ? gradA(a, b, dC, transA, transB) : null,
    b.requiresGrad ? gradB(a, b, dC, transA, transB) : null,
  ]);
}

function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const r = sumTo(g, shape);
  g.dispose();
  return r;
}

/** dA in A's stored orientation: transA ? op(B)·dCᵀ : dC·op(B)ᵀ. */
function gradA(a: Tensor, b: Tensor, dC: Tensor, transA: boolean, transB: boolean): Tensor {
  const g = transA ? matmulFolded(b, dC, { transA: transB, transB: true }) : matmulFolded(dC, b, { transB: !transB });
  return reduceTo(g, a.shape);
}

/** dB in B's stored orientation: transB ? dCᵀ·op(A) : op(A)ᵀ·dC. */
function gradB(a: Tensor, b: Tensor, dC: Tensor, transA: boolean, transB: boolean): Tensor {
  if (b.rank === 2 && a.rank > 2 && !transA) {
    // A's batch was folded into M: one GEMM over batch·M rows, no reduction needed
    const a2 = fold(a);
    const d2 = fold(dC);
    const g = transB ? matmulRaw(d2, a2, { transA: true }) : matmulRaw(a2, d2, { transA: true });
    a2.dispose();
    d2.dispose();
    return g;
  }
  const g = transB ? matmulFolded(dC, a, { transA: true, transB: transA }) : matmulFolded(a, dC, { transA: !transA });
  return reduceTo(g, b.shape);
}

/**
 * Fully connected layer, PyTorch semantics: y = x·wᵀ + bias. `x`: [..., IN], `w`: [OUT, IN],
 * `bias`: [OUT]. Returns [..., OUT]. The bias is added in the matmul's epilogue.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const op = 'linear';
  if (x.dtype !== 'f32' || x.rank < 1) throw new EngineError(op, `x is ${x.describe()}; linear takes f32 with at least one dimension`);
  if (w.dtype !== 'f32') throw new EngineError(op, `weight is ${w.describe()}; linear takes f32`);
  if (w.rank !== 2) throw new EngineError(op, `weight ${w.describe()} must be [out, in]`);
  const inF = x.shape[x.rank - 1]!;
  if (w.shape[1] !== inF)
    throw new EngineError(op, `inner dimensions differ: x ${shapeStr(x.shape)} has ${inF} features, weight ${shapeStr(w.shape)} expects ${w.shape[1]}`);
  const x2 = x.rank === 2 ? view(x) : view(x, [numel(x.shape.slice(0, -1)), inF]);
  const y2 = matmulRaw(x2, w, { transB: true }, bias, undefined, op);
  x2.dispose();
  const y = view(y2, [...x.shape.slice(0, -1), w.shape[0]!]);
  y2.dispose();
  return record(y, op, bias ? [x, w, bias] : [x, w], (dY) => {
    const d2 = view(dY, [numel(dY.shape.slice(0, -1)), w.shape[0]!]);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const g = matmulRaw(d2, w); // [rows, IN]
      dx = view(g, x.shape);
      g.dispose();
    }
    let dw: Tensor | null = null;
    if (w.requiresGrad) {
      const xf = view(x, [d2.shape[0]!, inF]);
      dw = matmulRaw(d2, xf, { transA: true }); // [OUT, IN]
      xf.dispose();
    }
    const db = bias?.requiresGrad ? sum(d2, 0) : null;
    d2.dispose();
    return [dx, dw, db];
  });
}
