// indexSelect (torch.index_select): pick K slices of x along one axis by an i32 index vector, e.g.
// embeddings = indexSelect(weight, 0, ids). Backward scatter-adds the gradient into zeros of x's
// shape (scatter_add.ts). An index outside [0, A) yields NaN in the kernel (never an out-of-bounds
// read); indexTensor() rejects such indices on the CPU. It does not do per-element gather (torch.gather).
//
// Dimension letters: x is seen as [O, A, I] (O = dims before the axis, A = the axis, I = dims after);
// index is [K]; the output is [O, K, I].

import { EngineError, type GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, numel } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { tensor, zeros } from './fill.js';
import { scatterAddRaw } from './scatter_add.js';

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
