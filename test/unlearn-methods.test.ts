// Unlearning components by hand (adaptive weights, schedules, top-k selection, RL's labels, SCRUB's
// phase order, a NaN stop, argument checks) and SFR-on end to end on a tiny class-forgetting problem,
// including the strict mask's bit-identical frozen weights. Per-step float64 references of every
// method are in unlearn-reference.test.ts.
import { describe, it, expect } from 'vitest';
import { useGpu, expectClose } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { MLP } from '../src/models/mlp.js';
import { SGD } from '../src/nn/optim.js';
import { trainClassifier, evaluate } from '../src/nn/train.js';
import type { AnyModule } from '../src/nn/module.js';
import { adaptiveWeights } from '../src/unlearn/core/terms.js';
import { kthLargest, topKMask } from '../src/unlearn/core/masks.js';
import { decayFactor } from '../src/unlearn/core/update.js';
import { runUnlearning, resolveMethod, type MethodConfig, type SfrOnConfig } from '../src/unlearn/core/methods.js';
import { makeSplit } from '../src/unlearn/core/split.js';
import { classificationProblem, drawRandomLabels } from '../src/unlearn/classification/task.js';
import { CIFAR10_PRESETS } from '../src/unlearn/classification/presets.js';
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
  it('cosine, linear, constant and expdecay factors', () => {
    expect(decayFactor('cosine', 0, 100)).toBe(1);
    expect(decayFactor('cosine', 50, 100)).toBeCloseTo(0.5, 12);
    expect(decayFactor('cosine', 25, 100)).toBeCloseTo((1 + Math.cos(Math.PI / 4)) / 2, 12);
    expect(decayFactor('linear', 25, 100)).toBeCloseTo(0.75, 12);
    expect(decayFactor('constant', 99, 100)).toBe(1);
    expect(decayFactor('expdecay', 25, 100)).toBeCloseTo(0.5625, 12); // the authors' (1 − s/N)²
    // SFR-on: α_s = α₀ (1 + cos(πs/N)) / 2
    expect(25 * decayFactor('cosine', 750, 1500)).toBeCloseTo(12.5, 10);
  });
});

describe('top-k selection', () => {
  it('kthLargest selects the k-th largest value; topKMask keeps exactly k, ties in order', () => {
    const v = Float32Array.from([5, 1, 9, 3, 7, 7, 2]);
    expect([1, 2, 3, 4, 7].map((k) => kthLargest(v, k))).toEqual([9, 7, 7, 5, 1]);
    const m = topKMask([Float32Array.from([0, 3, 0]), Float32Array.from([0, 0, 1, 0])], 3);
    expect(m.map((a) => Array.from(a))).toEqual([[1, 1, 0], [0, 0, 1, 0]]); // one zero (the first) joins 3 and 1
    expect(topKMask([Float32Array.from([0, 0])], 0).map((a) => Array.from(a))).toEqual([[0, 0]]);
    expect(() => topKMask([Float32Array.from([1])], 2)).toThrow(/k = 2/);
  });
});

describe('forgetting terms', () => {
  it('RL never assigns the true label and covers the other classes', () => {
    const forget = Int32Array.from({ length: 2000 }, (_, i) => i);
    const labelOf = (i: number) => i % 10;
    const m = drawRandomLabels(forget, labelOf, 10, new Generator(9));
    const seen = new Set<number>();
    for (const i of forget) {
      expect(m.get(i)).not.toBe(labelOf(i));
      if (labelOf(i) === 3) seen.add(m.get(i)!);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9]);
  });

  it('SCRUB runs max steps only in the first msteps epochs, each before that epoch\'s min steps', async () => {
    const { ctx } = gpu;
    const ds = synthetic(32, 2, 2, 13);
    const model = new MLP(ctx, { sizes: [4, 2], seed: 5 });
    const phases: string[] = [];
    const setup = tinySetup(ctx, ds, model, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), (p) => phases.push(p));
    await runUnlearning({ ...CIFAR10_PRESETS.SCRUB, epochs: 3, msteps: 2 }, setup);
    // forget: 1 batch of 8; remain: 3 batches of 8 => max,min×3 | max,min×3 | min×3
    expect(phases).toEqual(['SCRUB max', ...Array(3).fill('SCRUB min'), 'SCRUB max', ...Array(3).fill('SCRUB min'), ...Array(3).fill('SCRUB min')]);
    setup.original.dispose();
  });
});

