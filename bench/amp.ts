// f32 vs f16 / mixed precision, side by side in one run: the f32 matmul (matmulRaw) against the f16
// matmul with f32 accumulation (matmulF16Raw, f16 operands already on the GPU, f32 output), and one
// training step of the MNIST MLP (784-256-128-10) and of a CIFAR ResNet-18 in f32 against the same step
// under autocast with a GradScaler (scaled backward, GPU inf/NaN check, one read-back per step).
// Ratios are f32 time / f16 time (> 1: the f16 path is faster). On lavapipe f16 is emulated by the
// CPU, so its speed there means little; the numbers that matter come from a real GPU (scripts/gpu-run.sh).
// Under autocast only linear/matmul run in f16: ResNet's convolutions stay f32 (only its fc is f16).
//
//   tsx bench/amp.ts [--out bench/results/amp.json] [--quick] [--shapes 256,512] [--mlp-batch 128]
//                    [--resnet-batch 8] [--width 16] [--no-resnet] [--min-time 1]
// A shape is N (square) or MxKxN.

import { parseArgs, setup, printTable, writeJson, meta, fmt, type Timing } from './common.js';
import { randn } from '../src/wgsl/fill.js';
import { matmulRaw } from '../src/wgsl/matmul.js';
import { matmulF16Raw } from '../src/wgsl/matmul_f16.js';
import { castRaw, hasF16 } from '../src/wgsl/cast.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { mean } from '../src/wgsl/reduce.js';
import { backward } from '../src/autograd/backward.js';
import { MLP } from '../src/models/mlp.js';
import { ResNet } from '../src/models/resnet.js';
import { SGD } from '../src/nn/optim.js';
import { GradScaler, autocast } from '../src/nn/amp.js';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/amp.json');
const quick = args.quick;
const shapes = (args.get('shapes') ?? (quick ? '256' : '256,512')).split(',').map((s) => {
  const p = s.split('x').map(Number);
  return p.length === 1 ? { M: p[0]!, K: p[0]!, N: p[0]! } : { M: p[0]!, K: p[1]!, N: p[2]! };
});
const minTime = Number(args.get('min-time') ?? (quick ? 0.5 : 1));
const mlpBatch = Number(args.get('mlp-batch') ?? 128);
const resnetBatch = Number(args.get('resnet-batch') ?? (quick ? 4 : 8));
const width = Number(args.get('width') ?? 16);

const { ctx, close } = await setup(false);
console.log(`device: ${ctx.deviceName}; shader-f16: ${hasF16(ctx)}`);
if (!hasF16(ctx)) {
  console.log("this device has no 'shader-f16': nothing to compare");
  await close();
  process.exit(0);
}
/**
 * Time two variants alternately (A B A B ..., `reps` each after one warm-up call of each), so load
 * from other jobs on a shared machine hits both alike. `run(iters)` issues iters calls and waits.
 * Returns median and fastest seconds per call and median process CPU seconds per call for each.
 */
async function timePair(runA: (iters: number) => Promise<void>, runB: (iters: number) => Promise<void>): Promise<[Timing, Timing]> {
  await runA(1);
  await runB(1);
  const t0 = performance.now();
  await runA(1);
  const one = (performance.now() - t0) / 1000;
  const iters = Math.max(1, Math.min(100, Math.round(minTime / 3 / Math.max(one, 1e-6))));
  const samples: [number[], number[]] = [[], []];
  const cpu: [number[], number[]] = [[], []];
  const start = performance.now();
  while (samples[0].length < 3 || (samples[0].length < 25 && (performance.now() - start) / 1000 < 2 * minTime)) {
    for (const [k, run] of [runA, runB].entries()) {
      const w0 = performance.now();
      const c0 = process.cpuUsage();
      await run(iters);
      const c = process.cpuUsage(c0);
      samples[k]!.push((performance.now() - w0) / 1000 / iters);
      cpu[k]!.push((c.user + c.system) / 1e6 / iters);
    }
  }
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
  const timing = (k: 0 | 1): Timing => ({ sec: med(samples[k]), best: Math.min(...samples[k]), cpu: med(cpu[k]), iters });
  return [timing(0), timing(1)];
}

const gen = new Generator(7);
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];

