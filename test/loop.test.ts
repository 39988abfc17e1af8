// The generic training loop with non-classification steps: a regression step learns under a step
// budget and a per-step schedule; the loop does exactly what a hand-written loop does (zeroGrad,
// step, backward, clipping, optimizer step, hooks) bit for bit, with GPU metric sums matching the
// per-step values; a denoising step with Adam, clipping, an EMA hook and a noise generator resumes
// bit-identically from a mid-epoch step checkpoint and from an abort checkpoint; errors name problems.
//
// Letters: B batch, D input features, O outputs.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng } from './helpers.js';
import { tensor, randn, sub, square, mean, sum, mulScalar, add, backward } from '../src/ops/index.js';
import { MLP } from '../src/models/mlp.js';
import { Adam, AdamW, clipGradNorm, paramGroups, type Optimizer } from '../src/nn/optim.js';
import { cosineLr, warmup } from '../src/nn/schedule.js';
import { train, type EpochLoader, type LoopProgress, type StepOutput } from '../src/nn/loop.js';
import { ExponentialMovingAverage } from '../src/nn/ema.js';
import { memoryCheckpointIO, checkpointState, saveCheckpoint, type CheckpointIO } from '../src/nn/checkpoint.js';
import { trainClassifier } from '../src/nn/train.js';
import { DataLoader } from '../src/data/loader.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import type { Tensor } from '../src/autograd/tensor.js';
import type { GpuContext } from '../src/gpu/context.js';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();

interface XYBatch {
  x: Float32Array;
  y: Float32Array;
  B: number;
}

/** Rows of (x [n, D], y [n, O]) served in a seeded permutation per epoch: an EpochLoader that is not a DataLoader. */
class ArrayLoader implements EpochLoader<XYBatch> {
  constructor(
    readonly x: Float32Array,
    readonly y: Float32Array,
    readonly n: number,
    readonly D: number,
    readonly O: number,
    readonly batchSize: number,
    readonly seed: number,
  ) {}
  get numBatches() {
    return Math.ceil(this.n / this.batchSize);
  }
  async *batches(epoch: number, from = 0): AsyncGenerator<XYBatch> {
    const perm = new Generator(this.seed * 1000 + epoch).permutation(this.n);
    for (let k = from; k < this.numBatches; k++) {
      const rows = perm.slice(k * this.batchSize, (k + 1) * this.batchSize);
      const B = rows.length;
      const x = new Float32Array(B * this.D);
      const y = new Float32Array(B * this.O);
      rows.forEach((r, i) => {
        x.set(this.x.subarray(r * this.D, (r + 1) * this.D), i * this.D);
        y.set(this.y.subarray(r * this.O, (r + 1) * this.O), i * this.O);
      });
      yield { x, y, B };
    }
  }
}

/** y = x W + b + 0.01 noise, x ~ U(-1, 1): a linear regression task. */
function regressionData(n: number, D: number, O: number, batchSize: number, seed: number): ArrayLoader {
  const rng = new Rng(seed);
  const W = rng.uniform(D * O, -1, 1);
  const b = rng.uniform(O, -0.5, 0.5);
  const x = Float32Array.from(rng.uniform(n * D, -1, 1));
  const noise = rng.normal(n * O);
  const y = new Float32Array(n * O);
  for (let i = 0; i < n; i++)
    for (let o = 0; o < O; o++) {
      let s = b[o]! + 0.01 * noise[i * O + o]!;
      for (let d = 0; d < D; d++) s += x[i * D + d]! * W[d * O + o]!;
      y[i * O + o] = s;
    }
  return new ArrayLoader(x, y, n, D, O, batchSize, seed);
}

/** Mean squared error to train on; the batch's squared-error sum as the metric, counted per output value. */
function regressionStep(ctx: GpuContext, model: MLP, D: number, O: number) {
  return (b: XYBatch): StepOutput => {
    const pred = model.forward(tensor(ctx, b.x, [b.B, D]));
    const sq = square(sub(pred, tensor(ctx, b.y, [b.B, O])));
    return { loss: mean(sq), metrics: ctx.noGrad(() => ({ mse: sum(sq) })), count: b.B * O };
  };
}

