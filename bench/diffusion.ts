// Diffusion noise predictors: the DDPM UNet (src/models/diffusion/unet.ts) and DiT (dit.ts) at small
// configurations, forward (no grad) and one training step (forward, MSE against a noise target,
// backward, Adam) in ms, images/s, process CPU seconds per step (lavapipe's threads included; moves
// less than wall time on a shared machine) and the step/forward ratio, side by side in one run. Timesteps and
// classes are random per batch (fixed across repeats); class = numClasses (null) for a quarter.
//
//   tsx bench/diffusion.ts [--out bench/results/diffusion.json] [--quick] [--batch 16]
//                          [--models unet-mnist,dit-mnist,unet-cifar,dit-cifar]
//                          [--unet16 '{"ch":16,"attnResolutions":[]}',...]   (extra UNets for MNIST 16x16)
// The unet16-* rows are the candidates of the diffusion demo's default model (1x16x16, chMult [1,2],
// 1 res block; the mid block always has attention at 8x8); --unet16 adds ad-hoc ones (JSON objects
// over those defaults, separated by ';').

import { parseArgs, setup, timeIt, printTable, writeJson, meta, fmt } from './common.js';
import { ConditionalUNet, type UNetOptions } from '../src/models/diffusion/unet.js';
import { DiT, type DiTOptions } from '../src/models/diffusion/dit.js';
import { timestepsTensor, classesTensor } from '../src/models/diffusion/common.js';
import { Adam } from '../src/nn/optim.js';
import { randn, sub, square, mean, backward } from '../src/ops/index.js';
import type { Tensor } from '../src/autograd/tensor.js';
import type { GpuContext } from '../src/gpu/context.js';
import { Generator } from '../src/util/rng.js';

type Noise = ConditionalUNet | DiT;
interface Config {
  name: string;
  what: string;
  C: number;
  S: number;
  build: (ctx: GpuContext) => Noise;
}
const unet = (o: UNetOptions) => (ctx: GpuContext) => new ConditionalUNet(ctx, { numClasses: 10, seed: 0, ...o });
const dit = (o: DiTOptions) => (ctx: GpuContext) => new DiT(ctx, { numClasses: 10, learnSigma: false, seed: 0, ...o });
const CONFIGS: Config[] = [
  { name: 'unet-mnist', what: 'UNet ch32 [1,2,2] 1 blk attn@14 gn8, 1x28x28', C: 1, S: 28, build: unet({ ch: 32, chMult: [1, 2, 2], numResBlocks: 1, attnResolutions: [14], dropout: 0.1, inChannels: 1, outCh: 1, imageSize: 28, numGroups: 8 }) },
  { name: 'dit-mnist', what: 'DiT p4 D128 depth6 4 heads, 1x28x28', C: 1, S: 28, build: dit({ inputSize: 28, patchSize: 4, inChannels: 1, hiddenSize: 128, depth: 6, numHeads: 4 }) },
  { name: 'unet-cifar', what: 'UNet ch64 [1,2,2,2] 2 blk attn@16 gn32, 3x32x32', C: 3, S: 32, build: unet({ ch: 64, chMult: [1, 2, 2, 2], numResBlocks: 2, attnResolutions: [16], dropout: 0.1, imageSize: 32, numGroups: 32 }) },
  { name: 'dit-cifar', what: 'DiT-S/4-like p4 D384 depth12 6 heads, 3x32x32', C: 3, S: 32, build: dit({ inputSize: 32, patchSize: 4, inChannels: 3, hiddenSize: 384, depth: 12, numHeads: 6 }) },
  ...[8, 16, 24, 32].flatMap((ch) =>
    [[], [8]].map((attn) => unet16(`unet16-ch${ch}${attn.length ? '-a8' : ''}`, { ch, attnResolutions: attn })),
  ),
];

