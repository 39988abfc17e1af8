// Datasets (ByteImageDataset, Subset, ConcatDataset), the DataLoader (order, seeded shuffles per
// epoch, drop-last, index subsets, async prefetch == sync, background progress) and the transforms
// against hand-computed pixels. Pure CPU.
import { describe, expect, it } from 'vitest';
import { ByteImageDataset, ConcatDataset, Subset, type Dataset } from '../src/data/dataset.js';
import { DataLoader, type Batch } from '../src/data/loader.js';
import { CIFAR10_MEAN, CIFAR10_STD, cifar10EvalTransform, cifar10TrainTransform, compose, normalize, randomCrop, randomHorizontalFlip } from '../src/data/transforms.js';
import { Generator } from '../src/util/rng.js';

/** n images [C, H, W] with pixel (i, p) = (i * 31 + p) % 256 and label i % k */
function synth(n: number, shape: [number, number, number] = [1, 2, 3], k = 4): ByteImageDataset {
  const sz = shape[0] * shape[1] * shape[2];
  const images = Uint8Array.from({ length: n * sz }, (_, q) => (Math.floor(q / sz) * 31 + (q % sz)) % 256);
  return new ByteImageDataset(images, Int32Array.from({ length: n }, (_, i) => i % k), shape, k);
}

const order = (l: DataLoader, e: number) => [...l.batchesSync(e)].flatMap((b) => Array.from(b.indices));
const collect = async (it: AsyncIterable<Batch>) => {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
};

describe('datasets', () => {
  it('ByteImageDataset views, validation and errors', () => {
    const ds = synth(5);
    expect(Array.from(ds.get(2).image)).toEqual([62, 63, 64, 65, 66, 67]);
    expect(ds.get(3).label).toBe(3);
    expect(() => ds.get(5)).toThrow('ByteImageDataset.get: index 5 is out of range [0, 5)');
    expect(() => new ByteImageDataset(new Uint8Array(11), new Int32Array(2), [1, 2, 3], 4)).toThrow(/11 pixel bytes do not hold 2 images/);
    expect(() => new ByteImageDataset(new Uint8Array(6), Int32Array.of(4), [1, 2, 3], 4)).toThrow('label 4 of sample 0 is outside [0, 4)');
  });
  it('Subset and ConcatDataset', () => {
    const ds = synth(5);
    const sub = new Subset(ds, [4, 0, 4]);
    expect(sub.length).toBe(3);
    expect([sub.get(0).label, sub.get(1).label, sub.get(2).label]).toEqual([0, 0, 0]);
    expect(Array.from(sub.get(0).image)).toEqual(Array.from(ds.get(4).image));
    expect(() => new Subset(ds, [0, 1, 7])).toThrow('Subset: indices[2] = 7 is out of range [0, 5)');
    expect(() => new Subset(ds, [-1])).toThrow('indices[0] = -1 is out of range');
    const cat = new ConcatDataset([ds, synth(0), synth(2)]);
    expect(cat.length).toBe(7);
    expect(Array.from(cat.get(5).image)).toEqual(Array.from(synth(2).get(0).image));
    expect(cat.get(4).label).toBe(0);
    expect(() => cat.get(7)).toThrow('index 7 is out of range [0, 7)');
    expect(() => new ConcatDataset([ds, synth(2, [1, 3, 2])])).toThrow(/data set 1 has image shape \[1, 3, 2\]/);
  });
});

