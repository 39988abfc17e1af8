// The training loop every trainer shares. Per step: the caller's step function (batch -> loss,
// optionally with named scalar metrics), backward, optional gradient clipping, the optimizer step,
// then hooks (an EMA of the weights); metrics summed on the GPU and read back every k steps; at most
// two submits in flight; an LR schedule per epoch or per step; a budget of epochs or of steps;
// atomic checkpoints at epoch ends and/or every N steps, resumed bit-identically mid-epoch; a
// progress bar; an AbortSignal that stops at a step boundary and checkpoints there.
// It does not know what a batch is (classification is train.ts), and does no mixed precision,
// gradient accumulation or distributed training.

import type { GpuContext } from '../gpu/context.js';
import { Tensor } from '../autograd/tensor.js';
import { add, backward, reshape, zeros } from '../ops/index.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';
import type { AnyModule } from './module.js';
import { clipGradNorm, type Optimizer } from './optim.js';
import { GradScaler, autocast } from './amp.js';
import { hasF16 } from '../ops/index.js';
import type { LrSchedule } from './schedule.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { checkpointState, loadCheckpoint, saveCheckpoint, type CheckpointIO } from './checkpoint.js';

/** What the loop iterates: DataLoader is one; any object serving epoch e from batch k is. */
export interface EpochLoader<B> {
  /** Batches per epoch. */
  readonly numBatches: number;
  /** Batches of epoch `epoch` from batch `from` on; batch k must not depend on `from`. */
  batches(epoch: number, from?: number): AsyncIterable<B>;
}

/** Where the loop is when it calls the step function and the hooks. */
export interface StepInfo {
  /** 0-based epoch index. */
  epoch: number;
  /** Steps already done in this epoch. */
  step: number;
  /** Steps already done in the run. */
  globalStep: number;
  /** The optimizer's lr for this step. */
  lr: number;
}

/** A step's result beyond its loss. */
export interface StepOutput {
  /** Scalar loss (one element) that requires grad; the loop calls backward on it. */
  loss: Tensor;
  /**
   * Scalar tensors summed on the GPU over the epoch; each is reported as its sum divided by the
   * summed `count` (default: { loss }, i.e. the mean loss per step).
   */
  metrics?: Record<string, Tensor>;
  /** This step's weight in the metrics' denominator, e.g. the batch size when metrics are sums over the batch (default 1). */
  count?: number;
}

/**
 * One training step's forward pass and loss, recorded (not awaited) inside the loop's scope: every
 * tensor it creates is freed when the step ends. The loop does zeroGrad, backward, clipping, the
 * optimizer step and the hooks.
 */
export type StepFn<B> = (batch: B, info: StepInfo) => Tensor | StepOutput;

/** A step hook with optional checkpointed state (ExponentialMovingAverage is one). */
export interface TrainHook {
  /** After every optimizer step, inside the step's scope: record GPU work, do not wait. */
  afterStep?(info: StepInfo): void;
  /** Live tensors (read back into checkpoints, loaded back in place on resume) and JSON metadata. */
  checkpointState?(): { tensors?: Map<string, Tensor>; meta?: unknown };
  /** On resume, after the tensors of checkpointState() were loaded: restore the metadata. */
  restoreCheckpointState?(meta: unknown): void;
}

export interface LoopCheckpointOptions {
  /** File path handed to `io`. */
  path: string;
  io: CheckpointIO;
  /** Save after every this many epochs (default 1; 0: not at epoch ends). The last epoch always saves. */
  everyEpochs?: number;
  /** Also save every this many global steps (mid-epoch included; default: never). */
  everySteps?: number;
  /** Continue from `path` when it exists. */
  resume?: boolean;
}

