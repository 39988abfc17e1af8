// 2-D pooling (PyTorch semantics, NCHW): max pooling (backward routes to the saved argmax, the
// first maximum on ties), average pooling (count_include_pad True, PyTorch's default, or False:
// the divisor is the number of input elements inside the window, as TensorFlow's average pool and
// the FID Inception use), global average pooling. One invocation per output (forward) or per input
// element (backward, a gather over the windows that contain it: no atomics). It does not do
// ceil_mode, dilation or adaptive output sizes other than 1.
//
// Letters: N batch, C channels, H W input size, KH KW window, OH OW output size.

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { f32lit, grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;
type Pair = number | [number, number];

interface PoolGeom {
  N: number; C: number; H: number; W: number;
  KH: number; KW: number; SH: number; SW: number; PH: number; PW: number;
  OH: number; OW: number;
  /** average pooling divides by the window's in-bounds count instead of KH*KW */
  excludePad: boolean;
}

function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const k of p)
    if (!Number.isInteger(k) || k < min) throw new EngineError(op, `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

function check4d(op: string, x: Tensor) {
  if (x.rank !== 4) throw new EngineError(op, `input must be 4-D [N,C,H,W], got ${x.describe()}`);
  if (x.dtype !== 'f32') throw new EngineError(op, `input must be f32, got ${x.describe()}`);
}

function geometry(op: string, x: Tensor, kernel: Pair, stride: Pair | undefined, padding: Pair): PoolGeom {
  check4d(op, x);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [KH, KW] = pair(op, 'kernel', kernel, 1);
  const [SH, SW] = pair(op, 'stride', stride ?? [KH, KW], 1);
  const [PH, PW] = pair(op, 'padding', padding, 0);
  if (2 * PH > KH || 2 * PW > KW)
    throw new EngineError(op, `padding ${PH},${PW} must be at most half the kernel ${KH}x${KW}`);
  if (KH > H + 2 * PH || KW > W + 2 * PW)
    throw new EngineError(op, `kernel ${KH}x${KW} is larger than the padded input ${H + 2 * PH}x${W + 2 * PW} of input ${shapeStr(x.shape)}`);
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  return { N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, excludePad: false };
}

const PARAMS = `struct Params { NC: u32, H: u32, W: u32, OH: u32, OW: u32 }`;
const consts = (g: PoolGeom) =>
  `const KH = ${g.KH}; const KW = ${g.KW}; const SH = ${g.SH}; const SW = ${g.SW}; const PH = ${g.PH}; const PW = ${g.PW};`;
const key = (g: PoolGeom) => [g.KH, g.KW, g.SH, g.SW, g.PH, g.PW].join(',') + (g.excludePad ? ':nopad' : '');

/** WGSL: the reciprocal divisor of average window (oh, ow) as \`inv\` (KH*KW, or its in-bounds count). */
function avgDivisor(g: PoolGeom): string {
  if (!g.excludePad) return `let inv = ${f32lit(1 / (g.KH * g.KW))};`;
  return `let inv = 1.0 / f32((min(oh * SH - PH + KH, i32(P.H)) - max(oh * SH - PH, 0)) * (min(ow * SW - PW + KW, i32(P.W)) - max(ow * SW - PW, 0)));`;
}
const uniforms = (g: PoolGeom) => packUniforms([g.N * g.C, g.H, g.W, g.OH, g.OW]);
const ENTRY = (n: string) => `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${LINEAR_INDEX(WG)};
  if (t >= ${n}) { return; }`;

/** Forward: one output per invocation; max also writes the argmax (ih*W + iw in the plane). */
function forwardShader(g: PoolGeom, kind: 'max' | 'avg'): string {
  const isMax = kind === 'max';
  return /* wgsl */ `
${consts(g)}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
${isMax ? '@group(0) @binding(1) var<storage, read_write> argmax: array<i32>;' : ''}
@group(0) @binding(${isMax ? 2 : 1}) var<storage, read> x: array<f32>;
@group(0) @binding(${isMax ? 3 : 2}) var<uniform> P: Params;
${ENTRY('P.NC * P.OH * P.OW')}
  let ow = i32(t % P.OW);
  let oh = i32((t / P.OW) % P.OH);
  let plane = (t / (P.OW * P.OH)) * P.H * P.W;
  var acc = ${isMax ? '-3.4028234663852886e38' : '0.0'};
  var best = -1;
  for (var kh = 0; kh < KH; kh++) {
    let ih = oh * SH - PH + kh;
    if (ih < 0 || ih >= i32(P.H)) { continue; }
    for (var kw = 0; kw < KW; kw++) {
      let iw = ow * SW - PW + kw;
      if (iw < 0 || iw >= i32(P.W)) { continue; }
      let v = x[plane + u32(ih) * P.W + u32(iw)];
      ${isMax ? `if (best < 0 || v > acc || (v != v && acc == acc)) { acc = v; best = ih * i32(P.W) + iw; }` : 'acc += v;'}
    }
  }
  ${isMax ? 'y[t] = acc;\n  argmax[t] = best;' : `${avgDivisor(g)}\n  y[t] = acc * inv;`}
}`;
}

/** Backward: one input element per invocation, gathering dy over the windows that contain it. */
function backwardShader(g: PoolGeom, kind: 'max' | 'avg'): string {
  const isMax = kind === 'max';
  return /* wgsl */ `
