// Constant padding: place x inside a larger tensor filled with `value`; backward slices the gradient
// back out. The kernel (embedRaw) places x on any strided lattice of the output, which slice.ts uses
// for its backward (zeros around a stepped slice). No reflect or replicate modes.

import { EngineError } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { checkRank } from '../autograd/shape.js';
import { DIM_FN, grid1d, LINEAR_INDEX, MAX_RANK, packUniforms } from './util.js';
import { sliceRaw } from './slice.js';

const WG = 64;

export function embedShader(): string {
  return /* wgsl */ `
struct Params {
  n: u32, rank: u32, value: f32,
  shape: array<vec4<u32>, 2>, inShape: array<vec4<u32>, 2>, start: array<vec4<u32>, 2>, step: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${DIM_FN}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }
  var rem = e;
  var src = 0u;
  var inStride = 1u;
  var inside = true;
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = dim(P.shape, du);
    let c = rem % size;
    rem = rem / size;
    let s0 = dim(P.start, du);
    let st = dim(P.step, du);
    let n = dim(P.inShape, du);
    let t = c - s0; // wraps when c < s0; the bound test below rejects it
    if (c < s0 || t % st != 0u || t / st >= n) { inside = false; }
    src += (t / st) * inStride;
    inStride *= n;
  }
  if (inside) { out[e] = x[src]; } else { out[e] = P.value; }
}`;
}

/**
 * Raw embedding (no autograd): out of `outShape` filled with `value`, except
 * out[start + c * step] = x[c] for every coordinate c of x (per-dimension start and step).
 */
export function embedRaw(op: string, x: Tensor, outShape: readonly number[], start: readonly number[], step: readonly number[], value: number): Tensor {
  if (x.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${x.describe()}`);
  checkRank(op, outShape, MAX_RANK);
  const out = new Tensor(x.ctx, outShape, 'f32');
  if (out.size === 0) return out;
  x.ctx.dispatch({
    op,
    key: 'embed',
    code: embedShader,
    buffers: [out.binding(op), x.binding(op)],
    uniforms: packUniforms([
      out.size,
      outShape.length,
      { f: value },
      { u32x4: outShape, pad: 8 },
      { u32x4: x.shape, pad: 8 },
      { u32x4: start, pad: 8 },
      { u32x4: step, pad: 8 },
    ]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * Constant padding. pads[d] = [before, after] for dimension d, from the first dimension; missing
 * trailing dimensions are not padded. x [..., n_d, ...] -> [..., before_d + n_d + after_d, ...].
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  const op = 'pad';
  if (pads.length > x.rank) throw new EngineError(op, `${pads.length} pad pairs for ${x.describe()} of rank ${x.rank}`);
  const before = x.shape.map((_, d) => pads[d]?.[0] ?? 0);
  const after = x.shape.map((_, d) => pads[d]?.[1] ?? 0);
  for (const [d, p] of [...before, ...after].entries())
    if (!Number.isInteger(p) || p < 0) throw new EngineError(op, `padding ${p} (entry ${d % x.rank} of ${d < x.rank ? 'before' : 'after'}) must be a non-negative integer`);
  const outShape = x.shape.map((n, d) => before[d]! + n + after[d]!);
  const out = embedRaw(op, x, outShape, before, x.shape.map(() => 1), value);
  return record(out, op, [x], (g) => [sliceRaw(g, before, x.shape.map((n, d) => before[d]! + n), x.shape.map(() => 1))]);
}
