// Attention: the fused kernel (src/wgsl/attention.ts) vs the same math composed from our own
// matmul/softmax (attentionComposed) vs tfjs-backend-webgpu's composition (matMul, softmax) on the
// same Dawn adapter in the same process; forward and forward + backward, for a Swin window shape
// (64 windows x 3 heads, 49 tokens, head dim 32, relative bias and shifted-window mask) and a small
// ViT shape (197 tokens, head dim 64). Also the bytes each path allocates for one forward (+ backward)
// as the sequence grows, to show the fused path does not grow with L^2. Prints a table, writes JSON.
//
//   npx tsx bench/attention.ts [--quick] [--no-tfjs] [--out bench/results/attention.json]

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { requireGrad } from '../src/autograd/graph.js';
import { backward } from '../src/autograd/backward.js';
import { attention, attentionComposed, type AttentionOptions } from '../src/ops/attention.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';

const args = parseArgs('bench/results/attention.json');
const minTime = args.quick ? 0.5 : 2;
const b = await setup(!args.has('no-tfjs'));
const { ctx, tf } = b;
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}`);
const gen = new Generator(7);
const rand = (n: number, s = 1) => new Float32Array(n).map(() => (gen.cpuUniform() * 2 - 1) * s);

interface Shape {
  name: string;
  B: number;
  H: number;
  L: number;
  D: number;
  bias: boolean;
  maskGroups: number;
}
const SHAPES: Shape[] = [
  { name: 'swin window (shifted)', B: 64, H: 3, L: 49, D: 32, bias: true, maskGroups: 64 },
  { name: 'vit', B: 2, H: 3, L: 197, D: 64, bias: false, maskGroups: 0 },
];

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
  const res: Record<string, unknown> = { shape: s, flopForward: flopFwd };
  const ref = await ctx.scope(() => ctx.noGrad(() => attentionComposed(q, k, v, o)).read());
  for (const impl of ['fused', 'composed'] as Impl[]) {
    const y = await ctx.scope(() => ctx.noGrad(() => run(impl, q, k, v, o)).read());
    const diff = relDiff(y, ref);
    if (!(diff < 1e-5)) throw new Error(`${s.name}: ${impl} disagrees with composed (${diff})`);
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
        for (const t of [q, k, v, bias]) if (t?.grad) (t.grad.dispose(), (t.grad = null));
      },
      { minTime },
    );
    const memFwd = await allocated(() => ctx.noGrad(() => run(impl, q, k, v, o)));
    const memFb = await allocated(() => {
      const y = run(impl, q, k, v, o);
      backward(y, dO);
      return q.grad!;
    });
    for (const t of [q, k, v, bias]) if (t?.grad) (t.grad.dispose(), (t.grad = null));
    res[impl] = { fwdSec: fwd.sec, fwdBest: fwd.best, fwdCpu: fwd.cpu, fwdBwdSec: fb.sec, fwdBwdBest: fb.best, fwdBwdCpu: fb.cpu, bytesFwd: memFwd, bytesFwdBwd: memFb, relDiffVsComposed: diff };
  }
  if (tf) {
    const tq = tf.tensor4d(qd, [B, H, L, D]), tk = tf.tensor4d(kd, [B, H, L, D]), tv = tf.tensor4d(vd, [B, H, L, D]), tg = tf.tensor4d(gd, [B, H, L, D]);
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
    const grads = tf.grads((a, c, d) => tf.sum(tf.mul(tfAttn(a as typeof tq, c as typeof tk, d as typeof tv), tg)));
    const fwd = await timeIt(
      async (iters) => {
        const ys = [];
        for (let i = 0; i < iters; i++) ys.push(tf.tidy(() => tfAttn(tq, tk, tv)));
        await ys[ys.length - 1]!.data();
        for (const y of ys) y.dispose();
      },
      { minTime },
    );
    // tfjs-core's Node bundle registers no gradients (they ship with the @tensorflow/tfjs union
    // package, not installed here): forward + backward is timed only where tf.grads works
    let fb = { sec: NaN, best: NaN };
    try {
      grads([tq, tk, tv]).forEach((g) => g.dispose());
      fb = await timeIt(
        async (iters) => {
          for (let i = 0; i < iters; i++) {
            const gs = grads([tq, tk, tv]);
            if (i === iters - 1) await gs[0]!.data();
            for (const g of gs) g.dispose();
          }
        },
        { minTime },
      );
    } catch (e) {
      console.log(`tfjs forward+backward not timed: ${(e as Error).message}`);
    }
    res.tfjs = { fwdSec: fwd.sec, fwdBest: fwd.best, fwdBwdSec: fb.sec, fwdBwdBest: fb.best, relDiffVsComposed: diff };
    for (const t of [tq, tk, tv, tg, tb, tm]) t?.dispose();
  }
  const f = res.fused as Record<string, number>, c = res.composed as Record<string, number>, t = res.tfjs as Record<string, number> | undefined;
  const ms = (x: number | undefined) => (x === undefined ? '-' : fmt(x * 1e3, 1));
  rows.push([
    `${s.name} B${B} H${H} L${L} D${D}`,
    ms(f.fwdSec), ms(c.fwdSec), ms(t?.fwdSec), fmt(c.fwdSec! / f.fwdSec!), t ? fmt(t.fwdSec! / f.fwdSec!) : '-',
    ms(f.fwdBwdSec), ms(c.fwdBwdSec), ms(t?.fwdBwdSec), fmt(c.fwdBwdSec! / f.fwdBwdSec!), t ? fmt(t.fwdBwdSec! / f.fwdBwdSec!) : '-',
    `${fmt(f.bytesFwd! / 2 ** 20, 2)} / ${fmt(c.bytesFwd! / 2 ** 20, 2)}`,
  ]);
  results.push(res);
  for (const x of [q, k, v, dO, bias, mask]) x?.dispose();
  await ctx.sync();
}
const table = printTable(
  ['shape', 'fwd fused ms', 'composed', 'tfjs', 'composed/fused', 'tfjs/fused', 'fwd+bwd fused ms', 'composed', 'tfjs', 'composed/fused', 'tfjs/fused', 'fwd MiB fused / composed'],
  rows,
);

// memory against sequence length: one head, D 64, forward and forward + backward
const memRows: (string | number)[][] = [];
const memory: Record<string, unknown>[] = [];
for (const L of args.quick ? [128, 512] : [128, 512, 1024]) {
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
const memTable = printTable(['L = S (H 1, D 64)', 'fused fwd KiB', 'composed fwd KiB', 'fused fwd+bwd KiB', 'composed fwd+bwd KiB'], memRows);
writeJson(args.out, { ...meta(ctx), benchmark: 'attention', table, memTable, results, memory });
await b.close();
process.exit(0);
