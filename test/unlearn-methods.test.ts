// Unlearning components against hand-computed values (adaptive weights, schedules, the Fisher-ratio and
// SalUn masks on a tiny linear model, RL's labels, BT's targets, SCRUB's phases) and SFR-on end to end on
// a tiny class-forgetting problem, including the strict mask's bit-identical frozen weights.
import { describe, it, expect } from 'vitest';
import { useGpu, expectClose } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { MLP } from '../src/models/mlp.js';
import { SGD } from '../src/nn/optim.js';
import { trainClassifier } from '../src/nn/train.js';
import type { Module } from '../src/nn/module.js';
import { adaptiveWeights, drawRandomLabels, fisherRatioMask, kthLargest, salunMask, klFromLogits, badTeacherKl, uploadBatch } from '../src/unlearn/components.js';
import { decayFactor, runUnlearning, CIFAR10_PRESETS, type MethodConfig, type UnlearnSetup } from '../src/unlearn/methods.js';
import { predict } from '../src/unlearn/evaluate.js';
import { accuracy } from '../src/unlearn/metrics.js';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();

/** n images [1, S, S] of `classes` classes: a class-specific bright row band plus noise. */
function synthetic(n: number, S: number, classes: number, seed: number): ByteImageDataset {
  const g = new Generator(seed);
  const images = new Uint8Array(n * S * S);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    labels[i] = c;
    for (let p = 0; p < S * S; p++) {
      const inBand = Math.floor((Math.floor(p / S) * classes) / S) === c;
      images[i * S * S + p] = Math.min(255, Math.floor((inBand ? 150 : 40) + 100 * g.cpuUniform()));
    }
  }
  return new ByteImageDataset(images, labels, [1, S, S], classes);
}

describe('adaptive weights (SFR-on forgetting part)', () => {
  it('λ = 0 gives equal weights; λ = 0.5 gives c_i = l_i^-0.5 normalised', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const l = [0.1, 0.4, 1.6, 2.5];
      const t = tensor(ctx, l, [4]);
      expectClose(await adaptiveWeights(t, 0).read(), [0.25, 0.25, 0.25, 0.25], 1e-6, 1e-7, 'λ=0');
      const c = l.map((v) => 1 / (Math.sqrt(v) + 1e-15));
      const s = c.reduce((a, b) => a + b);
      expectClose(await adaptiveWeights(t, 0.5).read(), c.map((v) => v / s), 1e-5, 1e-7, 'λ=0.5');
      // low-loss samples weigh more
      const w = await adaptiveWeights(t, 1).read();
      expect(w[0]).toBeGreaterThan(w[3]!);
    });
  });
});

describe('schedules', () => {
  it('cosine, linear, constant and exponential decay factors', () => {
    expect(decayFactor('cosine', 0, 100)).toBe(1);
    expect(decayFactor('cosine', 50, 100)).toBeCloseTo(0.5, 12);
    expect(decayFactor('cosine', 25, 100)).toBeCloseTo((1 + Math.cos(Math.PI / 4)) / 2, 12);
    expect(decayFactor('linear', 25, 100)).toBeCloseTo(0.75, 12);
    expect(decayFactor('constant', 99, 100)).toBe(1);
    expect(decayFactor('exponential', 100, 100)).toBeCloseTo(0.01, 12);
    // SFR-on: α_s = α₀ (1 + cos(πs/N)) / 2
    expect(25 * decayFactor('cosine', 750, 1500)).toBeCloseTo(12.5, 10);
  });
});

