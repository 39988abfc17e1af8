import { EngineError } from '../util/errors.js';
// The safetensors file format in memory (browser-safe, no Node imports): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__}, then raw
// little-endian data. Parse with strict validation, serialize like the Python library.
// It does not touch the GPU (src/io/state.ts does) nor the file system (src/io/safetensors-node.ts).


export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Element storage per dtype: F16 and BF16 are kept as raw bits (Uint16Array); see toFloat32. */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint8Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  /** The header's `__metadata__` (string to string), empty when absent. */
  metadata: Record<string, string>;
}

interface DTypeInfo {
  bytes: number;
  array: { new (buffer: ArrayBuffer): SafetensorsData; name: string };
}
const DTYPES: Record<SafetensorsDType, DTypeInfo> = {
  F64: { bytes: 8, array: Float64Array },
  F32: { bytes: 4, array: Float32Array },
  F16: { bytes: 2, array: Uint16Array },
  BF16: { bytes: 2, array: Uint16Array },
  I64: { bytes: 8, array: BigInt64Array },
  I32: { bytes: 4, array: Int32Array },
  I16: { bytes: 2, array: Int16Array },
  I8: { bytes: 1, array: Int8Array },
  U64: { bytes: 8, array: BigUint64Array },
  U32: { bytes: 4, array: Uint32Array },
  U16: { bytes: 2, array: Uint16Array },
  U8: { bytes: 1, array: Uint8Array },
  BOOL: { bytes: 1, array: Uint8Array },
};

/** The safetensors library's Dtype enum order (its serializer sorts by it, descending). */
const DTYPE_ORDER: SafetensorsDType[] = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];

/** Largest header we accept (the Python/Rust library's limit is 100 MB). */
const MAX_HEADER = 100_000_000;
const OP = 'safetensors';

const fail = (msg: string): never => {
  throw new EngineError(OP, msg);
};

const numelOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export interface ParseOptions {
  /** Names the file in errors (e.g. its path). */
  name?: string;
  /** Reject NaN / ±Inf in float tensors, naming the tensor and the first bad index (for user checkpoints). */
  checkFinite?: boolean;
}

/**
 * Parse a whole safetensors file. Data is copied out (aligned, independent of `bytes`). Validated like
 * the reference library, before anything is copied: the header length against the file's real size
 * and a 100 MB limit, dtypes and shapes, each tensor's byte count, and that the tensors' data_offsets
 * tile the data section exactly (no overlap, no gap, no trailing bytes). A truncated file names the
 * first tensor whose bytes are missing, with expected vs actual sizes. Errors start with `name`.
 */
export function parseSafetensors(bytes: Uint8Array, opts: ParseOptions = {}): SafetensorsFile {
  const file = opts.name ? `${opts.name}: ` : '';
  const bad = (msg: string): never => fail(file + msg);
  if (bytes.length < 8) bad(`truncated file: ${bytes.length} bytes, fewer than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER))
    bad(`header length ${n64} is over the ${MAX_HEADER}-byte limit (the file has ${bytes.length} bytes): corrupt or not a safetensors file`);
  if (n64 > BigInt(bytes.length - 8))
    bad(`header length ${n64} runs beyond the file (${bytes.length} bytes, ${bytes.length - 8} after the length field): truncated or not a safetensors file`);
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    bad(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('__metadata__ is not an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') bad(`__metadata__ value of '${k}' is not a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || Array.isArray(e)) bad(`tensor '${name}': entry is not an object`);
    const dtype = e.dtype as SafetensorsDType;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) bad(`tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad(`tensor '${name}': invalid shape ${JSON.stringify(shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      bad(`tensor '${name}': invalid data_offsets ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    const want = numelOf(shape as number[]) * DTYPES[dtype].bytes;
    if (end - begin !== want)
      bad(`tensor '${name}': ${dtype}[${(shape as number[]).join(',')}] needs ${want} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }
  // the tensors must tile [0, dataLen) exactly, in offset order
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: (typeof entries)[number] | undefined;
  for (const cur of sorted) {
    if (cur.begin < at) bad(`tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${cur.name}' [${cur.begin}, ${cur.end}] overlap`);
    if (cur.begin > at)
      bad(`tensor '${cur.name}' starts at data byte ${cur.begin} but the previous tensor${prev ? ` '${prev.name}'` : ''} ends at ${at}: a gap in the data section`);
    if (cur.end > dataLen)
      bad(
        `truncated: tensor '${cur.name}' (data_offsets [${cur.begin}, ${cur.end}]) needs file bytes up to ${dataStart + cur.end} but the file has ${bytes.length}` +
          ` (${dataStart + cur.end - bytes.length} bytes missing; data_offsets [${cur.begin}, ${cur.end}] out of range of the ${dataLen}-byte data section)`,
      );
    at = cur.end;
    prev = cur;
  }
  if (at !== dataLen) bad(`${dataLen - at} unexpected bytes after the last tensor's data (the data section has ${dataLen} bytes, the tensors cover ${at})`);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    // an explicit copy: Node's Buffer.slice would share (and misalign into) the file's memory
    const raw = new Uint8Array(e.end - e.begin);
    raw.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: new DTYPES[e.dtype].array(raw.buffer) });
  }
  const out = { tensors, metadata };
  if (opts.checkFinite) assertFinite(out.tensors, opts.name);
  return out;
}

