// Where a small DDPM UNet's time goes (src/models/diffusion/unet.ts): each piece of the forward
// (conv_in, every ResNet block, attention block, down/upsample, the output head) timed alone, forward
// (no grad) and forward + backward (of the sum of its output, inputs requiring grad), and inside one
// ResNet block its ops alone (3x3 conv, GroupNorm+SiLU, the conditioning projection, dropout). The
// pieces' times summed against the whole model's show what the rest (concat, embeddings) costs.
// A profiler by isolation, not by GPU timestamps (lavapipe has none); ms are medians of repeats.
//
//   tsx bench/unet-ops.ts [--batch 32] [--unet '{"ch":16}'] [--min-time 1] [--out bench/results/unet-ops.json]
//
// Letters: N batch, C channels, S image size.

import { parseArgs, setup, timeIt, printTable, writeJson, meta, fmt } from './common.js';
import { ConditionalUNet, type ResnetBlock, type UNetOptions } from '../src/models/diffusion/unet.js';
import { timestepsTensor, classesTensor, groupNormSilu } from '../src/models/diffusion/common.js';
import { add, backward, concat, conv2d, dropout, randn, reshape, requireGrad, sum } from '../src/ops/index.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/unet-ops.json');
const B = Number(args.get('batch') ?? 32);
const minTime = Number(args.get('min-time') ?? 1);
const opts: UNetOptions = {
  ch: 16, chMult: [1, 2], numResBlocks: 1, attnResolutions: [], dropout: 0.1, inChannels: 1, outCh: 1, imageSize: 16, numGroups: 8, numClasses: 10, seed: 0,
  ...(JSON.parse(args.get('unet') ?? '{}') as UNetOptions),
};
const { ctx, close } = await setup(false);
console.log(`device: ${ctx.deviceName}; batch ${B}; UNet ${JSON.stringify(opts)}`);
const model = new ConditionalUNet(ctx, opts);
model.train();
const gen = new Generator(3);
const keep = (t: Tensor) => ctx.keep(t);

/** Median ms of f forward-only and of forward + backward (inputs requiring grad). */
async function time(f: (xs: Tensor[]) => Tensor, inputs: Tensor[]): Promise<{ fwd: number; step: number }> {
  const run = (train: boolean) => async (iters: number) => {
    let last: Tensor | null = null;
    for (let i = 0; i < iters; i++) {
      last?.dispose();
      last = ctx.scope(() => {
        if (!train) return ctx.noGrad(() => sum(f(inputs)));
        model.zeroGrad();
        const xs = inputs.map((x) => (x.dtype === 'f32' ? requireGrad(x) : x));
        const l = sum(f(xs));
        backward(l);
        return l;
      });
    }
    await last!.item();
    last!.dispose();
  };
  const fwd = await timeIt(run(false), { minTime, minReps: 3 });
  const step = await timeIt(run(true), { minTime, minReps: 3 });
  return { fwd: fwd.sec * 1000, step: step.sec * 1000 };
}

const S = opts.imageSize!;
const x = keep(randn(ctx, [B, opts.inChannels!, S, S], gen));
const t = keep(timestepsTensor(ctx, Array.from({ length: B }, () => gen.cpuInt(1000)), 1000));
const y = keep(classesTensor(ctx, Array.from({ length: B }, () => gen.cpuInt(11)), 10));
const cAct = keep(randn(ctx, [B, 8 * opts.ch!], gen));

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
const record = (name: string, shape: string, count: number, r: { fwd: number; step: number }) => {
  rows.push([name, shape, count, fmt(r.fwd, 1), fmt(r.step, 1), fmt(r.fwd * count, 0), fmt(r.step * count, 0)]);
  results.push({ name, shape, count, fwdMs: r.fwd, stepMs: r.step });
  console.log(`${name} ${shape}: fwd ${fmt(r.fwd, 1)} ms, fwd+bwd ${fmt(r.step, 1)} ms`);
};

const whole = await time(([a]) => model.forward(a!, t, y), [x]);
record('whole model', `[${B},${opts.inChannels},${S},${S}]`, 1, whole);

