// slice (per-dimension start/end/step, positive steps), narrow (one axis) and constant pad, each the
// other's backward, so one file. slice is a strided copy (permute.ts's kernel); pad places x inside a
// larger tensor filled with a value through embedRaw, which places x on any strided lattice of the
// output (slice's backward: zeros around a stepped slice). No negative steps, no lazy views, no
// reflect or replicate padding.

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, shapeStr, stridesOf, checkRank } from '../autograd/shape.js';
import { stridedCopyRaw } from './permute.js';
import { EngineError } from '../util/errors.js';
import { DIM_FN, grid1d, LINEAR_INDEX, MAX_RANK, packUniforms } from './util.js';

const WG = 64;

/** Resolve Python-style bounds (negative counts from the end, clamped to [0, n]). */
function resolve(op: string, x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]) {
  if (starts.length > x.rank || ends.length > x.rank || (steps && steps.length > x.rank))
    throw new EngineError(op, `starts/ends/steps longer than the rank ${x.rank} of ${x.describe()}`);
  const s: number[] = [],
    e: number[] = [],
    st: number[] = [],
    shape: number[] = [];
  x.shape.forEach((n, d) => {
    const step = steps?.[d] ?? 1;
    if (!Number.isInteger(step) || step <= 0) throw new EngineError(op, `step ${step} of dimension ${d} must be a positive integer`);
    const fix = (v: number, dflt: number) => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v)) throw new EngineError(op, `bound ${v} of dimension ${d} is not an integer`);
      return Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    };
    const a = fix(starts[d]!, 0);
    const b = Math.max(fix(ends[d]!, n), a);
    s.push(a);
    e.push(b);
    st.push(step);
    shape.push(Math.ceil((b - a) / step));
  });
  return { starts: s, steps: st, shape };
}

/** Raw slice (no autograd). */
export function sliceRaw(x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  const op = 'slice';
  const r = resolve(op, x, starts, ends, steps);
  const xs = stridesOf(x.shape);
  const base = r.starts.reduce((acc, s, d) => acc + s * xs[d]!, 0);
  return stridedCopyRaw(op, x, r.shape, xs.map((v, d) => v * r.steps[d]!), base);
}

/**
 * x[starts[0]:ends[0]:steps[0], ...]. Missing trailing entries take the whole dimension; negative
 * bounds count from the end and bounds are clamped like Python's. Output: the sliced shape.
 * Gradient: dOut placed back at the sliced positions of zeros shaped like x.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  const r = resolve('slice', x, starts, ends, steps);
  const out = sliceRaw(x, starts, ends, steps);
  return record(out, 'slice', [x], (g) => [embedRaw('slice.backward', g, x.shape, r.starts, r.steps, 0)]);
}

/** x restricted to [start, start + length) along `axis` (torch.narrow). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const op = 'narrow';
  const a = normAxis(op, axis, x.rank);
  const n = x.shape[a]!;
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > n)
    throw new EngineError(op, `[${start}, ${start}+${length}) is outside axis ${a} of size ${n} of ${shapeStr(x.shape)}`);
  const starts = x.shape.map((_, d) => (d === a ? start : 0));
  const ends = x.shape.map((m, d) => (d === a ? start + length : m));
  return slice(x, starts, ends);
}


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
