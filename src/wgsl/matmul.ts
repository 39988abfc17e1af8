// Batched matrix multiply C = op(A)·op(B) with NumPy batch broadcasting and in-kernel transposes, plus
// `linear` (y = x·wᵀ + b, PyTorch semantics) with the bias fused into the epilogue. Both are loaders
// of the GEMM core (gemm.ts): this file says how A and B are addressed (plain or transposed, vec4
// when the storage rows allow it, batch offsets from workgroup_id.z) and where C goes; the core owns
// the tiling, the k loop and the epilogue. It does not do f16, split-K, or integer matrices.
//
// Dimension letters: M rows of C, N columns of C, K the inner dimension; "batch" are the leading
// dimensions, broadcast between A and B.

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { broadcastShapes, broadcastStrides, numel, shapeStr, stridesOf } from '../autograd/shape.js';
import { stridedCopyRaw } from './permute.js';
import { sum, sumTo } from './reduce.js';
import { EngineError } from '../util/errors.js';
import {
  gemmVariant,
  runGemm,
  shapeClass,
  WG_TILING,
  type GemmActivation,
  type GemmProblem,
  type GemmTiling,
  type RegTiling,
} from './gemm.js';

export interface MatmulOptions {
  /** A is stored as [...batch, K, M] and used transposed. */
  transA?: boolean;
  /** B is stored as [...batch, N, K] and used transposed. */
  transB?: boolean;
}

/** Fused epilogue of a raw matmul: C = act(alpha·op(A)op(B) + bias[n] + residual). */
export interface MatmulEpilogue {
  /** [N], added to every row */
  bias?: Tensor;
  act?: GemmActivation;
  /** laid out as C */
  residual?: Tensor;
  alpha?: number;
}

/**
 * The register tiling matmul() uses for an M×N output on CPU adapters, chosen with
 * `bench/matmul.ts --variants` on lavapipe (bench/RESULTS.md). Large outputs: 8×8 register tiles on
 * a 4×4 workgroup. Small or not vec4-aligned shapes keep 4×4 tiles on an 8×8 workgroup: an 8×8 tile
 * with guarded scalar loads took minutes to compile on lavapipe, and at small sizes compile time
 * dominates anyway.
 */
export function chooseTiling(M: number, N: number, K: number, adapter?: { architecture: string; vendor: string }): RegTiling {
  // SwiftShader (Chromium's CPU Vulkan) takes minutes to compile the unrolled 4x4 register tile
  // (a 5x7x6 product did not finish in 100 s); one output column group per invocation compiles fast.
  if (adapter && (adapter.architecture === 'swiftshader' || /swiftshader/i.test(adapter.vendor))) return { kind: 'reg', tm: 1, tn: 4, wgx: 8, wgy: 8, ku: 4 };
  if (M >= 64 && N >= 64 && M % 4 === 0 && N % 4 === 0 && K % 4 === 0) return { kind: 'reg', tm: 8, tn: 8, wgx: 4, wgy: 4, ku: 4 };
  return { kind: 'reg', tm: 4, tn: 4, wgx: 8, wgy: 8, ku: 4 };
}

const MAX_BATCH_RANK = 8;

/** Static facts about one launch that select the generated loaders (all part of the cache key). */
interface Layout {
  transA: boolean;
  transB: boolean;
  /** vec4 loads of A / B (contiguous storage dimension is a multiple of 4). */
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
  batched: boolean;
}

/** Guards the register path needs for a tiling (stored rows / columns of A, B; rows / columns of C). */
function guards(l: Layout, t: RegTiling, M: number, N: number, K: number) {
  const ku = t.ku ?? 4;
  const [rowsA, colsA] = l.transA ? [K, M] : [M, K];
  const [rowsB, colsB] = l.transB ? [N, K] : [K, N];
  return {
    rowA: rowsA % (l.transA ? ku : t.tm) !== 0,
    colA: colsA % (l.transA ? t.tm : ku) !== 0,
    rowB: rowsB % (l.transB ? t.tn : ku) !== 0,
    colB: colsB % (l.transB ? ku : t.tn) !== 0,
    rowC: M % t.tm !== 0,
    colC: N % t.tn !== 0,
  };
}

const f01 = (b: boolean) => (b ? '1' : '0');

