// Recording the autograd graph: an op attaches a GradNode (its inputs and backward rule) to its
// output with record(); view/detach/requireGrad make graph-aware aliases and leaves. The sweep
// itself is backward() in backward.ts. No kernels here: rules live beside their kernels.

import { Tensor, type GradNode } from './tensor.js';
import { EngineError } from '../util/errors.js';
import { resolveShape } from './shape.js';

/**
 * Attach a backward rule to `out` when gradients are enabled and some input requires them.
 * Returns `out` for chaining.
 */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (!out.ctx.gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.node = { op, inputs, backward };
  return out;
}

/** A new tensor object sharing `t`'s storage with another shape (no copy, no graph). */
export function view(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return new Tensor(t.ctx, shape, t.dtype, t);
}

/** Same data, cut from the graph. */
export function detach(t: Tensor): Tensor {
  return view(t);
}

/** Mark a tensor as a leaf that accumulates .grad. Returns it. */
export function requireGrad(t: Tensor, on = true): Tensor {
  if (on && t.dtype !== 'f32') throw new EngineError('requireGrad', `${t.describe()} is not floating point`);
  t.requiresGrad = on;
  return t;
}

/**
 * A reshape that keeps the autograd graph (the gradient is reshaped back). Shares storage.
 * @param shape may contain one -1
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const y = view(x, resolveShape('reshape', x.size, shape));
  return record(y, 'reshape', [x], (g) => [view(g, x.shape)]);
}
