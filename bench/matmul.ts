// f32 matmul throughput: ours vs tfjs-backend-webgpu on the same Dawn adapter in the same process.
// Checks that both agree (and match a float64 spot check), then times each with read-back sync.
// --variants times register-tile variants of our kernel instead (no tfjs), to choose chooseTiling()
// in src/wgsl/matmul.ts (the first version's 4x4/8x8k4 is the baseline in the default list).
// The table counts our dispatches per call; GEMM_VARIANT=reg|wg forces the GEMM core's tiling.
//
//   tsx bench/matmul.ts [--out bench/results/matmul.json] [--quick] [--shapes 512,1024x576x64]
//                       [--no-tf] [--variants [4x4/8x8,8x4/8x8,...]] [--min-time 2]
// A shape is N (square) or MxKxN.

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { matmulRaw } from '../src/wgsl/matmul.js';
import { gemmVariant, shapeClass, type RegTiling } from '../src/wgsl/gemm.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

type Shape = { name: string; M: number; K: number; N: number };

const SQUARES = [256, 384, 512, 768, 1024];
/**
 * im2col GEMMs of ResNet-18 (CIFAR variant: 3x3 stem, no max-pool) at batch 32 on 32x32 input:
 * M = 32·Hout·Wout, K = Cin·3·3, N = Cout.
 */
const RESNET: Shape[] = [
  { name: 'rn18 stem 32x32 3->64', M: 32 * 32 * 32, K: 3 * 9, N: 64 },
  { name: 'rn18 layer1 32x32 64->64', M: 32 * 32 * 32, K: 64 * 9, N: 64 },
  { name: 'rn18 layer2 16x16 128->128', M: 32 * 16 * 16, K: 128 * 9, N: 128 },
  { name: 'rn18 layer3 8x8 256->256', M: 32 * 8 * 8, K: 256 * 9, N: 256 },
  { name: 'rn18 layer4 4x4 512->512', M: 32 * 4 * 4, K: 512 * 9, N: 512 },
];

function parseShape(s: string): Shape {
  const p = s.split('x').map(Number);
  if (p.length === 1) return { name: `${p[0]}^3`, M: p[0]!, K: p[0]!, N: p[0]! };
  if (p.length !== 3 || p.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`bad shape ${s} (want N or MxKxN)`);
  return { name: `${p[0]}x${p[1]}x${p[2]}`, M: p[0]!, K: p[1]!, N: p[2]! };
}

function parseTiling(s: string): RegTiling {
  const m = /^(\d+)x(\d+)\/(\d+)x(\d+)(?:k(\d+))?$/.exec(s);
  if (!m) throw new Error(`bad tiling ${s} (want TMxTN/WGXxWGY[kKU], e.g. 4x4/8x8k8)`);
  return { kind: 'reg', tm: +m[1]!, tn: +m[2]!, wgx: +m[3]!, wgy: +m[4]!, ku: m[5] ? +m[5] : 4 };
}
const tilingName = (t: RegTiling) => `${t.tm}x${t.tn}/${t.wgx}x${t.wgy}k${t.ku ?? 4}`;

const args = parseArgs('bench/results/matmul.json');
const shapes: Shape[] = args.get('shapes')
  ? args.get('shapes')!.split(',').map(parseShape)
  : args.quick
    ? [parseShape('256'), parseShape('512'), RESNET[3]!]
    : [...SQUARES.map((n) => parseShape(String(n))), ...RESNET];
const minTime = Number(args.get('min-time') ?? (args.quick ? 0.5 : 2));
const variantsMode = args.has('variants');
const withTf = !variantsMode && !args.has('no-tf');
const VARIANTS = (args.get('variants') || '4x4/8x8k4,8x4/16x1k4,8x8/16x1k4,8x8/8x1k4,8x4/8x1k4,8x4/32x1k4')
  .split(',')
  .map(parseTiling);

