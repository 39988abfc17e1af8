// conv2d throughput, forward / input gradient (dgrad) / weight gradient (wgrad): ours (NCHW,
// src/wgsl/conv2d.ts) vs tfjs-backend-webgpu (NHWC: conv2d, Conv2DBackpropInput,
// Conv2DBackpropFilter) on the same Dawn adapter in the same process, at ResNet-18's CIFAR layer
// shapes. First checks on one small case that all three passes agree after layout conversion.
// Reports wall-clock GFLOP/s and GFLOP per CPU-second of this process (steadier on a shared CPU), and
// our dispatches per pass (GEMM_VARIANT=reg|wg forces the GEMM core's tiling).
//
//   tsx bench/conv.ts [--quick] [--batch 32] [--no-tf] [--min-time 1] [--out bench/results/conv.json]

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { convGeometry, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, type ConvGeom } from '../src/wgsl/conv2d.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

interface Layer { name: string; C: number; O: number; HW: number; k: number; s: number; p: number }
/** ResNet-18 (CIFAR variant: 3x3 stem, no max-pool) conv shapes on 32x32 input. */
const LAYERS: Layer[] = [
  { name: 'stem 3->64 3x3 @32', C: 3, O: 64, HW: 32, k: 3, s: 1, p: 1 },
  { name: 'l1 64->64 3x3 @32', C: 64, O: 64, HW: 32, k: 3, s: 1, p: 1 },
  { name: 'l2 64->128 3x3 s2 @32', C: 64, O: 128, HW: 32, k: 3, s: 2, p: 1 },
  { name: 'l2 128->128 3x3 @16', C: 128, O: 128, HW: 16, k: 3, s: 1, p: 1 },
  { name: 'l2 ds 64->128 1x1 s2 @32', C: 64, O: 128, HW: 32, k: 1, s: 2, p: 0 },
  { name: 'l3 128->256 3x3 s2 @16', C: 128, O: 256, HW: 16, k: 3, s: 2, p: 1 },
  { name: 'l3 256->256 3x3 @8', C: 256, O: 256, HW: 8, k: 3, s: 1, p: 1 },
  { name: 'l3 ds 128->256 1x1 s2 @16', C: 128, O: 256, HW: 16, k: 1, s: 2, p: 0 },
  { name: 'l4 256->512 3x3 s2 @8', C: 256, O: 512, HW: 8, k: 3, s: 2, p: 1 },
  { name: 'l4 512->512 3x3 @4', C: 512, O: 512, HW: 4, k: 3, s: 1, p: 1 },
  { name: 'l4 ds 256->512 1x1 s2 @8', C: 256, O: 512, HW: 8, k: 1, s: 2, p: 0 },
];
const QUICK = ['l1 64->64 3x3 @32', 'l3 128->256 3x3 s2 @16', 'l4 512->512 3x3 @4', 'l3 ds 128->256 1x1 s2 @16'];

const args = parseArgs('bench/results/conv.json');
const B = Number(args.get('batch') ?? 32);
const layers = args.quick ? LAYERS.filter((l) => QUICK.includes(l.name)) : LAYERS;
const minTime = Number(args.get('min-time') ?? (args.quick ? 0.5 : 1));
const withTf = !args.has('no-tf');

