// The unlearning experiment of spec §5-6, task-generic and resumable: keep the forget split with the
// results (and refuse another one), get the original (pretrain, reuse, or load a user's checkpoint),
// get RT on D_r (likewise, tied to the split's hash), evaluate both, run each method from the
// original and save its model and row, and gather the rows of every method finished in the run
// folder. Browser-safe: all file access goes through an injected ExperimentStore (Node: ../
// experiment-node.ts; a page: memoryStore or IndexedDB), progress through callbacks, stopping
// through an AbortSignal. It knows no dataset, labels or metric: the task does (see task.ts).

import type { AnyModule } from '../../nn/module.js';
import { memoryCheckpointIO, type CheckpointIO } from '../../nn/checkpoint.js';
import { tensorsToRecord } from '../../io/state.js';
import type { SafetensorsFile, SafetensorsTensor } from '../../io/safetensors.js';
import { EngineError } from '../../util/errors.js';
import { checkAgainstModel, type CheckpointHeader } from './checkpoint.js';
import { methodLabel, runUnlearning, checkSupported, type MethodConfig, type MethodName } from './methods.js';
import { assertSameSplit, splitFromJson, splitToJson, type ForgetSplit } from './split.js';
import type { UnlearnProblem } from './task.js';

/** Where an experiment keeps its artefacts, by relative name ('split.json', 'methods/GA.json'). */
export interface ExperimentStore {
  /** The text of `name`, or null when it does not exist. */
  readText(name: string): Promise<string | null>;
  /** Replace `name` atomically (readers see the old or the new content, never a part). */
  writeText(name: string, text: string): Promise<void>;
  readTensors(name: string): Promise<SafetensorsFile | null>;
  writeTensors(name: string, tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string>): Promise<void>;
  /** Names of the entries directly under `dir` (file names, no directory part). */
  list(dir: string): Promise<string[]>;
  /** Checkpoints of resumable training; paths are store names. */
  checkpointIO: CheckpointIO;
}

/** A model checkpoint outside the store: one file or several shards. */
export type CheckpointSource = string | readonly string[];

/** Reads users' checkpoints: headers first (validation), the tensors later. */
export interface CheckpointReader {
  headers(source: CheckpointSource): Promise<CheckpointHeader[]>;
  load(source: CheckpointSource): Promise<SafetensorsFile>;
}

/** An in-memory store (tests, a browser page without storage). */
export function memoryStore(): ExperimentStore & { files: Map<string, string | { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> }> } {
  const files = new Map<string, string | { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> }>();
  const tensorsOf = (name: string) => {
    const f = files.get(name);
    return f && typeof f !== 'string' ? { tensors: new Map(f.tensors), metadata: { ...f.metadata } } : null;
  };
  return {
    files,
    readText: async (name) => {
      const f = files.get(name);
      return typeof f === 'string' ? f : null;
    },
    writeText: async (name, text) => void files.set(name, text),
    readTensors: async (name) => tensorsOf(name),
    writeTensors: async (name, tensors, metadata) => void files.set(name, { tensors: new Map(tensors), metadata: { ...metadata } }),
    list: async (dir) => [...files.keys()].filter((k) => k.startsWith(`${dir}/`) && !k.slice(dir.length + 1).includes('/')).map((k) => k.slice(dir.length + 1)),
    checkpointIO: memoryCheckpointIO(),
  };
}

/** A report row: a label, numbers the task chooses, and the runtime in minutes (RTE). */
export interface ResultRow {
  method: string;
  rteMinutes: number;
}

/** What training gets from the runner. */
export interface TrainContext {
  store: ExperimentStore;
  /** Store-name prefix for this stage's files (`pretrained`, `retrain`): `<stage>-ckpt/…`, `<stage>-best…`. */
  stage: 'pretrained' | 'retrain';
  progress?: (phase: string, done: number, total: number) => void;
  log: (s: string) => void;
  signal?: AbortSignal;
}

