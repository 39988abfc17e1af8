// Optimizers over leaf tensors with PyTorch's semantics (torch.optim.SGD, Adam, AdamW), each step one
// fused kernel per parameter, state kept on the GPU outside scopes; parameter groups (per-group lr
// multiplier and weight decay, e.g. AdamW without decay on norms and biases); per-parameter strict
// update masks; checkpointable state in one record format; clipGradNorm on the GPU without a
// read-back; maskGradients (g ⊙= m, a saliency mask's gradient side). No nesterov/dampening/amsgrad,
// no sparse gradients, no per-group betas or momentum.

import { Tensor } from '../autograd/tensor.js';
import { view } from '../autograd/graph.js';
import { sameShape, shapeStr } from '../autograd/shape.js';
import { optimizerUpdate, clipScale, type UpdateRule } from '../wgsl/optim.js';
import { abs, add, maximum, mul, powScalar, sqrt, square } from '../wgsl/elementwise.js';
import { max, sum } from '../wgsl/reduce.js';
import { zeros } from '../wgsl/fill.js';
import { tensorsToRecord, FLOAT_FILE } from '../io/state.js';
import { toFloat32, type SafetensorsFile, type SafetensorsTensor } from '../io/safetensors.js';
import { EngineError } from '../util/errors.js';
import type { AnyModule } from './module.js';

/** A set of parameters with its own hyperparameters (torch's param_groups, lr as a multiplier). */
export interface ParamGroup {
  params: Tensor[];
  /** This group's lr is the optimizer's lr (as the schedule sets it) times lrScale (default 1). */
  lrScale?: number;
  /** Replaces the optimizer's weightDecay for this group (default: the optimizer's). */
  weightDecay?: number;
  /** Shown in error messages (default 'group <k>'). */
  name?: string;
}

/** A group as the optimizer holds it: defaults filled in, except weightDecay (undefined: the optimizer's). */
export interface ResolvedParamGroup {
  name: string;
  params: readonly Tensor[];
  lrScale: number;
  weightDecay: number | undefined;
}

/** What stateDict() returns and loadStateDict() accepts. */
export interface OptimizerStateDict {
  /** Number of step() calls so far. */
  step: number;
  /** Learning rate at the time of saving (restored by loadStateDict when present). */
  lr?: number;
  /** Per-parameter step counts (torch's `state.<i>.step`); 0 = the parameter has no state yet. */
  paramSteps: number[];
  /**
   * State tensors named `state.<i>.<name>` (`momentum_buffer`; `exp_avg`, `exp_avg_sq`). stateDict()
   * returns the optimizer's live tensors: read or copy them, do not dispose them.
   */
  tensors: Map<string, Tensor> | Record<string, Tensor>;
}

/**
 * Base of every optimizer: owns per-parameter state tensors, step counts and update masks.
 * Subclasses give the state names and the update of one parameter.
 */
export abstract class Optimizer {
  /** Every parameter, group after group (state indices `state.<i>` count in this order). */
  readonly params: readonly Tensor[];
  readonly groups: readonly ResolvedParamGroup[];
  /** Number of step() calls so far. */
  stepCount = 0;
  /** Group index of each parameter. */
  private readonly groupOf: number[];
  protected paramSteps: number[];
  protected state: (Tensor[] | null)[];
  protected masks: (Tensor | null)[];
  private _lr: number;

