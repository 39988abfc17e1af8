// Reductions along one axis and over everything: sum, mean, max, min, argmax, argmin; sumTo for
// broadcast gradients. The tensor is seen as [outer, R, inner]; small outputs with long rows use a
// workgroup per output (combined by the shared snippet of reduce_wg.ts: subgroups or a tree), the
// rest one invocation per output (no barriers, which are expensive on CPU WebGPU). Variance and
// friends are composed in src/ops.

import { EngineError } from '../util/errors.js';
import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { normAxis, numel, sameShape, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { mapRaw } from './map.js';
import { planReduction, planKey, planEnable, planBuiltins, planArgs, wgReduceFn, type Combiner, type ReducePlan, type ReduceChoice } from './reduce_wg.js';

export type ReduceKind = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
/** Invocations per output on the workgroup paths of devices without a fixed subgroup size. */
const WG_TREE = 256;

const INIT: Record<ReduceKind, string> = {
  sum: '0.0',
  max: '-3.4028234663852886e38',
  min: '3.4028234663852886e38',
  argmax: '-3.4028234663852886e38',
  argmin: '3.4028234663852886e38',
};

/** The partial one invocation carries: value and (for arg variants) the index where it was found. */
const COMBINERS: Record<ReduceKind, Combiner> = {
  sum: { type: 'f32', identity: '0.0' },
  max: { type: 'Acc', identity: `Acc(${INIT.max}, 0)`, combine: 'better', fields: ['v', 'i'] },
  min: { type: 'Acc', identity: `Acc(${INIT.min}, 0)`, combine: 'better', fields: ['v', 'i'] },
  argmax: { type: 'Acc', identity: `Acc(${INIT.argmax}, 0)`, combine: 'better', fields: ['v', 'i'] },
  argmin: { type: 'Acc', identity: `Acc(${INIT.argmin}, 0)`, combine: 'better', fields: ['v', 'i'] },
};

function reduceShader(kind: ReduceKind, plan: ReducePlan): string {
  const isArg = kind.startsWith('arg');
  const outT = isArg ? 'i32' : 'f32';
  // v beats acc: larger (smaller) value, or the first NaN; arg variants keep the first index on ties
  const beats =
    kind === 'max' || kind === 'argmax' ? '(v > acc) || (v != v && acc == acc)' : kind === 'min' || kind === 'argmin' ? '(v < acc) || (v != v && acc == acc)' : '';
  const step =
    kind === 'sum'
      ? 'acc = acc + v;'
      : `if (${beats}) { acc = v; idx = j; }`;
  const result = isArg ? 'idx' : 'acc';
  const header = /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<${outT}>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;`;
  if (plan.strategy === 'loop')
    return /* wgsl */ `${header}
@compute @workgroup_size(${plan.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = ${LINEAR_INDEX(plan.wg)};
  if (o >= P.outer * P.inner) { return; }
  let base = (o / P.inner) * P.r * P.inner + o % P.inner;
  var acc: f32 = ${INIT[kind]};
  var idx: i32 = 0;
  for (var j = 0; j < i32(P.r); j++) {
    let v = x[base + u32(j) * P.inner];
    ${step}
  }
  out[o] = ${outT}(${result});
}`;
  // one workgroup per output: strided partials, then the shared workgroup reduction (reduce_wg.ts);
  // partials are commutative (ties and NaNs go to the smaller index), so any combining order agrees
  const c = COMBINERS[kind];
  const accStruct =
    kind === 'sum'
      ? ''
      : /* wgsl */ `
struct Acc { v: f32, i: i32 }
fn better(a: Acc, b: Acc) -> Acc {
  let acc = a.v;
  let v = b.v;
  let tie = (v == acc) || (v != v && acc != acc);
  if ((${beats}) || (tie && b.i < a.i)) { return b; }
  return a;
}`;
  const W = plan.wg;
  return /* wgsl */ `${planEnable(plan)}
${header}
${accStruct}
${wgReduceFn('wgCombine', c, plan)}
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>${planBuiltins(plan)}) {
  let o = wid.x + wid.y * nwg.x;
  let valid = o < P.outer * P.inner;
  let base = (o / P.inner) * P.r * P.inner + o % P.inner;
  var acc: f32 = ${INIT[kind]};
  var idx: i32 = 0;
  if (valid) {
    for (var j = i32(li); j < i32(P.r); j += ${W}) {
      let v = x[base + u32(j) * P.inner];
      ${step}
    }
  }
  let total = wgCombine(${kind === 'sum' ? 'acc' : 'Acc(acc, idx)'}, ${planArgs(plan)});
  if (li == 0u && valid) { out[o] = ${kind === 'sum' ? 'total' : isArg ? 'total.i' : 'total.v'}; }
}`;
}

/**
 * Raw reduction kernel over axis `axis` (no autograd). Output drops the axis. `strategy` forces how
 * rows are reduced (tests and benchmarks; default: planReduction's choice).
 */
export function reduceRaw(kind: ReduceKind, x: Tensor, axis: number, strategy?: ReduceChoice): Tensor {
  const op = kind;
  if (x.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${x.describe()}`);
  const a = normAxis(op, axis, x.rank);
  const outer = numel(x.shape.slice(0, a));
  const r = x.shape[a]!;
  const inner = numel(x.shape.slice(a + 1));
  if (r === 0 && kind !== 'sum') throw new EngineError(op, `cannot reduce an empty axis of ${x.describe()}`);
  const outShape = x.shape.filter((_, i) => i !== a);
  const out = new Tensor(x.ctx, outShape, kind.startsWith('arg') ? 'i32' : 'f32');
  const nOut = outer * inner;
  if (nOut === 0) return out;
  const plan = planReduction(x.ctx, { nOut, len: r, wide: WG_TREE, force: strategy });
  x.ctx.dispatch({
    op,
    key: `reduce:${kind}:${planKey(plan)}`,
    code: () => reduceShader(kind, plan),
    buffers: [out.binding(op), x.binding(op)],
    uniforms: packUniforms([outer, r, inner]),
    workgroups: plan.strategy === 'loop' ? grid1d(nOut, plan.wg) : grid1d(nOut, 1),
  });
  return out;
}

