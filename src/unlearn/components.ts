// The parts every gradient-based unlearning method is made of (spec §2): a weight-saliency mask, a
// forgetting term, a remaining term. Written on the public Tensor / Module / Optimizer API only;
// per-sample work (losses, adaptive weights, Fisher sums, masking) stays on the GPU.
// The update rules (Euclidean joint step, SFR-on's fast-slow alternation) live in methods.ts.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import type { Module } from '../nn/module.js';
import type { Batch, DataLoader } from '../data/loader.js';
import { toGpuBatch } from '../data/gpu.js';
import { EngineError } from '../util/errors.js';
import { detach, view, add, div, ge, mul, mulScalar, addScalar, neg, powScalar, reciprocal, square, abs, full, tensor, sum, mean, crossEntropy, labelsTensor, softmax, logSoftmax, backward } from '../ops/index.js';

/** Parameter -> 0/1 mask of the same shape. A missing entry means "all ones". */
export type SaliencyMask = Map<Tensor, Tensor>;

/** A GPU batch plus what the terms need to know about it. */
export interface StepBatch {
  x: Tensor;
  y: Tensor;
  /** dataset indices of the samples (CPU) */
  indices: Int32Array;
  /** true labels (CPU copy) */
  yCpu: Int32Array;
  /** 1 for forget samples, 0 for remain samples (mixed loaders only), [B] f32 on the GPU */
  forgetFlag?: Tensor;
  size: number;
}

/** What a term may use besides the model being unlearned. */
export interface TermContext {
  ctx: GpuContext;
  /** Frozen copy of the original model θ₀ (teacher), eval mode. */
  original: Module;
  /** A freshly initialised, frozen model (BT's bad teacher). */
  badTeacher?: Module;
  numClasses: number;
  /** Forget-set strength at this step (SFR-on's α_s); 1 elsewhere. */
  alpha: number;
}

/** A loss term: scalar tensor to minimise for this batch. */
export type Term = (model: Module, batch: StepBatch, t: TermContext) => Tensor;

export function uploadBatch(ctx: GpuContext, b: Batch, forgetSet?: Set<number>): StepBatch {
  const { x, y } = toGpuBatch(ctx, b);
  let forgetFlag: Tensor | undefined;
  if (forgetSet) forgetFlag = tensor(ctx, Float32Array.from(b.indices, (i) => (forgetSet.has(i) ? 1 : 0)), [b.y.length]);
  return { x, y, indices: b.indices, yCpu: b.y, forgetFlag, size: b.y.length };
}

// ------------------------------------------------------------------------------------------------
// Forgetting and remaining terms

/** Mean cross-entropy on the batch (FT's and SFR-on's remaining part; pretraining). */
export const meanCrossEntropy: Term = (model, b) => mean(crossEntropy(model.forward(b.x), b.y));

/** Gradient ascent: −mean CE (GA's forgetting part). */
export const gradientAscent: Term = (model, b) => neg(mean(crossEntropy(model.forward(b.x), b.y)));

/**
 * SFR-on's adaptive weighted ascent (spec §3): lᵢ = CE(xᵢ, yᵢ); cᵢ = 1 / (detach(lᵢ)^λ + 1e-15);
 * wᵢ = cᵢ / Σⱼcⱼ; L_f = −α · Σᵢ wᵢ lᵢ. λ = 0 gives equal weights (plain GA on the mean).
 */
export function adaptiveAscent(lambda: number): Term {
  return (model, b, t) => {
    const losses = crossEntropy(model.forward(b.x), b.y); // [B]
    const w = adaptiveWeights(detach(losses), lambda);
    return mulScalar(sum(mul(w, losses)), -t.alpha);
  };
}

/** wᵢ = cᵢ / Σ cⱼ with cᵢ = 1 / (lᵢ^λ + 1e-15), on the GPU, from detached per-sample losses. */
export function adaptiveWeights(losses: Tensor, lambda: number): Tensor {
  const c = reciprocal(addScalar(lambda === 0 ? full(losses.ctx, losses.shape, 1) : powScalar(losses, lambda), 1e-15));
  return div(c, sum(c));
}

/**
 * Random-label forgetting (RL, SalUn): cross-entropy of forget samples against a fixed random label
 * drawn once per sample from the other C−1 classes; remain samples keep their labels. `relabel`
 * maps a dataset index to its random label.
 */
export function randomLabelCrossEntropy(relabel: Map<number, number>): Term {
  return (model, b, t) => {
    const labels = Int32Array.from(b.yCpu, (y, i) => relabel.get(b.indices[i]!) ?? y);
    return mean(crossEntropy(model.forward(b.x), labelsTensor(t.ctx, labels, t.numClasses)));
  };
}