  constructor(
    paramsOrGroups: Tensor[] | ParamGroup[],
    lr: number,
    /** Name used in error messages. */
    readonly opName: string,
  ) {
    const groups = resolveGroups(opName, paramsOrGroups);
    const params = groups.flatMap((g) => [...g.params]);
    if (params.length === 0) throw new EngineError(opName, 'needs a non-empty array of parameters');
    const seen = new Set<Tensor>();
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new EngineError(opName, `parameter ${i} is not a Tensor`);
      if (!p.requiresGrad) throw new EngineError(opName, `parameter ${i} (${p.describe()}) does not require grad`);
      if (p.node) throw new EngineError(opName, `parameter ${i} (${p.describe()}) is not a leaf (it was produced by ${p.node.op})`);
      if (p.dtype !== 'f32') throw new EngineError(opName, `parameter ${i} is ${p.describe()}; optimizers update f32`);
      if (p.ctx !== params[0]!.ctx) throw new EngineError(opName, `parameter ${i} lives on another GPU context`);
      if (seen.has(p)) throw new EngineError(opName, `parameter ${i} (${p.describe()}) appears twice`);
      seen.add(p);
    });
    this.params = params;
    this.groups = groups;
    this.groupOf = groups.flatMap((g, k) => g.params.map(() => k));
    this._lr = checkLr(opName, lr);
    this.paramSteps = params.map(() => 0);
    this.state = params.map(() => null);
    this.masks = params.map(() => null);
  }

  /** Names of the per-parameter state tensors, in kernel binding order. */
  protected abstract readonly stateNames: readonly string[];
  /** Record the update of parameter `i` (its step count already incremented to `t`). */
  protected abstract update(i: number, grad: Tensor, first: boolean, t: number): void;

  get lr(): number {
    return this._lr;
  }
  set lr(v: number) {
    this._lr = checkLr(this.opName, v);
  }

  /** Learning rate of parameter `i`: lr times its group's lrScale. */
  protected lrOf(i: number): number {
    return this._lr * this.groups[this.groupOf[i]!]!.lrScale;
  }

  /** Weight decay of parameter `i`: its group's, else the optimizer's `base`. */
  protected weightDecayOf(i: number, base: number): number {
    return this.groups[this.groupOf[i]!]!.weightDecay ?? base;
  }

  /** Update every parameter that has a gradient (those with grad === null are skipped, as in torch). */
  step(): void {
    this.params.forEach((p, i) => {
      if (p.disposed) throw new EngineError(this.opName, `parameter ${i} (${p.describe()}) was disposed`);
      const g = p.grad;
      if (!g) return;
      if (!sameShape(g.shape, p.shape))
        throw new EngineError(this.opName, `gradient ${g.describe()} of parameter ${i} does not match ${p.describe()}`);
      const first = this.paramSteps[i] === 0;
      if (first && this.stateNames.length) this.state[i] = this.stateNames.map(() => p.ctx.keep(new Tensor(p.ctx, p.shape, 'f32')));
      this.paramSteps[i]!++;
      this.update(i, g, first, this.paramSteps[i]!);
    });
    this.stepCount++;
  }

  /** Dispose every parameter's gradient and set it to null (torch's set_to_none). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Restrict the updates of `param` to where `mask` (f32, the parameter's shape) is nonzero; where
   * it is 0 the parameter and its optimizer state stay bit-identical across steps. `null` removes
   * the mask. The optimizer holds its own view of the mask's storage (disposing yours is fine).
   */
  setUpdateMask(param: Tensor, mask: Tensor | null): void {
    const i = this.indexOf(param, 'setUpdateMask');
    if (mask) {
      if (mask.dtype !== 'f32') throw new EngineError('setUpdateMask', `mask is ${mask.describe()}; expected f32`);
      if (!sameShape(mask.shape, param.shape))
        throw new EngineError('setUpdateMask', `mask ${mask.describe()} does not match parameter ${i} ${param.describe()}`);
    }
    this.masks[i]?.dispose();
    this.masks[i] = mask ? param.ctx.keep(view(mask)) : null;
  }

  protected maskOf(i: number): Tensor | null {
    return this.masks[i] ?? null;
  }

  protected stateOf(i: number): Tensor[] {
    return this.state[i] ?? [];
  }

  private indexOf(param: Tensor, op: string): number {
    const i = this.params.indexOf(param);
    if (i < 0) throw new EngineError(op, `${param.describe()} is not one of this optimizer's parameters`);
    return i;
  }

  /** The optimizer's state (live tensors, see OptimizerStateDict.tensors). */
  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((s, i) => s?.forEach((t, k) => tensors.set(`state.${i}.${this.stateNames[k]}`, t)));
    return { step: this.stepCount, lr: this._lr, paramSteps: [...this.paramSteps], tensors };
  }

  /**
   * Replace the state with copies of `sd`'s tensors (recorded GPU copies, no read-back). Checks
   * that every expected tensor is there with the parameter's shape and that none is unexpected;
   * reports all problems by name in one error.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const op = `${this.opName}.loadStateDict`;
    const problems = this.checkStateDict(sd);
    if (problems.length) throw new EngineError(op, problems.join('; '));
    const given = sd.tensors instanceof Map ? sd.tensors : new Map(Object.entries(sd.tensors));
    const ctx = this.params[0]!.ctx;
    // copies first, then the old state freed: `sd` may hold this optimizer's own live tensors
    const next = sd.paramSteps.map((t, i) => {
      if (t === 0 || this.stateNames.length === 0) return null;
      const p = this.params[i]!;
      return this.stateNames.map((name) => {
        const src = given.get(`state.${i}.${name}`)!;
        const dst = ctx.keep(new Tensor(ctx, p.shape, 'f32'));
        ctx.copyBuffer(src.buffer(op), 0, dst.buffer(op), 0, dst.bytes);
        return dst;
      });
    });
    this.state.forEach((s) => s?.forEach((t) => t.dispose()));
    this.state = next;
    this.paramSteps = [...sd.paramSteps];
    this.stepCount = sd.step;
    if (sd.lr !== undefined) this.lr = sd.lr;
  }

  /**
   * Every reason loadStateDict(sd) would reject `sd` (wrong paramSteps, missing, unexpected or
   * mis-shaped state tensors), without changing anything; empty when it would load.
   */
  checkStateDict(sd: OptimizerStateDict): string[] {
    const given = sd.tensors instanceof Map ? sd.tensors : new Map(Object.entries(sd.tensors));
    if (!Array.isArray(sd.paramSteps) || sd.paramSteps.length !== this.params.length)
      return [`paramSteps has ${sd.paramSteps?.length} entries for ${this.params.length} parameters`];
    const problems: string[] = [];
    if (!(Number.isInteger(sd.step) && sd.step >= 0)) problems.push(`step = ${sd.step} is not a step count`);
    if (sd.lr !== undefined && !(Number.isFinite(sd.lr) && sd.lr >= 0)) problems.push(`lr = ${sd.lr} is not a learning rate`);
    const used = new Set<string>();
    sd.paramSteps.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0) problems.push(`paramSteps[${i}] = ${t} is not a step count`);
      if (!(t > 0)) return;
      for (const name of this.stateNames) {
        const key = `state.${i}.${name}`;
        const src = given.get(key);
        used.add(key);
        if (!src) problems.push(`missing ${key}`);
        else if (src.dtype !== 'f32' || !sameShape(src.shape, this.params[i]!.shape))
          problems.push(`${key} is ${src.describe()}, expected f32${shapeStr(this.params[i]!.shape)}`);
      }
    });
    for (const key of given.keys()) if (!used.has(key)) problems.push(`unexpected ${key}`);
    return problems;
  }

  /** Free the state tensors and masks (not the parameters). */
  dispose(): void {
    for (const s of this.state) s?.forEach((t) => t.dispose());
    for (const m of this.masks) m?.dispose();
    this.state = this.params.map(() => null);
    this.masks = this.params.map(() => null);
  }
}

