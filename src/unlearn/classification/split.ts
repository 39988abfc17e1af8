// The classification data protocol's forget splits (spec §5): 10% random forgetting (seeded
// permutation), class-wise forgetting (every sample of some classes) and a user's index file, as one
// `ForgetSpec` in an experiment config. Browser-safe: the index file's text is read by the caller.

import { EngineError } from '../../util/errors.js';
import { indexFileSplit, makeSplit, randomForgetSplit, type ForgetSplit } from '../core/split.js';

export type ForgetSpec =
  | { kind: 'random'; fraction: number; seed: number }
  | { kind: 'class'; classes: number[] }
  /** a file of training-set indices: plain text (one or more per line, # comments), a JSON array, or a saved split */
  | { kind: 'file'; path: string };

/** Class-wise forgetting: every sample whose label is in `classes`. labels [n]. */
export function classForgetSplit(labels: ArrayLike<number>, classes: number[]): ForgetSplit {
  const op = 'classForgetSplit';
  if (classes.length === 0) throw new EngineError(op, 'no classes given');
  const set = new Set(classes);
  if (set.size !== classes.length) throw new EngineError(op, `duplicate class in [${classes.join(', ')}]`);
  const present = new Set<number>();
  const forget: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    present.add(labels[i]!);
    if (set.has(labels[i]!)) forget.push(i);
  }
  const missing = classes.filter((c) => !present.has(c));
  if (missing.length > 0) throw new EngineError(op, `class ${missing.join(', ')} has no samples`);
  return { ...makeSplit(Int32Array.from(forget), labels.length, op), kind: 'class', classes: [...classes].sort((a, b) => a - b) };
}

/**
 * The split a spec asks for on a training set with these labels. `fileText` is the index file's
 * contents for kind 'file' (read by the caller, so this stays browser-safe).
 */
export function forgetSplitOf(spec: ForgetSpec, labels: ArrayLike<number>, fileText?: string): ForgetSplit {
  if (spec.kind === 'random') return randomForgetSplit(labels.length, spec.fraction, spec.seed);
  if (spec.kind === 'class') return classForgetSplit(labels, spec.classes);
  if (fileText === undefined) throw new EngineError('forgetSplitOf', `the index file ${spec.path} was not read`);
  return indexFileSplit(fileText, labels.length, `forget index file ${spec.path}`);
}
