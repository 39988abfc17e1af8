import { EngineError } from '../util/errors.js';
// Shape arithmetic shared by ops and kernels: element counts, strides, broadcasting, axis handling.
// Pure functions on number arrays; no GPU here.


export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** NumPy broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new EngineError(op, `shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast (dimension ${i}: ${da} vs ${db})`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` seen through broadcasting to `outShape` (0 on broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, i) => {
    const j = i - off;
    if (j < 0) return 0;
    return shape[j] === 1 && d !== 1 ? 0 : st[j]!;
  });
}

/** Resolve a possibly negative axis; throws naming the op. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new EngineError(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Resolve -1 in a reshape target. */
export function resolveShape(op: string, size: number, shape: readonly number[]): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || size % rest !== 0) throw new EngineError(op, `cannot infer -1 in ${shapeStr(shape)} for ${size} elements`);
    out[neg] = size / rest;
  }
  if (numel(out) !== size) throw new EngineError(op, `cannot reshape ${size} elements to ${shapeStr(shape)}`);
  return out;
}

/** Generic strided kernels take shapes of rank <= 8. */
export function checkRank(op: string, shape: readonly number[], max = 8): void {
  if (shape.length > max) throw new EngineError(op, `rank ${shape.length} of ${shapeStr(shape)} exceeds the supported ${max}`);
}
