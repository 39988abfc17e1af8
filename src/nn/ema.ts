// Exponential moving average of a module's parameters on the GPU (the EMA weights DDPM and DiT
// sample with): after each optimizer step shadow <- shadow - (1 - d) (shadow - param), one fused
// elementwise dispatch per parameter, no read-back. A TrainHook, so the loop runs and checkpoints it.
// It does not average buffers (BatchNorm statistics): copyTo writes parameters only.

import type { Tensor } from '../autograd/tensor.js';
import { mapRaw } from '../wgsl/map.js';
import { EngineError } from '../util/errors.js';
import { loadIntoTensors } from '../io/state.js';
import { copyTensor, type AnyModule } from './module.js';
import type { TrainHook } from './loop.js';

export interface EmaOptions {
  /** Decay d in [0, 1]: the weight of the old average (DDPM 0.9999, DiT 0.9999). */
  decay: number;
  /**
   * Warm-up as tf.train.ExponentialMovingAverage with num_updates: update n (0-based) uses
   * min(decay, (1 + n) / (10 + n)), so early averages are not dominated by the initial weights.
   */
  warmup?: boolean;
}

/** EMA of every parameter of `model` (frozen ones included), by dotted name. */
export class ExponentialMovingAverage implements TrainHook {
  readonly decay: number;
  readonly warmup: boolean;
  /** Updates done so far. */
  numUpdates = 0;
  private readonly params: [string, Tensor][];
  private shadows = new Map<string, Tensor>();

  constructor(model: AnyModule, opts: EmaOptions) {
    const op = 'ExponentialMovingAverage';
    if (!(typeof opts.decay === 'number' && opts.decay >= 0 && opts.decay <= 1)) throw new EngineError(op, `decay must lie in [0, 1], got ${opts.decay}`);
    this.decay = opts.decay;
    this.warmup = opts.warmup ?? false;
    this.params = model.namedParameters();
    if (this.params.length === 0) throw new EngineError(op, `${model.constructor.name} has no parameters`);
    const ctx = model.ctx;
    // the average starts at the current weights (a recorded copy)
    for (const [name, p] of this.params) {
      const s = ctx.keep(ctx.noGrad(() => mapRaw('ema.init', 'a', [p])));
      s.name = `ema.${name}`;
      this.shadows.set(name, s);
    }
  }

  /** The decay update `numUpdates` uses. */
  currentDecay(): number {
    const n = this.numUpdates;
    return this.warmup ? Math.min(this.decay, (1 + n) / (10 + n)) : this.decay;
  }

  /** shadow <- shadow - (1 - d) (shadow - param) for every parameter (recorded; torch's lerp_(param, 1 - d)). */
  update(): void {
    const w = 1 - this.currentDecay();
    for (const [name, p] of this.params) {
      if (p.disposed) throw new EngineError('ExponentialMovingAverage.update', `parameter '${name}' was disposed`);
      const old = this.shadows.get(name)!;
      const next = p.ctx.keep(mapRaw('ema.update', 'a - p0 * (a - b)', [old, p], [w, 0]));
      next.name = old.name;
      old.dispose();
      this.shadows.set(name, next);
    }
    this.numUpdates++;
  }

  /** The averages by parameter name (live tensors, replaced at every update: read them, do not keep them). */
  get shadow(): ReadonlyMap<string, Tensor> {
    return this.shadows;
  }

  /**
   * Write the averages into the same-named parameters of `target` (the model itself, or a spawn()
   * of it for sampling). Every name must match; one error lists all problems.
   */
  copyTo(target: AnyModule): void {
    loadIntoTensors(new Map(target.namedParameters()), this.shadows, { op: 'ExponentialMovingAverage.copyTo' });
  }

  /** Restart the average at the module's current weights. */
  reset(): void {
    for (const [name, p] of this.params) copyTensor('ExponentialMovingAverage.reset', p, this.shadows.get(name)!);
    this.numUpdates = 0;
  }

  afterStep(): void {
    this.update();
  }

  checkpointState(): { tensors: Map<string, Tensor>; meta: { numUpdates: number; decay: number } } {
    return { tensors: new Map(this.shadows), meta: { numUpdates: this.numUpdates, decay: this.decay } };
  }

  restoreCheckpointState(meta: unknown): void {
    const m = meta as { numUpdates?: unknown } | null;
    if (!m || !(Number.isInteger(m.numUpdates) && (m.numUpdates as number) >= 0))
      throw new EngineError('ExponentialMovingAverage', `checkpoint metadata has no update count (${JSON.stringify(meta)})`);
    this.numUpdates = m.numUpdates as number;
  }

  /** Free the averages. */
  dispose(): void {
    for (const t of this.shadows.values()) t.dispose();
    this.shadows.clear();
  }
}
