// 2-D convolution (PyTorch semantics, NCHW) as implicit GEMM without a materialised im2col: forward,
// input gradient (a transposed conv, one phase of the stride at a time), weight gradient (split-K
// over N*OH rows) and bias gradient, each its own kernel. Every invocation keeps a register tile
// (16 channels x 4 pixels) and uses no shared memory (barriers are expensive on lavapipe); the
// channel tile comes from the workgroup id so that weight (wgrad: dy) addresses are uniform, and on
// devices with 8-wide subgroups each lane loads one of 8 consecutive values and subgroupBroadcast
// shares them (one gather instead of eight).
// It does not do groups > 1, padding modes other than zeros, or f16.
//
// Letters: N batch, C input channels, H W input size, O output channels, KH KW kernel size,
// OH OW output size, P = OH*OW, K = KH*KW.

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { sum } from './reduce.js';
import { EngineError } from '../util/errors.js';

const WG = 64;
/** Pixel (or input-channel, in wgrad) tile of one invocation. */
const T = 4;
/**
 * Workgroup size for `lanes` invocations along x: lanes past the end still run the loops (no early
 * return, so loads and subgroup operations stay in uniform control flow), so keep their number small.
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
 * compiling on lavapipe is slow); the names below read it like constants.
 */
const PARAMS = `struct Params { N: u32, C: u32, H: u32, W: u32, O: u32, OH: u32, OW: u32, tA: u32, tB: u32, rows: u32, total: u32,
  KH: u32, KW: u32, SH: u32, SW: u32, PH: u32, PW: u32, DH: u32, DW: u32 }`;
const GEOM = `let KH = P.KH; let KW = P.KW; let SH = P.SH; let SW = P.SW; let PH = P.PH; let PW = P.PW;
  let DH = P.DH; let DW = P.DW; let KK = KH * KW;`;
const dims = (g: ConvGeom, tA: number, tB: number, rows: number, total: number) =>
  packUniforms([g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, tA, tB, rows, total, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW]);
const vec4Load = (buf: string, idx: string) => `vec4<f32>(${J.map((j) => `${buf}[${idx}[${j}]]`).join(', ')})`;

// ------------------------------------------------------------------------------------------------
// Forward: out[n,o,p] = bias[o] + sum_{c,kh,kw} w[o,c,kh,kw] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// Tile: 16 (8 when O <= 8) output channels x 4 consecutive output pixels (flattened p), masked at the borders.
// The channel tile comes from workgroup_id.y, so every weight address is uniform across the
// workgroup; the invocations of a workgroup run along (n, pixel tile) with no early return.


