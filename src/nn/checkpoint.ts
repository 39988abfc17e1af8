// Training checkpoints as one safetensors file: the model's state dict (`model.*`), the optimizer's
// state record (`optimizer.*`, optim.ts's one format), further named tensor groups loaded in place
// (`hook.<name>.*` for an EMA's shadow weights, `loop.sum.*` for partial-epoch metric sums) and the
// caller's JSON state in the metadata. CheckpointIO says where files go; memoryCheckpointIO keeps
// them in memory (tests, browsers). Browser-safe: Node's file system is in checkpoint-node.ts.

import type { Tensor } from '../autograd/tensor.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type SafetensorsTensor } from '../io/safetensors.js';
import { applyLoad, planLoad, tensorsToRecord, type LoadPlan } from '../io/state.js';
import { EngineError } from '../util/errors.js';
import type { AnyModule } from './module.js';
import { optimizerStateFromRecord, optimizerStateToRecord, type Optimizer } from './optim.js';

/** Where checkpoints are written and read (Node: nodeCheckpointIO(); browsers: memory or IndexedDB). */
export interface CheckpointIO {
  /** Write the file whole or not at all (a crash never leaves half a checkpoint). */
  save(path: string, tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string>): Promise<void>;
  /** The parsed file, or null when it does not exist. */
  load(path: string): Promise<SafetensorsFile | null>;
}

/**
 * Checkpoints kept in memory as serialized safetensors bytes (so what loads is exactly what a file
 * would hold). `files` maps each path to its bytes.
 */
export function memoryCheckpointIO(): CheckpointIO & { readonly files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    async save(path, tensors, metadata) {
      files.set(path, serializeSafetensors(tensors, metadata));
    },
    async load(path) {
      const bytes = files.get(path);
      return bytes ? parseSafetensors(bytes) : null;
    },
  };
}

/** Metadata `format` of the files saveCheckpoint writes. */
export const CHECKPOINT_FORMAT = 'unlearn-gpu.checkpoint.v2';

/** What a checkpoint holds besides its JSON state. */
export interface CheckpointParts {
  model: AnyModule;
  optimizer: Optimizer;
  /**
   * Further tensors by group prefix (dotted, not under `model` or `optimizer`; e.g. `hook.ema`,
   * `loop.sum`): saved as `<prefix>.<name>` and, on load, copied into these same live tensors.
   */
  groups?: Record<string, Map<string, Tensor>>;
}

/** Save model, optimizer, groups and `state` (JSON) as one file through `io` (atomic when io.save is). */
export async function saveCheckpoint(io: CheckpointIO, path: string, parts: CheckpointParts, state: unknown): Promise<void> {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [n, t] of await tensorsToRecord(parts.model.stateDict())) tensors.set(`model.${n}`, t);
  for (const [n, t] of await optimizerStateToRecord(parts.optimizer, 'optimizer.')) tensors.set(n, t);
  for (const [prefix, named] of Object.entries(parts.groups ?? {})) {
    checkPrefix(prefix);
    for (const [n, t] of await tensorsToRecord(named)) tensors.set(`${prefix}.${n}`, t);
  }
  await io.save(path, tensors, { format: CHECKPOINT_FORMAT, state: JSON.stringify(state ?? null) });
}

/**
 * The JSON state of a checkpoint file; throws naming the file's format when it is not one
 * saveCheckpoint wrote (format v1 files of earlier versions included).
 */
export function checkpointState(file: SafetensorsFile, what = 'checkpoint'): unknown {
  const op = 'loadCheckpoint';
  if (file.metadata.format !== CHECKPOINT_FORMAT)
    throw new EngineError(op, `${what} is not a training checkpoint of this version (metadata format '${file.metadata.format ?? ''}', expected '${CHECKPOINT_FORMAT}')`);
  try {
    return JSON.parse(file.metadata.state ?? 'null');
  } catch (e) {
    throw new EngineError(op, `${what} has unreadable state metadata: ${(e as Error).message}`);
  }
}

/**
 * Load a checkpoint's tensors into `parts` in place: every part is checked first (one EngineError
 * lists every missing, unexpected, mis-shaped tensor of the model, the optimizer and the groups,
 * and an entry under no known prefix), and nothing is written unless all checks pass. Returns the
 * JSON state.
 */
export function loadCheckpoint(file: SafetensorsFile, parts: CheckpointParts, what = 'checkpoint'): unknown {
  const op = 'loadCheckpoint';
  const state = checkpointState(file, what);
  const prefixes = Object.keys(parts.groups ?? {});
  prefixes.forEach(checkPrefix);
  const byPart = new Map<string, Map<string, SafetensorsTensor>>([['model', new Map()], ...prefixes.map((p) => [p, new Map()] as const)]);
  const strays: string[] = [];
  for (const [name, t] of file.tensors) {
    if (name.startsWith('optimizer.')) continue;
    // the longest matching prefix owns the name (tensor names have dots of their own)
    const part = name.startsWith('model.') ? 'model' : (prefixes.filter((p) => name.startsWith(`${p}.`)).sort((a, b) => b.length - a.length)[0] ?? null);
    if (part === null) strays.push(`'${name}'`);
    else byPart.get(part)!.set(name.slice(part.length + 1), t);
  }
  const problems: string[] = strays.length ? [`unexpected ${strays.length} (under no known prefix): ${strays.join(', ')}`] : [];
  const plans: LoadPlan[] = [];
  const tryPart = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      problems.push(e.message);
    }
  };
  tryPart(() => plans.push(planLoad(parts.model.stateDict(), byPart.get('model')!, { op: 'model' })));
  for (const p of prefixes) tryPart(() => plans.push(planLoad(parts.groups![p]!, byPart.get(p)!, { op: p })));
  let optimizerState: ReturnType<typeof optimizerStateFromRecord> | null = null;
  tryPart(() => (optimizerState = optimizerStateFromRecord(parts.optimizer, file, 'optimizer.', 'optimizer')));
  if (problems.length) {
    (optimizerState as ReturnType<typeof optimizerStateFromRecord> | null)?.tensors.forEach((t) => t.dispose());
    throw new EngineError(op, `${what}: ${problems.join(' | ')}`);
  }
  plans.forEach(applyLoad);
  const sd = optimizerState!;
  try {
    parts.optimizer.loadStateDict(sd);
  } finally {
    sd.tensors.forEach((t) => t.dispose());
  }
  return state;
}

function checkPrefix(prefix: string) {
  const parts = prefix.split('.');
  if (parts.some((s) => !s) || parts[0] === 'model' || parts[0] === 'optimizer')
    throw new EngineError('checkpoint', `invalid tensor group prefix '${prefix}' (non-empty dotted parts, not model/optimizer)`);
}
