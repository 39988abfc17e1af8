// ResNet-18 inference (eval mode, no gradients), images/s: batch norm folded into the convolutions with
// the residual add and ReLU in the GEMM epilogue (ResNet.fuseEval = true) against the separate
// conv / batch-norm / add / relu passes, in one process on the same weights and inputs, interleaved.
// What every evaluation of the unlearning metrics runs (accuracies, MIA features).
//
//   tsx bench/resnet-eval.ts [--batch 64] [--width 64] [--min-time 2] [--out bench/results/resnet-eval.json]

import { parseArgs, setup, timeIt, printTable, writeJson, meta } from './common.js';
import { ResNet } from '../src/models/resnet.js';
import { randn } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/resnet-eval.json');
const B = Number(args.get('batch') ?? 64);
const width = Number(args.get('width') ?? 64);
const minTime = Number(args.get('min-time') ?? 2);
const { ctx } = await setup(false);
console.log(`device: ${ctx.deviceName}; ResNet-18 width ${width}, CIFAR stem, batch ${B} of 3x32x32, eval, no grad`);
const model = new ResNet(ctx, { width, numClasses: 10 });
model.eval();
const x = ctx.keep(randn(ctx, [B, 3, 32, 32], new Generator(1)));
const run = (fuse: boolean) => async (iters: number) => {
  model.fuseEval = fuse;
  await ctx.scope(async () => {
    let y;
    for (let i = 0; i < iters; i++) y = ctx.noGrad(() => model.forward(x));
    await y!.read();
  });
};
const out: Record<string, number[]> = { fused: [], apart: [] };
const a = await ctx.scope(async () => { model.fuseEval = true; return ctx.noGrad(() => model.forward(x)).read(); });
const b = await ctx.scope(async () => { model.fuseEval = false; return ctx.noGrad(() => model.forward(x)).read(); });
let d = 0;
for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + 1e-3));
for (let rep = 0; rep < 2; rep++)
  for (const fuse of [true, false]) {
    const t = await timeIt(run(fuse), { minTime });
    out[fuse ? 'fused' : 'apart']!.push(B / t.sec);
  }
const rows = (['fused', 'apart'] as const).map((k) => [k, ...out[k]!.map((v) => v.toFixed(1))]);
rows.push(['fused/apart', ...out.fused!.map((v, i) => (v / out.apart![i]!).toFixed(2))]);
printTable(['path', 'images/s (1)', 'images/s (2)'], rows);
console.log(`largest relative difference of the logits: ${d.toExponential(1)}`);
writeJson(args.out, { ...meta(ctx), benchmark: 'resnet18 eval forward, folded vs separate', batch: B, width, imagesPerSec: out, maxRelDiff: d });
