// The evaluation classifier of the generation metrics (metrics.ts): an MLP trained here on the real
// training images (the same [−1, 1] images the diffusion model sees), with Adam and a per-step
// cosine schedule on the shared loop. Its penultimate layer is the feature space of the in-domain
// FID. Browser-safe; the caller caches the weights.
//
// The reject ("none of the classes") output: a classifier with only the K real classes must label
// every image as one of them, noise included, so a method that turns the forgotten class into noise
// can score a high FA only because the classifier happens to call that noise the forgotten class
// (SFR-on's bright noise was labelled "0": FA 100% with no zero left). With `reject` (the default)
// the MLP has K + 1 outputs and is also trained on synthetic non-digit images (`nonClassImages`:
// uniform and Gaussian noise at several scales, blurred noise, salt-and-pepper up to nearly white,
// bright noise with a dark blob, flat images, smooth blob textures, made deterministically from a
// seed), labelled K. FA keeps its meaning (share labelled as the forgotten class); "none" counts as
// not the class, and its share is reported beside FA. The FID still uses the penultimate features.
// It does not score generated images (metrics.ts).

import type { GpuContext } from '../../gpu/context.js';
import { MLP } from '../../models/mlp.js';
import { crossEntropy, mean, tensor } from '../../ops/index.js';
import { Adam } from '../../nn/optim.js';
import { cosineLr } from '../../nn/schedule.js';
import { train, type EpochLoader } from '../../nn/loop.js';
import { deriveSeed } from '../../data/loader.js';
import { Generator } from '../../util/rng.js';
import { EngineError } from '../../util/errors.js';
import { checkImageSet, type ImageSet } from '../../models/diffusion/train.js';
import { classifierOutputs } from './metrics.js';

/**
 * Bumped whenever the classifier's recipe changes, so cached classifiers (and rows scored with
 * them) are not reused: 1 = K outputs; 2 = K + 1 outputs with the synthetic reject class.
 */
export const EVAL_CLASSIFIER_VERSION = 2;

export interface EvalClassifierOptions {
  /** Hidden widths (default [256, 128]: the 128-wide ReLU layer is the FID feature space). */
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** add the "none of the classes" output (label = numClasses), trained on `nonClassImages` (default true) */
  reject?: boolean;
  /** synthetic non-class training images as a fraction of the real ones (default 0.15) */
  rejectFraction?: number;
}

/** The classifier's output count: the classes, plus one "none" output with `reject` (default). */
export function evalClassifierOutputs(numClasses: number, o: EvalClassifierOptions = {}): number {
  return numClasses + ((o.reject ?? true) ? 1 : 0);
}

export function makeEvalClassifier(ctx: GpuContext, image: readonly number[], numClasses: number, o: EvalClassifierOptions = {}): MLP {
  const d = image.reduce((a, b) => a * b, 1);
  return new MLP(ctx, { sizes: [d, ...(o.hidden ?? [256, 128]), evalClassifierOutputs(numClasses, o)], seed: o.seed ?? 0 });
}

/** The kinds of synthetic non-class image, in the order `nonClassImages` cycles through them. */
export const NON_CLASS_KINDS = ['uniform', 'gaussian', 'blurred', 'salt-pepper', 'bright-blob', 'flat', 'blobs'] as const;

/**
 * `n` synthetic images [n·C·H·W] in [−1, 1] that are no class of the data set, deterministic in
 * `seed`; image i is of kind NON_CLASS_KINDS[i mod 7]:
 *   uniform      i.i.d. U(−1, 1) pixels;
 *   gaussian     N(m, s²) clipped, m ∈ [−1, 1], s one of 0.1, 0.3, 0.6, 1, 2;
 *   blurred      Gaussian noise box-blurred (radius 1-2), rescaled to a random range;
 *   salt-pepper  ±1 pixels with a random share of +1 (nearly black to nearly white);
 *   bright-blob  bright salt-and-pepper (70-97% white) with a dark smooth blob (the SFR-on look);
 *   flat         one grey level plus faint noise;
 *   blobs        a sum of 3-8 random Gaussian bumps of either sign (smooth textures), clipped.
 */
