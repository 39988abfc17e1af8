// Supervised training of a classifier: per step upload, forward, mean cross-entropy, backward,
// optimizer step; loss and correct counts accumulated on the GPU and read back only every k steps;
// evaluation in eval mode without gradients; an atomic per-epoch checkpoint (model, optimizer, epoch,
// RNG states, history) in one safetensors file, and bit-identical resumption from it.
// It does not do mixed precision, gradient accumulation or distributed training.
//
// Letters: B batch, C classes.

import { type GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { toGpuBatch } from '../data/gpu.js';
import type { Batch, DataLoader } from '../data/loader.js';
import { toFloat32, type SafetensorsFile, type SafetensorsTensor } from '../io/safetensors.js';
import { tensorsToRecord } from '../io/state.js';
import type { Optimizer } from './optim.js';
import type { LrSchedule } from './schedule.js';
import type { Module } from './module.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';
import { add, ge, mul, max, mean, sum, tensor, zeros, crossEntropy, softmax, backward } from '../ops/index.js';

/** File I/O for checkpoints (Node: nodeCheckpointIO(); a browser can keep them in IndexedDB). */
export interface CheckpointIO {
  save(path: string, tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string>): Promise<void>;
  /** The parsed file, or null when it does not exist. */
  load(path: string): Promise<SafetensorsFile | null>;
}

/** Checkpoint I/O through node:fs (atomic writes via saveSafetensorsFile). Node only. */
export async function nodeCheckpointIO(): Promise<CheckpointIO> {
  // a computed specifier keeps browser bundlers from pulling Node's fs into the bundle
  const modName = '../io/safetensors-node.js';
  const io = (await import(/* @vite-ignore */ modName)) as typeof import('../io/safetensors-node.js');
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  return {
    async save(path, tensors, metadata) {
      const dir = path.replace(/[\\/][^\\/]*$/, '');
      if (dir && dir !== path) fs.mkdirSync(dir, { recursive: true });
      await io.saveSafetensorsFile(path, tensors, metadata);
    },
    async load(path) {
      if (!fs.existsSync(path)) return null;
      return io.loadSafetensorsFile(path);
    },
  };
}

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
  /** Default: nodeCheckpointIO() when checkpointDir is set. */
  checkpointIO?: CheckpointIO;
  onProgress?: (p: TrainProgress) => void;
  /** Read the GPU accumulators back every this many steps (default 20; reading waits for the GPU). */
  readEvery?: number;
  /** Progress bar on stderr (default true); false or a stream. */
  progress?: boolean | ProgressStream;
  /** Further generators whose state is checkpointed and restored (e.g. Dropout's). */
  generators?: Record<string, Generator>;
  /** Classes (default: the training set's). */
  numClasses?: number;
  /** Stop cleanly (after the current step, without checkpointing the partial epoch) when aborted. */
  signal?: AbortSignal;
  /** Free-form JSON saved in the checkpoint's metadata (e.g. the CLI config). */
  config?: unknown;
}

export interface TrainResult {
  history: EpochMetrics[];
  /** Epochs finished, counting those restored from a checkpoint. */
  epochsDone: number;
  /** Epoch index training resumed at, or null when it started fresh. */
  resumedAt: number | null;
  /** True when the signal stopped training early. */
  interrupted: boolean;
  checkpointPath: string | null;
}

/** Name of the checkpoint file inside checkpointDir. */
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const FORMAT = 'unlearn-gpu.checkpoint.v1';

interface CheckpointState {
  epochsDone: number;
  optimizer: { step: number; lr: number; paramSteps: number[] };
  generators: Record<string, { seed: number; stream: number }>;
  history: EpochMetrics[];
  config?: unknown;
}

/** One-hot f32 [B, C] of the labels (for the GPU-side correct count). */
function oneHot(y: Int32Array, C: number): Float32Array {
  const out = new Float32Array(y.length * C);
  y.forEach((c, i) => (out[i * C + c] = 1));
  return out;
}

/**
 * Per-sample correct flags [B] (1 where the true class's logit is the largest; ties count as
 * correct), from logits [B, C] and one-hot [B, C], without leaving the GPU.
 */
