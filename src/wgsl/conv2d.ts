// 2-D convolution (PyTorch semantics, NCHW) as implicit GEMMs on the GEMM core (gemm.ts), without a
// materialised im2col: forward (M = O output channels, N = N·OH·OW pixels, K = C·KH·KW), input
// gradient (a transposed conv: M = C, N = N·H·W, K = O·KH·KW; the register path takes one phase of
// the stride at a time so which taps contribute is uniform) and weight gradient (M = O, N = C·KH·KW,
// K = N·OH·OW, split over the rows when there would be too few workgroups). This file holds only the
// loaders (how each operand and C are addressed); the core owns the tiles, loops and epilogue. The
// register path keeps the channel tile in workgroup_id.y so weight (wgrad: dy) addresses are
// uniform, which the subgroup-broadcast A loads need. The bias gradient is its own small reduction.
// It does not do groups > 1, padding modes other than zeros, or f16.
//
// Letters: N batch, C input channels, H W input size, O output channels, KH KW kernel size,
// OH OW output size, P = OH*OW, K = KH*KW (taps).

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { sum } from './reduce.js';
import { mapRaw } from './map.js';
import { EngineError } from '../util/errors.js';
import { gemmVariant, hasSubgroups, runGemm, shapeClass, WG_TILING, type GemmActivation, type GemmProblem, type GemmTiling, type RegTiling } from './gemm.js';

export { hasSubgroups };

const WG = 64;
/**
 * Workgroup size for `lanes` invocations along x: lanes past the end still run the loops (no early
 * return on the subgroup path, so loads and subgroup operations stay in uniform control flow), so
 * keep their number small.
 */
const laneGroup = (lanes: number) => Math.min(WG, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, lanes)))));
/** Register tile along the channels whose weight / dy addresses are uniform: 16, or 8 for few channels. */
const channelTile = (n: number) => (n > 8 ? 16 : 8);
const J = [0, 1, 2, 3];
/** Split the weight gradient's reduction until it has at least this many workgroups. */
const WGRAD_MIN_WORKGROUPS = 64;

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  /** Only 1 is supported. */
  groups?: number;
}

/** Resolved geometry of one convolution. */
export interface ConvGeom {
  N: number; C: number; H: number; W: number;
  O: number; KH: number; KW: number;
  SH: number; SW: number; PH: number; PW: number; DH: number; DW: number;
  OH: number; OW: number;
}

