// Cross-entropy of logits against integer labels, fused with log-softmax (per-sample losses, with
// optional label smoothing), and its fused backward (softmax - target) * dLoss. A label outside
// [0, C) gives a NaN loss (and NaN gradient row) in the kernel; labelsTensor() rejects such labels on
// the CPU first. It does not reduce over the batch (compose mean()) and takes no soft targets.
//
// Dimension letters: N = samples, C = classes.

import { type GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { tensor } from './fill.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

/**
 * Upload class labels as an i32 [N] tensor after checking every label is an integer in
 * [0, numClasses); throws EngineError naming the first bad index and its value.
 */
export function labelsTensor(ctx: GpuContext, labels: Int32Array | readonly number[], numClasses: number): Tensor {
  const op = 'labelsTensor';
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new EngineError(op, `numClasses must be a positive integer, got ${numClasses}`);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses)
      throw new EngineError(op, `label at index ${i} is ${v}, outside [0, ${numClasses})`);
  }
  return tensor(ctx, labels instanceof Int32Array ? labels : Int32Array.from(labels), [labels.length], 'i32');
}

/**
 * Shared WGSL: row n's maximum m and log(sum_c exp(logits - m)). Everything downstream works on
 * logits - m (exact in f32 for values within a factor 2 of m), never on m + log(s): with logits
 * near ±40 that sum would round to f32's spacing there (4e-6) and the loss, about 0.2, with it.
 */
const ROW_LSE = /* wgsl */ `
fn rowMaxLogSum(n: u32) -> vec2<f32> {
  let base = n * P.c;
  var m: f32 = -3.4028234663852886e38;
  for (var j = 0u; j < P.c; j++) { m = max(m, logits[base + j]); }
  var s: f32 = 0.0;
  for (var j = 0u; j < P.c; j++) { s += exp(logits[base + j] - m); }
  return vec2<f32>(m, log(s));
}
fn nanF() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); } // a var: a const NaN is a shader error`;

/** Forward: loss[n] = log s_n - (1 - eps) * (logits[n, y_n] - m_n) - eps / C * sum_c (logits[n, c] - m_n). */
export function crossEntropyShader(): string {
  return /* wgsl */ `
struct Params { n: u32, c: u32, smoothing: f32 }
@group(0) @binding(0) var<storage, read_write> loss: array<f32>;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<uniform> P: Params;
${ROW_LSE}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = ${LINEAR_INDEX(WG)};
  if (n >= P.n) { return; }
  let label = labels[n];
  if (label < 0 || u32(label) >= P.c) { loss[n] = nanF(); return; }
  let base = n * P.c;
  let ml = rowMaxLogSum(n);
  var total: f32 = 0.0;
  for (var j = 0u; j < P.c; j++) { total += logits[base + j] - ml.x; }
  loss[n] = ml.y - (1.0 - P.smoothing) * (logits[base + u32(label)] - ml.x) - P.smoothing / f32(P.c) * total;
}`;
}

/** Backward: dLogits[n, c] = (softmax[n, c] - q[n, c]) * dLoss[n], q = (1 - eps) onehot + eps / C. */
export function crossEntropyBackwardShader(): string {
  return /* wgsl */ `
struct Params { n: u32, c: u32, smoothing: f32 }
@group(0) @binding(0) var<storage, read_write> dLogits: array<f32>;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> dLoss: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
${ROW_LSE}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = ${LINEAR_INDEX(WG)};
  if (n >= P.n) { return; }
  let base = n * P.c;
  let label = labels[n];
  if (label < 0 || u32(label) >= P.c) {
    for (var j = 0u; j < P.c; j++) { dLogits[base + j] = nanF(); }
    return;
  }
  let ml = rowMaxLogSum(n);
  let g = dLoss[n];
  let off = P.smoothing / f32(P.c);
  for (var j = 0u; j < P.c; j++) {
    let q = select(off, 1.0 - P.smoothing + off, j == u32(label));
    dLogits[base + j] = (exp((logits[base + j] - ml.x) - ml.y) - q) * g;
  }
}`;
}

/**
 * Per-sample cross-entropy -sum_c q[n, c] log softmax(logits)[n, c] with q the (smoothed) one-hot
 * target. logits: f32 [N, C]; labels: i32 [N] (build it with labelsTensor). Returns f32 [N].
 * Gradient flows to the logits only.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: { labelSmoothing?: number } = {}): Tensor {
  const op = 'crossEntropy';
  const eps = opts.labelSmoothing ?? 0;
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new EngineError(op, `logits must be f32 [N, C], got ${logits.describe()}`);
  const [n, c] = logits.shape as [number, number];
  if (labels.dtype !== 'i32' || labels.rank !== 1 || labels.shape[0] !== n)
    throw new EngineError(op, `labels must be i32 [${n}] for logits ${shapeStr(logits.shape)}, got ${labels.describe()}`);
  if (!(eps >= 0 && eps <= 1)) throw new EngineError(op, `labelSmoothing ${eps} is outside [0, 1]`);
  if (c === 0 && n > 0) throw new EngineError(op, `logits ${shapeStr(logits.shape)} have no classes`);
  const ctx = logits.ctx;
  const loss = new Tensor(ctx, [n], 'f32');
  const uniforms = packUniforms([n, c, { f: eps }]);
  if (n > 0)
    ctx.dispatch({
      op,
      key: 'crossEntropy',
      code: crossEntropyShader,
      buffers: [loss.binding(op), logits.binding(op), labels.binding(op)],
      uniforms,
      workgroups: grid1d(n, WG),
    });
  return record(loss, op, [logits, labels], (dLoss) => {
    const bop = 'crossEntropy.backward';
    const dLogits = new Tensor(ctx, logits.shape, 'f32');
    if (n > 0)
      ctx.dispatch({
        op: bop,
        key: 'crossEntropy.backward',
        code: crossEntropyBackwardShader,
        buffers: [dLogits.binding(bop), logits.binding(bop), labels.binding(bop), dLoss.binding(bop)],
        uniforms,
        workgroups: grid1d(n, WG),
      });
    return [dLogits, null];
  });
}