/**
 * The matmul problem for the GEMM core: A [batch..., M, K] (or K×M), B [batch..., K, N] (or N×K),
 * batch offsets per workgroup_id.z from the broadcast strides in the uniforms.
 */
function matmulProblem(
  l: Layout,
  a: Tensor,
  b: Tensor,
  out: Tensor,
  M: number,
  N: number,
  K: number,
  nBatch: number,
  batch: readonly number[],
  stA: readonly number[],
  stB: readonly number[],
  t: GemmTiling,
): GemmProblem {
  const g = t.kind === 'reg' ? guards(l, t, M, N, K) : null;
  const key = `mm:${f01(l.transA)}${f01(l.transB)}:${f01(l.vecA)}${f01(l.vecB)}${f01(l.vecC)}:${f01(l.batched)}:${g ? Object.values(g).map(f01).join('') : ''}`;
  const rowsA = l.transA ? 'P.K' : 'P.M';
  const colsA = l.transA ? 'P.M' : 'P.K';
  const rowsB = l.transB ? 'P.N' : 'P.K';
  const colsB = l.transB ? 'P.K' : 'P.N';
  const batchOffsets = l.batched
    ? `fn batchOffsets(z: u32) -> vec2<u32> {
  var rem = z;
  var off = vec2<u32>(0u);
  for (var d = i32(P.batchRank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = P.shape[du / 4u][du % 4u];
    let coord = rem % size;
    rem = rem / size;
    off += coord * vec2<u32>(P.stA[du / 4u][du % 4u], P.stB[du / 4u][du % 4u]);
  }
  return off;
}`
    : 'fn batchOffsets(z: u32) -> vec2<u32> { return vec2<u32>(0u); }';
  // element i of an operand declared vec4 or scalar
  const el = (name: string, vec: boolean, i: string) => (vec ? `${name}[(${i}) / 4u][(${i}) % 4u]` : `${name}[${i}]`);
  const flatFns = `fn A_at(m: u32, k: u32, z: u32) -> f32 { return ${el('A', l.vecA, `batchOffsets(z).x + ${l.transA ? 'k * P.M + m' : 'm * P.K + k'}`)}; }
fn B_at(k: u32, n: u32, z: u32) -> f32 { return ${el('B', l.vecB, `batchOffsets(z).y + ${l.transB ? 'n * P.K + k' : 'k * P.N + n'}`)}; }
fn C_idx(m: u32, n: u32, z: u32) -> u32 { return z * P.M * P.N + m * P.N + n; }`;
  const problem: GemmProblem = {
    key,
    inputs: [
      { name: 'A', tensor: a, vec4: l.vecA },
      { name: 'B', tensor: b, vec4: l.vecB },
    ],
    params: 'batchRank: u32, shape: array<vec4<u32>, 2>, stA: array<vec4<u32>, 2>, stB: array<vec4<u32>, 2>',
    paramValues: [batch.length, { u32x4: batch, pad: 8 }, { u32x4: stA, pad: 8 }, { u32x4: stB, pad: 8 }],
    out,
    outVec4: l.vecC && t.kind === 'reg',
    helpers: batchOffsets,
    flat: { M, N, K, z: nBatch, fns: flatFns },
  };
  if (t.kind !== 'reg' || !g) return problem;
  // load4(X, r, c): stored row r, columns c..c+3 of operand X as a vec4 (zeros outside)
  const loadFn = (name: string, vec: boolean, rowCheck: boolean, colCheck: boolean, rows: string, cols: string) => {
    if (vec) {
      const conds = [rowCheck ? `r < ${rows}` : '', colCheck ? `c < ${cols}` : ''].filter(Boolean);
      const body = `return ${name}[(off + r * ${cols} + c) / 4u];`;
      return `fn load_${name}(off: u32, r: u32, c: u32) -> vec4<f32> {
  ${conds.length ? `if (${conds.join(' && ')}) { ${body} }\n  return vec4<f32>(0.0);` : body}
}`;
    }
    const elem = (e: number) => {
      const conds = [rowCheck ? `r < ${rows}` : '', `c + ${e}u < ${cols}`].filter(Boolean).join(' && ');
      return `select(0.0, ${name}[min(off + r * ${cols} + c + ${e}u, arrayLength(&${name}) - 1u)], ${conds})`;
    };
    return `fn load_${name}(off: u32, r: u32, c: u32) -> vec4<f32> {
  return vec4<f32>(${[0, 1, 2, 3].map(elem).join(', ')});
}`;
  };
  problem.helpers = `${batchOffsets}
${loadFn('A', l.vecA, g.rowA, g.colA, rowsA, colsA)}
${loadFn('B', l.vecB, g.rowB, g.colB, rowsB, colsB)}`;
  const tn = t.tn;
  const nv = tn / 4;
  problem.reg = {
    lanes: Math.ceil(N / tn),
    z: nBatch,
    setup: () => `  let n0 = lane * ${tn}u;
  let offs = batchOffsets(wid.z);
  let offA = offs.x;
  let offB = offs.y;
  let offC = wid.z * P.M * P.N;`,
    kInner: 'P.K',
    kInnerValue: K,
    emitA: (tt, q, k) => {
      const L: string[] = [];
      if (!l.transA) for (let i = 0; i < tt.tm; i++) L.push(`    let a${i}_${q} = load_A(offA, m0 + ${i}u, ${k});`);
      else
        for (let ib = 0; ib < tt.tm / 4; ib++) {
          for (let kk = 0; kk < 4; kk++) L.push(`    let at${ib}_${kk}_${q} = load_A(offA, ${k} + ${kk}u, m0 + ${4 * ib}u);`);
          for (let ii = 0; ii < 4; ii++)
            L.push(`    let a${4 * ib + ii}_${q} = vec4<f32>(${[0, 1, 2, 3].map((kk) => `at${ib}_${kk}_${q}.${'xyzw'[ii]}`).join(', ')});`);
        }
      return L.join('\n');
    },
    emitB: (_tt, q, k) => {
      const L: string[] = [];
      if (!l.transB)
        for (let kk = 0; kk < 4; kk++) for (let j = 0; j < nv; j++) L.push(`    let b${kk}_${j}_${q} = load_B(offB, ${k} + ${kk}u, n0 + ${4 * j}u);`);
      else
        for (let j = 0; j < nv; j++) {
          for (let jj = 0; jj < 4; jj++) L.push(`    let bt${j}_${jj}_${q} = load_B(offB, n0 + ${4 * j + jj}u, ${k});`);
          for (let kk = 0; kk < 4; kk++)
            L.push(`    let b${kk}_${j}_${q} = vec4<f32>(${[0, 1, 2, 3].map((jj) => `bt${j}_${jj}_${q}.${'xyzw'[kk]}`).join(', ')});`);
        }
      return L.join('\n');
    },
    outIdx: (_tt, i, j, e) => `offC + (m0 + ${i}u) * P.N + n0 + ${4 * j + e}u`,
    outOk: (_tt, i, j, e) => [g.rowC ? `m0 + ${i}u < P.M` : '', `n0 + ${4 * j + e}u < P.N`].filter(Boolean).join(' && '),
    outVec: (_tt, i, j) => ({
      idx: `(offC + (m0 + ${i}u) * P.N + n0 + ${4 * j}u) / 4u`,
      ok: [g.rowC ? `m0 + ${i}u < P.M` : '', g.colC ? `n0 + ${4 * j}u < P.N` : ''].filter(Boolean).join(' && '),
    }),
    col: (_tt, j, e) => `min(n0 + ${4 * j + e}u, P.N - 1u)`,
  };
  return problem;
}

