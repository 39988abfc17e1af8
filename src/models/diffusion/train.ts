// Training a class-conditional ε-model (the authors' `train`/`retrain`): batches of clean images
// noised on the CPU (antithetic timesteps, class dropout 0.1 to the null class), the mean of the
// per-sample loss Σ(ε − ε̂)², Adam with global-norm gradient clipping, an EMA of the weights, all
// through the shared loop (nn/loop.ts: resumable checkpoints, progress, abort). Browser-safe.
// It does not sample (samplers.ts) or decide where checkpoints live (the caller's CheckpointIO).
//
// Dimension letters: N samples, C channels, H, W image size.

import type { GpuContext } from '../../gpu/context.js';
import { mean } from '../../ops/index.js';
import { Adam } from '../../nn/optim.js';
import { cosineLr } from '../../nn/schedule.js';
import { ExponentialMovingAverage } from '../../nn/ema.js';
import { train, type EpochLoader, type LoopCheckpointOptions, type LoopResult, type LoopProgress } from '../../nn/loop.js';
import { deriveSeed } from '../../data/loader.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { checkClasses, noisedBatch, noiseLossPerSample, uploadNoised, type DiffusionSchedule, type EpsModel, type ImageShape, type NoisedBatch } from './process.js';

/** Clean images in [−1, 1] with their classes: the data a diffusion model is trained on. */
export interface ImageSet {
  image: ImageShape;
  /** f32 [N·C·H·W] */
  x: Float32Array;
  /** i32 [N], in [0, numClasses) */
  y: Int32Array;
}

export function checkImageSet(op: string, s: ImageSet, numClasses: number): void {
  const d = s.image[0] * s.image[1] * s.image[2];
  if (s.x.length !== s.y.length * d) throw new EngineError(op, `images: ${s.x.length} values for ${s.y.length} images of [${s.image.join(', ')}]`);
  checkClasses(op, s.y, numClasses, false);
}

/** The images whose class passes `keep`. */
export function filterClasses(s: ImageSet, keep: (c: number) => boolean): ImageSet {
  const d = s.image[0] * s.image[1] * s.image[2];
  const idx: number[] = [];
  s.y.forEach((c, i) => keep(c) && idx.push(i));
  const x = new Float32Array(idx.length * d);
  idx.forEach((i, k) => x.set(s.x.subarray(i * d, (i + 1) * d), k * d));
  return { image: s.image, x, y: Int32Array.from(idx, (i) => s.y[i]!) };
}

/**
 * `n` images of `s` with the classes as even as they can be (round-robin over the sorted classes,
 * each in its order in `s`; a class that runs out leaves its turns to the others), kept in their
 * order in `s`. All of `s` when n >= its size.
 */
export function balancedSubset(s: ImageSet, n: number): ImageSet {
  if (!Number.isInteger(n) || n < 1) throw new EngineError('balancedSubset', `n must be a positive integer, got ${n}`);
  if (n >= s.y.length) return s;
  const byClass = new Map<number, number[]>();
  s.y.forEach((c, i) => (byClass.get(c) ?? byClass.set(c, []).get(c)!).push(i));
  const lists = [...byClass.entries()].sort(([a], [b]) => a - b).map(([, l]) => l);
  const picked: number[] = [];
  for (let round = 0; picked.length < n; round++)
    for (const l of lists) if (round < l.length && picked.length < n) picked.push(l[round]!);
  picked.sort((a, b) => a - b);
  const d = s.image[0] * s.image[1] * s.image[2];
  const x = new Float32Array(picked.length * d);
  picked.forEach((i, k) => x.set(s.x.subarray(i * d, (i + 1) * d), k * d));
  return { image: s.image, x, y: Int32Array.from(picked, (i) => s.y[i]!) };
}

const NOISE_TAG = 0x4e4f4953;

/**
 * Epoch-wise shuffled, noised batches of an ImageSet (drop-last). Batch k of epoch e depends only on
 * (seed, e, k), so a resumed run sees the same batches (EpochLoader's contract).
 */
