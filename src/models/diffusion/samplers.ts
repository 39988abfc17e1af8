// Samplers of a trained ε-model, as the authors' DDPM/functions/denoising.py: DDIM (η = 0
// deterministic, or η > 0) and DDPM ancestral steps (x̂₀ clamped to [−1, 1]), both over a uniform
// subsequence of the T timesteps ("skip_type uniform"), with classifier-free guidance. Every sample
// draws its noise from its own seeded Generator, so an image depends only on (model, class, seed):
// grids are reproducible and independent of the batch they were drawn in.
// It does not train (train.ts) and keeps no trajectory (only the final images come back).
//
// Dimension letters: N samples, C channels, H, W image size.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { add, clamp, mulScalar, tensor } from '../../ops/index.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { checkClasses, gaussian, guidedEps, type DiffusionSchedule, type EpsModel, type ImageShape } from './process.js';

export interface SampleOptions {
  /** Class of each image, in [0, numClasses) (or numClasses: unconditional). */
  classes: Int32Array | readonly number[];
  /** Seed of each image's noise (default: seed0 + i). */
  seeds?: readonly number[];
  seed0?: number;
  image: ImageShape;
  numClasses: number;
  /** Denoising steps (a uniform subsequence of the schedule's T; default 50). */
  steps?: number;
  /** 'ddim' (default) or 'ddpm' (ancestral). */
  sampler?: 'ddim' | 'ddpm';
  /** DDIM's η (default 0: deterministic). */
  eta?: number;
  /** Guidance scale w (default 2, the authors'). */
  guidance?: number;
  /**
   * DDIM only: clamp x̂₀ to [−1, 1] at every step and recompute ε̂ from it (the "clip denoised" of
   * guided-diffusion; default false, as the authors' DDIM). Steadies weak models; DDPM always clamps.
   */
  clipDenoised?: boolean;
  /** Images per forward pass (default 64). */
  batchSize?: number;
  progress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** The timesteps visited, ascending: 0, k, 2k, … with k = ⌊T / steps⌋ (the authors' uniform skip). */
export function timestepSequence(T: number, steps: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= T)) throw new EngineError('sample', `steps = ${steps} must be an integer in [1, ${T}]`);
  const skip = Math.floor(T / steps);
  const seq: number[] = [];
  for (let i = 0; i < T && seq.length < steps; i += skip) seq.push(i);
  return seq;
}

/** Coefficients of one reverse step from t to `prev` (prev = −1: the last step). */
export interface StepCoefficients {
  /** x_prev = cx · x + ce · ε̂ + cz · z, before DDPM's clamp of x̂₀ (DDIM only) */
  cx: number;
  ce: number;
  cz: number;
}

/** DDIM: x̂₀ = (x − √(1−a)ε̂)/√a; x' = √a' x̂₀ + c₁ z + c₂ ε̂, c₁ = η√((1−a/a')(1−a')/(1−a)), c₂ = √(1−a'−c₁²). */
export function ddimCoefficients(sched: DiffusionSchedule, t: number, prev: number, eta: number): StepCoefficients {
  const a = sched.abar(t);
  const an = sched.abar(prev);
  const c1 = eta * Math.sqrt(((1 - a / an) * (1 - an)) / (1 - a));
  const c2 = Math.sqrt(Math.max(0, 1 - an - c1 * c1));
  const sa = Math.sqrt(an / a);
  return { cx: sa, ce: c2 - sa * Math.sqrt(1 - a), cz: c1 };
}

/**
 * Draw images: x_T ~ N(0, I) per image from its seed, then the reverse steps with the guided ε̂.
 * Returns f32 [N·C·H·W] in [−1, 1] (clamped). Runs without autograd; the model's mode is left as
 * the caller set it (use eval).
 */
