// Class-forgetting methods for class-conditional diffusion models (spec §7, the authors' DDPM/
// runners): SFR-on (Fisher-ratio mask on the guided output, adaptive weighted ascent on per-sample
// noise losses, forget step then a remain step, both clipped), SalUn (top-k saliency mask;
// the forget class's prediction pulled to the stop-grad prediction under another class, plus a small
// remain loss), and SA, Selective Amnesia (uniform-noise images labelled as the forgotten class,
// generative replay of the kept classes from the frozen original, an EWC penalty with the original's
// Fisher). Built from the core's Stepper, adaptive weights, schedules and top-k mask; RT (retraining
// without the class) is plain training (../../models/diffusion/train.ts).
// Known deviations from the authors' code: SalUn's gradient is masked before the global-norm clip
// (theirs clips, then masks; the core's Stepper order, as SFR-on's forget step); mask statistics may
// use a limited number of batches (maskBatches); SA's Fisher sums `fisherTimesteps` evenly spread
// timesteps per replay image instead of all T.
// It does not evaluate (metrics.ts) or orchestrate (../../cli/diffusion-demo.ts).

import type { Tensor } from '../../autograd/tensor.js';
import type { AnyModule } from '../../nn/module.js';
import { clipGradNorm } from '../../nn/optim.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { add, addScalar, backward, detach, div, full, ge, mean, mseLoss, mul, mulScalar, square, sub, sum, tensor } from '../../ops/index.js';
import { epsError, gaussian, guidedEps, qSample, uploadNoised, type EpsModel, type NoisedBatch } from '../../models/diffusion/process.js';
import { sampleImages } from '../../models/diffusion/samplers.js';
import { disposeMask, inEvalMode, maskDensity, topKMask, type SaliencyMask } from '../core/masks.js';
import { adaptiveAscent, meanLoss } from '../core/terms.js';
import { Stepper, cycle, decayFactor, makeOptimizer, DECAYS, type Decay, type StepHook } from '../core/update.js';
import type { TermContext } from '../core/task.js';
import type { DiffusionProblem } from './task.js';
import type { NoisedLoader } from '../../models/diffusion/train.js';

// ------------------------------------------------------------------------------------------------
// Configs

export interface DiffusionSfrOnConfig {
  method: 'SFR-on';
  iterations: number;
  /** Adam lr (authors 1e-4). */
  lr: number;
  /** forget step every forgetFreq iterations (authors 1) */
  forgetFreq: number;
  alpha0: number;
  alphaSchedule: Decay;
  /** adaptive-weight temperature λ (authors 0.5) */
  lambda: number;
  /** Fisher-ratio threshold γ; null = no mask */
  gamma: number | null;
  /** global-norm clip of both steps and of each mask batch's gradient (authors 1) */
  clip: number;
  /** guidance scale of the mask's output (authors w = 2) */
  guidance: number;
  /** batches of D_f and of D_r the Fisher diagonals use (null = a whole pass, the authors') */
  maskBatches: number | null;
  label?: string;
}

export interface DiffusionSalUnConfig {
  method: 'SalUn';
  iterations: number;
  lr: number;
  /** share of weights the mask keeps (authors 0.5) */
  threshold: number;
  /** loss = forgetAlpha · MSE(ε̂(x_t, c_f), sg ε̂(x_t, c_f + 1 mod K)) + remainAlpha · L_r */
  forgetAlpha: number;
  remainAlpha: number;
  clip: number;
  guidance: number;
  maskBatches: number | null;
  label?: string;
}

export interface DiffusionSaConfig {
  method: 'SA';
  iterations: number;
  lr: number;
  /** EWC weight λ (authors 10) */
  ewcLambda: number;
  /** weight γ of the replay term (authors 1) */
  replayWeight: number;
  clip: number;
  /** replay images generated per kept class from the original (authors: a sample folder) */
  replayPerClass: number;
  /** sampling steps (DDIM) and guidance of the replay images */
  replaySteps: number;
  guidance: number;
  /** replay images the Fisher is averaged over, and timesteps summed per image (authors all T in chunks) */
  fisherSamples: number;
  fisherTimesteps: number;
  label?: string;
}

