// Mixed-precision training: autocast (matmul/linear compute in f16 with f32 accumulation inside a
// region, src/wgsl/matmul_f16.ts) and GradScaler, dynamic loss scaling as torch.cuda.amp.GradScaler:
// the loss is multiplied by `scale` before backward so small gradients survive the f16 rounding of
// dY; before the optimizer step the gradients are divided by `scale` and checked for inf/NaN on the
// GPU (one kernel per gradient buffer writing one shared flag), the flag is read back (the one
// read-back per step), and a step with a non-finite gradient is skipped and counted. The scale halves
// after a skipped step and doubles after `growthInterval` finite steps in a row (torch's defaults:
// 2^16, ×2, ×0.5, 2000).
//
// Master weights stay f32 (parameters and optimizer state are never f16); conv2d, norms and the
// rest stay f32 inside autocast. On a device without 'shader-f16', autocast runs in f32 and says so
// once per context; the scaler still scales (harmless: powers of two) unless disabled.
// The training loop checkpoints the scaler's state (scale, growth tracker, counts) with its hooks.
// Not here: bf16, a GPU-side skip without read-back.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { autocastEnter, autocastActive } from '../wgsl/matmul_f16.js';
import { hasF16 } from '../wgsl/cast.js';
import { zeros } from '../wgsl/fill.js';
import { grid1d, LINEAR_INDEX, packUniforms } from '../wgsl/util.js';
import { mulScalar } from '../ops/index.js';
import type { Optimizer } from './optim.js';
import { EngineError } from '../util/errors.js';

export { autocastActive };

/**
 * Run `fn` with matmul and linear computed in f16 (f32 accumulation, f32 results) on `ctx`; async
 * functions keep the region until they settle. Nested regions are allowed. Without 'shader-f16' on
 * the device it runs `fn` in f32 and prints one line saying so (once per context).
 */
export function autocast<T>(ctx: GpuContext, fn: () => T): T {
  autocastEnter(ctx, 1);
  let async = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      async = true;
      return r.finally(() => autocastEnter(ctx, -1)) as T;
    }
    return r;
  } finally {
    if (!async) autocastEnter(ctx, -1);
  }
}

export interface GradScalerOptions {
  /** Initial scale (default 2^16, torch's). */
  initScale?: number;
  /** Factor after `growthInterval` finite steps in a row (default 2). */
  growthFactor?: number;
  /** Factor after a step with a non-finite gradient (default 0.5). */
  backoffFactor?: number;
  /** Finite steps in a row before the scale grows (default 2000). */
  growthInterval?: number;
  /** false: every method is a pass-through (scale 1, no checks, no read-back). Default true. */
  enabled?: boolean;
}

const WG = 64;

/** g *= inv for every element; flag |= 1 when an element of g (before scaling) is inf or NaN. */
const UNSCALE_WGSL = /* wgsl */ `
struct Params { n: u32, inv: f32 }
@group(0) @binding(0) var<storage, read_write> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> flag: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  let v = g[i];
  if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) { atomicOr(&flag[0], 1u); }
  g[i] = v * P.inv;
}`;

/**
 * Record, for each gradient buffer once (gradients may share storage), g /= scale and the inf/NaN
 * check into `flag` (u32 [1], set to 1 on any non-finite element, never cleared here).
 */
export function unscaleAndCheck(grads: readonly Tensor[], scale: number, flag: Tensor): void {
  const op = 'unscaleGradients';
  if (flag.dtype !== 'u32' || flag.size < 1) throw new EngineError(op, `flag ${flag.describe()} must be u32 [1]`);
  const done: Tensor[] = [];
  for (const g of grads) {
    if (g.dtype !== 'f32') throw new EngineError(op, `gradient ${g.describe()} is not f32`);
    if (g.size === 0 || done.some((d) => d.sharesStorage(g))) continue;
    done.push(g);
    flag.ctx.dispatch({
      op,
      key: 'amp:unscale',
      code: () => UNSCALE_WGSL,
      buffers: [g.binding(op), flag.binding(op)],
      uniforms: packUniforms([g.size, { f: 1 / scale }]),
      workgroups: grid1d(g.size, WG),
    });
  }
}

/**
 * Dynamic loss scaling, as torch.cuda.amp.GradScaler. Per step:
 *
 *     backward(scaler.scaleLoss(loss));
 *     scaler.unscale(optimizer);          // optional: before clipping; step() does it otherwise
 *     const stepped = await scaler.step(optimizer);   // one read-back; skips on inf/NaN
 *     scaler.update();
 *
 * `skippedSteps` counts skipped steps; `scale` is the current scale.
 */
