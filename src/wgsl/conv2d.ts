// 2-D convolution (PyTorch semantics, NCHW) as implicit GEMM without a materialised im2col: forward,
// input gradient (a transposed conv, one phase of the stride at a time), weight gradient (split-K
// over N*OH rows) and bias gradient, each its own kernel. Every invocation keeps a 4x4 register
// tile (4 channels x 4 pixels) and uses no shared memory (barriers are expensive on lavapipe).
// It does not do groups > 1, padding modes other than zeros, or f16.
//
// Letters: N batch, C input channels, H W input size, O output channels, KH KW kernel size,
// OH OW output size, P = OH*OW, K = KH*KW.

import { EngineError } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { sum } from './reduce.js';

const WG = 64;
/** Channel tile x pixel tile of one invocation. */
const T = 4;
const J = [0, 1, 2, 3];
/** Aim for at least this many invocations in the weight gradient before splitting its reduction. */
const WGRAD_MIN_INVOCATIONS = 4096;

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

/** Shader constants baked in: kernel size, stride, padding, dilation (part of the pipeline key). */
function geomKey(g: ConvGeom): string {
  return [g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW].join(',');
}
function consts(g: ConvGeom): string {
  return `const KH = ${g.KH}u; const KW = ${g.KW}u; const SH = ${g.SH}u; const SW = ${g.SW}u;
const PH = ${g.PH}u; const PW = ${g.PW}u; const DH = ${g.DH}u; const DW = ${g.DW}u; const KK = ${g.KH * g.KW}u;`;
}
const PARAMS = `struct Params { N: u32, C: u32, H: u32, W: u32, O: u32, OH: u32, OW: u32, tA: u32, tB: u32, rows: u32, total: u32 }`;
const dims = (g: ConvGeom, tA: number, tB: number, rows: number, total: number) =>
  packUniforms([g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, tA, tB, rows, total]);
const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${LINEAR_INDEX(WG)};
  if (t >= P.total) { return; }`;
const vec4Load = (buf: string, idx: string) => `vec4<f32>(${J.map((j) => `${buf}[${idx}[${j}]]`).join(', ')})`;

// ------------------------------------------------------------------------------------------------
// Forward: out[n,o,p] = bias[o] + sum_{c,kh,kw} w[o,c,kh,kw] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// Tile: 4 output channels x 4 consecutive output pixels (flattened p), masked at the borders.

function forwardShader(g: ConvGeom, hasBias: boolean): string {
  return /* wgsl */ `
