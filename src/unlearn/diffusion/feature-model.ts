// FID in the features of a model the user brings (ImageNet Inception weights cannot be fetched on
// these machines, so the demo's own FID uses its evaluation classifier; a user with pytorch-fid's FID
// Inception weights, or a feature network of their own such as a torchvision ResNet-18, saved with
// safetensors, gets a second FID column in its features). Generated and real images in [−1, 1] are mapped to [0, 1], given the model's channel
// count (grey replicated to 3 channels), resized bilinearly as PyTorch's F.interpolate(mode='bilinear',
// align_corners=False, antialias=False), normalised per channel ((x − mean) / std, ImageNet's by
// default) and passed through the model's pooled penultimate features (ResNet's `features(x)`, Swin's
// and ViT's `featuresOf(x)`, Inception's pool3 `features(x)`). Browser-safe.

import type { Tensor } from '../../autograd/tensor.js';
import type { GpuContext } from '../../gpu/context.js';
import { tensor } from '../../ops/index.js';
import { EngineError } from '../../util/errors.js';

/** How images are prepared for the feature model. */
export interface FeaturePrep {
  /** side of the square input the model takes */
  size: number;
  /** the model's input channels (1 or 3; a grey image is replicated to 3) */
  channels: number;
  /** per-channel mean and std of the model's input normalisation (applied to [0, 1] pixels) */
  mean: number[];
  std: number[];
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * A model with a pooled feature output ([N, C, H, W] -> [N, F]): ResNet's `features(x)`, or
 * `featuresOf(x)` where `features` names a submodule (torchvision's Swin; ViT's class token).
 */
export type FeatureModel = { features(x: Tensor): Tensor } | { featuresOf(x: Tensor): Tensor };

export function isFeatureModel(m: unknown): m is FeatureModel {
  const o = m as { features?: unknown; featuresOf?: unknown };
  return typeof o.featuresOf === 'function' || typeof o.features === 'function';
}

/** The model's pooled features of x. */
export function featuresOf(m: FeatureModel, x: Tensor): Tensor {
  return 'featuresOf' in m && typeof m.featuresOf === 'function' ? m.featuresOf(x) : (m as { features(x: Tensor): Tensor }).features(x);
}

/**
 * Bilinear resize of [n, c, h, w] to [n, c, oh, ow] with PyTorch's align_corners=False sampling
 * (source coordinate (i + 0.5)·h/oh − 0.5, clamped at 0; no antialiasing when shrinking).
 */
export function resizeBilinear(src: Float32Array, n: number, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  if (src.length !== n * c * h * w) throw new EngineError('resizeBilinear', `${src.length} values are not [${n}, ${c}, ${h}, ${w}]`);
  if (oh === h && ow === w) return src.slice();
  const axis = (inSize: number, outSize: number) => {
    const lo = new Int32Array(outSize);
    const hi = new Int32Array(outSize);
    const frac = new Float64Array(outSize);
    const scale = inSize / outSize;
    for (let i = 0; i < outSize; i++) {
      const s = Math.max(0, (i + 0.5) * scale - 0.5);
      const i0 = Math.min(Math.floor(s), inSize - 1);
      lo[i] = i0;
      hi[i] = Math.min(i0 + 1, inSize - 1);
      frac[i] = s - i0;
    }
    return { lo, hi, frac };
  };
  const ys = axis(h, oh);
  const xs = axis(w, ow);
  const out = new Float32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    const base = p * h * w;
    const obase = p * oh * ow;
    for (let i = 0; i < oh; i++) {
      const r0 = base + ys.lo[i]! * w;
      const r1 = base + ys.hi[i]! * w;
      const fy = ys.frac[i]!;
      for (let j = 0; j < ow; j++) {
        const x0 = xs.lo[j]!;
        const x1 = xs.hi[j]!;
        const fx = xs.frac[j]!;
        const top = src[r0 + x0]! * (1 - fx) + src[r0 + x1]! * fx;
        const bot = src[r1 + x0]! * (1 - fx) + src[r1 + x1]! * fx;
        out[obase + i * ow + j] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

/** Check a preparation against the images it is for; throws naming the problem. */
export function checkFeaturePrep(prep: FeaturePrep, image: readonly [number, number, number]): void {
  const op = 'fidModel';
  if (!Number.isInteger(prep.size) || prep.size < 1) throw new EngineError(op, `inputSize must be a positive integer, got ${prep.size}`);
  if (prep.channels !== 1 && prep.channels !== 3) throw new EngineError(op, `the feature model must take 1 or 3 input channels, got ${prep.channels}`);
  if (image[0] !== prep.channels && !(image[0] === 1 && prep.channels === 3))
    throw new EngineError(op, `images of ${image[0]} channels cannot be given to a feature model of ${prep.channels} input channels`);
  for (const [k, v] of [['mean', prep.mean], ['std', prep.std]] as const)
    if (!Array.isArray(v) || v.length !== prep.channels || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (k === 'std' && !v.every((x) => x > 0)))
      throw new EngineError(op, `${k} must be ${prep.channels} finite number(s)${k === 'std' ? ' > 0' : ''}, got ${JSON.stringify(v)}`);
}

/** Images [n, C, H, W] in [−1, 1] -> the feature model's input [n, prep.channels, size, size]. */
export function prepareImages(images: Float32Array, image: readonly [number, number, number], prep: FeaturePrep): Float32Array {
  checkFeaturePrep(prep, image);
  const [C, H, W] = image;
  const d = C * H * W;
  const n = images.length / d;
  if (!Number.isInteger(n)) throw new EngineError('fidModel', `${images.length} values are not whole images of [${image.join(', ')}]`);
  const unit = Float32Array.from(images, (v) => (v + 1) / 2);
  const resized = resizeBilinear(unit, n, C, H, W, prep.size, prep.size);
  const hw = prep.size * prep.size;
  const out = new Float32Array(n * prep.channels * hw);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < prep.channels; c++) {
      const from = (i * C + (C === 1 ? 0 : c)) * hw;
      const to = (i * prep.channels + c) * hw;
      const m = prep.mean[c]!;
      const s = prep.std[c]!;
      for (let k = 0; k < hw; k++) out[to + k] = (resized[from + k]! - m) / s;
    }
  return out;
}

/** The model's features of the images, in batches: [n, F] row-major and F. */
export async function modelFeatures(ctx: GpuContext, model: FeatureModel, images: Float32Array, image: readonly [number, number, number], prep: FeaturePrep, batchSize = 32): Promise<{ features: Float32Array; F: number }> {
  checkFeaturePrep(prep, image);
  const di = image[0] * image[1] * image[2];
  const n = images.length / di;
  if (!Number.isInteger(n)) throw new EngineError('fidModel', `${images.length} values are not whole images of [${image.join(', ')}]`);
  const parts: Float32Array[] = [];
  let F = 0;
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    // one batch prepared at a time: resized inputs (e.g. 3x224x224) of a whole set would not fit in memory
    const x = prepareImages(images.subarray(s * di, (s + m) * di), image, prep);
    const f = ctx.noGrad(() => ctx.scope(() => ctx.keep(featuresOf(model, tensor(ctx, x, [m, prep.channels, prep.size, prep.size])))));
    try {
      if (f.rank !== 2 || f.shape[0] !== m) throw new EngineError('fidModel', `features(x) must return [${m}, F], got ${f.describe()}`);
      F = f.shape[1]!;
      parts.push(await f.read());
    } finally {
      f.dispose();
    }
  }
  const features = new Float32Array(n * F);
  let o = 0;
  for (const p of parts) {
    features.set(p, o);
    o += p.length;
  }
  return { features, F };
}
