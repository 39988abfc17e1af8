// Module: PyTorch-style containers of named parameters (f32 leaves with requiresGrad), buffers
// (running statistics, counters) and child modules, with dotted names (`layer1.0.conv1.weight`),
// state dicts, strict loading with one error listing every problem, freezing and cloning.
// It does not hook forward calls, keep parameter groups or move data between devices.

import { type GpuContext } from '../gpu/context.js';
import type { Tensor, DType } from '../autograd/tensor.js';
import { numel } from '../autograd/shape.js';
import { rand, randn, full } from '../wgsl/fill.js';
import { loadIntoTensors, type CpuTensor, type LoadReport, type LoadSource } from '../io/state.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** What loadStateDict accepts: live tensors or CPU tensors by dotted name (see io/state.ts). */
export type StateSource = LoadSource;
export type { CpuTensor };

/** Names loadStateDict skipped (only non-empty when strict is false). */
export type LoadResult = LoadReport;

/**
 * Base of every layer and model: typed inputs and output (`Module<[x: Tensor, t: Tensor, y: Tensor]>`
 * for a diffusion UNet, `Module` = one tensor in, one out) and a plain config object the module is
 * built from. Subclasses take `(ctx, config)` and register their state in the constructor; spawn()
 * and clone() then follow from the config with no code of their own.
 */
export abstract class Module<In extends unknown[] = [Tensor], Out = Tensor, Config = unknown> {
  /** True in training mode (BatchNorm uses batch statistics, Dropout drops). */
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, AnyModule>();

  constructor(
    readonly ctx: GpuContext,
    /** What the module was built from (sizes, options, seeds); spawn() rebuilds from it. */
    readonly config: Config,
  ) {}

  abstract forward(...inputs: In): Out;

  /**
   * A fresh module of the same architecture, built again from `config` by the subclass's own
   * `(ctx, config)` constructor (its values are then overwritten by clone()). A module whose
   * constructor takes something else overrides this.
   */
  spawn(): this {
    const Ctor = this.constructor as new (ctx: GpuContext, config: Config) => this;
    if (Ctor.length > 2)
      throw new EngineError('Module.spawn', `${Ctor.name}'s constructor takes more than (ctx, config); override spawn() to clone it`);
    return new Ctor(this.ctx, this.config);
  }

  // ----------------------------------------------------------------------------------------------
  // Registration

