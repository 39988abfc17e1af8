// What a real FID costs here: pytorch-fid's FID Inception (full width, 299x299, eval, no gradients;
// 2048 features, and its --dims 768 and 192, which stop the network early) against ResNet-18
// (ImageNet stem, 224x224) as the other feature network a user may bring, images/s
// of each in one process on random weights and inputs, interleaved, and the FID Inception's seconds
// for the diffusion demo's feature passes (its generated kept-class images and the real ones).
//
//   tsx bench/inception-fid.ts [--batch 8] [--min-time 3] [--quick] [--out bench/results/inception-fid.json]

import { parseArgs, setup, timeIt, printTable, writeJson, meta } from './common.js';
import { InceptionV3 } from '../src/models/inception.js';
import { ResNet } from '../src/models/resnet.js';
import { randn } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { demoConfig, fidBatchSize } from '../src/cli/diffusion-demo.js';
import { defaultMnistDir, loadMnist } from '../src/data/mnist-node.js';

const args = parseArgs('bench/results/inception-fid.json');
const quick = !!args.quick;
const B = Number(args.get('batch') ?? (quick ? 2 : fidBatchSize(299)));
const minTime = Number(args.get('min-time') ?? (quick ? 0.5 : 3));
const { ctx } = await setup(false);
console.log(`device: ${ctx.deviceName}; batch ${B}, eval, no grad`);
// one Inception serves all three rows (featuresAt stops at the block --dims names)
const inception = new InceptionV3(ctx, { fid: true });
const resnet = new ResNet(ctx, { variant: 'imagenet', numClasses: 1000 });
inception.eval();
resnet.eval();
const x299 = ctx.keep(randn(ctx, [B, 3, 299, 299], new Generator(1)));
const x224 = ctx.keep(randn(ctx, [B, 3, 224, 224], new Generator(1)));
const nets: Record<string, () => Tensor> = {
  'FID Inception 299': () => inception.featuresAt(x299, 2048),
  'FID Inception 299, 768 dims': () => inception.featuresAt(x299, 768),
  'FID Inception 299, 192 dims': () => inception.featuresAt(x299, 192),
  'ResNet-18 224': () => resnet.features(x224),
};
const ips: Record<string, number[]> = Object.fromEntries(Object.keys(nets).map((k) => [k, []]));
for (let rep = 0; rep < 2; rep++)
  for (const [name, feats] of Object.entries(nets)) {
    const t = await timeIt(
      async (iters) => {
        await ctx.scope(async () => {
          let y;
          for (let i = 0; i < iters; i++) y = ctx.noGrad(feats);
          await y!.read();
        });
      },
      { minTime },
    );
    ips[name]!.push(B / t.sec);
  }
const best = (k: string) => Math.max(...ips[k]!);
const rows = Object.keys(ips).map((k) => [k, ...ips[k]!.map((v) => v.toFixed(2))]);
rows.push(['Inception / ResNet', ...ips['FID Inception 299']!.map((v, i) => (v / ips['ResNet-18 224']![i]!).toFixed(2))]);
printTable(['network', 'images/s (1)', 'images/s (2)'], rows);
// the diffusion demo's default: fidPerClass generated images per kept digit per row, and the real
// kept-class test images once (MNIST's test set less the forgotten digit; 9,020 for digit 0)
const demo = demoConfig();
const perRow = demo.sample.fidPerClass * 9;
const mnist = defaultMnistDir();
const real = mnist ? loadMnist(mnist, 'test').labels.filter((y) => y !== demo.forgetClass).length : 9_020;
if (!mnist) console.log(`MNIST not found: assuming ${real} real kept-class test images`);
const ipsInc = best('FID Inception 299');
console.log(`FID Inception at ${ipsInc.toFixed(2)} images/s: ${(perRow / ipsInc).toFixed(0)} s per table row (${perRow} generated images), ${(real / ipsInc / 60).toFixed(0)} min once for the real kept-class MNIST test images`);
writeJson(args.out, { ...meta(ctx), benchmark: 'FID Inception (299) vs ResNet-18 (224) eval features', batch: B, imagesPerSec: ips, secondsPerDemoRow: perRow / ipsInc, minutesRealOnce: real / ipsInc / 60 });
inception.dispose();
resnet.dispose();
