// Pieces the diffusion noise predictors share (the DDPM UNet in unet.ts, DiT in dit.ts): the
// interface every noise predictor follows, sinusoidal timestep embeddings, the checks of (x, t, y),
// a ModuleList, and GroupNorm + SiLU in one kernel.
//
// THE NOISE-PREDICTOR INTERFACE (what src/unlearn's diffusion code builds on):
//   forward(x, t, y) -> eps
//     x  f32 [N, C, H, W]  the noisy image (C = inChannels, H = W = imageSize)
//     t  [N]               i32 timesteps in [0, numTimesteps) (f32 also accepted: see below)
//     y  i32 [N]           classes in [0, numClasses]; y = numClasses is the null class (the
//                          condition dropped: classifier-free guidance and class dropout)
//     eps f32 [N, outChannels, H, W]
//   guided(x, t, y, w): the classifier-free guided prediction of the model's reference.
// Class dropout in training (replacing y by numClasses with probability p) is the caller's job: the
// model itself never draws random classes. Values of t and y are on the GPU, so a forward cannot
// check them without a read-back: an out-of-range value gives NaN outputs. Check them on the CPU
// with checkTimesteps / checkClasses (or upload with timestepsTensor / classesTensor) before.
//
// Timestep embeddings: for i32 timesteps the embedding is a row of a [numTimesteps, dim] table
// computed once in float64 on the CPU and stored as f32 (exact to f32 rounding; a GPU sin of
// t·f ~ 1000 rad in f32 would be off by up to ~6e-5 rad). f32 timesteps (fractional t) are
// embedded on the GPU in f32 (sin/cos of the f32 product).
//
// Letters: N batch, C channels, H W image size, T timesteps, K classes, D embedding width.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { concat, cos, groupNorm, indexSelect, indexTensor, mul, reshape, sin, tensor } from '../../ops/index.js';
import { Module, type AnyModule } from '../../nn/module.js';
import type { GroupNorm } from '../../nn/layers/index.js';

/** Order of the two halves of a sinusoidal embedding. */
export type SinusoidOrder = 'sin-cos' | 'cos-sin';

export interface SinusoidSpec {
  /** Embedding width D (an odd D gets a zero last column, as the references pad). */
  dim: number;
  /** Frequency k of D/2: f_k. */
  freq: (k: number, half: number) => number;
  order: SinusoidOrder;
}

/** Float64 embedding of one timestep t (length D). */
export function sinusoidRef(t: number, s: SinusoidSpec): Float64Array {
  const half = Math.floor(s.dim / 2);
  const out = new Float64Array(s.dim);
  for (let k = 0; k < half; k++) {
    const a = t * s.freq(k, half);
    out[k] = s.order === 'sin-cos' ? Math.sin(a) : Math.cos(a);
    out[half + k] = s.order === 'sin-cos' ? Math.cos(a) : Math.sin(a);
  }
  return out;
}

/**
 * Sinusoidal timestep embeddings [N] -> [N, D]. Built for one model: the i32 path looks rows up in
 * a float64-computed table of `numTimesteps` rows (made on first use, owned by this object; call
 * dispose()); the f32 path computes sin/cos on the GPU.
 */
export class TimestepEmbedding {
  private table: Tensor | null = null;
  private freqs: Tensor | null = null;
  constructor(
    readonly ctx: GpuContext,
    readonly spec: SinusoidSpec,
    readonly numTimesteps: number,
  ) {}

  embed(t: Tensor): Tensor {
    const { dim } = this.spec;
    const half = Math.floor(dim / 2);
    if (t.dtype === 'i32') {
      if (!this.table) {
        const T = this.numTimesteps;
        const data = new Float32Array(T * dim);
        for (let i = 0; i < T; i++) data.set(sinusoidRef(i, this.spec), i * dim);
        this.table = this.ctx.keep(tensor(this.ctx, data, [T, dim]));
      }
      return indexSelect(this.table, 0, t);
    }
    if (!this.freqs) {
      const f = new Float32Array(half);
      for (let k = 0; k < half; k++) f[k] = this.spec.freq(k, half);
      this.freqs = this.ctx.keep(tensor(this.ctx, f, [1, half]));
    }
    const a = mul(reshape(t, [t.size, 1]), this.freqs);
    const parts = this.spec.order === 'sin-cos' ? [sin(a), cos(a)] : [cos(a), sin(a)];
    if (dim % 2) parts.push(tensor(this.ctx, new Float32Array(t.size), [t.size, 1]));
    return concat(parts, 1);
  }

  dispose(): void {
    this.table?.dispose();
    this.freqs?.dispose();
    this.table = this.freqs = null;
  }
}