function forwardShader(hasBias: boolean, TO: number, sg: boolean, wg: number): string {
  const I = Array.from({ length: TO }, (_, i) => i);
  const L = Array.from({ length: SG }, (_, l) => l);
  // subgroup path: lane sl of each group of SG lanes loads the weights of channel c + sl with one
  // gather per output channel; subgroupBroadcast then hands channel c + l's weights to every lane.
  const inner = sg
    ? `for (var c = 0u; c < P.C; c += ${SG}u) {
        let wl = min(c + sl, P.C - 1u) * KK + wi;
        ${I.map((i) => `let wr${i} = w[wo${i} + wl];`).join(' ')}
        ${L.map(
          (l) => `if (c + ${l}u < P.C) {
          let xv = select(vec4<f32>(0.0), ${vec4Load('x', 'xi')}, ok);
          ${I.map((i) => `acc${i} += subgroupBroadcast(wr${i}, ${l}u) * xv;`).join(' ')}
          xi += vec4<u32>(HW);
        }`,
        ).join('\n        ')}
      }`
    : `for (var c = 0u; c < P.C; c++) {
        let xv = select(vec4<f32>(0.0), ${vec4Load('x', 'xi')}, ok);
        ${I.map((i) => `acc${i} += w[wo${i} + wi] * xv;`).join('\n        ')}
        xi += vec4<u32>(HW);
        wi += KK;
      }`;
  return /* wgsl */ `
${sg ? 'enable subgroups;' : ''}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${hasBias ? 4 : 3}) var<uniform> P: Params;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>${
    sg ? ', @builtin(subgroup_invocation_id) sid: u32' : ''
  }) {
  ${GEOM}
  ${sg ? `let sl = sid % ${SG}u;` : ''}
  // lane -> (n, pixel tile); tA = pixel tiles, total = N * tA
  let valid = gid.x < P.total;
  let lane = min(gid.x, P.total - 1u);
  let pt = lane % P.tA;
  let n = lane / P.tA;
  let o0 = wid.y * ${TO}u;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let p = vec4<u32>(pt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let pv = p < vec4<u32>(NP);
  let oh = p / vec4<u32>(P.OW);
  let ow = p % vec4<u32>(P.OW);
  let ih0 = vec4<i32>(oh * SH) - vec4<i32>(i32(PH));
  let iw0 = vec4<i32>(ow * SW) - vec4<i32>(i32(PW));
  let CKK = P.C * KK;
  ${I.map((i) => `let wo${i} = min(o0 + ${i}u, P.O - 1u) * CKK;`).join(' ')}
  let xN = n * P.C * HW;
  ${I.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var kh = 0u; kh < KH; kh++) {
    let ih = ih0 + vec4<i32>(i32(kh * DH));
    let rowOk = pv & (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(P.H)));
    for (var kw = 0u; kw < KW; kw++) {
      let iw = iw0 + vec4<i32>(i32(kw * DW));
      let ok = rowOk & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(P.W)));
      var xi = vec4<u32>(xN) + select(vec4<u32>(0u), vec4<u32>(ih * vec4<i32>(i32(P.W)) + iw), ok);
      var wi = kh * KW + kw;
      ${inner}
    }
  }
  if (!valid) { return; }
  ${I.map(
    (i) => `if (o0 + ${i}u < P.O) {
    let b = ${hasBias ? `bias[o0 + ${i}u]` : '0.0'};
    let base = (n * P.O + o0 + ${i}u) * NP;
    ${J.map((j) => `if (pv[${j}]) { out[base + p[${j}]] = acc${i}[${j}] + b; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Subgroup width the subgroup paths assume (lavapipe's; devices with smaller subgroups fall back). */
const SG = 8;
/** True when the device has subgroups of at least SG lanes. */
export function hasSubgroups(ctx: Tensor['ctx']): boolean {
  if (!ctx.features.has('subgroups')) return false;
  const info = (ctx.device as unknown as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return (info?.subgroupMinSize ?? 0) >= SG;
}

/** Kernel choices, for benchmarks and tests (defaults: what the device supports). */
export interface ConvKernelOptions {
  /** Use the subgroup-broadcast weight loads (needs the 'subgroups' feature). */
  subgroups?: boolean;
}

/** Raw forward kernel (no autograd). */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | undefined, g: ConvGeom, k: ConvKernelOptions = {}): Tensor {
  const op = 'conv2d';
  const sg = k.subgroups ?? hasSubgroups(x.ctx);
  const out = new Tensor(x.ctx, [g.N, g.O, g.OH, g.OW], 'f32');
  const TO = channelTile(g.O);
  const tP = Math.ceil((g.OH * g.OW) / T), tO = Math.ceil(g.O / TO);
  const lanes = g.N * tP;
  if (lanes === 0 || tO === 0) return out;
  const wg = laneGroup(lanes);
  const gx = Math.ceil(lanes / wg);
  if (gx > 65535) throw new EngineError(op, `input ${g.N}x${g.C}x${g.H}x${g.W} is too large for one dispatch (${lanes} pixel tiles)`);
  x.ctx.dispatch({
    op,
    key: `conv2d:fwd2:${TO}:${wg}:${bias ? 'b' : ''}:${sg ? 'sg' : ''}`,
    code: () => forwardShader(!!bias, TO, sg, wg),
    buffers: [out.binding(op), x.binding(op), w.binding(op), ...(bias ? [bias.binding(op)] : [])],
    uniforms: dims(g, tP, tO, 0, lanes),
    workgroups: [gx, tO, 1],
  });
  return out;
}

// ------------------------------------------------------------------------------------------------
// Input gradient: dx[n,c,ih,iw] = sum_{o,kh,kw} dy[n,o,oh,ow] * w[o,c,kh,kw] over the (kh,kw) with
// ih + PH - kh*DH = oh*SH (and likewise for w). Input pixels are split by stride phase
// (ih % SH, iw % SW) taken from workgroup_id.z, so which taps contribute is uniform across the
// workgroup; the channel tile (DGRAD_TC channels) comes from workgroup_id.y so weight addresses are
// uniform. Each invocation computes DGRAD_TC channels x 4 pixels of one phase in one row
// (iw = pw + SW*(4m+j)); its lanes run along (n, row of the phase, column tile).

function dgradShader(TC: number, sg: boolean, wg: number): string {
  const I = Array.from({ length: TC }, (_, i) => i);
  const L = Array.from({ length: SG }, (_, l) => l);
  // subgroup path as in the forward kernel: lane sl loads the weights of output channel o + sl
  const inner = sg
    ? `for (var o = 0u; o < P.O; o += ${SG}u) {
        let wl = min(o + sl, P.O - 1u) * CKK + wi;
        ${I.map((i) => `let wr${i} = w[wc${i} + wl];`).join(' ')}
        ${L.map(
          (l) => `if (o + ${l}u < P.O) {
          let dv = select(vec4<f32>(0.0), ${vec4Load('dy', 'di')}, ok);
          ${I.map((i) => `acc${i} += subgroupBroadcast(wr${i}, ${l}u) * dv;`).join(' ')}
          di += vec4<u32>(NP);
        }`,
        ).join('\n        ')}
      }`
    : `for (var o = 0u; o < P.O; o++) {
        let dv = select(vec4<f32>(0.0), ${vec4Load('dy', 'di')}, ok);
        ${I.map((i) => `acc${i} += w[wc${i} + wi] * dv;`).join('\n        ')}
        di += vec4<u32>(NP);
        wi += CKK;
      }`;
  return /* wgsl */ `
${sg ? 'enable subgroups;' : ''}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>${
    sg ? ', @builtin(subgroup_invocation_id) sid: u32' : ''
  }) {
  ${GEOM}
  ${sg ? `let sl = sid % ${SG}u;` : ''}
  // lane -> (n, row of the phase, column tile); tA = column tiles, total = N * Hq * tA
  let Hq = (P.H + SH - 1u) / SH;
  let valid = gid.x < P.total;
  let lane = min(gid.x, P.total - 1u);
  let mt = lane % P.tA;
  let rq = (lane / P.tA) % Hq;
  let n = lane / (P.tA * Hq);
  let c0 = wid.y * ${TC}u;
  let pw = wid.z % SW;
  let ph = wid.z / SW;
  let ih = ph + SH * rq;
  let m = vec4<u32>(mt * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let iw = vec4<u32>(pw) + vec4<u32>(SW) * m;
  let pv = (iw < vec4<u32>(P.W)) & vec4<bool>(ih < P.H);
  let NP = P.OH * P.OW;
  let CKK = P.C * KK;
  ${I.map((i) => `let wc${i} = min(c0 + ${i}u, P.C - 1u) * KK;`).join(' ')}
  let dyN = n * P.O * NP;
  ${I.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var kh = 0u; kh < KH; kh++) {
    let th = i32(ph + PH) - i32(kh * DH);
    if (th % i32(SH) != 0) { continue; }
    let oh = th / i32(SH) + i32(rq);
    let rowOk = pv & vec4<bool>(oh >= 0 && oh < i32(P.OH));
    for (var kw = 0u; kw < KW; kw++) {
      let tw = i32(pw + PW) - i32(kw * DW);
      if (tw % i32(SW) != 0) { continue; }
      let ow = vec4<i32>(tw / i32(SW)) + vec4<i32>(m);
      let ok = rowOk & (ow >= vec4<i32>(0)) & (ow < vec4<i32>(i32(P.OW)));
      var di = vec4<u32>(dyN) + select(vec4<u32>(0u), vec4<u32>(vec4<i32>(oh * i32(P.OW)) + ow), ok);
      var wi = kh * KW + kw;
      ${inner}
    }
  }
  if (!valid || ih >= P.H) { return; }
  let HW = P.H * P.W;
  ${I.map(
    (i) => `if (c0 + ${i}u < P.C) {
    let base = (n * P.C + c0 + ${i}u) * HW + ih * P.W;
    ${J.map((j) => `if (pv[${j}]) { dx[base + iw[${j}]] = acc${i}[${j}]; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Raw input-gradient kernel: dy [N,O,OH,OW] -> dx [N,C,H,W]. */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeom, k: ConvKernelOptions = {}): Tensor {
  const op = 'conv2d.dgrad';
  const sg = k.subgroups ?? hasSubgroups(dy.ctx);
  const dx = new Tensor(dy.ctx, [g.N, g.C, g.H, g.W], 'f32');
  const TC = channelTile(g.C);
  const Wq = Math.ceil(g.W / g.SW), Hq = Math.ceil(g.H / g.SH);
  const tM = Math.ceil(Wq / T), tC = Math.ceil(g.C / TC);
  const lanes = g.N * Hq * tM;
  if (lanes === 0 || tC === 0) return dx;
  const wg = laneGroup(lanes);
  const gx = Math.ceil(lanes / wg);
  if (gx > 65535) throw new EngineError(op, `input ${g.N}x${g.C}x${g.H}x${g.W} is too large for one dispatch`);
  dy.ctx.dispatch({
    op,
    key: `conv2d:dgrad2:${TC}:${wg}:${sg ? 'sg' : ''}`,
    code: () => dgradShader(TC, sg, wg),
    buffers: [dx.binding(op), dy.binding(op), w.binding(op)],
    uniforms: dims(g, tM, tC, 0, lanes),
    workgroups: [gx, tC, g.SH * g.SW],
  });
  return dx;
}

// ------------------------------------------------------------------------------------------------
// Weight gradient: dw[o,c,kh,kw] = sum_{n,oh,ow} dy[n,o,oh,ow] * x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW].
// Tile: WGRAD_TO output channels (from workgroup_id.y: dy addresses are uniform) x 4 input
// channels at one tap (kh,kw); lanes run along (input-channel tile, tap). The reduction over the
// N*OH rows is split into `splits` partial sums (workgroup_id.z; written as [splits,O,C,KH,KW],
// then summed) when there would otherwise be too few workgroups to keep the device busy.

function wgradShader(TO: number, sg: boolean, wg: number): string {
  const I = Array.from({ length: TO }, (_, i) => i);
  const L = Array.from({ length: SG }, (_, l) => l);
  const xload = (ow: string) => `let iw = i32((${ow}) * SW + kw * DW) - i32(PW);
        let ok = rowOk && iw >= 0 && iw < i32(P.W);
        let xi = xc + vec4<u32>(u32(select(0, xb + iw, ok)));
        let xv = select(vec4<f32>(0.0), ${vec4Load('x', 'xi')}, vec4<bool>(ok));`;
  // subgroup path: lane sl loads dy at column ow + sl; subgroupBroadcast hands column ow + l to all
  const inner = sg
    ? `for (var ow = 0u; ow < P.OW; ow += ${SG}u) {
      let d = dyb + min(ow + sl, P.OW - 1u);
      ${I.map((i) => `let dr${i} = dy[dyo${i} + d];`).join(' ')}
      ${L.map(
        (l) => `if (ow + ${l}u < P.OW) {
        ${xload(`ow + ${l}u`)}
        ${I.map((i) => `acc${i} += subgroupBroadcast(dr${i}, ${l}u) * xv;`).join(' ')}
      }`,
      ).join('\n      ')}
    }`
    : `for (var ow = 0u; ow < P.OW; ow++) {
      ${xload('ow')}
      let d = dyb + ow;
      ${I.map((i) => `acc${i} += dy[dyo${i} + d] * xv;`).join('\n      ')}
    }`;
  return /* wgsl */ `
${sg ? 'enable subgroups;' : ''}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dw: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>${
    sg ? ', @builtin(subgroup_invocation_id) sid: u32' : ''
  }) {
  ${GEOM}
  ${sg ? `let sl = sid % ${SG}u;` : ''}
  // lane -> (input-channel tile, tap); total = tA * KK with tA = input-channel tiles
  let valid = gid.x < P.total;
  let lane = min(gid.x, P.total - 1u);
  let kk = lane % KK;
  let c0 = (lane / KK) * 4u;
  let o0 = wid.y * ${TO}u;
  let split = wid.z;
  let kh = kk / KW;
  let kw = kk % KW;
  let NP = P.OH * P.OW;
  let HW = P.H * P.W;
  let xc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.C - 1u)) * HW;
  ${I.map((i) => `let dyo${i} = min(o0 + ${i}u, P.O - 1u) * NP;`).join(' ')}
  let rowEnd = min(P.N * P.OH, (split + 1u) * P.rows);
  ${I.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var row = split * P.rows; row < rowEnd; row++) {
    let n = row / P.OH;
    let oh = row % P.OH;
    let ih = i32(oh * SH + kh * DH) - i32(PH);
    let rowOk = ih >= 0 && ih < i32(P.H);
    let xb = i32(n * P.C * HW) + ih * i32(P.W);
    let dyb = n * P.O * NP + oh * P.OW;
    ${inner}
  }
  if (!valid) { return; }
  ${I.map(
    (i) => `if (o0 + ${i}u < P.O) {
    let base = ((split * P.O + o0 + ${i}u) * P.C + c0) * KK + kk;
    ${J.map((j) => `if (c0 + ${j}u < P.C) { dw[base + ${j}u * KK] = acc${i}[${j}]; }`).join('\n    ')}
  }`,
  ).join('\n  ')}
}`;
}

/** Raw weight-gradient kernel: (dy [N,O,OH,OW], x [N,C,H,W]) -> dw [O,C,KH,KW]. */
export function conv2dWeightGradRaw(dy: Tensor, x: Tensor, g: ConvGeom, k: ConvKernelOptions = {}): Tensor {
  const op = 'conv2d.wgrad';
  const sg = k.subgroups ?? hasSubgroups(x.ctx);
  const TO = channelTile(g.O);
  const tC = Math.ceil(g.C / T), tO = Math.ceil(g.O / TO);
  const lanes = tC * g.KH * g.KW;
  const wg = laneGroup(lanes);
  const gx = Math.ceil(lanes / wg);
  if (gx > 65535) throw new EngineError(op, `weight ${g.O}x${g.C}x${g.KH}x${g.KW} is too large for one dispatch`);
  const rowsTotal = g.N * g.OH;
  let splits = Math.min(rowsTotal, Math.max(1, Math.ceil(WGRAD_MIN_WORKGROUPS / (gx * tO))));
  const rows = Math.ceil(rowsTotal / Math.max(1, splits));
  splits = Math.max(1, Math.ceil(rowsTotal / rows));
  const wShape = [g.O, g.C, g.KH, g.KW];
  const partial = new Tensor(x.ctx, splits > 1 ? [splits, ...wShape] : wShape, 'f32');
  x.ctx.dispatch({
    op,
    key: `conv2d:wgrad2:${TO}:${wg}:${sg ? 'sg' : ''}`,
    code: () => wgradShader(TO, sg, wg),
    buffers: [partial.binding(op), dy.binding(op), x.binding(op)],
    uniforms: dims(g, tC, tO, rows, lanes),
    workgroups: [gx, tO, splits],
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
