// ResNet-18 training throughput (images/s): one full SGD step (forward, mean CE, backward, fused
// momentum update) recorded into one submit, CIFAR variant at 32x32, full width by default. The same
// file runs on lavapipe and on a real GPU; bench/resnet_torch.py measures PyTorch's ResNet-18 step
// on the same card for the ratio. Flags: --batch 32,128 --width 64 --steps N --out JSON.

import { parseArgs, setup, timeIt, printTable, writeJson, meta, fmt } from './common.js';
import { ResNet } from '../src/models/resnet.js';
import { SGD } from '../src/nn/optim.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { mean } from '../src/wgsl/reduce.js';
import { randn } from '../src/wgsl/fill.js';
import { Generator } from '../src/util/rng.js';
import { backward } from '../src/autograd/backward.js';

const args = parseArgs('bench/results/resnet.json');
const { ctx, close } = await setup(false);
const batches = (args.get('batch') ?? (args.quick ? '8' : '32,128')).split(',').map(Number);
const width = Number(args.get('width') ?? (args.quick ? 16 : 64));
const size = Number(args.get('size') ?? 32);
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
for (const B of batches) {
  const model = new ResNet(ctx, { numClasses: 10, inChannels: 3, width, variant: 'cifar', seed: 0 });
  const opt = new SGD(model.trainableParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const gen = new Generator(1);
  const x = ctx.keep(randn(ctx, [B, 3, size, size], gen));
  const y = ctx.keep(labelsTensor(ctx, Int32Array.from({ length: B }, (_, i) => i % 10), 10));
  const stepOnce = () =>
    ctx.scope(() => {
      opt.zeroGrad();
      const l = mean(crossEntropy(model.forward(x), y));
      backward(l);
      opt.step();
      return l;
    });
  const t = await timeIt(
    async (iters) => {
      let last = null;
      for (let i = 0; i < iters; i++) {
        last?.dispose();
        last = stepOnce();
      }
      await last!.item();
      last!.dispose();
    },
    { minTime: args.quick ? 2 : 5, minReps: 3 },
  );
  const ips = B / t.sec;
  // training FLOPs ≈ 3 x forward; forward of CIFAR ResNet-18 at width 64 is 0.556 GFLOP per image
  const fwdGflop = 0.556 * (width / 64) ** 2 * (size / 32) ** 2;
  rows.push([`resnet18-cifar w${width} ${size}x${size}`, B, fmt(t.sec * 1000, 1), fmt(ips, 1), fmt((3 * fwdGflop * ips) / 1000, 3)]);
  results.push({ batch: B, width, size, msPerStep: t.sec * 1000, bestMs: t.best * 1000, imagesPerSec: ips, approxTflops: (3 * fwdGflop * ips) / 1000 });
  x.dispose();
  y.dispose();
  opt.dispose();
  model.dispose();
}
console.log(`device: ${ctx.deviceName}`);
printTable(['model', 'batch', 'ms/step', 'images/s', '≈TFLOP/s'], rows);
writeJson(args.out, { ...meta(ctx), results });
await close();
process.exit(0);