/** A UNet for MNIST at 16x16 over the demo's defaults (chMult [1,2], 1 res block, GroupNorm 8 or fewer groups). */
function unet16(name: string, o: UNetOptions): Config {
  const full: UNetOptions = { chMult: [1, 2], numResBlocks: 1, dropout: 0.1, inChannels: 1, outCh: 1, imageSize: 16, numGroups: Math.min(8, (o.ch ?? 16) / 2), ...o };
  return { name, what: `UNet ${JSON.stringify(o)} gn${full.numGroups}, 1x16x16`, C: 1, S: 16, build: unet(full) };
}

const args = parseArgs('bench/results/diffusion.json');
const B = Number(args.get('batch') ?? (args.quick ? 4 : 16));
const wanted = (args.get('models') ?? (args.quick ? 'unet-mnist,dit-mnist' : 'unet-mnist,dit-mnist,unet-cifar,dit-cifar')).split(',');
for (const [i, j] of (args.get('unet16') ?? '').split(';').filter(Boolean).entries()) {
  CONFIGS.push(unet16(`unet16-x${i}`, JSON.parse(j) as UNetOptions));
  wanted.push(`unet16-x${i}`);
}
const minTime = args.quick ? 1 : 3;
const { ctx, close } = await setup(false);
console.log(`device: ${ctx.deviceName}; batch ${B}`);
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
for (const c of CONFIGS.filter((k) => wanted.includes(k.name))) {
  const model = c.build(ctx);
  const opt = new Adam(model.parameters(), { lr: 1e-4 });
  const gen = new Generator(1);
  const x = ctx.keep(randn(ctx, [B, c.C, c.S, c.S], gen));
  const target = ctx.keep(randn(ctx, [B, c.C, c.S, c.S], gen));
  const t = ctx.keep(timestepsTensor(ctx, Array.from({ length: B }, () => gen.cpuInt(1000)), 1000));
  const y = ctx.keep(classesTensor(ctx, Array.from({ length: B }, (_, i) => (i % 4 === 3 ? 10 : gen.cpuInt(10))), 10));
  const run = (train: boolean) => async (iters: number) => {
    let last: Tensor | null = null;
    for (let i = 0; i < iters; i++) {
      last?.dispose();
      last = ctx.scope(() => {
        if (!train) return ctx.noGrad(() => mean(model.forward(x, t, y)));
        opt.zeroGrad();
        const l = mean(square(sub(model.forward(x, t, y), target)));
        backward(l);
        opt.step();
        return l;
      });
    }
    await last!.item();
    last!.dispose();
  };
  model.eval();
  const fwd = await timeIt(run(false), { minTime, minReps: 3 });
  model.train();
  const step = await timeIt(run(true), { minTime, minReps: 3 });
  const params = model.numParameters();
  rows.push([c.name, c.what, (params / 1e6).toFixed(2), fmt(fwd.sec * 1000, 0), fmt(step.sec * 1000, 0), fmt(B / step.sec, 1), fmt(step.cpu, 1), fmt(step.sec / fwd.sec, 2)]);
  results.push({ model: c.name, config: c.what, batch: B, params, forwardMs: fwd.sec * 1000, forwardBestMs: fwd.best * 1000, stepMs: step.sec * 1000, stepBestMs: step.best * 1000, stepCpuSec: step.cpu, forwardCpuSec: fwd.cpu, trainImagesPerSec: B / step.sec, stepOverForward: step.sec / fwd.sec });
  console.log(`${c.name}: forward ${fmt(fwd.sec * 1000, 0)} ms, train step ${fmt(step.sec * 1000, 0)} ms (${params} parameters)`);
  for (const v of [x, target, t, y]) v.dispose();
  opt.dispose();
  model.dispose();
}
printTable(['model', 'configuration', 'M params', 'forward ms', 'train step ms', 'train img/s', 'step CPU s', 'step/fwd'], rows);
writeJson(args.out, { ...meta(ctx), batch: B, results });
await close();
process.exit(0);