function tinySetup(ctx: typeof gpu.ctx, ds: ByteImageDataset, model: AnyModule, forget: Int32Array, phase?: (p: string) => void, seed = 0) {
  const split = makeSplit(forget, ds.length);
  return {
    problem: classificationProblem({ ctx, train: ds, numClasses: ds.numClasses, split, batchSize: 8, seed }),
    model,
    original: model.clone().eval(),
    makeFreshModel: () => new MLP(ctx, { ...(model as MLP).config, seed: 99 }),
    progress: phase ? (p: string) => phase(p) : undefined,
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

  it('an aborted signal stops a method at its next step', async () => {
    const { ctx } = gpu;
    const ds = synthetic(32, 2, 2, 19);
    const model = new MLP(ctx, { sizes: [4, 2], seed: 6 });
    const ac = new AbortController();
    const setup = { ...tinySetup(ctx, ds, model, Int32Array.from([0, 1, 2, 3])), signal: ac.signal, onStep: (s: number) => s === 2 && ac.abort() };
    await expect(runUnlearning({ ...CIFAR10_PRESETS.FT, epochs: 5 }, setup)).rejects.toThrow(/abort/i);
  });

  it('method configs: unknown keys, wrong types and out-of-range values are named', () => {
    expect(() => resolveMethod({ method: 'FT', epoch: 3 }, CIFAR10_PRESETS, 'methods[0]')).toThrow(/methods\[0\]\.epoch: unknown key for FT/);
    expect(() => resolveMethod({ method: 'FT', epochs: '3' }, CIFAR10_PRESETS, 'm')).toThrow(/m\.epochs: expected number, got string/);
    expect(() => resolveMethod({ method: 'SFR-on', iterations: 0 }, CIFAR10_PRESETS, 'm')).toThrow(/m\.iterations = 0 must be a positive integer/);
    expect(() => resolveMethod({ method: 'SFR-on', alternate: false, strictMask: true }, CIFAR10_PRESETS, 'm')).toThrow(/joint ablation/);
    expect(() => resolveMethod('FTT', CIFAR10_PRESETS, 'm')).toThrow(/unknown method "FTT"/);
    expect(() => resolveMethod({ method: 'SCRUB', beta: 0.1 }, CIFAR10_PRESETS, 'm')).toThrow(/m\.beta: unknown key/);
    expect(resolveMethod({ method: 'SFR-on', gamma: null }, CIFAR10_PRESETS, 'm')).toMatchObject({ gamma: null, iterations: 1500 });
    expect(resolveMethod({ method: 'FT', optimizer: { kind: 'adamw', lr: 1e-4 } }, CIFAR10_PRESETS, 'm')).toMatchObject({ optimizer: { kind: 'adamw', lr: 1e-4 } });
    expect((resolveMethod({ method: 'FT', optimizer: { kind: 'adamw', lr: 1e-4 } }, CIFAR10_PRESETS, 'm') as { optimizer: object }).optimizer).not.toHaveProperty('momentum');
  });
});

