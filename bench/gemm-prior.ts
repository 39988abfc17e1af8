// The GEMM core's conv passes and matmul against the kernels they replaced, in one process on the
// same data: the pre-core src/wgsl/conv2d.ts and matmul.ts are taken from git history (default
// commit 327c34f, the last one before the core), their imports pointed at today's src/, and both run
// side by side. Prints the
// speed of ours over the prior one per CPU-second (steadier than wall time on a shared machine),
// twice, interleaved, and the largest difference between the two results. Needs the git history.
//
//   tsx bench/gemm-prior.ts [--prior 327c34f] [--passes fwd,dgrad,wgrad,matmul] [--batch 32] [--min-time 0.7]
//                           [--out bench/results/gemm-prior.json]

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, setup, timeIt, printTable, writeJson, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { convGeometry, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw } from '../src/wgsl/conv2d.js';
import { matmulRaw } from '../src/wgsl/matmul.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/gemm-prior.json');
const prior = args.get('prior') ?? '327c34f';
const passes = (args.get('passes') ?? 'fwd,dgrad,wgrad,matmul').split(',');
const N = Number(args.get('batch') ?? 32);
const minTime = Number(args.get('min-time') ?? 0.7);
type Pass = 'fwd' | 'dgrad' | 'wgrad';

const here = path.dirname(fileURLToPath(import.meta.url));
/** A source file of src/wgsl as it was at the prior commit, importable from bench/.prior/. */
async function priorModule<T>(name: string): Promise<T> {
  const src = execFileSync('git', ['show', `${prior}:src/wgsl/${name}.ts`], { cwd: here, encoding: 'utf8' })
    .replace(/from '\.\.\//g, "from '../../src/")
    .replace(/from '\.\//g, "from '../../src/wgsl/");
  mkdirSync(path.join(here, '.prior'), { recursive: true });
  const file = path.join(here, '.prior', `${name}-${prior}.ts`);
  writeFileSync(file, src);
  return (await import(file)) as T;
}
type Raw = (...a: unknown[]) => Tensor;
const old = await priorModule<{ conv2dForwardRaw: Raw; conv2dInputGradRaw: Raw; conv2dWeightGradRaw: Raw }>('conv2d');
const oldMm = await priorModule<{ matmulRaw: Raw }>('matmul');

const { ctx } = await setup(false);
const gen = new Generator(7);
const rand = (n: number) => new Float32Array(n).map(() => gen.cpuUniform() * 2 - 1);
const LAYERS = [
  { name: 'l1 64->64 3x3 @32', C: 64, O: 64, HW: 32, k: 3, s: 1, p: 1 },
  { name: 'l3 128->256 3x3 s2 @16', C: 128, O: 256, HW: 16, k: 3, s: 2, p: 1 },
  { name: 'l4 512->512 3x3 @4', C: 512, O: 512, HW: 4, k: 3, s: 1, p: 1 },
  { name: 'l3 ds 128->256 1x1 s2 @16', C: 128, O: 256, HW: 16, k: 1, s: 2, p: 0 },
];
console.log(`device: ${ctx.deviceName}; prior kernels from ${prior}; conv batch ${N}`);
const run = (f: () => Tensor) => async (it: number) => {
  let t: Tensor | undefined;
  for (let i = 0; i < it; i++) {
    t?.dispose();
    t = f();
  }
  await t!.read();
  t!.dispose();
};
const table: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
/** Time ours against the prior kernel, twice interleaved; one table row. */
async function compare(name: string, pass: string, flop: number, ours: () => Tensor, theirs: () => Tensor) {
  const a = await ours().read();
  const b = await theirs().read();
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + 1e-3));
  const ratios: number[] = [];
  let gf = 0;
  for (let rep = 0; rep < 2; rep++) {
    const tn = await timeIt(run(ours), { minTime });
    const to = await timeIt(run(theirs), { minTime });
    ratios.push(to.cpu / tn.cpu);
    gf = flop / tn.cpu / 1e9;
  }
  table.push([name, pass, gf.toFixed(2), ratios[0]!.toFixed(2), ratios[1]!.toFixed(2), d.toExponential(1)]);
  results.push({ shape: name, pass, oursGflopPerCpuS: gf, oursOverPrior: ratios, maxRelDiff: d });
}
for (const l of LAYERS) {
  const x = tensor(ctx, rand(N * l.C * l.HW * l.HW), [N, l.C, l.HW, l.HW]);
  const w = tensor(ctx, rand(l.O * l.C * l.k * l.k), [l.O, l.C, l.k, l.k]);
  const g = convGeometry(x, w, undefined, { stride: l.s, padding: l.p });
  const dy = tensor(ctx, rand(N * l.O * g.OH * g.OW), [N, l.O, g.OH, g.OW]);
  const flop = 2 * l.O * l.C * l.k * l.k * N * g.OH * g.OW;
  const fns: Record<Pass, [() => Tensor, () => Tensor]> = {
    fwd: [() => conv2dForwardRaw(x, w, undefined, g), () => old.conv2dForwardRaw(x, w, undefined, g)],
    dgrad: [() => conv2dInputGradRaw(dy, w, g), () => old.conv2dInputGradRaw(dy, w, g)],
    wgrad: [() => conv2dWeightGradRaw(dy, x, g), () => old.conv2dWeightGradRaw(dy, x, g)],
  };
  for (const pass of passes) if (pass in fns) await compare(l.name, pass, flop, ...fns[pass as Pass]);
  x.dispose();
  w.dispose();
  dy.dispose();
}
if (passes.includes('matmul'))
  for (const n of [512, 1024]) {
    const a = tensor(ctx, rand(n * n), [n, n]);
    const b = tensor(ctx, rand(n * n), [n, n]);
    await compare(`${n}^3`, 'matmul', 2 * n ** 3, () => matmulRaw(a, b), () => oldMm.matmulRaw(a, b));
    a.dispose();
    b.dispose();
  }
printTable(['shape', 'pass', 'ours GFLOP/cpu-s', 'ours/prior (1)', 'ours/prior (2)', 'max rel diff'], table);
writeJson(args.out, { ...meta(ctx), benchmark: 'conv2d and matmul vs prior kernels', prior, batch: N, results });
