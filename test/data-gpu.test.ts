// toGpuBatch: a loader batch uploaded as f32 [B, C, H, W] and i32 [B] tensors and read back; labels
// outside [0, numClasses) are rejected naming the batch position and sample.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { toGpuBatch } from '../src/data/gpu.js';

const gpu = useGpu();

describe('toGpuBatch', () => {
  it('uploads x and y with the batch shape', async () => {
    const { ctx } = gpu;
    const images = Uint8Array.from({ length: 5 * 12 }, (_, i) => (i * 7) % 256);
    const ds = new ByteImageDataset(images, Int32Array.from([3, 1, 4, 1, 5]), [3, 2, 2], 6);
    const batch = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 2 }).batch(0, 1);
    await ctx.scope(async () => {
      const { x, y } = toGpuBatch(ctx, batch);
      expect(x.shape).toEqual([2, 3, 2, 2]);
      expect([x.dtype, y.dtype]).toEqual(['f32', 'i32']);
      expect(Array.from(await x.read())).toEqual(Array.from(batch.x));
      expect(Array.from(await y.read<'i32'>())).toEqual(Array.from(batch.y));
    });
  });
  it('rejects out-of-range labels naming position and sample', () => {
    const { ctx } = gpu;
    const batch = {
      x: new Float32Array(2), y: Int32Array.from([0, 7]), indices: Int32Array.from([10, 11]),
      shape: [2, 1, 1, 1] as [number, number, number, number], numClasses: 5, epoch: 0, batch: 0,
    };
    expect(() => toGpuBatch(ctx, batch)).toThrow('toGpuBatch: label 7 at batch position 1 (sample 11) is outside [0, 5)');
    expect(() => toGpuBatch(ctx, { ...batch, y: Int32Array.from([0, -1]) }, 10)).toThrow(/label -1 at batch position 1/);
  });
});
