// Supervised classification on top of the generic loop (loop.ts): the step is upload, forward, mean
// cross-entropy, with the batch's loss sum and correct count as GPU-side metrics; after each epoch
// an optional evaluation on a test loader. evaluate() scores a model in eval mode without gradients
// and, with `probs`, returns the softmax outputs, predictions, labels and dataset indices.
// Checkpoints, pacing, schedules and progress are the loop's; this file adds no state of its own.
//
// Letters: B batch, C classes, n samples evaluated.

import { type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { toGpuBatch } from '../data/gpu.js';
import type { Batch, DataLoader } from '../data/loader.js';
import type { Optimizer } from './optim.js';
import type { GradScaler } from './amp.js';
import type { LrSchedule } from './schedule.js';
import type { Module } from './module.js';
import type { ProgressStream } from './progress.js';
import type { CheckpointIO } from './checkpoint.js';
import { train, GpuSum, InFlight, type EpochRecord, type LoopProgress, type StepOutput, type TrainHook } from './loop.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';
import { ge, mul, max, mean, sum, crossEntropy, softmax, oneHot } from '../ops/index.js';

/** Metrics of one finished epoch. */
export interface EpochMetrics {
  /** 0-based epoch index. */
  epoch: number;
  lr: number;
  /** Mean cross-entropy over the epoch's training samples (train mode, augmented). */
  trainLoss: number;
  trainAccuracy: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds: number;
  imagesPerSec: number;
}

/** What onProgress receives: every `readEvery` steps ('step') and after each epoch ('epoch'). */
export interface TrainProgress {
  kind: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  /** Steps done in this epoch. */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  lr: number;
  /** Running mean loss and accuracy of this epoch so far. */
  loss: number;
  accuracy: number;
  imagesPerSec: number;
  /** Set for 'epoch'. */
  metrics?: EpochMetrics;
}

export interface TrainClassifierOptions {
  ctx: GpuContext;
  model: Module;
  trainLoader: DataLoader;
  /** Evaluated after every epoch when given. */
  testLoader?: DataLoader;
  optimizer: Optimizer;
  /**
   * Learning rate as a function of the epoch index (scheduleUnit 'epoch', the default: the lr is set
   * once at the start of each epoch, as the spec's per-epoch cosine) or of the global step index
   * ('step'). Default: the optimizer's lr throughout.
   */
  schedule?: LrSchedule;
  scheduleUnit?: 'epoch' | 'step';
  epochs: number;
  /** Where `checkpoint.safetensors` is written after every epoch (nothing is written without it). */
  checkpointDir?: string;
  /** Continue from `checkpointDir`'s checkpoint when one exists. */
  resume?: boolean;
  /** Required with checkpointDir: nodeCheckpointIO() (from the Node entry) or memoryCheckpointIO(). */
  checkpointIO?: CheckpointIO;
  /** Also checkpoint every this many optimizer steps (mid-epoch; resumed bit-identically). */
  checkpointEverySteps?: number;
  onProgress?: (p: TrainProgress) => void;
  /** Read the GPU accumulators back every this many steps (default 20; reading waits for the GPU). */
  readEvery?: number;
  /** Progress bar on stderr (default true); false or a stream. */
  progress?: boolean | ProgressStream;
  /** Further generators whose state is checkpointed and restored (e.g. Dropout's). */
  generators?: Record<string, Generator>;
  /** Run after each optimizer step and checkpointed (e.g. an ExponentialMovingAverage). */
  hooks?: Record<string, TrainHook>;
  /** clip_grad_norm_ before each optimizer step. */
  clipGradNorm?: number | { maxNorm: number; normType?: number };
  /** Mixed precision with dynamic loss scaling (see TrainOptions.mixedPrecision in loop.ts). */
  mixedPrecision?: boolean | GradScaler;
  /** Classes (default: the training set's). */
  numClasses?: number;
  /** Stop cleanly at the next step boundary, checkpointing there when checkpointDir is set. */
  signal?: AbortSignal;
  /** Free-form JSON saved in the checkpoint's metadata (e.g. the CLI config). */
  config?: unknown;
}

export interface TrainResult {
  history: EpochMetrics[];
  /** Epochs finished, counting those restored from a checkpoint. */
  epochsDone: number;
  /** Epoch index training resumed in (mid-epoch after a step checkpoint), or null when it started fresh. */
  resumedAt: number | null;
  /** True when the signal stopped training early. */
  interrupted: boolean;
  checkpointPath: string | null;
}

/** Name of the checkpoint file inside checkpointDir. */
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/**
 * Per-sample correct flags [B] (1 where the true class's logit is the largest; ties count as
 * correct), from logits [B, C] and one-hot labels [B, C], without leaving the GPU.
 */
function correctFlags(logits: Tensor, onehot: Tensor): Tensor {
  return ge(sum(mul(logits, onehot), 1), max(logits, 1));
}

/** The classification step: mean cross-entropy to train on; loss sum and correct count over B as metrics. */
function classifierStep(ctx: GpuContext, model: Module, batch: Batch, C: number): StepOutput {
  const { x, y } = toGpuBatch(ctx, batch, C);
  const logits = model.forward(x);
  const losses = crossEntropy(logits, y);
  const metrics = ctx.noGrad(() => ({ loss: sum(losses), accuracy: sum(correctFlags(logits, oneHot(y, C))) }));
  return { loss: mean(losses), metrics, count: batch.y.length };
}

function toEpochMetrics(r: EpochRecord): EpochMetrics {
  const m = r.metrics;
  return {
    epoch: r.epoch, lr: r.lr, trainLoss: m.loss!, trainAccuracy: m.accuracy!, seconds: r.seconds, imagesPerSec: r.perSec,
    ...(m.testLoss !== undefined ? { testLoss: m.testLoss, testAccuracy: m.testAccuracy } : {}),
  };
}

/**
 * Train `model` for `epochs` epochs (or the rest of them after a resume) with mean cross-entropy,
 * through the generic loop (one step: upload, forward, loss, backward, optimizer step, hooks).
 * Deterministic: the same seeds on the same device give bit-identical weights, with or without an
 * interruption and resume in between.
 */
export async function trainClassifier(opts: TrainClassifierOptions): Promise<TrainResult> {
  const { ctx, model, trainLoader, testLoader, optimizer, epochs } = opts;
  const op = 'trainClassifier';
  if (!Number.isInteger(epochs) || epochs < 0) throw new EngineError(op, `epochs must be an integer >= 0, got ${epochs}`);
  if (opts.checkpointDir !== undefined && !opts.checkpointIO)
    throw new EngineError(op, `checkpointDir '${opts.checkpointDir}' needs a checkpointIO: nodeCheckpointIO() from the Node entry, or memoryCheckpointIO()`);
  const C = opts.numClasses ?? trainLoader.dataset.numClasses;
  const path = opts.checkpointDir !== undefined ? `${opts.checkpointDir.replace(/[\\/]+$/, '')}/${CHECKPOINT_FILE}` : null;
  const onProgress = opts.onProgress;
  const res = await train<Batch>({
    ctx, model, optimizer, epochs,
    loader: trainLoader,
    step: (batch) => classifierStep(ctx, model, batch, C),
    schedule: opts.schedule,
    scheduleUnit: opts.scheduleUnit,
    clipGradNorm: opts.clipGradNorm,
    mixedPrecision: opts.mixedPrecision,
    hooks: opts.hooks,
    generators: opts.generators,
    checkpoint: path ? { path, io: opts.checkpointIO!, resume: opts.resume, everySteps: opts.checkpointEverySteps } : undefined,
    onEpochEnd: testLoader
      ? async () => {
          const ev = await evaluate(ctx, model, testLoader, { numClasses: C });
          return { testLoss: ev.loss, testAccuracy: ev.accuracy };
        }
      : undefined,
    onProgress: onProgress && ((p: LoopProgress) => onProgress(toTrainProgress(p))),
    readEvery: opts.readEvery,
    progress: opts.progress,
    rateUnit: 'img',
    signal: opts.signal,
    config: opts.config,
  });
  return {
    history: res.history.map(toEpochMetrics),
    epochsDone: res.epochsDone,
    resumedAt: res.resumedAt?.epoch ?? null,
    interrupted: res.interrupted,
    checkpointPath: res.checkpointPath,
  };
}

function toTrainProgress(p: LoopProgress): TrainProgress {
  return {
    kind: p.kind, epoch: p.epoch, epochs: p.epochs, step: p.step, stepsPerEpoch: p.stepsPerEpoch, globalStep: p.globalStep, lr: p.lr,
    loss: p.metrics.loss ?? NaN, accuracy: p.metrics.accuracy ?? NaN, imagesPerSec: p.perSec,
    ...(p.record ? { metrics: toEpochMetrics(p.record) } : {}),
  };
}

// ------------------------------------------------------------------------------------------------
// Evaluation

export interface EvaluateResult {
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  n: number;
  /** Classes of the model's output (with `probs: true`). */
  C?: number;
  /** Softmax outputs [n, C] in loader order (with `probs: true`). */
  probs?: Float32Array;
  /** Argmax of each row of probs [n] (first maximum on ties; with `probs: true`). */
  preds?: Int32Array;
  /** Labels [n] in loader order (with `probs: true`). */
  labels?: Int32Array;
  /** Dataset indices [n] in loader order (with `probs: true`). */
  indices?: Int32Array;
}

export interface EvaluateOptions {
  /** Also return probs, preds, labels, indices and C. */
  probs?: boolean;
  /** Labels must lie in [0, numClasses) (default: the loader's dataset's class count). */
  numClasses?: number;
  /** Called after each batch with (batches done, batches in all). */
  progress?: (done: number, total: number) => void;
}

/** What evaluate returns with `probs: true`: every per-sample output, in loader order. */
export type EvaluateOutputs = EvaluateResult & Required<Pick<EvaluateResult, 'C' | 'probs' | 'preds' | 'labels' | 'indices'>>;

/**
 * Accuracy and mean loss of `model` over one pass of `loader` (its epoch 0 order), in eval mode
 * without gradients; the model's mode is restored afterwards. With `probs`, also the softmax
 * outputs, their argmax, the labels and the dataset indices (read back per batch).
 */
export async function evaluate(ctx: GpuContext, model: Module, loader: DataLoader, opts: EvaluateOptions & { probs: true }): Promise<EvaluateOutputs>;
export async function evaluate(ctx: GpuContext, model: Module, loader: DataLoader, opts?: EvaluateOptions): Promise<EvaluateResult>;
export async function evaluate(ctx: GpuContext, model: Module, loader: DataLoader, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  const wasTraining = model.training;
  model.eval();
  const C = opts.numClasses ?? loader.dataset.numClasses;
  const lossSum = new GpuSum(ctx);
  const correct = new GpuSum(ctx);
  const probs: Float32Array[] = [];
  const labels: Int32Array[] = [];
  const indices: Int32Array[] = [];
  let n = 0;
  let width = 0;
  let done = 0;
  const inFlight = new InFlight(ctx);
  try {
    for await (const batch of loader.batches(0)) {
      const p = ctx.noGrad(() =>
        ctx.scope(() => {
          const { x, y } = toGpuBatch(ctx, batch, C);
          const logits = model.forward(x);
          lossSum.add(sum(crossEntropy(logits, y)));
          correct.add(sum(correctFlags(logits, oneHot(y, C))));
          return opts.probs ? softmax(logits, 1) : null;
        }),
      );
      n += batch.y.length;
      if (p) {
        width = p.shape[1]!;
        probs.push((await p.read()) as Float32Array);
        p.dispose();
        labels.push(batch.y);
        indices.push(batch.indices);
      } else await inFlight.submit();
      opts.progress?.(++done, loader.numBatches);
    }
    const res: EvaluateResult = { accuracy: n ? (await correct.read()) / n : NaN, loss: n ? (await lossSum.read()) / n : NaN, n };
    if (opts.probs) {
      res.C = width || C;
      res.probs = concat(probs, Float32Array);
      res.preds = argmaxRows(res.probs, res.C);
      res.labels = concat(labels, Int32Array);
      res.indices = concat(indices, Int32Array);
    }
    return res;
  } finally {
    lossSum.dispose();
    correct.dispose();
    model.train(wasTraining);
  }
}

/** Index of the first maximum of each row of probs [n, C]. */
function argmaxRows(probs: Float32Array, C: number): Int32Array {
  const out = new Int32Array(probs.length / C);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (probs[i * C + c]! > probs[i * C + best]!) best = c;
    out[i] = best;
  }
  return out;
}

function concat<T extends Float32Array | Int32Array>(parts: T[], Ctor: { new (n: number): T }): T {
  const out = new Ctor(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
