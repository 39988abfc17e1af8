// The task-generic forgetting and remaining terms of spec §2, built from a task's per-sample loss
// lᵢ: the mean (FT's and SFR-on's remaining part), its negation (GA) and SFR-on's adaptive weighted
// ascent (spec §3). Task-specific terms (random labels, teachers) come from the task (task.ts).

import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { detach, div, full, mean, mul, mulScalar, addScalar, neg, powScalar, reciprocal, sum } from '../../ops/index.js';
import type { Term, UnlearnProblem } from './task.js';

/** L = mean over the batch of the task's per-sample loss (FT, SFR-on's remain step, pretraining). */
export function meanLoss<B>(p: UnlearnProblem<unknown, B>): Term<B> {
  return (model, b) => mean(p.perSampleLoss(model, b));
}

/** Gradient ascent: L = −mean lᵢ (GA's forgetting part). */
export function ascentLoss<B>(p: UnlearnProblem<unknown, B>): Term<B> {
  return (model, b) => neg(mean(p.perSampleLoss(model, b)));
}

/**
 * wᵢ = cᵢ / Σⱼ cⱼ with cᵢ = 1 / (lᵢ^λ + 1e-15), from per-sample losses [N] that the caller has
 * detached (the weights are constants of the step: no gradient flows through them). λ = 0 gives
 * equal weights 1/N.
 */
export function adaptiveWeights(losses: Tensor, lambda: number): Tensor {
  if (!(lambda >= 0)) throw new EngineError('adaptiveWeights', `λ = ${lambda} must be a non-negative number`);
  const c = reciprocal(addScalar(lambda === 0 ? full(losses.ctx, losses.shape, 1) : powScalar(losses, lambda), 1e-15));
  return div(c, sum(c));
}

/**
 * SFR-on's adaptive weighted ascent (spec §3, the forgetting part of Algorithm 1):
 * L_f = −α · Σᵢ wᵢ lᵢ with wᵢ = adaptiveWeights(detach(l), λ); α is the step's α_s from the context.
 * Samples the model still fits (low loss) get more weight; λ = 0 is plain ascent on the mean.
 */
export function adaptiveAscent<B>(p: UnlearnProblem<unknown, B>, lambda: number): Term<B> {
  return (model, b, t) => {
    const losses = p.perSampleLoss(model, b); // [N]
    const w = adaptiveWeights(detach(losses), lambda);
    return mulScalar(sum(mul(w, losses)), -t.alpha);
  };
}
