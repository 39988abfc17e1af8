// Soak benchmark (a measurement, not a test): each unlearning method (SFR-on, FT, GA, RL, SalUn, BT,
// SCRUB) through runUnlearning, and the training loop (trainClassifier, with an evaluation every
// epoch), each for thousands of steps on a tiny model and synthetic data, sampling the buffer pool
// (live buffers and bytes, pooled bytes, buffers ever created) and the step time at intervals. Flat
// is the target: memory that grows step after step is a leak. Prints one summary table and writes
// every sample to bench/results/soak.json. It does not check what the methods learn, and it exports
// soak() so that bench/run-all.ts (which skips modules with exports) leaves this long run out.
//
//   npx tsx bench/soak.ts [--steps 2000] [--every 100] [--model mlp|resnet] [--only FT,train] [--out FILE]
//   npx tsx bench/soak.ts --scope-cost     (only: CPU cost of the pool's out-of-memory error scope)
//
// Letters: B batch, C classes, S image side.

import { parseArgs, printTable, writeJson } from './common.js';
import { createNodeContext } from '../src/gpu/node.js';
import type { GpuContext } from '../src/gpu/context.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { MLP } from '../src/models/mlp.js';
import { ResNet } from '../src/models/resnet.js';
import type { Module } from '../src/nn/module.js';
import { SGD } from '../src/nn/optim.js';
import { cosineLr } from '../src/nn/schedule.js';
import { trainClassifier } from '../src/nn/train.js';
import { runUnlearning, type MethodConfig, type MethodName } from '../src/unlearn/core/methods.js';
import { makeSplit } from '../src/unlearn/core/split.js';
import { classificationProblem } from '../src/unlearn/classification/task.js';
import { CIFAR10_PRESETS } from '../src/unlearn/classification/presets.js';
import { Generator } from '../src/util/rng.js';

const [B, C, S] = [16, 4, 8];
const N_TRAIN = 128; // 16 forget (1 batch), 112 remain (7 batches), 8 mixed batches per epoch
const N_FORGET = 16;

export interface SoakSample {
  step: number;
  liveBuffers: number;
  liveBytes: number;
  /** bytes the pool holds that no tensor uses: free lists plus buffers waiting for the GPU */
  pooledBytes: number;
  created: number;
  /** mean wall time per step since the previous sample */
  msPerStep: number;
}

export interface SoakResult {
  workload: string;
  steps: number;
  samples: SoakSample[];
}

/** n images [1, S, S] of C classes: a class-specific bright band plus noise (learnable, so losses stay finite). */
function synthetic(n: number, seed: number): ByteImageDataset {
  const g = new Generator(seed);
  const images = new Uint8Array(n * S * S);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = g.cpuInt(C);
    labels[i] = c;
    for (let p = 0; p < S * S; p++) {
      const inBand = Math.floor((Math.floor(p / S) * C) / S) === c;
      images[i * S * S + p] = Math.min(255, Math.floor((inBand ? 150 : 40) + 100 * g.cpuUniform()));
    }
  }
  return new ByteImageDataset(images, labels, [1, S, S], C);
}

/** Records pool statistics every `every` steps. */
class Sampler {
  readonly samples: SoakSample[] = [];
  private t = performance.now();
  private lastStep = 0;
  constructor(
    private readonly ctx: GpuContext,
    private readonly every: number,
  ) {}
  step(n: number): void {
    if (n === 0 || n % this.every !== 0 || n === this.lastStep) return;
    const now = performance.now();
    const s = this.ctx.stats();
    this.samples.push({
      step: n,
      liveBuffers: s.liveBuffers,
      liveBytes: s.liveBytes,
      pooledBytes: s.freeBytes + s.pendingBytes,
      created: s.created,
      msPerStep: (now - this.t) / (n - this.lastStep),
    });
    this.t = now;
    this.lastStep = n;
  }
}