const b = await setup(withTf);
const { ctx, tf } = b;
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}`);
const gen = new Generator(1234);

/** float64 value of C[m, n] from the f32 inputs */
const spot = (a: Float32Array, bm: Float32Array, s: Shape, m: number, n: number) => {
  let acc = 0;
  for (let k = 0; k < s.K; k++) acc += a[m * s.K + k]! * bm[k * s.N + n]!;
  return acc;
};

async function timeOurs(a: Tensor, bt: Tensor, tiling?: RegTiling) {
  return timeIt(
    async (iters) => {
      let y: Tensor | null = null;
      for (let i = 0; i < iters; i++) {
        y?.dispose();
        y = matmulRaw(a, bt, {}, {}, tiling);
      }
      await y!.read();
      y!.dispose();
    },
    { minTime },
  );
}

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
for (const s of shapes) {
  const flop = 2 * s.M * s.K * s.N;
  const ad = new Float32Array(s.M * s.K).map(() => gen.cpuUniform() * 2 - 1);
  const bd = new Float32Array(s.K * s.N).map(() => gen.cpuUniform() * 2 - 1);
  const a = tensor(ctx, ad, [s.M, s.K]);
  const bt = tensor(ctx, bd, [s.K, s.N]);
  // correctness: float64 spot check of 16 entries (and tfjs below)
  const ours = await matmulRaw(a, bt).read();
  let spotErr = 0;
  for (let t = 0; t < 16; t++) {
    const m = Math.floor(gen.cpuUniform() * s.M), n = Math.floor(gen.cpuUniform() * s.N);
    spotErr = Math.max(spotErr, Math.abs(ours[m * s.N + n]! - spot(ad, bd, s, m, n)) / Math.sqrt(s.K));
  }
  if (!(spotErr < 1e-4)) throw new Error(`${s.name}: our result is wrong (spot error ${spotErr})`);
  if (variantsMode) {
    const row: (string | number)[] = [s.name];
    const res: Record<string, unknown> = { shape: s, flop, variants: {} };
    // round-robin over the variants so that changes in machine load hit them all alike
    const runs = VARIANTS.map((v) => ({ v, wall: [] as number[], cpu: [] as number[] }));
    for (const r of runs) {
      const y = await matmulRaw(a, bt, {}, {}, r.v).read();
      const d = relDiff(y, ours);
      if (!(d < 1e-5)) throw new Error(`${s.name} ${tilingName(r.v)} disagrees with the default (${d})`);
    }
    const reps = Math.max(3, Math.round(minTime * 3));
    for (let rep = 0; rep < reps; rep++)
      for (const r of runs) {
        const t = await timeIt(async () => (await matmulRaw(a, bt, {}, {}, r.v).read(), undefined), { iters: 1, minReps: 1, minTime: 0, warmup: 0 });
        r.wall.push(t.sec);
        r.cpu.push(t.cpu);
      }
    const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
    for (const r of runs) {
      const best = Math.min(...r.wall);
      // best wall repeat and median GFLOP per CPU-second (all threads, lavapipe's workers included)
      row.push(`${fmt(flop / best / 1e9)} (${fmt(flop / med(r.cpu) / 1e9)})`);
      (res.variants as Record<string, unknown>)[tilingName(r.v)] = { bestGflops: flop / best / 1e9, medianGflops: flop / med(r.wall) / 1e9, gflopPerCpuSec: flop / med(r.cpu) / 1e9 };
    }
    rows.push(row);
    results.push(res);
  } else {
    const d0 = ctx.stats().dispatches;
    matmulRaw(a, bt).dispose();
    const dispatches = ctx.stats().dispatches - d0;
    const t = await timeOurs(a, bt);
    const gOurs = flop / t.sec / 1e9;
    let gTf = NaN,
      agree = NaN;
    if (tf) {
      const ta = tf.tensor2d(ad, [s.M, s.K]);
      const tb = tf.tensor2d(bd, [s.K, s.N]);
      const ty = tf.matMul(ta, tb);
      agree = relDiff(ours, (await ty.data()) as Float32Array);
      ty.dispose();
      if (!(agree < 1e-4)) throw new Error(`${s.name}: ours and tfjs disagree (relative difference ${agree})`);
      const tt = await timeIt(
        async (iters) => {
          const ys = [];
          for (let i = 0; i < iters; i++) ys.push(tf.matMul(ta, tb));
          await ys[ys.length - 1]!.data();
          for (const y of ys) y.dispose();
        },
        { minTime },
      );
      gTf = flop / tt.sec / 1e9;
      ta.dispose();
      tb.dispose();
    }
    rows.push([s.name, `${s.M}x${s.K}x${s.N}`, dispatches, fmt(t.sec * 1e3, 1), fmt(gOurs), fmt(gTf), fmt(gOurs / gTf), agree.toExponential(1)]);
    results.push({ shape: s, flop, dispatches, variant: gemmVariant(ctx, shapeClass('matmul', s.M, s.N, s.K)), oursSec: t.sec, oursGflops: gOurs, tfjsGflops: gTf, ratio: gOurs / gTf, relDiffVsTfjs: agree, spotErr });
  }
  a.dispose();
  bt.dispose();
  await ctx.sync();
}

const header = variantsMode
  ? ['best GFLOP/s (per CPU-s)', ...VARIANTS.map(tilingName)]
  : ['shape', 'MxKxN', 'dispatches', 'ours ms', 'ours GFLOP/s', 'tfjs GFLOP/s', 'ours/tfjs', 'max rel diff'];
const table = printTable(header, rows);
writeJson(args.out, { ...meta(ctx), benchmark: variantsMode ? 'matmul-variants' : 'matmul', tiling: 'gemmVariant + chooseTiling(M, N, K)', table, results });
await b.close();
process.exit(0);
