// safetensors: round trips over every dtype, the file PyTorch + the safetensors library wrote
// (values, metadata, byte-identical re-serialization), clear errors for corrupt files, the atomic
// Node writer, and the GPU glue (read back, load by name with every problem listed).
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu, Rng, f32 } from './helpers.js';
import { parseSafetensors, serializeSafetensors, toFloat32, f16ToNumber, bf16ToNumber, numberToF16, float32ToF16, type SafetensorsTensor } from '../src/io/safetensors.js';
import { saveSafetensorsFile, loadSafetensorsFile, loadSafetensorsShards } from '../src/io/safetensors-node.js';
import { tensorsToRecord, loadIntoTensors } from '../src/io/state.js';
import { optimizerStateToRecord, loadOptimizerState } from '../src/nn/optim.js';
import { Adam } from '../src/nn/optim.js';
import { requireGrad } from '../src/autograd/graph.js';
import { viaF32 } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';

const gpu = useGpu();
const FIX = join(import.meta.dirname, 'fixtures');
const fixture = () => new Uint8Array(readFileSync(join(FIX, 'torch_small.safetensors')));
const expected = JSON.parse(readFileSync(join(FIX, 'torch_small.json'), 'utf8')) as {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[]; bits?: number[] }>;
};

function randomRecord(rng: Rng): Map<string, SafetensorsTensor> {
  const u = (n: number) => rng.uniform(n, -100, 100);
  const m = new Map<string, SafetensorsTensor>();
  m.set('b.f32', { dtype: 'F32', shape: [2, 3], data: f32(u(6)) });
  m.set('a.f16', { dtype: 'F16', shape: [5], data: float32ToF16(u(5)) });
  m.set('bf', { dtype: 'BF16', shape: [3], data: Uint16Array.from(u(3), (x) => (Math.abs(x) * 300) & 0xffff) });
  m.set('ids', { dtype: 'I64', shape: [1, 3], data: BigInt64Array.from([-5n, 1n << 50n, 7n]) });
  m.set('i32', { dtype: 'I32', shape: [3], data: Int32Array.from(rng.int(3, 1000)) });
  m.set('bytes', { dtype: 'U8', shape: [7], data: Uint8Array.from(rng.int(7, 256)) });
  m.set('f64', { dtype: 'F64', shape: [2], data: Float64Array.from(u(2)) });
  m.set('scalar', { dtype: 'F32', shape: [], data: f32([4.5]) });
  m.set('empty', { dtype: 'F32', shape: [3, 0], data: new Float32Array(0) });
  return m;
}

