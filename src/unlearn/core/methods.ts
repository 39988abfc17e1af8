// The method registry (spec §2-§4): each gradient-based unlearning method as a composition of a
// saliency mask, a forgetting term, a remaining term and an update rule, written to read like its
// algorithm box; its config type, presets' shape, validation (unknown keys, wrong types, ranges) and
// row label. Task-generic: every term comes from the task's per-sample loss or its TaskTerms.
// It does not evaluate or orchestrate experiments (experiment.ts), and holds no dataset's presets
// (those live with the task, e.g. ../classification/presets.ts).

import type { AnyModule } from '../../nn/module.js';
import { EngineError } from '../../util/errors.js';
import { add, mulScalar, neg } from '../../ops/index.js';
import { disposeMask, fisherRatioMask, maskDensity, salunMask, type SaliencyMask } from './masks.js';
import { adaptiveAscent, ascentLoss, meanLoss } from './terms.js';
import { DECAYS, Stepper, makeOptimizer, runEpochRule, runFastSlowRule, type Decay, type OptimizerSpec, type Phase, type RuleProgress, type StepHook } from './update.js';
import type { TaskTerms, Term, TermContext, UnlearnProblem } from './task.js';

// ------------------------------------------------------------------------------------------------
// Configs

/** The baselines' shared options: an optimizer, epochs, a per-epoch lr schedule, an optional clip. */
export interface EpochMethodOptions {
  optimizer: OptimizerSpec;
  epochs: number;
  lrSchedule: Decay;
  /** global grad-norm clip of every step (GA: 0.1); null = none */
  clip?: number | null;
  /** row label (default: the method's name, see methodLabel) */
  label?: string;
}

/** SFR-on's options (spec §3), with the three ablations as single switches. */
export interface SfrOnOptions {
  optimizer: OptimizerSpec;
  iterations: number;
  forgetFreq: number;
  alpha0: number;
  alphaSchedule: Decay;
  lrSchedule: Decay;
  /** gradient-norm clip of the forget steps only */
  maxNorm: number | null;
  /** adaptive-weight temperature λ (0 = plain ascent on the mean: the "no adaptive weights" ablation) */
  lambda: number;
  /** Fisher-ratio threshold γ; null = no mask (the "M = 1" ablation) */
  gamma: number | null;
  /** slow-weight averaging β (1 = off, the authors' default) */
  beta: number;
  /** false = forget and remain gradients summed into one Euclidean step (the "joint" ablation) */
  alternate: boolean;
  /** masked weights truly frozen in the forget step (no decay, no momentum drift); remain steps move all */
  strictMask: boolean;
  label?: string;
}

export type MethodConfig =
  | ({ method: 'FT' } & EpochMethodOptions)
  | ({ method: 'GA' } & EpochMethodOptions)
  | ({ method: 'RL' } & EpochMethodOptions)
  | ({ method: 'SalUn'; threshold: number } & EpochMethodOptions)
  | ({ method: 'BT'; tau: number } & EpochMethodOptions)
  | ({ method: 'SCRUB'; msteps: number; T: number; gamma: number; alpha: number } & EpochMethodOptions)
  | ({ method: 'SFR-on' } & SfrOnOptions);

export type MethodName = MethodConfig['method'];
export type SfrOnConfig = Extract<MethodConfig, { method: 'SFR-on' }>;

/** A full set of defaults, one config per method (a dataset's presets). */
export type Presets = { [K in MethodName]: Extract<MethodConfig, { method: K }> };

/** What each method needs from the task besides per-sample losses. */
export const METHODS: Record<MethodName, { summary: string; mixed: boolean; terms: (keyof TaskTerms<unknown>)[] }> = {
  'SFR-on': { summary: 'Fisher-ratio mask, adaptive weighted ascent, fast-slow remain-geometry steps', mixed: false, terms: [] },
  FT: { summary: 'fine-tune on D_r', mixed: false, terms: [] },
  GA: { summary: 'gradient ascent on D_f (eval mode, clipped)', mixed: false, terms: [] },
  RL: { summary: 'random labels on D_f, trained with D_r', mixed: true, terms: ['relabel'] },
  SalUn: { summary: 'RL with a top-k gradient saliency mask', mixed: true, terms: ['relabel'] },
  BT: { summary: 'bad-teacher distillation on D_f ∪ D_r', mixed: true, terms: ['badTeacher'] },
  SCRUB: { summary: 'max-min distillation from the original', mixed: false, terms: ['distill'] },
};
export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