export function nonClassImages(n: number, image: readonly number[], seed: number): Float32Array {
  const [C, H, W] = image as [number, number, number];
  const d = C * H * W;
  const out = new Float32Array(n * d);
  const g = new Generator(deriveSeed(seed, 0x4e4f4e45, 0, 0));
  const u = () => g.cpuUniform();
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const clip = (v: number) => Math.max(-1, Math.min(1, v));
  const gaussBlob = (cx: number, cy: number, r: number, y: number, x: number) => Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r));
  for (let i = 0; i < n; i++) {
    const img = out.subarray(i * d, (i + 1) * d);
    const kind = NON_CLASS_KINDS[i % NON_CLASS_KINDS.length]!;
    if (kind === 'uniform') for (let k = 0; k < d; k++) img[k] = 2 * u() - 1;
    else if (kind === 'gaussian') {
      const m = 2 * u() - 1;
      const s = [0.1, 0.3, 0.6, 1, 2][Math.floor(u() * 5)]!;
      for (let k = 0; k < d; k++) img[k] = clip(m + s * normal());
    } else if (kind === 'blurred') {
      const r = 1 + Math.floor(u() * 2);
      const raw = Float32Array.from({ length: d }, normal);
      let lo = Infinity;
      let hi = -Infinity;
      const tmp = new Float32Array(d);
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            let acc = 0;
            let cnt = 0;
            for (let dy = -r; dy <= r; dy++)
              for (let dx = -r; dx <= r; dx++) {
                const yy = y + dy;
                const xx = x + dx;
                if (yy >= 0 && yy < H && xx >= 0 && xx < W) {
                  acc += raw[c * H * W + yy * W + xx]!;
                  cnt++;
                }
              }
            const v = acc / cnt;
            tmp[c * H * W + y * W + x] = v;
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
      const a = 2 * u() - 1;
      const b = 2 * u() - 1;
      const [from, to] = a < b ? [a - 0.3, b + 0.3] : [b - 0.3, a + 0.3];
      for (let k = 0; k < d; k++) img[k] = clip(from + ((tmp[k]! - lo) / (hi - lo || 1)) * (to - from));
    } else if (kind === 'salt-pepper') {
      const p = 0.05 + 0.9 * u();
      for (let k = 0; k < d; k++) img[k] = u() < p ? 1 : -1;
    } else if (kind === 'bright-blob') {
      const p = 0.7 + 0.27 * u();
      const cx = W * (0.25 + 0.5 * u());
      const cy = H * (0.25 + 0.5 * u());
      const r = (Math.min(H, W) / 16) * (1 + 2 * u());
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const dark = gaussBlob(cx, cy, r, y, x);
            img[c * H * W + y * W + x] = u() < p * (1 - dark) ? 1 : -1;
          }
    } else if (kind === 'flat') {
      const m = 2 * u() - 1;
      for (let k = 0; k < d; k++) img[k] = clip(m + 0.05 * normal());
    } else {
      const bumps = 3 + Math.floor(u() * 6);
      const params = Array.from({ length: bumps }, () => [W * u(), H * u(), (Math.min(H, W) / 16) * (1 + 4 * u()), (u() < 0.5 ? -1 : 1) * (0.5 + 1.5 * u())] as const);
      const base = 2 * u() - 1;
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            let v = base;
            for (const [cx, cy, r, a] of params) v += a * gaussBlob(cx, cy, r, y, x);
            img[c * H * W + y * W + x] = clip(v);
          }
    }
  }
  return out;
}