describe('safetensors format', () => {
  it('round trip over every dtype, with metadata, 8-byte aligned header padded with spaces', () => {
    const rng = new Rng();
    const rec = randomRecord(rng);
    const meta = { epoch: '3', note: 'ünïcode' };
    const bytes = serializeSafetensors(rec, meta);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText).toMatch(/^\{.*\} {0,7}$/s);
    expect(JSON.parse(headerText).__metadata__).toEqual(meta);
    // parse from a view at an odd offset into a larger buffer (as Node's pooled Buffers are)
    const host = new Uint8Array(bytes.length + 3);
    host.set(bytes, 3);
    const back = parseSafetensors(host.subarray(3));
    expect(back.metadata).toEqual(meta);
    expect([...back.tensors.keys()].sort()).toEqual([...rec.keys()].sort());
    for (const [name, t] of rec) {
      const b = back.tensors.get(name)!;
      expect(b.dtype, name).toBe(t.dtype);
      expect(b.shape, name).toEqual(t.shape);
      expect(b.data.constructor, name).toBe(t.data.constructor);
      expect(Array.from(b.data as ArrayLike<number>), name).toEqual(Array.from(t.data as ArrayLike<number>));
    }
    // offsets are contiguous from 0 to the end of the file
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    const spans = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let at = 0;
    for (const [s, e] of spans) {
      expect(s).toBe(at);
      at = e;
    }
    expect(8 + n + at).toBe(bytes.length);
  });

  it('reads the file PyTorch + safetensors wrote: values, dtypes, shapes, metadata', () => {
    const file = parseSafetensors(fixture());
    expect(file.metadata).toEqual(expected.metadata);
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(expected.tensors).sort());
    for (const [name, want] of Object.entries(expected.tensors)) {
      const t = file.tensors.get(name)!;
      expect(t.dtype, name).toBe(want.dtype);
      expect(t.shape, name).toEqual(want.shape);
      if (want.dtype === 'I64') expect(Array.from(t.data as BigInt64Array), name).toEqual(want.values.map((v) => BigInt(v)));
      else if (want.dtype === 'I32') expect(Array.from(t.data as Int32Array), name).toEqual(want.values);
      else {
        if (want.bits) expect(Array.from(t.data as Uint16Array), `${name} bits`).toEqual(want.bits);
        // F16/BF16 decode exactly; F32 values are the float64 JSON of the f32 values
        expect(Array.from(toFloat32(t)), name).toEqual(want.values.map((v) => Math.fround(v as number)));
      }
    }
    expect(Object.is(toFloat32(file.tensors.get('half')!)[5], -0)).toBe(true);
  });

  it("re-serialization is byte-identical to the library's output; metadata survives", () => {
    const noMeta = new Uint8Array(readFileSync(join(FIX, 'torch_small_nometa.safetensors')));
    const again = serializeSafetensors(parseSafetensors(noMeta).tensors);
    expect(Buffer.from(again).equals(Buffer.from(noMeta))).toBe(true);
    const file = parseSafetensors(fixture());
    const back = parseSafetensors(serializeSafetensors(file.tensors, file.metadata));
    expect(back.metadata).toEqual(file.metadata);
  });

  it('f16 / bf16 conversions: every half round-trips, ties round to even', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16ToNumber(h);
      if (Number.isNaN(x)) continue;
      if (numberToF16(x) !== h) expect.fail(`half 0x${h.toString(16)} = ${x} came back as 0x${numberToF16(x).toString(16)}`);
    }
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00); // tie: to even (1.0)
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: to even (1 + 2^-9)
    expect(numberToF16(1e6)).toBe(0x7c00);
    expect(numberToF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even
    expect(numberToF16(1.5 * 2 ** -25)).toBe(1);
    expect(Number.isNaN(f16ToNumber(numberToF16(NaN)))).toBe(true);
    expect(bf16ToNumber(0x3f80)).toBe(1);
    expect(bf16ToNumber(0xc049)).toBe(-3.140625);
  });

  it('clear errors for corrupt and truncated files, naming the tensor', () => {
    const good = fixture();
    const header = (obj: unknown, data = 0) => {
      const js = new TextEncoder().encode(JSON.stringify(obj));
      const b = new Uint8Array(8 + js.length + data);
      new DataView(b.buffer).setBigUint64(0, BigInt(js.length), true);
      b.set(js, 8);
      return b;
    };
    expect(() => parseSafetensors(good.subarray(0, 5))).toThrow(/truncated file: 5 bytes/);
    expect(() => parseSafetensors(good.subarray(0, 100))).toThrow(/header length \d+ runs beyond the file \(100 bytes/);
    const n = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
    const last = Object.entries(JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + n))) as Record<string, { data_offsets?: number[] }>)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => b[1].data_offsets![1]! - a[1].data_offsets![1]!)[0]!;
    expect(() => parseSafetensors(good.subarray(0, good.length - 3), { name: 'cut.safetensors' })).toThrow(
      `safetensors: cut.safetensors: truncated: tensor '${last[0]}' (data_offsets [${last[1].data_offsets!.join(', ')}]) needs file bytes up to ${good.length} but the file has ${good.length - 3} (3 bytes missing;`,
    );
    expect(() => parseSafetensors(header({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4))).toThrow(/truncated: tensor 'w'.*out of range/);
    expect(() => parseSafetensors(header({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8))).toThrow(
      /tensor 'w': F32\[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/,
    );
    expect(() =>
      parseSafetensors(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12)),
    ).toThrow(/tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/);
    // the data section must be tiled exactly, as the reference library requires
    expect(() =>
      parseSafetensors(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, 16)),
    ).toThrow(`tensor 'b' starts at data byte 12 but the previous tensor 'a' ends at 8: a gap in the data section`);
    expect(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 11))).toThrow(
      `3 unexpected bytes after the last tensor's data (the data section has 11 bytes, the tensors cover 8)`,
    );
    // a header bomb: a length over the limit, whatever the file size
    const bomb = header({}, 0);
    new DataView(bomb.buffer).setBigUint64(0, 1n << 62n, true);
    expect(() => parseSafetensors(bomb, { name: 'bomb.st' })).toThrow(`bomb.st: header length ${1n << 62n} is over the 100000000-byte limit`);
    expect(() => parseSafetensors(header({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 1] } }, 1))).toThrow(/unsupported dtype "toString"/);
    expect(() => parseSafetensors(header({ q: { dtype: 'Q4', shape: [2], data_offsets: [0, 1] } }, 1))).toThrow(/tensor 'q': unsupported dtype "Q4"/);
    expect(() => parseSafetensors(header({ q: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }))).toThrow(/tensor 'q': invalid shape/);
    const notJson = header({});
    notJson[8] = 0x7b + 1;
    expect(() => parseSafetensors(notJson)).toThrow(/header is not valid UTF-8 JSON/);
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: f32([1, 2, 3]) } })).toThrow(
      /tensor 'w': shape \[2,2\] has 4 elements but the data has 3/,
    );
    expect(() => serializeSafetensors({ h: { dtype: 'F16', shape: [1], data: f32([1]) } })).toThrow(/tensor 'h': F16 data must be a Uint16Array/);
  });
});