/**
 * Checks the shapes and dtypes of a noise predictor's inputs (x [N, C, S, S] f32, t [N] i32 or f32,
 * y [N] i32) before any work; values are checked by checkTimesteps / checkClasses on the CPU.
 */
export function checkNoiseInputs(op: string, x: Tensor, t: Tensor, y: Tensor, C: number, S: number): number {
  if (x.rank !== 4 || x.dtype !== 'f32') throw new EngineError(op, `x must be f32 [N, ${C}, ${S}, ${S}], got ${x.describe()}`);
  const [N, c, h, w] = x.shape as [number, number, number, number];
  if (c !== C) throw new EngineError(op, `x ${x.describe()} has ${c} channels; the model takes ${C}`);
  if (h !== S || w !== S) throw new EngineError(op, `x ${x.describe()} is ${h}x${w}; the model was built for ${S}x${S} images`);
  if (t.rank !== 1 || t.shape[0] !== N || (t.dtype !== 'i32' && t.dtype !== 'f32'))
    throw new EngineError(op, `t must be i32 (or f32) [${N}] (one timestep per image), got ${t.describe()}`);
  if (y.rank !== 1 || y.shape[0] !== N || y.dtype !== 'i32') throw new EngineError(op, `y must be i32 [${N}] (one class per image), got ${y.describe()}`);
  return N;
}

/** Throws naming the first timestep outside the integers [0, T). */
export function checkTimesteps(op: string, t: ArrayLike<number>, T: number): void {
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= T) throw new EngineError(op, `timestep t[${i}] = ${v} is outside [0, ${T}) (the model's numTimesteps is ${T})`);
  }
}

/** Throws naming the first class outside [0, K] (K = the null class). */
export function checkClasses(op: string, y: ArrayLike<number>, K: number): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (!Number.isInteger(v) || v < 0 || v > K)
      throw new EngineError(op, `class y[${i}] = ${v} is outside [0, ${K}] (${K} classes; ${K} is the null class)`);
  }
}

/** Timesteps uploaded as i32 [N] after checkTimesteps. */
export function timestepsTensor(ctx: GpuContext, t: ArrayLike<number>, T: number): Tensor {
  checkTimesteps('timestepsTensor', t, T);
  return indexTensor(ctx, Array.from(t), T, 'timestepsTensor');
}

/** Classes uploaded as i32 [N] after checkClasses (numClasses = the null class allowed). */
export function classesTensor(ctx: GpuContext, y: ArrayLike<number>, K: number): Tensor {
  checkClasses('classesTensor', y, K);
  return indexTensor(ctx, Array.from(y), K + 1, 'classesTensor');
}

/** Children named '0', '1', ... of any signature (torch.nn.ModuleList); only holds them. */
export class ModuleList<M extends AnyModule> extends Module<[], never, { items: readonly M[] }> {
  constructor(ctx: GpuContext, items: readonly M[]) {
    super(ctx, { items });
    items.forEach((m, i) => this.registerModule(String(i), m));
  }
  get items(): readonly M[] {
    return this.config.items;
  }
  get length(): number {
    return this.config.items.length;
  }
  at(i: number): M {
    const m = this.config.items[i];
    if (!m) throw new EngineError('ModuleList', `no item ${i} (length ${this.length})`);
    return m;
  }
  forward(): never {
    throw new EngineError('ModuleList', 'a ModuleList has no forward; call its items');
  }
  override spawn(): this {
    return new ModuleList(
      this.ctx,
      this.config.items.map((m) => m.spawn()),
    ) as this;
  }
}

/** A parameter-free holder of named children (torch's bare nn.Module used as a namespace). */
export class Namespace extends Module<[], never, Record<string, never>> {
  constructor(ctx: GpuContext, children: Record<string, AnyModule | null>) {
    super(ctx, {});
    for (const [n, m] of Object.entries(children)) if (m) this.registerModule(n, m);
  }
  /** Registers one more child (for children built after the holder). */
  add<M extends AnyModule>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
  forward(): never {
    throw new EngineError('Namespace', 'a namespace module has no forward');
  }
}

/** silu(norm(x)) for an nn GroupNorm, as one fused kernel (the UNet's norm → SiLU pairs). */
export function groupNormSilu(norm: GroupNorm, x: Tensor): Tensor {
  const c = norm.config;
  if (x.rank < 2 || x.shape[1] !== c.numChannels) throw new EngineError('GroupNorm', `expected [N, ${c.numChannels}, *], got ${x.describe()}`);
  return groupNorm(x, c.numGroups, norm.weight, norm.bias, c.eps ?? 1e-5, { activation: 'silu' });
}