  /** Register `t` as parameter `name`: it becomes a leaf with requiresGrad, kept out of scopes. */
  protected registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name);
    if (t.dtype !== 'f32') throw new EngineError('registerParameter', `parameter '${name}' must be f32, got ${t.describe()}`);
    if (t.node) throw new EngineError('registerParameter', `parameter '${name}' is not a leaf (produced by ${t.node.op})`);
    this.ctx.keep(t);
    t.requiresGrad = true;
    t.name ??= name;
    this._params.set(name, t);
    return t;
  }

  /** Register `t` as buffer `name` (saved in the state dict, never trained), kept out of scopes. */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName(name);
    this.ctx.keep(t);
    t.name ??= name;
    this._buffers.set(name, t);
    return t;
  }

  /** Replace the tensor of an existing buffer (disposes the old one unless it is the same). */
  protected setBuffer(name: string, t: Tensor): Tensor {
    const old = this._buffers.get(name);
    if (!old) throw new EngineError('setBuffer', `no buffer named '${name}'`);
    if (old !== t) old.dispose();
    this.ctx.keep(t);
    t.name = old.name;
    this._buffers.set(name, t);
    return t;
  }

  /** This module's own buffer `name` (not a descendant's). */
  protected getBuffer(name: string): Tensor {
    const t = this._buffers.get(name);
    if (!t) throw new EngineError(this.constructor.name, `no buffer named '${name}'`);
    return t;
  }

  /** Register a child module under `name` (e.g. `layer1`, or `0` inside a Sequential). */
  protected registerModule<M extends AnyModule>(name: string, m: M): M {
    this.checkName(name);
    if (m.ctx !== this.ctx) throw new EngineError('registerModule', `child '${name}' lives on another GPU context`);
    this._children.set(name, m);
    return m;
  }

  private checkName(name: string) {
    if (!name || name.includes('.')) throw new EngineError('Module', `invalid name '${name}' (empty or containing '.')`);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name))
      throw new EngineError('Module', `'${name}' is registered twice in ${this.constructor.name}`);
  }

  // ----------------------------------------------------------------------------------------------
  // Traversal

  /** Direct children by name, in registration order. */
  namedChildren(): [string, AnyModule][] {
    return [...this._children];
  }

  /** This module and every descendant with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, AnyModule][] {
    const out: [string, AnyModule][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Parameters with dotted names: own first, then each child's, in registration order (as torch). */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) for (const [n, t] of m._params) out.push([p ? `${p}.${n}` : n, t]);
    return out;
  }

  /** Buffers with dotted names. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) {
      m.syncBuffers();
      for (const [n, t] of m._buffers) out.push([p ? `${p}.${n}` : n, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that currently require gradients (what an optimizer should get). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad);
  }

  /** Number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  /**
   * Parameters and buffers by dotted name, in torch's state_dict order (each module's parameters,
   * then its buffers, then its children). The tensors are the live ones: read or copy them, do not
   * dispose them; a BatchNorm's counter tensor is replaced at each training step.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const walk = (m: AnyModule, prefix: string) => {
      m.syncBuffers();
      for (const [n, t] of m._params) out.set(prefix + n, t);
      for (const [n, t] of m._buffers) out.set(prefix + n, t);
      for (const [n, c] of m._children) walk(c, `${prefix}${n}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copy values from `src` into this module's tensors in place (recorded GPU copies; the tensor
   * objects stay the same, so optimizers keep working). CPU tensors are converted to the target
   * dtype (I64 counters from PyTorch included). Checks every name first and throws one EngineError
   * listing all missing, unexpected and mis-shaped names, writing nothing; with strict: false only
   * shape/dtype problems throw and missing/unexpected names are returned. (io/state.ts's
   * loadIntoTensors over stateDict().)
   */
  loadStateDict(src: StateSource, opts: { strict?: boolean } = {}): LoadResult {
    return loadIntoTensors(this.stateDict(), src, { strict: opts.strict ?? true, op: `${this.constructor.name}.loadStateDict` });
  }

  /** Copy all parameters and buffers of `other` (same architecture) into this module. */
  copyFrom(other: AnyModule): this {
    this.loadStateDict(other.stateDict(), { strict: true });
    return this;
  }

  /**
   * An independent copy with the same values, mode and requiresGrad flags (e.g. a frozen teacher:
   * `model.clone().freeze().eval()`). The copy owns its tensors; dispose it when done.
   */
  clone(): this {
    const c = this.ctx.scope(() => this.spawn()) as this;
    c.copyFrom(this);
    c.train(this.training);
    const mine = this.namedParameters();
    c.namedParameters().forEach(([, t], i) => (t.requiresGrad = mine[i]![1].requiresGrad));
    return c;
  }

  /**
   * Bring buffers whose updates are deferred up to date before they are listed (BatchNorm's batch
   * counter). Called by namedBuffers() and stateDict() on every module.
   */
  protected syncBuffers(): void {}

  // ----------------------------------------------------------------------------------------------
  // Modes

  /** Set training mode on this module and every descendant. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  /** Evaluation mode (BatchNorm uses running statistics, Dropout is the identity). */
  eval(): this {
    return this.train(false);
  }

  /** Stop gradients to every parameter (requiresGrad = false) and drop their gradients. */
  freeze(): this {
    for (const p of this.parameters()) {
      p.requiresGrad = false;
      p.grad?.dispose();
      p.grad = null;
    }
    return this;
  }

  /** requiresGrad = true on every parameter. */
  unfreeze(): this {
    for (const p of this.parameters()) p.requiresGrad = true;
    return this;
  }

  /** Dispose every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Free every parameter, gradient and buffer of this module and its descendants. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m._params.values()) t.dispose();
      for (const t of m._buffers.values()) t.dispose();
    }
  }
}

/** A module of any signature (containers, optimizers and runners hold these). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any[], any, any>;

// ------------------------------------------------------------------------------------------------
// Copies

/** Recorded GPU copy of `src`'s bytes into `dst` (same byte size). */
export function copyTensor(op: string, src: Tensor, dst: Tensor): void {
  if (src.bytes !== dst.bytes) throw new EngineError(op, `cannot copy ${src.describe()} into ${dst.describe()}`);
  if (src.sharesStorage(dst)) return;
  dst.ctx.copyBuffer(src.buffer(op), 0, dst.buffer(op), 0, dst.bytes);
}

// ------------------------------------------------------------------------------------------------
// Seeded initialisers (torch.nn.init), drawing from an explicit Generator

/** U(-bound, bound): kaiming_uniform_ with a = sqrt(5) gives bound = 1 / sqrt(fanIn), as torch's Linear/Conv default. */
export function uniformInit(ctx: GpuContext, shape: readonly number[], bound: number, gen: Generator): Tensor {
  return rand(ctx, shape, gen, -bound, bound);
}

/** kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2 / fanOut), torchvision's ResNet conv init. */
export function kaimingNormalFanOut(ctx: GpuContext, shape: readonly number[], gen: Generator): Tensor {
  const fanOut = shape[0]! * numel(shape.slice(2));
  return randn(ctx, shape, gen, 0, Math.sqrt(2 / fanOut));
}

/** A constant-filled tensor (BatchNorm weight 1 / bias 0, running statistics). */
export function constantInit(ctx: GpuContext, shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  return full(ctx, shape, value, dtype);
}