export class GradScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  /** Finite steps since the last growth or backoff. */
  growthTracker = 0;
  /** Steps skipped because a gradient was inf or NaN. */
  skippedSteps = 0;
  /** Steps taken (finite gradients). */
  takenSteps = 0;
  private flag: Tensor | null = null;
  private unscaled: Optimizer | null = null;
  /** Result of the last step(): true when it found a non-finite gradient; null before update() may run. */
  private lastFoundInf: boolean | null = null;

  constructor(
    readonly ctx: GpuContext,
    options: GradScalerOptions = {},
  ) {
    const op = 'GradScaler';
    const num = (name: string, v: number, ok: (v: number) => boolean, rule: string) => {
      if (!(typeof v === 'number' && ok(v))) throw new EngineError(op, `${name} ${v} must be ${rule}`);
      return v;
    };
    this.scale = num('initScale', options.initScale ?? 65536, (v) => v > 0 && Number.isFinite(v), 'finite and > 0');
    this.growthFactor = num('growthFactor', options.growthFactor ?? 2, (v) => v > 1 && Number.isFinite(v), 'finite and > 1');
    this.backoffFactor = num('backoffFactor', options.backoffFactor ?? 0.5, (v) => v > 0 && v < 1, 'in (0, 1)');
    this.growthInterval = num('growthInterval', options.growthInterval ?? 2000, (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
    this.enabled = options.enabled ?? true;
  }

  /** True when the device computes autocast regions in f16 (else they run in f32). */
  get f16(): boolean {
    return hasF16(this.ctx);
  }

  /** loss × scale (a new tensor, differentiable), or `loss` itself when disabled. */
  scaleLoss(loss: Tensor): Tensor {
    if (!this.enabled) return loss;
    if (loss.ctx !== this.ctx) throw new EngineError('GradScaler.scaleLoss', `${loss.describe()} lives on another GPU context`);
    return mulScalar(loss, this.scale);
  }

  /**
   * Divide the optimizer's gradients by the scale in place and record the inf/NaN check (no wait).
   * Once per step: a second call before step() is an error, as in torch.
   */
  unscale(optimizer: Optimizer): void {
    if (!this.enabled) return;
    if (this.unscaled === optimizer) throw new EngineError('GradScaler.unscale', 'unscale() was already called for this optimizer since the last step()');
    const grads = optimizer.params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    this.flag?.dispose();
    this.flag = this.ctx.keep(zeros(this.ctx, [1], 'u32'));
    unscaleAndCheck(grads, this.scale, this.flag);
    this.unscaled = optimizer;
  }

  /**
   * Unscale (unless done), read the inf/NaN flag (waits for the GPU), and run optimizer.step() when
   * every gradient is finite. Returns true when the optimizer stepped. Call update() after.
   */
  async step(optimizer: Optimizer): Promise<boolean> {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    if (this.unscaled !== optimizer) this.unscale(optimizer);
    const flag = this.flag!;
    const found = (await flag.read<'u32'>())[0] !== 0;
    this.unscaled = null;
    this.lastFoundInf = found;
    if (found) this.skippedSteps++;
    else {
      optimizer.step();
      this.takenSteps++;
    }
    return !found;
  }

  /** Adjust the scale from the last step(): backoff after a skip, growth after growthInterval finite steps. */
  update(): void {
    if (!this.enabled) return;
    const found = this.lastFoundInf;
    if (found === null) throw new EngineError('GradScaler.update', 'update() needs a step() first');
    this.lastFoundInf = null;
    if (found) {
      this.scale *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.growthTracker = 0;
    }
  }

  /** The scaler's state for checkpoints (the training loop saves it as the hook 'gradScaler'). */
  checkpointState(): { meta: { scale: number; growthTracker: number; skippedSteps: number; takenSteps: number } } {
    return { meta: { scale: this.scale, growthTracker: this.growthTracker, skippedSteps: this.skippedSteps, takenSteps: this.takenSteps } };
  }

  /** Restore checkpointState()'s meta; null (a checkpoint written without mixed precision) keeps the current state. */
  restoreCheckpointState(meta: unknown): void {
    if (meta === null || meta === undefined) return;
    const m = meta as Record<string, unknown>;
    const ok = (k: string, pos: boolean) => typeof m[k] === 'number' && Number.isFinite(m[k]) && (pos ? (m[k] as number) > 0 : (m[k] as number) >= 0);
    if (!ok('scale', true) || !ok('growthTracker', false) || !ok('skippedSteps', false) || !ok('takenSteps', false))
      throw new EngineError('GradScaler', `checkpointed state ${JSON.stringify(meta)} is not a GradScaler's`);
    this.scale = m.scale as number;
    this.growthTracker = m.growthTracker as number;
    this.skippedSteps = m.skippedSteps as number;
    this.takenSteps = m.takenSteps as number;
  }

  /** Free the flag buffer. */
  dispose(): void {
    this.flag?.dispose();
    this.flag = null;
  }
}