export interface EvalClassifierResult {
  model: MLP;
  /** % of the real test images labelled with their class (argmax over every output, "none" included: a real digit called "none" is a miss) */
  testAccuracy: number;
  /** % of the real test images labelled "none" (0 without `reject`) */
  testNone: number;
  /** % of held-out synthetic non-class images (another seed) labelled "none" (NaN without `reject`) */
  heldOutNone: number;
}

/**
 * Train an evaluation classifier on `data` (plus, with `reject`, round(rejectFraction·N) synthetic
 * non-class images labelled `numClasses`); returns it with its accuracy on the real `test` images
 * and its "none" rates.
 */
export async function trainEvalClassifier(ctx: GpuContext, data: ImageSet, test: ImageSet, numClasses: number, o: EvalClassifierOptions = {}): Promise<EvalClassifierResult> {
  checkImageSet('trainEvalClassifier', data, numClasses);
  checkImageSet('trainEvalClassifier', test, numClasses);
  const reject = o.reject ?? true;
  const frac = o.rejectFraction ?? 0.15;
  if (reject && !(frac > 0 && frac <= 10)) throw new EngineError('trainEvalClassifier', `rejectFraction ${frac} must be in (0, 10]`);
  const model = makeEvalClassifier(ctx, data.image, numClasses, o);
  const bs = o.batchSize ?? 128;
  const d = data.image[0] * data.image[1] * data.image[2];
  const seed = o.seed ?? 0;
  const nReal = data.y.length;
  const nNone = reject ? Math.round(frac * nReal) : 0;
  const none = nonClassImages(nNone, data.image, deriveSeed(seed, 1, 0, 0));
  const total = nReal + nNone;
  const loader: EpochLoader<{ x: Float32Array; y: Int32Array }> = {
    numBatches: Math.floor(total / bs),
    async *batches(epoch, from = 0) {
      const perm = new Generator(deriveSeed(seed, 0x434c4600, epoch, 0)).permutation(total);
      for (let k = from; k < this.numBatches; k++) {
        const x = new Float32Array(bs * d);
        const y = new Int32Array(bs);
        for (let i = 0; i < bs; i++) {
          const j = perm[k * bs + i]!;
          if (j < nReal) {
            x.set(data.x.subarray(j * d, (j + 1) * d), i * d);
            y[i] = data.y[j]!;
          } else {
            x.set(none.subarray((j - nReal) * d, (j - nReal + 1) * d), i * d);
            y[i] = numClasses;
          }
        }
        yield { x, y };
      }
    },
  };
  if (loader.numBatches === 0) throw new EngineError('trainEvalClassifier', `${data.y.length} images are fewer than one batch`);
  const lr = o.lr ?? 2e-3;
  const epochs = o.epochs ?? 3;
  const optimizer = new Adam(model.parameters(), { lr });
  try {
    await train({
      ctx, model, optimizer, loader, epochs,
      schedule: cosineLr(lr, epochs * loader.numBatches), scheduleUnit: 'step',
      step: (b) => mean(crossEntropy(model.forward(tensor(ctx, b.x, [bs, d])), tensor(ctx, b.y, [bs]))),
      progress: false,
    });
  } finally {
    optimizer.dispose();
  }
  const { preds } = await classifierOutputs(ctx, model, test.x, test.image);
  let hit = 0;
  let noneHits = 0;
  preds.forEach((p, i) => {
    hit += p === test.y[i] ? 1 : 0;
    noneHits += reject && p === numClasses ? 1 : 0;
  });
  let heldOutNone = NaN;
  if (reject) {
    const nHeld = Math.max(NON_CLASS_KINDS.length * 20, Math.min(2000, nNone));
    const held = await classifierOutputs(ctx, model, nonClassImages(nHeld, data.image, deriveSeed(seed, 2, 0, 0)), data.image);
    heldOutNone = (100 * held.preds.filter((p) => p === numClasses).length) / nHeld;
  }
  return { model, testAccuracy: (100 * hit) / test.y.length, testNone: (100 * noneHits) / test.y.length, heldOutNone };
}