function correctFlags(logits: Tensor, onehot: Tensor): Tensor {
  return ge(sum(mul(logits, onehot), 1), max(logits, 1));
}

/** Running GPU sums replaced in place (the old tensor freed, the new one kept out of scopes). */
class GpuSum {
  t: Tensor;
  constructor(readonly ctx: GpuContext) {
    this.t = ctx.keep(zeros(ctx, []));
  }
  add(x: Tensor): void {
    const next = this.ctx.keep(add(this.t, x));
    this.t.dispose();
    this.t = next;
  }
  reset(): void {
    this.t.dispose();
    this.t = this.ctx.keep(zeros(this.ctx, []));
  }
  async read(): Promise<number> {
    return this.t.item();
  }
  dispose(): void {
    this.t.dispose();
  }
}

/**
 * Submits recorded work and keeps the CPU at most `depth` submits ahead of the GPU. Without this
 * the CPU records step after step while the GPU lags, and every step's released buffers stay
 * parked in the pool until the GPU catches up: memory grows by one step's activations per step.
 */
class InFlight {
  private queue: Promise<unknown>[] = [];
  constructor(
    private readonly ctx: GpuContext,
    private readonly depth = 2,
  ) {}
  async submit(): Promise<void> {
    this.ctx.flush();
    this.queue.push(this.ctx.device.queue.onSubmittedWorkDone());
    while (this.queue.length > this.depth) await this.queue.shift();
  }
}

export interface EvaluateResult {
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  n: number;
  /** Softmax outputs [n, C] in loader order (with `probs: true`). */
  probs?: Float32Array;
  /** Labels [n] in loader order (with `probs: true`). */
  labels?: Int32Array;
  /** Dataset indices [n] in loader order (with `probs: true`). */
  indices?: Int32Array;
}

/**
 * Accuracy and mean loss of `model` over one pass of `loader` (its epoch 0 order), in eval mode
 * without gradients; the model's mode is restored afterwards. With `probs`, also the softmax
 * outputs (read back per batch).
 */
export async function evaluate(
  ctx: GpuContext,
  model: Module,
  loader: DataLoader,
  opts: { probs?: boolean; numClasses?: number } = {},
): Promise<EvaluateResult> {
  const wasTraining = model.training;
  model.eval();
  const C = opts.numClasses ?? loader.dataset.numClasses;
  const lossSum = new GpuSum(ctx);
  const correct = new GpuSum(ctx);
  const probs: Float32Array[] = [];
  const labels: Int32Array[] = [];
  const indices: Int32Array[] = [];
  let n = 0;
  const inFlight = new InFlight(ctx);
  try {
    for await (const batch of loader.batches(0)) {
      const p = ctx.noGrad(() =>
        ctx.scope(() => {
          const { x, y } = toGpuBatch(ctx, batch, C);
          const logits = model.forward(x);
          lossSum.add(sum(crossEntropy(logits, y)));
          correct.add(sum(correctFlags(logits, tensor(ctx, oneHot(batch.y, C), [batch.y.length, C]))));
          return opts.probs ? softmax(logits, 1) : null;
        }),
      );
      n += batch.y.length;
      if (p) {
        probs.push((await p.read()) as Float32Array);
        p.dispose();
        labels.push(batch.y);
        indices.push(batch.indices);
      } else await inFlight.submit();
    }
    const res: EvaluateResult = { accuracy: n ? (await correct.read()) / n : NaN, loss: n ? (await lossSum.read()) / n : NaN, n };
    if (opts.probs) {
      res.probs = concat(probs, Float32Array) as Float32Array;
      res.labels = concat(labels, Int32Array) as Int32Array;
      res.indices = concat(indices, Int32Array) as Int32Array;
    }
    return res;
  } finally {
    lossSum.dispose();
    correct.dispose();
    model.train(wasTraining);
  }
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

// ------------------------------------------------------------------------------------------------
// Checkpoints

/** Save model + optimizer + training state as one safetensors file (atomic through the IO). */
export async function saveCheckpoint(
  io: CheckpointIO,
  path: string,
  model: Module,
  optimizer: Optimizer,
  state: CheckpointState,
): Promise<void> {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [n, t] of await tensorsToRecord(model.stateDict())) tensors.set(`model.${n}`, t);
  const osd = optimizer.stateDict();
  const optTensors = osd.tensors instanceof Map ? osd.tensors : new Map(Object.entries(osd.tensors));
  for (const [n, t] of await tensorsToRecord(optTensors)) tensors.set(`optim.${n}`, t);
  await io.save(path, tensors, { format: FORMAT, epoch: String(state.epochsDone), state: JSON.stringify(state) });
}