describe('SFR-on end to end (tiny class forgetting)', () => {
  async function pretrained(ctx: typeof gpu.ctx, ds: ByteImageDataset) {
    const model = new MLP(ctx, { sizes: [16, 16, 4], seed: 21 });
    const opt = new SGD(model.trainableParameters(), { lr: 0.1, momentum: 0.9 });
    await trainClassifier({ ctx, model, trainLoader: new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 1 }), optimizer: opt, epochs: 6, progress: false });
    return model;
  }
  const accOn = async (ctx: typeof gpu.ctx, m: AnyModule, ds: ByteImageDataset, idx: Int32Array) =>
    100 * (await evaluate(ctx, m, new DataLoader(ds, { batchSize: 64, indices: idx }))).accuracy;

  it('FA falls far below the original while RA stays within a few points; a strict mask freezes masked weights bit for bit in the forget step only', async () => {
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
    } as SfrOnConfig;
    // default SFR-on: the forgetting sticks and the remain steps keep the other classes
    const plain = original.clone();
    const res = await runUnlearning(cfg, tinySetup(ctx, ds, plain, forget));
    expect(res.steps).toBe(60); // 20 forget + 40 remain steps
    const fa = await accOn(ctx, plain, ds, forget);
    const ra = await accOn(ctx, plain, ds, remain);
    expect(fa).toBeLessThan(fa0 - 50);
    expect(ra).toBeGreaterThan(ra0 - 5);

    // strict mask: in the forget step (step 0) masked entries do not move, through momentum and
    // weight decay too; the remain steps then move every weight
    const model = original.clone();
    const before = await Promise.all(model.trainableParameters().map((p) => p.read()));
    let afterForget: Promise<Float32Array[]> | null = null;
    // read() records its copy when called, so this captures the weights right after step 0
    const strictSetup = { ...tinySetup(ctx, ds, model, forget), keepMask: true, onStep: (s: number) => void (s === 0 && (afterForget = Promise.all(model.trainableParameters().map((p) => p.read())))) };
    const res2 = await runUnlearning({ ...cfg, strictMask: true }, strictSetup);
    expect(await accOn(ctx, model, ds, forget)).toBeLessThan(fa0 - 50);
    const step0 = await afterForget!;
    const after = await Promise.all(model.trainableParameters().map((p) => p.read()));
    let frozen = 0, moved = 0, movedLater = 0;
    for (const [k, p] of model.trainableParameters().entries()) {
      const m = await res2.mask!.get(p)!.read();
      for (let i = 0; i < m.length; i++) {
        if (m[i] === 0) {
          frozen++;
          expect(step0[k]![i], `param ${k}[${i}] is masked but moved in the forget step`).toBe(before[k]![i]);
          if (after[k]![i] !== before[k]![i]) movedLater++;
        } else if (step0[k]![i] !== before[k]![i]) moved++;
      }
    }
    res2.mask!.forEach((m) => m.dispose());
    expect(movedLater, 'remain steps move masked weights').toBeGreaterThan(0);
    expect(frozen).toBeGreaterThan(0);
    expect(moved).toBeGreaterThan(0);
  });
});

describe('unlearning optimizer: no-decay groups', () => {
  it('optimizer.noDecay keeps norms, biases, the class token and position tables out of weight decay; the default decays every parameter; the config check names a wrong type', async () => {
    const { ctx } = gpu;
    const { makeOptimizer } = await import('../src/unlearn/core/update.js');
    const { VisionTransformer } = await import('../src/models/vit.js');
    const { ones, zerosLike } = await import('../src/ops/index.js');
    const { copyTensor } = await import('../src/nn/module.js');
    const run = async (noDecay: boolean) => {
      const m = new VisionTransformer(ctx, { imageSize: 8, patchSize: 4, numLayers: 1, numHeads: 2, hiddenDim: 8, mlpDim: 12, numClasses: 3, seed: 4 });
      const params = m.trainableParameters();
      for (const p of params) {
        const one = ones(ctx, p.shape);
        copyTensor('test', one, p);
        one.dispose();
        p.grad = zerosLike(p); // a zero gradient: only the decay moves a weight
      }
      const opt = makeOptimizer({ kind: 'adamw', lr: 0.1, weightDecay: 0.5, noDecay }, params, m);
      opt.step();
      const out = new Map<string, number>();
      for (const [n, p] of m.namedParameters()) out.set(n, (await p.read())[0]!);
      return out;
    };
    const decayed = 1 - 0.1 * 0.5;
    const kept = ['class_token', 'encoder.pos_embedding', 'encoder.ln.weight', 'encoder.ln.bias', 'heads.head.bias', 'conv_proj.bias'];
    const withGroups = await run(true);
    for (const n of kept) expect(withGroups.get(n), n).toBe(1);
    for (const n of ['conv_proj.weight', 'heads.head.weight']) expect(withGroups.get(n), n).toBeCloseTo(decayed, 6);
    const flat = await run(false);
    for (const n of [...kept, 'conv_proj.weight']) expect(flat.get(n), n).toBeCloseTo(decayed, 6);
    expect(() => makeOptimizer({ kind: 'adamw', lr: 0.1, noDecay: true }, [])).toThrow(/noDecay needs the model/);
    expect(() => resolveMethod({ method: 'SFR-on', optimizer: { noDecay: 'yes' } }, CIFAR10_PRESETS, 'methods[0]')).toThrow(
      /methods\[0\]\.optimizer\.noDecay: expected boolean, got "yes"/,
    );
    expect(resolveMethod({ method: 'SFR-on', optimizer: { noDecay: true } }, CIFAR10_PRESETS, 'm').optimizer.noDecay).toBe(true);
  });
});