/** One finished epoch (a step budget may end the last one early). */
export interface EpochRecord {
  epoch: number;
  /** lr of the epoch's last step. */
  lr: number;
  /** Steps the epoch had. */
  steps: number;
  /** Each metric's epoch mean (sum / count), plus what onEpochEnd returned. */
  metrics: Record<string, number>;
  /** Wall time of the epoch (without evaluation), across a resume. */
  seconds: number;
  /** Summed `count` per second (samples/s when steps give their batch size, else steps/s). */
  perSec: number;
}

/** What onProgress receives: every `readEvery` steps ('step') and after each epoch ('epoch'). */
export interface LoopProgress {
  kind: 'step' | 'epoch';
  epoch: number;
  /** Epochs of the run (the last one possibly partial). */
  epochs: number;
  /** Steps done in this epoch. */
  step: number;
  /** Steps this epoch has. */
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  lr: number;
  /** Running means of this epoch so far. */
  metrics: Record<string, number>;
  perSec: number;
  /** Set for 'epoch'. */
  record?: EpochRecord;
}

export interface TrainOptions<B> {
  ctx: GpuContext;
  model: AnyModule;
  optimizer: Optimizer;
  loader: EpochLoader<B>;
  step: StepFn<B>;
  /** Run length: whole epochs, or a number of optimizer steps (exactly one of the two). */
  epochs?: number;
  totalSteps?: number;
  /**
   * lr as a function of the epoch index (scheduleUnit 'epoch', the default: set at the start of
   * each epoch) or of the global step ('step'). Default: the optimizer's lr throughout.
   */
  schedule?: LrSchedule;
  scheduleUnit?: 'epoch' | 'step';
  /** clip_grad_norm_ before each optimizer step; the pre-clip norm's mean is reported as `gradNorm`. */
  clipGradNorm?: number | { maxNorm: number; normType?: number };
  /** Run after every optimizer step in insertion order; their state goes into checkpoints as `hook.<name>.*`. */
  hooks?: Record<string, TrainHook>;
  /** Generators whose state is checkpointed and restored (the step's noise, Dropout's). */
  generators?: Record<string, Generator>;
  checkpoint?: LoopCheckpointOptions;
  /**
   * After each epoch's metrics are read and before it is checkpointed (e.g. an evaluation); the
   * returned numbers join the epoch's metrics. Runs with the model in whatever mode it leaves.
   */
  onEpochEnd?: (epoch: number, metrics: Record<string, number>) => Promise<Record<string, number> | void> | Record<string, number> | void;
  onProgress?: (p: LoopProgress) => void;
  /** Read the GPU sums back every this many steps (default 20; reading waits for the GPU). */
  readEvery?: number;
  /** Submits the CPU may run ahead of the GPU (default 2). */
  inFlight?: number;
  /** Progress bar on stderr (default true); false or a stream. */
  progress?: boolean | ProgressStream;
  /** Unit of the rate on the bar (default 'samples' once a step gives a count, else 'steps'). */
  rateUnit?: string;
  /** Stop at the next step boundary, writing a checkpoint there when checkpoints are on. */
  signal?: AbortSignal;
  /** Free-form JSON saved in the checkpoint's state. */
  config?: unknown;
  /**
   * Mixed precision (src/nn/amp.ts): the step runs inside autocast (matmul/linear in f16 with f32
   * accumulation; f32 on a device without 'shader-f16', said once), the loss is scaled by the
   * GradScaler before backward, gradients are unscaled and checked on the GPU before clipping, and a
   * step with an inf/NaN gradient is skipped (one read-back per step). `true` makes a GradScaler
   * with torch's defaults (disabled without 'shader-f16': the run is then the plain f32 run); pass
   * your own to read `skippedSteps` and `scale`. Its state is checkpointed as the hook 'gradScaler'.
   */
  mixedPrecision?: boolean | GradScaler;
}

