// Module: PyTorch-style containers of named parameters (f32 leaves with requiresGrad), buffers
// (running statistics, counters) and child modules, with dotted names (`layer1.0.conv1.weight`),
// state dicts, strict loading with one error listing every problem, freezing and cloning.
// It does not hook forward calls, keep parameter groups or move data between devices.

import { type GpuContext } from '../gpu/context.js';
import { Tensor, type DType } from '../autograd/tensor.js';
import { sameShape, shapeStr, numel } from '../autograd/shape.js';
import { rand, randn, full, tensor } from '../wgsl/fill.js';
import { toFloat32, toInt32, type SafetensorsTensor } from '../io/safetensors.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** A tensor held on the CPU, as parsed from a safetensors file (I64/F64/... accepted on load). */
export interface CpuTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array | BigUint64Array | ArrayBufferView;
}

/** What loadStateDict accepts: live tensors or CPU tensors, by dotted name. */
export type StateSource =
  | Map<string, Tensor | CpuTensor>
  | Record<string, Tensor | CpuTensor>
  | { tensors: Map<string, Tensor | CpuTensor> | Record<string, Tensor | CpuTensor> };

export interface LoadResult {
  /** Names the module has and the source lacked (only non-empty when strict is false). */
  missing: string[];
  /** Names in the source the module does not have (only non-empty when strict is false). */
  unexpected: string[];
}

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
   * listing all missing, unexpected and mis-shaped names; with strict: false only shape/dtype
   * problems throw and missing/unexpected names are returned.
   */
  loadStateDict(src: StateSource, opts: { strict?: boolean } = {}): LoadResult {
    const op = `${this.constructor.name}.loadStateDict`;
    const strict = opts.strict ?? true;
    const given = toEntries(src);
    const own = this.stateDict();
    const missing: string[] = [];
    const unexpected: string[] = [];
    const misShaped: string[] = [];
    for (const [name, dst] of own) {
      const s = given.get(name);
      if (!s) {
        missing.push(name);
        continue;
      }
      const shape = s.shape;
      const shapeOk = sameShape(shape, dst.shape) || (numel(shape) === 1 && dst.size === 1);
      if (!shapeOk) misShaped.push(`${name}: source ${shapeStr(shape)}, module ${shapeStr(dst.shape)}`);
      else if (s instanceof Tensor && s.dtype !== dst.dtype) misShaped.push(`${name}: source dtype ${s.dtype}, module ${dst.dtype}`);
      else if (!(s instanceof Tensor) && !convertible(s.dtype, dst.dtype))
        misShaped.push(`${name}: source dtype ${s.dtype} cannot be loaded into ${dst.dtype}`);
    }
    for (const name of given.keys()) if (!own.has(name)) unexpected.push(name);
    const problems = [
      ...(strict && missing.length ? [`missing ${missing.length}: ${missing.join(', ')}`] : []),
      ...(strict && unexpected.length ? [`unexpected ${unexpected.length}: ${unexpected.join(', ')}`] : []),
      ...(misShaped.length ? [`mis-shaped ${misShaped.length}: ${misShaped.join('; ')}`] : []),
    ];
    if (problems.length) throw new EngineError(op, problems.join(' | '));
    for (const [name, dst] of own) {
      const s = given.get(name);
      if (!s) continue;
      if (s instanceof Tensor) copyTensor(op, s, dst);
      else
        this.ctx.scope(() => {
          const tmp = tensor(this.ctx, toTyped(s, dst.dtype, name), dst.shape, dst.dtype);
          copyTensor(op, tmp, dst);
        });
    }
    return { missing, unexpected };
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
// Loading helpers

function toEntries(src: StateSource): Map<string, Tensor | CpuTensor> {
  const inner =
    !(src instanceof Map) && typeof (src as { tensors?: unknown }).tensors === 'object' && !((src as { tensors?: unknown }).tensors instanceof Tensor)
      ? (src as { tensors: Map<string, Tensor | CpuTensor> | Record<string, Tensor | CpuTensor> }).tensors
      : (src as Map<string, Tensor | CpuTensor> | Record<string, Tensor | CpuTensor>);
  return inner instanceof Map ? inner : new Map(Object.entries(inner));
}

const INT_DTYPES = /^(I|U)(8|16|32|64)$|^(i32|u32|BOOL)$/i;
const FLOAT_DTYPES = /^(F16|F32|F64|BF16|f32|f16)$/i;

function convertible(from: string, to: DType): boolean {
  if (to === 'f32') return INT_DTYPES.test(from) || FLOAT_DTYPES.test(from);
  if (to === 'i32' || to === 'u32') return INT_DTYPES.test(from) || FLOAT_DTYPES.test(from);
  return false;
}

const FILE_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL']);

function toTyped(t: CpuTensor, dtype: DType, name: string): Float32Array | Int32Array | Uint32Array {
  if (FILE_DTYPES.has(t.dtype)) {
    // safetensors record: F16/BF16 are raw bits, decoded by the io helpers
    const st = t as SafetensorsTensor;
    if (dtype === 'f32') return toFloat32(st);
    if (!/^F|^BF/.test(t.dtype)) {
      const v = toInt32(st, name);
      return dtype === 'u32' ? new Uint32Array(v.buffer) : v;
    }
  }
  const src = t.data as ArrayLike<number | bigint>;
  const n = src.length;
  const out = dtype === 'f32' ? new Float32Array(n) : dtype === 'i32' ? new Int32Array(n) : new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Number(src[i]);
  return out;
}

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