/** Draw RL's fixed random labels: for each forget index a label ≠ its true label. */
export function drawRandomLabels(forget: Int32Array, labelOf: (i: number) => number, numClasses: number, rand: () => number): Map<number, number> {
  const m = new Map<number, number>();
  for (const i of forget) {
    const y = labelOf(i);
    let r = Math.floor(rand() * (numClasses - 1));
    if (r >= y) r += 1; // uniform over the other C−1 classes
    m.set(i, r);
  }
  return m;
}

/** KL(softmax(p/τ) ‖ softmax(q/τ)) per sample, from logits; p is the target (constant). */
export function klFromLogits(target: Tensor, student: Tensor, tau: number): Tensor {
  const pt = softmax(mulScalar(target, 1 / tau));
  const logPt = logSoftmax(mulScalar(target, 1 / tau));
  const logPs = logSoftmax(mulScalar(student, 1 / tau));
  return sum(mul(pt, add(logPt, neg(logPs))), -1);
}

/**
 * Bad Teacher (BT): target = softmax(bad teacher/τ) for forget samples (flag 1), softmax(original/τ)
 * for the rest; loss = mean KL(target ‖ softmax(student/τ)).
 */
export function badTeacherKl(tau = 1): Term {
  return (model, b, t) => {
    if (!t.badTeacher || !b.forgetFlag) throw new EngineError('BT', 'needs a bad teacher and a mixed batch with forget flags');
    const [good, bad] = t.ctx.noGrad(() => [t.original.forward(b.x), t.badTeacher!.forward(b.x)]);
    const flag = view(b.forgetFlag, [b.size, 1]);
    // target logits chosen per sample: flag·bad + (1−flag)·good
    const targetLogits = add(mul(flag, bad!), mul(addScalar(neg(flag), 1), good!));
    return mean(klFromLogits(targetLogits, model.forward(b.x), tau));
  };
}

/** SCRUB's distillation term KD = KL(softmax(t/T) ‖ softmax(s/T)) · T², summed, / batch size. */
export function scrubKd(T = 4): Term {
  return (model, b, t) => {
    const teacher = t.ctx.noGrad(() => t.original.forward(b.x));
    return mulScalar(sum(klFromLogits(teacher, model.forward(b.x), T)), (T * T) / b.size);
  };
}

/** SCRUB's max step on D_f: −KD. */
export const scrubMax = (T = 4): Term => {
  const kd = scrubKd(T);
  return (model, b, t) => neg(kd(model, b, t));
};

/** SCRUB's min step on D_r: γ·CE + β·KD (authors: 0.99 and 0.001). */
export const scrubMin = (T = 4, gamma = 0.99, beta = 0.001): Term => {
  const kd = scrubKd(T);
  return (model, b, t) => add(mulScalar(meanCrossEntropy(model, b, t), gamma), mulScalar(kd(model, b, t), beta));
};

// ------------------------------------------------------------------------------------------------
// Saliency masks

export interface MaskProgress {
  (phase: string, done: number, total: number): void;
}

/** Accumulate the squared mini-batch gradient of mean CE over a loader: F = Σ g² / #batches. */
async function fisherDiagonal(
  ctx: GpuContext,
  model: Module,
  loader: DataLoader,
  params: Tensor[],
  epoch: number,
  progress?: MaskProgress,
  phase = 'fisher',
): Promise<Tensor[]> {
  const n = loader.numBatches;
  if (n === 0) throw new EngineError('fisherDiagonal', `loader for ${phase} yields no batches`);
  const F = params.map((p) => ctx.keep(full(ctx, p.shape, 0)));
  let k = 0;
  for await (const b of loader.batches(epoch)) {
    ctx.scope(() => {
      const sb = uploadBatch(ctx, b);
      model.zeroGrad();
      backward(mean(crossEntropy(model.forward(sb.x), sb.y)));
      ctx.noGrad(() =>
        params.forEach((p, i) => {
          if (!p.grad) return;
          const next = ctx.keep(add(F[i]!, mulScalar(square(p.grad), 1 / n)));
          F[i]!.dispose();
          F[i] = next;
        }),
      );
    });
    k++;
    progress?.(phase, k, n);
    if (k % 2 === 0) await ctx.sync(); // at most two batches in flight: released buffers wait for the GPU
  }
  model.zeroGrad();
  return F;
}

