// concat: join tensors along one axis; one copy kernel per input writes its block of the output.
// Backward narrows the gradient back into one piece per input. f32 only; no broadcasting.
//
// Dimension letters: each input is [O, A_k, I] around the axis; the output is [O, sum_k A_k, I].

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, numel, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { narrow } from './slice.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

export function concatShader(): string {
  return /* wgsl */ `
struct Params { n: u32, a: u32, inner: u32, total: u32, offset: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }
  let i = e % P.inner;
  let j = (e / P.inner) % P.a;
  let o = e / (P.inner * P.a);
  out[(o * P.total + P.offset + j) * P.inner + i] = x[e];
}`;
}

/** Concatenate along `axis`; all inputs share every other dimension. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  const op = 'concat';
  if (tensors.length === 0) throw new EngineError(op, 'needs at least one tensor');
  const first = tensors[0]!;
  const a = normAxis(op, axis, first.rank);
  for (const [k, t] of tensors.entries()) {
    if (t.dtype !== 'f32') throw new EngineError(op, `tensor ${k} is ${t.describe()}; expected f32`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i]))
      throw new EngineError(op, `tensor ${k} ${shapeStr(t.shape)} does not match ${shapeStr(first.shape)} outside axis ${a}`);
  }
  const total = tensors.reduce((s, t) => s + t.shape[a]!, 0);
  const shape = [...first.shape];
  shape[a] = total;
  const inner = numel(first.shape.slice(a + 1));
  const out = new Tensor(first.ctx, shape, 'f32');
  let offset = 0;
  for (const t of tensors) {
    if (t.size > 0)
      t.ctx.dispatch({
        op,
        key: 'concat',
        code: concatShader,
        buffers: [out.binding(op), t.binding(op)],
        uniforms: packUniforms([t.size, t.shape[a]!, inner, total, offset]),
        workgroups: grid1d(t.size, WG),
      });
    offset += t.shape[a]!;
  }
  const starts: number[] = [];
  tensors.reduce((s, t) => (starts.push(s), s + t.shape[a]!), 0);
  return record(out, op, [...tensors], (g) => tensors.map((t, k) => (t.requiresGrad ? narrow(g, a, starts[k]!, t.shape[a]!) : null)));
}