export interface LoopResult {
  history: EpochRecord[];
  /** Finished epochs, counting those restored from a checkpoint. */
  epochsDone: number;
  /** Optimizer steps done, counting restored ones. */
  globalStep: number;
  /** Where training resumed, or null when it started fresh. */
  resumedAt: { epoch: number; step: number; globalStep: number } | null;
  /** True when the signal stopped training early. */
  interrupted: boolean;
  /** The checkpoint written last (null when none was written or configured). */
  checkpointPath: string | null;
}

/** The JSON part of a loop checkpoint (the tensors are in the file). */
interface LoopState {
  epoch: number;
  stepInEpoch: number;
  globalStep: number;
  stepsPerEpoch: number;
  history: EpochRecord[];
  generators: Record<string, { seed: number; stream: number }>;
  hooks: Record<string, unknown>;
  /** Partial-epoch metric denominators (their sums are the `loop.sum.*` tensors). */
  denominators: Record<string, number>;
  /** Partial-epoch summed count, elapsed seconds, and whether steps gave counts. */
  seen: number;
  seconds: number;
  counted: boolean;
  config?: unknown;
}

/** Running GPU sum replaced in place (the old tensor freed, the new one kept out of scopes). */
export class GpuSum {
  t: Tensor;
  constructor(readonly ctx: GpuContext) {
    this.t = ctx.keep(zeros(ctx, []));
  }
  /** Add a one-element tensor (recorded, no autograd). */
  add(x: Tensor): void {
    const next = this.ctx.keep(this.ctx.noGrad(() => add(this.t, x.rank === 0 ? x : reshape(x, []))));
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
export class InFlight {
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

/** Named GPU sums with their denominators (sum of the weights they were added with). */
class MetricSums {
  readonly sums = new Map<string, { sum: GpuSum; denom: number }>();
  constructor(private readonly ctx: GpuContext) {}
  add(name: string, x: Tensor, weight: number): void {
    let e = this.sums.get(name);
    if (!e) this.sums.set(name, (e = { sum: new GpuSum(this.ctx), denom: 0 }));
    e.sum.add(x);
    e.denom += weight;
  }
  /** Means so far (waits for the GPU). */
  async means(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [n, e] of this.sums) out[n] = e.denom > 0 ? (await e.sum.read()) / e.denom : NaN;
    return out;
  }
  tensors(): Map<string, Tensor> {
    return new Map([...this.sums].map(([n, e]) => [n, e.sum.t]));
  }
  denominators(): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([n, e]) => [n, e.denom]));
  }
  /** Fresh zero sums for `denominators`' names (their values are then loaded from a checkpoint). */
  restore(denominators: Record<string, number>): void {
    this.clear();
    for (const [n, d] of Object.entries(denominators)) this.sums.set(n, { sum: new GpuSum(this.ctx), denom: d });
  }
  clear(): void {
    for (const e of this.sums.values()) e.sum.dispose();
    this.sums.clear();
  }
}

