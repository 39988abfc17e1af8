// Forget splits (spec §5): seeded random split, class split, index files (errors naming the line or
// entry), validation errors, the hash that ties an RT checkpoint to its split, JSON, and the Node
// store's atomic writes. CPU only.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertSameSplit, indexFileSplit, makeSplit, randomForgetSplit, splitFromJson, splitToJson } from '../src/unlearn/core/split.js';
import { classForgetSplit, forgetSplitOf } from '../src/unlearn/classification/split.js';
import { nodeStore } from '../src/unlearn/experiment-node.js';
import { Generator } from '../src/util/rng.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function isPartition(s: { forget: Int32Array; remain: Int32Array; n: number }): void {
  expect(s.forget.length + s.remain.length).toBe(s.n);
  const all = [...s.forget, ...s.remain].sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: s.n }, (_, i) => i));
  for (let k = 1; k < s.forget.length; k++) expect(s.forget[k]!).toBeGreaterThan(s.forget[k - 1]!);
  for (let k = 1; k < s.remain.length; k++) expect(s.remain[k]!).toBeGreaterThan(s.remain[k - 1]!);
}

describe('forget splits', () => {
  it('random split: first floor(p·n) of Generator(seed).permutation(n), reproducible', () => {
    const n = 1003;
    const s = randomForgetSplit(n, 0.1, 42);
    isPartition(s);
    expect(s.forget.length).toBe(100);
    expect(s.kind).toBe('random');
    expect(s.seed).toBe(42);
    const perm = new Generator(42).permutation(n);
    expect(Array.from(s.forget)).toEqual(Array.from(perm.slice(0, 100)).sort((a, b) => a - b));
    expect(randomForgetSplit(n, 0.1, 42).hash).toBe(s.hash);
    expect(randomForgetSplit(n, 0.1, 43).hash).not.toBe(s.hash);
    expect(s.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(() => randomForgetSplit(n, 0, 1)).toThrow(/fraction/);
    expect(() => randomForgetSplit(5, 0.1, 1)).toThrow(/forget set is empty/);
  });

  it('class split takes every sample of the classes', () => {
    const labels = Int32Array.from([0, 1, 2, 1, 0, 2, 2, 1]);
    const s = classForgetSplit(labels, [2]);
    isPartition(s);
    expect(Array.from(s.forget)).toEqual([2, 5, 6]);
    expect(s.classes).toEqual([2]);
    expect(Array.from(classForgetSplit(labels, [1, 0]).forget)).toEqual([0, 1, 3, 4, 7]);
    expect(() => classForgetSplit(labels, [3])).toThrow(/class 3 has no samples/);
    expect(() => classForgetSplit(labels, [0, 1, 2])).toThrow(/whole training set/);
  });

  it('index files: text, JSON array, split JSON; errors name the line or entry', () => {
    expect(Array.from(indexFileSplit('# forget\n5 3, 7\n1', 10).forget)).toEqual([1, 3, 5, 7]);
    expect(Array.from(indexFileSplit('[9, 0]', 10).forget)).toEqual([0, 9]);
    expect(() => indexFileSplit('1 2\n# c\n12', 10, 'f.txt')).toThrow(/f\.txt, line 3: index 12 is out of range \[0, 10\)/);
    expect(() => indexFileSplit('1 2\n2', 10)).toThrow(/line 2: index 2 is listed twice \(first at line 1\)/);
    expect(() => indexFileSplit('1\nx', 10)).toThrow(/line 2: "x" is not an integer index/);
    expect(() => indexFileSplit('1\n3.5', 10)).toThrow(/line 2: "3\.5" is not an integer index/);
    expect(() => indexFileSplit('1 -2', 10)).toThrow(/line 1: index -2 is out of range/);
    expect(() => indexFileSplit('[1, 2.5]', 10)).toThrow(/entry 1: 2\.5 is not an integer index/);
    expect(() => indexFileSplit('[1, 1]', 10)).toThrow(/entry 1: index 1 is listed twice \(first at entry 0\)/);
    expect(() => indexFileSplit('', 10)).toThrow(/lists no indices/);
    expect(() => indexFileSplit('# only a comment\n', 10)).toThrow(/lists no indices/);
    expect(() => indexFileSplit('0 1 2', 3)).toThrow(/whole training set/);
    const s = randomForgetSplit(50, 0.2, 1);
    expect(indexFileSplit(splitToJson(s), 50).hash).toBe(s.hash);
    expect(() => indexFileSplit(splitToJson(s), 60)).toThrow(/n = 50/);
    // the protocol dispatcher
    expect(forgetSplitOf({ kind: 'file', path: 'x' }, new Int32Array(10), '4 2').forget).toEqual(Int32Array.from([2, 4]));
    expect(() => forgetSplitOf({ kind: 'file', path: 'x' }, new Int32Array(10))).toThrow(/was not read/);
  });

  it('hash: depends on the set and n, not on the order; detects an RT checkpoint mismatch', () => {
    const a = makeSplit([3, 1, 2], 10);
    const b = makeSplit([1, 2, 3], 10);
    expect(a.hash).toBe(b.hash);
    expect(makeSplit([1, 2, 3], 11).hash).not.toBe(a.hash);
    expect(makeSplit([1, 2, 4], 10).hash).not.toBe(a.hash);
    // FNV-1a 64 over the bytes of n = 10 then 1, 2, 3 (little-endian u32), computed independently
    let h = 0xcbf29ce484222325n;
    for (const byte of [10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]) {
      h ^= BigInt(byte);
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    expect(a.hash).toBe(h.toString(16).padStart(16, '0'));
    expect(() => assertSameSplit(a.hash, b)).not.toThrow();
    expect(() => assertSameSplit(a.hash, makeSplit([1, 2, 4], 10), 'RT checkpoint')).toThrow(/RT checkpoint was trained on split/);
  });

  it('JSON round trip; an edited file is rejected', () => {
    const s = randomForgetSplit(200, 0.1, 9);
    const back = splitFromJson(splitToJson(s));
    expect(back).toEqual(s);
    const obj = JSON.parse(splitToJson(s));
    obj.forget[0] = s.remain[0]; // a different, still valid forget set under the old hash
    expect(() => splitFromJson(JSON.stringify(obj))).toThrow(/stored hash .* the file was altered/);
  });

  it('the Node store: atomic text writes, no temp files left, listing, absent names are null', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'split-'));
    dirs.push(dir);
    const store = nodeStore(dir);
    const s = classForgetSplit(Int32Array.from([0, 1, 0, 1, 2]), [1]);
    await store.writeText('sub/split.json', splitToJson(s));
    await store.writeText('sub/split.json', splitToJson(s)); // overwrite
    expect(await readdir(join(dir, 'sub'))).toEqual(['split.json']);
    expect(await store.list('sub')).toEqual(['split.json']);
    expect(await store.list('none')).toEqual([]);
    expect(splitFromJson((await store.readText('sub/split.json'))!)).toEqual(s);
    expect(JSON.parse(await readFile(join(dir, 'sub', 'split.json'), 'utf8')).hash).toBe(s.hash);
    expect(await store.readText('none.json')).toBeNull();
    await writeFile(join(dir, 'bad.json'), '{"n": 5, "kind": "indices", "forget": [7]}');
    expect(() => splitFromJson(readFileSync(join(dir, 'bad.json'), 'utf8'))).toThrow(/index 7/);
  });
});
