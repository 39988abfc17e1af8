// Small CPU transforms of a byte-image dataset used by the classification experiments: a 2x2 (or
// k x k) average-pool downsampling (MNIST 28x28 -> 14x14 for the CPU demo) and an evenly spaced
// subset. Browser-safe; loading files is data-node.ts's.
//
// Letters: N images, C channels, H W image size.

import { ByteImageDataset } from '../../data/dataset.js';
import { EngineError } from '../../util/errors.js';

/** k x k average pooling of every image, [N, C, H, W] -> [N, C, H/k, W/k] (rounded to bytes). */
export function downsampleDataset(ds: ByteImageDataset, factor: number): ByteImageDataset {
  if (factor === 1) return ds;
  const [C, H, W] = ds.shape;
  if (!Number.isInteger(factor) || factor < 1 || H % factor || W % factor)
    throw new EngineError('downsample', `cannot downsample ${H}x${W} images by ${factor} (the factor must be a positive integer dividing both)`);
  const h = H / factor;
  const w = W / factor;
  const out = new Uint8Array(ds.length * C * h * w);
  for (let n = 0; n < ds.length; n++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let dy = 0; dy < factor; dy++)
            for (let dx = 0; dx < factor; dx++) s += ds.images[((n * C + c) * H + y * factor + dy) * W + x * factor + dx]!;
          out[((n * C + c) * h + y) * w + x] = Math.round(s / (factor * factor));
        }
  return new ByteImageDataset(out, ds.labels, [C, h, w], ds.numClasses, ds.classes);
}

/** n evenly spaced samples (class-balanced even when the dataset is sorted by class, as image folders are). */
export function evenSubset(ds: ByteImageDataset, n?: number): ByteImageDataset {
  if (!(n !== undefined && n > 0) || n >= ds.length) return ds;
  const size = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const images = new Uint8Array(n * size);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = Math.floor((k * ds.length) / n);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i]!;
  }
  return new ByteImageDataset(images, labels, ds.shape, ds.numClasses, ds.classes);
}

/** A training and a test set with their normalisation and whether training augments (CIFAR: crop + flip). */
export interface ClassificationData {
  train: ByteImageDataset;
  test: ByteImageDataset;
  mean: number[];
  std: number[];
  augment: boolean;
}