/**
 * SFR-on's mask (spec §3.1): eval mode, mini-batch Fisher diagonals on D_f and D_r,
 * M = ((F_f + 1e-15) / (F_r + 1e-15) ≥ γ) for every parameter tensor.
 */
export async function fisherRatioMask(
  ctx: GpuContext,
  model: Module,
  forgetLoader: DataLoader,
  remainLoader: DataLoader,
  gamma: number,
  progress?: MaskProgress,
): Promise<SaliencyMask> {
  const wasTraining = model.training;
  model.eval();
  const params = model.trainableParameters();
  const Ff = await fisherDiagonal(ctx, model, forgetLoader, params, 0, progress, 'fisher D_f');
  const Fr = await fisherDiagonal(ctx, model, remainLoader, params, 0, progress, 'fisher D_r');
  const mask: SaliencyMask = new Map();
  ctx.noGrad(() =>
    params.forEach((p, i) => {
      const m = ctx.scope(() => ge(div(addScalar(Ff[i]!, 1e-15), addScalar(Fr[i]!, 1e-15)), full(ctx, [1], gamma)));
      mask.set(p, ctx.keep(m));
      Ff[i]!.dispose();
      Fr[i]!.dispose();
    }),
  );
  model.train(wasTraining);
  return mask;
}

/**
 * SalUn's mask: G = |Σ over forget batches of ∇(−mean CE)|, ranked globally over all parameters;
 * the top fraction `threshold` is 1. The k-th largest value is found on the CPU once (a selection
 * over all |G|, counted in the runtime); the comparison itself runs on the GPU.
 */
export async function salunMask(
  ctx: GpuContext,
  model: Module,
  forgetLoader: DataLoader,
  threshold: number,
  progress?: MaskProgress,
): Promise<SaliencyMask> {
  if (!(threshold > 0 && threshold <= 1)) throw new EngineError('salunMask', `threshold ${threshold} must be in (0, 1]`);
  const params = model.trainableParameters();
  const G = params.map((p) => ctx.keep(full(ctx, p.shape, 0)));
  const n = forgetLoader.numBatches;
  let k = 0;
  for await (const b of forgetLoader.batches(0)) {
    ctx.scope(() => {
      const sb = uploadBatch(ctx, b);
      model.zeroGrad();
      backward(neg(mean(crossEntropy(model.forward(sb.x), sb.y))));
      ctx.noGrad(() =>
        params.forEach((p, i) => {
          if (!p.grad) return;
          const next = ctx.keep(add(G[i]!, p.grad));
          G[i]!.dispose();
          G[i] = next;
        }),
      );
    });
    progress?.('salun mask', ++k, n);
    if (k % 2 === 0) await ctx.sync(); // bound the work in flight (see fisherDiagonal)
  }
  model.zeroGrad();
  const absG = G.map((g) => ctx.keep(ctx.noGrad(() => abs(g))));
  G.forEach((g) => g.dispose());
  const host = await Promise.all(absG.map((g) => g.read()));
  const total = host.reduce((s, a) => s + a.length, 0);
  const all = new Float32Array(total);
  let off = 0;
  for (const a of host) {
    all.set(a, off);
    off += a.length;
  }
  const kTop = Math.max(1, Math.floor(total * threshold));
  const cut = kthLargest(all, kTop);
  const mask: SaliencyMask = new Map();
  ctx.noGrad(() =>
    params.forEach((p, i) => {
      mask.set(p, ctx.keep(ctx.scope(() => ge(absG[i]!, full(ctx, [1], cut)))));
      absG[i]!.dispose();
    }),
  );
  return mask;
}

/** k-th largest value (1-based) by quickselect on a copy. */
export function kthLargest(values: Float32Array, k: number): number {
  const a = Float32Array.from(values);
  let lo = 0,
    hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo,
      j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

/** g ⊙= M for every parameter with a mask (in place on .grad). */
export function maskGradients(ctx: GpuContext, params: Tensor[], mask: SaliencyMask | null): void {
  if (!mask) return;
  ctx.noGrad(() => {
    for (const p of params) {
      const m = mask.get(p);
      if (!m || !p.grad) continue;
      const g = ctx.keep(mul(p.grad, m));
      p.grad.dispose();
      p.grad = g;
    }
  });
}

/** Fraction of parameters the mask lets move (for reports). */
export async function maskDensity(mask: SaliencyMask): Promise<number> {
  let on = 0,
    n = 0;
  for (const m of mask.values()) {
    const v = await m.read();
    for (const x of v) on += x;
    n += v.length;
  }
  return n ? on / n : 1;
}
