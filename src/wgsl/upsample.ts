// Nearest-neighbour upsampling by an integer factor (PyTorch F.interpolate(mode='nearest') with an
// integer scale_factor, NCHW): y[n, c, oh, ow] = x[n, c, oh / s, ow / s]. Forward: one invocation per
// output element (a gather). Backward: one invocation per input element, summing its s x s block of
// the output gradient (no atomics). It does not do fractional factors, bilinear or 'nearest-exact'.
//
// Letters: N batch, C channels, H W input size, S scale factor, OH OW output size (H·S, W·S).

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;
const PARAMS = `struct Params { n: u32, H: u32, W: u32, S: u32 }`;
const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }`;

export function upsampleShader(): string {
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${ENTRY}
  let OW = P.W * P.S;
  let OH = P.H * P.S;
  let ow = e % OW;
  let oh = (e / OW) % OH;
  let plane = e / (OW * OH);
  y[e] = x[(plane * P.H + oh / P.S) * P.W + ow / P.S];
}`;
}

export function upsampleBackwardShader(): string {
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${ENTRY}
  let OW = P.W * P.S;
  let iw = e % P.W;
  let ih = (e / P.W) % P.H;
  let plane = e / (P.W * P.H);
  var acc = 0.0;
  for (var a = 0u; a < P.S; a++) {
    let row = (plane * P.H * P.S + ih * P.S + a) * OW + iw * P.S;
    for (var b = 0u; b < P.S; b++) { acc += dy[row + b]; }
  }
  dx[e] = acc;
}`;
}

function launch(op: string, kind: 'fwd' | 'bwd', src: Tensor, outShape: number[], H: number, W: number, S: number): Tensor {
  const out = new Tensor(src.ctx, outShape, 'f32');
  if (out.size === 0) return out;
  src.ctx.dispatch({
    op,
    key: kind === 'fwd' ? 'upsampleNearest' : 'upsampleNearest.backward',
    code: kind === 'fwd' ? upsampleShader : upsampleBackwardShader,
    buffers: [out.binding(op), src.binding(op)],
    uniforms: packUniforms([out.size, H, W, S]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * Nearest upsampling of x [N, C, H, W] by the integer factor `scale` (default 2) -> [N, C, H·s, W·s].
 * Gradient: dx = the sum of dy over each s x s block.
 */
export function upsampleNearest2d(x: Tensor, scale = 2): Tensor {
  const op = 'upsampleNearest2d';
  if (x.rank !== 4) throw new EngineError(op, `input must be 4-D [N,C,H,W], got ${x.describe()}`);
  if (x.dtype !== 'f32') throw new EngineError(op, `input must be f32, got ${x.describe()}`);
  if (!Number.isInteger(scale) || scale < 1) throw new EngineError(op, `scale must be an integer >= 1, got ${scale}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const y = launch(op, 'fwd', x, [N, C, H * scale, W * scale], H, W, scale);
  return record(y, op, [x], (g) => [launch(`${op}.backward`, 'bwd', g, [N, C, H, W], H, W, scale)]);
}