/** Throws when the task cannot run the method (a missing term or mixed source), before any work. */
export function checkSupported(config: MethodConfig, p: UnlearnProblem<unknown, unknown>): void {
  const need = METHODS[config.method];
  if (!need) throw new EngineError('unlearn', `unknown method '${String(config.method)}' (known: ${METHOD_NAMES.join(', ')})`);
  const missing = need.terms.filter((t) => !p.terms[t]);
  if (need.mixed && !p.mixed) missing.push('mixed' as never);
  if (missing.length) throw new EngineError('unlearn', `${config.method} needs ${missing.join(', ')} from the task, which does not provide ${missing.length > 1 ? 'them' : 'it'}`);
}

/** A row label that names the method and any non-default SFR-on ablation, e.g. "SFR-on (λ=0)". */
export function methodLabel(mc: MethodConfig): string {
  if (mc.label) return mc.label;
  if (mc.method !== 'SFR-on') return mc.method;
  const bits: string[] = [];
  if (mc.gamma === null) bits.push('no mask');
  if (mc.lambda !== 0.5) bits.push(`λ=${mc.lambda}`);
  if (!mc.alternate) bits.push('joint');
  if (mc.strictMask) bits.push('strict');
  if (mc.beta !== 1) bits.push(`β=${mc.beta}`);
  return bits.length ? `SFR-on (${bits.join(', ')})` : 'SFR-on';
}

// ------------------------------------------------------------------------------------------------
// Validation

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Keys every config may carry whatever its preset holds, with their types. */
const OPTIONAL_KEYS: Record<string, string[]> = { label: ['string'], clip: ['number', 'null'] };
/** Keys whose value may be null or a number. */
const NULLABLE = new Set(['gamma', 'maxNorm', 'clip']);

/**
 * A method config from a preset name or an object overriding a preset's fields (`where` names it in
 * errors, e.g. "methods[2]"). Every key must exist in the preset (or be `label`/`clip`) with the
 * preset's type; values are range-checked. Throws an EngineError listing every problem.
 */
export function resolveMethod(raw: unknown, presets: Presets, where: string): MethodConfig {
  const op = 'config';
  const name = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null ? (raw as { method?: unknown }).method : undefined;
  if (typeof name !== 'string' || !(name in presets))
    throw new EngineError(op, `${where}: unknown method ${JSON.stringify(name)} (known: ${METHOD_NAMES.join(', ')})`);
  const preset = presets[name as MethodName] as unknown as Record<string, unknown>;
  if (typeof raw === 'string') return structuredClone(preset) as unknown as MethodConfig;
  const problems: string[] = [];
  const out: Record<string, unknown> = structuredClone(preset);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'method') continue;
    const want = k in preset ? [typeName(preset[k])] : OPTIONAL_KEYS[k];
    if (!want) {
      problems.push(`${where}.${k}: unknown key for ${name} (allowed: ${[...new Set([...Object.keys(preset).filter((x) => x !== 'method'), ...Object.keys(OPTIONAL_KEYS)])].join(', ')})`);
      continue;
    }
    const types = NULLABLE.has(k) ? ['number', 'null'] : want;
    if (!types.includes(typeName(v))) {
      problems.push(`${where}.${k}: expected ${types.join(' or ')}, got ${typeName(v)} ${JSON.stringify(v)}`);
      continue;
    }
    if (k === 'optimizer') {
      const o = v as Record<string, unknown>;
      for (const [ok, ov] of Object.entries(o)) {
        const type = ok === 'kind' ? 'string' : ok === 'noDecay' ? 'boolean' : 'number';
        if (!['kind', 'lr', 'momentum', 'weightDecay', 'noDecay'].includes(ok)) problems.push(`${where}.optimizer.${ok}: unknown key (allowed: kind, lr, momentum, weightDecay, noDecay)`);
        else if (typeof ov !== type) problems.push(`${where}.optimizer.${ok}: expected ${type}, got ${JSON.stringify(ov)}`);
      }
      // a new optimizer kind starts from nothing but the preset's lr (momentum belongs to SGD)
      const base = preset.optimizer as OptimizerSpec;
      out.optimizer = o.kind === undefined || o.kind === base.kind ? { ...base, ...o } : { lr: base.lr, ...o };
      continue;
    }
    out[k] = v;
  }
  if (problems.length) throw new EngineError(op, problems.join('; '));
  const mc = out as unknown as MethodConfig;
  checkMethodConfig(mc, where);
  return mc;
}

