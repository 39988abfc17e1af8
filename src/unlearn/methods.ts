// Unlearning methods as compositions (spec §2): a saliency mask, a forgetting term, a remaining term and
// an update rule — the Euclidean joint step of most methods, SCRUB's max/min alternation, or SFR-on's
// fast-slow alternation that implicitly follows the remain geometry. Each method below is a small
// config that reads like its algorithm box; ablations are single options.
// It does not evaluate (evaluate.ts) or orchestrate experiments (experiment-node.ts).

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import type { Module } from '../nn/module.js';
import type { DataLoader, Batch } from '../data/loader.js';
import { SGD, Adam, AdamW, clipGradNorm, type Optimizer } from '../nn/optim.js';
import { adaptiveAscent, badTeacherKl, drawRandomLabels, fisherRatioMask, gradientAscent, maskGradients, maskDensity, meanCrossEntropy, randomLabelCrossEntropy, salunMask, scrubMax, scrubMin, uploadBatch, type MaskProgress, type SaliencyMask, type Term, type TermContext } from './components.js';
import { copyTensor } from '../nn/module.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';
import { add, mulScalar, backward } from '../ops/index.js';

// ------------------------------------------------------------------------------------------------
// Hyperparameters

export interface OptimizerSpec {
  kind: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/** Learning-rate (and α) decay shapes. */
export type Decay = 'constant' | 'cosine' | 'linear' | 'exponential';

export function decayFactor(kind: Decay, s: number, N: number): number {
  if (N <= 0) return 1;
  switch (kind) {
    case 'constant':
      return 1;
    case 'cosine':
      return (1 + Math.cos((Math.PI * s) / N)) / 2;
    case 'linear':
      return 1 - s / N;
    case 'exponential':
      return Math.pow(0.01, s / N); // decays to 1% of the start at the end
  }
}

/** SFR-on's options (spec §3), with the three ablations as switches. */
export interface SfrOnOptions {
  optimizer: OptimizerSpec;
  iterations: number;
  forgetFreq: number;
  alpha0: number;
  alphaSchedule: Decay;
  lrSchedule: Decay;
  /** gradient-norm clip on forget steps only */
  maxNorm: number;
  /** adaptive-weight temperature λ (0 = plain ascent on the mean: the "no adaptive weights" ablation) */
  lambda: number;
  /** Fisher-ratio threshold γ; null = no mask (ablation "M = 1") */
  gamma: number | null;
  /** slow-weight averaging β (1 = off, the authors' default) */
  beta: number;
  /** false = forget and remain gradients summed into one Euclidean step (ablation) */
  alternate: boolean;
  /** masked parameters truly frozen for every update (no decay, no momentum drift) */
  strictMask: boolean;
}

export interface EpochMethodOptions {
  optimizer: OptimizerSpec;
  epochs: number;
  lrSchedule: Decay;
  /** grad-norm clip (GA: 0.1); null = none */
  clip?: number | null;
}

export type MethodConfig =
  | ({ method: 'FT' } & EpochMethodOptions)
  | ({ method: 'GA' } & EpochMethodOptions)
  | ({ method: 'RL' } & EpochMethodOptions)
  | ({ method: 'SalUn'; threshold: number } & EpochMethodOptions)
  | ({ method: 'BT'; tau: number } & EpochMethodOptions)
  | ({ method: 'SCRUB'; msteps: number; T: number; gamma: number; beta: number } & EpochMethodOptions)
  | ({ method: 'SFR-on' } & SfrOnOptions);

export type MethodName = MethodConfig['method'];

/** The authors' CIFAR-10 / ResNet-18 settings (spec §3-4). */
export const CIFAR10_PRESETS: Record<MethodName, MethodConfig> = {
  FT: { method: 'FT', optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 }, epochs: 10, lrSchedule: 'cosine' },
  GA: { method: 'GA', optimizer: { kind: 'sgd', lr: 1e-4, momentum: 0.9, weightDecay: 5e-4 }, epochs: 9, lrSchedule: 'constant', clip: 0.1 },
  RL: { method: 'RL', optimizer: { kind: 'sgd', lr: 0.003, momentum: 0.9, weightDecay: 5e-4 }, epochs: 10, lrSchedule: 'cosine' },
  SalUn: { method: 'SalUn', threshold: 0.2, optimizer: { kind: 'sgd', lr: 0.007, momentum: 0.9, weightDecay: 5e-4 }, epochs: 10, lrSchedule: 'cosine' },
  BT: { method: 'BT', tau: 1, optimizer: { kind: 'sgd', lr: 0.02, momentum: 0.9, weightDecay: 5e-4 }, epochs: 10, lrSchedule: 'cosine' },
  SCRUB: { method: 'SCRUB', msteps: 2, T: 4, gamma: 0.99, beta: 0.001, optimizer: { kind: 'adamw', lr: 1e-4, weightDecay: 0.05 }, epochs: 3, lrSchedule: 'constant' },
  'SFR-on': {
    method: 'SFR-on',
    optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
    iterations: 1500,
    forgetFreq: 5,
    alpha0: 25,
    alphaSchedule: 'cosine',
    lrSchedule: 'cosine',
    maxNorm: 7,
    lambda: 0.5,
    gamma: 1,
    beta: 1,
    alternate: true,
    strictMask: false,
  },
};