/** The experiment-side half of a task (the method-side half is its UnlearnProblem). */
export interface ExperimentTask<R, B, Out, Row extends ResultRow> {
  /** The forget split of this experiment (already validated). */
  split: ForgetSplit;
  /** A freshly initialised model; `seed` draws its weights. */
  makeModel(seed: number): AnyModule;
  /** Train `model` from scratch: on D (pretrained) or on D_r (retrain). Resumable through the store. */
  train(model: AnyModule, c: TrainContext): Promise<void>;
  /** The task bound to the split, for the methods. */
  problem(): UnlearnProblem<R, B>;
  /** A model's evaluation outputs (eval mode, no augmentation). */
  evaluate(model: AnyModule, label: string, progress?: (phase: string, done: number, total: number) => void): Promise<Out>;
  /** The report row of `label`'s outputs; `rt` (null for RT itself) gives the divergences and gaps. */
  row(label: string, out: Out, rt: { out: Out; row: Row } | null, rteMinutes: number, extra?: Record<string, number | undefined>): Row;
  /** The row of a method that failed (its numbers NaN). */
  failedRow(label: string): Row;
}

/** The task-independent part of an experiment's config. */
export interface RunnerConfig {
  methods: MethodConfig[];
  seed: number;
  /** A user's original model: no pretraining. */
  pretrained?: CheckpointSource;
  /** A user's RT model (trained on D_r of this split): no retraining. */
  retrained?: CheckpointSource;
}

export interface RunOptions {
  store: ExperimentStore;
  /** Needed when the config names checkpoints or `evaluate` is given. */
  checkpoints?: CheckpointReader;
  log?: (s: string) => void;
  progress?: (phase: string, done: number, total: number) => void;
  /** Run only these methods of the config (the others' finished rows are still listed). */
  only?: MethodName[];
  /** performance.now() after which no further method is started. */
  deadline?: number;
  /** Stop after this stage: 'pretrain' (the original only) or 'retrain' (RT and the original evaluated). */
  until?: 'pretrain' | 'retrain';
  /** Score this checkpoint against RT instead of running methods (rows: RT and it; the run's results untouched). */
  evaluate?: { source: CheckpointSource; label: string };
  signal?: AbortSignal;
}

export interface ExperimentOutcome<Row> {
  /** RT first, then every method finished in the store (this config's order first). */
  rows: Row[];
  /** The original model's row (absent when stopped after pretraining). */
  original?: Row;
  totalSeconds: number;
}

/** A file-name-safe form of a row label. */
export const safeName = (label: string) => label.replace(/[^A-Za-z0-9_.-]/g, '_');

const METHOD_FORMAT = 'unlearn-gpu.method-result/1';

interface MethodRecord<Row> {
  format: typeof METHOD_FORMAT;
  label: string;
  config: MethodConfig;
  row: Row;
}

/**
 * Run (or resume) an experiment. Order of work: every given checkpoint's header is checked against
 * the model and every method against the task before anything is trained or evaluated; then the
 * split, the original, RT, their rows, and the methods. A method that fails (NaN loss, an error)
 * gets a row of NaNs and the run goes on; an abort stops the run.
 */
