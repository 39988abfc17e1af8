// GPU glue between named tensors and CPU records: read tensors back into a safetensors record for
// saving; load named sources (file records, CPU tensors or live tensors) into existing tensors, the
// one implementation behind Module.loadStateDict and training checkpoints: every missing, unexpected,
// mis-shaped or unconvertible name is listed in one error, and nothing is written unless all checks
// pass. No file I/O here (see safetensors-node.ts); optimizer state records are in nn/optim.ts.

import { Tensor, type DType } from '../autograd/tensor.js';
import { numel, sameShape, shapeStr } from '../autograd/shape.js';
import { toFloat32, type SafetensorsDType, type SafetensorsFile, type SafetensorsTensor } from './safetensors.js';
import { EngineError } from '../util/errors.js';

type Named = Map<string, Tensor> | Record<string, Tensor>;
const entriesOf = <T>(named: Map<string, T> | Record<string, T>): [string, T][] => (named instanceof Map ? [...named] : Object.entries(named));

const TO_FILE: Record<DType, SafetensorsDType> = { f32: 'F32', i32: 'I32', u32: 'U32', f16: 'F16' };

/** Read every tensor back (waits for the GPU) into a record ready for serializeSafetensors. */
export async function tensorsToRecord(named: Named): Promise<Map<string, SafetensorsTensor>> {
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, t] of entriesOf(named)) {
    if (t.disposed) throw new EngineError('tensorsToRecord', `tensor '${name}' was disposed`);
    out.set(name, { dtype: TO_FILE[t.dtype], shape: [...t.shape], data: await t.read() });
  }
  return out;
}

/**
 * A tensor held on the CPU: a safetensors record (F16/BF16 as raw bits, I64 as BigInt64Array) or
 * any `{ dtype, shape, data }` with an engine dtype name ('f32', 'i32', 'u32').
 */
export interface CpuTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array | BigUint64Array | ArrayBufferView;
}

/**
 * What loadIntoTensors reads from: live tensors or CPU tensors by name, or an object holding them
 * under `tensors` (a parsed safetensors file, `{ tensors: record }`).
 */
export type LoadSource =
  | Map<string, Tensor | CpuTensor>
  | Record<string, Tensor | CpuTensor>
  | { tensors: Map<string, Tensor | CpuTensor> | Record<string, Tensor | CpuTensor> }
  | SafetensorsFile;

export interface LoadReport {
  /** Names of the targets with no entry in the source (only when strict is false). */
  missing: string[];
  /** Names in the source matched by no target (only when strict is false). */
  unexpected: string[];
}

export interface LoadOptions {
  /** Missing and unexpected names are errors (default true); else they are returned. */
  strict?: boolean;
  /** Operation named in the error (default 'loadIntoTensors'). */
  op?: string;
}

/** A checked load: every write it will do, with the values already converted. */
export interface LoadPlan {
  readonly report: LoadReport;
  /** Target, then a source tensor (recorded GPU copy) or converted CPU values (uploaded). */
  readonly writes: readonly [Tensor, Tensor | Float32Array | Int32Array | Uint32Array][];
  readonly op: string;
}

export const FLOAT_FILE: SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16'];
const INT_FILE = new Set(['I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL']);
/** Engine dtype names accepted in CPU tensors, as their file dtype. */
const ENGINE_NAMES: Record<string, SafetensorsDType> = { f32: 'F32', f16: 'F16', i32: 'I32', u32: 'U32' };

function sourceEntries(src: LoadSource): Map<string, Tensor | CpuTensor> {
  const inner = (src as { tensors?: unknown }).tensors;
  const wrapped = !(src instanceof Map) && typeof inner === 'object' && inner !== null && !(inner instanceof Tensor) && !('dtype' in inner);
  const m = (wrapped ? inner : src) as Map<string, Tensor | CpuTensor> | Record<string, Tensor | CpuTensor>;
  return m instanceof Map ? m : new Map(Object.entries(m));
}

/** Integer values of `s` checked against [lo, hi]; null (with a problem pushed) when one does not fit. */
function integers(name: string, s: CpuTensor, lo: number, hi: number, what: string, problems: string[]): number[] | null {
  const d = s.data as ArrayLike<number | bigint>;
  const out = new Array<number>(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = Number(d[i]);
    if (!(v >= lo && v <= hi)) {
      problems.push(`'${name}'[${i}] = ${d[i]} does not fit in ${what}`);
      return null;
    }
    out[i] = v;
  }
  return out;
}