describe('DataLoader', () => {
  it('serves dataset order without shuffle, x = bytes / 255, y, indices, shape', () => {
    const ds = synth(5);
    const l = new DataLoader(ds, { batchSize: 2 });
    const bs = [...l.batchesSync(0)];
    expect(bs.map((b) => b.shape)).toEqual([[2, 1, 2, 3], [2, 1, 2, 3], [1, 1, 2, 3]]);
    expect(Array.from(bs[1]!.indices)).toEqual([2, 3]);
    expect(Array.from(bs[1]!.y)).toEqual([2, 3]);
    expect(bs[1]!.x[0]).toBeCloseTo(62 / 255, 7);
    expect(bs[1]!.x[11]).toBeCloseTo(((3 * 31 + 5) % 256) / 255, 7);
    expect(bs[2]!.numClasses).toBe(4);
  });
  it('drop-last and batch counts', () => {
    const ds = synth(10);
    expect(new DataLoader(ds, { batchSize: 4 }).numBatches).toBe(3);
    const l = new DataLoader(ds, { batchSize: 4, dropLast: true, shuffle: true, seed: 3 });
    expect(l.numBatches).toBe(2);
    const bs = [...l.batchesSync(0)];
    expect(bs.map((b) => b.y.length)).toEqual([4, 4]);
    expect(() => l.batch(0, 2)).toThrow('DataLoader.batch: batch 2 is out of range [0, 2)');
    expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize 0/);
  });
  it('seeded shuffles: same seed same order, epochs differ, seeds differ, permutations', () => {
    const ds = synth(50);
    const a = new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 11 });
    const b = new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 11 });
    const c = new DataLoader(ds, { batchSize: 8, shuffle: true, seed: 12 });
    expect(order(a, 0)).toEqual(order(b, 0));
    expect(order(a, 3)).toEqual(Array.from(b.epoch(3)));
    expect(order(a, 0)).not.toEqual(order(a, 1));
    expect(order(a, 0)).not.toEqual(order(c, 0));
    expect([...order(a, 1)].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // seed + epoch streams do not collide: (seed 11, epoch 1) != (seed 12, epoch 0)
    expect(order(a, 1)).not.toEqual(order(c, 0));
  });
  it('index subsets: only those samples, in list order unless shuffled; bad index named', () => {
    const ds = synth(20);
    const idx = [17, 3, 9, 3, 0];
    expect(order(new DataLoader(ds, { batchSize: 2, indices: idx }), 0)).toEqual(idx);
    const s = order(new DataLoader(ds, { batchSize: 2, indices: idx, shuffle: true, seed: 1 }), 4);
    expect([...s].sort((x, y) => x - y)).toEqual([0, 3, 3, 9, 17]);
    expect(() => new DataLoader(ds, { batchSize: 2, indices: [1, 20] })).toThrow('DataLoader: indices[1] = 20 is out of range [0, 20)');
  });
  it('async iteration with prefetch equals the synchronous batches, transforms included', async () => {
    const ds = synth(70, [3, 4, 4], 10);
    const t = compose(randomCrop(4, 1), randomHorizontalFlip(), normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]));
    const ref = [...new DataLoader(ds, { batchSize: 33, shuffle: true, seed: 5, transform: t }).batchesSync(2)];
    for (const prefetch of [0, 1, 3]) {
      const l = new DataLoader(ds, { batchSize: 33, shuffle: true, seed: 5, transform: t, prefetch });
      const got = await collect(l.batches(2));
      expect(got.length).toBe(3);
      got.forEach((b, k) => {
        expect(Array.from(b.x), `prefetch ${prefetch} batch ${k}`).toEqual(Array.from(ref[k]!.x));
        expect(Array.from(b.indices)).toEqual(Array.from(ref[k]!.indices));
        expect(Array.from(b.y)).toEqual(Array.from(ref[k]!.y));
      });
    }
    // resuming at batch 1 gives the same batches 1.. as a full pass
    const resumed = await collect(new DataLoader(ds, { batchSize: 33, shuffle: true, seed: 5, transform: t }).batches(2, 1));
    expect(resumed.map((b) => b.batch)).toEqual([1, 2]);
    expect(Array.from(resumed[0]!.x)).toEqual(Array.from(ref[1]!.x));
    // for await over the loader advances the epoch
    const l = new DataLoader(ds, { batchSize: 33, shuffle: true, seed: 5 });
    const e0 = (await collect(l)).flatMap((b) => Array.from(b.indices));
    const e1 = (await collect(l)).flatMap((b) => Array.from(b.indices));
    expect(e0).toEqual(Array.from(l.epoch(0)));
    expect(e1).toEqual(Array.from(l.epoch(1)));
  });
  it('builds the next batch in the background while the consumer waits', async () => {
    const base = synth(256);
    let gets = 0;
    const counting: Dataset = { length: base.length, numClasses: 4, shape: base.shape, get: (i) => (gets++, base.get(i)) };
    const l = new DataLoader(counting, { batchSize: 64, prefetch: 1 });
    const it = l.batches(0)[Symbol.asyncIterator]();
    await it.next();
    const afterFirst = gets;
    // simulate awaiting the GPU: yield to the event loop a few times
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(afterFirst).toBeLessThan(128);
    expect(gets).toBe(128); // batch 1 is complete, batch 2 not started (prefetch 1)
    await it.return?.(undefined);
  });
  it('rejects a batch error when that batch is awaited, naming the sample', async () => {
    const base = synth(10);
    const broken: Dataset = { ...base, length: 10, numClasses: 4, shape: base.shape, get: (i) => (i === 7 ? { image: new Uint8Array(2), label: 0 } : base.get(i)) };
    await expect(collect(new DataLoader(broken, { batchSize: 4 }).batches(0))).rejects.toThrow('DataLoader: sample 7 has 2 values, expected 6');
  });
});

