// Weight-saliency masks (spec §2-§4), task-generic: every gradient comes from the task's own
// per-sample loss (task.ts), never from a hard-coded cross-entropy. SFR-on's forget/remain Fisher
// ratio and SalUn's top-k of |Σ ∇(−L)|, both computed with the model in eval mode (its mode is
// restored), so a mask never depends on batch statistics or on what ran before it.
// It does not apply masks (nn/optim.ts maskGradients / Optimizer.setUpdateMask do).

import type { Tensor } from '../../autograd/tensor.js';
import type { AnyModule } from '../../nn/module.js';
import { EngineError } from '../../util/errors.js';
import { add, addScalar, abs, div, full, ge, mean, mulScalar, neg, square, tensor, backward } from '../../ops/index.js';
import type { BatchSource, UnlearnProblem } from './task.js';

/** Parameter -> mask of the same shape (1 = may move). A parameter without an entry is unmasked. */
export type SaliencyMask = Map<Tensor, Tensor>;

/** (phase, done, total) for long loops. */
export type Progress = (phase: string, done: number, total: number) => void;

/** Runs `fn` with the model in eval mode and restores its previous mode afterwards (also on error). */
export async function inEvalMode<T>(model: AnyModule, fn: () => Promise<T>): Promise<T> {
  const wasTraining = model.training;
  model.eval();
  try {
    return await fn();
  } finally {
    model.train(wasTraining);
  }
}

/**
 * Σ over the batches of `source` (its epoch 0) of f(∇ loss(batch)), per parameter, where the
 * caller's `accumulate` folds one batch's gradient into the running sum. Zeroes the model's
 * gradients before each batch and after the last. At most two batches are recorded ahead of the GPU.
 */
async function gradientSum<R, B>(
  p: UnlearnProblem<R, B>,
  model: AnyModule,
  source: BatchSource<R>,
  params: Tensor[],
  loss: (model: AnyModule, b: B) => Tensor,
  accumulate: (acc: Tensor, grad: Tensor) => Tensor,
  phase: string,
  progress?: Progress,
  signal?: AbortSignal,
): Promise<Tensor[]> {
  const { ctx } = p;
  const n = source.numBatches;
  if (n === 0) throw new EngineError('saliency mask', `the ${phase} data yields no batches`);
  const acc = params.map((q) => ctx.keep(full(ctx, q.shape, 0)));
  let k = 0;
  try {
    for await (const raw of source.batches(0)) {
      signal?.throwIfAborted();
      ctx.scope(() => {
        model.zeroGrad();
        backward(loss(model, p.upload(raw)));
        ctx.noGrad(() =>
          params.forEach((q, i) => {
            if (!q.grad) return;
            const next = ctx.keep(accumulate(acc[i]!, q.grad));
            acc[i]!.dispose();
            acc[i] = next;
          }),
        );
      });
      progress?.(phase, ++k, n);
      if (k % 2 === 0) await ctx.sync(); // released buffers wait for the GPU: bound the work in flight
    }
  } catch (e) {
    acc.forEach((t) => t.dispose());
    throw e;
  } finally {
    model.zeroGrad();
  }
  return acc;
}

/**
 * Mini-batch empirical Fisher diagonal of the mean task loss over `source`:
 * F = Σ_batches (∇ mean lᵢ)² / #batches (spec §3.1; not per-sample). Model mode as the caller set it.
 */
export function fisherDiagonal<R, B>(
  p: UnlearnProblem<R, B>,
  model: AnyModule,
  source: BatchSource<R>,
  params: Tensor[],
  phase = 'fisher',
  progress?: Progress,
  signal?: AbortSignal,
): Promise<Tensor[]> {
  const inv = 1 / source.numBatches;
  return gradientSum(p, model, source, params, (m, b) => mean(p.perSampleLoss(m, b)), (acc, g) => add(acc, mulScalar(square(g), inv)), phase, progress, signal);
}

/**
 * SFR-on's mask (spec §3.1): in eval mode, the Fisher diagonals F_f over D_f and F_r over D_r, then
 * M = ((F_f + 1e-15) / (F_r + 1e-15) ≥ γ) for every trainable parameter tensor.
 */