/** Range checks of a complete method config (EngineError naming each bad field). */
export function checkMethodConfig(mc: MethodConfig, where: string = mc.method): void {
  const problems: string[] = [];
  const num = (k: string, v: unknown, ok: (x: number) => boolean, what: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) problems.push(`${where}.${k} = ${JSON.stringify(v)} must be ${what}`);
  };
  const posInt = (x: number) => Number.isInteger(x) && x > 0;
  const o = mc.optimizer;
  if (!['sgd', 'adam', 'adamw'].includes(o.kind)) problems.push(`${where}.optimizer.kind = ${JSON.stringify(o.kind)} must be sgd, adam or adamw`);
  num('optimizer.lr', o.lr, (x) => x >= 0, 'a non-negative number');
  if (o.momentum !== undefined) num('optimizer.momentum', o.momentum, (x) => x >= 0, 'a non-negative number');
  if (o.weightDecay !== undefined) num('optimizer.weightDecay', o.weightDecay, (x) => x >= 0, 'a non-negative number');
  if (o.momentum && o.kind !== 'sgd') problems.push(`${where}.optimizer.momentum is an SGD option; ${o.kind} has none`);
  if (!DECAYS.includes(mc.lrSchedule)) problems.push(`${where}.lrSchedule = ${JSON.stringify(mc.lrSchedule)} must be one of ${DECAYS.join(', ')}`);
  if (mc.method === 'SFR-on') {
    num('iterations', mc.iterations, posInt, 'a positive integer');
    num('forgetFreq', mc.forgetFreq, posInt, 'a positive integer');
    num('alpha0', mc.alpha0, (x) => x >= 0, 'a non-negative number');
    num('lambda', mc.lambda, (x) => x >= 0, 'a non-negative number');
    num('beta', mc.beta, (x) => x >= 0 && x <= 1, 'in [0, 1]');
    if (mc.gamma !== null) num('gamma', mc.gamma, (x) => x >= 0, 'a non-negative number or null');
    if (mc.maxNorm !== null) num('maxNorm', mc.maxNorm, (x) => x > 0, 'a positive number or null');
    if (!DECAYS.includes(mc.alphaSchedule)) problems.push(`${where}.alphaSchedule = ${JSON.stringify(mc.alphaSchedule)} must be one of ${DECAYS.join(', ')}`);
    if (!mc.alternate && mc.strictMask) problems.push(`${where}: strictMask freezes weights in the forget step, and the joint ablation (alternate: false) has none`);
  } else {
    num('epochs', mc.epochs, posInt, 'a positive integer');
    if (mc.clip != null) num('clip', mc.clip, (x) => x > 0, 'a positive number or null');
    if (mc.method === 'SalUn') num('threshold', mc.threshold, (x) => x > 0 && x <= 1, 'in (0, 1]');
    if (mc.method === 'BT') num('tau', mc.tau, (x) => x > 0, 'positive');
    if (mc.method === 'SCRUB') {
      num('msteps', mc.msteps, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
      num('T', mc.T, (x) => x > 0, 'positive');
      num('gamma', mc.gamma, (x) => x >= 0, 'a non-negative number');
      num('alpha', mc.alpha, (x) => x >= 0, 'a non-negative number');
    }
  }
  if (problems.length) throw new EngineError('config', problems.join('; '));
}

// ------------------------------------------------------------------------------------------------
// Running a method

export interface UnlearnSetup<R, B> {
  problem: UnlearnProblem<R, B>;
  /** The model to unlearn, modified in place (a clone of the original); left in train mode. */
  model: AnyModule;
  /** The original θ₀ (teacher of BT / SCRUB): never modified; used in eval mode, its mode restored. */
  original: AnyModule;
  /** A freshly initialised model of the same architecture (BT's bad teacher); called once by BT. */
  makeFreshModel?: () => AnyModule;
  progress?: RuleProgress;
  /** Called after each optimizer step with its number. */
  onStep?: StepHook;
  /** Stops the method at the next step with an AbortError. */
  signal?: AbortSignal;
  /** Hand the saliency mask to the caller in the result (who then disposes it). */
  keepMask?: boolean;
}

export interface UnlearnResult {
  method: MethodName;
  /** wall-clock milliseconds of the whole call, mask computation included (RTE) */
  ms: number;
  steps: number;
  /** share of weights the mask lets move (SalUn, SFR-on with a mask) */
  maskDensity?: number;
  /** the mask itself, with keepMask */
  mask?: SaliencyMask;
}

