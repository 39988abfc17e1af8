// indexSelect (torch.index_select) and scatterAdd (torch.index_add), each the other's backward, so one
// file. indexSelect picks K slices of x along one axis by an i32 index vector (embeddings =
// indexSelect(weight, 0, ids)); scatterAdd adds K slices of src into a target at index positions,
// duplicates accumulating, deterministically and without atomics (each output element loops over the
// K indices in order). Out-of-range indices never read or write out of bounds (NaN / skipped);
// indexTensor() rejects them on the CPU. It does not do per-element gather (torch.gather).
//
// Dimension letters: x / target are [O, A, I] (O = dims before the axis, A = the axis, I = dims after);
// index is [K]; indexSelect's output and scatterAdd's src are [O, K, I].

import { type GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, numel, sameShape, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { tensor, zeros } from './fill.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

/**
 * Upload indices as an i32 [K] tensor after checking each is an integer in [0, bound); throws an
 * EngineError naming `op`, the first bad position and its value.
 */
export function indexTensor(ctx: GpuContext, data: Int32Array | readonly number[], bound: number, op = 'indexTensor'): Tensor {
  if (!Number.isInteger(bound) || bound < 0) throw new EngineError(op, `index bound must be a non-negative integer, got ${bound}`);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= bound) throw new EngineError(op, `index at position ${i} is ${v}, outside [0, ${bound})`);
  }
  return tensor(ctx, data instanceof Int32Array ? data : Int32Array.from(data), [data.length], 'i32');
}

/** Validates an index argument and returns the [O, A, I] view of x along `axis`. */
export function indexGeometry(op: string, x: Tensor, axis: number, index: Tensor) {
  if (index.dtype !== 'i32' || index.rank !== 1) throw new EngineError(op, `index must be i32 [K], got ${index.describe()}`);
  if (x.rank === 0) throw new EngineError(op, `cannot index a scalar ${x.describe()}`);
  const a = normAxis(op, axis, x.rank);
  return { a, outer: numel(x.shape.slice(0, a)), size: x.shape[a]!, inner: numel(x.shape.slice(a + 1)), k: index.shape[0]! };
}

export function indexSelectShader(): string {
  return /* wgsl */ `
struct Params { total: u32, a: u32, inner: u32, k: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.total) { return; }
  let i = e % P.inner;
  let kk = (e / P.inner) % P.k;
  let o = e / (P.inner * P.k);
  let src = index[kk];
  if (src < 0 || u32(src) >= P.a) { var bits = 0x7fc00000u; out[e] = bitcast<f32>(bits); return; }
  out[e] = x[(o * P.a + u32(src)) * P.inner + i];
}`;
}

/** Raw kernel (no autograd): out [O, K, I] = x[O, index[K], I]. */
export function indexSelectRaw(x: Tensor, a: number, index: Tensor): Tensor {
  const op = 'indexSelect';
  const g = indexGeometry(op, x, a, index);
  if (x.dtype !== 'f32') throw new EngineError(op, `x must be f32, got ${x.describe()}`);
  const shape = [...x.shape];
  shape[g.a] = g.k;
  const out = new Tensor(x.ctx, shape, 'f32');
  if (out.size === 0) return out;
  x.ctx.dispatch({
    op,
    key: 'indexSelect',
    code: indexSelectShader,
    buffers: [out.binding(op), x.binding(op), index.binding(op)],
    uniforms: packUniforms([out.size, g.size, g.inner, g.k]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * torch.index_select: x [..., A, ...] (axis `axis`), index i32 [K] -> [..., K, ...].
 * Gradient: dx = scatter-add of dOut into zeros of x's shape at the indexed positions.
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const out = indexSelectRaw(x, axis, index);
  return record(out, 'indexSelect', [x, index], (g) => {
    const z = zeros(x.ctx, x.shape);
    const dx = scatterAddRaw(z, axis, index, g);
    z.dispose();
    return [dx, null];
  });
}


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