/**
 * Check a load of `source` into the same-named `targets` and convert its values, without writing:
 * float sources load into f32 (F16/BF16/F64 converted), integer sources into i32/u32 (range-checked)
 * and into f32 (PyTorch's I64 counters); live tensors must have the target's dtype. Shapes must be
 * equal (a one-element source fits a one-element target of any rank). Mis-shaped or unconvertible
 * entries always fail; missing and unexpected names fail when strict (the default). Throws one
 * EngineError listing every problem.
 */
export function planLoad(targets: Named, source: LoadSource, options: LoadOptions = {}): LoadPlan {
  const op = options.op ?? 'loadIntoTensors';
  const strict = options.strict ?? true;
  const given = sourceEntries(source);
  const own = entriesOf(targets);
  const missing: string[] = [];
  const problems: string[] = [];
  const writes: [Tensor, Tensor | Float32Array | Int32Array | Uint32Array][] = [];
  for (const [name, t] of own) {
    const s = given.get(name);
    if (!s) {
      missing.push(name);
      continue;
    }
    if (t.disposed) {
      problems.push(`target '${name}' is disposed`);
      continue;
    }
    if (!sameShape(s.shape, t.shape) && !(numel(s.shape) === 1 && t.size === 1)) {
      problems.push(`'${name}' has shape ${shapeStr(s.shape)} in the source, expected ${shapeStr(t.shape)}`);
      continue;
    }
    if (s instanceof Tensor) {
      if (s.disposed) problems.push(`source '${name}' is disposed`);
      else if (s.dtype !== t.dtype) problems.push(`'${name}' is ${s.dtype} in the source, cannot load into ${t.describe()}`);
      else writes.push([t, s]);
      continue;
    }
    const dtype = ENGINE_NAMES[s.dtype] ?? s.dtype;
    const isFloat = FLOAT_FILE.includes(dtype as SafetensorsDType);
    const isInt = INT_FILE.has(dtype);
    const count = (s.data as ArrayLike<unknown>).length;
    if (count !== t.size) {
      problems.push(`'${name}' has ${typeof count === 'number' ? count : 'no indexable'} values for shape ${shapeStr(s.shape)}`);
      continue;
    }
    if (t.dtype === 'f32' && (isFloat || isInt)) writes.push([t, toFloat32({ ...(s as SafetensorsTensor), dtype: dtype as SafetensorsDType })]);
    else if (t.dtype === 'i32' && isInt) {
      const v = integers(name, s, -2147483648, 2147483647, 'int32', problems);
      if (v) writes.push([t, Int32Array.from(v)]);
    } else if (t.dtype === 'u32' && isInt) {
      const v = integers(name, s, 0, 4294967295, 'uint32', problems);
      if (v) writes.push([t, Uint32Array.from(v)]);
    } else problems.push(`'${name}' is ${s.dtype} in the source, cannot load into ${t.describe()}`);
  }
  const known = new Set(own.map(([n]) => n));
  const unexpected = [...given.keys()].filter((n) => !known.has(n));
  const list = (names: string[]) => names.map((n) => `'${n}'`).join(', ');
  if (strict && unexpected.length) problems.unshift(`unexpected ${unexpected.length}: ${list(unexpected)}`);
  if (strict && missing.length) problems.unshift(`missing ${missing.length}: ${list(missing)}`);
  if (problems.length) throw new EngineError(op, `${problems.length} problem(s): ${problems.join('; ')}`);
  return { op, writes, report: { missing: strict ? [] : missing, unexpected: strict ? [] : unexpected } };
}

/**
 * Do a checked load's writes as recorded GPU work, ordered with the kernels around it: live
 * sources by buffer copy, CPU values uploaded into a fresh buffer and copied (queue.writeBuffer on a
 * buffer that pending commands use would run ahead of them).
 */
export function applyLoad(plan: LoadPlan): void {
  const { op } = plan;
  for (const [t, src] of plan.writes) {
    if (t.size === 0) continue;
    if (src instanceof Tensor) {
      if (!src.sharesStorage(t)) t.ctx.copyBuffer(src.buffer(op), 0, t.buffer(op), 0, t.bytes);
      continue;
    }
    const tmp = new Tensor(t.ctx, t.shape, t.dtype);
    t.ctx.upload(tmp.buffer(op), src);
    t.ctx.copyBuffer(tmp.buffer(op), 0, t.buffer(op), 0, t.bytes);
    tmp.dispose();
  }
}

/**
 * Copy the source's tensors into the same-named tensors in place (planLoad's checks and
 * conversions, then applyLoad's recorded writes; the tensor objects stay the same, so optimizers
 * holding them keep working). Returns the missing and unexpected names when not strict.
 */
export function loadIntoTensors(targets: Named, source: LoadSource, options: LoadOptions = {}): LoadReport {
  const plan = planLoad(targets, source, options);
  applyLoad(plan);
  return plan.report;
}