/** Run one unlearning method on `setup.model` in place. */
export async function runUnlearning<R, B>(config: MethodConfig, u: UnlearnSetup<R, B>): Promise<UnlearnResult> {
  checkMethodConfig(config);
  checkSupported(config, u.problem as UnlearnProblem<unknown, unknown>);
  const t0 = performance.now();
  const p = u.problem;
  const { ctx } = p;
  const model = u.model;
  const originalWasTraining = u.original.training;
  u.original.eval();
  model.train();
  const params = model.trainableParameters();
  const tctx: TermContext = { ctx, original: u.original, alpha: 1 };
  const maskProgress = (phase: string, d: number, n: number) => u.progress?.(phase, d, n);
  let mask: SaliencyMask | null = null;
  let badTeacher: AnyModule | undefined;
  const opt = makeOptimizer(config.optimizer, params, model);
  const stepper = new Stepper(ctx, opt, params, config.method, u.onStep, u.signal);
  try {
    if (config.method === 'SFR-on') {
      // Algorithm 1: M from the forget/remain Fisher ratio, then fast (forget) / slow (remain) steps
      const c = config;
      if (c.gamma !== null) mask = await fisherRatioMask(p, model, c.gamma, maskProgress, u.signal);
      await runFastSlowRule(
        p,
        model,
        stepper,
        tctx,
        {
          ...c,
          lr0: c.optimizer.lr,
          forgetTerm: adaptiveAscent(p, c.lambda),
          remainTerm: meanLoss(p),
          mask,
        },
        u.progress,
      );
    } else {
      const c = config;
      const terms = p.terms as TaskTerms<B>;
      let phases: (e: number) => Phase<R, B>[];
      switch (c.method) {
        case 'FT': // descent on D_r
          phases = () => [{ name: 'FT', source: p.remain, term: meanLoss(p), mode: 'train', clip: c.clip }];
          break;
        case 'GA': // ascent on D_f, batch norm frozen
          phases = () => [{ name: 'GA', source: p.forget, term: ascentLoss(p), mode: 'eval', clip: c.clip }];
          break;
        case 'RL': // random labels on D_f together with D_r
          phases = () => [{ name: 'RL', source: p.mixed!, term: terms.relabel, mode: 'train', clip: c.clip }];
          break;
        case 'SalUn': // RL with the top-k saliency mask on every gradient
          mask = await salunMask(p, model, c.threshold, maskProgress, u.signal);
          phases = () => [{ name: 'SalUn', source: p.mixed!, term: terms.relabel, mode: 'train', mask, clip: c.clip }];
          break;
        case 'BT': {
          // distil from the original on D_r and from a fresh model on D_f
          if (!u.makeFreshModel) throw new EngineError('BT', 'needs makeFreshModel for its bad teacher');
          badTeacher = u.makeFreshModel().freeze().eval();
          tctx.badTeacher = badTeacher;
          const term = terms.badTeacher(c.tau);
          phases = () => [{ name: 'BT', source: p.mixed!, term, mode: 'train', clip: c.clip }];
          break;
        }
        case 'SCRUB': {
          // epochs e < msteps: max step on D_f (−KD); every epoch: min step on D_r (γ·L + α·KD)
          const kd = terms.distill(c.T);
          const task = meanLoss(p);
          const maxTerm: Term<B> = (m, b, t) => neg(kd(m, b, t));
          const minTerm: Term<B> = (m, b, t) => add(mulScalar(task(m, b, t), c.gamma), mulScalar(kd(m, b, t), c.alpha));
          phases = (e) => [
            ...(e < c.msteps ? [{ name: 'SCRUB max', source: p.forget, term: maxTerm, mode: 'train' as const, clip: c.clip }] : []),
            { name: 'SCRUB min', source: p.remain, term: minTerm, mode: 'train' as const, clip: c.clip },
          ];
          break;
        }
      }
      await runEpochRule(p, model, stepper, tctx, { epochs: c.epochs, lr0: c.optimizer.lr, schedule: c.lrSchedule, phases }, u.progress);
    }
    const density = mask ? await maskDensity(mask) : undefined;
    const res: UnlearnResult = { method: config.method, ms: performance.now() - t0, steps: stepper.steps, maskDensity: density };
    if (u.keepMask && mask) {
      res.mask = mask;
      mask = null;
    }
    return res;
  } finally {
    stepper.dispose();
    disposeMask(mask);
    badTeacher?.dispose();
    opt.dispose();
    model.train();
    u.original.train(originalWasTraining);
  }
}
