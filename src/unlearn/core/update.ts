// Update rules of spec §2-§4 on the public Optimizer API: the joint Euclidean step (one loss, an
// optional saliency mask on its gradient, an optional global-norm clip), the epoch loop of the
// baselines (phases per epoch: SCRUB's max/min alternation is two phases), SFR-on's fast-slow
// alternation with its α and lr schedules, forget frequency, forget-step clipping, strict masks and
// β slow averaging, and the "joint" ablation. Browser-safe; progress callbacks and an AbortSignal.
// It does not choose terms or masks (methods.ts) and never touches a gradient except through
// nn/optim.ts (maskGradients, clipGradNorm).

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { copyTensor, type AnyModule } from '../../nn/module.js';
import { SGD, Adam, AdamW, clipGradNorm, maskGradients, paramGroups, type Optimizer, type ParamGroup } from '../../nn/optim.js';
import { EngineError } from '../../util/errors.js';
import { transformerNoDecay } from '../../models/transformer-parts.js';
import { add, mulScalar, backward } from '../../ops/index.js';
import type { SaliencyMask } from './masks.js';
import type { BatchSource, Term, TermContext, UnlearnProblem } from './task.js';

// ------------------------------------------------------------------------------------------------
// Optimizers and schedules

export interface OptimizerSpec {
  kind: 'sgd' | 'adam' | 'adamw';
  lr: number;
  /** SGD only (default 0). */
  momentum?: number;
  /** SGD/Adam: coupled L2; AdamW: decoupled (default 0). */
  weightDecay?: number;
  /**
   * Exempt norms, biases, class tokens and position tables from weight decay (models'
   * transformerNoDecay rule, as pretraining uses for transformers). Default false: every trainable
   * parameter decays, one flat list.
   */
  noDecay?: boolean;
}

/**
 * The optimizer of a spec over `params`; with spec.noDecay, over `model`'s trainable parameters in
 * two groups (decay / no_decay), which needs the model for the parameter names.
 */
export function makeOptimizer(spec: OptimizerSpec, params: Tensor[], model?: AnyModule): Optimizer {
  const weightDecay = spec.weightDecay ?? 0;
  if (spec.noDecay && !model) throw new EngineError('makeOptimizer', 'optimizer.noDecay needs the model (its parameter names)');
  const groups: Tensor[] | ParamGroup[] = spec.noDecay ? paramGroups(model!, { noDecay: transformerNoDecay }) : params;
  if (spec.kind === 'sgd') return new SGD(groups, { lr: spec.lr, momentum: spec.momentum ?? 0, weightDecay });
  if (spec.kind === 'adam') return new Adam(groups, { lr: spec.lr, weightDecay });
  if (spec.kind === 'adamw') return new AdamW(groups, { lr: spec.lr, weightDecay });
  throw new EngineError('makeOptimizer', `unknown optimizer kind '${String((spec as { kind: unknown }).kind)}' (sgd, adam, adamw)`);
}

/**
 * Decay shapes of a learning rate (or α) over N steps or epochs, as the authors' schedulers:
 * cosine (1 + cos(πs/N))/2 (torch's CosineAnnealingLR to 0), linear 1 − s/N, expdecay (1 − s/N)²
 * (their `expdecay_lr_scheduler`), constant 1.
 */
export type Decay = 'constant' | 'cosine' | 'linear' | 'expdecay';
export const DECAYS: readonly Decay[] = ['constant', 'cosine', 'linear', 'expdecay'];

export function decayFactor(kind: Decay, s: number, N: number): number {
  if (N <= 0) return 1;
  switch (kind) {
    case 'constant':
      return 1;
    case 'cosine':
      return (1 + Math.cos((Math.PI * s) / N)) / 2;
    case 'linear':
      return 1 - s / N;
    case 'expdecay':
      return (1 - s / N) ** 2;
  }
  throw new EngineError('decayFactor', `unknown decay '${String(kind)}' (${DECAYS.join(', ')})`);
}

// ------------------------------------------------------------------------------------------------
// One step

/** How one optimizer step treats the gradient of its loss. */
export interface StepOptions {
  /** g ⊙= M before the clip (the gradient side of a saliency mask: decay and momentum still act). */
  mask?: SaliencyMask | null;
  /** Also freeze masked entries for this update: no decay, no momentum drift (Optimizer.setUpdateMask). */
  strict?: boolean;
  /** Clip the global gradient norm (after masking) to this value. */
  clip?: number | null;
  /**
   * The "joint" ablation: a second loss whose gradient is added AFTER the first one was masked and
   * clipped (g = clip(M ⊙ g_f) + g_r), then one update.
   */
  plus?: () => Tensor;
}

