// The evaluation classifier of the generation metrics (metrics.ts): an MLP trained here on the real
// training images (the same [−1, 1] images the diffusion model sees), with Adam and a per-step
// cosine schedule on the shared loop. Its penultimate layer is the feature space of the in-domain
// FID. Browser-safe; the caller caches the weights.
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

export interface EvalClassifierOptions {
  /** Hidden widths (default [256, 128]: the 128-wide ReLU layer is the FID feature space). */
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
}

export function makeEvalClassifier(ctx: GpuContext, image: readonly number[], numClasses: number, o: EvalClassifierOptions = {}): MLP {
  const d = image.reduce((a, b) => a * b, 1);
  return new MLP(ctx, { sizes: [d, ...(o.hidden ?? [256, 128]), numClasses], seed: o.seed ?? 0 });
}

/** Train an evaluation classifier on `data`; returns it and its accuracy (%) on `test`. */
export async function trainEvalClassifier(ctx: GpuContext, data: ImageSet, test: ImageSet, numClasses: number, o: EvalClassifierOptions = {}): Promise<{ model: MLP; testAccuracy: number }> {
  checkImageSet('trainEvalClassifier', data, numClasses);
  const model = makeEvalClassifier(ctx, data.image, numClasses, o);
  const bs = o.batchSize ?? 128;
  const d = data.image[0] * data.image[1] * data.image[2];
  const seed = o.seed ?? 0;
  const loader: EpochLoader<{ x: Float32Array; y: Int32Array }> = {
    numBatches: Math.floor(data.y.length / bs),
    async *batches(epoch, from = 0) {
      const perm = new Generator(deriveSeed(seed, 0x434c4600, epoch, 0)).permutation(data.y.length);
      for (let k = from; k < this.numBatches; k++) {
        const x = new Float32Array(bs * d);
        const y = new Int32Array(bs);
        for (let i = 0; i < bs; i++) {
          const j = perm[k * bs + i]!;
          x.set(data.x.subarray(j * d, (j + 1) * d), i * d);
          y[i] = data.y[j]!;
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
  preds.forEach((p, i) => (hit += p === test.y[i] ? 1 : 0));
  return { model, testAccuracy: (100 * hit) / test.y.length };
}
