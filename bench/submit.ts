// Launch overhead: K small kernels recorded into one command buffer and submitted once (the engine's
// default) vs one submit per kernel (ctx.flush() after each), µs per kernel and the ratio.
//
//   tsx bench/submit.ts [--out bench/results/submit.json] [--quick] [--kernels 100] [--elements 1024]

import { parseArgs, setup, timeIt, printTable, writeJson, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { addScalar } from '../src/wgsl/elementwise.js';
import type { Tensor } from '../src/autograd/tensor.js';

const args = parseArgs('bench/results/submit.json');
const K = Number(args.get('kernels') ?? 100);
const n = Number(args.get('elements') ?? 1024);
const minTime = Number(args.get('min-time') ?? (args.quick ? 0.5 : 2));
const b = await setup(false);
const { ctx } = b;
console.log(`device: ${ctx.deviceName}`);

/** K dependent kernels x <- x + 1, flushing after each when `separate`; one read-back at the end. */
let chains = 0;
async function chain(x0: Tensor, separate: boolean): Promise<number> {
  chains++;
  let x = x0;
  for (let i = 0; i < K; i++) {
    const y = addScalar(x, 1);
    if (x !== x0) x.dispose();
    x = y;
    if (separate) ctx.flush();
  }
  const v = (await x.read())[0]!;
  x.dispose();
  return v;
}

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
await ctx.noGrad(async () => {
  const x0 = tensor(ctx, new Float32Array(n), [n]);
  const res: Record<string, number> = {};
  for (const separate of [false, true]) {
    const v = await chain(x0, separate);
    if (v !== K) throw new Error(`expected ${K} after ${K} increments, got ${v}`);
    const s0 = ctx.stats().submits;
    const c0 = chains;
    const t = await timeIt(async (iters) => {
      for (let i = 0; i < iters; i++) await chain(x0, separate);
    }, { minTime });
    const submitsPerChain = (ctx.stats().submits - s0) / (chains - c0);
    const us = (t.sec / K) * 1e6;
    res[separate ? 'separate' : 'one'] = us;
    rows.push([separate ? `${K} submits (flush after each)` : '1 submit (default)', K, n, fmt(us, 1), fmt(submitsPerChain, 0)]);
  }
  results.push({ kernels: K, elements: n, usPerKernelOneSubmit: res.one, usPerKernelSeparate: res.separate, ratio: res.separate! / res.one! });
  rows.push([`ratio separate / one`, '', '', fmt(res.separate! / res.one!), '']);
  x0.dispose();
});
const table = printTable(['mode', 'kernels', 'elements', 'µs / kernel', 'submits / chain'], rows);
writeJson(args.out, { ...meta(ctx), benchmark: 'submit', table, results });
await b.close();
process.exit(0);