/** Called after each optimizer step: (step number, the step's loss tensor, read it only if needed). */
export type StepHook = (step: number) => void;

/**
 * Records optimizer steps, keeps at most two in flight (the CPU must not record far ahead of the
 * GPU: every recorded step's buffers stay allocated until the GPU has run it), and stops the method
 * with a clear error when a loss read back is NaN or ±Inf, or when the signal is aborted.
 */
export class Stepper {
  steps = 0;
  private pending: { step: number; t: Tensor }[] = [];
  constructor(
    readonly ctx: GpuContext,
    readonly opt: Optimizer,
    readonly params: Tensor[],
    readonly method: string,
    readonly onStep?: StepHook,
    readonly signal?: AbortSignal,
  ) {}

  /** One update: zero, backward(loss) [+ mask, clip, plus], step. */
  step(loss: () => Tensor, o: StepOptions = {}): void {
    this.signal?.throwIfAborted();
    const { ctx, opt, params } = this;
    const l = ctx.scope(() => {
      opt.zeroGrad();
      const lf = loss();
      backward(lf);
      if (o.mask) maskGradients(params, o.mask);
      if (o.clip != null) clipGradNorm(params, o.clip);
      let total = lf;
      if (o.plus) {
        const lr = o.plus();
        backward(lr); // accumulates into the masked, clipped gradient
        total = ctx.noGrad(() => add(lf, lr));
      }
      if (o.strict && o.mask) for (const [p, m] of o.mask) opt.setUpdateMask(p, m);
      opt.step();
      if (o.strict && o.mask) for (const p of o.mask.keys()) opt.setUpdateMask(p, null);
      return total; // its graph was freed by backward; the value survives the scope for the check
    });
    this.pending.push({ step: this.steps, t: ctx.keep(l) });
    this.onStep?.(this.steps);
    this.steps++;
  }

  /** Read back and check all but the last two losses (all with force). */
  async drain(force = false): Promise<void> {
    const keep = force ? 0 : 2;
    for (const { step, t } of this.pending.splice(0, Math.max(0, this.pending.length - keep))) {
      const v = await t.item();
      t.dispose();
      if (!Number.isFinite(v)) {
        this.dispose();
        throw new EngineError(this.method, `loss became ${v} at step ${step}; stopping (results written so far are kept)`);
      }
    }
  }

  dispose(): void {
    for (const { t } of this.pending) t.dispose();
    this.pending = [];
  }
}

/** Endless batches from a source, epoch after epoch. */
export async function* cycle<R>(source: BatchSource<R>): AsyncGenerator<R> {
  for (let e = 0; ; e++) {
    let any = false;
    for await (const b of source.batches(e)) {
      any = true;
      yield b;
    }
    if (!any) throw new EngineError('unlearn', 'a data source yields no batches (empty set?)');
  }
}

async function nextOf<R>(it: AsyncGenerator<R>): Promise<R> {
  const r = await it.next();
  if (r.done) throw new EngineError('unlearn', 'a data source ended');
  return r.value;
}

// ------------------------------------------------------------------------------------------------
// Epoch rule (FT, GA, RL, SalUn, BT, SCRUB)

/** One pass over a source with one term, in one model mode. */
export interface Phase<R, B> {
  name: string;
  source: BatchSource<R>;
  term: Term<B>;
  /** Model mode during the phase (GA: 'eval', as the authors: batch norm frozen). */
  mode: 'train' | 'eval';
  mask?: SaliencyMask | null;
  clip?: number | null;
}

export interface EpochRuleOptions<R, B> {
  epochs: number;
  /** lr of epoch e = lr₀ · decayFactor(schedule, e, epochs) (the authors' per-epoch CosineAnnealingLR). */
  lr0: number;
  schedule: Decay;
  /** The phases of epoch e, in order. */
  phases: (epoch: number) => Phase<R, B>[];
}

export type RuleProgress = (phase: string, done: number, total: number, info?: Record<string, number>) => void;

/** Euclidean steps, epoch by epoch: every batch of every phase is one masked/clipped update. */
export async function runEpochRule<R, B>(
  p: UnlearnProblem<R, B>,
  model: AnyModule,
  stepper: Stepper,
  tctx: TermContext,
  o: EpochRuleOptions<R, B>,
  progress?: RuleProgress,
): Promise<void> {
  let total = 0;
  for (let e = 0; e < o.epochs; e++) for (const ph of o.phases(e)) total += ph.source.numBatches;
  for (let e = 0; e < o.epochs; e++) {
    stepper.opt.lr = o.lr0 * decayFactor(o.schedule, e, o.epochs);
    for (const ph of o.phases(e)) {
      model.train(ph.mode === 'train');
      for await (const raw of ph.source.batches(e)) {
        stepper.step(() => ph.term(model, p.upload(raw), tctx), { mask: ph.mask, clip: ph.clip });
        await stepper.drain();
        progress?.(ph.name, stepper.steps, total);
      }
    }
  }
  await stepper.drain(true);
  model.train();
}