${consts(g)}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${hasBias ? 4 : 3}) var<uniform> P: Params;
${ENTRY}
  let pt = t % P.tA;
  let r = t / P.tA;
  let o0 = (r % P.tB) * 4u;
  let n = r / P.tB;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let p = vec4<u32>(pt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let pv = p < vec4<u32>(NP);
  let oh = p / vec4<u32>(P.OW);
  let ow = p % vec4<u32>(P.OW);
  let ih0 = vec4<i32>(oh * SH) - vec4<i32>(i32(PH));
  let iw0 = vec4<i32>(ow * SW) - vec4<i32>(i32(PW));
  let CKK = P.C * KK;
  let wo = min(vec4<u32>(o0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.O - 1u)) * CKK;
  let xN = n * P.C * HW;
  ${J.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var kh = 0u; kh < KH; kh++) {
    let ih = ih0 + vec4<i32>(i32(kh * DH));
    let rowOk = pv & (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(P.H)));
    for (var kw = 0u; kw < KW; kw++) {
      let iw = iw0 + vec4<i32>(i32(kw * DW));
      let ok = rowOk & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(P.W)));
      var xi = vec4<u32>(xN) + select(vec4<u32>(0u), vec4<u32>(ih * vec4<i32>(i32(P.W)) + iw), ok);
      var wi = wo + vec4<u32>(kh * KW + kw);
      for (var c = 0u; c < P.C; c++) {
        let xv = select(vec4<f32>(0.0), ${vec4Load('x', 'xi')}, ok);
        ${J.map((i) => `acc${i} += w[wi[${i}]] * xv;`).join('\n        ')}
        xi += vec4<u32>(HW);
        wi += vec4<u32>(KK);
      }
    }
  }
  ${J.map(
    (i) => `if (o0 + ${i}u < P.O) {
    let b = ${hasBias ? `bias[o0 + ${i}u]` : '0.0'};
    let base = (n * P.O + o0 + ${i}u) * NP;
    ${J.map((j) => `if (pv[${j}]) { out[base + p[${j}]] = acc${i}[${j}] + b; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Raw forward kernel (no autograd). */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | undefined, g: ConvGeom): Tensor {
  const op = 'conv2d';
  const out = new Tensor(x.ctx, [g.N, g.O, g.OH, g.OW], 'f32');
  const tP = Math.ceil((g.OH * g.OW) / T), tO = Math.ceil(g.O / T);
  const total = g.N * tO * tP;
  if (total === 0) return out;
  x.ctx.dispatch({
    op,
    key: `conv2d:fwd:${geomKey(g)}:${bias ? 'b' : ''}`,
    code: () => forwardShader(g, !!bias),
    buffers: [out.binding(op), x.binding(op), w.binding(op), ...(bias ? [bias.binding(op)] : [])],
    uniforms: dims(g, tP, tO, 0, total),
    workgroups: grid1d(total, WG),
  });
  return out;
}

// ------------------------------------------------------------------------------------------------
// Input gradient: dx[n,c,ih,iw] = sum_{o,kh,kw} dy[n,o,oh,ow] * w[o,c,kh,kw] over the (kh,kw) with
// ih + PH - kh*DH = oh*SH (and likewise for w). Input pixels are split by stride phase
// (ih % SH, iw % SW), slowest in the launch so that neighbouring invocations agree on which taps
// contribute: the tile is 4 channels x 4 pixels of one phase in one row (iw = pw + SW*(4m+j)).

function dgradShader(g: ConvGeom): string {
  return /* wgsl */ `
${consts(g)}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
${ENTRY}
  // t -> (phase, n, channel tile, row of the phase, column tile); tA = column tiles, tB = channel tiles
  let mt = t % P.tA;
  var r = t / P.tA;
  let Hq = (P.H + SH - 1u) / SH;
  let rq = r % Hq; r = r / Hq;
  let c0 = (r % P.tB) * 4u; r = r / P.tB;
  let n = r % P.N;
  let phase = r / P.N;
  let pw = phase % SW;
  let ph = phase / SW;
  let ih = ph + SH * rq;
  if (ih >= P.H) { return; }
  let m = vec4<u32>(mt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let iw = vec4<u32>(pw) + vec4<u32>(SW) * m;
  let pv = iw < vec4<u32>(P.W);
  let NP = P.OH * P.OW;
  let CKK = P.C * KK;
  let wc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.C - 1u)) * KK;
  let dyN = n * P.O * NP;
  ${J.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var kh = 0u; kh < KH; kh++) {
    let th = i32(ih + PH) - i32(kh * DH);
    if (th < 0 || th % i32(SH) != 0) { continue; }
    let oh = u32(th) / SH;
    if (oh >= P.OH) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let tw = i32(pw + PW) - i32(kw * DW);
      if (tw % i32(SW) != 0) { continue; }
      let ow = vec4<i32>(tw / i32(SW)) + vec4<i32>(m);
      let ok = pv & (ow >= vec4<i32>(0)) & (ow < vec4<i32>(i32(P.OW)));
      var di = vec4<u32>(dyN) + select(vec4<u32>(0u), vec4<u32>(oh * P.OW) + vec4<u32>(ow), ok);
      var wi = wc + vec4<u32>(kh * KW + kw);
      for (var o = 0u; o < P.O; o++) {
        let dv = select(vec4<f32>(0.0), ${vec4Load('dy', 'di')}, ok);
        ${J.map((i) => `acc${i} += w[wi[${i}]] * dv;`).join('\n        ')}
        di += vec4<u32>(NP);
        wi += vec4<u32>(CKK);
      }
    }
  }
  let HW = P.H * P.W;
  ${J.map(
    (i) => `if (c0 + ${i}u < P.C) {
    let base = (n * P.C + c0 + ${i}u) * HW + ih * P.W;
    ${J.map((j) => `if (pv[${j}]) { dx[base + iw[${j}]] = acc${i}[${j}]; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Raw input-gradient kernel: dy [N,O,OH,OW] -> dx [N,C,H,W]. */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeom): Tensor {
  const op = 'conv2d.dgrad';
  const dx = new Tensor(dy.ctx, [g.N, g.C, g.H, g.W], 'f32');
  const Wq = Math.ceil(g.W / g.SW), Hq = Math.ceil(g.H / g.SH);
  const tM = Math.ceil(Wq / T), tC = Math.ceil(g.C / T);
  const total = g.SH * g.SW * g.N * tC * Hq * tM;
  if (total === 0) return dx;
  dy.ctx.dispatch({
    op,
    key: `conv2d:dgrad:${geomKey(g)}`,
    code: () => dgradShader(g),
    buffers: [dx.binding(op), dy.binding(op), w.binding(op)],
    uniforms: dims(g, tM, tC, 0, total),
    workgroups: grid1d(total, WG),
  });
  return dx;
}

// ------------------------------------------------------------------------------------------------
// Weight gradient: dw[o,c,kh,kw] = sum_{n,oh,ow} dy[n,o,oh,ow] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// Tile: 4 output channels x 4 input channels at one tap (kh,kw); the reduction over the N*OH rows is
// split into `splits` partial sums (written as [splits,O,C,KH,KW], then summed) when the tile count
// alone would leave the device idle.

function wgradShader(g: ConvGeom): string {
  return /* wgsl */ `
${consts(g)}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dw: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
${ENTRY}
  // t -> (split, out-channel tile, in-channel tile, tap); tA = in-channel tiles, tB = out-channel tiles
  let kk = t % KK;
  var r = t / KK;
  let c0 = (r % P.tA) * 4u; r = r / P.tA;
  let o0 = (r % P.tB) * 4u;
  let split = r / P.tB;
  let kh = kk / KW;
  let kw = kk % KW;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let xc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.C - 1u)) * HW;
  let dyo = min(vec4<u32>(o0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.O - 1u)) * NP;
  // output columns whose input column iw = ow*SW + off lies inside [0, W)
  let off = i32(kw * DW) - i32(PW);
  let owLo = u32(max(0, (-off + i32(SW) - 1) / i32(SW)));
  let owHi = u32(clamp((i32(P.W) - 1 - off + i32(SW)) / i32(SW), 0, i32(P.OW)));
  let rowEnd = min(P.N * P.OH, (split + 1u) * P.rows);
  ${J.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var row = split * P.rows; row < rowEnd; row++) {
    let n = row / P.OH;
    let oh = row % P.OH;
    let ih = i32(oh * SH + kh * DH) - i32(PH);
    if (ih < 0 || ih >= i32(P.H)) { continue; }
    var xi = xc + vec4<u32>(n * P.C * HW + u32(ih) * P.W + u32(i32(owLo * SW) + off));
    var di = dyo + vec4<u32>(n * P.O * NP + oh * P.OW + owLo);
    for (var ow = owLo; ow < owHi; ow++) {
      let xv = ${vec4Load('x', 'xi')};
      ${J.map((i) => `acc${i} += dy[di[${i}]] * xv;`).join('\n      ')}
      xi += vec4<u32>(SW);
      di += vec4<u32>(1u);
    }
  }
  ${J.map(
    (i) => `if (o0 + ${i}u < P.O) {
    let base = ((split * P.O + o0 + ${i}u) * P.C + c0) * KK + kk;
    ${J.map((j) => `if (c0 + ${j}u < P.C) { dw[base + ${j}u * KK] = acc${i}[${j}]; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Raw weight-gradient kernel: (dy [N,O,OH,OW], x [N,C,H,W]) -> dw [O,C,KH,KW]. */
export function conv2dWeightGradRaw(dy: Tensor, x: Tensor, g: ConvGeom): Tensor {
  const op = 'conv2d.wgrad';
  const tC = Math.ceil(g.C / T), tO = Math.ceil(g.O / T);
  const tiles = tC * tO * g.KH * g.KW;
  const rowsTotal = g.N * g.OH;
  let splits = Math.min(rowsTotal, Math.max(1, Math.ceil(WGRAD_MIN_INVOCATIONS / tiles)));
  const rows = Math.ceil(rowsTotal / Math.max(1, splits));
  splits = Math.max(1, Math.ceil(rowsTotal / rows));
  const wShape = [g.O, g.C, g.KH, g.KW];
  const partial = new Tensor(x.ctx, splits > 1 ? [splits, ...wShape] : wShape, 'f32');
  const total = splits * tiles;
  x.ctx.dispatch({
    op,
    key: `conv2d:wgrad:${geomKey(g)}`,
    code: () => wgradShader(g),
    buffers: [partial.binding(op), dy.binding(op), x.binding(op)],
    uniforms: dims(g, tC, tO, rows, total),
    workgroups: grid1d(total, WG),
  });
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