describe('safetensors files (Node)', () => {
  it('atomic save: the new file replaces the old whole; a failed save leaves the old file and no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-'));
    const path = join(dir, 'model.safetensors');
    const rng = new Rng();
    const rec1 = randomRecord(rng);
    await saveSafetensorsFile(path, rec1, { v: '1' });
    const old = await readFile(path);
    // serialization error: nothing written
    await expect(saveSafetensorsFile(path, { w: { dtype: 'F32', shape: [2], data: f32([1]) } })).rejects.toThrow(/saving .*model\.safetensors: .*tensor 'w'/);
    // failure after the temp file is written (rename onto a directory): temp removed
    const blocked = join(dir, 'blocked.safetensors');
    await mkdir(join(blocked, 'x'), { recursive: true });
    await expect(saveSafetensorsFile(blocked, rec1)).rejects.toThrow(/saving .*blocked\.safetensors/);
    expect((await readFile(path)).equals(old)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['blocked.safetensors', 'model.safetensors']);
    // overwrite with new content
    const rec2 = randomRecord(rng);
    await saveSafetensorsFile(path, rec2, { v: '2' });
    const loaded = await loadSafetensorsFile(path);
    expect(loaded.metadata).toEqual({ v: '2' });
    expect(Array.from(loaded.tensors.get('b.f32')!.data as Float32Array)).toEqual(Array.from(rec2.get('b.f32')!.data as Float32Array));
    expect((await readdir(dir)).sort()).toEqual(['blocked.safetensors', 'model.safetensors']);
    // errors name the file
    await writeFile(join(dir, 'bad.safetensors'), new Uint8Array([1, 2, 3]));
    await expect(loadSafetensorsFile(join(dir, 'bad.safetensors'))).rejects.toThrow(/safetensors: .*bad\.safetensors: truncated file/);
    await expect(loadSafetensorsFile(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot read/);
  });
});

