// Class forgetting in a class-conditional diffusion model as a task of the task-generic core
// (../core/task.ts): D_f = the training images of one class, D_r = the others; a step batch is a
// noised batch (x_t, ε, t, y) drawn on the CPU; the per-sample loss is the DDPM objective
// Σ_pixels (ε − ε̂)². The core's terms (mean loss, SFR-on's adaptive weighted ascent) work on it
// unchanged; the diffusion methods (methods.ts) add what is specific to generation.
// It does not train or sample models (../../models/diffusion/*) or score them (metrics.ts).
//
// Dimension letters: N samples, C channels, H, W image size, K classes.

import type { GpuContext } from '../../gpu/context.js';
import { EngineError } from '../../util/errors.js';
import { noiseLossPerSample, uploadNoised, type DiffusionSchedule, type NoisedBatch, type NoisedTensors } from '../../models/diffusion/process.js';
import { NoisedLoader, checkImageSet, filterClasses, type ImageSet } from '../../models/diffusion/train.js';
import type { UnlearnProblem } from '../core/task.js';

export interface DiffusionProblemOptions {
  sched: DiffusionSchedule;
  /** The model's classes K (the null class is index K). */
  numClasses: number;
  forgetClass: number;
  /** The training images of all classes, in [−1, 1]. */
  data: ImageSet;
  /** Batch size of every source (the authors' 128). */
  batchSize: number;
  seed: number;
  /** Class dropout of the training-objective batches (default 0.1, as the authors' unlearning steps). */
  condDrop?: number;
}

/** A diffusion forget task: the core's UnlearnProblem plus what the diffusion methods need. */
export interface DiffusionProblem extends UnlearnProblem<NoisedBatch, NoisedTensors> {
  sched: DiffusionSchedule;
  numClasses: number;
  forgetClass: number;
  batchSize: number;
  seed: number;
  forgetSet: ImageSet;
  remainSet: ImageSet;
  /** Batches without class dropout (masks, SalUn's forget batches), from their own seed stream. */
  plain(which: 'forget' | 'remain'): NoisedLoader;
}

export function diffusionProblem(ctx: GpuContext, o: DiffusionProblemOptions): DiffusionProblem {
  const op = 'diffusionProblem';
  checkImageSet(op, o.data, o.numClasses);
  if (!(Number.isInteger(o.forgetClass) && o.forgetClass >= 0 && o.forgetClass < o.numClasses))
    throw new EngineError(op, `forgetClass ${o.forgetClass} is not a class in [0, ${o.numClasses})`);
  const forgetSet = filterClasses(o.data, (c) => c === o.forgetClass);
  const remainSet = filterClasses(o.data, (c) => c !== o.forgetClass);
  if (forgetSet.y.length < o.batchSize) throw new EngineError(op, `class ${o.forgetClass} has ${forgetSet.y.length} images, fewer than one batch of ${o.batchSize}`);
  if (remainSet.y.length < o.batchSize) throw new EngineError(op, `the other classes have ${remainSet.y.length} images, fewer than one batch of ${o.batchSize}`);
  const base = { batchSize: o.batchSize, numClasses: o.numClasses };
  const condDrop = o.condDrop ?? 0.1;
  return {
    ctx,
    sched: o.sched,
    numClasses: o.numClasses,
    forgetClass: o.forgetClass,
    batchSize: o.batchSize,
    seed: o.seed,
    forgetSet,
    remainSet,
    forget: new NoisedLoader(forgetSet, o.sched, { ...base, seed: o.seed, condDrop }),
    remain: new NoisedLoader(remainSet, o.sched, { ...base, seed: o.seed + 1, condDrop }),
    plain: (which) => new NoisedLoader(which === 'forget' ? forgetSet : remainSet, o.sched, { ...base, seed: o.seed + (which === 'forget' ? 2 : 3), condDrop: 0 }),
    upload: (raw) => uploadNoised(ctx, raw),
    perSampleLoss: (model, b) => noiseLossPerSample(model as never, b),
    terms: {},
  };
}
