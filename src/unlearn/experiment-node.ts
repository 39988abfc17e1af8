// The classification experiment from a config on disk (Node only), a thin wrapper around the
// browser-safe core (core/experiment.ts) and task (classification/): an output folder as the
// experiment's store (atomic writes; a rerun resumes from what is there), users' checkpoints read
// header-first from paths (one file, shards, or an index.json), the forget index file read from its path, the data loaded from disk, and
// results.json written at the end.

import { mkdirSync, existsSync, readFileSync, statSync } from 'node:fs';
import { open, readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { GpuContext } from '../gpu/context.js';
import { writeFileAtomic } from '../io/atomic-node.js';
import { saveSafetensorsFile, loadSafetensorsFile, loadSafetensorsShards } from '../io/safetensors-node.js';
import { parseSafetensorsIndex } from '../io/safetensors.js';
import { EngineError } from '../util/errors.js';
import { headerLength, parseHeader, type CheckpointHeader } from './core/checkpoint.js';
import { runTaskExperiment, safeName, type CheckpointReader, type CheckpointSource, type ExperimentStore } from './core/experiment.js';
import type { MethodName } from './core/methods.js';
import type { ExperimentConfig } from './classification/config.js';
import { loadData } from './classification/data-node.js';
import { classificationExperiment, type MethodRow } from './classification/experiment.js';
import { forgetSplitOf } from './classification/split.js';

export interface ExperimentResult {
  config: ExperimentConfig;
  /** RT first, then every method finished in the output folder. */
  rows: MethodRow[];
  /** the pretrained model's row (absent when the run stopped after pretraining) */
  original?: MethodRow;
  device: string;
  totalSeconds: number;
}

/** An output folder as an ExperimentStore: names are paths inside it; every write is atomic. */
export function nodeStore(dir: string): ExperimentStore {
  const at = (name: string) => join(dir, name);
  const ensureDir = (path: string) => mkdirSync(dirname(path), { recursive: true });
  const readIfThere = async <T>(name: string, read: (path: string) => Promise<T>): Promise<T | null> => (existsSync(at(name)) ? read(at(name)) : null);
  return {
    readText: (name) => readIfThere(name, (p) => readFile(p, 'utf8')),
    async writeText(name, text) {
      ensureDir(at(name));
      await writeFileAtomic(at(name), text);
    },
    readTensors: (name) => readIfThere(name, (p) => loadSafetensorsFile(p)),
    async writeTensors(name, tensors, metadata) {
      ensureDir(at(name));
      await saveSafetensorsFile(at(name), tensors, metadata);
    },
    list: async (sub) => (existsSync(at(sub)) ? (await readdir(at(sub))).sort() : []),
    checkpointIO: {
      async save(path, tensors, metadata) {
        ensureDir(at(path));
        await saveSafetensorsFile(at(path), tensors, metadata);
      },
      load: (path) => readIfThere(path, (p) => loadSafetensorsFile(p)),
    },
  };
}

/** The files of a checkpoint source (a path, a list of shards, or one Hugging Face `*.index.json`), each checked to exist. */
function filesOf(source: CheckpointSource): string[] {
  const given = typeof source === 'string' ? [source] : [...source];
  if (given.length === 0) throw new EngineError('checkpoint', 'an empty list of checkpoint files');
  let list = given;
  if (given.length === 1 && given[0]!.endsWith('.index.json')) {
    const index = given[0]!;
    if (!existsSync(index)) throw new EngineError('checkpoint', `${index} does not exist`);
    list = parseSafetensorsIndex(readFileSync(index, 'utf8'), index).shards.map((f) => join(dirname(index), f));
  }
  for (const f of list) {
    if (!existsSync(f)) throw new EngineError('checkpoint', `${f} does not exist`);
    if (!statSync(f).isFile()) throw new EngineError('checkpoint', `${f} is not a file`);
  }
  return list;
}

/**
 * Reads checkpoints from paths: headers alone first (a few KB per file: names, dtypes, shapes), the
 * tensors on load (src/io's shard loader: shards merged, an index.json checked, NaN/Inf rejected).
 */
export const nodeCheckpointReader: CheckpointReader = {
  async headers(source) {
    const out: CheckpointHeader[] = [];
    for (const file of filesOf(source)) {
      const fh = await open(file, 'r');
      try {
        const size = (await fh.stat()).size;
        const first = new Uint8Array(Math.min(8, size));
        await fh.read(first, 0, first.length, 0);
        const end = headerLength(first, file);
        const bytes = new Uint8Array(Math.min(end, size));
        await fh.read(bytes, 0, bytes.length, 0);
        out.push(parseHeader(bytes, file, size));
      } finally {
        await fh.close();
      }
    }
    return out;
  },
  load: (source) => loadSafetensorsShards(source, { checkFinite: true }),
};

/**
 * Run (or resume) the experiment of `cfg` (a resolved config, see classification/config.ts) in
 * cfg.outDir. `progress` receives every long phase; `log` one line per event.
 */
export async function runExperiment(
  ctx: GpuContext,
  cfg: ExperimentConfig,
  opts: {
    progress?: (phase: string, done: number, total: number) => void;
    log?: (s: string) => void;
    only?: MethodName[];
    /** performance.now() after which no further method is started */
    deadline?: number;
    /** stop after this stage: 'pretrain' (no RT, no table) or 'retrain' (RT and the original, no methods) */
    until?: 'pretrain' | 'retrain';
    /** instead of the methods, score this checkpoint (a file or shards; the config's architecture) against RT */
    evaluate?: { path: CheckpointSource; label: string };
    signal?: AbortSignal;
  } = {},
): Promise<ExperimentResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  // cheap checks on paths first: a missing file fails before the data are loaded
  for (const src of [cfg.pretrained, cfg.retrained, opts.evaluate?.path]) if (src) filesOf(src);
  let indexText: string | undefined;
  if (cfg.forget.kind === 'file') {
    if (!existsSync(cfg.forget.path)) throw new EngineError('experiment', `forget index file ${cfg.forget.path} does not exist`);
    indexText = readFileSync(cfg.forget.path, 'utf8');
  }
  const data = await loadData(cfg.data);
  log(`data: ${data.train.length} train / ${data.test.length} test images of shape [${data.train.shape.join(',')}], ${data.train.numClasses} classes`);
  const split = forgetSplitOf(cfg.forget, data.train.labels, indexText);
  mkdirSync(cfg.outDir, { recursive: true });
  const store = nodeStore(cfg.outDir);
  const task = classificationExperiment(ctx, cfg, data, split);
  const outcome = await runTaskExperiment(task, cfg, {
    store,
    checkpoints: nodeCheckpointReader,
    log,
    progress: opts.progress,
    only: opts.only,
    deadline: opts.deadline,
    until: opts.until,
    evaluate: opts.evaluate ? { source: opts.evaluate.path, label: opts.evaluate.label } : undefined,
    signal: opts.signal,
  });
  const result: ExperimentResult = { config: cfg, rows: outcome.rows, original: outcome.original, device: ctx.deviceName, totalSeconds: (performance.now() - t0) / 1000 };
  // an evaluation of an outside checkpoint must not replace the run's own results
  if (opts.until !== 'pretrain') {
    const name = opts.evaluate ? `evaluate-${safeName(opts.evaluate.label)}.results.json` : 'results.json';
    await store.writeText(name, JSON.stringify(result, null, 2));
  }
  return result;
}
