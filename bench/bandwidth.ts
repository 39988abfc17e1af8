// Memory-bound kernels: elementwise (add, relu, mul with a broadcast row) and reductions (sum over
// everything, sum and max along the last axis), effective GB/s (bytes read + written once) at 1M and
// 4M elements, ours vs tfjs-backend-webgpu on the same Dawn adapter. Sync is a 4-byte read-back.
//
//   tsx bench/bandwidth.ts [--out bench/results/bandwidth.json] [--quick] [--sizes 1048576,4194304]
//                          [--cols 1024] [--no-tf] [--min-time 1]

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { add, relu, mul } from '../src/wgsl/elementwise.js';
import { sum, max } from '../src/wgsl/reduce.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/bandwidth.json');
const sizes = (args.get('sizes') ?? (args.quick ? '1048576' : '1048576,4194304')).split(',').map(Number);
const COLS = Number(args.get('cols') ?? 1024);
const minTime = Number(args.get('min-time') ?? (args.quick ? 0.3 : 1));
const b = await setup(!args.has('no-tf'));
const { ctx, tf } = b;
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}`);
const gen = new Generator(99);

type TfT = import('@tensorflow/tfjs-core').Tensor;
interface Case {
  name: string;
  /** bytes moved per call as a function of the element count n */
  bytes: (n: number) => number;
  ours: (x: Tensor, y: Tensor, row: Tensor) => Tensor;
  tfjs: (x: TfT, y: TfT, row: TfT) => TfT;
}
const F = 4;
const CASES: Case[] = [
  { name: 'add [R,C]+[R,C]', bytes: (n) => 3 * n * F, ours: (x, y) => add(x, y), tfjs: (x, y) => tf!.add(x, y) },
  { name: 'relu', bytes: (n) => 2 * n * F, ours: (x) => relu(x), tfjs: (x) => tf!.relu(x) },
  { name: 'mul [R,C]*[C]', bytes: (n) => 2 * n * F + COLS * F, ours: (x, _y, r) => mul(x, r), tfjs: (x, _y, r) => tf!.mul(x, r) },
  { name: 'sum all', bytes: (n) => n * F, ours: (x) => sum(x), tfjs: (x) => tf!.sum(x) },
  { name: 'sum last axis', bytes: (n) => n * F + (n / COLS) * F, ours: (x) => sum(x, -1), tfjs: (x) => tf!.sum(x, -1) },
  { name: 'max last axis', bytes: (n) => n * F + (n / COLS) * F, ours: (x) => max(x, -1), tfjs: (x) => tf!.max(x, -1) },
];

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
await ctx.noGrad(async () => {
  for (const n of sizes) {
    const R = Math.max(1, Math.floor(n / COLS));
    const shape = [R, COLS];
    const N = R * COLS;
    const xd = new Float32Array(N).map(() => gen.cpuUniform() * 2 - 1);
    const yd = new Float32Array(N).map(() => gen.cpuUniform() * 2 - 1);
    const rd = new Float32Array(COLS).map(() => gen.cpuUniform() * 2 - 1);
    const x = tensor(ctx, xd, shape), y = tensor(ctx, yd, shape), row = tensor(ctx, rd, [COLS]);
    const tx = tf?.tensor2d(xd, [R, COLS]), ty = tf?.tensor2d(yd, [R, COLS]), tr = tf?.tensor1d(rd);
    for (const c of CASES) {
      const first = c.ours(x, y, row);
      const oursOut = await first.read();
      first.dispose();
      const t = await timeIt(
        async (iters) => {
          let out: Tensor | null = null;
          for (let i = 0; i < iters; i++) {
            out?.dispose();
            out = c.ours(x, y, row);
          }
          await ctx.readBuffer(out!.buffer('bench'), 4);
          out!.dispose();
        },
        { minTime },
      );
      const gbOurs = c.bytes(N) / t.sec / 1e9;
      let gbTf = NaN,
        agree = NaN;
      if (tf && tx && ty && tr) {
        const o = c.tfjs(tx, ty, tr);
        agree = relDiff(oursOut, (await o.data()) as Float32Array);
        o.dispose();
        if (!(agree < 1e-4)) throw new Error(`${c.name} n=${N}: ours and tfjs disagree (${agree})`);
        const tt = await timeIt(
          async (iters) => {
            const outs: TfT[] = [];
            for (let i = 0; i < iters; i++) outs.push(c.tfjs(tx, ty, tr));
            const last = outs[outs.length - 1]!;
            const probe = last.size > 1 ? tf.slice(tf.reshape(last, [-1]), [0], [1]) : last;
            await probe.data();
            if (probe !== last) probe.dispose();
            for (const o of outs) o.dispose();
          },
          { minTime },
        );
        gbTf = c.bytes(N) / tt.sec / 1e9;
      }
      rows.push([c.name, N, fmt(t.sec * 1e6, 0), fmt(gbOurs), fmt(gbTf), fmt(gbOurs / gbTf), agree.toExponential(1)]);
      results.push({ op: c.name, n: N, shape, bytes: c.bytes(N), oursSec: t.sec, oursGBs: gbOurs, tfjsGBs: gbTf, ratio: gbOurs / gbTf, relDiffVsTfjs: agree });
    }
    for (const t of [x, y, row]) t.dispose();
    for (const t of [tx, ty, tr]) t?.dispose();
    await ctx.sync();
  }
});
const table = printTable(['op', 'elements', 'ours µs', 'ours GB/s', 'tfjs GB/s', 'ours/tfjs', 'max rel diff'], rows);
writeJson(args.out, { ...meta(ctx), benchmark: 'bandwidth', table, results });
await b.close();
process.exit(0);