const bits = async (t: Tensor) => new Uint32Array((await t.read()).buffer);

async function expectSameBits(a: Iterable<[string, Tensor]>, b: Map<string, Tensor> | ReadonlyMap<string, Tensor>, what: string) {
  let n = 0;
  for (const [name, t] of a) {
    const other = b.get(name);
    expect(other, `${what} ${name} present`).toBeDefined();
    expect(Buffer.from((await bits(other!)).buffer).equals(Buffer.from((await bits(t)).buffer)), `${what} ${name} bits`).toBe(true);
    n++;
  }
  expect(n, `${what}: something compared`).toBeGreaterThan(0);
}

describe('train (generic loop)', () => {
  it('a regression step learns under a step budget that ends mid-epoch, with a per-step schedule', async () => {
    const { ctx } = gpu;
    const [D, O] = [6, 3];
    const loader = regressionData(40, D, O, 8, 1); // 5 batches per epoch
    const model = new MLP(ctx, { sizes: [D, 16, O], seed: 1 });
    const optimizer = new Adam(model.parameters(), { lr: 0.05 });
    const schedule = warmup(3, cosineLr(0.05, 15));
    const step = regressionStep(ctx, model, D, O);
    const lrs: [number, number, number][] = [];
    const events: LoopProgress[] = [];
    const res = await train({
      ctx, model, optimizer, loader, totalSteps: 18, schedule, scheduleUnit: 'step', progress: false, readEvery: 2,
      step: (b, info) => {
        lrs.push([info.globalStep, info.lr, optimizer.lr]);
        return step(b);
      },
      onProgress: (p) => events.push(p),
    });
    expect(res.globalStep).toBe(18);
    expect(res.history.map((h) => h.steps)).toEqual([5, 5, 5, 3]);
    expect(res.history.map((h) => h.epoch)).toEqual([0, 1, 2, 3]);
    expect(lrs.map(([g]) => g)).toEqual([...Array(18).keys()]);
    for (const [g, lr, optLr] of lrs) {
      expect(lr, `lr at step ${g}`).toBe(schedule(g));
      expect(optLr, `optimizer lr at step ${g}`).toBe(schedule(g));
    }
    expect(res.history.at(-1)!.lr).toBe(schedule(17));
    // the first epoch's mean squared error is that of a random net; the last must be far below it
    const mse = res.history.map((h) => h.metrics.mse!);
    expect(mse.every(Number.isFinite)).toBe(true);
    expect(mse.at(-1)!).toBeLessThan(mse[0]! * 0.2);
    expect(events.filter((e) => e.kind === 'epoch').map((e) => e.record!.epoch)).toEqual([0, 1, 2, 3]);
    const stepEvents = events.filter((e) => e.kind === 'step' && e.step < e.stepsPerEpoch);
    expect(stepEvents.map((e) => e.step)).toEqual([2, 4, 2, 4, 2, 4, 2]); // the 3-step last epoch reports at 2
    expect(events.at(-1)!.totalSteps).toBe(18);
    optimizer.dispose();
    model.dispose();
  });

  it('does exactly what a hand-written loop does: same bits for weights, AdamW groups, EMA; metric means match', async () => {
    const { ctx } = gpu;
    const [D, O] = [6, 3];
    const loader = regressionData(24, D, O, 8, 2);
    const schedule = cosineLr(0.05, 6);
    const make = () => {
      const model = new MLP(ctx, { sizes: [D, 8, O], seed: 2 });
      const optimizer = new AdamW(paramGroups(model), { lr: 0.05, weightDecay: 0.1 });
      const ema = new ExponentialMovingAverage(model, { decay: 0.7, warmup: true });
      return { model, optimizer, ema };
    };
    const a = make();
    const res = await train({
      ctx, model: a.model, optimizer: a.optimizer, loader, epochs: 2, schedule, scheduleUnit: 'step', progress: false, readEvery: 2,
      clipGradNorm: 0.2, hooks: { ema: a.ema }, step: regressionStep(ctx, a.model, D, O),
    });

    const b = make();
    const step = regressionStep(ctx, b.model, D, O);
    const perEpoch: { mse: Tensor[]; norm: Tensor[]; count: number }[] = [];
    let g = 0;
    for (let e = 0; e < 2; e++) {
      const acc = { mse: [] as Tensor[], norm: [] as Tensor[], count: 0 };
      for await (const batch of loader.batches(e)) {
        ctx.scope(() => {
          b.optimizer.lr = schedule(g++);
          b.optimizer.zeroGrad();
          const out = step(batch);
          backward(out.loss);
          acc.norm.push(ctx.keep(clipGradNorm([...b.optimizer.params], 0.2)));
          b.optimizer.step();
          b.optimizer.zeroGrad();
          b.ema.update();
          acc.mse.push(ctx.keep(out.metrics!.mse!));
          acc.count += out.count!;
        });
      }
      perEpoch.push(acc);
    }
    await expectSameBits(a.model.namedParameters(), new Map(b.model.namedParameters()), 'weights');
    await expectSameBits(a.ema.shadow, b.ema.shadow, 'EMA');
    await expectSameBits(a.optimizer.stateDict().tensors as Map<string, Tensor>, b.optimizer.stateDict().tensors as Map<string, Tensor>, 'AdamW state');
    expect(a.ema.numUpdates).toBe(6);
    // the GPU sums over the epoch divided by the summed counts, against float64 sums of the per-step values
    for (const [e, acc] of perEpoch.entries()) {
      let mse = 0;
      let norm = 0;
      let maxNorm = 0;
      for (const t of acc.mse) mse += await t.item();
      for (const t of acc.norm) {
        const v = await t.item();
        norm += v;
        maxNorm = Math.max(maxNorm, v);
      }
      expect(res.history[e]!.metrics.mse! / (mse / acc.count) - 1, `epoch ${e} mse`).toBeCloseTo(0, 5);
      expect(res.history[e]!.metrics.gradNorm! / (norm / acc.norm.length) - 1, `epoch ${e} grad norm`).toBeCloseTo(0, 5);
      expect(maxNorm, 'the clip threshold was exceeded (clipping is exercised)').toBeGreaterThan(0.2);
      [...acc.mse, ...acc.norm].forEach((t) => t.dispose());
    }
    for (const r of [a, b]) {
      r.ema.dispose();
      r.optimizer.dispose();
      r.model.dispose();
    }
  });

  it('a denoising step with Adam, clipping, EMA and a noise generator resumes bit-identically from step and abort checkpoints', async () => {
    const { ctx } = gpu;
    const D = 8;
    const loader = regressionData(24, D, 1, 8, 3); // only x is used: 3 batches per epoch
    const totalSteps = 10;
    type Run = { model: MLP; optimizer: Optimizer; ema: ExponentialMovingAverage; noise: Generator; res: Awaited<ReturnType<typeof train>> };
    const run = async (io: CheckpointIO, opts: { resume?: boolean; signal?: AbortSignal; onProgress?: (p: LoopProgress) => void } = {}): Promise<Run> => {
      const model = new MLP(ctx, { sizes: [D, 16, D], seed: 3 });
      const optimizer = new Adam(model.parameters(), { lr: 0.01 });
      const ema = new ExponentialMovingAverage(model, { decay: 0.8, warmup: true });
      const noise = new Generator(77);
      const res = await train<XYBatch>({
        ctx, model, optimizer, loader, totalSteps, progress: false, readEvery: 1,
        schedule: cosineLr(0.01, totalSteps), scheduleUnit: 'step', clipGradNorm: { maxNorm: 1 },
        hooks: { ema }, generators: { noise },
        checkpoint: { path: 'run/ckpt.safetensors', io, everySteps: 4, resume: opts.resume },
        signal: opts.signal, onProgress: opts.onProgress,
        // predict the noise added to x (sigma 0.5): mse(model(x + 0.5 eps), eps)
        step: (b) => {
          const x = tensor(ctx, b.x, [b.B, D]);
          const eps = randn(ctx, [b.B, D], noise);
          return mean(square(sub(model.forward(add(x, mulScalar(eps, 0.5))), eps)));
        },
      });
      return { model, optimizer, ema, noise, res };
    };

    const full = await run(memoryCheckpointIO());
    expect(full.res.history.map((h) => h.steps)).toEqual([3, 3, 3, 1]);
    expect(full.res.interrupted).toBe(false);

    const io = memoryCheckpointIO();
    let atStep4: Uint8Array | null = null;
    const ac = new AbortController();
    const cut = await run(io, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.kind !== 'step') return;
        if (p.globalStep === 4) atStep4 = io.files.get('run/ckpt.safetensors')!.slice(); // the every-4-steps checkpoint
        if (p.globalStep === 5) ac.abort();
      },
    });
    expect(cut.res.interrupted).toBe(true);
    expect(cut.res.globalStep).toBe(5);
    expect(cut.res.epochsDone).toBe(1);
    const file = parseSafetensors(io.files.get('run/ckpt.safetensors')!);
    const state = checkpointState(file) as { epoch: number; stepInEpoch: number; globalStep: number };
    expect([state.epoch, state.stepInEpoch, state.globalStep]).toEqual([1, 2, 5]);
    const names = [...file.tensors.keys()];
    for (const n of ['model.layers.0.weight', 'optimizer.step', 'optimizer.state.0.exp_avg', 'hook.ema.layers.2.bias', 'loop.sum.loss', 'loop.sum.gradNorm'])
      expect(names, n).toContain(n);
    expect(checkpointState(parseSafetensors(atStep4!))).toMatchObject({ epoch: 1, stepInEpoch: 1, globalStep: 4 });
    for (const r of [cut]) [r.ema, r.optimizer, r.model].forEach((x) => x.dispose());

    const fromStep4 = memoryCheckpointIO();
    fromStep4.files.set('run/ckpt.safetensors', atStep4!);
    for (const [label, resumeIo, at] of [['abort checkpoint', io, [1, 2, 5]], ['step checkpoint', fromStep4, [1, 1, 4]]] as const) {
      const r = await run(resumeIo, { resume: true });
      expect(r.res.resumedAt, label).toEqual({ epoch: at[0], step: at[1], globalStep: at[2] });
      expect(r.res.globalStep).toBe(totalSteps);
      expect(r.res.history, `${label}: history (metrics, lr, steps)`).toEqual(full.res.history.map((h) => ({ ...h, seconds: expect.any(Number), perSec: expect.any(Number) })));
      await expectSameBits(full.model.namedParameters(), new Map(r.model.namedParameters()), `${label}: weights`);
      await expectSameBits(full.ema.shadow, r.ema.shadow, `${label}: EMA`);
      await expectSameBits(full.optimizer.stateDict().tensors as Map<string, Tensor>, r.optimizer.stateDict().tensors as Map<string, Tensor>, `${label}: Adam state`);
      expect([r.ema.numUpdates, r.optimizer.stepCount, r.noise.state().stream], label).toEqual([full.ema.numUpdates, full.optimizer.stepCount, full.noise.state().stream]);
      [r.ema, r.optimizer, r.model].forEach((x) => x.dispose());
    }
    expect(full.ema.numUpdates).toBe(totalSteps);
    [full.ema, full.optimizer, full.model].forEach((x) => x.dispose());
  });

  it('a run whose step budget ended an epoch early resumes with a larger budget into full epochs', async () => {
    const { ctx } = gpu;
    const D = 4;
    const loader = regressionData(40, D, 1, 8, 5); // 5 batches per epoch
    const io = memoryCheckpointIO();
    const model = new MLP(ctx, { sizes: [D, 8, 1], seed: 2 });
    const optimizer = new Adam(model.parameters(), { lr: 0.01 });
    const events: LoopProgress[] = [];
    const run = (totalSteps: number, resume: boolean) =>
      train<XYBatch>({
        ctx, model, optimizer, loader, totalSteps, progress: false, readEvery: 1,
        checkpoint: { path: 'run/ckpt.safetensors', io, resume },
        onProgress: (p) => events.push(p),
        step: (b) => mean(square(sub(model.forward(tensor(ctx, b.x, [b.B, D])), tensor(ctx, b.y, [b.B, 1])))),
      });
    const first = await run(3, false);
    expect(first.history.map((h) => h.steps)).toEqual([3]);
    events.length = 0;
    const more = await run(14, true);
    expect(more.resumedAt).toEqual({ epoch: 1, step: 0, globalStep: 3 });
    expect(more.globalStep).toBe(14);
    expect(more.history.map((h) => h.steps)).toEqual([3, 5, 5, 1]);
    expect(new Set(events.map((e) => e.epochs))).toEqual(new Set([4]));
    optimizer.dispose();
    model.dispose();
  });

  it('errors: run length, loss shape, a mismatched checkpoint (all problems, nothing written), an old format, a missing IO', async () => {
    const { ctx } = gpu;
    const loader = regressionData(8, 4, 2, 4, 4);
    const model = new MLP(ctx, { sizes: [4, 5, 2], seed: 4 });
    const optimizer = new Adam(model.parameters(), { lr: 0.01 });
    const base = { ctx, model, optimizer, loader, progress: false as const };
    await expect(train({ ...base, epochs: 1, totalSteps: 2, step: () => mean(model.parameters()[0]!) })).rejects.toThrow(/exactly one of epochs \(1\) and totalSteps \(2\)/);
    await expect(train({ ...base, epochs: 1, step: (b) => model.forward(tensor(ctx, b.x, [b.B, 4])) })).rejects.toThrow(/one-element f32 loss, got f32\[4,2\]/);

    // a checkpoint of a wider model: every mis-shaped model and optimizer tensor in one error
    const io = memoryCheckpointIO();
    const wide = new MLP(ctx, { sizes: [4, 7, 2], seed: 5 });
    const wideOpt = new Adam(wide.parameters(), { lr: 0.01 });
    const step = (m: MLP) => (b: XYBatch) => mean(square(sub(m.forward(tensor(ctx, b.x, [b.B, 4])), tensor(ctx, b.y, [b.B, 2]))));
    await train({ ...base, model: wide, optimizer: wideOpt, epochs: 1, step: step(wide), checkpoint: { path: 'c', io } });
    const before = await model.parameters()[0]!.read();
    let msg = '';
    try {
      await train({ ...base, epochs: 2, step: step(model), checkpoint: { path: 'c', io, resume: true } });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^loadCheckpoint: c: /);
    expect(msg).toMatch(/'layers\.0\.weight' has shape \[7,4\] in the source, expected \[5,4\]/);
    expect(msg).toMatch(/'layers\.2\.weight' has shape \[2,7\] in the source, expected \[2,5\]/);
    expect(msg).toMatch(/optimizer: .*state\.0\.exp_avg is f32\[7,4\], expected f32\[5,4\]/);
    expect([...(await model.parameters()[0]!.read())]).toEqual([...before]);
    expect(optimizer.stepCount).toBe(0);

    // an earlier format is named, not misread
    const old = memoryCheckpointIO();
    await old.save('c', new Map(), { format: 'unlearn-gpu.checkpoint.v1', state: '{}' });
    await expect(train({ ...base, epochs: 1, step: step(model), checkpoint: { path: 'c', io: old, resume: true } })).rejects.toThrow(
      /metadata format 'unlearn-gpu\.checkpoint\.v1', expected 'unlearn-gpu\.checkpoint\.v2'/,
    );
    await expect(saveCheckpoint(io, 'x', { model, optimizer, groups: { 'model.extra': new Map() } }, {})).rejects.toThrow(/invalid tensor group prefix 'model\.extra'/);
    const images = new ByteImageDataset(new Uint8Array(4 * 4), Int32Array.from([0, 1, 0, 1]), [1, 2, 2], 2);
    await expect(
      trainClassifier({ ctx, model, optimizer, epochs: 1, trainLoader: new DataLoader(images, { batchSize: 2 }), checkpointDir: 'somewhere', progress: false }),
    ).rejects.toThrow(/checkpointDir 'somewhere' needs a checkpointIO/);
    [optimizer, wideOpt].forEach((o) => o.dispose());
    [model, wide].forEach((m) => m.dispose());
  });
});