const bench = await setup(withTf);
const { ctx, tf } = bench;
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}; batch ${B}`);
const gen = new Generator(7);
const rand = (n: number) => new Float32Array(n).map(() => gen.cpuUniform() * 2 - 1);

// NCHW <-> NHWC and OCKK <-> KKCO (tfjs filter layout [KH, KW, C, O])
function nchwToNhwc(a: Float32Array, N: number, C: number, H: number, W: number) {
  const o = new Float32Array(a.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) o[(n * H * W + i) * C + c] = a[(n * C + c) * H * W + i]!;
  return o;
}
function ockkToKkco(a: Float32Array, O: number, C: number, K: number) {
  const o = new Float32Array(a.length);
  for (let oc = 0; oc < O; oc++) for (let c = 0; c < C; c++) for (let k = 0; k < K; k++) o[(k * C + c) * O + oc] = a[(oc * C + c) * K + k]!;
  return o;
}

type Pass = 'fwd' | 'dgrad' | 'wgrad';
const PASSES: Pass[] = ['fwd', 'dgrad', 'wgrad'];

/** Our three passes and tfjs's, on the same data. */
function makeRunners(l: Layer, N: number, xd: Float32Array, wd: Float32Array, dyd: Float32Array) {
  const x = tensor(ctx, xd, [N, l.C, l.HW, l.HW]);
  const w = tensor(ctx, wd, [l.O, l.C, l.k, l.k]);
  const g: ConvGeom = convGeometry(x, w, undefined, { stride: l.s, padding: l.p });
  const dy = tensor(ctx, dyd, [N, l.O, g.OH, g.OW]);
  const ours: Record<Pass, () => Tensor> = {
    fwd: () => conv2dForwardRaw(x, w, undefined, g),
    dgrad: () => conv2dInputGradRaw(dy, w, g),
    wgrad: () => conv2dWeightGradRaw(dy, x, g),
  };
  let theirs: Record<Pass, () => import('@tensorflow/tfjs-core').Tensor> | null = null;
  const tfTensors: import('@tensorflow/tfjs-core').Tensor[] = [];
  if (tf) {
    const pad = [[0, 0], [l.p, l.p], [l.p, l.p], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
    const tx = tf.tensor4d(nchwToNhwc(xd, N, l.C, l.HW, l.HW), [N, l.HW, l.HW, l.C]);
    const tw = tf.tensor4d(ockkToKkco(wd, l.O, l.C, l.k * l.k), [l.k, l.k, l.C, l.O]);
    const tdy = tf.tensor4d(nchwToNhwc(dyd, N, l.O, g.OH, g.OW), [N, g.OH, g.OW, l.O]);
    tfTensors.push(tx, tw, tdy);
    const attrs = { strides: [l.s, l.s], pad, dataFormat: 'NHWC', dilations: [1, 1] };
    theirs = {
      fwd: () => tf.conv2d(tx, tw, l.s, pad),
      dgrad: () =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy: tdy, filter: tw }, { ...attrs, inputShape: [N, l.HW, l.HW, l.C] } as never) as never,
      wgrad: () =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, { ...attrs, filterShape: [l.k, l.k, l.C, l.O] } as never) as never,
    };
  }
  return {
    g,
    ours,
    theirs,
    dispose() {
      x.dispose();
      w.dispose();
      dy.dispose();
      for (const t of tfTensors) t.dispose();
    },
  };
}

// ---- agreement check on one small case (odd size, stride 2, C and O not multiples of 4) ----
if (tf) {
  const l: Layer = { name: 'check', C: 3, O: 5, HW: 9, k: 3, s: 2, p: 1 };
  const N = 2;
  const OHc = Math.floor((l.HW + 2 * l.p - l.k) / l.s) + 1;
  const xd = rand(N * l.C * l.HW * l.HW), wd = rand(l.O * l.C * l.k * l.k), dyd = rand(N * l.O * OHc * OHc);
  const r = makeRunners(l, N, xd, wd, dyd);
  const conv: Record<Pass, (a: Float32Array) => Float32Array> = {
    fwd: (a) => nchwToNhwc(a, N, l.O, OHc, OHc),
    dgrad: (a) => nchwToNhwc(a, N, l.C, l.HW, l.HW),
    wgrad: (a) => ockkToKkco(a, l.O, l.C, l.k * l.k),
  };
  for (const p of PASSES) {
    const ours = conv[p](await r.ours[p]().read());
    const t = r.theirs![p]();
    const d = relDiff(ours, (await t.data()) as Float32Array);
    t.dispose();
    console.log(`check ${p} (N2 C3 9x9 O5 3x3 s2 p1): max rel diff vs tfjs ${d.toExponential(1)}`);
    if (!(d < 1e-5)) throw new Error(`${p}: ours and tfjs disagree (relative difference ${d})`);
  }
  r.dispose();
}

// ---- throughput ----
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
const totals = { ours: { flop: 0, sec: 0 }, tfjs: { flop: 0, sec: 0 } };
const cpuTotals = { ours: 0, tfjs: 0 };

/**
 * Process CPU time per call (user + system, all threads: lavapipe's workers run in this process).
 * On a CPU shared with other jobs this is steadier than wall time. The first (compiling) call is
 * left out.
 */
function cpuMeter() {
  let cpu = 0,
    calls = 0,
    first = true;
  return {
    wrap: (run: (iters: number) => Promise<void>) => async (iters: number) => {
      const c0 = process.cpuUsage();
      await run(iters);
      const d = process.cpuUsage(c0);
      if (first) first = false;
      else {
        cpu += (d.user + d.system) / 1e6;
        calls += iters;
      }
    },
    secPerCall: () => cpu / Math.max(1, calls),
  };
}
for (const l of layers) {
  const OH = Math.floor((l.HW + 2 * l.p - l.k) / l.s) + 1;
  const r = makeRunners(l, B, rand(B * l.C * l.HW * l.HW), rand(l.O * l.C * l.k * l.k), rand(B * l.O * OH * OH));
  const flop = 2 * B * l.O * OH * OH * l.C * l.k * l.k;
  for (const p of PASSES) {
    const d0 = ctx.stats().dispatches;
    r.ours[p]().dispose();
    const dispatches = ctx.stats().dispatches - d0;
    const cpuOurs = cpuMeter();
    const t = await timeIt(
      cpuOurs.wrap(async (iters) => {
        let y: Tensor | null = null;
        for (let i = 0; i < iters; i++) {
          y?.dispose();
          y = r.ours[p]();
        }
        await y!.read();
        y!.dispose();
      }),
      { minTime, minReps: 2 },
    );
    const gOurs = flop / t.sec / 1e9;
    totals.ours.flop += flop;
    totals.ours.sec += t.sec;
    const cOurs = flop / cpuOurs.secPerCall() / 1e9;
    let gTf = NaN,
      cTf = NaN;
    if (r.theirs) {
      const cpuTf = cpuMeter();
      const tt = await timeIt(
        cpuTf.wrap(async (iters) => {
          const ys = [];
          for (let i = 0; i < iters; i++) ys.push(r.theirs![p]());
          await ys[ys.length - 1]!.data();
          for (const y of ys) y.dispose();
        }),
        { minTime, minReps: 2 },
      );
      gTf = flop / tt.sec / 1e9;
      cTf = flop / cpuTf.secPerCall() / 1e9;
      totals.tfjs.flop += flop;
      totals.tfjs.sec += tt.sec;
    }
    rows.push([l.name, p, dispatches, fmt(t.sec * 1e3, 1), fmt(gOurs), fmt(gTf), fmt(gOurs / gTf), fmt(cOurs), fmt(cTf), fmt(cOurs / cTf)]);
    results.push({
      layer: l, batch: B, pass: p, flop, dispatches, oursSec: t.sec, oursGflops: gOurs, tfjsGflops: gTf, ratio: gOurs / gTf,
      oursCpuGflops: cOurs, tfjsCpuGflops: cTf, cpuRatio: cOurs / cTf,
    });
    cpuTotals.ours += flop / cOurs / 1e9;
    cpuTotals.tfjs += flop / cTf / 1e9;
    console.log(rows[rows.length - 1]!.join('  '));
  }
  r.dispose();
  await ctx.sync();
}
const gO = totals.ours.flop / totals.ours.sec / 1e9;
const gT = totals.tfjs.flop / totals.tfjs.sec / 1e9;
const cO = totals.ours.flop / cpuTotals.ours / 1e9;
const cT = totals.tfjs.flop / cpuTotals.tfjs / 1e9;
rows.push(['all layers (total flop / total time)', 'all', '', fmt(totals.ours.sec * 1e3, 1), fmt(gO), fmt(gT), fmt(gO / gT), fmt(cO), fmt(cT), fmt(cO / cT)]);
const table = printTable(
  ['layer', 'pass', 'dispatches', 'ours ms', 'ours GFLOP/s', 'tfjs GFLOP/s', 'ours/tfjs', 'ours GFLOP/cpu-s', 'tfjs GFLOP/cpu-s', 'cpu ratio'],
  rows,
);
writeJson(args.out, {
  ...meta(ctx), benchmark: 'conv2d', batch: B, quick: args.quick, table, results,
  totals: { oursGflops: gO, tfjsGflops: gT, ratio: gO / gT, oursCpuGflops: cO, tfjsCpuGflops: cT, cpuRatio: cO / cT },
});
await bench.close();
process.exit(0);