// ------------------------------------------------------------------------------------------------
// Running a method

export interface UnlearnSetup {
  ctx: GpuContext;
  /** The model to unlearn, modified in place (pass a clone of the original). */
  model: Module;
  /** Frozen original θ₀ (teacher for BT / SCRUB). */
  original: Module;
  /** A fresh randomly initialised model of the same architecture (BT's bad teacher). */
  makeFreshModel: () => Module;
  /** Forget / remain loaders with training augmentation, shuffled (spec: batch 128). */
  forgetLoader: DataLoader;
  remainLoader: DataLoader;
  /** Both sets in one shuffled loader (RL, SalUn, BT); indices are dataset indices. */
  mixedLoader: DataLoader;
  forgetIndices: Int32Array;
  labelOf: (datasetIndex: number) => number;
  numClasses: number;
  seed: number;
  progress?: (phase: string, done: number, total: number, info?: Record<string, number>) => void;
  /** Called after each optimizer step with the step number (tests, NaN checks). */
  onStep?: (step: number) => void;
}

export interface UnlearnResult {
  method: MethodName;
  /** wall-clock milliseconds of the whole call, mask computation included */
  ms: number;
  steps: number;
  maskDensity?: number;
}

function makeOptimizer(spec: OptimizerSpec, params: Tensor[]): Optimizer {
  const wd = spec.weightDecay ?? 0;
  if (spec.kind === 'sgd') return new SGD(params, { lr: spec.lr, momentum: spec.momentum ?? 0, weightDecay: wd });
  if (spec.kind === 'adam') return new Adam(params, { lr: spec.lr, weightDecay: wd });
  return new AdamW(params, { lr: spec.lr, weightDecay: wd });
}

/** Endless batches from a loader, epoch after epoch. */
async function* cycle(loader: DataLoader): AsyncGenerator<Batch> {
  for (let e = 0; ; e++) {
    let any = false;
    for await (const b of loader.batches(e)) {
      any = true;
      yield b;
    }
    if (!any) throw new EngineError('unlearn', 'a loader yields no batches (empty set?)');
  }
}

/** One optimizer step on a loss term (plus optional mask/clip), all in one scope. */
function step(
  u: UnlearnSetup,
  opt: Optimizer,
  params: Tensor[],
  loss: () => Tensor,
  mask: SaliencyMask | null,
  clip: number | null | undefined,
): Tensor {
  const { ctx } = u;
  return ctx.scope(() => {
    opt.zeroGrad();
    const l = loss();
    backward(l);
    maskGradients(ctx, params, mask);
    if (clip != null) clipGradNorm(params, clip);
    opt.step();
    return l; // survives the scope for the NaN check; its graph was freed by backward
  });
}

