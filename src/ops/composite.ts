// Composite ops built only from primitives that have their own backward (elementwise, reduce,
// softmax, gather), so they need no backward rule of their own: variance, std, logSumExp, mseLoss,
// klDivFromLogits and oneHot. Nothing here launches a kernel directly.
//
// Dimension letters: N = samples, C = classes.

import type { Tensor } from '../autograd/tensor.js';
import { detach, view } from '../autograd/graph.js';
import { normAxis } from '../autograd/shape.js';
import { add, sub, mul, exp, log, sqrt, square, mulScalar } from '../wgsl/elementwise.js';
import { sum, mean, max } from '../wgsl/reduce.js';
import { logSoftmax } from '../wgsl/softmax.js';
import { indexSelect } from '../wgsl/gather.js';
import { tensor } from '../wgsl/fill.js';
import { EngineError } from '../util/errors.js';

function axisList(op: string, x: Tensor, axis?: number | number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  return (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(op, a, x.rank));
}

/**
 * Variance over `axis` (one, several, or all when omitted): sum((x - mean)^2) / (n - 1) when
 * `unbiased` (the default, as torch.var), else / n. `keepDim` keeps reduced axes as size 1.
 */
export function variance(x: Tensor, axis?: number | number[], keepDim = false, unbiased = true): Tensor {
  const count = axisList('variance', x, axis).reduce((n, a) => n * x.shape[a]!, 1);
  const denom = count - (unbiased ? 1 : 0);
  if (denom <= 0) throw new EngineError('variance', `${count} element(s) per reduction is too few${unbiased ? ' for the unbiased estimate' : ''} of ${x.describe()}`);
  const centred = sub(x, mean(x, axis, true));
  return mulScalar(sum(square(centred), axis, keepDim), 1 / denom);
}

/** Standard deviation: sqrt(variance(x, axis, keepDim, unbiased)). */
export function std(x: Tensor, axis?: number | number[], keepDim = false, unbiased = true): Tensor {
  return sqrt(variance(x, axis, keepDim, unbiased));
}

/**
 * log(sum(exp(x))) along `axis` (default last), computed as m + log(sum(exp(x - m))) with m the
 * detached row maximum (the result does not depend on m, so no gradient is lost).
 */
export function logSumExp(x: Tensor, axis = -1, keepDim = false): Tensor {
  const a = normAxis('logSumExp', axis, x.rank);
  const m = detach(max(x, a, true));
  const s = log(sum(exp(sub(x, m)), a, keepDim));
  return add(s, keepDim ? m : view(m, s.shape));
}

/** Mean squared error over all elements: mean((a - b)^2), a scalar. Shapes must broadcast. */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  return mean(square(sub(a, b)));
}

/**
 * Per-sample KL(softmax(p/T) || softmax(q/T)) summed over classes: pLogits, qLogits f32 [N, C] ->
 * [N]. Gradients flow to both. Not multiplied by T^2 (distillation losses do that themselves).
 */
export function klDivFromLogits(pLogits: Tensor, qLogits: Tensor, temperature = 1): Tensor {
  if (!(temperature > 0)) throw new EngineError('klDivFromLogits', `temperature ${temperature} must be positive`);
  const logP = logSoftmax(mulScalar(pLogits, 1 / temperature), -1);
  const logQ = logSoftmax(mulScalar(qLogits, 1 / temperature), -1);
  return sum(mul(exp(logP), sub(logP, logQ)), -1);
}

/**
 * One-hot rows of i32 labels [N] over C classes: f32 [N, C] (rows of the identity picked by
 * indexSelect). A label outside [0, C) gives a NaN row; build labels with labelsTensor to reject them.
 */
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new EngineError('oneHot', `numClasses must be a positive integer, got ${numClasses}`);
  const eye = new Float32Array(numClasses * numClasses);
  for (let c = 0; c < numClasses; c++) eye[c * numClasses + c] = 1;
  const identity = tensor(labels.ctx, eye, [numClasses, numClasses]);
  const out = indexSelect(identity, 0, labels);
  identity.dispose();
  return out;
}
