// How many DDPM pretraining steps the diffusion demo's model needs before its samples are digits: trains
// the demo's default model (or --model JSON {arch, options}) on MNIST 16x16 with the demo's batch,
// Adam at a constant lr and an EMA, and at each milestone writes a grid (rows = digits 0-9, columns =
// seeds; DDIM, w = 2, x̂₀ unclamped and clamped) with the loss and the wall time so far. Training
// resumes from its checkpoint between milestones. Caveat: when a step budget ended epoch 0 early, the
// training loop (nn/loop.ts) resumes a larger budget one batch per "epoch" (each the first batch of a
// fresh permutation: still uniformly random batches), so the loss after the first milestone is that
// of the last single batch, not an epoch mean. Not a test: look at the grids.
//
//   tsx bench/diffusion-pretrain-probe.ts [--milestones 200,400,800] [--quick: 50] [--lr 1e-3] [--ema 0.995]
//        [--model '{"arch":"ddpm-unet","options":{...}}'] [--out bench/results/diffusion-pretrain-probe.json]

import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs, setup, writeJson, meta, printTable, fmt } from './common.js';
import { demoConfig, loadDiffusionData, modelOptionsForData } from '../src/cli/diffusion-demo.js';
import { architecture } from '../src/models/registry.js';
import { MlpDenoiser } from '../src/models/diffusion/mlp-denoiser.js';
import { DiffusionSchedule, type EpsModel } from '../src/models/diffusion/process.js';
import { trainDiffusion } from '../src/models/diffusion/train.js';
import { sampleImages } from '../src/models/diffusion/samplers.js';
import { nodeCheckpointIO } from '../src/nn/checkpoint-node.js';
import { writeGridPng } from '../src/unlearn/diffusion/report-node.js';

const args = parseArgs('bench/results/diffusion-pretrain-probe.json');
const milestones = (args.get('milestones') ?? (args.quick ? '50' : '200,400,800')).split(',').map(Number);
const lr = Number(args.get('lr') ?? 1e-3);
const emaDecay = Number(args.get('ema') ?? 0.995);
const cfg = demoConfig('unused');
const modelCfg = args.get('model') ? (JSON.parse(args.get('model')!) as typeof cfg.model) : cfg.model;
const { ctx, close } = await setup(false);
const { train } = await loadDiffusionData(cfg.data);
const image = train.image;
const K = 10;
const options = modelOptionsForData(modelCfg, image, K, cfg.T);
const model = (
  modelCfg.arch === 'mlp-denoiser'
    ? new MlpDenoiser(ctx, { image: [image[0], image[1], image[2]], numClasses: K, T: cfg.T, seed: 0, ...options })
    : architecture(modelCfg.arch, options).build(ctx, { ...options, seed: 0 })
) as EpsModel;
const sched = new DiffusionSchedule({ T: cfg.T });
const dir = join(dirname(args.out), basename(args.out, '.json')); // the grids (and the checkpoint, deleted at the end)
mkdirSync(dir, { recursive: true });
const ckpt = join(dir, 'probe-ckpt.safetensors');
console.log(`device: ${ctx.deviceName}; ${modelCfg.arch} ${JSON.stringify(options)}; batch ${cfg.pretrain.batchSize}, lr ${lr} constant, EMA ${emaDecay}`);
const results: Record<string, unknown>[] = [];
const t0 = performance.now();
let sampleMs = 0;
for (const steps of milestones) {
  const r = await trainDiffusion({
    ctx, model, sched, data: train, numClasses: K, steps, batchSize: cfg.pretrain.batchSize, lr, clip: 1, emaDecay, schedule: 'constant', seed: 0,
    checkpoint: { path: ckpt, io: nodeCheckpointIO(), everyEpochs: 1, everySteps: 100, resume: true },
    progress: true,
  });
  const trainSec = (performance.now() - t0 - sampleMs) / 1000;
  const s0 = performance.now();
  // sample from the EMA weights on a copy, so training resumes from the raw weights
  const ema = model.clone() as EpsModel;
  r.ema!.copyTo(ema);
  r.ema!.dispose();
  ema.eval();
  const classes = Array.from({ length: K }, (_, k) => new Array<number>(6).fill(k)).flat();
  const seeds = Array.from({ length: K }, () => Array.from({ length: 6 }, (_, c) => 3_000_000 + c)).flat();
  const grids: string[] = [];
  for (const clip of [false, true]) {
    const x = await sampleImages(ctx, ema, sched, { classes, seeds, image, numClasses: K, steps: 10, guidance: 2, clipDenoised: clip, batchSize: 128 });
    const name = join(dir, `steps${steps}-${clip ? 'clamped' : 'unclamped'}.png`);
    await writeGridPng(name, x, [image[0], image[1], image[2]], K, 6, 3);
    grids.push(name);
  }
  ema.dispose();
  sampleMs += performance.now() - s0;
  console.log(`${steps} steps: loss ${r.lastLoss.toFixed(2)}, ${trainSec.toFixed(0)} s of training so far; grids ${grids.join(', ')}`);
  results.push({ steps, lastLoss: r.lastLoss, trainSeconds: trainSec, grids });
}
rmSync(ckpt, { force: true });
printTable(
  ['steps', 'training s', 'loss', 'grids'],
  results.map((r) => [r.steps as number, fmt(r.trainSeconds as number, 0), fmt(r.lastLoss as number, 2), (r.grids as string[]).join(', ')]),
);
writeJson(args.out, { ...meta(ctx), model: { arch: modelCfg.arch, options }, batch: cfg.pretrain.batchSize, lr, emaDecay, results });
await close();
process.exit(0);