/** The flat index of the first NaN / ±Inf element of a float tensor, or -1 (integers: always -1). */
export function firstNonFinite(t: SafetensorsTensor): number {
  const d = t.data;
  if (t.dtype === 'F32' || t.dtype === 'F64') {
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i] as number)) return i;
  } else if (t.dtype === 'F16') {
    for (let i = 0; i < d.length; i++) if (((d[i] as number) & 0x7c00) === 0x7c00) return i; // exponent all ones
  } else if (t.dtype === 'BF16') {
    for (let i = 0; i < d.length; i++) if (((d[i] as number) & 0x7f80) === 0x7f80) return i;
  }
  return -1;
}

/** Throws naming the first tensor (in name order) holding NaN / ±Inf, its first bad index and value. */
export function assertFinite(tensors: Map<string, SafetensorsTensor>, file?: string): void {
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    const i = firstNonFinite(t);
    if (i < 0) continue;
    const idx: number[] = [];
    let rest = i;
    for (let k = t.shape.length - 1; k >= 0; k--) {
      idx.unshift(rest % t.shape[k]!);
      rest = Math.floor(rest / t.shape[k]!);
    }
    const v = t.dtype === 'F16' ? f16ToNumber(t.data[i] as number) : t.dtype === 'BF16' ? bf16ToNumber(t.data[i] as number) : (t.data[i] as number);
    fail(`${file ? `${file}: ` : ''}tensor '${name}' (${t.dtype}[${t.shape.join(',')}]) holds ${v} at [${idx.join(', ')}] (flat index ${i}): the checkpoint has non-finite weights`);
  }
}

/**
 * One record from several shards (e.g. model-00001-of-00002.safetensors, ...): a tensor name in two
 * shards is an error naming both. Metadata: the union, the first shard's value winning.
 */
export function mergeSafetensors(shards: readonly { name: string; file: SafetensorsFile }[]): SafetensorsFile {
  const tensors = new Map<string, SafetensorsTensor>();
  const from = new Map<string, string>();
  const metadata: Record<string, string> = {};
  for (const { name, file } of shards) {
    for (const [k, t] of file.tensors) {
      if (from.has(k)) fail(`tensor '${k}' is in two shards: ${from.get(k)} and ${name}`);
      from.set(k, name);
      tensors.set(k, t);
    }
    for (const [k, v] of Object.entries(file.metadata)) if (!Object.hasOwn(metadata, k)) metadata[k] = v;
  }
  return { tensors, metadata };
}

/** A Hugging Face `model.safetensors.index.json`: which shard file holds each tensor. */
export interface SafetensorsIndex {
  metadata: Record<string, unknown>;
  /** tensor name -> shard file name (relative to the index file's folder). */
  weightMap: Map<string, string>;
  /** The distinct shard files in order of first mention. */
  shards: string[];
}

/** Parses and validates an index file's text (`name` names it in errors). */
export function parseSafetensorsIndex(text: string, name = 'model.safetensors.index.json'): SafetensorsIndex {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    fail(`${name}: not valid JSON: ${(e as Error).message}`);
  }
  const o = j as { metadata?: unknown; weight_map?: unknown };
  if (typeof o !== 'object' || o === null || typeof o.weight_map !== 'object' || o.weight_map === null || Array.isArray(o.weight_map))
    fail(`${name}: no "weight_map" object`);
  const weightMap = new Map<string, string>();
  for (const [k, v] of Object.entries(o.weight_map as Record<string, unknown>)) {
    if (typeof v !== 'string' || v === '' || v.startsWith('/') || v.split(/[\\/]/).includes('..'))
      fail(`${name}: weight_map['${k}'] = ${JSON.stringify(v)} is not a shard file name inside the index's folder`);
    weightMap.set(k, v as string);
  }
  if (weightMap.size === 0) fail(`${name}: weight_map is empty`);
  const meta = o.metadata;
  return {
    metadata: typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : {},
    weightMap,
    shards: [...new Set(weightMap.values())],
  };
}