export type DiffusionMethodConfig = DiffusionSfrOnConfig | DiffusionSalUnConfig | DiffusionSaConfig;
export type DiffusionMethodName = DiffusionMethodConfig['method'];

/** The authors' CIFAR-10 settings (DDPM/configs/cifar10_{sfron,saliency_unlearn,sa}.yml and spec §7). */
export const DIFFUSION_PRESETS: { [K in DiffusionMethodName]: Extract<DiffusionMethodConfig, { method: K }> } = {
  'SFR-on': { method: 'SFR-on', iterations: 150, lr: 1e-4, forgetFreq: 1, alpha0: 10, alphaSchedule: 'cosine', lambda: 0.5, gamma: 1, clip: 1, guidance: 2, maskBatches: null },
  SalUn: { method: 'SalUn', iterations: 1000, lr: 1e-5, threshold: 0.5, forgetAlpha: 1, remainAlpha: 1e-3, clip: 1, guidance: 2, maskBatches: null },
  SA: { method: 'SA', iterations: 20000, lr: 1e-4, ewcLambda: 10, replayWeight: 1, clip: 1, replayPerClass: 500, replaySteps: 100, guidance: 2, fisherSamples: 500, fisherTimesteps: 1000 },
};

export function checkDiffusionMethod(mc: DiffusionMethodConfig): void {
  const problems: string[] = [];
  const num = (k: string, v: unknown, ok: (x: number) => boolean, what: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) problems.push(`${mc.method}.${k} = ${JSON.stringify(v)} must be ${what}`);
  };
  const posInt = (x: number) => Number.isInteger(x) && x > 0;
  if (!(mc.method in DIFFUSION_PRESETS)) throw new EngineError('config', `unknown diffusion method ${JSON.stringify(mc.method)} (SFR-on, SalUn, SA)`);
  num('iterations', mc.iterations, posInt, 'a positive integer');
  num('lr', mc.lr, (x) => x >= 0, 'a non-negative number');
  num('clip', mc.clip, (x) => x > 0, 'positive');
  num('guidance', mc.guidance, (x) => x >= 0, 'a non-negative number');
  if (mc.method === 'SFR-on') {
    num('forgetFreq', mc.forgetFreq, posInt, 'a positive integer');
    num('alpha0', mc.alpha0, (x) => x >= 0, 'a non-negative number');
    num('lambda', mc.lambda, (x) => x >= 0, 'a non-negative number');
    if (mc.gamma !== null) num('gamma', mc.gamma, (x) => x >= 0, 'a non-negative number or null');
    if (!DECAYS.includes(mc.alphaSchedule)) problems.push(`SFR-on.alphaSchedule = ${JSON.stringify(mc.alphaSchedule)} must be one of ${DECAYS.join(', ')}`);
  }
  if (mc.method === 'SalUn') {
    num('threshold', mc.threshold, (x) => x > 0 && x <= 1, 'in (0, 1]');
    num('forgetAlpha', mc.forgetAlpha, (x) => x >= 0, 'a non-negative number');
    num('remainAlpha', mc.remainAlpha, (x) => x >= 0, 'a non-negative number');
  }
  if (mc.method !== 'SA' && mc.maskBatches !== null) num('maskBatches', mc.maskBatches, posInt, 'a positive integer or null');
  if (mc.method === 'SA') {
    num('ewcLambda', mc.ewcLambda, (x) => x >= 0, 'a non-negative number');
    num('replayWeight', mc.replayWeight, (x) => x >= 0, 'a non-negative number');
    for (const k of ['replayPerClass', 'replaySteps', 'fisherSamples', 'fisherTimesteps'] as const) num(k, mc[k], posInt, 'a positive integer');
  }
  if (problems.length) throw new EngineError('config', problems.join('; '));
}

