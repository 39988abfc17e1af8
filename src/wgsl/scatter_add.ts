// scatterAdd (torch.index_add): out = target with the K slices of src added at index positions
// along one axis; duplicate indices accumulate. Deterministic and atomic-free: each output element
// loops over the K indices and sums the matching src elements in order. Out-of-range indices are
// skipped (never read or written out of bounds); indexTensor() in gather.ts rejects them on the CPU.
//
// Dimension letters: target is [O, A, I] around the axis, src is [O, K, I], index is i32 [K].

import { EngineError } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { sameShape, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { indexGeometry, indexSelectRaw } from './gather.js';

const WG = 64;

export function scatterAddShader(): string {
  return /* wgsl */ `
struct Params { total: u32, a: u32, inner: u32, k: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> dst: array<f32>; // the target ("target" is reserved in WGSL)
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.total) { return; }
  let i = e % P.inner;
  let pos = i32((e / P.inner) % P.a);
  let o = e / (P.inner * P.a);
  var acc = dst[e];
  for (var kk = 0u; kk < P.k; kk++) {
    if (index[kk] == pos) { acc += src[(o * P.k + kk) * P.inner + i]; }
  }
  out[e] = acc;
}`;
}

function checkArgs(op: string, target: Tensor, axis: number, index: Tensor, src: Tensor) {
  const g = indexGeometry(op, target, axis, index);
  if (target.dtype !== 'f32' || src.dtype !== 'f32') throw new EngineError(op, `target and src must be f32, got ${target.describe()} and ${src.describe()}`);
  const want = [...target.shape];
  want[g.a] = g.k;
  if (!sameShape(src.shape, want))
    throw new EngineError(op, `src must be ${shapeStr(want)} (target ${shapeStr(target.shape)} with axis ${g.a} = K ${g.k}), got ${shapeStr(src.shape)}`);
  return g;
}

/** Raw kernel (no autograd): out [O, A, I] = target + sum over k with index[k] = a of src[O, k, I]. */
export function scatterAddRaw(target: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const op = 'scatterAdd';
  const g = checkArgs(op, target, axis, index, src);
  const out = new Tensor(target.ctx, target.shape, 'f32');
  if (out.size === 0) return out;
  target.ctx.dispatch({
    op,
    key: 'scatterAdd',
    code: scatterAddShader,
    buffers: [out.binding(op), target.binding(op), index.binding(op), src.binding(op)],
    uniforms: packUniforms([out.size, g.size, g.inner, g.k]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * torch.index_add: target [..., A, ...], index i32 [K], src [..., K, ...] -> target's shape.
 * Gradients: dTarget = dOut; dSrc = indexSelect(dOut, axis, index).
 */
export function scatterAdd(target: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const out = scatterAddRaw(target, axis, index, src);
  return record(out, 'scatterAdd', [target, index, src], (g) => [
    target.requiresGrad ? g : null,
    null,
    src.requiresGrad ? indexSelectRaw(g, axis, index) : null,
  ]);
}