/** Checks shards against an index: every mapped tensor is in its shard, and no shard holds an unmapped one. */
export function checkAgainstIndex(index: SafetensorsIndex, shards: readonly { name: string; shard: string; file: SafetensorsFile }[], indexName = 'index'): void {
  for (const { name, shard, file } of shards) {
    for (const k of file.tensors.keys()) {
      const want = index.weightMap.get(k);
      if (want === undefined) fail(`${name} holds tensor '${k}', which ${indexName} does not list`);
      if (want !== shard) fail(`${name} holds tensor '${k}', which ${indexName} places in ${want}`);
    }
  }
  const present = new Set(shards.flatMap((s) => [...s.file.tensors.keys()]));
  for (const [k, shard] of index.weightMap) if (!present.has(k)) fail(`${indexName} places tensor '${k}' in ${shard}, which does not hold it`);
}

/**
 * Serialize tensors (the data's array type must match the dtype: F16/BF16 as Uint16Array bits,
 * I64 as BigInt64Array). Laid out like the Python library's save_file: tensors ordered by dtype
 * (larger first, the library's enum order) then by name, header entries and contiguous data in that
 * order, the JSON padded with spaces to a multiple of 8 bytes. Without metadata the bytes are
 * identical to the library's.
 */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // the Python/Rust library's order: larger dtypes first (its Dtype enum order, descending), then name
  const rank = (n: string) => DTYPE_ORDER.indexOf(map.get(n)!.dtype);
  const names = [...map.keys()].sort((a, b) => rank(b) - rank(a) || byName(a, b));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`metadata value of '${k}' is not a string`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') fail(`'__metadata__' cannot be a tensor name`);
    const t = map.get(name)!;
    const info = DTYPES[t.dtype];
    if (!info) fail(`tensor '${name}': unsupported dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor '${name}': invalid shape ${JSON.stringify(t.shape)}`);
    if (!(t.data instanceof info.array)) fail(`tensor '${name}': ${t.dtype} data must be a ${info.array.name}, got ${t.data?.constructor?.name}`);
    const n = numelOf(t.shape);
    if (t.data.length !== n) fail(`tensor '${name}': shape [${t.shape.join(',')}] has ${n} elements but the data has ${t.data.length}`);
    const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + b.length] };
    parts.push(b);
    offset += b.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Conversions

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half bits to a number (exact). */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits to a number (exact: the top half of an f32). */
export function bf16ToNumber(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0]!;
}

/** A number to IEEE half bits, rounding to nearest even (overflow to infinity). */
export function numberToF16(x: number): number {
  f32buf[0] = x;
  const f = u32buf[0]!;
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** Float32 values to F16 bits for serializeSafetensors. */
export function float32ToF16(a: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = numberToF16(a[i]!);
  return out;
}

/** Any numeric tensor's values as Float32Array (F16/BF16 decoded, integers and BOOL converted). */
export function toFloat32(t: SafetensorsTensor): Float32Array {
  const d = t.data;
  if (t.dtype === 'F32') return Float32Array.from(d as Float32Array);
  const out = new Float32Array(d.length);
  if (t.dtype === 'F16') for (let i = 0; i < d.length; i++) out[i] = f16ToNumber(d[i] as number);
  else if (t.dtype === 'BF16') for (let i = 0; i < d.length; i++) out[i] = bf16ToNumber(d[i] as number);
  else for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

/** Integer tensor values as Int32Array; throws naming the first value outside the int32 range. */
export function toInt32(t: SafetensorsTensor, name = 'tensor'): Int32Array {
  if (t.dtype.startsWith('F') || t.dtype === 'BF16') fail(`'${name}' is ${t.dtype}, not an integer tensor`);
  const out = new Int32Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) {
    const v = Number(t.data[i]);
    if (v < -2147483648 || v > 2147483647) fail(`'${name}'[${i}] = ${t.data[i]} does not fit in int32`);
    out[i] = v;
  }
  return out;
}