export async function runTaskExperiment<R, B, Out, Row extends ResultRow>(
  task: ExperimentTask<R, B, Out, Row>,
  cfg: RunnerConfig,
  o: RunOptions,
): Promise<ExperimentOutcome<Row>> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const { store, signal } = o;
  const split = task.split;
  // evaluation passes report every batch: a stop request ends them there, not after a whole pass
  const evalProgress = (phase: string, done: number, total: number) => {
    signal?.throwIfAborted();
    o.progress?.(phase, done, total);
  };

  // 0. validation before any work: checkpoints (headers only) and what the methods need
  const external: [string, CheckpointSource][] = [];
  if (cfg.pretrained) external.push(['pretrained', cfg.pretrained]);
  if (cfg.retrained && o.until !== 'pretrain') external.push(['retrained', cfg.retrained]);
  if (o.evaluate) external.push([`evaluate --model`, o.evaluate.source]);
  if (external.length) {
    if (!o.checkpoints) throw new EngineError('experiment', 'checkpoints are named but no checkpoint reader was given');
    const probe = task.makeModel(cfg.seed);
    try {
      for (const [what, src] of external) checkAgainstModel(await o.checkpoints.headers(src), probe, what);
    } finally {
      probe.dispose();
    }
  }
  const problem = task.problem();
  for (const mc of cfg.methods) checkSupported(mc, problem as UnlearnProblem<unknown, unknown>);

  // 1. the split: the saved one must be the config's
  const savedSplit = await store.readText('split.json');
  if (savedSplit !== null) {
    const saved = splitFromJson(savedSplit);
    if (saved.hash !== split.hash)
      throw new EngineError('experiment', `split.json holds a different forget split (hash ${saved.hash}) than the config asks for (${split.hash}); use another output folder`);
  } else await store.writeText('split.json', splitToJson(split));
  log(`split: ${split.forget.length} forget / ${split.remain.length} remain (hash ${split.hash})`);

  const loadInto = async (model: AnyModule, file: SafetensorsFile) => {
    model.loadStateDict(file, { strict: true });
    return file.metadata ?? {};
  };
  /** The model of a stage: a user's checkpoint, the store's copy, or trained now and saved. */
  const obtain = async (stage: 'pretrained' | 'retrain', seed: number, source: CheckpointSource | undefined): Promise<{ model: AnyModule; seconds: number }> => {
    const model = task.makeModel(seed);
    try {
      if (source) {
        await loadInto(model, await o.checkpoints!.load(source));
        log(`${stage}: loaded ${typeof source === 'string' ? source : source.join(', ')} (not trained here)`);
        return { model, seconds: NaN };
      }
      const name = `${stage}.safetensors`;
      const saved = await store.readTensors(name);
      if (saved) {
        const md = await loadInto(model, saved);
        if (stage === 'retrain') assertSameSplit(md.split ?? '(none recorded)', split, name);
        log(`${stage}: reusing ${name}`);
        return { model, seconds: Number(md.seconds ?? NaN) };
      }
      signal?.throwIfAborted();
      const ts = performance.now();
      await task.train(model, { store, stage, progress: o.progress, log, signal });
      const seconds = (performance.now() - ts) / 1000;
      const md: Record<string, string> = { seconds: String(seconds), ...(stage === 'retrain' ? { split: split.hash } : {}) };
      await store.writeTensors(name, await tensorsToRecord(model.stateDict()), md);
      log(`${stage}: trained in ${seconds.toFixed(1)} s`);
      return { model, seconds };
    } catch (e) {
      model.dispose();
      throw e;
    }
  };

  // 2. the original and RT
  const original = (await obtain('pretrained', cfg.seed, cfg.pretrained)).model;
  try {
    if (o.until === 'pretrain') return { rows: [], totalSeconds: (performance.now() - t0) / 1000 };
    const rt = await obtain('retrain', cfg.seed + 1, cfg.retrained);
    let rtOut: Out;
    try {
      rtOut = await task.evaluate(rt.model, 'RT', evalProgress);
    } finally {
      rt.model.dispose();
    }
    const rtRow = task.row('RT', rtOut, null, rt.seconds / 60);
    const rtRef = { out: rtOut, row: rtRow };
    const originalRow = task.row('Original', await task.evaluate(original, 'original', evalProgress), rtRef, 0);

    if (o.evaluate) {
      // a model unlearned elsewhere, scored against this run's RT on the same split
      const model = task.makeModel(cfg.seed);
      try {
        await loadInto(model, await o.checkpoints!.load(o.evaluate.source));
        const row = task.row(o.evaluate.label, await task.evaluate(model, o.evaluate.label, evalProgress), rtRef, NaN);
        return { rows: [rtRow, row], original: originalRow, totalSeconds: (performance.now() - t0) / 1000 };
      } finally {
        model.dispose();
      }
    }

    // 3. the methods, each from the original; a finished one (same config) is reused
    const failed = new Set<string>();
    const runNow = o.until === 'retrain' ? [] : cfg.methods.filter((mc) => !o.only || o.only.includes(mc.method));
    for (const mc of runNow) {
      const label = methodLabel(mc);
      const base = `methods/${safeName(label)}`;
      const prev = await readRecord<Row>(store, `${base}.json`);
      if (prev && (prev.config === undefined || JSON.stringify(prev.config) === JSON.stringify(mc))) {
        log(`${label}: reusing ${base}.json`);
        continue;
      }
      if (prev) log(`${label}: ${base}.json was made with another config; running again`);
      if (o.deadline !== undefined && performance.now() > o.deadline) {
        log(`${label}: not started, the run's time budget is spent (rerun to resume)`);
        continue;
      }
      signal?.throwIfAborted();
      const model = original.clone();
      try {
        const res = await runUnlearning(mc, {
          problem,
          model,
          original,
          makeFreshModel: () => task.makeModel(cfg.seed + 7),
          progress: (phase, d, n) => o.progress?.(`${label}: ${phase}`, d, n),
          signal,
        });
        const row = task.row(label, await task.evaluate(model, label, evalProgress), rtRef, res.ms / 60000, { steps: res.steps, maskDensity: res.maskDensity });
        await store.writeTensors(`${base}.safetensors`, await tensorsToRecord(model.stateDict()), { method: label, config: JSON.stringify(mc) });
        const record: MethodRecord<Row> = { format: METHOD_FORMAT, label, config: mc, row };
        await store.writeText(`${base}.json`, JSON.stringify(record, null, 2));
        log(`${label}: done in ${(res.ms / 1000).toFixed(1)} s`);
      } catch (e) {
        // an abort or a lost GPU device is no method's failure: stop; a rerun resumes here
        if (signal?.aborted || problem.ctx.lostError) throw e;
        log(`${label}: FAILED: ${(e as Error).message}`);
        failed.add(label);
      } finally {
        model.dispose();
      }
    }

    // 4. every finished method of this run folder, this config's first
    const rows: Row[] = [rtRow];
    const order = cfg.methods.map(methodLabel);
    const records = new Map<string, Row>();
    for (const f of (await store.list('methods')).filter((n) => n.endsWith('.json')).sort()) {
      const r = await readRecord<Row>(store, `methods/${f}`);
      if (r) records.set(r.label, r.row);
    }
    for (const l of order) {
      const r = records.get(l);
      if (r) rows.push(r);
      else if (failed.has(l)) rows.push(task.failedRow(l));
    }
    for (const [l, r] of records) if (!order.includes(l)) rows.push(r);
    return { rows, original: originalRow, totalSeconds: (performance.now() - t0) / 1000 };
  } finally {
    original.dispose();
  }
}

/** A method's saved record; older files held the row alone. */
async function readRecord<Row extends ResultRow>(store: ExperimentStore, name: string): Promise<MethodRecord<Row> | { label: string; row: Row; config?: undefined } | null> {
  const text = await store.readText(name);
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EngineError('experiment', `${name} is not valid JSON (${(e as Error).message}); delete it to rerun that method`);
  }
  const j = json as Partial<MethodRecord<Row>> & Partial<ResultRow>;
  if (j.format === METHOD_FORMAT && j.row && typeof j.label === 'string') return j as MethodRecord<Row>;
  if (typeof j.method === 'string') return { label: j.method, row: j as unknown as Row };
  throw new EngineError('experiment', `${name} is not a method result (no "format" or "method")`);
}