describe('safetensors shards, index files and the finite-weights check (Node)', () => {
  /** A model's weights in every float dtype, random values (seeded). */
  function model(rng: Rng): Map<string, SafetensorsTensor> {
    const u = (n: number) => rng.uniform(n, -3, 3);
    return new Map<string, SafetensorsTensor>([
      ['conv.weight', { dtype: 'F32', shape: [2, 1, 3, 3], data: f32(u(18)) }],
      ['conv.bias', { dtype: 'F64', shape: [2], data: Float64Array.from(u(2)) }],
      ['fc.weight', { dtype: 'F16', shape: [3, 2], data: float32ToF16(u(6)) }],
      ['fc.bias', { dtype: 'BF16', shape: [3], data: Uint16Array.from(u(3), (x) => new Uint32Array(f32([x]).buffer)[0]! >>> 16) }],
    ]);
  }
  const sameRecord = (a: Map<string, SafetensorsTensor>, b: Map<string, SafetensorsTensor>) => {
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [k, t] of a) {
      expect(b.get(k)!.dtype, k).toBe(t.dtype);
      expect(b.get(k)!.shape, k).toEqual(t.shape);
      expect(Array.from(b.get(k)!.data as ArrayLike<number>), k).toEqual(Array.from(t.data as ArrayLike<number>));
    }
  };

  it('one record from a list, a comma-separated list or an index.json; errors name the shard', async () => {
    const rng = new Rng();
    const dir = await mkdtemp(join(tmpdir(), 'st-shards-'));
    const all = model(rng);
    const [a, b] = [join(dir, 'model-00001-of-00002.safetensors'), join(dir, 'model-00002-of-00002.safetensors')];
    const part = (names: string[]) => new Map(names.map((n) => [n, all.get(n)!]));
    await saveSafetensorsFile(a, part(['conv.weight', 'conv.bias']), { format: 'pt' });
    await saveSafetensorsFile(b, part(['fc.weight', 'fc.bias']), { format: 'pt', extra: 'x' });
    const index = {
      metadata: { total_size: 123 },
      weight_map: { 'conv.weight': 'model-00001-of-00002.safetensors', 'conv.bias': 'model-00001-of-00002.safetensors', 'fc.weight': 'model-00002-of-00002.safetensors', 'fc.bias': 'model-00002-of-00002.safetensors' },
    };
    const indexFile = join(dir, 'model.safetensors.index.json');
    await writeFile(indexFile, JSON.stringify(index));
    for (const src of [[a, b], `${a}, ${b}`, indexFile]) {
      const got = await loadSafetensorsShards(src, { checkFinite: true });
      sameRecord(all, got.tensors);
      expect(got.metadata).toEqual({ format: 'pt', extra: 'x' });
    }
    sameRecord(part(['conv.weight', 'conv.bias']), (await loadSafetensorsShards(a)).tensors);

    // a missing shard is named before any shard is read (the first one here is corrupt too)
    const corrupt = join(dir, 'corrupt.safetensors');
    await writeFile(corrupt, new Uint8Array([1, 2, 3]));
    await expect(loadSafetensorsShards([corrupt, join(dir, 'gone.safetensors')])).rejects.toThrow(`shard file ${join(dir, 'gone.safetensors')} does not exist`);
    await expect(loadSafetensorsShards([a, corrupt])).rejects.toThrow(`${corrupt}: truncated file: 3 bytes`);
    await expect(loadSafetensorsShards([a, a])).rejects.toThrow(`shard ${a} is given twice`);
    await expect(loadSafetensorsShards(' , ')).rejects.toThrow('no safetensors file given');
    // the same tensor name in two shards
    const c = join(dir, 'c.safetensors');
    await saveSafetensorsFile(c, part(['fc.bias']));
    await expect(loadSafetensorsShards([a, b, c])).rejects.toThrow(`tensor 'fc.bias' is in two shards: ${b} and ${c}`);
    // index problems: a mapped shard missing, a tensor in the wrong shard, an unlisted tensor, a listed absent one, a path escape
    const withIndex = async (map: Record<string, string>) => {
      await writeFile(indexFile, JSON.stringify({ weight_map: map }));
      return loadSafetensorsShards(indexFile);
    };
    const base = index.weight_map;
    await expect(withIndex({ ...base, 'fc.bias': 'model-00003-of-00003.safetensors' })).rejects.toThrow(
      `shard file ${join(dir, 'model-00003-of-00003.safetensors')} (named by ${indexFile}) does not exist`,
    );
    await expect(withIndex({ ...base, 'fc.bias': 'model-00001-of-00002.safetensors' })).rejects.toThrow(
      `${b} holds tensor 'fc.bias', which ${indexFile} places in model-00001-of-00002.safetensors`,
    );
    const { 'fc.bias': _, ...fewer } = base;
    await expect(withIndex(fewer)).rejects.toThrow(`${b} holds tensor 'fc.bias', which ${indexFile} does not list`);
    await expect(withIndex({ ...base, 'head.weight': 'model-00002-of-00002.safetensors' })).rejects.toThrow(
      `${indexFile} places tensor 'head.weight' in model-00002-of-00002.safetensors, which does not hold it`,
    );
    await expect(withIndex({ ...base, x: '../elsewhere.safetensors' })).rejects.toThrow(`weight_map['x'] = "../elsewhere.safetensors" is not a shard file name`);
    await writeFile(indexFile, '{"weight_map": [');
    await expect(loadSafetensorsShards(indexFile)).rejects.toThrow(`${indexFile}: not valid JSON`);
    await expect(loadSafetensorsShards([indexFile, a])).rejects.toThrow('an .index.json must be given alone');
  });

  it('checkFinite names the tensor, the first bad index and the value, for every float dtype; off by default', () => {
    const rng = new Rng();
    const cases: [string, number, (t: SafetensorsTensor) => void, string][] = [
      ['conv.weight', 13, (t) => ((t.data as Float32Array)[13] = NaN), `tensor 'conv.weight' (F32[2,1,3,3]) holds NaN at [1, 0, 1, 1] (flat index 13)`],
      ['conv.bias', 1, (t) => ((t.data as Float64Array)[1] = -Infinity), `tensor 'conv.bias' (F64[2]) holds -Infinity at [1] (flat index 1)`],
      ['fc.weight', 3, (t) => ((t.data as Uint16Array)[3] = 0x7c00), `tensor 'fc.weight' (F16[3,2]) holds Infinity at [1, 1] (flat index 3)`],
      ['fc.bias', 2, (t) => ((t.data as Uint16Array)[2] = 0x7fc1), `tensor 'fc.bias' (BF16[3]) holds NaN at [2] (flat index 2)`],
    ];
    for (const [name, , poison, msg] of cases) {
      const m = model(rng);
      poison(m.get(name)!);
      const bytes = serializeSafetensors(m);
      expect(() => parseSafetensors(bytes, { name: 'user.safetensors', checkFinite: true }), name).toThrow(`safetensors: user.safetensors: ${msg}`);
      expect(parseSafetensors(bytes).tensors.size).toBe(4);
    }
    // the largest finite values are fine
    const edge = new Map<string, SafetensorsTensor>([
      ['h', { dtype: 'F16', shape: [2], data: Uint16Array.from([0x7bff, 0xfbff]) }],
      ['b', { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x7f7f]) }],
      ['f', { dtype: 'F32', shape: [1], data: f32([3.4e38]) }],
    ]);
    expect(parseSafetensors(serializeSafetensors(edge), { checkFinite: true }).tensors.size).toBe(3);
  });
});