/**
 * Load a checkpoint written by saveCheckpoint into `model` and `optimizer` (recorded GPU copies);
 * returns its training state. Errors name every bad tensor.
 */
export function loadCheckpoint(ctx: GpuContext, file: SafetensorsFile, model: Module, optimizer: Optimizer): CheckpointState {
  const op = 'loadCheckpoint';
  if (file.metadata.format !== FORMAT)
    throw new EngineError(op, `not a training checkpoint (metadata format '${file.metadata.format ?? ''}', expected '${FORMAT}')`);
  const state = JSON.parse(file.metadata.state ?? 'null') as CheckpointState | null;
  if (!state || typeof state.epochsDone !== 'number') throw new EngineError(op, 'checkpoint metadata has no training state');
  const modelPart = new Map<string, SafetensorsTensor>();
  const optPart = new Map<string, SafetensorsTensor>();
  for (const [n, t] of file.tensors) {
    if (n.startsWith('model.')) modelPart.set(n.slice(6), t);
    else if (n.startsWith('optim.')) optPart.set(n.slice(6), t);
    else throw new EngineError(op, `unexpected tensor '${n}' (neither model.* nor optim.*)`);
  }
  model.loadStateDict(modelPart);
  ctx.scope(() => {
    const tensors = new Map<string, Tensor>();
    for (const [n, t] of optPart) tensors.set(n, tensor(ctx, toFloat32(t), t.shape));
    optimizer.loadStateDict({ ...state.optimizer, tensors });
  });
  return state;
}

// ------------------------------------------------------------------------------------------------
// The loop

/**
 * Train `model` for `epochs` epochs (or the rest of them after a resume). One step: upload the
 * batch, forward, mean cross-entropy, backward, optimizer step, drop the gradients, all inside a
 * ctx.scope; then submit without waiting. Deterministic: the same seeds on the same device give
 * bit-identical weights, with or without an interruption and resume in between.
 */