describe('masks', () => {
  it('kthLargest selects the k-th largest value', () => {
    const v = Float32Array.from([5, 1, 9, 3, 7, 7, 2]);
    expect([1, 2, 3, 4, 7].map((k) => kthLargest(v, k))).toEqual([9, 7, 7, 5, 1]);
  });

  /** float64 mini-batch Fisher diagonal of mean CE for a linear softmax model y = xWᵀ + b */
  function fisherRef(W: Float64Array, b: Float64Array, X: number[][], Y: number[], batch: number, C: number, D: number) {
    const nb = Math.ceil(X.length / batch);
    const FW = new Float64Array(C * D), Fb = new Float64Array(C);
    for (let s = 0; s < X.length; s += batch) {
      const gW = new Float64Array(C * D), gb = new Float64Array(C);
      const B = Math.min(batch, X.length - s);
      for (let i = s; i < s + B; i++) {
        const z = Array.from({ length: C }, (_, c) => b[c]! + X[i]!.reduce((a, x, d) => a + x * W[c * D + d]!, 0));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const Z = e.reduce((a, v) => a + v);
        for (let c = 0; c < C; c++) {
          const d = e[c]! / Z - (Y[i] === c ? 1 : 0);
          gb[c]! += d / B;
          for (let k = 0; k < D; k++) gW[c * D + k]! += (d * X[i]![k]!) / B;
        }
      }
      for (let k = 0; k < C * D; k++) FW[k]! += gW[k]! ** 2 / nb;
      for (let c = 0; c < C; c++) Fb[c]! += gb[c]! ** 2 / nb;
    }
    return { FW, Fb };
  }

  it('Fisher-ratio mask on a tiny linear model matches the float64 computation', async () => {
    const { ctx } = gpu;
    const ds = synthetic(40, 2, 3, 5); // 4 features, 3 classes
    const model = new MLP(ctx, { sizes: [4, 3], seed: 3 });
    const forget = Int32Array.from({ length: 10 }, (_, i) => i);
    const remain = Int32Array.from({ length: 30 }, (_, i) => i + 10);
    const fl = new DataLoader(ds, { batchSize: 4, indices: forget });
    const rl = new DataLoader(ds, { batchSize: 8, indices: remain });
    const mask = await fisherRatioMask(ctx, model, fl, rl, 1);
    const [[, W], [, bT]] = model.namedParameters();
    const Wd = Float64Array.from(await W!.read());
    const bd = Float64Array.from(await bT!.read());
    const X = Array.from({ length: 40 }, (_, i) => Array.from(ds.images.slice(i * 4, i * 4 + 4), (v) => v / 255));
    const Y = Array.from(ds.labels);
    const f = fisherRef(Wd, bd, X.slice(0, 10), Y.slice(0, 10), 4, 3, 4);
    const r = fisherRef(Wd, bd, X.slice(10), Y.slice(10), 8, 3, 4);
    const expectW = Array.from(f.FW, (v, k) => ((v + 1e-15) / (r.FW[k]! + 1e-15) >= 1 ? 1 : 0));
    const expectB = Array.from(f.Fb, (v, k) => ((v + 1e-15) / (r.Fb[k]! + 1e-15) >= 1 ? 1 : 0));
    expectClose(await mask.get(W!)!.read(), expectW, 0, 0, 'mask W');
    expectClose(await mask.get(bT!)!.read(), expectB, 0, 0, 'mask b');
    expect(expectW.some((v) => v === 1) && expectW.some((v) => v === 0)).toBe(true); // a non-trivial mask
    mask.forEach((m) => m.dispose());
  });

  it('SalUn mask keeps the top fraction of |Σ ∇(−CE)| over all parameters', async () => {
    const { ctx } = gpu;
    const ds = synthetic(24, 2, 3, 7);
    const model = new MLP(ctx, { sizes: [4, 5, 3], seed: 4 });
    const fl = new DataLoader(ds, { batchSize: 8 });
    const mask = await salunMask(ctx, model, fl, 0.25);
    let on = 0, n = 0;
    for (const m of mask.values()) for (const v of await m.read()) { on += v; n++; expect(v === 0 || v === 1).toBe(true); }
    expect(n).toBe(model.numParameters());
    expect(on).toBe(Math.floor(n * 0.25)); // ties are measure-zero on random data
    mask.forEach((m) => m.dispose());
  });
});