function resolveGroups(op: string, given: Tensor[] | ParamGroup[]): ResolvedParamGroup[] {
  if (!Array.isArray(given)) throw new EngineError(op, 'needs an array of parameters or of parameter groups');
  const isGroup = (x: unknown) => typeof x === 'object' && x !== null && !(x instanceof Tensor) && Array.isArray((x as ParamGroup).params);
  if (given.length === 0 || !isGroup(given[0])) {
    const bad = given.findIndex((x) => isGroup(x));
    if (bad >= 0) throw new EngineError(op, `entry ${bad} is a parameter group but entry 0 is not: pass tensors or groups, not both`);
    return [{ name: 'group 0', params: given as Tensor[], lrScale: 1, weightDecay: undefined }];
  }
  return (given as ParamGroup[]).map((g, k) => {
    const name = g.name ?? `group ${k}`;
    if (!isGroup(g)) throw new EngineError(op, `entry ${k} is not a parameter group ({ params: Tensor[], ... })`);
    const lrScale = g.lrScale ?? 1;
    if (!(Number.isFinite(lrScale) && lrScale >= 0)) throw new EngineError(op, `${name}: invalid lrScale ${g.lrScale}`);
    if (g.weightDecay !== undefined && !(Number.isFinite(g.weightDecay) && g.weightDecay >= 0))
      throw new EngineError(op, `${name}: invalid weightDecay ${g.weightDecay}`);
    return { name, params: [...g.params], lrScale, weightDecay: g.weightDecay };
  });
}

/**
 * The usual no-decay rule for AdamW (as in GPT-2/DiT training code): parameters of rank < 2 (biases,
 * norm weights and shifts) and position tables (names containing `pos_emb`, `pos_embed`,
 * `position_embedding`, ...).
 */