export async function sampleImages(ctx: GpuContext, model: EpsModel, sched: DiffusionSchedule, o: SampleOptions): Promise<Float32Array> {
  const op = 'sampleImages';
  const classes = Int32Array.from(o.classes);
  const n = classes.length;
  checkClasses(op, classes, o.numClasses, true);
  const [C, H, W] = o.image;
  if (![C, H, W].every((v) => Number.isInteger(v) && v > 0)) throw new EngineError(op, `image shape [${o.image.join(', ')}] must be positive integers`);
  const seeds = o.seeds ?? Array.from({ length: n }, (_, i) => (o.seed0 ?? 0) + i);
  if (seeds.length !== n) throw new EngineError(op, `${seeds.length} seeds for ${n} images`);
  const sampler = o.sampler ?? 'ddim';
  if (sampler !== 'ddim' && sampler !== 'ddpm') throw new EngineError(op, `sampler '${String(sampler)}' is not ddim or ddpm`);
  const eta = o.eta ?? 0;
  if (!(eta >= 0)) throw new EngineError(op, `η = ${eta} must be >= 0`);
  const w = o.guidance ?? 2;
  const seq = timestepSequence(sched.T, o.steps ?? 50);
  const bs = o.batchSize ?? 64;
  const d = C * H * W;
  const out = new Float32Array(n * d);
  let done = 0;
  const total = Math.ceil(n / bs) * seq.length;
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const gens = seeds.slice(s, s + m).map((sd) => new Generator(sd));
    const draw = () => {
      const z = new Float32Array(m * d);
      gens.forEach((g, i) => z.set(gaussian(g, d), i * d));
      return z;
    };
    const y = classes.subarray(s, s + m);
    let x: Tensor = ctx.keep(tensor(ctx, draw(), [m, C, H, W]));
    try {
      for (let k = seq.length - 1; k >= 0; k--) {
        o.signal?.throwIfAborted();
        const t = seq[k]!;
        const prev = k > 0 ? seq[k - 1]! : -1;
        const tArr = new Int32Array(m).fill(t);
        const next = ctx.noGrad(() =>
          ctx.scope(() => {
            const e = guidedEps(model, x, tArr, y, w, o.numClasses);
            if (sampler === 'ddim') {
              const c = ddimCoefficients(sched, t, prev, eta);
              if (o.clipDenoised) {
                // x̂₀ = clamp((x − √(1−a) ε̂)/√a); ε̂ ← (x − √a x̂₀)/√(1−a); x' = √a' x̂₀ + c₂ ε̂ + c₁ z
                const a = sched.abar(t);
                const an = sched.abar(prev);
                const x0 = clamp(add(mulScalar(x, 1 / Math.sqrt(a)), mulScalar(e, -Math.sqrt(1 - a) / Math.sqrt(a))), -1, 1);
                const e2 = add(mulScalar(x, 1 / Math.sqrt(1 - a)), mulScalar(x0, -Math.sqrt(a) / Math.sqrt(1 - a)));
                const c2 = c.ce + c.cx * Math.sqrt(1 - a); // = √(1 − a' − c₁²)
                let r = add(mulScalar(x0, Math.sqrt(an)), mulScalar(e2, c2));
                if (c.cz > 0) r = add(r, mulScalar(tensor(ctx, draw(), [m, C, H, W]), c.cz));
                return r;
              }
              let r = add(mulScalar(x, c.cx), mulScalar(e, c.ce));
              if (c.cz > 0) r = add(r, mulScalar(tensor(ctx, draw(), [m, C, H, W]), c.cz));
              return r;
            }
            // DDPM ancestral (denoising.py ddpm_steps): x̂₀ clamped, posterior mean, σ² = β_t
            const a = sched.abar(t);
            const ap = sched.abar(prev);
            const beta = 1 - a / ap;
            const x0 = clamp(add(mulScalar(x, Math.sqrt(1 / a)), mulScalar(e, -Math.sqrt(1 / a - 1))), -1, 1);
            let r = add(mulScalar(x0, (Math.sqrt(ap) * beta) / (1 - a)), mulScalar(x, (Math.sqrt(1 - beta) * (1 - ap)) / (1 - a)));
            if (t > 0) r = add(r, mulScalar(tensor(ctx, draw(), [m, C, H, W]), Math.sqrt(beta)));
            return r;
          }),
        );
        x.dispose();
        x = ctx.keep(next);
        o.progress?.(++done, total);
        if (done % 4 === 0) await ctx.sync();
      }
      const v = await x.read();
      for (let i = 0; i < v.length; i++) out[s * d + i] = Math.max(-1, Math.min(1, v[i]!));
    } finally {
      x.dispose();
    }
  }
  return out;
}
