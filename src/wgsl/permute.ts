// permute / transpose: materialise a reordering of the axes with a strided copy kernel (rank <= 8);
// backward permutes the gradient by the inverse permutation. The same kernel (stridedCopyRaw) reads
// any strided window of a contiguous tensor, which slice.ts uses. Tensors stay contiguous: there are
// no lazy strided views.

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { checkRank, normAxis, stridesOf } from '../autograd/shape.js';
import { DIM_FN, grid1d, LINEAR_INDEX, MAX_RANK, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

export function stridedCopyShader(): string {
  return /* wgsl */ `
struct Params { n: u32, rank: u32, base: u32, shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${DIM_FN}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }
  var rem = e;
  var src = P.base;
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = dim(P.shape, du);
    src += (rem % size) * dim(P.strides, du);
    rem = rem / size;
  }
  out[e] = x[src];
}`;
}

/**
 * Raw strided read (no autograd): out[c] = x[base + sum_d c_d * strides[d]] for every coordinate c of
 * `outShape` (element strides into x's contiguous storage).
 */
export function stridedCopyRaw(op: string, x: Tensor, outShape: readonly number[], strides: readonly number[], base = 0): Tensor {
  if (x.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${x.describe()}`);
  checkRank(op, outShape, MAX_RANK);
  const out = new Tensor(x.ctx, outShape, 'f32');
  if (out.size === 0) return out;
  x.ctx.dispatch({
    op,
    key: 'stridedCopy',
    code: stridedCopyShader,
    buffers: [out.binding(op), x.binding(op)],
    uniforms: packUniforms([out.size, outShape.length, base, { u32x4: outShape, pad: 8 }, { u32x4: strides, pad: 8 }]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/** Output axis i is input axis dims[i]: x [d0, ..., d(r-1)] -> [d(dims[0]), ..., d(dims[r-1])]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const op = 'permute';
  const r = x.rank;
  if (dims.length !== r) throw new EngineError(op, `dims [${dims.join(',')}] must list all ${r} axes of ${x.describe()}`);
  const norm = dims.map((d) => normAxis(op, d, r));
  if (new Set(norm).size !== r) throw new EngineError(op, `dims [${dims.join(',')}] repeat an axis`);
  const st = stridesOf(x.shape);
  const out = stridedCopyRaw(op, x, norm.map((d) => x.shape[d]!), norm.map((d) => st[d]!));
  const inverse = new Array<number>(r);
  norm.forEach((d, i) => (inverse[d] = i));
  return record(out, op, [x], (g) => [permute(g, inverse)]);
}

/** Swap axes a and b (default: the last two, a matrix transpose). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const op = 'transpose';
  const dims = x.shape.map((_, i) => i);
  const i = normAxis(op, a, x.rank);
  const j = normAxis(op, b, x.rank);
  dims[i] = j;
  dims[j] = i;
  return permute(x, dims);
}