describe('forgetting terms', () => {
  it('RL never assigns the true label and covers the other classes', () => {
    const g = new Generator(9);
    const forget = Int32Array.from({ length: 2000 }, (_, i) => i);
    const labelOf = (i: number) => i % 10;
    const m = drawRandomLabels(forget, labelOf, 10, () => g.cpuUniform());
    const seen = new Set<number>();
    for (const i of forget) {
      expect(m.get(i)).not.toBe(labelOf(i));
      if (labelOf(i) === 3) seen.add(m.get(i)!);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9]);
  });

  it("BT's target is the bad teacher on forget samples and the original elsewhere", async () => {
    const { ctx } = gpu;
    const ds = synthetic(6, 2, 3, 11);
    const student = new MLP(ctx, { sizes: [4, 3], seed: 1 });
    const good = new MLP(ctx, { sizes: [4, 3], seed: 2 });
    const bad = new MLP(ctx, { sizes: [4, 3], seed: 3 });
    const loader = new DataLoader(ds, { batchSize: 6 });
    const b = (await loader.batches(0).next()).value!;
    await ctx.scope(async () => {
      const sb = uploadBatch(ctx, b, new Set([1, 4]));
      const loss = badTeacherKl(1)(student, sb, { ctx, original: good, badTeacher: bad, numClasses: 3, alpha: 1 });
      // reference: per-sample KL against the chosen teacher, averaged
      const s = student.forward(sb.x), gT = good.forward(sb.x), bT = bad.forward(sb.x);
      const klGood = await klFromLogits(gT, s, 1).read();
      const klBad = await klFromLogits(bT, s, 1).read();
      const expected = [0, 1, 2, 3, 4, 5].map((i) => ([1, 4].includes(i) ? klBad[i]! : klGood[i]!)).reduce((a, v) => a + v) / 6;
      expectClose([await loss.item()], [expected], 1e-5, 1e-7, 'BT loss');
    });
  });

  it("SCRUB runs max steps only in the first msteps epochs", async () => {
    const { ctx } = gpu;
    const ds = synthetic(32, 2, 2, 13);
    const model = new MLP(ctx, { sizes: [4, 2], seed: 5 });
    const phases: string[] = [];
    const setup = tinySetup(ctx, ds, model, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), (p) => phases.push(p));
    const cfg = { ...CIFAR10_PRESETS.SCRUB, epochs: 3, msteps: 2 } as MethodConfig;
    await runUnlearning(cfg, setup);
    const firstOf = (name: string) => phases.indexOf(name);
    // forget loader: 1 batch of 8; remain: 3 batches of 8 => max,min×3 | max,min×3 | min×3
    expect(phases.filter((p) => p === 'SCRUB max').length).toBe(2);
    expect(phases.filter((p) => p === 'SCRUB min').length).toBe(9);
    expect(firstOf('SCRUB max')).toBe(0);
  });
});

function tinySetup(ctx: typeof gpu.ctx, ds: ByteImageDataset, model: Module, forget: Int32Array, phase?: (p: string) => void, seed = 0): UnlearnSetup {
  const forgetSet = new Set(forget);
  const remain = Int32Array.from({ length: ds.length }, (_, i) => i).filter((i) => !forgetSet.has(i));
  return {
    ctx,
    model,
    original: model.clone().eval(),
    makeFreshModel: () => new MLP(ctx, { ...(model as MLP).config, seed: 99 }),
    forgetLoader: new DataLoader(ds, { batchSize: 8, shuffle: true, seed, indices: forget }),
    remainLoader: new DataLoader(ds, { batchSize: 8, shuffle: true, seed: seed + 1, indices: remain }),
    mixedLoader: new DataLoader(ds, { batchSize: 8, shuffle: true, seed: seed + 2 }),
    forgetIndices: forget,
    labelOf: (i) => ds.labels[i]!,
    numClasses: ds.numClasses,
    seed,
    progress: phase ? (p) => phase(p) : undefined,
  };
}