// the pieces, in the forward's order, each with the input the forward gives it
const inputsOf = new Map<string, { piece: (xs: Tensor[]) => Tensor; input: Tensor[]; count: number }>();
const add1 = (name: string, piece: (xs: Tensor[]) => Tensor, input: Tensor[]) => {
  const shape = `${name} [${input[0]!.shape.join(',')}]`;
  const hit = inputsOf.get(shape);
  if (hit) hit.count++;
  else inputsOf.set(shape, { piece, input: input.map(keep), count: 1 });
};
ctx.noGrad(() => {
  const stack: Tensor[] = [];
  add1('conv_in', ([a]) => model.conv_in.forward(a!), [x]);
  stack.push(keep(model.conv_in.forward(x)));
  const blk = (b: ResnetBlock) => ([a]: Tensor[]) => b.forward(a!, cAct);
  for (const level of model.downLevels) {
    level.block.items.forEach((b, j) => {
      add1('resblock', blk(b), [stack.at(-1)!]);
      let h = keep(b.forward(stack.at(-1)!, cAct));
      if (level.attn.length) {
        const at = level.attn.at(j);
        add1('attnblock', ([a]) => at.forward(a!), [h]);
        h = keep(at.forward(h));
      }
      stack.push(h);
    });
    if (level.resample) {
      const r = level.resample;
      add1('downsample', ([a]) => r.forward(a!), [stack.at(-1)!]);
      stack.push(keep(r.forward(stack.at(-1)!)));
    }
  }
  let h = stack.at(-1)!;
  add1('resblock', blk(model.mid.block_1), [h]);
  h = keep(model.mid.block_1.forward(h, cAct));
  add1('attnblock', ([a]) => model.mid.attn_1.forward(a!), [h]);
  h = keep(model.mid.attn_1.forward(h));
  add1('resblock', blk(model.mid.block_2), [h]);
  h = keep(model.mid.block_2.forward(h, cAct));
  for (let i = model.upLevels.length - 1; i >= 0; i--) {
    const level = model.upLevels[i]!;
    level.block.items.forEach((b, j) => {
      const skip = stack.pop()!;
      add1('concat', ([a, s]) => concat([a!, s!], 1), [h, skip]);
      const inp = keep(concat([h, skip], 1));
      add1('resblock', blk(b), [inp]);
      h = keep(b.forward(inp, cAct));
      if (level.attn.length) {
        const at = level.attn.at(j);
        add1('attnblock', ([a]) => at.forward(a!), [h]);
        h = keep(at.forward(h));
      }
    });
    if (level.resample) {
      const r = level.resample;
      add1('upsample', ([a]) => r.forward(a!), [h]);
      h = keep(r.forward(h));
    }
  }
  add1('head (GN+SiLU, conv_out)', ([a]) => model.conv_out.forward(groupNormSilu(model.norm_out, a!)), [h]);
});
let sumFwd = 0;
let sumStep = 0;
for (const [shape, p] of inputsOf) {
  const r = await time(p.piece, p.input);
  sumFwd += r.fwd * p.count;
  sumStep += r.step * p.count;
  record(shape.split(' ')[0]!, shape.split(' ')[1]!, p.count, r);
}
rows.push(['pieces summed', '', '', '', '', fmt(sumFwd, 0), fmt(sumStep, 0)]);

// the ops of the first full-resolution ResNet block, alone
const b0 = model.downLevels[0]!.block.at(0);
const C = b0.config.outCh;
const h16 = keep(randn(ctx, [B, C, S, S], gen));
record('op conv3x3', `[${B},${C},${S},${S}]->${C}`, 1, await time(([a]) => conv2d(a!, b0.conv2.weight, b0.conv2.bias ?? undefined, { padding: 1 }), [h16]));
record('op groupNorm+SiLU', `[${B},${C},${S},${S}]`, 1, await time(([a]) => groupNormSilu(b0.norm2, a!), [h16]));
record('op cond proj+add', `[${B},${8 * opts.ch!}]->[${B},${C},1,1]`, 1, await time(([a]) => add(a!, reshape(b0.temb_cemb_proj.forward(cAct), [B, C, 1, 1])), [h16]));
record('op dropout', `[${B},${C},${S},${S}]`, 1, await time(([a]) => dropout(a!, 0.1, gen, true), [h16]));
record('op add', `[${B},${C},${S},${S}]`, 1, await time(([a]) => add(a!, h16), [h16]));

printTable(['piece', 'input', 'count', 'fwd ms', 'fwd+bwd ms', 'fwd ms × count', 'fwd+bwd ms × count'], rows);
writeJson(args.out, { ...meta(ctx), batch: B, unet: opts, results });
await close();
process.exit(0);