/** Method settings for a long run: the CIFAR-10 presets with small learning rates (ascent must stay finite for thousands of steps). */
function methodConfig(name: MethodName, steps: number): MethodConfig {
  const base = CIFAR10_PRESETS[name];
  const remainBatches = (N_TRAIN - N_FORGET) / B;
  const mixedBatches = N_TRAIN / B;
  const slow = { ...base.optimizer, lr: Math.min(base.optimizer.lr, 1e-3) };
  switch (name) {
    case 'SFR-on': // one forget step every forgetFreq remain steps: steps ≈ iterations (1 + 1/forgetFreq)
      return { ...(base as Extract<MethodConfig, { method: 'SFR-on' }>), optimizer: slow, iterations: Math.ceil(steps / 1.2), alpha0: 1 };
    case 'GA':
      return { ...(base as Extract<MethodConfig, { method: 'GA' }>), optimizer: { ...slow, lr: 1e-5 }, epochs: steps }; // one forget batch per epoch
    case 'FT':
      return { ...(base as Extract<MethodConfig, { method: 'FT' }>), optimizer: slow, epochs: Math.ceil(steps / remainBatches) };
    case 'SCRUB': // max steps (forget) in the first msteps epochs, then remain steps
      return { ...(base as Extract<MethodConfig, { method: 'SCRUB' }>), epochs: Math.ceil(steps / remainBatches) };
    default: // RL, SalUn, BT over the mixed loader
      return { ...(base as MethodConfig), optimizer: slow, epochs: Math.ceil(steps / mixedBatches) } as MethodConfig;
  }
}