export async function fisherRatioMask<R, B>(p: UnlearnProblem<R, B>, model: AnyModule, gamma: number, progress?: Progress, signal?: AbortSignal): Promise<SaliencyMask> {
  if (!(typeof gamma === 'number' && gamma >= 0)) throw new EngineError('fisherRatioMask', `threshold γ = ${gamma} must be a non-negative number`);
  const { ctx } = p;
  return inEvalMode(model, async () => {
    const params = model.trainableParameters();
    const Ff = await fisherDiagonal(p, model, p.forget, params, 'fisher D_f', progress, signal);
    let Fr: Tensor[];
    try {
      Fr = await fisherDiagonal(p, model, p.remain, params, 'fisher D_r', progress, signal);
    } catch (e) {
      Ff.forEach((t) => t.dispose());
      throw e;
    }
    const mask: SaliencyMask = new Map();
    ctx.noGrad(() =>
      params.forEach((q, i) => {
        mask.set(q, ctx.keep(ctx.scope(() => ge(div(addScalar(Ff[i]!, 1e-15), addScalar(Fr[i]!, 1e-15)), full(ctx, [1], gamma)))));
        Ff[i]!.dispose();
        Fr[i]!.dispose();
      }),
    );
    return mask;
  });
}

/**
 * SalUn's mask (spec §4): in eval mode, G = |Σ over every forget batch of ∇(−mean lᵢ)|, ranked over
 * all parameters together; exactly k = ⌊n·threshold⌋ entries are 1 (the authors' rank < k): the k
 * largest, ties at the cut broken by position (parameter order, then index). The ranking runs on the
 * CPU once (counted in the runtime); the masks are uploaded.
 */
export async function salunMask<R, B>(p: UnlearnProblem<R, B>, model: AnyModule, threshold: number, progress?: Progress, signal?: AbortSignal): Promise<SaliencyMask> {
  if (!(threshold > 0 && threshold <= 1)) throw new EngineError('salunMask', `threshold ${threshold} must be in (0, 1]`);
  const { ctx } = p;
  return inEvalMode(model, async () => {
    const params = model.trainableParameters();
    const G = await gradientSum(p, model, p.forget, params, (m, b) => neg(mean(p.perSampleLoss(m, b))), (acc, g) => add(acc, g), 'salun mask', progress, signal);
    const absG = G.map((g) => ctx.keep(ctx.noGrad(() => abs(g))));
    G.forEach((g) => g.dispose());
    const host = await Promise.all(absG.map((g) => g.read()));
    absG.forEach((g) => g.dispose());
    const bits = topKMask(host, Math.floor(host.reduce((s, a) => s + a.length, 0) * threshold));
    const mask: SaliencyMask = new Map();
    params.forEach((q, i) => mask.set(q, ctx.keep(tensor(ctx, bits[i]!, q.shape))));
    return mask;
  });
}

/**
 * 0/1 masks selecting exactly the k largest values over all arrays together (ties at the k-th value
 * taken in order: array by array, index by index).
 */
export function topKMask(values: readonly Float32Array[], k: number): Float32Array[] {
  const total = values.reduce((s, a) => s + a.length, 0);
  if (!(Number.isInteger(k) && k >= 0 && k <= total)) throw new EngineError('topKMask', `k = ${k} is not in [0, ${total}]`);
  const out = values.map((a) => new Float32Array(a.length));
  if (k === 0) return out;
  const all = new Float32Array(total);
  let off = 0;
  for (const a of values) {
    all.set(a, off);
    off += a.length;
  }
  const cut = kthLargest(all, k);
  let above = 0;
  for (const v of all) if (v > cut) above++;
  let ties = k - above; // how many values equal to the cut still fit
  values.forEach((a, i) => {
    const o = out[i]!;
    for (let j = 0; j < a.length; j++) {
      if (a[j]! > cut) o[j] = 1;
      else if (a[j] === cut && ties > 0) {
        o[j] = 1;
        ties--;
      }
    }
  });
  return out;
}

/** k-th largest value (1-based) of `values` by quickselect on a copy; NaN-free input expected. */
export function kthLargest(values: Float32Array, k: number): number {
  if (!(k >= 1 && k <= values.length)) throw new EngineError('kthLargest', `k = ${k} is not in [1, ${values.length}]`);
  const a = Float32Array.from(values);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

/** Fraction of entries the mask lets move (for reports); reads the masks back. */
export async function maskDensity(mask: SaliencyMask): Promise<number> {
  let on = 0;
  let n = 0;
  for (const m of mask.values()) {
    const v = await m.read();
    for (const x of v) on += x;
    n += v.length;
  }
  return n ? on / n : 1;
}

/** Dispose every mask tensor. */
export function disposeMask(mask: SaliencyMask | null | undefined): void {
  mask?.forEach((m) => m.dispose());
}
