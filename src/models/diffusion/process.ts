// The DDPM forward process and its training objective (Ho et al. 2020, as the authors' DDPM/):
// a linear β schedule, q(x_t | x_0) drawn on the CPU in float64 arithmetic, the per-sample
// ε-prediction loss Σ_pixels (ε − ε̂)², class dropout to the learned null class, and classifier-free
// guidance ε = (1+w)·ε(x,t,c) − w·ε(x,t,∅). Samplers are in samplers.ts, training in train.ts.
// It does not define the noise network (unet.ts, or any EpsModel).
//
// Dimension letters: N samples, C channels, H, W image size, T diffusion steps.

import type { Tensor } from '../../autograd/tensor.js';
import type { GpuContext } from '../../gpu/context.js';
import type { Module } from '../../nn/module.js';
import { concat, narrow, mulScalar, sub, square, sum, tensor } from '../../ops/index.js';
import { EngineError } from '../../util/errors.js';
import type { Generator } from '../../util/rng.js';

/**
 * A class-conditional noise predictor: forward(x f32 [N,C,H,W], t i32 [N] timesteps, y i32 [N]
 * classes with y = numClasses the learned null class) -> ε̂ f32 [N,C,H,W].
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EpsModel = Module<[Tensor, Tensor, Tensor], Tensor, any>;

export type ImageShape = readonly [c: number, h: number, w: number];

export interface ScheduleConfig {
  /** Diffusion steps T (default 1000). */
  T?: number;
  /** β₁ and β_T of the linear schedule (defaults 1e-4 and 0.02, the authors'). */
  betaStart?: number;
  betaEnd?: number;
}

/** β_t linear from betaStart to betaEnd over T steps; ᾱ_t = Π_{s≤t} (1 − β_s), in float64. */
export class DiffusionSchedule {
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphaBar: Float64Array;
  constructor(cfg: ScheduleConfig = {}) {
    const T = cfg.T ?? 1000;
    const b0 = cfg.betaStart ?? 1e-4;
    const b1 = cfg.betaEnd ?? 0.02;
    if (!(Number.isInteger(T) && T >= 1)) throw new EngineError('DiffusionSchedule', `T = ${T} must be a positive integer`);
    if (!(b0 > 0 && b1 >= b0 && b1 < 1)) throw new EngineError('DiffusionSchedule', `betas ${b0} -> ${b1} must satisfy 0 < start <= end < 1`);
    this.T = T;
    this.betas = new Float64Array(T);
    this.alphaBar = new Float64Array(T);
    let prod = 1;
    for (let i = 0; i < T; i++) {
      this.betas[i] = T === 1 ? b0 : b0 + ((b1 - b0) * i) / (T - 1); // torch.linspace
      prod *= 1 - this.betas[i]!;
      this.alphaBar[i] = prod;
    }
  }
  /** ᾱ at timestep t, with ᾱ(−1) = 1 (the samplers' last step). */
  abar(t: number): number {
    return t < 0 ? 1 : this.alphaBar[t]!;
  }
  /** Throws when a timestep is not an integer in [0, T). */
  checkTimesteps(op: string, t: ArrayLike<number>): void {
    for (let i = 0; i < t.length; i++)
      if (!(Number.isInteger(t[i]) && t[i]! >= 0 && t[i]! < this.T)) throw new EngineError(op, `timestep t[${i}] = ${t[i]} is not in [0, ${this.T})`);
  }
}

/** Throws when a class label is not in [0, numClasses] (numClasses = the null class, allowed when `allowNull`). */
export function checkClasses(op: string, y: ArrayLike<number>, numClasses: number, allowNull = true): void {
  const hi = allowNull ? numClasses : numClasses - 1;
  for (let i = 0; i < y.length; i++)
    if (!(Number.isInteger(y[i]) && y[i]! >= 0 && y[i]! <= hi)) throw new EngineError(op, `class y[${i}] = ${y[i]} is not in [0, ${hi}]${allowNull ? ` (${numClasses} = the null class)` : ''}`);
}

