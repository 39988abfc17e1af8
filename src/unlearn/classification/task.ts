// The classification task of the unlearning core (core/task.ts): image batches with integer labels,
// per-sample cross-entropy as the training objective, RL's fixed random labels, and the teacher terms
// of BT (PyTorch's F.kl_div with reduction 'mean') and SCRUB (KD·T², summed over the batch, over B).
// It does not evaluate (evaluate.ts) or train the original and RT (experiment.ts).
//
// Letters: B batch, C classes.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { Dataset } from '../../data/dataset.js';
import { DataLoader, type Batch } from '../../data/loader.js';
import { toGpuBatch } from '../../data/gpu.js';
import type { Transform } from '../../data/transforms.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { add, crossEntropy, klDivFromLogits, labelsTensor, mean, mul, mulScalar, neg, addScalar, sum, tensor, view } from '../../ops/index.js';
import type { ForgetSplit } from '../core/split.js';
import type { TaskTerms, UnlearnProblem } from '../core/task.js';

/** A classification step batch on the GPU, with the CPU facts the terms need. */
export interface ClassBatch {
  /** [B, C_in, H, W] */
  x: Tensor;
  /** [B] i32 true labels */
  y: Tensor;
  /** [B] true labels (CPU) */
  labels: Int32Array;
  /** [B] dataset indices (CPU) */
  indices: Int32Array;
  /** [B] 1 for forget samples, 0 for remain samples (CPU) */
  isForget: Uint8Array;
  size: number;
}

/**
 * RL's fixed random labels (spec §4): for each forget index one label drawn uniformly from the other
 * C − 1 classes, once, from `gen` (so RL and SalUn see the same labels). labelOf: dataset index -> label.
 */
export function drawRandomLabels(forget: ArrayLike<number>, labelOf: (i: number) => number, numClasses: number, gen: Generator): Map<number, number> {
  if (!(Number.isInteger(numClasses) && numClasses >= 2)) throw new EngineError('drawRandomLabels', `needs at least 2 classes, got ${numClasses}`);
  const m = new Map<number, number>();
  for (let k = 0; k < forget.length; k++) {
    const i = forget[k]!;
    const y = labelOf(i);
    let r = gen.cpuInt(numClasses - 1);
    if (r >= y) r += 1; // skip the true label: uniform over the other C − 1
    m.set(i, r);
  }
  return m;
}

export interface ClassificationProblemOptions {
  ctx: GpuContext;
  /** The training set (labels in [0, numClasses)). */
  train: Dataset;
  numClasses: number;
  split: ForgetSplit;
  /** Unlearning batch size (spec: 128). */
  batchSize: number;
  /** Training augmentation applied while unlearning and computing masks (spec §5). */
  transform?: Transform;
  /** Seeds the loaders' shuffles and RL's labels. */
  seed: number;
}

/** The classification task bound to one split: loaders, upload, per-sample CE and the teacher terms. */
export function classificationProblem(o: ClassificationProblemOptions): UnlearnProblem<Batch, ClassBatch> {
  const { ctx, train, numClasses: C, split, batchSize, transform, seed } = o;
  if (split.n !== train.length) throw new EngineError('classificationProblem', `the split covers ${split.n} samples, the training set has ${train.length}`);
  const loader = (indices: Int32Array | undefined, s: number) => new DataLoader(train, { batchSize, shuffle: true, seed: s, indices, transform });
  const isForget = new Uint8Array(split.n);
  for (const i of split.forget) isForget[i] = 1;
  // drawn once per bound problem from a seed of its own, whatever runs before
  const relabel = drawRandomLabels(split.forget, (i) => train.get(i).label, C, new Generator(seed ^ 0x524c));

  const relabelTerm: TaskTerms<ClassBatch>['relabel'] = (model, b) => {
    const labels = Int32Array.from(b.labels, (y, k) => relabel.get(b.indices[k]!) ?? y);
    return mean(crossEntropy(model.forward(b.x), labelsTensor(ctx, labels, C)));
  };

  const badTeacher: TaskTerms<ClassBatch>['badTeacher'] = (tau) => (model, b, t) => {
    if (!t.badTeacher) throw new EngineError('BT', 'the term needs a bad teacher in its context');
    const [good, bad] = ctx.noGrad(() => [t.original.forward(b.x) as Tensor, t.badTeacher!.forward(b.x) as Tensor]);
    // the target per sample is softmax(bad/τ) if forget, else softmax(good/τ); with a 0/1 flag that is
    // the softmax of the chosen logits
    const flag = view(tensor(ctx, Float32Array.from(b.isForget), [b.size]), [b.size, 1]);
    const targetLogits = add(mul(flag, bad!), mul(addScalar(neg(flag), 1), good!));
    const logits = model.forward(b.x) as Tensor;
    // F.kl_div(log_softmax(s/τ), target), reduction 'mean': Σ over all B·C elements / (B·C)
    return mulScalar(sum(klDivFromLogits(targetLogits, logits, tau)), 1 / (b.size * logits.shape[1]!));
  };

  const distill: TaskTerms<ClassBatch>['distill'] = (T) => (model, b, t) => {
    const teacher = ctx.noGrad(() => t.original.forward(b.x) as Tensor);
    // KL(softmax(t/T) ‖ softmax(s/T)) summed over the batch, · T² / B (the authors' DistillKL)
    return mulScalar(sum(klDivFromLogits(teacher, model.forward(b.x) as Tensor, T)), (T * T) / b.size);
  };

  return {
    ctx,
    forget: loader(split.forget, seed + 11),
    remain: loader(split.remain, seed + 12),
    mixed: loader(undefined, seed + 13),
    upload(raw) {
      const { x, y } = toGpuBatch(ctx, raw, C);
      return { x, y, labels: raw.y, indices: raw.indices, isForget: Uint8Array.from(raw.indices, (i) => isForget[i]!), size: raw.y.length };
    },
    perSampleLoss: (model, b) => crossEntropy(model.forward(b.x) as Tensor, b.y),
    terms: { relabel: relabelTerm, badTeacher, distill },
  };
}