function checkOperand(op: string, name: string, t: Tensor) {
  if (t.dtype !== 'f32') throw new EngineError(op, `${name} is ${t.describe()}; matmul takes f32`);
  if (t.rank < 2) throw new EngineError(op, `${name} is ${t.describe()}; matmul needs matrices (rank >= 2)`);
}

/**
 * The kernel launch without autograd. `a` is [...batch, M, K] ([..., K, M] when transA), `b` is
 * [...batch, K, N] ([..., N, K] when transB). Returns [...broadcast batch, M, N] with the epilogue
 * applied. `tilingOpt` forces a tiling (default: the context's GEMM variant for this shape).
 */
export function matmulRaw(
  a: Tensor,
  b: Tensor,
  opts: MatmulOptions = {},
  epi: MatmulEpilogue = {},
  tilingOpt?: GemmTiling,
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
  const { bias, residual } = epi;
  if (bias && (bias.dtype !== 'f32' || bias.rank !== 1 || bias.shape[0] !== N))
    throw new EngineError(op, `bias ${bias.describe()} does not match the ${N} output columns`);
  const batchA = a.shape.slice(0, ra - 2);
  const batchB = b.shape.slice(0, rb - 2);
  const batch = broadcastShapes(op, batchA, batchB);
  if (batch.length > MAX_BATCH_RANK) throw new EngineError(op, `more than ${MAX_BATCH_RANK} batch dimensions`);
  const nBatch = numel(batch);
  const outShape = [...batch, M, N];
  if (residual && (residual.dtype !== 'f32' || residual.shape.length !== outShape.length || residual.shape.some((d, i) => d !== outShape[i])))
    throw new EngineError(op, `residual ${residual.describe()} does not match the output ${shapeStr(outShape)}`);
  const out = new Tensor(a.ctx, outShape, 'f32');
  if (out.size === 0) return out;
  const maxWg = a.ctx.limits.maxComputeWorkgroupsPerDimension;
  if (nBatch > maxWg) throw new EngineError(op, `${nBatch} batch matrices exceed the dispatch limit ${maxWg}`);
  if (K === 0) throw new EngineError(op, `inner dimension K is 0 (a ${shapeStr(a.shape)}, b ${shapeStr(b.shape)})`);
  const tiling =
    tilingOpt ?? (gemmVariant(a.ctx, shapeClass('matmul', M, N, K)) === 'wg' ? WG_TILING : chooseTiling(M, N, K, a.ctx.adapterInfo));
  if (tiling.kind === 'reg') {
    const ku = tiling.ku ?? 4;
    if (ku !== 4 && ku !== 8) throw new EngineError(op, `tiling.ku must be 4 or 8, got ${ku}`);
    if (tiling.tn % 4 !== 0) throw new EngineError(op, `register tile ${tiling.tm}x${tiling.tn} must have TN a multiple of 4`);
    if (transA && tiling.tm % 4 !== 0) {
      // a transposed A is read along M in vec4 groups, which a TM-row tile not a multiple of 4 (the
      // SwiftShader tile) cannot do: make A^T contiguous once and multiply it untransposed
      out.dispose();
      const at = stridedCopyRaw(op, a, [...a.shape.slice(0, ra - 2), M, K], [...stridesOf(a.shape).slice(0, ra - 2), 1, M]);
      try {
        return matmulRaw(at, b, { transA: false, transB }, epi, tiling, op);
      } finally {
        at.dispose();
      }
    }
  }
  // batch strides in elements (0 along broadcast dims); rank-2 operands have no batch dims at all
  const stA = batchA.length ? broadcastStrides(batchA, batch).map((s) => s * M * K) : batch.map(() => 0);
  const stB = batchB.length ? broadcastStrides(batchB, batch).map((s) => s * K * N) : batch.map(() => 0);
  const layout: Layout = {
    transA,
    transB,
    vecA: (transA ? M : K) % 4 === 0,
    vecB: (transB ? K : N) % 4 === 0,
    vecC: N % 4 === 0,
    batched: nBatch > 1,
  };
  const p = matmulProblem(layout, a, b, out, M, N, K, nBatch, batch, stA, stB, tiling);
  runGemm(a.ctx, op, p, tiling, { bias: bias ? 'col' : undefined, act: epi.act, residual: !!residual, alpha: epi.alpha }, { bias, residual });
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
function matmulFolded(a: Tensor, b: Tensor, opts: MatmulOptions, op = 'matmul'): Tensor {
  if (b.rank === 2 && a.rank > 2 && !opts.transA) {
    const a2 = fold(a);
    const y2 = matmulRaw(a2, b, opts, {}, undefined, op);
    a2.dispose();
    const y = view(y2, [...a.shape.slice(0, -1), y2.shape[1]!]);
    y2.dispose();
    return y;
  }
  return matmulRaw(a, b, opts, {}, undefined, op);
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
  const y2 = matmulRaw(x2, w, { transB: true }, { bias }, undefined, op);
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
