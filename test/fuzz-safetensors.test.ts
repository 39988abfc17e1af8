// Fuzzing the safetensors reader (issue 11): generic byte mutations of a valid file and structural
// mutations of its JSON header (huge, negative, fractional, overlapping or out-of-range data_offsets,
// absurd shapes, wrong dtypes, header-length bombs); each must parse or give an EngineError naming the
// file, with bounded memory and time. Seeded: a failure prints FUZZ_SEED to replay it.
import { describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors, type SafetensorsTensor } from '../src/io/safetensors.js';
import { Fuzz, fuzz, mutate, type Mutation } from './fuzz.js';

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1 };

function validFile(): Uint8Array {
  const rec: Record<string, SafetensorsTensor> = {
    'conv.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    'fc.weight': { dtype: 'F16', shape: [4], data: Uint16Array.from([0x3c00, 0x4000, 0x7bff, 0x8001]) },
    'fc.bias': { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc049]) },
    ids: { dtype: 'I64', shape: [1, 2], data: BigInt64Array.from([5n, -7n]) },
    mask: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    scale: { dtype: 'F64', shape: [], data: Float64Array.from([0.5]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  return serializeSafetensors(rec, { format: 'pt' });
}

/** A structural mutation: the header JSON edited, then re-framed (usually with a matching length). */
function mutateHeader(f: Fuzz, file: Uint8Array): Mutation {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, Record<string, unknown>>;
  const data = file.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const t = f.pick(names);
  const e = header[t]!;
  const huge = [2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, 1e300, Number.MAX_SAFE_INTEGER];
  let what: string;
  switch (f.int(9)) {
    case 0: {
      const a = f.pick([...huge, -1, 1.5, 0, data.length, data.length + 1]);
      e.data_offsets = f.chance(0.5) ? [a, a + 8] : [0, a];
      what = `data_offsets of '${t}' = ${JSON.stringify(e.data_offsets)}`;
      break;
    }
    case 1: {
      const o = header[f.pick(names)]!.data_offsets;
      e.data_offsets = o;
      what = `data_offsets of '${t}' copied from another tensor (${JSON.stringify(o)})`;
      break;
    }
    case 2: {
      const [b, en] = e.data_offsets as number[];
      const d = f.pick([-3, -1, 1, 2, 7]);
      e.data_offsets = [b! + d, en! + d];
      what = `data_offsets of '${t}' shifted by ${d}`;
      break;
    }
    case 3:
      e.shape = f.pick([[2 ** 31, 2 ** 31], [1e20], [-1], 'abc', [[2]], [2.5], [2 ** 53], [65536, 65536, 65536], null]);
      what = `shape of '${t}' = ${JSON.stringify(e.shape)}`;
      break;
    case 4:
      e.dtype = f.pick(['F33', 'toString', '__proto__', 'constructor', 'hasOwnProperty', 7, null, 'f32', 'F8_E4M3', ...Object.keys(BYTES)]);
      what = `dtype of '${t}' = ${JSON.stringify(e.dtype)}`;
      break;
    case 5:
      (header as Record<string, unknown>)[t] = f.pick([null, [], 3, 'x', { dtype: 'F32' }]);
      what = `entry '${t}' replaced by ${JSON.stringify(header[t])}`;
      break;
    case 6:
      (header as Record<string, unknown>).__metadata__ = f.pick([null, [], { a: 1 }, 'x', { b: { c: 'd' } }]);
      what = `__metadata__ = ${JSON.stringify(header.__metadata__)}`;
      break;
    case 7: {
      const k = 100 + f.int(300);
      for (let i = 0; i < k; i++) header[`t${i}`] = { dtype: 'U8', shape: [0], data_offsets: [0, 0] };
      what = `${k} extra empty tensors`;
      break;
    }
    default:
      // an own property named __proto__ (what JSON.parse makes of such a key)
      Object.defineProperty(header, '__proto__', { value: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, enumerable: true });
      what = `a tensor named __proto__`;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  const len = f.chance(0.85) ? BigInt(json.length) : f.pick([0n, 1n, BigInt(json.length) + 1n, BigInt(json.length) - 1n, 1n << 40n, (1n << 64n) - 1n, 100_000_001n]);
  new DataView(out.buffer).setBigUint64(0, len, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return { bytes: out, what: `${what}; header length ${len}` };
}

describe('fuzz: safetensors', () => {
  it('mutated files parse or fail with an EngineError naming the file (seeded)', async () => {
    const file = validFile();
    expect(parseSafetensors(file).tensors.size).toBe(7);
    const r = await fuzz({
      reader: 'parseSafetensors',
      cases: 600,
      make: (f, i) => (i % 2 ? mutateHeader(f, file) : mutate(f, file)),
      run: (bytes, name) => parseSafetensors(bytes, { name, checkFinite: true }),
      check: (res, bytes) => {
        let total = 0;
        for (const [k, t] of res.tensors) {
          const want = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]!;
          if (t.data.byteLength !== want) throw new Error(`'${k}' holds ${t.data.byteLength} bytes for ${t.dtype}[${t.shape}]`);
          total += want;
        }
        if (total > bytes.length) throw new Error(`tensors hold ${total} bytes, the file has ${bytes.length}`);
      },
    });
    // the mutations reach both outcomes (a fuzzer whose every case is rejected tests little)
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(200);
    expect(r.ok, `seed ${r.seed}`).toBeGreaterThan(5);
  });
});
