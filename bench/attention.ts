// Attention: the fused kernel (src/wgsl/attention.ts) vs the same math composed from our own
// matmul/softmax (attentionComposed) vs tfjs-backend-webgpu's composition (matMul, softmax) on the
// same Dawn adapter in the same process; forward and forward + backward, for Swin window shapes
// (64 / 256 windows x 3 / 4 heads, 49 tokens, head dim 32, relative bias and shifted-window mask) and
// ViT-like shapes (197 and 65 tokens, head dim 64). Optionally several register tilings of the fused
// kernels side by side (--tilings). Also the bytes each path allocates for one forward (+ backward) as
// the sequence grows, to show the fused path does not grow with L^2. Prints a table, writes JSON.
//
//   npx tsx bench/attention.ts [--quick] [--no-tfjs] [--shapes swin64,swin256,vit197,vit65]
//       [--tilings 1x4,2x4] (R x C for all three fused kernels; default: the kernels' own choice)
//       [--no-memory] [--out bench/results/attention.json]

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { requireGrad } from '../src/autograd/graph.js';
import { backward } from '../src/autograd/backward.js';
import { attention, attentionComposed, type AttentionOptions } from '../src/ops/attention.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';
// a namespace import, so this bench also runs against kernels without setAttentionTiling (the
// before/after comparison runs it on an older checkout)
import * as fusedKernels from '../src/wgsl/attention.js';