/** Run every workload; returns one SoakResult each. */
export async function soak(opts: { steps: number; every: number; model: 'mlp' | 'resnet'; only?: string[]; log?: (s: string) => void }): Promise<{ device: string; results: SoakResult[] }> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const ctx = await createNodeContext();
  const data = synthetic(N_TRAIN, 1);
  const test = synthetic(64, 2);
  const forgetIndices = Int32Array.from({ length: N_FORGET }, (_, i) => i);
  const makeModel = (seed: number): Module =>
    opts.model === 'resnet'
      ? new ResNet(ctx, { numClasses: C, inChannels: 1, width: 2, variant: 'cifar', seed })
      : new MLP(ctx, { sizes: [S * S, 32, 32, C], seed });
  const original = makeModel(1);
  const results: SoakResult[] = [];
  const workloads = ['train', 'SFR-on', 'FT', 'GA', 'RL', 'SalUn', 'BT', 'SCRUB'].filter((w) => !opts.only || opts.only.includes(w));
  try {
    for (const w of workloads) {
      await ctx.sync();
      ctx.pool.trim(); // each workload's pooled bytes are its own
      const sampler = new Sampler(ctx, opts.every);
      const t0 = performance.now();
      let steps = 0;
      if (w === 'train') {
        const model = makeModel(3);
        const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
        const loader = new DataLoader(data, { batchSize: B, shuffle: true, seed: 5 });
        const epochs = Math.ceil(opts.steps / loader.numBatches);
        await trainClassifier({
          ctx, model, optimizer, epochs, trainLoader: loader, testLoader: new DataLoader(test, { batchSize: 32 }),
          schedule: cosineLr(0.01, epochs), progress: false, readEvery: 4,
          onProgress: (p) => {
            steps = p.globalStep;
            if (p.kind === 'step' || p.kind === 'epoch') sampler.step(Math.floor(p.globalStep / opts.every) * opts.every);
          },
        });
        optimizer.dispose();
        model.dispose();
      } else {
        const mc = methodConfig(w as MethodName, opts.steps);
        const model = original.clone();
        const res = await runUnlearning(mc, {
          // loaders seeded 11/12/13 (forget/remain/mixed) from seed 0, as before
          problem: classificationProblem({ ctx, train: data, numClasses: C, split: makeSplit(forgetIndices, N_TRAIN), batchSize: B, seed: 0 }),
          model,
          original,
          makeFreshModel: () => makeModel(7),
          onStep: (s) => sampler.step(s + 1),
        });
        steps = res.steps;
        model.dispose();
      }
      await ctx.sync();
      results.push({ workload: w, steps, samples: sampler.samples });
      log(`${w}: ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    original.dispose();
    await ctx.close();
  }
  return { device: ctx.deviceName, results };
}

const median = (samples: SoakSample[]) => {
  const v = samples.map((x) => x.msPerStep).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)]! : NaN;
};

/**
 * CPU microseconds per call of createBuffer alone, of pushErrorScope + popErrorScope alone (its
 * promise awaited), and of both together, for small storage buffers: medians over `reps` batches of
 * `n`. Process CPU time (lavapipe's threads included), steadier than wall time on a shared machine.
 */
export async function scopeCost(n = 5000, reps = 5): Promise<{ device: string; createUs: number; scopeUs: number; scopedCreateUs: number }> {
  const ctx = await createNodeContext();
  const d = ctx.device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const runs: Record<'create' | 'scope' | 'both', number[]> = { create: [], scope: [], both: [] };
  for (let r = 0; r < reps; r++) {
    let c0 = cpu();
    const bufs: GPUBuffer[] = [];
    for (let i = 0; i < n; i++) bufs.push(d.createBuffer({ size: 1024, usage }));
    runs.create.push((cpu() - c0) / n);
    bufs.splice(0).forEach((b) => b.destroy());
    c0 = cpu();
    let pops: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      d.pushErrorScope('out-of-memory');
      pops.push(d.popErrorScope());
    }
    await Promise.all(pops);
    runs.scope.push((cpu() - c0) / n);
    c0 = cpu();
    pops = [];
    for (let i = 0; i < n; i++) {
      d.pushErrorScope('out-of-memory');
      bufs.push(d.createBuffer({ size: 1024, usage }));
      pops.push(d.popErrorScope());
    }
    await Promise.all(pops);
    runs.both.push((cpu() - c0) / n);
    bufs.splice(0).forEach((b) => b.destroy());
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const device = ctx.deviceName;
  await ctx.close();
  return { device, createUs: med(runs.create), scopeUs: med(runs.scope), scopedCreateUs: med(runs.both) };
}

/** Growth after warm-up: the last sample minus the largest value over the first half (≤ 0 is flat). */
function growth(samples: SoakSample[], key: 'liveBuffers' | 'liveBytes' | 'pooledBytes' | 'created'): number {
  const half = samples.slice(1, Math.max(2, Math.ceil(samples.length / 2))); // sample 0 is warm-up
  const last = samples[samples.length - 1]!;
  return last[key] - Math.max(...half.map((s) => s[key]));
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--scope-cost')) {
  const c = await scopeCost();
  console.log(`device: ${c.device}`);
  printTable(
    ['CPU µs per call (median of 5 x 5000)', 'createBuffer', 'push+pop out-of-memory scope', 'createBuffer inside the scope'],
    [['1 KiB storage buffer', c.createUs.toFixed(1), c.scopeUs.toFixed(1), c.scopedCreateUs.toFixed(1)]],
  );
  process.exit(0);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs('bench/results/soak.json');
  const steps = Number(args.get('steps') ?? (args.quick ? 400 : 2000));
  const every = Number(args.get('every') ?? Math.max(10, Math.round(steps / 20)));
  const model = (args.get('model') ?? 'mlp') as 'mlp' | 'resnet';
  const t0 = performance.now();
  const { device, results } = await soak({ steps, every, model, only: args.get('only')?.split(',') });
  console.log(`device: ${device}`);
  console.log(`model: ${model === 'mlp' ? `MLP ${S * S}-32-32-${C}` : `ResNet-18 width 2`} on ${S}x${S} images, batch ${B}; sampled every ${every} steps`);
  const kb = (b: number) => (b / 1024).toFixed(1);
  const rows = results.map((r) => {
    const s = r.samples;
    const [first, last] = [s[1] ?? s[0]!, s[s.length - 1]!];
    const h = Math.max(2, Math.ceil(s.length / 2));
    const flat = (['liveBuffers', 'liveBytes', 'created'] as const).every((k) => growth(s, k) <= 0);
    return [
      r.workload, r.steps, `${first.liveBuffers} → ${last.liveBuffers}`, `${kb(first.liveBytes)} → ${kb(last.liveBytes)}`,
      `${kb(first.pooledBytes)} → ${kb(last.pooledBytes)}`, `${first.created} → ${last.created}`,
      `${median(s.slice(1, h)).toFixed(1)} → ${median(s.slice(h)).toFixed(1)}`,
      `${growth(s, 'liveBuffers')} / ${kb(growth(s, 'liveBytes'))} / ${growth(s, 'created')}`, flat ? 'flat' : 'GROWS',
    ];
  });
  printTable(
    ['workload', 'steps', 'live buffers', 'live KiB', 'pooled KiB', 'buffers created', 'ms/step (median, 1st → 2nd half)', 'growth after warm-up (buffers / KiB / created)', 'verdict'],
    rows,
  );
  console.log(
    `(a → b: the second sample, after warm-up, → the last; growth: the last sample minus the largest of the first half; ` +
      `step time moves with the load of the shared machine; total ${((performance.now() - t0) / 60000).toFixed(1)} min)`,
  );
  writeJson(args.out, { device, model, steps, every, batch: B, image: [1, S, S], results });
  process.exit(0);
}