// ------------------------------------------------------------------------------------------------
// Losses

/** Mean over the batch of Σ (ε − ε̂_w(x_t, t, y))² with the guided prediction (the authors' mask loss). */
export function guidedNoiseLoss(p: DiffusionProblem, model: EpsModel, raw: NoisedBatch, w: number): Tensor {
  const b = uploadNoised(p.ctx, raw);
  return mean(epsError(b.noise, guidedEps(model, b.xt, raw.t, raw.y, w, p.numClasses)));
}

/**
 * SalUn's forget loss (the authors' "rl" loss): MSE between ε̂(x_t, t, c_f) and the stop-gradient
 * ε̂(x_t, t, (c_f + 1) mod K) on the same noised forget images.
 */
export function relabelNoiseLoss(p: DiffusionProblem, model: EpsModel, raw: NoisedBatch): Tensor {
  const b = uploadNoised(p.ctx, raw);
  const n = raw.t.length;
  const pseudo = tensor(p.ctx, new Int32Array(n).fill((p.forgetClass + 1) % p.numClasses), [n]);
  const forget = tensor(p.ctx, new Int32Array(n).fill(p.forgetClass), [n]);
  return mseLoss(model.forward(b.xt, b.t, forget), detach(model.forward(b.xt, b.t, pseudo)));
}

/** EWC: λ · Σ_params Σ F ⊙ (θ − θ*)². */
export function ewcPenalty(params: readonly Tensor[], fisher: readonly Tensor[], anchor: readonly Tensor[], lambda: number): Tensor {
  let acc: Tensor | null = null;
  params.forEach((q, i) => {
    const term = sum(mul(fisher[i]!, square(sub(q, anchor[i]!))));
    acc = acc ? add(acc, term) : term;
  });
  return mulScalar(acc!, lambda);
}

// ------------------------------------------------------------------------------------------------
// Gradient statistics (masks, SA's Fisher)

/**
 * For each batch of `source` (epoch 0, at most `limit` batches): ∇ loss, its global norm clipped to
 * `clip` (null: none, as the authors' mask scripts clip), folded into a running sum per parameter.
 */
export async function clippedGradientSum(
  p: DiffusionProblem,
  model: AnyModule,
  params: Tensor[],
  batches: AsyncIterable<NoisedBatch>,
  loss: (raw: NoisedBatch) => Tensor,
  clip: number | null,
  fold: (acc: Tensor, g: Tensor) => Tensor,
  limit: number | null,
  signal?: AbortSignal,
): Promise<{ sums: Tensor[]; count: number }> {
  const { ctx } = p;
  const sums = params.map((q) => ctx.keep(full(ctx, q.shape, 0)));
  let count = 0;
  try {
    for await (const raw of batches) {
      if (limit !== null && count >= limit) break;
      signal?.throwIfAborted();
      ctx.scope(() => {
        model.zeroGrad();
        backward(loss(raw));
        if (clip !== null) clipGradNorm(params, clip).dispose();
        ctx.noGrad(() =>
          params.forEach((q, i) => {
            if (!q.grad) return;
            const next = ctx.keep(fold(sums[i]!, q.grad));
            sums[i]!.dispose();
            sums[i] = next;
          }),
        );
      });
      count++;
      if (count % 2 === 0) await ctx.sync();
    }
  } catch (e) {
    sums.forEach((t) => t.dispose());
    throw e;
  } finally {
    model.zeroGrad();
  }
  if (count === 0) {
    sums.forEach((t) => t.dispose());
    throw new EngineError('clippedGradientSum', 'the data yields no batches');
  }
  return { sums, count };
}

/** F = Σ_batches clip(∇ guided loss)² / #batches over a source (the authors' generate_fisher). */
async function guidedFisher(p: DiffusionProblem, model: EpsModel, params: Tensor[], source: NoisedLoader, c: { clip: number; guidance: number; maskBatches: number | null }, signal?: AbortSignal): Promise<Tensor[]> {
  const { sums, count } = await clippedGradientSum(p, model, params, source.batches(0), (raw) => guidedNoiseLoss(p, model, raw, c.guidance), c.clip, (acc, g) => add(acc, square(g)), c.maskBatches, signal);
  return sums.map((s) => {
    const f = p.ctx.keep(p.ctx.noGrad(() => mulScalar(s, 1 / count)));
    s.dispose();
    return f;
  });
}

