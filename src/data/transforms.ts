// Seeded, composable image transforms on CPU float images (CHW, values in [0, 1] before Normalize):
// RandomCrop with zero padding, RandomHorizontalFlip, Normalize, Compose, and the CIFAR-10 / MNIST
// presets. Randomness comes only from the Generator passed to apply(). No resizing, no colour jitter.
//
// Dimension letters: C channels, H height, W width.

import type { ImageShape } from './dataset.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

export interface Transform {
  /** Output [C, H, W] for an input of `shape`. */
  outShape(shape: ImageShape): ImageShape;
  /** Writes the transform of `src` ([C, H, W] = shape) into `dst` ([C, H, W] = outShape(shape)). */
  apply(src: Float32Array, shape: ImageShape, dst: Float32Array, gen: Generator): void;
}

/**
 * torchvision RandomCrop(size, padding): pad every side with `fill` (0 = black, applied before
 * Normalize), then take a size x size window at top-left (i, j) with i, j uniform in [0, H + 2p - size]
 * (drawn in that order).
 */
export function randomCrop(size: number, padding = 0, fill = 0): Transform {
  return {
    outShape([C, H, W]) {
      if (H + 2 * padding < size || W + 2 * padding < size)
        throw new EngineError('randomCrop', `crop ${size} exceeds padded image ${H + 2 * padding}x${W + 2 * padding}`);
      return [C, size, size];
    },
    apply(src, [C, H, W], dst, gen) {
      const i = gen.cpuInt(H + 2 * padding - size + 1) - padding;
      const j = gen.cpuInt(W + 2 * padding - size + 1) - padding;
      for (let c = 0; c < C; c++)
        for (let y = 0; y < size; y++) {
          const sy = y + i;
          const row = (c * size + y) * size;
          for (let x = 0; x < size; x++) {
            const sx = x + j;
            dst[row + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(c * H + sy) * W + sx]! : fill;
          }
        }
    },
  };
}

/** Mirrors the image left-right with probability p (one uniform draw per image). */
export function randomHorizontalFlip(p = 0.5): Transform {
  return {
    outShape: (s) => s,
    apply(src, [C, H, W], dst, gen) {
      const flip = gen.cpuUniform() < p;
      for (let r = 0; r < C * H; r++)
        for (let x = 0; x < W; x++) dst[r * W + x] = src[r * W + (flip ? W - 1 - x : x)]!;
    },
  };
}

/** (x - mean[c]) / std[c] per channel. */
export function normalize(mean: readonly number[], std: readonly number[]): Transform {
  if (mean.length !== std.length) throw new EngineError('normalize', `${mean.length} means but ${std.length} stds`);
  if (std.some((s) => !(s > 0))) throw new EngineError('normalize', `std [${std.join(', ')}] must be positive`);
  return {
    outShape(s) {
      if (s[0] !== mean.length) throw new EngineError('normalize', `image has ${s[0]} channels, mean/std have ${mean.length}`);
      return s;
    },
    apply(src, [C, H, W], dst) {
      const hw = H * W;
      for (let c = 0; c < C; c++) {
        const m = mean[c]!;
        const inv = 1 / std[c]!;
        for (let p = c * hw; p < (c + 1) * hw; p++) dst[p] = (src[p]! - m) * inv;
      }
    },
  };
}

/** Applies transforms in order (scratch buffers are reused between calls). */
export function compose(...ts: Transform[]): Transform {
  const scratch: Float32Array[] = [];
  return {
    outShape: (s) => ts.reduce((acc, t) => t.outShape(acc), s),
    apply(src, shape, dst, gen) {
      if (ts.length === 0) return void dst.set(src);
      let cur = src;
      let s = shape;
      ts.forEach((t, k) => {
        const o = t.outShape(s);
        const n = o[0] * o[1] * o[2];
        let out: Float32Array;
        if (k === ts.length - 1) out = dst;
        else {
          if (!scratch[k] || scratch[k]!.length !== n) scratch[k] = new Float32Array(n);
          out = scratch[k]!;
        }
        t.apply(cur, s, out, gen);
        cur = out;
        s = o;
      });
    },
  };
}

export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR10_STD = [0.2023, 0.1994, 0.201] as const;
export const MNIST_MEAN = [0.1307] as const;
export const MNIST_STD = [0.3081] as const;

/** RandomCrop(32, padding=4), RandomHorizontalFlip(0.5), Normalize(CIFAR-10 mean/std). */
export const cifar10TrainTransform = () =>
  compose(randomCrop(32, 4), randomHorizontalFlip(0.5), normalize(CIFAR10_MEAN, CIFAR10_STD));
/** Normalize(CIFAR-10 mean/std) only. */
export const cifar10EvalTransform = () => normalize(CIFAR10_MEAN, CIFAR10_STD);
/** Normalize(0.1307, 0.3081): MNIST train and eval. */
export const mnistTransform = () => normalize(MNIST_MEAN, MNIST_STD);
