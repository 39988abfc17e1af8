// slice (per-dimension start/end/step, positive steps) and narrow (one axis): a strided copy
// (permute.ts's kernel); backward embeds the gradient in zeros of the input's shape (pad.ts's kernel).
// No negative steps and no lazy views: the result is a fresh contiguous tensor.

import { EngineError } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, shapeStr, stridesOf } from '../autograd/shape.js';
import { stridedCopyRaw } from './permute.js';
import { embedRaw } from './pad.js';

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
