// What the task-generic unlearning core needs from a task, and nothing else. The core (masks,
// terms, update rules, methods, experiment runner) never looks inside a batch: it knows no labels,
// classes or logits. A task is a classifier today (../classification) and a class-conditional
// diffusion model later (issue 8: SFR-on, SalUn, SA) without a change here.
//
// A task must provide, for the methods (an UnlearnProblem, bound to one forget split):
//   - batch sources: `forget` and `remain` (training augmentation, shuffled), and `mixed` (D_f ∪ D_r
//     shuffled together) when a method that trains on both at once is used (RL, SalUn, BT);
//   - upload(raw): a CPU batch -> the step batch the task's terms read (called inside the step's
//     scope, so the tensors it makes are freed after the step);
//   - perSampleLoss(model, batch): the per-sample training objective [N] (cross-entropy for a
//     classifier, the per-sample noise-prediction error for DDPM). The core derives from it the
//     remain term (mean), GA's forget term (−mean), SFR-on's adaptive weighted ascent, and the
//     gradients behind the Fisher and SalUn masks;
//   - terms: optional task-specific baselines' terms (relabel for RL/SalUn, badTeacher for BT,
//     distill for SCRUB). A method whose term the task lacks is rejected before any work.
// and, for the experiment runner (an ExperimentTask, see experiment.ts): a model factory, the
// forget split, training (pretraining and RT), evaluation outputs, metrics, the report row and its
// gap to RT.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { AnyModule } from '../../nn/module.js';

/** Yields CPU batches epoch by epoch (a DataLoader is one). */
export interface BatchSource<R> {
  /** Batches per epoch (0 = the set is empty). */
  readonly numBatches: number;
  batches(epoch: number): AsyncIterable<R>;
}

/** What a term may use besides the model being unlearned. */
export interface TermContext {
  ctx: GpuContext;
  /** Frozen copy of the original model θ₀ (a teacher), eval mode. */
  original: AnyModule;
  /** A freshly initialised, frozen model (BT's bad teacher), eval mode; absent for other methods. */
  badTeacher?: AnyModule;
  /** Forget-set strength at this step (SFR-on's α_s); 1 elsewhere. */
  alpha: number;
}

/** A loss term: the scalar tensor to minimise on one step batch. */
export type Term<B> = (model: AnyModule, batch: B, t: TermContext) => Tensor;

/** Terms only some tasks can define (they need the task's notion of a target). */
export interface TaskTerms<B> {
  /**
   * RL's and SalUn's loss on a mixed batch: forget samples carry fixed wrong targets (a random other
   * label for a classifier), remain samples their true ones; mean over the batch.
   */
  relabel: Term<B>;
  /**
   * BT's loss on a mixed batch: divergence of the student's output distribution at temperature τ from
   * a per-sample teacher's (the bad teacher on forget samples, the original elsewhere).
   */
  badTeacher: (tau: number) => Term<B>;
  /**
   * SCRUB's distillation term KD(student ‖ original) at temperature T, in the authors' scale
   * (T² times the divergence summed over the batch, over the batch size).
   */
  distill: (T: number) => Term<B>;
}

/** A task bound to one forget split: what every unlearning method runs on. */
export interface UnlearnProblem<R, B> {
  ctx: GpuContext;
  /** D_f and D_r with training augmentation, shuffled (the spec's batch 128). */
  forget: BatchSource<R>;
  remain: BatchSource<R>;
  /** D_f ∪ D_r shuffled together (RL, SalUn, BT); absent when the task offers none. */
  mixed?: BatchSource<R>;
  /** CPU batch -> step batch; runs inside the step's scope. */
  upload(raw: R): B;
  /** Per-sample training loss [N] of a step batch (differentiable). */
  perSampleLoss(model: AnyModule, batch: B): Tensor;
  /** Task-specific terms; see TaskTerms. */
  terms: Partial<TaskTerms<B>>;
}