// ------------------------------------------------------------------------------------------------
// SFR-on's fast-slow rule (spec §3.2)

export interface FastSlowOptions<B> {
  iterations: number;
  /** a forget (fast) step every forgetFreq iterations, at s = 0, f, 2f, ... */
  forgetFreq: number;
  lr0: number;
  lrSchedule: Decay;
  alpha0: number;
  alphaSchedule: Decay;
  forgetTerm: Term<B>;
  remainTerm: Term<B>;
  /** saliency mask of the forget step (null: M = 1) */
  mask: SaliencyMask | null;
  /** masked entries frozen in the forget step only (remain steps move every weight) */
  strictMask: boolean;
  /** global-norm clip of the forget step only */
  maxNorm: number | null;
  /** false: the "joint" ablation, g = clip(M ⊙ g_f) + g_r in one Euclidean step */
  alternate: boolean;
  /** θ ← β·θ + (1 − β)·θ_prev after every iteration (1 = off, no copies kept) */
  beta: number;
}

/**
 * For s = 0 … N−1: lr_s = lr₀·decay(s); if s mod f = 0, a forget step (α_s = α₀·decay(s); loss
 * −α_s Σ wᵢlᵢ; g ⊙= M; clip; step), then a remain step on the post-forget weights (unmasked,
 * unclipped): ∇L_r(θ − η g_f) ≈ ∇L_r(θ) − η H_r g_f carries the remain-geometry correction. Both
 * steps share one optimizer and run in train mode, as the authors'. With `alternate: false` the two
 * gradients form one step (the ablation). Optional slow averaging with β.
 */
export async function runFastSlowRule<R, B>(
  p: UnlearnProblem<R, B>,
  model: AnyModule,
  stepper: Stepper,
  tctx: TermContext,
  o: FastSlowOptions<B>,
  progress?: RuleProgress,
): Promise<void> {
  const { ctx } = p;
  const forgetIt = cycle(p.forget);
  const remainIt = cycle(p.remain);
  const params = stepper.params;
  let prev: Map<Tensor, Tensor> | null = null;
  model.train();
  try {
    for (let s = 0; s < o.iterations; s++) {
      stepper.opt.lr = o.lr0 * decayFactor(o.lrSchedule, s, o.iterations);
      const forgetNow = s % o.forgetFreq === 0;
      const remainRaw = await nextOf(remainIt);
      if (forgetNow) {
        const forgetRaw = await nextOf(forgetIt);
        tctx.alpha = o.alpha0 * decayFactor(o.alphaSchedule, s, o.iterations);
        const forgetLoss = () => o.forgetTerm(model, p.upload(forgetRaw), tctx);
        if (o.alternate) stepper.step(forgetLoss, { mask: o.mask, strict: o.strictMask, clip: o.maxNorm });
        else stepper.step(forgetLoss, { mask: o.mask, clip: o.maxNorm, plus: () => o.remainTerm(model, p.upload(remainRaw), tctx) });
      }
      // slow step: the remain update at the post-forget weights
      if (o.alternate || !forgetNow) stepper.step(() => o.remainTerm(model, p.upload(remainRaw), tctx));
      if (o.beta !== 1) prev = slowAverage(ctx, params, prev, o.beta);
      await stepper.drain();
      progress?.('SFR-on', s + 1, o.iterations, { alpha: tctx.alpha, lr: stepper.opt.lr });
    }
    await stepper.drain(true);
  } finally {
    prev?.forEach((t) => t.dispose());
    await forgetIt.return(undefined);
    await remainIt.return(undefined);
  }
}

/** θ ← β·θ + (1−β)·θ_prev, then θ_prev ← θ (copies exist only when β ≠ 1). */
function slowAverage(ctx: GpuContext, params: Tensor[], prev: Map<Tensor, Tensor> | null, beta: number): Map<Tensor, Tensor> {
  const next = new Map<Tensor, Tensor>();
  ctx.noGrad(() => {
    for (const q of params) {
      const before = prev?.get(q);
      if (before) {
        const avg = ctx.scope(() => add(mulScalar(q, beta), mulScalar(before, 1 - beta)));
        copyTensor('slowAverage', avg, q);
        avg.dispose();
        before.dispose();
      }
      next.set(q, ctx.keep(mulScalar(q, 1)));
    }
  });
  return next;
}