const args = parseArgs('bench/results/attention.json');
const minTime = args.quick ? 0.5 : 2;
const b = await setup(!args.has('no-tfjs'));
const { ctx, tf } = b;
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}`);
const gen = new Generator(7);
const rand = (n: number, s = 1) => new Float32Array(n).map(() => (gen.cpuUniform() * 2 - 1) * s);

interface Shape {
  id: string;
  name: string;
  B: number;
  H: number;
  L: number;
  D: number;
  bias: boolean;
  maskGroups: number;
}
const ALL_SHAPES: Shape[] = [
  { id: 'swin64', name: 'swin window (shifted)', B: 64, H: 3, L: 49, D: 32, bias: true, maskGroups: 64 },
  { id: 'swin256', name: 'swin window (shifted)', B: 256, H: 4, L: 49, D: 32, bias: true, maskGroups: 64 },
  { id: 'vit197', name: 'vit', B: 2, H: 3, L: 197, D: 64, bias: false, maskGroups: 0 },
  { id: 'vit65', name: 'vit', B: 8, H: 3, L: 65, D: 64, bias: false, maskGroups: 0 },
];
const wanted = (args.get('shapes') ?? ALL_SHAPES.map((s) => s.id).join(',')).split(',');
const SHAPES = ALL_SHAPES.filter((s) => wanted.includes(s.id));
if (SHAPES.length !== wanted.length) throw new Error(`--shapes: unknown id in ${wanted.join(',')} (known: ${ALL_SHAPES.map((s) => s.id).join(', ')})`);

/** Fused variants to time: the kernels' default, or each forced R x C tiling of --tilings. */
const tilings: (string | null)[] = args.get('tilings') ? args.get('tilings')!.split(',') : [null];
const setTiling = (t: string | null) => {
  const set = (fusedKernels as { setAttentionTiling?: (x: unknown) => void }).setAttentionTiling;
  if (!t) return set?.(null);
  if (!set) throw new Error('--tilings: these kernels have no setAttentionTiling');
  const [R, C] = t.split('x').map(Number);
  set({ fwd: { R, C }, dq: { R, C }, dkv: { R, C } });
};

type Impl = 'fused' | 'composed';
const run = (impl: Impl, q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions) => (impl === 'fused' ? attention(q, k, v, { ...o, impl: 'fused' }) : attentionComposed(q, k, v, o));

/** Bytes the pool hands out while `fn` runs inside a scope (everything it allocates stays live until the scope ends). */
async function allocated(fn: () => Tensor): Promise<number> {
  await ctx.sync();
  const before = ctx.stats().liveBytes;
  let bytes = 0;
  await ctx.scope(async () => {
    const y = fn();
    await y.read();
    bytes = ctx.stats().liveBytes - before;
  });
  return bytes;
}

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
const ms = (x: number | undefined) => (x === undefined ? '-' : fmt(x * 1e3, 1));
for (const s of SHAPES) {
  const { B, H, L, D } = s;
  const flopFwd = 4 * B * H * L * L * D;
  const qd = rand(B * H * L * D), kd = rand(B * H * L * D), vd = rand(B * H * L * D), gd = rand(B * H * L * D);
  const bd = s.bias ? rand(H * L * L, 0.5) : null;
  const md = s.maskGroups ? new Float32Array(s.maskGroups * L * L).map(() => (gen.cpuUniform() < 0.2 ? -100 : 0)) : null;
  const q = requireGrad(tensor(ctx, qd, [B, H, L, D]));
  const k = requireGrad(tensor(ctx, kd, [B, H, L, D]));
  const v = requireGrad(tensor(ctx, vd, [B, H, L, D]));
  const dO = tensor(ctx, gd, [B, H, L, D]);
  const bias = bd ? requireGrad(tensor(ctx, bd, [1, H, L, L])) : undefined;
  const mask = md ? tensor(ctx, md, [s.maskGroups, L, L]) : undefined;
  const o: AttentionOptions = { bias, mask };
  const leaves = [q, k, v, bias];
  const clearGrads = () => {
    for (const t of leaves) if (t?.grad) (t.grad.dispose(), (t.grad = null));
  };
  /** Every leaf's gradient after one backward of `impl`. */
  const grads = async (impl: Impl) => {
    const out: Float32Array[] = [];
    await ctx.scope(async () => {
      backward(run(impl, q, k, v, o), dO);
      for (const t of leaves) if (t) out.push(await t.grad!.read());
    });
    clearGrads();
    return out;
  };
  const res: Record<string, unknown> = { shape: s, flopForward: flopFwd };
  const ref = await ctx.scope(() => ctx.noGrad(() => attentionComposed(q, k, v, o)).read());
  const refGrads = await grads('composed');
  const variants: { label: string; impl: Impl; tiling: string | null }[] = [
    { label: 'composed', impl: 'composed', tiling: null },
    ...tilings.map((t) => ({ label: t ? `fused ${t}` : 'fused', impl: 'fused' as Impl, tiling: t })),
  ];
  const timed: Record<string, Record<string, number>> = {};
  for (const { label, impl, tiling } of variants) {
    setTiling(tiling);
    // the first call compiles the pipelines (forward and backward): timed on its own
    const t0 = performance.now();
    const y = await ctx.scope(() => ctx.noGrad(() => run(impl, q, k, v, o)).read());
    const g = await grads(impl);
    const firstSec = (performance.now() - t0) / 1000;
    const diff = relDiff(y, ref);
    if (!(diff < 1e-5)) throw new Error(`${s.name}: ${label} disagrees with composed (${diff})`);
    const gradDiff = Math.max(...g.map((x, i) => relDiff(x, refGrads[i]!)));
    if (!(gradDiff < 1e-4)) throw new Error(`${s.name}: ${label} gradients disagree with composed (${gradDiff})`);
    const fwd = await timeIt(
      async (iters) => {
        await ctx.scope(async () => {
          let y: Tensor | null = null;
          for (let i = 0; i < iters; i++) y = ctx.noGrad(() => run(impl, q, k, v, o));
          await y!.read();
        });
      },
      { minTime },
    );
    const fb = await timeIt(
      async (iters) => {
        for (let i = 0; i < iters; i++)
          await ctx.scope(async () => {
            const y = run(impl, q, k, v, o);
            backward(y, dO);
            if (i === iters - 1) await q.grad!.read();
          });
        clearGrads();
      },
      { minTime },
    );
    const r: Record<string, number> = { firstCallSec: firstSec, fwdSec: fwd.sec, fwdBest: fwd.best, fwdCpu: fwd.cpu, fwdBwdSec: fb.sec, fwdBwdBest: fb.best, fwdBwdCpu: fb.cpu, relDiffVsComposed: diff, gradRelDiffVsComposed: gradDiff };
    if (tiling === null) {
      r.bytesFwd = await allocated(() => ctx.noGrad(() => run(impl, q, k, v, o)));
      r.bytesFwdBwd = await allocated(() => {
        const y = run(impl, q, k, v, o);
        backward(y, dO);
        return q.grad!;
      });
      clearGrads();
    }
    timed[label] = r;
    console.log(`${s.id} ${label}: fwd ${ms(fwd.sec)} ms, fwd+bwd ${ms(fb.sec)} ms, first call ${fmt(firstSec, 2)} s`);
  }
  setTiling(null);
  res.variants = timed;
  let t: Record<string, number> | undefined;
  if (tf) {
    const tq = tf.tensor4d(qd, [B, H, L, D]), tk = tf.tensor4d(kd, [B, H, L, D]), tv = tf.tensor4d(vd, [B, H, L, D]);
    const tb = bd ? tf.tensor4d(bd, [1, H, L, L]) : null;
    const tm = md ? tf.tensor4d(md, [1, s.maskGroups, L, L]) : null;
    const scale = 1 / Math.sqrt(D);
    const tfAttn = (qq: typeof tq, kk: typeof tk, vv: typeof tv) => {
      let sc = tf.mul(tf.matMul(qq, kk, false, true), scale);
      if (tb) sc = tf.add(sc, tb);
      if (tm) sc = tf.reshape(tf.add(tf.reshape(sc, [B / s.maskGroups, s.maskGroups, H, L * L]), tf.reshape(tm, [1, s.maskGroups, 1, L * L])), [B, H, L, L]);
      return tf.matMul(tf.softmax(sc), vv);
    };
    const ty = tfAttn(tq, tk, tv);
    const diff = relDiff((await ty.data()) as Float32Array, ref);
    ty.dispose();
    if (!(diff < 1e-4)) throw new Error(`${s.name}: tfjs disagrees with ours (${diff})`);
    // forward only: tfjs-core's Node bundle registers no gradients (they ship with the
    // @tensorflow/tfjs union package, not installed here)
    const fwd = await timeIt(
      async (iters) => {
        const ys = [];
        for (let i = 0; i < iters; i++) ys.push(tf.tidy(() => tfAttn(tq, tk, tv)));
        await ys[ys.length - 1]!.data();
        for (const y of ys) y.dispose();
      },
      { minTime },
    );
    t = { fwdSec: fwd.sec, fwdBest: fwd.best, relDiffVsComposed: diff };
    res.tfjs = t;
    for (const x of [tq, tk, tv, tb, tm]) x?.dispose();
  }
  const c = timed.composed!;
  for (const { label } of variants.slice(1)) {
    const f = timed[label]!;
    rows.push([
      `${s.name} B${B} H${H} L${L} D${D}`,
      label,
      ms(f.fwdSec), ms(c.fwdSec), ms(t?.fwdSec), fmt(c.fwdSec! / f.fwdSec!), t ? fmt(t.fwdSec! / f.fwdSec!) : '-',
      ms(f.fwdBwdSec), ms(c.fwdBwdSec), fmt(c.fwdBwdSec! / f.fwdBwdSec!),
      fmt(f.firstCallSec!, 2),
      f.bytesFwd !== undefined ? `${fmt(f.bytesFwd / 2 ** 20, 2)} / ${fmt(c.bytesFwd! / 2 ** 20, 2)}` : '-',
    ]);
  }
  results.push(res);
  for (const x of [q, k, v, dO, bias, mask]) x?.dispose();
  await ctx.sync();
}
const table = printTable(
  ['shape', 'variant', 'fwd fused ms', 'composed', 'tfjs', 'composed/fused', 'tfjs/fused', 'fwd+bwd fused ms', 'composed', 'composed/fused', 'first call s', 'fwd MiB fused / composed'],
  rows,
);

// memory against sequence length: one head, D 64, forward and forward + backward
const memRows: (string | number)[][] = [];
const memory: Record<string, unknown>[] = [];
for (const L of args.has('no-memory') ? [] : args.quick ? [128, 512] : [128, 512, 1024]) {
  const D = 64;
  const q = requireGrad(tensor(ctx, rand(L * D), [1, 1, L, D]));
  const dO = tensor(ctx, rand(L * D), [1, 1, L, D]);
  const m: Record<string, number> = { L };
  for (const impl of ['fused', 'composed'] as Impl[]) {
    m[`${impl}Fwd`] = await allocated(() => ctx.noGrad(() => run(impl, q, q, q, {})));
    m[`${impl}FwdBwd`] = await allocated(() => {
      backward(run(impl, q, q, q, {}), dO);
      return q.grad!;
    });
    q.grad?.dispose();
    q.grad = null;
  }
  memRows.push([L, fmt(m.fusedFwd! / 1024, 0), fmt(m.composedFwd! / 1024, 0), fmt(m.fusedFwdBwd! / 1024, 0), fmt(m.composedFwdBwd! / 1024, 0)]);
  memory.push(m);
  q.dispose();
  dO.dispose();
}
const memTable = memRows.length ? printTable(['L = S (H 1, D 64)', 'fused fwd KiB', 'composed fwd KiB', 'fused fwd+bwd KiB', 'composed fwd+bwd KiB'], memRows) : '';
writeJson(args.out, { ...meta(ctx), benchmark: 'attention', table, memTable, results, memory });
await b.close();
process.exit(0);
