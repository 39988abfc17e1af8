// Forget/remain partitions of a training set (spec §5), task-generic (indices only): the type, its
// validation (empty, everything, out of range, duplicates), a random split (seeded permutation,
// first ⌊p·n⌋ forget), an explicit index list (a file's text, errors naming the line), a stable hash
// so a checkpoint can record its split, and JSON. Splits that need labels (whole classes) live with
// the task (../classification/split.ts). Browser-safe; file I/O is the caller's.

import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';

export type ForgetSplitKind = 'random' | 'class' | 'indices';

/**
 * A partition of dataset indices 0..n-1 into forget (D_f) and remain (D_r). Both lists are sorted
 * ascending (a split is a set; loaders shuffle on their own). `hash` identifies (n, forget set).
 */
export interface ForgetSplit {
  forget: Int32Array;
  remain: Int32Array;
  n: number;
  kind: ForgetSplitKind;
  /** random splits: the permutation seed and the fraction p */
  seed?: number;
  fraction?: number;
  /** class splits: the forgotten classes */
  classes?: number[];
  /** 16 hex digits, FNV-1a (64-bit) over n and the sorted forget indices */
  hash: string;
}

/** Random forgetting: permute 0..n-1 with Generator(seed); the first ⌊fraction·n⌋ are forgotten. */
export function randomForgetSplit(n: number, fraction: number, seed: number): ForgetSplit {
  const op = 'randomForgetSplit';
  checkN(n, op);
  if (!(fraction > 0 && fraction < 1)) throw new EngineError(op, `fraction must be in (0, 1), got ${fraction}`);
  if (!Number.isInteger(seed) || seed < 0) throw new EngineError(op, `seed must be a non-negative integer, got ${seed}`);
  const k = Math.floor(fraction * n);
  const perm = new Generator(seed).permutation(n);
  return { ...makeSplit(perm.slice(0, k), n, op), kind: 'random', seed, fraction };
}

/**
 * An explicit forget list for a dataset of n samples from a file's text: JSON (an array of indices,
 * or an object with a `forget` array as written by splitToJson) or plain text of integers separated
 * by whitespace and/or commas ('#' starts a comment to the end of the line). Every problem is an
 * EngineError naming its place (`line L` in text, `entry k` in JSON) and the file (`what`): a token
 * that is not an integer, an index out of [0, n), an index listed twice, an empty list. A JSON split
 * that records its n must match.
 */
export function indexFileSplit(contents: string, n: number, what = 'forget index file'): ForgetSplit {
  const op = 'indexFileSplit';
  checkN(n, op);
  const text = contents.trim();
  const entries: { v: unknown; where: string }[] = [];
  if (text.startsWith('[') || text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new EngineError(op, `${what}: invalid JSON: ${(e as Error).message}`);
    }
    let values: unknown[];
    if (Array.isArray(parsed)) values = parsed;
    else {
      const obj = parsed as { forget?: unknown; n?: unknown };
      if (!Array.isArray(obj.forget)) throw new EngineError(op, `${what}: the JSON object has no "forget" array`);
      if (obj.n !== undefined && obj.n !== n) throw new EngineError(op, `${what}: a split of n = ${String(obj.n)} samples, but the dataset has ${n}`);
      values = obj.forget;
    }
    values.forEach((v, k) => entries.push({ v, where: `entry ${k}` }));
  } else {
    contents.split('\n').forEach((line, i) => {
      for (const tok of line.replace(/#.*$/, '').split(/[\s,]+/)) if (tok.length > 0) entries.push({ v: tok, where: `line ${i + 1}` });
    });
  }
  if (entries.length === 0) throw new EngineError(op, `${what} lists no indices (the forget set would be empty)`);
  const firstSeen = new Map<number, string>();
  const forget = new Int32Array(entries.length);
  entries.forEach(({ v, where }, k) => {
    const x = typeof v === 'string' && /^[+-]?\d+$/.test(v) ? Number(v) : v;
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new EngineError(op, `${what}, ${where}: ${JSON.stringify(v)} is not an integer index`);
    if (x < 0 || x >= n) throw new EngineError(op, `${what}, ${where}: index ${x} is out of range [0, ${n})`);
    const seen = firstSeen.get(x);
    if (seen !== undefined) throw new EngineError(op, `${what}, ${where}: index ${x} is listed twice (first at ${seen})`);
    firstSeen.set(x, where);
    forget[k] = x;
  });
  return { ...makeSplit(forget, n, op), kind: 'indices' };
}

/**
 * Validates a forget list against n and builds the split: throws on an empty forget set, a forget
 * set covering everything, an index out of range or a duplicate (naming the index). kind = 'indices'.
 */
export function makeSplit(forgetIndices: ArrayLike<number>, n: number, op = 'makeSplit'): ForgetSplit {
  checkN(n, op);
  const seen = new Uint8Array(n);
  for (let k = 0; k < forgetIndices.length; k++) {
    const i = forgetIndices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new EngineError(op, `forget index ${i} (entry ${k}) is out of range [0, ${n})`);
    if (seen[i]) throw new EngineError(op, `forget index ${i} appears more than once (entry ${k})`);
    seen[i] = 1;
  }
  const nf = forgetIndices.length;
  if (nf === 0) throw new EngineError(op, `the forget set is empty (n = ${n})`);
  if (nf === n) throw new EngineError(op, `the forget set is the whole training set (n = ${n}); nothing would remain`);
  const forget = new Int32Array(nf);
  const remain = new Int32Array(n - nf);
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    if (seen[i]) forget[a++] = i;
    else remain[b++] = i;
  }
  return { forget, remain, n, kind: 'indices', hash: splitHash(forget, n) };
}