export function defaultNoDecay(name: string, p: Tensor): boolean {
  return p.rank < 2 || /(^|[._])pos(ition)?[._]?emb/i.test(name);
}

/**
 * Split a module's trainable parameters into two groups by rule: `decay` (the optimizer's weight
 * decay) and `no_decay` (weightDecay 0), each in the module's parameter order; a group may be empty.
 * `noDecay(name, p)` gets the dotted parameter name (default: defaultNoDecay). Pass the result to
 * the optimizer: `new AdamW(paramGroups(model), { lr, weightDecay: 0.1 })`.
 */
export function paramGroups(model: AnyModule, opts: { noDecay?: (name: string, p: Tensor) => boolean; lrScale?: number } = {}): ParamGroup[] {
  const rule = opts.noDecay ?? defaultNoDecay;
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of model.namedParameters()) if (p.requiresGrad) (rule(name, p) ? noDecay : decay).push(p);
  const lrScale = opts.lrScale ?? 1;
  return [
    { name: 'decay', params: decay, lrScale },
    { name: 'no_decay', params: noDecay, lrScale, weightDecay: 0 },
  ];
}

function checkLr(op: string, lr: number): number {
  if (!(typeof lr === 'number' && Number.isFinite(lr) && lr >= 0)) throw new EngineError(op, `invalid learning rate ${lr}`);
  return lr;
}

function checkRange(op: string, name: string, v: number, lo: number, hi: number, hiOpen = false): number {
  if (!(typeof v === 'number' && v >= lo && (hiOpen ? v < hi : v <= hi)))
    throw new EngineError(op, `invalid ${name} ${v} (expected ${lo} <= ${name} ${hiOpen ? '<' : '<='} ${hi})`);
  return v;
}

export interface SGDOptions {
  lr: number;
  /** Momentum factor (default 0: plain SGD, no state). */
  momentum?: number;
  /** Coupled L2 penalty: g += weightDecay * p (default 0). */
  weightDecay?: number;
}

/**
 * torch.optim.SGD with dampening 0 and nesterov off:
 * g = grad + wd p; buf = g on the first step, else momentum buf + g; p -= lr buf.
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly weightDecay: number;
  protected readonly stateNames: readonly string[];

  constructor(params: Tensor[] | ParamGroup[], options: SGDOptions) {
    super(params, options.lr, 'SGD');
    this.momentum = checkRange('SGD', 'momentum', options.momentum ?? 0, 0, Infinity);
    this.weightDecay = checkRange('SGD', 'weightDecay', options.weightDecay ?? 0, 0, Infinity);
    this.stateNames = this.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  protected update(i: number, grad: Tensor, first: boolean): void {
    const rule: UpdateRule = this.momentum !== 0 ? 'sgd-momentum' : 'sgd';
    optimizerUpdate(rule, this.params[i]!, this.stateOf(i), grad, this.maskOf(i), {
      lr: this.lrOf(i),
      weightDecay: this.weightDecayOf(i, this.weightDecay),
      momentum: this.momentum,
      first,
    });
  }
}

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added outside the square root (default 1e-8). */
  eps?: number;
  /** Adam: coupled (g += wd p, default 0); AdamW: decoupled (p *= 1 - lr wd, default 1e-2). */
  weightDecay?: number;
}

