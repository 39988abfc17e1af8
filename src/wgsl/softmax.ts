// Fused softmax and log-softmax along one axis (max-subtracted, so large logits do not overflow),
// each with its own fused backward. One invocation per row, no barriers (cheap on CPU WebGPU); the
// composite versions (exp / sum / sub) are the test reference. It does not handle f16 or masking.
//
// Dimension letters: the input is seen as [O, R, I]: O = product of the dims before the axis,
// R = the softmax axis, I = product of the dims after it. Every (o, i) pair is one row.

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, numel } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

type SoftmaxMode = 'softmax' | 'logSoftmax' | 'softmax.backward' | 'logSoftmax.backward';

/** WGSL for one mode. Forward binds (out, x); backward binds (dx, y, g) where y is the forward output. */
export function softmaxShader(mode: SoftmaxMode): string {
  const bwd = mode.endsWith('.backward');
  const bindings = bwd
    ? `@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;`;
  let body: string;
  if (mode === 'softmax' || mode === 'logSoftmax') {
    body = `
  var m: f32 = -3.4028234663852886e38;
  for (var j = 0u; j < P.r; j++) { m = max(m, x[base + j * P.inner]); }
  var s: f32 = 0.0;
  for (var j = 0u; j < P.r; j++) { s += exp(x[base + j * P.inner] - m); }
  ${
    mode === 'softmax'
      ? `let inv = 1.0 / s;
  for (var j = 0u; j < P.r; j++) { let k = base + j * P.inner; out[k] = exp(x[k] - m) * inv; }`
      : `let lse = m + log(s);
  for (var j = 0u; j < P.r; j++) { let k = base + j * P.inner; out[k] = x[k] - lse; }`
  }`;
  } else if (mode === 'softmax.backward') {
    // dx = y * (g - sum(g * y))
    body = `
  var dot: f32 = 0.0;
  for (var j = 0u; j < P.r; j++) { let k = base + j * P.inner; dot += g[k] * y[k]; }
  for (var j = 0u; j < P.r; j++) { let k = base + j * P.inner; out[k] = y[k] * (g[k] - dot); }`;
  } else {
    // y = log-softmax, so dx = g - exp(y) * sum(g)
    body = `
  var s: f32 = 0.0;
  for (var j = 0u; j < P.r; j++) { s += g[base + j * P.inner]; }
  for (var j = 0u; j < P.r; j++) { let k = base + j * P.inner; out[k] = g[k] - exp(y[k]) * s; }`;
  }
  return /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
${bindings}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${LINEAR_INDEX(WG)};
  if (row >= P.outer * P.inner) { return; }
  let base = (row / P.inner) * P.r * P.inner + row % P.inner;
  ${body}
}`;
}

function launch(mode: SoftmaxMode, inputs: Tensor[], axis: number): Tensor {
  const x = inputs[0]!;
  const op = mode;
  for (const [k, t] of inputs.entries())
    if (t.dtype !== 'f32') throw new EngineError(op, `argument ${k} is ${t.describe()}; expected f32`);
  if (x.rank === 0) throw new EngineError(op, `needs at least one dimension, got ${x.describe()}`);
  const a = normAxis(op, axis, x.rank);
  const outer = numel(x.shape.slice(0, a));
  const r = x.shape[a]!;
  const inner = numel(x.shape.slice(a + 1));
  const out = new Tensor(x.ctx, x.shape, 'f32');
  const rows = outer * inner;
  if (rows === 0 || r === 0) return out;
  x.ctx.dispatch({
    op,
    key: `softmax:${mode}`,
    code: () => softmaxShader(mode),
    buffers: [out.binding(op), ...inputs.map((t) => t.binding(op))],
    uniforms: packUniforms([outer, r, inner]),
    workgroups: grid1d(rows, WG),
  });
  return out;
}

/**
 * softmax(x) along `axis` (default last): exp(x - max) / sum(exp(x - max)). Same shape as x.
 * Backward: dx = y * (g - sum(g * y)) along the axis.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  const y = launch('softmax', [x], axis);
  return record(y, 'softmax', [x], (g) => [launch('softmax.backward', [y, g], axis)]);
}

/**
 * log(softmax(x)) along `axis` (default last): x - max - log(sum(exp(x - max))). Same shape as x.
 * Backward: dx = g - softmax(x) * sum(g) along the axis.
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const y = launch('logSoftmax', [x], axis);
  return record(y, 'logSoftmax', [x], (g) => [launch('logSoftmax.backward', [y, g], axis)]);
}