function checkCount(op: string, name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new EngineError(op, `${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Train `model` with `step` over `loader` for `epochs` epochs or `totalSteps` steps (or what is
 * left of them after a resume). One step, inside a ctx.scope: zeroGrad, the step function, backward,
 * clipping, optimizer step, zeroGrad, hooks, metric sums; then a submit that does not wait unless
 * `inFlight` submits are pending. Deterministic: the same seeds on the same device give
 * bit-identical weights, with or without an interruption and resume in between.
 */
export async function train<B>(opts: TrainOptions<B>): Promise<LoopResult> {
  const { ctx, model, optimizer, loader } = opts;
  const op = 'train';
  if ((opts.epochs === undefined) === (opts.totalSteps === undefined))
    throw new EngineError(op, `give exactly one of epochs (${opts.epochs}) and totalSteps (${opts.totalSteps})`);
  checkCount(op, 'epochs', opts.epochs, 0);
  checkCount(op, 'totalSteps', opts.totalSteps, 0);
  checkCount(op, 'readEvery', opts.readEvery, 1);
  checkCount(op, 'inFlight', opts.inFlight, 0);
  const ck = opts.checkpoint;
  if (ck) {
    if (!ck.io || typeof ck.io.save !== 'function') throw new EngineError(op, 'checkpoint.io must be a CheckpointIO (nodeCheckpointIO() in Node, memoryCheckpointIO())');
    checkCount(op, 'checkpoint.everyEpochs', ck.everyEpochs, 0);
    checkCount(op, 'checkpoint.everySteps', ck.everySteps, 1);
  }
  const spe = loader.numBatches;
  const totalSteps = opts.totalSteps ?? opts.epochs! * spe;
  if (totalSteps > 0 && !(Number.isInteger(spe) && spe > 0)) throw new EngineError(op, `the loader has ${spe} batches per epoch`);
  const readEvery = opts.readEvery ?? 20;
  const unit = opts.scheduleUnit ?? 'epoch';
  const baseLr = optimizer.lr;
  const lrAt = (epoch: number, globalStep: number) => (opts.schedule ? opts.schedule(unit === 'epoch' ? epoch : globalStep) : baseLr);
  const hooks: [string, TrainHook][] = Object.entries(opts.hooks ?? {});
  // mixed precision: the scaler's state is checkpointed like a hook's, under 'gradScaler'
  // (one made here is disabled on a device without 'shader-f16': f32 needs no loss scaling or read-back)
  const scaler = opts.mixedPrecision instanceof GradScaler ? opts.mixedPrecision : opts.mixedPrecision ? new GradScaler(ctx, { enabled: hasF16(ctx) }) : null;
  if (scaler) {
    if (hooks.some(([name]) => name === 'gradScaler')) throw new EngineError(op, "the hook name 'gradScaler' is taken by mixedPrecision's GradScaler");
    hooks.push(['gradScaler', scaler]);
  }
  for (const [name] of hooks) if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new EngineError(op, `hook name '${name}' must be letters, digits, '_' or '-'`);
  const generators = opts.generators ?? {};
  const clip = opts.clipGradNorm === undefined ? null : typeof opts.clipGradNorm === 'number' ? { maxNorm: opts.clipGradNorm } : opts.clipGradNorm;

  const sums = new MetricSums(ctx);
  const pos = { epoch: 0, step: 0, globalStep: 0 };
  let history: EpochRecord[] = [];
  let seen = 0;
  let counted = false;
  let carriedSeconds = 0;
  let resumedAt: LoopResult['resumedAt'] = null;
  let lastSaved = '';
  let checkpointPath: string | null = null;

  const hookGroups = () => {
    const groups: Record<string, Map<string, Tensor>> = { 'loop.sum': sums.tensors() };
    const meta: Record<string, unknown> = {};
    for (const [name, h] of hooks) {
      const s = h.checkpointState?.();
      if (!s) continue;
      if (s.tensors?.size) groups[`hook.${name}`] = s.tensors;
      meta[name] = s.meta ?? null;
    }
    return { groups, meta };
  };

  if (ck?.resume) {
    const file = await ck.io.load(ck.path);
    if (file) {
      const state = checkpointState(file, ck.path) as LoopState;
      if (!state || typeof state.globalStep !== 'number' || !Array.isArray(state.history))
        throw new EngineError(op, `${ck.path} has no loop state (written by another trainer?)`);
      if (state.stepsPerEpoch !== spe && state.globalStep > 0)
        throw new EngineError(op, `${ck.path} was written with ${state.stepsPerEpoch} batches per epoch, the loader has ${spe}`);
      const missingGen = Object.keys(generators).filter((n) => !state.generators?.[n]);
      if (missingGen.length) throw new EngineError(op, `${ck.path} has no state for generator(s) ${missingGen.map((n) => `'${n}'`).join(', ')}`);
      sums.restore(state.denominators ?? {});
      const { groups } = hookGroups();
      loadCheckpoint(file, { model, optimizer, groups }, ck.path);
      for (const [name, g] of Object.entries(generators)) g.setState(state.generators[name]!);
      for (const [name, h] of hooks) if (h.restoreCheckpointState) h.restoreCheckpointState(state.hooks?.[name] ?? null);
      Object.assign(pos, { epoch: state.epoch, step: state.stepInEpoch, globalStep: state.globalStep });
      history = state.history;
      seen = state.seen;
      counted = state.counted;
      carriedSeconds = state.seconds;
      resumedAt = { ...pos };
      lastSaved = `${pos.epoch}:${pos.step}`;
      checkpointPath = ck.path;
    }
  }

  const save = async (seconds: number) => {
    if (!ck) return;
    const key = `${pos.epoch}:${pos.step}`;
    if (key === lastSaved) return;
    const { groups, meta } = hookGroups();
    const state: LoopState = {
      epoch: pos.epoch,
      stepInEpoch: pos.step,
      globalStep: pos.globalStep,
      stepsPerEpoch: spe,
      history,
      generators: Object.fromEntries(Object.entries(generators).map(([n, g]) => [n, g.state()])),
      hooks: meta,
      denominators: sums.denominators(),
      seen,
      seconds,
      counted,
      ...(opts.config !== undefined ? { config: opts.config } : {}),
    };
    await saveCheckpoint(ck.io, ck.path, { model, optimizer, groups }, state);
    lastSaved = key;
    checkpointPath = ck.path;
  };

  const runStep = (batch: B, info: StepInfo) =>
    ctx.scope(() => {
      optimizer.zeroGrad();
      const res = scaler ? autocast(ctx, () => opts.step(batch, info)) : opts.step(batch, info);
      const out: StepOutput = res instanceof Tensor ? { loss: res } : res;
      const { loss } = out;
      if (!(loss instanceof Tensor) || loss.size !== 1 || loss.dtype !== 'f32')
        throw new EngineError(op, `the step must return a one-element f32 loss, got ${loss instanceof Tensor ? loss.describe() : typeof loss}`);
      if (!loss.requiresGrad) throw new EngineError(op, `the step's loss ${loss.describe()} does not require grad (computed under noGrad, or from frozen parameters only?)`);
      const count = out.count ?? 1;
      if (!(count >= 0 && Number.isFinite(count))) throw new EngineError(op, `the step's count must be a finite number >= 0, got ${out.count}`);
      const metrics = out.metrics ?? { loss };
      for (const [name, m] of Object.entries(metrics))
        if (!(m instanceof Tensor) || m.size !== 1 || m.dtype !== 'f32') throw new EngineError(op, `metric '${name}' must be a one-element f32 tensor, got ${m instanceof Tensor ? m.describe() : typeof m}`);
      const finish = (stepped: boolean, gradNorm: Tensor | null) => {
        optimizer.zeroGrad();
        if (stepped) for (const [, h] of hooks) h.afterStep?.(info);
        for (const [name, m] of Object.entries(metrics)) sums.add(name, m, count);
        if (gradNorm) sums.add('gradNorm', gradNorm, 1);
        seen += count;
        if (out.count !== undefined) counted = true;
      };
      if (!scaler) {
        backward(loss);
        const gradNorm = clip ? clipGradNorm([...optimizer.params], clip.maxNorm, clip.normType) : null;
        optimizer.step();
        return finish(true, gradNorm);
      }
      // mixed precision: scaled backward, unscale + inf/NaN check, clip, step unless non-finite
      backward(scaler.scaleLoss(loss));
      scaler.unscale(optimizer);
      const gradNorm = clip ? clipGradNorm([...optimizer.params], clip.maxNorm, clip.normType) : null;
      return scaler.step(optimizer).then((stepped) => {
        scaler.update();
        finish(stepped, stepped ? gradNorm : null);
      });
    });

  const stream = opts.progress === false ? null : opts.progress === true || opts.progress === undefined ? undefined : opts.progress;
  const inFlight = new InFlight(ctx, opts.inFlight ?? 2);
  let interrupted = false;
  try {
    while (pos.globalStep < totalSteps && !interrupted) {
      model.train(); // (again: onEpochEnd may have left it in eval mode)
      const epoch = pos.epoch;
      // this epoch's steps: where it stands plus what the budget has left, at most a full epoch (a
      // run whose earlier budget ended an epoch early is not aligned to epoch * spe)
      const steps = Math.min(spe, pos.step + totalSteps - pos.globalStep);
      const epochsTotal = opts.epochs ?? epoch + Math.ceil((totalSteps - pos.globalStep + pos.step) / spe);
      const t0 = performance.now() - carriedSeconds * 1000;
      carriedSeconds = 0;
      const seconds = () => (performance.now() - t0) / 1000;
      let lr = lrAt(epoch, pos.globalStep);
      const bar = stream === null ? null : new ProgressBar({ total: steps, label: `epoch ${epoch + 1}/${epochsTotal}`, stream });
      let means: Record<string, number> = {};
      const report = async (kind: 'step' | 'epoch', record?: EpochRecord) => {
        if (kind === 'step') means = await sums.means();
        const perSec = record?.perSec ?? seen / seconds();
        if (kind === 'step') {
          const { loss, accuracy, ...rest } = means;
          bar?.update(pos.step, { loss, accuracy, metrics: rest, perSec: { value: perSec, unit: opts.rateUnit ?? (counted ? 'samples' : 'steps') }, lr });
        }
        opts.onProgress?.({
          kind, epoch, epochs: epochsTotal, step: pos.step, stepsPerEpoch: steps, globalStep: pos.globalStep, totalSteps, lr,
          metrics: record?.metrics ?? means, perSec, ...(record ? { record } : {}),
        });
      };
      for await (const batch of loader.batches(epoch, pos.step)) {
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        if (unit === 'step') lr = lrAt(epoch, pos.globalStep);
        optimizer.lr = lr;
        await runStep(batch, { epoch, step: pos.step, globalStep: pos.globalStep, lr });
        await inFlight.submit(); // the GPU starts while the next batch is prepared
        pos.step++;
        pos.globalStep++;
        if (pos.step >= steps) break; // a step budget can end the epoch early
        if (ck?.everySteps && pos.globalStep % ck.everySteps === 0) await save(seconds());
        if (pos.step % readEvery === 0) await report('step');
      }
      if (!interrupted && pos.step < steps) throw new EngineError(op, `the loader served ${pos.step} of epoch ${epoch}'s ${steps} batches`);
      if (interrupted) {
        await save(seconds());
        bar?.finish('(interrupted)');
        break;
      }
      await report('step');
      const elapsed = seconds();
      const record: EpochRecord = { epoch, lr, steps, metrics: { ...means }, seconds: elapsed, perSec: seen / elapsed };
      const extra = await opts.onEpochEnd?.(epoch, record.metrics);
      if (extra) Object.assign(record.metrics, extra);
      history = [...history, record];
      bar?.finish(summaryOf(extra));
      Object.assign(pos, { epoch: epoch + 1, step: 0 });
      sums.clear();
      seen = 0;
      const every = ck?.everyEpochs ?? 1;
      const due = (every > 0 && (epoch + 1) % every === 0) || pos.globalStep === totalSteps || !!(ck?.everySteps && pos.globalStep % ck.everySteps === 0);
      if (due) await save(0);
      await report('epoch', record);
    }
  } finally {
    sums.clear();
    if (scaler && scaler !== opts.mixedPrecision) scaler.dispose(); // made here: free its flag buffer
  }
  return { history, epochsDone: history.length, globalStep: pos.globalStep, resumedAt, interrupted, checkpointPath };
}

/** "testAccuracy 0.9812 testLoss 0.0612" for the end of a bar line. */
function summaryOf(extra: Record<string, number> | void): string {
  return extra ? Object.entries(extra).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(' ') : '';
}