${consts(g)}
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
${isMax ? '@group(0) @binding(2) var<storage, read> argmax: array<i32>;' : ''}
@group(0) @binding(${isMax ? 3 : 2}) var<uniform> P: Params;
${ENTRY('P.NC * P.H * P.W')}
  let iw = i32(t % P.W);
  let ih = i32((t / P.W) % P.H);
  let plane = (t / (P.W * P.H)) * P.OH * P.OW;
  let here = ih * i32(P.W) + iw;
  // windows oh with oh*SH - PH <= ih <= oh*SH - PH + KH - 1
  let ohLo = max(0, (ih + PH - KH + SH) / SH);
  let ohHi = min(i32(P.OH) - 1, (ih + PH) / SH);
  let owLo = max(0, (iw + PW - KW + SW) / SW);
  let owHi = min(i32(P.OW) - 1, (iw + PW) / SW);
  var acc = 0.0;
  for (var oh = ohLo; oh <= ohHi; oh++) {
    for (var ow = owLo; ow <= owHi; ow++) {
      let o = plane + u32(oh) * P.OW + u32(ow);
      ${isMax ? 'if (argmax[o] == here) { acc += dy[o]; }' : g.excludePad ? `${avgDivisor(g)}\n      acc += dy[o] * inv;` : 'acc += dy[o];'}
    }
  }
  dx[t] = ${isMax || g.excludePad ? 'acc' : `acc * ${f32lit(1 / (g.KH * g.KW))}`};
}`;
}

function poolBackward(op: string, g: PoolGeom, dy: Tensor, argmax: Tensor | null): Tensor {
  const kind = argmax ? 'max' : 'avg';
  const dx = new Tensor(dy.ctx, [g.N, g.C, g.H, g.W], 'f32');
  dy.ctx.dispatch({
    op,
    key: `pool2d:${kind}:bwd:${key(g)}`,
    code: () => backwardShader(g, kind),
    buffers: [dx.binding(op), dy.binding(op), ...(argmax ? [argmax.binding(op)] : [])],
    uniforms: uniforms(g),
    workgroups: grid1d(dx.size, WG),
  });
  return dx;
}

/**
 * Max pooling (PyTorch max_pool2d, ceil_mode=False, padding counts as -infinity).
 * @param x [N, C, H, W]
 * @param kernel window size; stride defaults to the kernel; padding at most half the kernel
 * @returns [N, C, OH, OW], OH = floor((H + 2*PH - KH) / SH) + 1. The gradient goes to the first
 *   maximum of each window (row-major order), as in PyTorch.
 */
export function maxPool2d(x: Tensor, kernel: Pair, stride?: Pair, padding: Pair = 0): Tensor {
  const op = 'maxPool2d';
  const g = geometry(op, x, kernel, stride, padding);
  const y = new Tensor(x.ctx, [g.N, g.C, g.OH, g.OW], 'f32');
  const argmax = new Tensor(x.ctx, y.shape, 'i32');
  x.ctx.dispatch({
    op,
    key: `pool2d:max:fwd:${key(g)}`,
    code: () => forwardShader(g, 'max'),
    buffers: [y.binding(op), argmax.binding(op), x.binding(op)],
    uniforms: uniforms(g),
    workgroups: grid1d(y.size, WG),
  });
  if (!x.ctx.gradEnabled || !x.requiresGrad) {
    argmax.dispose();
    return y;
  }
  return record(y, op, [x], (dy) => [poolBackward(`${op}.backward`, g, dy, argmax)]);
}

/** Options of avgPool2d. */
export interface AvgPool2dOptions {
  /**
   * PyTorch's count_include_pad (default true): every window is divided by KH*KW, padding counting
   * as zeros. False divides each window by the number of input elements it covers.
   */
  countIncludePad?: boolean;
}

/**
 * Average pooling (PyTorch avg_pool2d, ceil_mode=False).
 * @param x [N, C, H, W]
 * @returns [N, C, OH, OW]
 */
export function avgPool2d(x: Tensor, kernel: Pair, stride?: Pair, padding: Pair = 0, options: AvgPool2dOptions = {}): Tensor {
  const op = 'avgPool2d';
  const g = geometry(op, x, kernel, stride, padding);
  g.excludePad = options.countIncludePad === false && (g.PH > 0 || g.PW > 0);
  const y = new Tensor(x.ctx, [g.N, g.C, g.OH, g.OW], 'f32');
  x.ctx.dispatch({
    op,
    key: `pool2d:avg:fwd:${key(g)}`,
    code: () => forwardShader(g, 'avg'),
    buffers: [y.binding(op), x.binding(op)],
    uniforms: uniforms(g),
    workgroups: grid1d(y.size, WG),
  });
  return record(y, op, [x], (dy) => [poolBackward(`${op}.backward`, g, dy, null)]);
}

// ------------------------------------------------------------------------------------------------
// Global average pooling: mean over H*W per (n, c); backward spreads dy / (H*W).

const GLOBAL_FWD = /* wgsl */ `
struct Params { NC: u32, HW: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${ENTRY('P.NC')}
  var acc = 0.0;
  let base = t * P.HW;
  for (var i = 0u; i < P.HW; i++) { acc += x[base + i]; }
  y[t] = acc / f32(P.HW);
}`;
const GLOBAL_BWD = /* wgsl */ `
struct Params { NC: u32, HW: u32 }
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${ENTRY('P.NC * P.HW')}
  dx[t] = dy[t / P.HW] / f32(P.HW);
}`;

function globalAvg(op: string, x: Tensor, keepDims: boolean): Tensor {
  check4d(op, x);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  if (H * W === 0) throw new EngineError(op, `cannot average an empty plane of input ${shapeStr(x.shape)}`);
  const y = new Tensor(x.ctx, keepDims ? [N, C, 1, 1] : [N, C], 'f32');
  const u = packUniforms([N * C, H * W]);
  x.ctx.dispatch({ op, key: 'pool2d:global:fwd', code: () => GLOBAL_FWD, buffers: [y.binding(op), x.binding(op)], uniforms: u, workgroups: grid1d(N * C, WG) });
  return record(y, op, [x], (dy) => {
    const bop = `${op}.backward`;
    const dx = new Tensor(x.ctx, x.shape, 'f32');
    x.ctx.dispatch({ op: bop, key: 'pool2d:global:bwd', code: () => GLOBAL_BWD, buffers: [dx.binding(bop), dy.binding(bop)], uniforms: u, workgroups: grid1d(dx.size, WG) });
    return [dx];
  });
}

/**
 * Mean over the spatial dimensions.
 * @param x [N, C, H, W]
 * @returns [N, C] (the shape a classifier head wants; see adaptiveAvgPool2d for [N, C, 1, 1])
 */
export function globalAvgPool2d(x: Tensor): Tensor {
  return globalAvg('globalAvgPool2d', x, false);
}

/**
 * PyTorch adaptive_avg_pool2d for output size 1 (the only size supported).
 * @param x [N, C, H, W]
 * @returns [N, C, 1, 1]
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  const [oh, ow] = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  if (oh !== 1 || ow !== 1)
    throw new EngineError('adaptiveAvgPool2d', `output size ${JSON.stringify(outputSize)} is not supported (only 1)`);
  return globalAvg('adaptiveAvgPool2d', x, true);
}
