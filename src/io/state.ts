// GPU glue between named tensors and safetensors records: read tensors back into a record for saving,
// load a record into existing tensors with every missing, unexpected and mis-shaped name reported in
// one error. No file I/O here (see safetensors-node.ts); optimizer state records are in nn/optim.ts.

import { Tensor, type DType } from '../autograd/tensor.js';
import { sameShape, shapeStr } from '../autograd/shape.js';
import { toFloat32, toInt32, type SafetensorsDType, type SafetensorsFile, type SafetensorsTensor } from './safetensors.js';
import { EngineError } from '../util/errors.js';

type Named = Map<string, Tensor> | Record<string, Tensor>;
const entriesOf = (named: Named): [string, Tensor][] => (named instanceof Map ? [...named] : Object.entries(named));

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

export interface LoadReport {
  /** Names of `named` with no entry in the file (only when strict is false). */
  missing: string[];
  /** Names in the file matched by no tensor (only when strict is false). */
  unexpected: string[];
}

export const FLOAT_FILE: SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16'];

/**
 * Copy the file's tensors into the same-named tensors (values converted: floats into f32, integers
 * into i32/u32). Mis-shaped or incompatible tensors always fail; missing and unexpected names fail
 * when `strict` (the default), else they are returned. All problems are listed in one error, and
 * nothing is written unless every check passes. Writes are recorded GPU copies, ordered with the
 * kernels around them.
 */
export function loadIntoTensors(
  named: Named,
  file: SafetensorsFile | Map<string, SafetensorsTensor>,
  options: { strict?: boolean } = {},
): LoadReport {
  const op = 'loadIntoTensors';
  const strict = options.strict ?? true;
  const records = file instanceof Map ? file : file.tensors;
  const targets = entriesOf(named);
  const missing: string[] = [];
  const problems: string[] = [];
  const plan: [Tensor, ArrayBufferView, string][] = [];
  for (const [name, t] of targets) {
    const r = records.get(name);
    if (!r) {
      missing.push(name);
      continue;
    }
    if (t.disposed) {
      problems.push(`'${name}' is disposed`);
      continue;
    }
    if (!sameShape(r.shape, t.shape)) {
      problems.push(`'${name}' has shape ${shapeStr(r.shape)} in the file, expected ${shapeStr(t.shape)}`);
      continue;
    }
    const isFloat = FLOAT_FILE.includes(r.dtype);
    try {
      if (t.dtype === 'f32' && isFloat) plan.push([t, toFloat32(r), name]);
      else if ((t.dtype === 'i32' || t.dtype === 'u32') && !isFloat) {
        const v = toInt32(r, name);
        plan.push([t, t.dtype === 'u32' ? new Uint32Array(v.buffer) : v, name]);
      } else problems.push(`'${name}' is ${r.dtype} in the file, cannot load into ${t.describe()}`);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  const known = new Set(targets.map(([n]) => n));
  const unexpected = [...records.keys()].filter((n) => !known.has(n));
  if (strict) {
    if (missing.length) problems.push(`missing: ${missing.map((n) => `'${n}'`).join(', ')}`);
    if (unexpected.length) problems.push(`unexpected: ${unexpected.map((n) => `'${n}'`).join(', ')}`);
  }
  if (problems.length) throw new EngineError(op, `${problems.length} problem(s): ${problems.join('; ')}`);
  for (const [t, data] of plan) {
    if (t.size === 0) continue;
    // upload into a fresh buffer, then a recorded copy: writeBuffer on a buffer that pending
    // commands use would run ahead of them
    const tmp = new Tensor(t.ctx, t.shape, t.dtype);
    t.ctx.upload(tmp.buffer(op), data);
    t.ctx.copyBuffer(tmp.buffer(op), 0, t.buffer(op), 0, t.bytes);
    tmp.dispose();
  }
  return { missing: strict ? [] : missing, unexpected: strict ? [] : unexpected };
}