/** Standard normal draws from a Generator (Box-Muller on its uniform stream), float32. */
export function gaussian(gen: Generator, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = gen.cpuUniform() + 5.960464477539063e-8; // (0, 1]: finite log
    const u2 = gen.cpuUniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** One noised training batch on the CPU: x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε. */
export interface NoisedBatch {
  shape: [number, number, number, number];
  /** x_t f32 [N·C·H·W] */
  xt: Float32Array;
  /** ε f32 [N·C·H·W] */
  noise: Float32Array;
  /** i32 [N] */
  t: Int32Array;
  /** i32 [N], null class = numClasses where dropped */
  y: Int32Array;
}

/** q(x_t | x_0) for given t and ε, computed in float64 and stored as f32. */
export function qSample(sched: DiffusionSchedule, x0: Float32Array, t: Int32Array, noise: Float32Array): Float32Array {
  const op = 'qSample';
  const n = t.length;
  if (n === 0 || x0.length % n !== 0) throw new EngineError(op, `x0 has ${x0.length} values, not a multiple of the ${n} timesteps`);
  if (noise.length !== x0.length) throw new EngineError(op, `noise has ${noise.length} values, x0 ${x0.length}`);
  sched.checkTimesteps(op, t);
  const d = x0.length / n;
  const out = new Float32Array(x0.length);
  for (let i = 0; i < n; i++) {
    const a = sched.alphaBar[t[i]!]!;
    const sa = Math.sqrt(a);
    const sn = Math.sqrt(1 - a);
    for (let j = i * d; j < (i + 1) * d; j++) out[j] = sa * x0[j]! + sn * noise[j]!;
  }
  return out;
}

export interface NoiseOptions {
  numClasses: number;
  /** Probability of replacing a label by the null class (training 0.1; SA 0). */
  condDrop: number;
  /** Antithetic timesteps t, T−1−t as the authors (default true). */
  antithetic?: boolean;
}

/**
 * A training batch from clean images x_0 ∈ [−1, 1] ([N,C,H,W] flat) and labels: timesteps uniform
 * in [0, T) (antithetic pairs), ε ~ N(0, I), labels dropped to the null class with probability
 * condDrop — all drawn from `gen`, so the batch depends only on the generator's state.
 */
export function noisedBatch(sched: DiffusionSchedule, x0: Float32Array, y: Int32Array, image: ImageShape, gen: Generator, o: NoiseOptions): NoisedBatch {
  const op = 'noisedBatch';
  const n = y.length;
  const d = image[0] * image[1] * image[2];
  if (x0.length !== n * d) throw new EngineError(op, `x0 has ${x0.length} values; ${n} images of [${image.join(', ')}] need ${n * d}`);
  checkClasses(op, y, o.numClasses, false);
  if (!(o.condDrop >= 0 && o.condDrop <= 1)) throw new EngineError(op, `condDrop = ${o.condDrop} must be in [0, 1]`);
  const t = new Int32Array(n);
  const half = (o.antithetic ?? true) ? Math.floor(n / 2) + 1 : n;
  for (let i = 0; i < Math.min(half, n); i++) t[i] = gen.cpuInt(sched.T);
  for (let i = half; i < n; i++) t[i] = sched.T - 1 - t[i - half]!;
  const yd = Int32Array.from(y);
  if (o.condDrop > 0) for (let i = 0; i < n; i++) if (gen.cpuUniform() < o.condDrop) yd[i] = o.numClasses;
  const noise = gaussian(gen, n * d);
  return { shape: [n, image[0], image[1], image[2]], xt: qSample(sched, x0, t, noise), noise, t, y: yd };
}

/** The GPU side of a NoisedBatch. */
export interface NoisedTensors {
  xt: Tensor;
  noise: Tensor;
  t: Tensor;
  y: Tensor;
}

export function uploadNoised(ctx: GpuContext, b: NoisedBatch): NoisedTensors {
  const n = b.shape[0];
  return { xt: tensor(ctx, b.xt, b.shape), noise: tensor(ctx, b.noise, b.shape), t: tensor(ctx, b.t, [n]), y: tensor(ctx, b.y, [n]) };
}

/** Per-sample ε-prediction loss Σ_{C,H,W} (ε − ε̂)² of a prediction [N,C,H,W] -> [N]. */
export function epsError(noise: Tensor, eps: Tensor): Tensor {
  if (noise.shape.join() !== eps.shape.join()) throw new EngineError('epsError', `prediction ${eps.describe()} does not match the noise ${noise.describe()} (image size mismatch?)`);
  return sum(square(sub(noise, eps)), [1, 2, 3]);
}

/** The DDPM training objective per sample: Σ (ε − ε̂(x_t, t, y))² -> [N] (mean over N = the authors' loss). */
export function noiseLossPerSample(model: EpsModel, b: NoisedTensors): Tensor {
  return epsError(b.noise, model.forward(b.xt, b.t, b.y));
}

/**
 * Classifier-free guidance (the authors' `_forward_with_cond_scale`): ε = (1+w)·ε(x,t,c) − w·ε(x,t,∅),
 * with both branches in one forward pass of a doubled batch; w = 0 is the conditional output alone.
 * x [N,C,H,W], t and y i32 [N] (CPU arrays; y in [0, numClasses)).
 */
export function guidedEps(model: EpsModel, x: Tensor, t: Int32Array, y: Int32Array, w: number, numClasses: number): Tensor {
  const op = 'guidedEps';
  const n = x.shape[0]!;
  if (t.length !== n || y.length !== n) throw new EngineError(op, `x ${x.describe()} has ${n} samples, t ${t.length}, y ${y.length}`);
  if (!(w >= 0 && Number.isFinite(w))) throw new EngineError(op, `guidance scale w = ${w} must be a finite number >= 0`);
  checkClasses(op, y, numClasses, true);
  const ctx = x.ctx;
  if (w === 0) return model.forward(x, tensor(ctx, t, [n]), tensor(ctx, y, [n]));
  const t2 = new Int32Array(2 * n);
  t2.set(t);
  t2.set(t, n);
  const y2 = new Int32Array(2 * n).fill(numClasses);
  y2.set(y);
  const out = model.forward(concat([x, x], 0), tensor(ctx, t2, [2 * n]), tensor(ctx, y2, [2 * n]));
  const cond = narrow(out, 0, 0, n);
  const uncond = narrow(out, 0, n, n);
  return sub(mulScalar(cond, 1 + w), mulScalar(uncond, w));
}