describe('divergence', () => {
  it('a loss that becomes NaN or Inf during ascent stops the method with a clear error', async () => {
    const { ctx } = gpu;
    const ds = synthetic(32, 2, 2, 19);
    const model = new MLP(ctx, { sizes: [4, 8, 2], seed: 6 });
    const cfg = { ...CIFAR10_PRESETS.GA, epochs: 20, clip: null, optimizer: { kind: 'sgd', lr: 1e8, momentum: 0.9 } } as MethodConfig;
    await expect(runUnlearning(cfg, tinySetup(ctx, ds, model, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7])))).rejects.toThrow(/GA: loss became (NaN|-?Infinity) at step \d+/);
  });
});

describe('SFR-on end to end (tiny class forgetting)', () => {
  async function pretrained(ctx: typeof gpu.ctx, ds: ByteImageDataset) {
    const model = new MLP(ctx, { sizes: [16, 16, 4], seed: 21 });
    const opt = new SGD(model.trainableParameters(), { lr: 0.1, momentum: 0.9 });
    await trainClassifier({ ctx, model, trainLoader: new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 1 }), optimizer: opt, epochs: 6, progress: false });
    return model;
  }
  const accOn = async (ctx: typeof gpu.ctx, m: Module, ds: ByteImageDataset, idx: Int32Array) => {
    const o = await predict(ctx, m, new DataLoader(ds, { batchSize: 64, indices: idx }));
    return accuracy(o.preds, o.labels);
  };

  it('FA falls far below the original while RA stays within a few points; the strict mask freezes masked weights bit for bit', async () => {
    const { ctx } = gpu;
    const ds = synthetic(160, 4, 4, 17);
    const original = await pretrained(ctx, ds);
    const forget = Int32Array.from({ length: 40 }, (_, k) => k * 4); // all of class 0
    const remain = Int32Array.from({ length: 160 }, (_, i) => i).filter((i) => i % 4 !== 0);
    const fa0 = await accOn(ctx, original, ds, forget);
    const ra0 = await accOn(ctx, original, ds, remain);
    expect(fa0).toBeGreaterThan(90);

    const cfg = {
      ...CIFAR10_PRESETS['SFR-on'],
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
      iterations: 40,
      forgetFreq: 2,
      alpha0: 25,
    } as Extract<MethodConfig, { method: 'SFR-on' }>;
    // default SFR-on: the forgetting sticks and the remain steps keep the other classes
    const plain = original.clone();
    const res = await runUnlearning(cfg, tinySetup(ctx, ds, plain, forget));
    expect(res.steps).toBe(60); // 20 forget + 40 remain steps
    const fa = await accOn(ctx, plain, ds, forget);
    const ra = await accOn(ctx, plain, ds, remain);
    expect(fa).toBeLessThan(fa0 - 50);
    expect(ra).toBeGreaterThan(ra0 - 5);

    // strict mask: masked entries never move, through momentum and weight decay too
    const model = original.clone();
    const before = await Promise.all(model.trainableParameters().map((p) => p.read()));
    await runUnlearning({ ...cfg, strictMask: true }, tinySetup(ctx, ds, model, forget));
    expect(await accOn(ctx, model, ds, forget)).toBeLessThan(fa0 - 50);

    // strict: every parameter entry whose mask is 0 is unchanged, bit for bit
    const maskModel = original.clone();
    const setup = tinySetup(ctx, ds, maskModel, forget);
    const mask = await fisherRatioMask(ctx, maskModel, setup.forgetLoader, setup.remainLoader, 1);
    const after = await Promise.all(model.trainableParameters().map((p) => p.read()));
    let frozen = 0, moved = 0;
    for (const [k, p] of maskModel.trainableParameters().entries()) {
      const m = await mask.get(p)!.read();
      for (let i = 0; i < m.length; i++) {
        if (m[i] === 0) {
          frozen++;
          expect(after[k]![i], `param ${k}[${i}] is masked but moved`).toBe(before[k]![i]);
        } else if (after[k]![i] !== before[k]![i]) moved++;
      }
    }
    expect(frozen).toBeGreaterThan(0);
    expect(moved).toBeGreaterThan(0);
  });
});