export class NoisedLoader implements EpochLoader<NoisedBatch> {
  readonly numBatches: number;
  constructor(
    readonly data: ImageSet,
    readonly sched: DiffusionSchedule,
    readonly o: { batchSize: number; seed: number; numClasses: number; condDrop: number },
  ) {
    if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new EngineError('NoisedLoader', `batchSize ${o.batchSize} must be a positive integer`);
    checkImageSet('NoisedLoader', data, o.numClasses);
    this.numBatches = Math.floor(data.y.length / o.batchSize);
  }
  batch(epoch: number, k: number, perm: Int32Array): NoisedBatch {
    const { data, o } = this;
    const d = data.image[0] * data.image[1] * data.image[2];
    const x = new Float32Array(o.batchSize * d);
    const y = new Int32Array(o.batchSize);
    for (let i = 0; i < o.batchSize; i++) {
      const j = perm[k * o.batchSize + i]!;
      x.set(data.x.subarray(j * d, (j + 1) * d), i * d);
      y[i] = data.y[j]!;
    }
    const gen = new Generator(deriveSeed(o.seed, NOISE_TAG, epoch, k));
    return noisedBatch(this.sched, x, y, data.image, gen, { numClasses: o.numClasses, condDrop: o.condDrop });
  }
  async *batches(epoch: number, from = 0): AsyncIterable<NoisedBatch> {
    const perm = new Generator(deriveSeed(this.o.seed, NOISE_TAG, epoch, 0xffffffff)).permutation(this.data.y.length);
    for (let k = from; k < this.numBatches; k++) yield this.batch(epoch, k, perm);
  }
}

export interface DiffusionTrainOptions {
  ctx: GpuContext;
  model: EpsModel;
  sched: DiffusionSchedule;
  data: ImageSet;
  numClasses: number;
  /** Optimizer steps. */
  steps: number;
  batchSize: number;
  /** Adam lr (authors 2e-4 for CIFAR-10 pretraining). */
  lr: number;
  /** lr over the steps: 'constant' (the authors') or 'cosine' to 0 (short runs; default constant). */
  schedule?: 'constant' | 'cosine';
  /** Global gradient-norm clip (authors 1.0). */
  clip?: number;
  /** EMA decay (authors 0.9999; use less for short runs); null = no EMA. */
  emaDecay?: number | null;
  /** Class dropout (default 0.1). */
  condDrop?: number;
  seed: number;
  checkpoint?: LoopCheckpointOptions;
  onProgress?: (p: LoopProgress) => void;
  progress?: boolean;
  signal?: AbortSignal;
}

export interface DiffusionTrainResult {
  loop: LoopResult;
  /** The EMA of the weights (caller disposes), or null. */
  ema: ExponentialMovingAverage | null;
  /** Mean training loss of the last epoch. */
  lastLoss: number;
}

/** Train `model` in place; with an EMA, copy `ema` into a model for sampling (ema.copyTo). */
export async function trainDiffusion(o: DiffusionTrainOptions): Promise<DiffusionTrainResult> {
  const op = 'trainDiffusion';
  checkImageSet(op, o.data, o.numClasses);
  if (!(Number.isInteger(o.steps) && o.steps >= 0)) throw new EngineError(op, `steps = ${o.steps} must be a non-negative integer`);
  const loader = new NoisedLoader(o.data, o.sched, { batchSize: o.batchSize, seed: o.seed, numClasses: o.numClasses, condDrop: o.condDrop ?? 0.1 });
  if (loader.numBatches === 0) throw new EngineError(op, `${o.data.y.length} images are fewer than one batch of ${o.batchSize}`);
  const optimizer = new Adam(o.model.trainableParameters(), { lr: o.lr });
  const ema = o.emaDecay == null ? null : new ExponentialMovingAverage(o.model, { decay: o.emaDecay, warmup: true });
  o.model.train();
  try {
    const loop = await train({
      ctx: o.ctx,
      model: o.model,
      optimizer,
      loader,
      totalSteps: o.steps,
      ...(o.schedule === 'cosine' ? { schedule: cosineLr(o.lr, Math.max(1, o.steps)), scheduleUnit: 'step' as const } : {}),
      step: (b) => {
        const l = mean(noiseLossPerSample(o.model, uploadNoised(o.ctx, b)));
        return { loss: l };
      },
      clipGradNorm: o.clip ?? 1,
      hooks: ema ? { ema } : {},
      checkpoint: o.checkpoint,
      onProgress: o.onProgress,
      progress: o.progress ?? false,
      signal: o.signal,
    });
    const last = loop.history.at(-1)?.metrics.loss ?? NaN;
    if (loop.history.length && !Number.isFinite(last)) throw new EngineError(op, `the training loss became ${last}; lower the lr or check the data`);
    return { loop, ema, lastLoss: last };
  } catch (e) {
    ema?.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
}
