// Checking a user's model checkpoint (one safetensors file, or its shards) against the model it is
// meant for from the files' headers alone (names, dtypes, shapes: nothing is read past the header,
// nothing uploaded), so a wrong file fails before any training or evaluation. Loading the tensors is
// src/io's (loadSafetensorsShards). Browser-safe: the caller reads the header bytes.

import type { AnyModule } from '../../nn/module.js';
import { EngineError } from '../../util/errors.js';

export interface TensorHeader {
  dtype: string;
  shape: number[];
}

/** The header of one safetensors file: tensor names with dtype and shape, and the metadata. */
export interface CheckpointHeader {
  file: string;
  tensors: Map<string, TensorHeader>;
  metadata: Record<string, string>;
}

const MAX_HEADER = 100_000_000;
/** Float dtypes a model's float tensors may be loaded from. */
const FLOATS = new Set(['F32', 'F16', 'BF16']);
/** Integer dtypes PyTorch uses for counters (BatchNorm's num_batches_tracked). */
const INTS = new Set(['I64', 'I32', 'U8', 'I8', 'I16', 'U16', 'U32', 'U64']);

/** Bytes of the header's length field plus the header: read at least this many for parseHeader. */
export function headerLength(first8: Uint8Array, file: string): number {
  if (first8.length < 8) throw new EngineError('checkpoint', `${file}: ${first8.length} bytes, not a safetensors file (no 8-byte header length)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) throw new EngineError('checkpoint', `${file}: header length ${n} is over the ${MAX_HEADER}-byte limit: not a safetensors file?`);
  return 8 + Number(n);
}

/**
 * Parse the header of a safetensors file from its first `headerLength` bytes (more is fine).
 * `fileSize` (bytes), when known, checks that every tensor's data lies inside the file.
 */
export function parseHeader(bytes: Uint8Array, file: string, fileSize?: number): CheckpointHeader {
  const fail = (m: string): never => {
    throw new EngineError('checkpoint', `${file}: ${m}`);
  };
  const end = headerLength(bytes, file);
  if (bytes.length < end) fail(`truncated: the header needs ${end} bytes, the file has ${bytes.length}`);
  if (fileSize !== undefined && end > fileSize) fail(`truncated: the header needs ${end} bytes, the file has ${fileSize}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, end)));
  } catch (e) {
    fail(`the header is not UTF-8 JSON (${(e as Error).message}): not a safetensors file?`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('the header is not a JSON object');
  const tensors = new Map<string, TensorHeader>();
  let metadata: Record<string, string> = {};
  const dataLen = fileSize === undefined ? Infinity : fileSize - end;
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor '${name}': invalid header entry ${JSON.stringify(v)}`);
    const off = e!.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !(off[0] <= off[1]) || off[1] > dataLen)
      fail(`tensor '${name}': data_offsets ${JSON.stringify(off)} lie outside the file's ${dataLen} data bytes (truncated?)`);
    tensors.set(name, { dtype: e!.dtype as string, shape: [...(e!.shape as number[])] });
  }
  return { file, tensors, metadata };
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Throws one EngineError listing every problem of `shards` (the headers of one model's files) as a
 * state dict for `model`: a name in two shards, names the model lacks (unexpected) or the files
 * lack (missing), shapes that differ, dtypes that cannot load (floats need F32/F16/BF16; integer
 * counters may be I64). `what` names the checkpoint (e.g. "pretrained").
 */
export function checkAgainstModel(shards: readonly CheckpointHeader[], model: AnyModule, what: string): void {
  const problems: string[] = [];
  const seen = new Map<string, { h: TensorHeader; file: string }>();
  for (const s of shards)
    for (const [name, h] of s.tensors) {
      const prev = seen.get(name);
      if (prev) problems.push(`'${name}' is in two shards (${prev.file} and ${s.file})`);
      else seen.set(name, { h, file: s.file });
    }
  const own = model.stateDict();
  const missing = [...own.keys()].filter((n) => !seen.has(n));
  const unexpected = [...seen.keys()].filter((n) => !own.has(n));
  if (missing.length) problems.push(`missing ${missing.length}: ${missing.join(', ')}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.length}: ${unexpected.join(', ')}`);
  for (const [name, t] of own) {
    const s = seen.get(name);
    if (!s) continue;
    const { h, file } = s;
    const shapeOk = h.shape.length === t.shape.length ? h.shape.every((d, i) => d === t.shape[i]) : numel(h.shape) === 1 && t.size === 1;
    if (!shapeOk) problems.push(`'${name}' has shape ${shapeStr(h.shape)} in ${file}, the model needs ${shapeStr(t.shape)}`);
    const counter = name.endsWith('num_batches_tracked');
    if (!(FLOATS.has(h.dtype) || (counter && INTS.has(h.dtype)))) problems.push(`'${name}' is ${h.dtype} in ${file}; expected F32, F16 or BF16${counter ? ' (or an integer counter)' : ''}`);
  }
  if (problems.length) throw new EngineError('checkpoint', `${what} (${shards.map((s) => s.file).join(', ')}) does not fit the model: ${problems.join('; ')}`);
}