export async function trainClassifier(opts: TrainClassifierOptions): Promise<TrainResult> {
  const { ctx, model, trainLoader, testLoader, optimizer, epochs } = opts;
  const op = 'trainClassifier';
  if (!Number.isInteger(epochs) || epochs < 0) throw new EngineError(op, `epochs must be an integer >= 0, got ${epochs}`);
  const readEvery = Math.max(1, opts.readEvery ?? 20);
  const unit = opts.scheduleUnit ?? 'epoch';
  const C = opts.numClasses ?? trainLoader.dataset.numClasses;
  const generators = opts.generators ?? {};
  const baseLr = optimizer.lr;
  const lrAt = (epoch: number, globalStep: number) =>
    opts.schedule ? opts.schedule(unit === 'epoch' ? epoch : globalStep) : baseLr;
  const stepsPerEpoch = trainLoader.numBatches;
  const io = opts.checkpointIO ?? (opts.checkpointDir ? await nodeCheckpointIO() : null);
  const ckptPath = opts.checkpointDir ? `${opts.checkpointDir.replace(/[\\/]+$/, '')}/${CHECKPOINT_FILE}` : null;

  let history: EpochMetrics[] = [];
  let startEpoch = 0;
  let resumedAt: number | null = null;
  if (opts.resume && io && ckptPath) {
    const file = await io.load(ckptPath);
    if (file) {
      const state = loadCheckpoint(ctx, file, model, optimizer);
      for (const [name, g] of Object.entries(generators)) {
        const s = state.generators[name];
        if (!s) throw new EngineError(op, `checkpoint has no state for generator '${name}'`);
        g.setState(s);
      }
      history = state.history ?? [];
      startEpoch = resumedAt = state.epochsDone;
    }
  }

  const lossSum = new GpuSum(ctx);
  const correct = new GpuSum(ctx);
  const stream = opts.progress === false ? null : opts.progress === true || opts.progress === undefined ? undefined : opts.progress;
  let interrupted = false;
  const inFlight = new InFlight(ctx);
  model.train();
  try {
    for (let epoch = startEpoch; epoch < epochs && !interrupted; epoch++) {
      const t0 = performance.now();
      lossSum.reset();
      correct.reset();
      let seen = 0;
      let step = 0;
      let lr = lrAt(epoch, epoch * stepsPerEpoch);
      const bar = stream === null ? null : new ProgressBar({ total: stepsPerEpoch, label: `epoch ${epoch + 1}/${epochs}`, stream });
      let last = { loss: NaN, accuracy: NaN };
      const report = async (kind: 'step' | 'epoch', metrics?: EpochMetrics) => {
        const [l, c] = [await lossSum.read(), await correct.read()];
        last = { loss: l / Math.max(1, seen), accuracy: c / Math.max(1, seen) };
        const imagesPerSec = seen / ((performance.now() - t0) / 1000);
        if (kind === 'step') bar?.update(step, { loss: last.loss, accuracy: last.accuracy, imagesPerSec, lr });
        opts.onProgress?.({
          kind, epoch, epochs, step, stepsPerEpoch, globalStep: epoch * stepsPerEpoch + step, lr,
          loss: last.loss, accuracy: last.accuracy, imagesPerSec, ...(metrics ? { metrics } : {}),
        });
      };
      for await (const batch of trainLoader.batches(epoch)) {
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        if (unit === 'step') lr = lrAt(epoch, epoch * stepsPerEpoch + step);
        optimizer.lr = lr;
        trainStep(ctx, model, optimizer, batch, C, lossSum, correct);
        await inFlight.submit(); // the GPU starts while the next batch is prepared
        seen += batch.y.length;
        step++;
        if (step % readEvery === 0 && step < stepsPerEpoch) await report('step');
      }
      if (interrupted) {
        bar?.finish('(interrupted)');
        break;
      }
      await report('step');
      const seconds = (performance.now() - t0) / 1000;
      const metrics: EpochMetrics = {
        epoch, lr, trainLoss: last.loss, trainAccuracy: last.accuracy, seconds, imagesPerSec: seen / seconds,
      };
      if (testLoader) {
        const ev = await evaluate(ctx, model, testLoader, { numClasses: C });
        metrics.testLoss = ev.loss;
        metrics.testAccuracy = ev.accuracy;
      }
      history.push(metrics);
      bar?.finish(metrics.testAccuracy !== undefined ? `test acc ${(100 * metrics.testAccuracy).toFixed(2)}%` : '');
      if (io && ckptPath) {
        const generatorsState: CheckpointState['generators'] = {};
        for (const [name, g] of Object.entries(generators)) generatorsState[name] = g.state();
        const osd = optimizer.stateDict();
        await saveCheckpoint(io, ckptPath, model, optimizer, {
          epochsDone: epoch + 1,
          optimizer: { step: osd.step, lr: osd.lr ?? optimizer.lr, paramSteps: osd.paramSteps },
          generators: generatorsState,
          history,
          config: opts.config,
        });
      }
      await report('epoch', metrics);
    }
  } finally {
    lossSum.dispose();
    correct.dispose();
  }
  return {
    history,
    epochsDone: history.length,
    resumedAt,
    interrupted,
    checkpointPath: io ? ckptPath : null,
  };
}

/** One optimisation step on `batch`; adds the batch's loss sum and correct count to the GPU sums. */
function trainStep(
  ctx: GpuContext,
  model: Module,
  optimizer: Optimizer,
  batch: Batch,
  C: number,
  lossSum: GpuSum,
  correct: GpuSum,
): void {
  ctx.scope(() => {
    const { x, y } = toGpuBatch(ctx, batch, C);
    const logits = model.forward(x);
    const losses = crossEntropy(logits, y);
    optimizer.zeroGrad();
    backward(mean(losses));
    optimizer.step();
    optimizer.zeroGrad();
    ctx.noGrad(() => {
      lossSum.add(sum(losses));
      correct.add(sum(correctFlags(logits, tensor(ctx, oneHot(batch.y, C), [batch.y.length, C]))));
    });
  });
}