/** SFR-on's mask for diffusion: M = ((F_f + 1e-15)/(F_r + 1e-15) ≥ γ), Fishers of the guided loss, eval mode. */
export async function diffusionFisherMask(p: DiffusionProblem, model: EpsModel, c: DiffusionSfrOnConfig, signal?: AbortSignal): Promise<SaliencyMask> {
  const { ctx } = p;
  const gamma = c.gamma ?? 0;
  return inEvalMode(model, async () => {
    const params = model.trainableParameters();
    const Ff = await guidedFisher(p, model, params, p.plain('forget'), c, signal);
    let Fr: Tensor[];
    try {
      Fr = await guidedFisher(p, model, params, p.plain('remain'), c, signal);
    } catch (e) {
      Ff.forEach((t) => t.dispose());
      throw e;
    }
    const mask: SaliencyMask = new Map();
    ctx.noGrad(() =>
      params.forEach((q, i) => {
        mask.set(q, ctx.keep(ctx.scope(() => ge(div(addScalar(Ff[i]!, 1e-15), addScalar(Fr[i]!, 1e-15)), full(ctx, [1], gamma)))));
        Ff[i]!.dispose();
        Fr[i]!.dispose();
      }),
    );
    return mask;
  });
}

/** SalUn's mask for diffusion: the top `threshold` share of |Σ_batches clip(∇ guided loss on D_f)|, eval mode. */
export async function diffusionSalunMask(p: DiffusionProblem, model: EpsModel, c: DiffusionSalUnConfig, signal?: AbortSignal): Promise<SaliencyMask> {
  const { ctx } = p;
  return inEvalMode(model, async () => {
    const params = model.trainableParameters();
    const { sums } = await clippedGradientSum(p, model, params, p.plain('forget').batches(0), (raw) => guidedNoiseLoss(p, model, raw, c.guidance), c.clip, (acc, g) => add(acc, g), c.maskBatches, signal);
    const host = await Promise.all(sums.map((g) => g.read()));
    sums.forEach((g) => g.dispose());
    for (const h of host) for (let i = 0; i < h.length; i++) h[i] = Math.abs(h[i]!);
    const bits = topKMask(host, Math.floor(host.reduce((s, a) => s + a.length, 0) * c.threshold));
    const mask: SaliencyMask = new Map();
    params.forEach((q, i) => mask.set(q, ctx.keep(tensor(ctx, bits[i]!, q.shape))));
    return mask;
  });
}

/**
 * SA's Fisher diagonal at the original (the authors' save_fim): for each of `fisherSamples` replay
 * images, the gradient of Σ_k l(x, t_k) over `fisherTimesteps` timesteps spread over [0, T) (fresh
 * noise each), squared, averaged over the images.
 */
export async function replayFisher(p: DiffusionProblem, model: EpsModel, replay: { x: Float32Array; y: Int32Array }, c: DiffusionSaConfig, gen: Generator, signal?: AbortSignal): Promise<Tensor[]> {
  const d = p.forgetSet.image[0] * p.forgetSet.image[1] * p.forgetSet.image[2];
  const nt = Math.min(c.fisherTimesteps, p.sched.T);
  const count = Math.min(c.fisherSamples, replay.y.length);
  async function* batches(): AsyncIterable<NoisedBatch> {
    for (let s = 0; s < count; s++) {
      const j = gen.cpuInt(replay.y.length);
      const x0 = new Float32Array(nt * d);
      for (let k = 0; k < nt; k++) x0.set(replay.x.subarray(j * d, (j + 1) * d), k * d);
      const t = Int32Array.from({ length: nt }, (_, k) => Math.floor(((k + 0.5) * p.sched.T) / nt));
      const noise = gaussian(gen, nt * d);
      yield { shape: [nt, ...p.forgetSet.image], xt: qSample(p.sched, x0, t, noise), noise, t, y: new Int32Array(nt).fill(replay.y[j]!) };
    }
  }
  return inEvalMode(model, async () => {
    const params = model.trainableParameters();
    const { sums } = await clippedGradientSum(p, model, params, batches(), (raw) => sum(p.perSampleLoss(model, p.upload(raw))), null, (acc, g) => add(acc, mulScalar(square(g), 1 / count)), null, signal);
    return sums;
  });
}