function axesOf(op: string, x: Tensor, axis?: number | number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = Array.isArray(axis) ? axis : [axis];
  const norm = list.map((a) => normAxis(op, a, x.rank));
  if (new Set(norm).size !== norm.length) throw new EngineError(op, `repeated axis in [${list.join(',')}]`);
  return norm.sort((p, q) => q - p); // reduce from the last axis so indices stay valid
}

function keptShape(shape: readonly number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/**
 * Sum over `axis` (one, several, or all when omitted). `keepDim` keeps reduced axes as size 1.
 * The gradient broadcasts the output gradient back.
 */
export function sum(x: Tensor, axis?: number | number[], keepDim = false): Tensor {
  const axes = axesOf('sum', x, axis);
  let y = x;
  if (x.rank === 0) y = view(x);
  else if (axes.length === x.rank && x.size > 0) {
    // everything at once: one long row
    const flat = view(x, [x.size]);
    y = reduceRaw('sum', flat, 0);
    flat.dispose();
  } else
    for (const a of axes) {
      const next = reduceRaw('sum', y, a);
      if (y !== x) y.dispose();
      y = next;
    }
  const outShape = keepDim ? keptShape(x.shape, axes) : x.shape.filter((_, i) => !axes.includes(i));
  const out = sameShape(y.shape, outShape) ? y : view(y, outShape);
  if (out !== y) y.dispose();
  return record(out, 'sum', [x], (g) => [expandTo(view(g, keptShape(x.shape, axes)), x.shape)]);
}

/** Mean over `axis` (or all). */
export function mean(x: Tensor, axis?: number | number[], keepDim = false): Tensor {
  const axes = axesOf('mean', x, axis);
  const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
  const s = sum(x, axis, keepDim);
  const m = mapRaw('mean', 'a * p0', [s], [1 / count, 0]);
  return record(m, 'mean', [s], (g) => [mapRaw('mean.backward', 'a * p0', [g], [1 / count, 0])]);
}

/** Max over one axis (or all); gradient split equally between tied maxima (like torch.amax). */
export function max(x: Tensor, axis?: number, keepDim = false): Tensor {
  return extremum('max', x, axis, keepDim);
}
/** Min over one axis (or all); gradient split equally between tied minima. */
export function min(x: Tensor, axis?: number, keepDim = false): Tensor {
  return extremum('min', x, axis, keepDim);
}

function extremum(kind: 'max' | 'min', x: Tensor, axis: number | undefined, keepDim: boolean): Tensor {
  const flat = axis === undefined;
  const src = flat ? view(x, [x.size]) : x;
  const a = flat ? 0 : normAxis(kind, axis, x.rank);
  const raw = reduceRaw(kind, src, a);
  const keptShp = flat ? x.shape.map(() => 1) : keptShape(x.shape, [a]);
  const outShape = keepDim ? keptShp : flat ? [] : raw.shape;
  const out = view(raw, outShape);
  raw.dispose();
  if (flat) src.dispose();
  return record(out, kind, [x], (g) => [
    x.ctx.scope(() => {
      const yk = view(out, keptShp);
      const gk = view(g, keptShp);
      const mask = mapRaw('extremum.backward', 'select(T(0.0), T(1.0), a == b)', [x, yk]);
      const count = sum(mask, flat ? undefined : a, true);
      return mapRaw('extremum.backward', 'a * b / c', [mask, gk, count]);
    }),
  ]);
}

/** Index of the maximum along `axis` (first on ties), as i32; not differentiable. */
export function argmax(x: Tensor, axis = -1, keepDim = false): Tensor {
  const a = normAxis('argmax', axis, x.rank);
  const r = reduceRaw('argmax', x, a);
  if (!keepDim) return r;
  const v = view(r, keptShape(x.shape, [a]));
  r.dispose();
  return v;
}
/** Index of the minimum along `axis` (first on ties), as i32. */
export function argmin(x: Tensor, axis = -1, keepDim = false): Tensor {
  const a = normAxis('argmin', axis, x.rank);
  const r = reduceRaw('argmin', x, a);
  if (!keepDim) return r;
  const v = view(r, keptShape(x.shape, [a]));
  r.dispose();
  return v;
}

/** Sum a broadcast result back to `shape` (the reverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return view(g);
  const lead = g.rank - shape.length;
  if (lead < 0) throw new EngineError('sumTo', `cannot reduce ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    const d = i < lead ? 1 : shape[i - lead]!;
    if (i < lead || (d === 1 && g.shape[i] !== 1)) axes.push(i);
    else if (d !== g.shape[i]) throw new EngineError('sumTo', `cannot reduce ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
  }
  const s = sum(g, axes, true);
  const out = view(s, shape);
  s.dispose();
  return out;
}

/** Broadcast `t` to `shape` by materialising it (used by backward rules). */
export function expandTo(t: Tensor, shape: readonly number[]): Tensor {
  return mapRaw('expand', 'a', [t], [0, 0], [...shape]);
}