/** FNV-1a, 64-bit, over n then each index (as 4 little-endian bytes) of the sorted forget list. */
export function splitHash(sortedForget: Int32Array, n: number): string {
  const PRIME = 0x100000001b3n;
  const MASK = 0xffffffffffffffffn;
  let h = 0xcbf29ce484222325n;
  const feed = (v: number) => {
    for (let s = 0; s < 32; s += 8) {
      h ^= BigInt((v >>> s) & 0xff);
      h = (h * PRIME) & MASK;
    }
  };
  feed(n);
  for (let k = 0; k < sortedForget.length; k++) feed(sortedForget[k]!);
  return h.toString(16).padStart(16, '0');
}

/**
 * Throws when `recordedHash` (e.g. the split hash stored with an RT checkpoint) is not the hash of
 * `split`: comparing an unlearned model to an RT model trained on another split is meaningless.
 */
export function assertSameSplit(recordedHash: string, split: ForgetSplit, what = 'checkpoint'): void {
  if (recordedHash !== split.hash) {
    throw new EngineError('assertSameSplit', `${what} was trained on split ${recordedHash}, but the current split is ${split.hash} (${split.kind}, n = ${split.n}, ${split.forget.length} forget)`);
  }
}

/** JSON text of a split (remain is implied and not stored). */
export function splitToJson(split: ForgetSplit): string {
  const obj: Record<string, unknown> = { format: 'unlearn-gpu.forget-split/1', kind: split.kind, n: split.n, hash: split.hash };
  if (split.seed !== undefined) obj.seed = split.seed;
  if (split.fraction !== undefined) obj.fraction = split.fraction;
  if (split.classes !== undefined) obj.classes = split.classes;
  obj.numForget = split.forget.length;
  obj.forget = Array.from(split.forget);
  return JSON.stringify(obj) + '\n';
}

/** Parses splitToJson output, re-validates it and checks the stored hash (catches edited files). */
export function splitFromJson(text: string): ForgetSplit {
  const op = 'splitFromJson';
  let obj: { kind?: unknown; n?: unknown; hash?: unknown; seed?: unknown; fraction?: unknown; classes?: unknown; forget?: unknown };
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new EngineError(op, `invalid JSON: ${(e as Error).message}`);
  }
  if (typeof obj.n !== 'number' || !Array.isArray(obj.forget)) throw new EngineError(op, 'missing "n" or "forget"');
  const kind = obj.kind as ForgetSplitKind;
  if (kind !== 'random' && kind !== 'class' && kind !== 'indices') throw new EngineError(op, `unknown kind ${JSON.stringify(obj.kind)}`);
  const base = makeSplit(obj.forget as number[], obj.n, op);
  if (typeof obj.hash === 'string' && obj.hash !== base.hash) throw new EngineError(op, `stored hash ${obj.hash} does not match the indices (${base.hash}): the file was altered`);
  const split: ForgetSplit = { ...base, kind };
  if (typeof obj.seed === 'number') split.seed = obj.seed;
  if (typeof obj.fraction === 'number') split.fraction = obj.fraction;
  if (Array.isArray(obj.classes)) split.classes = obj.classes as number[];
  return split;
}

function checkN(n: number, op: string): void {
  if (!Number.isInteger(n) || n < 2) throw new EngineError(op, `n must be an integer >= 2, got ${n}`);
}