/** Checks a loss read back from the GPU; stops the method with a clear error on NaN / Inf. */
function checkFinite(method: string, stepNo: number, v: number) {
  if (!Number.isFinite(v)) throw new EngineError(method, `loss became ${v} at step ${stepNo}; stopping (results written so far are kept)`);
}

/**
 * Run one unlearning method on `setup.model` in place. Returns the wall-clock time (mask
 * computation included) and the number of optimizer steps.
 */
export async function runUnlearning(config: MethodConfig, u: UnlearnSetup): Promise<UnlearnResult> {
  const t0 = performance.now();
  const { ctx, model } = u;
  const params = model.trainableParameters();
  const original = u.original;
  original.eval();
  const tctx: TermContext = { ctx, original, numClasses: u.numClasses, alpha: 1 };
  const maskProgress: MaskProgress = (phase, d, n) => u.progress?.(phase, d, n);
  let steps = 0;
  const pendingLosses: { step: number; t: Tensor }[] = [];
  // at most two steps in flight: the CPU must not record far ahead of the GPU, since every
  // recorded step's buffers stay allocated until the GPU has run it
  const drainLosses = async (force = false) => {
    const keep = force ? 0 : 2;
    for (const { step: s, t } of pendingLosses.splice(0, Math.max(0, pendingLosses.length - keep))) {
      checkFinite(config.method, s, await t.item());
      t.dispose();
    }
  };
  const record = (t: Tensor) => {
    pendingLosses.push({ step: steps, t: ctx.keep(t) });
    u.onStep?.(steps);
  };

  if (config.method === 'SFR-on') {
    const c = config;
    let mask: SaliencyMask | null = null;
    if (c.gamma !== null) mask = await fisherRatioMask(ctx, model, u.forgetLoader, u.remainLoader, c.gamma, maskProgress);
    const opt = makeOptimizer(c.optimizer, params);
    if (mask && c.strictMask) for (const [p, m] of mask) opt.setUpdateMask(p, m);
    const forgetTerm = adaptiveAscent(c.lambda);
    const forgetIt = cycle(u.forgetLoader);
    const remainIt = cycle(u.remainLoader);
    model.train();
    let prev: Map<Tensor, Tensor> | null = null;
    for (let s = 0; s < c.iterations; s++) {
      opt.lr = c.optimizer.lr * decayFactor(c.lrSchedule, s, c.iterations);
      const forgetNow = s % c.forgetFreq === 0;
      const rb = (await remainIt.next()).value as Batch;
      if (forgetNow) {
        const fb = (await forgetIt.next()).value as Batch;
        tctx.alpha = c.alpha0 * decayFactor(c.alphaSchedule, s, c.iterations);
        if (c.alternate) {
          // fast step: the forget update, masked and clipped
          record(step(u, opt, params, () => forgetTerm(model, uploadBatch(ctx, fb), tctx), mask, c.maxNorm));
          steps++;
        } else {
          // ablation: forget and remain gradients in one Euclidean step (mask/clip on the sum)
          record(
            step(u, opt, params, () => add(forgetTerm(model, uploadBatch(ctx, fb), tctx), meanCrossEntropy(model, uploadBatch(ctx, rb), tctx)), mask, c.maxNorm),
          );
          steps++;
        }
      }
      if (c.alternate || !forgetNow) {
        // slow step: the remain update at the post-forget weights (carries -η H_r g_f implicitly)
        record(step(u, opt, params, () => meanCrossEntropy(model, uploadBatch(ctx, rb), tctx), null, null));
        steps++;
      }
      if (c.beta !== 1) prev = slowAverage(ctx, params, prev, c.beta);
      await drainLosses();
      u.progress?.('SFR-on', s + 1, c.iterations, { alpha: tctx.alpha, lr: opt.lr });
    }
    prev?.forEach((t) => t.dispose());
    await drainLosses(true);
    const density = mask ? await densityOf(mask) : undefined;
    mask?.forEach((m) => m.dispose());
    opt.dispose?.();
    return { method: c.method, ms: performance.now() - t0, steps, maskDensity: density };
  }

  // epoch-based methods
  const c = config;
  let mask: SaliencyMask | null = null;
  if (c.method === 'SalUn') mask = await salunMask(ctx, model, u.forgetLoader, c.threshold, maskProgress);
  const opt = makeOptimizer(c.optimizer, params);
  let badTeacher: Module | undefined;
  if (c.method === 'BT') {
    badTeacher = u.makeFreshModel();
    badTeacher.eval();
    badTeacher.freeze();
    tctx.badTeacher = badTeacher;
  }
  let relabel: Map<number, number> | undefined;
  if (c.method === 'RL' || c.method === 'SalUn') {
    const g = new Generator(u.seed ^ 0x524c);
    relabel = drawRandomLabels(u.forgetIndices, u.labelOf, u.numClasses, () => g.cpuUniform());
  }
  const forgetSet = c.method === 'BT' ? new Set(u.forgetIndices) : undefined;
  // (loader, term, mode) per phase of each epoch
  type Phase = { loader: DataLoader; term: Term; eval?: boolean; name: string };
  const phasesOf = (e: number): Phase[] => {
    switch (c.method) {
      case 'FT':
        return [{ loader: u.remainLoader, term: meanCrossEntropy, name: 'FT' }];
      case 'GA':
        return [{ loader: u.forgetLoader, term: gradientAscent, eval: true, name: 'GA' }];
      case 'RL':
      case 'SalUn':
        return [{ loader: u.mixedLoader, term: randomLabelCrossEntropy(relabel!), name: c.method }];
      case 'BT':
        return [{ loader: u.mixedLoader, term: badTeacherKl(c.tau), name: 'BT' }];
      case 'SCRUB': {
        const ph: Phase[] = [];
        if (e < c.msteps) ph.push({ loader: u.forgetLoader, term: scrubMax(c.T), name: 'SCRUB max' });
        ph.push({ loader: u.remainLoader, term: scrubMin(c.T, c.gamma, c.beta), name: 'SCRUB min' });
        return ph;
      }
    }
  };
  let total = 0;
  for (let e = 0; e < c.epochs; e++) for (const p of phasesOf(e)) total += p.loader.numBatches;
  for (let e = 0; e < c.epochs; e++) {
    opt.lr = c.optimizer.lr * decayFactor(c.lrSchedule, e, c.epochs);
    for (const ph of phasesOf(e)) {
      if (ph.eval) model.eval();
      else model.train();
      for await (const b of ph.loader.batches(e)) {
        record(step(u, opt, params, () => ph.term(model, uploadBatch(ctx, b, forgetSet), tctx), mask, c.clip));
        steps++;
        await drainLosses();
        u.progress?.(ph.name, steps, total);
      }
    }
  }
  await drainLosses(true);
  model.train();
  badTeacher?.dispose();
  const density = mask ? await densityOf(mask) : undefined;
  mask?.forEach((m) => m.dispose());
  opt.dispose?.();
  return { method: c.method, ms: performance.now() - t0, steps, maskDensity: density };
}

const densityOf = (mask: SaliencyMask) => maskDensity(mask);

/** θ ← β·θ + (1−β)·θ_prev; θ_prev ← θ (copies kept only when β ≠ 1). */
function slowAverage(ctx: GpuContext, params: Tensor[], prev: Map<Tensor, Tensor> | null, beta: number): Map<Tensor, Tensor> {
  const next = new Map<Tensor, Tensor>();
  ctx.noGrad(() => {
    for (const p of params) {
      const before = prev?.get(p);
      if (before) {
        const avg = ctx.scope(() => add(mulScalar(p, beta), mulScalar(before, 1 - beta)));
        assignInPlace(p, avg);
        avg.dispose();
        before.dispose();
      }
      next.set(p, ctx.keep(mulScalar(p, 1)));
    }
  });
  return next;
}

function assignInPlace(dst: Tensor, src: Tensor) {
  copyTensor('slowAverage', src, dst);
}