for (const { M, K, N } of shapes) {
  const a = ctx.keep(randn(ctx, [M, K], gen));
  const b = ctx.keep(randn(ctx, [K, N], gen));
  const a16 = ctx.keep(castRaw(a, 'f16'));
  const b16 = ctx.keep(castRaw(b, 'f16'));
  const calls = (fn: () => Tensor) => async (iters: number) => {
    let y: Tensor | null = null;
    for (let i = 0; i < iters; i++) {
      y?.dispose();
      y = fn();
    }
    await y!.read();
    y!.dispose();
  };
  const [t32, t16] = await timePair(calls(() => matmulRaw(a, b)), calls(() => matmulF16Raw(a16, b16)));
  const gflop = (2 * M * K * N) / 1e9;
  const name = `matmul ${M}x${K}x${N}`;
  rows.push([name, fmt(t32.sec * 1e3, 2), fmt(t16.sec * 1e3, 2), fmt(t32.best * 1e3, 2), fmt(t16.best * 1e3, 2), fmt(t32.sec / t16.sec, 2), fmt(t32.cpu / t16.cpu, 2)]);
  results.push({
    kind: 'matmul', M, K, N, f32Ms: t32.sec * 1e3, f16Ms: t16.sec * 1e3, f32BestMs: t32.best * 1e3, f16BestMs: t16.best * 1e3,
    f32CpuMs: t32.cpu * 1e3, f16CpuMs: t16.cpu * 1e3, f32Gflops: gflop / t32.sec, f16Gflops: gflop / t16.sec, ratio: t32.sec / t16.sec, cpuRatio: t32.cpu / t16.cpu,
  });
  for (const t of [a, b, a16, b16]) t.dispose();
}

/** Time one SGD step of `model` on (x, y), f32 or under autocast with a GradScaler. */
async function stepTimes(name: string, model: Module, x: Tensor, y: Tensor) {
  const opt = new SGD(model.trainableParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 }); // as bench/resnet.ts and PyTorch's
  const scaler = new GradScaler(ctx);
  const f32Step = () =>
    ctx.scope(() => {
      opt.zeroGrad();
      const l = mean(crossEntropy(model.forward(x) as Tensor, y));
      backward(l);
      opt.step();
      return l;
    });
  const mixedStep = () =>
    ctx.scope(async () => {
      opt.zeroGrad();
      const l = autocast(ctx, () => mean(crossEntropy(model.forward(x) as Tensor, y)));
      backward(scaler.scaleLoss(l));
      await scaler.step(opt); // the one read-back per step
      scaler.update();
      return l;
    });
  const steps = (step: () => Tensor | Promise<Tensor>) => async (iters: number) => {
    let last: Tensor | null = null;
    for (let i = 0; i < iters; i++) {
      last?.dispose();
      last = await step();
    }
    await last!.item();
    last!.dispose();
  };
  const [t32, tmx] = await timePair(steps(f32Step), steps(mixedStep));
  rows.push([name, fmt(t32.sec * 1e3, 1), fmt(tmx.sec * 1e3, 1), fmt(t32.best * 1e3, 1), fmt(tmx.best * 1e3, 1), fmt(t32.sec / tmx.sec, 2), fmt(t32.cpu / tmx.cpu, 2)]);
  results.push({
    kind: 'train-step', name, f32Ms: t32.sec * 1e3, mixedMs: tmx.sec * 1e3, f32BestMs: t32.best * 1e3, mixedBestMs: tmx.best * 1e3,
    f32CpuMs: t32.cpu * 1e3, mixedCpuMs: tmx.cpu * 1e3, ratio: t32.sec / tmx.sec, cpuRatio: t32.cpu / tmx.cpu, skippedSteps: scaler.skippedSteps,
  });
  opt.dispose();
  scaler.dispose();
}

{
  const model = new MLP(ctx, { sizes: [784, 256, 128, 10], seed: 1 });
  const x = ctx.keep(randn(ctx, [mlpBatch, 784], gen));
  const y = ctx.keep(labelsTensor(ctx, Int32Array.from({ length: mlpBatch }, (_, i) => i % 10), 10));
  await stepTimes(`MNIST MLP step batch ${mlpBatch}`, model, x, y);
  x.dispose();
  y.dispose();
  model.dispose();
}
if (!args.has('no-resnet')) {
  const model = new ResNet(ctx, { numClasses: 10, inChannels: 3, width, variant: 'cifar', seed: 0 });
  const x = ctx.keep(randn(ctx, [resnetBatch, 3, 32, 32], gen));
  const y = ctx.keep(labelsTensor(ctx, Int32Array.from({ length: resnetBatch }, (_, i) => i % 10), 10));
  await stepTimes(`ResNet-18 cifar w${width} step batch ${resnetBatch} (convs f32)`, model, x, y);
  x.dispose();
  y.dispose();
  model.dispose();
}

// median wall ms of alternating repeats, fastest repeat, and the ratio of process CPU time (lavapipe's threads included),
// which a shared CPU machine disturbs much less than wall time
printTable(['case', 'f32 ms', 'f16/mixed ms', 'f32 best', 'f16/mixed best', 'f32/f16 wall', 'f32/f16 CPU'], rows);
writeJson(args.out, { ...meta(ctx), note: 'ratio = f32 time / f16 time (> 1: f16 faster), wall (median) and process CPU time; lavapipe emulates f16 on the CPU', results });
await close();