/** A Generator stand-in returning scripted draws */
function scripted(ints: number[], uniforms: number[] = []): Generator {
  return { cpuInt: () => ints.shift()!, cpuUniform: () => uniforms.shift()! } as unknown as Generator;
}

describe('transforms', () => {
  // 1 x 3 x 3 image with values 1..9
  const img = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('randomCrop with zero padding against hand-computed pixels', () => {
    const t = randomCrop(3, 1);
    expect(t.outShape([1, 3, 3])).toEqual([1, 3, 3]);
    const dst = new Float32Array(9);
    t.apply(img, [1, 3, 3], dst, scripted([0, 2])); // top = -1, left = +1
    expect(Array.from(dst)).toEqual([0, 0, 0, 2, 3, 0, 5, 6, 0]);
    t.apply(img, [1, 3, 3], dst, scripted([1, 1])); // centred: identity
    expect(Array.from(dst)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const small = new Float32Array(4);
    randomCrop(2, 0).apply(img, [1, 3, 3], small, scripted([1, 0])); // rows 1-2, cols 0-1
    expect(Array.from(small)).toEqual([4, 5, 7, 8]);
    expect(() => randomCrop(6, 1).outShape([1, 3, 3])).toThrow(/crop 6 exceeds padded image 5x5/);
  });
  it('horizontal flip by draw; normalize per channel; compose order', () => {
    const dst = new Float32Array(9);
    randomHorizontalFlip(0.5).apply(img, [1, 3, 3], dst, scripted([], [0.49]));
    expect(Array.from(dst)).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7]);
    randomHorizontalFlip(0.5).apply(img, [1, 3, 3], dst, scripted([], [0.5]));
    expect(Array.from(dst)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const two = Float32Array.from([0, 1, 0.5, 0.25]); // 2 x 1 x 2
    const out = new Float32Array(4);
    normalize([0.5, 0.25], [0.5, 0.25]).apply(two, [2, 1, 2], out, scripted([]));
    expect(Array.from(out)).toEqual([-1, 1, 1, 0]);
    expect(() => normalize([0.5], [0.5]).outShape([3, 2, 2])).toThrow('normalize: image has 3 channels, mean/std have 1');
    // crop (top -1, left +1) then flip then x * 2 - 1 ... via normalize(0.5, 0.5)
    const c = compose(randomCrop(3, 1), randomHorizontalFlip(1), normalize([0.5], [0.5]));
    c.apply(img, [1, 3, 3], dst, scripted([0, 2], [0.3]));
    expect(Array.from(dst)).toEqual([0, 0, 0, 0, 3, 2, 0, 6, 5].map((v) => (v - 0.5) / 0.5));
  });
  it('CIFAR-10 presets: padded border equals -mean/std; eval = normalise only; seeded', () => {
    const x = new Float32Array(3 * 32 * 32).fill(1);
    const out = new Float32Array(3 * 32 * 32);
    const t = cifar10TrainTransform();
    let pads = 0;
    let others = 0;
    for (let s = 0; s < 20; s++) {
      t.apply(x, [3, 32, 32], out, new Generator(s));
      for (let c = 0; c < 3; c++) {
        const pad = -CIFAR10_MEAN[c]! / CIFAR10_STD[c]!;
        const one = (1 - CIFAR10_MEAN[c]!) / CIFAR10_STD[c]!;
        for (let p = 0; p < 1024; p++) {
          const v = out[c * 1024 + p]!;
          if (Math.abs(v - pad) < 1e-5) pads++;
          else if (Math.abs(v - one) >= 1e-5) others++;
        }
      }
    }
    expect(others).toBe(0);
    expect(pads).toBeGreaterThan(0);
    const o2 = new Float32Array(out.length);
    t.apply(x, [3, 32, 32], out, new Generator(7));
    t.apply(x, [3, 32, 32], o2, new Generator(7));
    expect(Array.from(o2)).toEqual(Array.from(out));
    cifar10EvalTransform().apply(x, [3, 32, 32], out, new Generator(0));
    expect(out[2048]).toBeCloseTo((1 - 0.4465) / 0.201, 5);
  });
});