function pair(op: string, name: string, v: number | [number, number] | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const k of p)
    if (!Number.isInteger(k) || k < min) throw new EngineError(op, `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

/** Check shapes and options; returns the geometry. Throws EngineError naming the shapes. */
export function convGeometry(x: Tensor, w: Tensor, bias: Tensor | undefined, opts: Conv2dOptions = {}): ConvGeom {
  const op = 'conv2d';
  if (x.rank !== 4) throw new EngineError(op, `input must be 4-D [N,C,H,W], got ${x.describe()}`);
  if (w.rank !== 4) throw new EngineError(op, `weight must be 4-D [O,C,KH,KW], got ${w.describe()}`);
  if (x.dtype !== 'f32' || w.dtype !== 'f32') throw new EngineError(op, `expected f32 tensors, got input ${x.describe()} and weight ${w.describe()}`);
  if (x.ctx !== w.ctx || (bias && bias.ctx !== x.ctx)) throw new EngineError(op, 'arguments live on different GPU contexts');
  const groups = opts.groups ?? 1;
  if (groups !== 1) throw new EngineError(op, `groups=${groups} is not supported (only groups=1)`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, Cw, KH, KW] = w.shape as [number, number, number, number];
  if (Cw !== C)
    throw new EngineError(op, `channel mismatch: input ${shapeStr(x.shape)} has C=${C} but weight ${shapeStr(w.shape)} expects ${Cw} input channels`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== O || bias.dtype !== 'f32'))
    throw new EngineError(op, `bias must be f32[${O}] for weight ${shapeStr(w.shape)}, got ${bias.describe()}`);
  const [SH, SW] = pair(op, 'stride', opts.stride, 1, 1);
  const [PH, PW] = pair(op, 'padding', opts.padding, 0, 0);
  const [DH, DW] = pair(op, 'dilation', opts.dilation, 1, 1);
  const effH = DH * (KH - 1) + 1, effW = DW * (KW - 1) + 1;
  if (effH > H + 2 * PH || effW > W + 2 * PW)
    throw new EngineError(
      op,
      `kernel ${KH}x${KW} (dilation ${DH},${DW}: ${effH}x${effW}) is larger than the padded input ${H + 2 * PH}x${W + 2 * PW} of input ${shapeStr(x.shape)} (padding ${PH},${PW})`,
    );
  const OH = Math.floor((H + 2 * PH - effH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - effW) / SW) + 1;
  return { N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW };
}

/**
 * Geometry goes in the uniform block (one pipeline per pass and tile size, whatever the layer:
 * compiling on lavapipe is slow); `tA` is the pass's lane tiling, `rows` wgrad's rows per split.
 */
const PARAMS =
  'NB: u32, C: u32, H: u32, W: u32, O: u32, OH: u32, OW: u32, tA: u32, rows: u32, KH: u32, KW: u32, SH: u32, SW: u32, PH: u32, PW: u32, DH: u32, DW: u32';
const paramValues = (g: ConvGeom, tA: number, rows: number) => [g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, tA, rows, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW];
const vec4Load = (buf: string, idx: string) => `vec4<f32>(${J.map((j) => `${buf}[${idx}[${j}]]`).join(', ')})`;
const I = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Kernel choices, for benchmarks and tests (defaults: what the device supports and the context's GEMM variant). */
export interface ConvKernelOptions {
  /** Use the subgroup-broadcast weight loads (needs the 'subgroups' feature; register tiling only). */
  subgroups?: boolean;
  /** Force a tiling variant. */
  variant?: 'reg' | 'wg';
  /** f16 multiply-accumulate on the register path (falls back to f32 without 'shader-f16'). */
  f16?: boolean;
}

/** Fused forward epilogue: out = act(conv + bias[o] + residual). */
export interface ConvEpilogue {
  act?: GemmActivation;
  /** laid out as the output [N, O, OH, OW] */
  residual?: Tensor;
}

function tilingFor(x: Tensor, kind: string, M: number, N: number, K: number, TM: number, lanes: number, k: ConvKernelOptions): GemmTiling {
  const v = k.variant ?? gemmVariant(x.ctx, shapeClass(kind, M, N, K));
  if (v === 'wg') return WG_TILING;
  const t: RegTiling = { kind: 'reg', tm: TM, tn: 4, wgx: laneGroup(lanes), wgy: 1, ku: 4, sg: k.subgroups ?? hasSubgroups(x.ctx), f16: k.f16 };
  return t;
}

// ------------------------------------------------------------------------------------------------
// Forward: out[n,o,p] = bias[o] + sum_{c,kh,kw} w[o,c,kh,kw] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// GEMM: A = w as [O, C·KK], B = im2col(x) [C·KK, N·P]. Register path: TM output channels x 4
// consecutive output pixels of one image per invocation; k runs over taps (outer) and channels (inner).

function forwardProblem(x: Tensor, w: Tensor, out: Tensor, g: ConvGeom, lanes: number, tP: number): GemmProblem {
  return {
    key: 'conv:fwd',
    inputs: [
      { name: 'x', tensor: x },
      { name: 'w', tensor: w },
    ],
    params: PARAMS,
    paramValues: paramValues(g, tP, 0),
    out,
    flat: {
      M: g.O,
      N: g.N * g.OH * g.OW,
      K: g.C * g.KH * g.KW,
      z: 1,
      fns: `fn A_at(m: u32, k: u32, z: u32) -> f32 { return w[m * P.K + k]; }
fn B_at(k: u32, n: u32, z: u32) -> f32 {
  let NP = P.OH * P.OW;
  let img = n / NP; let p = n % NP;
  let KK = P.KH * P.KW;
  let c = k / KK; let tap = k % KK;
  let ih = i32((p / P.OW) * P.SH + (tap / P.KW) * P.DH) - i32(P.PH);
  let iw = i32((p % P.OW) * P.SW + (tap % P.KW) * P.DW) - i32(P.PW);
  if (ih < 0 || ih >= i32(P.H) || iw < 0 || iw >= i32(P.W)) { return 0.0; }
  return x[((img * P.C + c) * P.H + u32(ih)) * P.W + u32(iw)];
}
fn C_idx(m: u32, n: u32, z: u32) -> u32 { let NP = P.OH * P.OW; return ((n / NP) * P.O + m) * NP + n % NP; }`,
    },
    reg: {
      lanes,
      z: 1,
      setup: (t) => `  let KK = P.KH * P.KW;
  let pt = lane % P.tA;
  let n = lane / P.tA;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let p = vec4<u32>(pt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let pv = p < vec4<u32>(NP);
  let oh = p / vec4<u32>(P.OW);
  let ow = p % vec4<u32>(P.OW);
  let ih0 = vec4<i32>(oh * P.SH) - vec4<i32>(i32(P.PH));
  let iw0 = vec4<i32>(ow * P.SW) - vec4<i32>(i32(P.PW));
  let CKK = P.C * KK;
  ${I(t.tm).map((i) => `let wo${i} = min(m0 + ${i}u, P.O - 1u) * CKK;`).join(' ')}
  let xN = n * P.C * HW;`,
      outer: [
        `  for (var kh = 0u; kh < P.KH; kh++) {
    let ih = ih0 + vec4<i32>(i32(kh * P.DH));
    let rowOk = pv & (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(P.H)));
    for (var kw = 0u; kw < P.KW; kw++) {
      let iw = iw0 + vec4<i32>(i32(kw * P.DW));
      let ok = rowOk & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(P.W)));
      let xi = vec4<u32>(xN) + select(vec4<u32>(0u), vec4<u32>(ih * vec4<i32>(i32(P.W)) + iw), ok);
      let tap = kh * P.KW + kw;`,
        '    }\n  }',
      ],
      kInner: 'P.C',
      kInnerValue: g.C,
      emitA: (t, q, k, kGuard) =>
        I(t.tm)
          .map((i) => `    let a${i}_${q} = vec4<f32>(${J.map((e) => `w[wo${i} + ${kGuard ? `min(${k} + ${e}u, P.C - 1u)` : `(${k} + ${e}u)`} * KK + tap]`).join(', ')});`)
          .join('\n'),
      aScalar: (_t, i, k) => `w[wo${i} + min(${k}, P.C - 1u) * KK + tap]`,
      bRows: true,
      emitB: (_t, q, k, kGuard, only) =>
        J.filter((kk) => only === undefined || kk === only).map((kk) => {
          const idx = `xi + vec4<u32>((${k} + ${kk}u) * HW)`;
          return `    let xk${kk}_${q} = ${idx};
    let b${kk}_0_${q} = select(vec4<f32>(0.0), ${vec4Load('x', `xk${kk}_${q}`)}, ok${kGuard ? ` & vec4<bool>(${k} + ${kk}u < P.C)` : ''});`;
        }).join('\n'),
      outIdx: (_t, i, _j, e) => `(n * P.O + m0 + ${i}u) * NP + p[${e}]`,
      outOk: (_t, i, _j, e) => `m0 + ${i}u < P.O && pv[${e}]`,
    },
  };
}

/** Raw forward kernel (no autograd), with an optional fused epilogue (act(conv + bias + residual)). */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | undefined, g: ConvGeom, k: ConvKernelOptions = {}, epi: ConvEpilogue = {}): Tensor {
  const op = 'conv2d';
  const out = new Tensor(x.ctx, [g.N, g.O, g.OH, g.OW], 'f32');
  const TO = channelTile(g.O);
  const tP = Math.ceil((g.OH * g.OW) / 4);
  const lanes = g.N * tP;
  if (lanes === 0 || g.O === 0) return out;
  const t = tilingFor(x, 'conv-fwd', g.O, g.N * g.OH * g.OW, g.C * g.KH * g.KW, TO, lanes, k);
  if (t.kind === 'reg' && Math.ceil(lanes / t.wgx) > 65535) throw new EngineError(op, `input ${g.N}x${g.C}x${g.H}x${g.W} is too large for one dispatch (${lanes} pixel tiles)`);
  runGemm(x.ctx, op, forwardProblem(x, w, out, g, lanes, tP), t, { bias: bias ? 'row' : undefined, act: epi.act, residual: !!epi.residual }, { bias, residual: epi.residual });
  return out;
}

// ------------------------------------------------------------------------------------------------
// Input gradient: dx[n,c,ih,iw] = sum_{o,kh,kw} dy[n,o,oh,ow] * w[o,c,kh,kw] over the (kh,kw) with
// ih + PH - kh*DH = oh*SH (and likewise for w). GEMM: A = w seen as [C, O·KK], B = the scattered dy.
// Register path: input pixels split by stride phase (ih % SH, iw % SW) from workgroup_id.z, so which
// taps contribute is uniform; each invocation computes TM channels x 4 pixels of one phase in one
// row (iw = pw + SW*(4m+j)); its lanes run along (n, row of the phase, column tile).

/** The input-gradient GEMM problem (exported for tests). */
export function dgradProblem(dy: Tensor, w: Tensor, dx: Tensor, g: ConvGeom, lanes: number, tM: number): GemmProblem {
  return {
    key: 'conv:dgrad',
    inputs: [
      { name: 'dy', tensor: dy },
      { name: 'w', tensor: w },
    ],
    params: PARAMS,
    paramValues: paramValues(g, tM, 0),
    out: dx,
    flat: {
      M: g.C,
      N: g.N * g.H * g.W,
      K: g.O * g.KH * g.KW,
      z: 1,
      fns: `fn A_at(m: u32, k: u32, z: u32) -> f32 { let KK = P.KH * P.KW; return w[((k / KK) * P.C + m) * KK + k % KK]; }
fn B_at(k: u32, n: u32, z: u32) -> f32 {
  let HW = P.H * P.W;
  let img = n / HW; let ih = (n % HW) / P.W; let iw = n % P.W;
  let KK = P.KH * P.KW;
  let o = k / KK; let tap = k % KK;
  let th = i32(ih + P.PH) - i32((tap / P.KW) * P.DH);
  let tw = i32(iw + P.PW) - i32((tap % P.KW) * P.DW);
  if (th < 0 || tw < 0 || th % i32(P.SH) != 0 || tw % i32(P.SW) != 0) { return 0.0; }
  let oh = u32(th) / P.SH; let ow = u32(tw) / P.SW;
  if (oh >= P.OH || ow >= P.OW) { return 0.0; }
  return dy[((img * P.O + o) * P.OH + oh) * P.OW + ow];
}
fn C_idx(m: u32, n: u32, z: u32) -> u32 { let HW = P.H * P.W; return ((n / HW) * P.C + m) * HW + n % HW; }`,
    },
    reg: {
      lanes,
      z: g.SH * g.SW,
      setup: (t) => `  let KK = P.KH * P.KW;
  let Hq = (P.H + P.SH - 1u) / P.SH;
  let mt = lane % P.tA;
  let rq = (lane / P.tA) % Hq;
  let n = lane / (P.tA * Hq);
  let pw = wid.z % P.SW;
  let ph = wid.z / P.SW;
  let ih = ph + P.SH * rq;
  let mm = vec4<u32>(mt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let iw = vec4<u32>(pw) + vec4<u32>(P.SW) * mm;
  let pv = (iw < vec4<u32>(P.W)) & vec4<bool>(ih < P.H);
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let CKK = P.C * KK;
  ${I(t.tm).map((i) => `let wc${i} = min(m0 + ${i}u, P.C - 1u) * KK;`).join(' ')}
  let dyN = n * P.O * NP;`,
      outer: [
        `  for (var kh = 0u; kh < P.KH; kh++) {
    let th = i32(ph + P.PH) - i32(kh * P.DH);
    if (th % i32(P.SH) != 0) { continue; }
    let oh = th / i32(P.SH) + i32(rq);
    let rowOk = pv & vec4<bool>(oh >= 0 && oh < i32(P.OH));
    for (var kw = 0u; kw < P.KW; kw++) {
      let tw = i32(pw + P.PW) - i32(kw * P.DW);
      if (tw % i32(P.SW) != 0) { continue; }
      let ow = vec4<i32>(tw / i32(P.SW)) + vec4<i32>(mm);
      let ok = rowOk & (ow >= vec4<i32>(0)) & (ow < vec4<i32>(i32(P.OW)));
      let di = vec4<u32>(dyN) + select(vec4<u32>(0u), vec4<u32>(vec4<i32>(oh * i32(P.OW)) + ow), ok);
      let tap = kh * P.KW + kw;`,
        '    }\n  }',
      ],
      kInner: 'P.O',
      kInnerValue: g.O,
      emitA: (t, q, k, kGuard) =>
        I(t.tm)
          .map((i) => `    let a${i}_${q} = vec4<f32>(${J.map((e) => `w[${kGuard ? `min(${k} + ${e}u, P.O - 1u)` : `(${k} + ${e}u)`} * CKK + wc${i} + tap]`).join(', ')});`)
          .join('\n'),
      aScalar: (_t, i, k) => `w[min(${k}, P.O - 1u) * CKK + wc${i} + tap]`,
      bRows: true,
      emitB: (_t, q, k, kGuard, only) =>
        J.filter((kk) => only === undefined || kk === only).map((kk) => `    let dk${kk}_${q} = di + vec4<u32>((${k} + ${kk}u) * NP);
    let b${kk}_0_${q} = select(vec4<f32>(0.0), ${vec4Load('dy', `dk${kk}_${q}`)}, ok${kGuard ? ` & vec4<bool>(${k} + ${kk}u < P.O)` : ''});`).join('\n'),
      outIdx: (_t, i, _j, e) => `(n * P.C + m0 + ${i}u) * HW + ih * P.W + iw[${e}]`,
      outOk: (_t, i, _j, e) => `m0 + ${i}u < P.C && pv[${e}]`,
    },
  };
}

/** Raw input-gradient kernel: dy [N,O,OH,OW] -> dx [N,C,H,W]. */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeom, k: ConvKernelOptions = {}): Tensor {
  const op = 'conv2d.dgrad';
  const dx = new Tensor(dy.ctx, [g.N, g.C, g.H, g.W], 'f32');
  const TC = channelTile(g.C);
  const Wq = Math.ceil(g.W / g.SW), Hq = Math.ceil(g.H / g.SH);
  const tM = Math.ceil(Wq / 4);
  const lanes = g.N * Hq * tM;
  if (lanes === 0 || g.C === 0) return dx;
  const t = tilingFor(dy, 'conv-dgrad', g.C, g.N * g.H * g.W, g.O * g.KH * g.KW, TC, lanes, k);
  if (t.kind === 'reg' && Math.ceil(lanes / t.wgx) > 65535) throw new EngineError(op, `input ${g.N}x${g.C}x${g.H}x${g.W} is too large for one dispatch`);
  runGemm(dy.ctx, op, dgradProblem(dy, w, dx, g, lanes, tM), t);
  return dx;
}

// ------------------------------------------------------------------------------------------------
// Weight gradient: dw[o,c,kh,kw] = sum_{n,oh,ow} dy[n,o,oh,ow] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// GEMM: A = dy as [O, N·P], B = im2col(x)ᵀ [N·P, C·KK]. Register path: TM output channels x 4 input
// channels at one tap per invocation; lanes run along (input-channel tile, tap); k runs over rows
// (n, oh) outside and ow inside. The rows are split into `splits` partial sums (workgroup_id.z;
// written as [splits,O,C,KH,KW], then summed) when there would otherwise be too few workgroups.

function wgradProblem(dy: Tensor, x: Tensor, dw: Tensor, g: ConvGeom, lanes: number, splits: number, rows: number): GemmProblem {
  return {
    key: 'conv:wgrad',
    inputs: [
      { name: 'dy', tensor: dy },
      { name: 'x', tensor: x },
    ],
    params: PARAMS,
    paramValues: paramValues(g, 0, rows),
    out: dw,
    flat: {
      M: g.O,
      N: g.C * g.KH * g.KW,
      K: g.N * g.OH * g.OW,
      z: 1,
      fns: `fn A_at(m: u32, k: u32, z: u32) -> f32 { let NP = P.OH * P.OW; return dy[((k / NP) * P.O + m) * NP + k % NP]; }
fn B_at(k: u32, n: u32, z: u32) -> f32 {
  let NP = P.OH * P.OW;
  let img = k / NP; let p = k % NP;
  let KK = P.KH * P.KW;
  let c = n / KK; let tap = n % KK;
  let ih = i32((p / P.OW) * P.SH + (tap / P.KW) * P.DH) - i32(P.PH);
  let iw = i32((p % P.OW) * P.SW + (tap % P.KW) * P.DW) - i32(P.PW);
  if (ih < 0 || ih >= i32(P.H) || iw < 0 || iw >= i32(P.W)) { return 0.0; }
  return x[((img * P.C + c) * P.H + u32(ih)) * P.W + u32(iw)];
}
fn C_idx(m: u32, n: u32, z: u32) -> u32 { return m * P.N + n; }`,
    },
    reg: {
      lanes,
      z: splits,
      setup: (t) => `  let KK = P.KH * P.KW;
  let tap = lane % KK;
  let c0 = (lane / KK) * 4u;
  let split = wid.z;
  let kh = tap / P.KW;
  let kw = tap % P.KW;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let xc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.C - 1u)) * HW;
  ${I(t.tm).map((i) => `let dyo${i} = min(m0 + ${i}u, P.O - 1u) * NP;`).join(' ')}
  let rowEnd = min(P.NB * P.OH, (split + 1u) * P.rows);
  let SW = P.SW; let DW = P.DW; let PW = P.PW; let Wi = i32(P.W); let OW = P.OW;`,
      outer: [
        `  for (var row = split * P.rows; row < rowEnd; row++) {
    let n = row / P.OH;
    let oh = row % P.OH;
    let ih = i32(oh * P.SH + kh * P.DH) - i32(P.PH);
    let rowOk = ih >= 0 && ih < i32(P.H);
    let xb = i32(n * P.C * HW) + ih * i32(P.W);
    let dyb = n * P.O * NP + oh * P.OW;`,
        '  }',
      ],
      kInner: 'P.OW',
      kInnerValue: g.OW,
      emitA: (t, q, k, kGuard) =>
        I(t.tm)
          .map((i) => `    let a${i}_${q} = vec4<f32>(${J.map((e) => `dy[dyo${i} + dyb + ${kGuard ? `min(${k} + ${e}u, P.OW - 1u)` : `${k} + ${e}u`}]`).join(', ')});`)
          .join('\n'),
      aScalar: (_t, i, k) => `dy[dyo${i} + dyb + min(${k}, P.OW - 1u)]`,
      bRows: true,
      emitB: (_t, q, k, kGuard, only) =>
        J.filter((kk) => only === undefined || kk === only).map((kk) => `    let iw${kk}_${q} = i32((${k} + ${kk}u) * SW + kw * DW) - i32(PW);
    let ok${kk}_${q} = rowOk && iw${kk}_${q} >= 0 && iw${kk}_${q} < Wi${kGuard ? ` && ${k} + ${kk}u < OW` : ''};
    let xi${kk}_${q} = xc + vec4<u32>(u32(select(0, xb + iw${kk}_${q}, ok${kk}_${q})));
    let b${kk}_0_${q} = select(vec4<f32>(0.0), ${vec4Load('x', `xi${kk}_${q}`)}, vec4<bool>(ok${kk}_${q}));`).join('\n'),
      outIdx: (_t, i, _j, e) => `((split * P.O + m0 + ${i}u) * P.C + c0 + ${e}u) * KK + tap`,
      outOk: (_t, i, _j, e) => `m0 + ${i}u < P.O && c0 + ${e}u < P.C`,
    },
  };
}

/** Raw weight-gradient kernel: (dy [N,O,OH,OW], x [N,C,H,W]) -> dw [O,C,KH,KW]. */
export function conv2dWeightGradRaw(dy: Tensor, x: Tensor, g: ConvGeom, k: ConvKernelOptions = {}): Tensor {
  const op = 'conv2d.wgrad';
  const TO = channelTile(g.O);
  const tC = Math.ceil(g.C / 4), tO = Math.ceil(g.O / TO);
  const lanes = tC * g.KH * g.KW;
  const wShape = [g.O, g.C, g.KH, g.KW];
  const t = tilingFor(x, 'conv-wgrad', g.O, g.C * g.KH * g.KW, g.N * g.OH * g.OW, TO, lanes, k);
  const rowsTotal = g.N * g.OH;
  let splits = 1;
  let rows = rowsTotal;
  if (t.kind === 'reg') {
    const gx = Math.ceil(lanes / t.wgx);
    if (gx > 65535) throw new EngineError(op, `weight ${g.O}x${g.C}x${g.KH}x${g.KW} is too large for one dispatch`);
    splits = Math.min(rowsTotal, Math.max(1, Math.ceil(WGRAD_MIN_WORKGROUPS / (gx * tO))));
    rows = Math.ceil(rowsTotal / Math.max(1, splits));
    splits = Math.max(1, Math.ceil(rowsTotal / rows));
  }
  const partial = new Tensor(x.ctx, splits > 1 ? [splits, ...wShape] : wShape, 'f32');
  if (partial.size === 0) return partial;
  runGemm(x.ctx, op, wgradProblem(dy, x, partial, g, lanes, splits, rows), t);
  if (splits === 1) return partial;
  const dw = sum(partial, 0);
  partial.dispose();
  return dw;
}

// ------------------------------------------------------------------------------------------------
// Bias gradient: db[o] = sum_{n,p} dy[n,o,p]; one invocation per output channel.

const BIAS_GRAD = /* wgsl */ `
struct Params { N: u32, O: u32, NP: u32 }
@group(0) @binding(0) var<storage, read_write> db: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = ${LINEAR_INDEX(WG)};
  if (o >= P.O) { return; }
  var acc = 0.0;
  for (var n = 0u; n < P.N; n++) {
    let base = (n * P.O + o) * P.NP;
    var part = 0.0;
    for (var p = 0u; p < P.NP; p++) { part += dy[base + p]; }
    acc += part;
  }
  db[o] = acc;
}`;

/** Raw bias-gradient kernel: dy [N,O,OH,OW] -> db [O]. */
export function conv2dBiasGradRaw(dy: Tensor): Tensor {
  const op = 'conv2d.bgrad';
  const [N, O, OH, OW] = dy.shape as [number, number, number, number];
  const db = new Tensor(dy.ctx, [O], 'f32');
  dy.ctx.dispatch({
    op,
    key: 'conv2d:bgrad',
    code: () => BIAS_GRAD,
    buffers: [db.binding(op), dy.binding(op)],
    uniforms: packUniforms([N, O, OH * OW]),
    workgroups: grid1d(O, WG),
  });
  return db;
}

// ------------------------------------------------------------------------------------------------

/**
 * 2-D convolution, PyTorch semantics (cross-correlation, zero padding).
 * @param x input [N, C, H, W]
 * @param w weight [O, C, KH, KW]
 * @param bias optional [O]
 * @returns [N, O, OH, OW] with OH = floor((H + 2*PH - DH*(KH-1) - 1) / SH) + 1 (likewise OW)
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = convGeometry(x, w, bias, opts);
  const out = conv2dForwardRaw(x, w, bias, g);
  return record(out, 'conv2d', bias ? [x, w, bias] : [x, w], (dy) => [
    x.requiresGrad ? conv2dInputGradRaw(dy, w, g) : null,
    w.requiresGrad ? conv2dWeightGradRaw(dy, x, g) : null,
    bias?.requiresGrad ? conv2dBiasGradRaw(dy) : null,
  ]);
}

/** What conv2dFused adds after the convolution: out = act(conv + bias + residual). */
export interface ConvFused {
  /** 'relu' or 'none' (default): the activations whose gradient needs only the output */
  act?: 'none' | 'relu';
  /** added before the activation; laid out as the output [N, O, OH, OW] */
  residual?: Tensor;
}

/**
 * out = act(conv2d(x, w, bias) + residual) in one GEMM with a fused epilogue (no separate add and
 * activation passes), with autograd: the activation's gradient is taken from the output, then the
 * conv's three gradients and the residual's (the masked output gradient itself). ResNet's eval-mode
 * blocks use it with batch norm folded into w and bias.
 */
export function conv2dFused(x: Tensor, w: Tensor, bias: Tensor | undefined, opts: Conv2dOptions = {}, epi: ConvFused = {}): Tensor {
  const op = 'conv2dFused';
  const g = convGeometry(x, w, bias, opts);
  const act = epi.act ?? 'none';
  if (act !== 'none' && act !== 'relu') throw new EngineError(op, `activation '${String(act)}' is not fused here (none or relu: their gradient needs only the output)`);
  const R = epi.residual;
  const outShape = [g.N, g.O, g.OH, g.OW];
  if (R && (R.dtype !== 'f32' || R.ctx !== x.ctx || shapeStr(R.shape) !== shapeStr(outShape)))
    throw new EngineError(op, `residual must be f32${shapeStr(outShape)} on the input's context (the output's shape), got ${R.describe()}`);
  const out = conv2dForwardRaw(x, w, bias, g, {}, { act: act === 'relu' ? 'relu' : undefined, residual: R });
  const inputs = [x, w, ...(bias ? [bias] : []), ...(R ? [R] : [])];
  return record(out, op, inputs, (dy) => {
    const d = act === 'relu' ? mapRaw(`${op}.relu.backward`, 'select(T(0.0), b, a > T(0.0))', [out, dy]) : dy;
    return [
      x.requiresGrad ? conv2dInputGradRaw(d, w, g) : null,
      w.requiresGrad ? conv2dWeightGradRaw(d, x, g) : null,
      ...(bias ? [bias.requiresGrad ? conv2dBiasGradRaw(d) : null] : []),
      ...(R ? [R.requiresGrad ? d : null] : []),
    ];
  });
}