describe('GPU glue', () => {
  it('tensorsToRecord reads back; loadIntoTensors loads by name and lists every problem', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const w = f32(rng.uniform(6));
    const named = {
      'fc.weight': ctx.keep(tensor(ctx, w, [2, 3])),
      'fc.bias': ctx.keep(tensor(ctx, f32([1, 2]), [2])),
      labels: ctx.keep(tensor(ctx, Int32Array.from([3, 4, 5]))),
    };
    const rec = await tensorsToRecord(named);
    expect(rec.get('fc.weight')).toEqual({ dtype: 'F32', shape: [2, 3], data: w });
    expect(rec.get('labels')!.dtype).toBe('I32');

    // load the PyTorch fixture's values into f32 / i32 tensors (F16, BF16 and I64 converted)
    const file = parseSafetensors(fixture());
    const targets = {
      weight_f32: ctx.keep(tensor(ctx, new Float32Array(6), [2, 3])),
      half: ctx.keep(tensor(ctx, new Float32Array(6), [6])),
      brain: ctx.keep(tensor(ctx, new Float32Array(4), [2, 2])),
      counts: ctx.keep(tensor(ctx, new Int32Array(3))),
    };
    const report = loadIntoTensors(targets, file, { strict: false });
    expect(report.missing).toEqual([]);
    expect(report.unexpected.sort()).toEqual(['empty', 'empty_2d', 'ids', 'scalar']);
    expect(Array.from(await targets.half.read())).toEqual(Array.from(toFloat32(file.tensors.get('half')!)));
    expect(Array.from(await targets.brain.read())).toEqual(Array.from(toFloat32(file.tensors.get('brain')!)));
    expect(Array.from(await targets.weight_f32.read())).toEqual(Array.from(file.tensors.get('weight_f32')!.data as Float32Array));
    expect(Array.from(await targets.counts.read<'i32'>())).toEqual([7, -2147483648, 2147483647]);

    // strict: every missing, unexpected and mis-shaped tensor in one error, nothing written
    const before = await named['fc.weight'].read();
    const bad = new Map(rec);
    bad.delete('fc.bias');
    bad.set('fc.weight', { dtype: 'F32', shape: [3, 2], data: f32(rng.uniform(6)) });
    bad.set('labels', { dtype: 'F32', shape: [3], data: f32([1, 2, 3]) });
    bad.set('extra.one', { dtype: 'F32', shape: [1], data: f32([0]) });
    bad.set('extra.two', { dtype: 'F32', shape: [1], data: f32([0]) });
    let msg = '';
    try {
      loadIntoTensors(named, bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^loadIntoTensors: 4 problem\(s\)/);
    expect(msg).toMatch(/'fc\.weight' has shape \[3,2\] in the source, expected \[2,3\]/);
    expect(msg).toMatch(/'labels' is F32 in the source, cannot load into i32\[3\]/);
    expect(msg).toMatch(/missing 1: 'fc\.bias'/);
    expect(msg).toMatch(/unexpected 2: 'extra\.one', 'extra\.two'/);
    expect(Array.from(await named['fc.weight'].read())).toEqual(Array.from(before));
    // non-strict still rejects mis-shaped tensors
    expect(() => loadIntoTensors(named, bad, { strict: false })).toThrow(/'fc\.weight' has shape/);
    // I64 beyond int32 is reported by name
    expect(() => loadIntoTensors({ ids: ctx.keep(tensor(ctx, new Int32Array(3))) }, file, { strict: false })).toThrow(/'ids'\[2\] = 1099511627779 does not fit in int32/);
    for (const t of [...Object.values(named), ...Object.values(targets)]) t.dispose();
  });

  it('optimizer checkpoint through a file: a restored Adam continues bit-identically', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const shapes = [[5], [2, 4]];
    const init = shapes.map((s) => f32(rng.uniform(s.reduce((a, b) => a * b, 1))));
    const mk = () => init.map((d, k) => ctx.keep(requireGrad(tensor(ctx, d, shapes[k]))));
    const params = mk();
    const a = new Adam(params, { lr: 0.05, betas: [0.8, 0.9], weightDecay: 0.01 });
    const grad = (p: typeof params[0], g: Float64Array) => {
      p.grad?.dispose();
      p.grad = ctx.keep(tensor(ctx, f32(g), p.shape));
    };
    for (let s = 0; s < 3; s++) {
      params.forEach((p, k) => (s === 0 && k === 1 ? null : grad(p, viaF32(rng.normal(p.size)))));
      a.step();
      if (s === 0) params[1]!.grad?.dispose();
      if (s === 0) params[1]!.grad = null;
    }
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
    const path = join(dir, 'ckpt.safetensors');
    const rec = new Map([...(await tensorsToRecord({ 'w0': params[0]!, 'w1': params[1]! })), ...(await optimizerStateToRecord(a))]);
    expect(Number((rec.get('optimizer.state.1.step')!.data as Float32Array)[0])).toBe(2);
    await saveSafetensorsFile(path, rec, { kind: 'checkpoint' });

    const file = await loadSafetensorsFile(path);
    const twins = mk();
    loadIntoTensors({ w0: twins[0]!, w1: twins[1]! }, file, { strict: false });
    for (const k of [0, 1]) expect(new Uint32Array((await twins[k]!.read()).buffer), `loaded w${k}`).toEqual(new Uint32Array((await params[k]!.read()).buffer));
    const b = new Adam(twins, { lr: 1, betas: [0.8, 0.9], weightDecay: 0.01 }); // hyperparameters other than lr are not saved
    loadOptimizerState(b, file);
    expect(b.lr).toBe(0.05);
    expect(b.stepCount).toBe(3);
    expect(b.stateDict().paramSteps).toEqual([3, 2]);
    const g = params.map((p) => viaF32(rng.normal(p.size)));
    params.forEach((p, k) => grad(p, g[k]!));
    twins.forEach((p, k) => grad(p, g[k]!));
    a.step();
    b.step();
    for (const k of [0, 1]) expect(new Uint32Array((await twins[k]!.read()).buffer)).toEqual(new Uint32Array((await params[k]!.read()).buffer));

    const broken = new Map(file.tensors);
    broken.delete('optimizer.state.0.exp_avg_sq');
    broken.set('optimizer.state.1.exp_avg', { dtype: 'F32', shape: [3], data: f32([1, 2, 3]) });
    expect(() => loadOptimizerState(b, broken)).toThrow(/missing state\.0\.exp_avg_sq.*state\.1\.exp_avg is f32\[3\].*expected f32\[2,4\]/);
    a.dispose();
    b.dispose();
    [...params, ...twins].forEach((p) => p.dispose());
  });
});
