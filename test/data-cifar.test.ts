// CIFAR-10 binary release: records written to a temp dir (data_batch_1..5.bin, test_batch.bin),
// pixel/label order across files, the cifar-10-batches-bin subdirectory, size / label errors, and the
// decoded-dataset cache (cache-node.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCifar10Binary } from '../src/data/cifar-node.js';
import { parseCifar10Batch } from '../src/data/cifar.js';
import { cachedByteDataset, loadByteDataset } from '../src/data/cache-node.js';

const dir = mkdtempSync(path.join(tmpdir(), 'data-cifar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Record with label y and pixel p = (seed * 7 + p) % 251 */
function record(y: number, seed: number): Uint8Array {
  const r = new Uint8Array(3073);
  r[0] = y;
  for (let p = 0; p < 3072; p++) r[1 + p] = (seed * 7 + p) % 251;
  return r;
}
const batchFile = (recs: [number, number][]) => {
  const out = new Uint8Array(recs.length * 3073);
  recs.forEach(([y, s], i) => out.set(record(y, s), i * 3073));
  return out;
};

function writeRelease(d: string, testRecords: [number, number][] = [[3, 100], [9, 101], [0, 102]]) {
  mkdirSync(d, { recursive: true });
  for (let b = 1; b <= 5; b++)
    writeFileSync(path.join(d, `data_batch_${b}.bin`), batchFile([[b, b * 10], [(b + 5) % 10, b * 10 + 1]]));
  writeFileSync(path.join(d, 'test_batch.bin'), batchFile(testRecords));
}

describe('CIFAR-10 binary', () => {
  it('loads train (5 files in order) and test, CHW pixels and labels', () => {
    writeRelease(dir);
    const train = loadCifar10Binary(dir, 'train');
    expect([train.length, train.shape, train.numClasses]).toEqual([10, [3, 32, 32], 10]);
    expect(Array.from(train.labels)).toEqual([1, 6, 2, 7, 3, 8, 4, 9, 5, 0]);
    const s = train.get(3); // file 2, record 1: seed 21
    expect(s.label).toBe(7);
    // red channel first: image[c*1024 + y*32 + x] = record byte 1 + c*1024 + y*32 + x
    expect(s.image[0]).toBe((21 * 7) % 251);
    expect(s.image[1024 + 32 * 5 + 7]).toBe((21 * 7 + 1024 + 167) % 251);
    expect(s.image[3071]).toBe((21 * 7 + 3071) % 251);
    const test = loadCifar10Binary(dir, 'test');
    expect(Array.from(test.labels)).toEqual([3, 9, 0]);
    expect(test.classes![9]).toBe('truck');
  });
  it('finds the cifar-10-batches-bin subdirectory', () => {
    const d = path.join(dir, 'release');
    writeRelease(path.join(d, 'cifar-10-batches-bin'));
    expect(loadCifar10Binary(d, 'test').length).toBe(3);
  });
  it('rejects a file of the wrong size, naming it and the expected bytes', () => {
    const d = path.join(dir, 'short');
    writeRelease(d);
    const f = path.join(d, 'test_batch.bin');
    writeFileSync(f, batchFile([[1, 1], [2, 2]]).subarray(0, 6000));
    expect(() => loadCifar10Binary(d, 'test')).toThrow(
      `${f}: 6000 bytes is not a whole number of 3073-byte records (expected e.g. 6146 for 2 records)`,
    );
    expect(() => loadCifar10Binary(path.join(dir, 'missing'), 'train')).toThrow(/data_batch_1\.bin does not exist/);
  });
  it('rejects a label above 9, naming file and record', () => {
    const d = path.join(dir, 'badlabel');
    writeRelease(d, [[1, 1], [10, 2], [3, 3]]);
    expect(() => loadCifar10Binary(d, 'test')).toThrow(`${path.join(d, 'test_batch.bin')}: label 10 of record 1 is outside [0, 9]`);
    expect(() => parseCifar10Batch(new Uint8Array(0), 'empty')).toThrow(/empty: 0 bytes/);
  });
});

describe('decoded-dataset cache', () => {
  it('round-trips a data set and rejects a truncated cache naming the file', async () => {
    writeRelease(path.join(dir, 'for-cache'));
    const ds = loadCifar10Binary(path.join(dir, 'for-cache'), 'train');
    const file = path.join(dir, 'cache', 'train.ugds');
    let built = 0;
    const build = () => (built++, ds);
    const a = await cachedByteDataset(file, build);
    const b = await cachedByteDataset(file, build);
    expect(built).toBe(1);
    expect(a).toBe(ds);
    expect([b.length, b.shape, b.numClasses, b.classes]).toEqual([ds.length, ds.shape, 10, ds.classes]);
    expect(Array.from(b.labels)).toEqual(Array.from(ds.labels));
    expect(Buffer.from(b.images).equals(Buffer.from(ds.images))).toBe(true);
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 1));
    expect(() => loadByteDataset(file)).toThrow(`${file}: expected ${bytes.length} bytes, got ${bytes.length - 1}`);
    writeFileSync(file, 'nonsense');
    expect(() => loadByteDataset(file)).toThrow(/is not a dataset cache/);
  });
});