// ------------------------------------------------------------------------------------------------
// Running a method

export interface DiffusionUnlearnSetup {
  problem: DiffusionProblem;
  /** The model to unlearn, in place (a clone of the original). */
  model: EpsModel;
  /** The frozen original θ₀ (SA's replay and anchor). */
  original: EpsModel;
  progress?: (phase: string, done: number, total: number) => void;
  onStep?: StepHook;
  signal?: AbortSignal;
}

export interface DiffusionUnlearnResult {
  method: DiffusionMethodName;
  /** wall-clock milliseconds, masks / replay / Fisher included */
  ms: number;
  /** iterations (the paper's "steps") */
  iterations: number;
  /** optimizer updates (SFR-on: a forget and a remain update per iteration) */
  updates: number;
  maskDensity?: number;
}

/** Run one diffusion unlearning method on `u.model` in place. */
export async function runDiffusionUnlearning(config: DiffusionMethodConfig, u: DiffusionUnlearnSetup): Promise<DiffusionUnlearnResult> {
  checkDiffusionMethod(config);
  const t0 = performance.now();
  const p = u.problem;
  const { ctx } = p;
  const model = u.model;
  const params = model.trainableParameters();
  const opt = makeOptimizer({ kind: 'adam', lr: config.lr }, params);
  const stepper = new Stepper(ctx, opt, params, config.method, u.onStep, u.signal);
  const tctx: TermContext = { ctx, original: u.original, alpha: 1 };
  const wasTraining = u.original.training;
  u.original.eval();
  let mask: SaliencyMask | null = null;
  const extra: Tensor[] = [];
  const its: AsyncGenerator<NoisedBatch>[] = [];
  const next = async (it: AsyncGenerator<NoisedBatch>) => (await it.next()).value as NoisedBatch;
  try {
    if (config.method === 'SFR-on') {
      const c = config;
      if (c.gamma !== null) mask = await diffusionFisherMask(p, model, c, u.signal);
      const forgetTerm = adaptiveAscent(p, c.lambda);
      const remainTerm = meanLoss(p);
      const forgetIt = cycle(p.forget);
      const remainIt = cycle(p.remain);
      its.push(forgetIt, remainIt);
      model.train();
      for (let s = 0; s < c.iterations; s++) {
        if (s % c.forgetFreq === 0) {
          // fast step: −α_s Σ wᵢ lᵢ on the forget class, masked, clipped
          tctx.alpha = c.alpha0 * decayFactor(c.alphaSchedule, s, c.iterations);
          const raw = await next(forgetIt);
          stepper.step(() => forgetTerm(model, p.upload(raw), tctx), { mask, clip: c.clip });
        }
        // slow step at the post-forget weights: the ordinary loss on the kept classes, clipped
        const raw = await next(remainIt);
        stepper.step(() => remainTerm(model, p.upload(raw), tctx), { clip: c.clip });
        await stepper.drain();
        u.progress?.('SFR-on', s + 1, c.iterations);
      }
    } else if (config.method === 'SalUn') {
      const c = config;
      mask = await diffusionSalunMask(p, model, c, u.signal);
      const forgetIt = cycle(p.plain('forget'));
      const remainIt = cycle(p.remain);
      its.push(forgetIt, remainIt);
      model.train();
      for (let s = 0; s < c.iterations; s++) {
        const rawR = await next(remainIt);
        const rawF = await next(forgetIt);
        stepper.step(
          () => add(mulScalar(relabelNoiseLoss(p, model, rawF), c.forgetAlpha), mulScalar(mean(p.perSampleLoss(model, p.upload(rawR))), c.remainAlpha)),
          { mask, clip: c.clip },
        );
        await stepper.drain();
        u.progress?.('SalUn', s + 1, c.iterations);
      }
    } else {
      const c = config;
      const gen = new Generator(p.seed + 17);
      const image = p.forgetSet.image;
      const d = image[0] * image[1] * image[2];
      // generative replay of the kept classes from the frozen original
      const kept = Array.from({ length: p.numClasses }, (_, k) => k).filter((k) => k !== p.forgetClass);
      const replayY = Int32Array.from(kept.flatMap((k) => new Array<number>(c.replayPerClass).fill(k)));
      const replayX = await sampleImages(ctx, u.original, p.sched, {
        classes: replayY, seed0: p.seed * 7919 + 1, image, numClasses: p.numClasses, steps: c.replaySteps, guidance: c.guidance, signal: u.signal,
        progress: (dn, tot) => u.progress?.('SA replay', dn, tot),
      });
      // the Fisher at θ₀: the model still holds the original's weights here
      const fisher = await replayFisher(p, model, { x: replayX, y: replayY }, c, gen, u.signal);
      extra.push(...fisher);
      const originalByName = new Map(u.original.namedParameters());
      const anchor = model.namedParameters().filter(([, q]) => q.requiresGrad).map(([name]) => {
        const a = originalByName.get(name);
        if (!a) throw new EngineError('SA', `the original has no parameter '${name}'`);
        return a;
      });
      model.train();
      for (let s = 0; s < c.iterations; s++) {
        const n = p.batchSize;
        // surrogate forget data: uniform noise in [−1, 1] labelled as the forgotten class; replay batch; shared t
        const xf = new Float32Array(n * d);
        for (let i = 0; i < xf.length; i++) xf[i] = gen.cpuUniform() * 2 - 1;
        const t = new Int32Array(n);
        const half = Math.floor(n / 2) + 1;
        for (let i = 0; i < Math.min(half, n); i++) t[i] = gen.cpuInt(p.sched.T);
        for (let i = half; i < n; i++) t[i] = p.sched.T - 1 - t[i - half]!;
        const xr = new Float32Array(n * d);
        const yr = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const j = gen.cpuInt(replayY.length);
          xr.set(replayX.subarray(j * d, (j + 1) * d), i * d);
          yr[i] = replayY[j]!;
        }
        const nf = gaussian(gen, n * d);
        const nr = gaussian(gen, n * d);
        const shape: [number, number, number, number] = [n, image[0], image[1], image[2]];
        const rawF: NoisedBatch = { shape, xt: qSample(p.sched, xf, t, nf), noise: nf, t, y: new Int32Array(n).fill(p.forgetClass) };
        const rawR: NoisedBatch = { shape, xt: qSample(p.sched, xr, t, nr), noise: nr, t, y: yr };
        stepper.step(
          () =>
            add(
              add(mean(p.perSampleLoss(model, p.upload(rawF))), mulScalar(mean(p.perSampleLoss(model, p.upload(rawR))), c.replayWeight)),
              ewcPenalty(params, fisher, anchor, c.ewcLambda),
            ),
          { clip: c.clip },
        );
        await stepper.drain();
        u.progress?.('SA', s + 1, c.iterations);
      }
    }
    await stepper.drain(true);
    const density = mask ? await maskDensity(mask) : undefined;
    return { method: config.method, ms: performance.now() - t0, iterations: config.iterations, updates: stepper.steps, maskDensity: density };
  } finally {
    for (const it of its) await it.return(undefined);
    stepper.dispose();
    disposeMask(mask);
    extra.forEach((t) => t.dispose());
    opt.dispose();
    model.train();
    u.original.train(wasTraining);
  }
}