/** torch.optim.Adam (amsgrad off): bias-corrected moments, eps outside the sqrt, coupled weight decay. */
export class Adam extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly stateNames = ['exp_avg', 'exp_avg_sq'] as const;
  private readonly rule: UpdateRule;

  constructor(params: Tensor[] | ParamGroup[], options: AdamOptions = {}) {
    // AdamW shares this class; the prototype chain already tells which one is being built
    const decoupled = new.target === AdamW || new.target.prototype instanceof AdamW;
    const name = decoupled ? 'AdamW' : 'Adam';
    super(params, options.lr ?? 1e-3, name);
    this.rule = decoupled ? 'adamw' : 'adam';
    const defaultWeightDecay = decoupled ? 1e-2 : 0;
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    this.betas = [checkRange(name, 'beta1', b1, 0, 1, true), checkRange(name, 'beta2', b2, 0, 1, true)];
    this.eps = checkRange(name, 'eps', options.eps ?? 1e-8, 0, Infinity);
    this.weightDecay = checkRange(name, 'weightDecay', options.weightDecay ?? defaultWeightDecay, 0, Infinity);
  }

  protected update(i: number, grad: Tensor, first: boolean, t: number): void {
    const [beta1, beta2] = this.betas;
    // bias corrections in float64 on the CPU from the step count (no read-back)
    const bc1 = 1 - Math.pow(beta1, t);
    const bc2 = 1 - Math.pow(beta2, t);
    const lr = this.lrOf(i);
    optimizerUpdate(this.rule, this.params[i]!, this.stateOf(i), grad, this.maskOf(i), {
      lr,
      weightDecay: this.weightDecayOf(i, this.weightDecay),
      first,
      stepSize: lr / bc1,
      bc2Sqrt: Math.sqrt(bc2),
      beta1,
      beta2,
      eps: this.eps,
    });
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay, p *= 1 - lr wd before the Adam step. */
export class AdamW extends Adam {}

/**
 * torch.nn.utils.clip_grad_norm_: the total `normType`-norm of all gradients (as if concatenated)
 * is computed on the GPU, then every gradient is scaled in place by min(1, maxNorm / (norm + 1e-6))
 * by a kernel that reads the norm from its buffer. Returns the total norm, a scalar tensor that the
 * caller owns (read it only when needed: reading waits for the GPU). normType: a positive number or
 * Infinity.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): Tensor {
  const op = 'clipGradNorm';
  if (!(maxNorm >= 0)) throw new EngineError(op, `invalid maxNorm ${maxNorm}`);
  if (!(normType > 0)) throw new EngineError(op, `invalid normType ${normType}`);
  if (params.length === 0) throw new EngineError(op, 'no parameters given');
  const ctx = params[0]!.ctx;
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null && g.size > 0);
  if (grads.length === 0) return zeros(ctx, []);
  return ctx.noGrad(() => {
    const total = ctx.scope(() => {
      let acc: Tensor | null = null;
      const combine = (x: Tensor) => (acc = acc ? (normType === Infinity ? maximum(acc, x) : add(acc, x)) : x);
      for (const g of grads) {
        if (normType === Infinity) combine(max(abs(g)));
        else if (normType === 2) combine(sum(square(g)));
        else if (normType === 1) combine(sum(abs(g)));
        else combine(sum(powScalar(abs(g), normType)));
      }
      const a = acc!;
      if (normType === Infinity || normType === 1) return a;
      return normType === 2 ? sqrt(a) : powScalar(a, 1 / normType);
    });
    // gradients may share storage (autograd hands one buffer to two leaves): scale each buffer once
    const done: Tensor[] = [];
    for (const g of grads) {
      if (done.some((d) => d.sharesStorage(g))) continue;
      clipScale(g, total, maxNorm);
      done.push(g);
    }
    return total;
  });
}

/**
 * g ⊙= m for every parameter of `params` that has a gradient and an entry in `masks` (parameter ->
 * f32 mask of its shape; parameters without an entry keep their gradient). Runs on the GPU with no
 * read-back; the parameter's `.grad` then holds the product (its previous gradient tensor is
 * released, so a caller's reference to the old gradient object must not be reused). This is the
 * gradient side of a saliency mask: unlike `Optimizer.setUpdateMask`, weight decay and momentum
 * still move masked entries. Shapes and dtypes are checked for every pair before anything runs.
 */
export function maskGradients(params: readonly Tensor[], masks: ReadonlyMap<Tensor, Tensor>): void {
  const op = 'maskGradients';
  const pairs: [Tensor, Tensor][] = [];
  params.forEach((p, i) => {
    const m = masks.get(p);
    if (!m || !p.grad) return;
    if (m.disposed) throw new EngineError(op, `the mask of parameter ${i} (${p.describe()}) was disposed`);
    if (m.dtype !== 'f32' || !sameShape(m.shape, p.shape))
      throw new EngineError(op, `mask ${m.describe()} does not match parameter ${i} ${p.describe()} (expected f32 of its shape)`);
    pairs.push([p, m]);
  });
  if (pairs.length === 0) return;
  const ctx = pairs[0]![0].ctx;
  ctx.noGrad(() => {
    for (const [p, m] of pairs) {
      const g = p.grad!;
      p.grad = ctx.keep(mul(g, m));
      g.dispose();
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Optimizer state

/**
 * An optimizer's state as a record (reads back): `<prefix>state.<i>.<name>` (F32, the parameter's
 * shape), `<prefix>state.<i>.step` (F32 scalar, as torch stores it) for each parameter that has
 * stepped, `<prefix>step` (I64 scalar: step() calls) and `<prefix>lr` (F64 scalar). Merge it with a
 * model's record to write one checkpoint file.
 */
export async function optimizerStateToRecord(opt: Optimizer, prefix = 'optimizer.'): Promise<Map<string, SafetensorsTensor>> {
  const sd = opt.stateDict();
  const named = new Map<string, Tensor>();
  for (const [k, t] of sd.tensors instanceof Map ? sd.tensors : Object.entries(sd.tensors)) named.set(prefix + k, t);
  const rec = await tensorsToRecord(named);
  sd.paramSteps.forEach((t, i) => {
    if (t > 0) rec.set(`${prefix}state.${i}.step`, { dtype: 'F32', shape: [], data: Float32Array.of(t) });
  });
  rec.set(`${prefix}step`, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(sd.step)) });
  rec.set(`${prefix}lr`, { dtype: 'F64', shape: [], data: Float64Array.of(sd.lr ?? opt.lr) });
  return rec;
}

/**
 * Parse an optimizer's state from the entries of `records` that start with `prefix` (as written by
 * optimizerStateToRecord; other entries are ignored) and check it against `opt` without changing
 * it. Returns the state dict (its tensors are new and owned by the caller: dispose them) or throws
 * one EngineError naming every missing, unexpected and mis-shaped entry.
 */
export function optimizerStateFromRecord(
  opt: Optimizer,
  records: SafetensorsFile | Map<string, SafetensorsTensor>,
  prefix = 'optimizer.',
  op = 'loadOptimizerState',
): OptimizerStateDict & { tensors: Map<string, Tensor> } {
  const entries = records instanceof Map ? records : records.tensors;
  const ctx = opt.params[0]!.ctx;
  const paramSteps = opt.params.map(() => 0);
  const problems: string[] = [];
  const scalar = (name: string): number | undefined => {
    const r = entries.get(prefix + name);
    if (!r) return undefined;
    if (r.data.length !== 1) {
      problems.push(`'${prefix + name}' has shape ${shapeStr(r.shape)}, expected a scalar`);
      return undefined;
    }
    return Number(r.data[0]);
  };
  const step = scalar('step');
  if (step === undefined && !problems.length) problems.push(`missing '${prefix}step'`);
  const lr = scalar('lr');
  const stateRecords = new Map<string, SafetensorsTensor>();
  for (const [name, r] of entries) {
    if (!name.startsWith(prefix) || name === `${prefix}step` || name === `${prefix}lr`) continue;
    const key = name.slice(prefix.length);
    const m = /^state\.(\d+)\.step$/.exec(key);
    if (m) {
      const i = Number(m[1]);
      if (i >= paramSteps.length) problems.push(`unexpected '${name}' (the optimizer has ${paramSteps.length} parameters)`);
      else paramSteps[i] = scalar(key) ?? 0;
    } else if (!FLOAT_FILE.includes(r.dtype)) problems.push(`'${name}' is ${r.dtype}, expected a float tensor`);
    else stateRecords.set(key, r);
  }
  if (problems.length) throw new EngineError(op, problems.join('; '));
  const tensors = new Map<string, Tensor>();
  for (const [key, r] of stateRecords) {
    const t = ctx.keep(new Tensor(ctx, r.shape, 'f32'));
    if (t.size) ctx.upload(t.buffer(op), toFloat32(r));
    tensors.set(key, t);
  }
  const sd = { step: step!, lr, paramSteps, tensors };
  const bad = opt.checkStateDict(sd);
  if (bad.length) {
    for (const t of tensors.values()) t.dispose();
    throw new EngineError(op, bad.join('; '));
  }
  return sd;
}

/**
 * Restore an optimizer from the entries of `file` that start with `prefix` (as written by
 * optimizerStateToRecord); other entries are ignored. Missing, unexpected and mis-shaped state
 * tensors are reported by name in one error, and nothing changes unless all checks pass.
 */
export function loadOptimizerState(opt: Optimizer, file: SafetensorsFile | Map<string, SafetensorsTensor>, prefix = 'optimizer.'): void {
  const sd = optimizerStateFromRecord(opt, file, prefix);
  try {
    opt.loadStateDict(sd);
  } finally {
    for (const t of sd.tensors.values()) t.dispose();
  }
}
