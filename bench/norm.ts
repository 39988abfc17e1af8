// Normalisation layers, forward and forward+backward: the fused family (src/wgsl/norm.ts) vs the same
// math composed from our own primitives (mean / square / sub / mul / rsqrt, whose backward comes from
// autograd) vs tfjs-backend-webgpu where tfjs has the op (batch norm via tf.moments + tf.batchNorm,
// NHWC, its layout; layer norm via tf.moments), on the same Dawn adapter in one process. Rows marked
// "└ <strategy>" time the family with each reduction strategy of src/wgsl/reduce_wg.ts forced.
// First checks that every implementation agrees with ours on the case's data. On a CPU device
// (lavapipe, shared with other jobs) the ratios compare process CPU seconds (lavapipe's threads
// included), which load disturbs far less than wall time; elsewhere the fastest repeat's wall time.
//
// Letters: N batch, C channels, H W spatial, G groups, R rows, D features.
//
//   tsx bench/norm.ts [--quick] [--no-tf] [--no-variants] [--min-time 1] [--out bench/results/norm.json]

import { parseArgs, setup, timeIt, printTable, writeJson, relDiff, fmt, meta } from './common.js';
import { tensor } from '../src/wgsl/fill.js';
import { Generator } from '../src/util/rng.js';
import { add, addScalar, mul, relu, rsqrt, silu, square, sub } from '../src/wgsl/elementwise.js';
import { mean } from '../src/wgsl/reduce.js';
import { requireGrad, reshape, view } from '../src/autograd/graph.js';
import { backward } from '../src/autograd/backward.js';
import { batchNorm2d, groupNorm, layerNorm, type NormOptions } from '../src/wgsl/norm.js';
import type { ReduceChoice } from '../src/wgsl/reduce_wg.js';
import type { Tensor } from '../src/autograd/tensor.js';

const args = parseArgs('bench/results/norm.json');
const minTime = Number(args.get('min-time') ?? (args.quick ? 0.3 : 1));
const withTf = !args.has('no-tf');
const b = await setup(withTf);
const { ctx, tf } = b;
if (tf) await registerTfGradients();

/**
 * tfjs-core ships its gradient functions only as ES modules that Node cannot load unbundled (the
 * `@tensorflow/tfjs` union package bundles them): bundle that one entry with esbuild and run it. Its
 * registry and engine are tfjs's global ones, so tf.grads then works in the main copy.
 */
async function registerTfGradients() {
  const { build } = await import('esbuild');
  const { createRequire } = await import('node:module');
  const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent' });
  await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.text).toString('base64')}`);
}
console.log(`device: ${ctx.deviceName}${tf ? ' (tfjs-backend-webgpu on the same adapter)' : ''}`);
const gen = new Generator(11);
const rand = (n: number, lo = -1, hi = 1) => new Float32Array(n).map(() => lo + (hi - lo) * gen.cpuUniform());
const EPS = 1e-5;

type TfT = import('@tensorflow/tfjs-core').Tensor;
type Kind = 'bn-train' | 'bn-train-relu' | 'bn-eval' | 'ln' | 'ln-plain' | 'gn-silu';
interface Case {
  name: string;
  kind: Kind;
  shape: number[];
  /** affine length (C or D) */
  P: number;
  groups?: number;
}
const CASES: Case[] = args.quick
  ? [
      { name: 'batchNorm2d train', kind: 'bn-train', shape: [8, 64, 16, 16], P: 64 },
      { name: 'layerNorm', kind: 'ln', shape: [512, 384], P: 384 },
      { name: 'groupNorm(32)+silu', kind: 'gn-silu', shape: [4, 64, 16, 16], P: 64, groups: 32 },
    ]
  : [
      { name: 'batchNorm2d train', kind: 'bn-train', shape: [16, 64, 32, 32], P: 64 },
      { name: 'batchNorm2d+relu train', kind: 'bn-train-relu', shape: [16, 64, 32, 32], P: 64 },
      { name: 'batchNorm2d eval', kind: 'bn-eval', shape: [16, 64, 32, 32], P: 64 },
      { name: 'batchNorm2d train @8x8', kind: 'bn-train', shape: [32, 256, 8, 8], P: 256 },
      { name: 'layerNorm', kind: 'ln', shape: [2048, 384], P: 384 },
      { name: 'layerNorm no affine', kind: 'ln-plain', shape: [2048, 384], P: 384 },
      { name: 'groupNorm(32)+silu', kind: 'gn-silu', shape: [8, 128, 32, 32], P: 128, groups: 32 },
    ];
const VARIANTS: ReduceChoice[] = ['loop', 'tree', { strategy: 'tree', wg: 64 }, 'subgroup', { strategy: 'subgroup', wg: 64 }];
const label = (s: ReduceChoice) => (typeof s === 'string' ? s : `${s.strategy} ${s.wg}`);

/** (x - mean) / sqrt(var + eps) over `axes`, from primitives. */
function normalise(x: Tensor, axes: number[]) {
  const xc = sub(x, mean(x, axes, true));
  return mul(xc, rsqrt(addScalar(mean(square(xc), axes, true), EPS)));
}

interface Inputs {
  x: Tensor;
  w: Tensor;
  b: Tensor;
  rm: Tensor;
  rv: Tensor;
}

/** The fused family on a case. */
function ours(c: Case, t: Inputs, strategy?: ReduceChoice): Tensor {
  const o: NormOptions = { strategy };
  switch (c.kind) {
    case 'bn-train':
    case 'bn-train-relu':
    case 'bn-eval':
      return batchNorm2d(t.x, t.w, t.b, t.rm, t.rv, { ...o, training: c.kind !== 'bn-eval', eps: EPS, activation: c.kind === 'bn-train-relu' ? 'relu' : 'none' });
    case 'ln':
      return layerNorm(t.x, [c.P], t.w, t.b, EPS, o);
    case 'ln-plain':
      return layerNorm(t.x, [c.P], null, null, EPS, o);
    case 'gn-silu':
      return groupNorm(t.x, c.groups!, t.w, t.b, EPS, { ...o, activation: 'silu' });
  }
}

/** The same math from our primitives (batch norm's running-statistic update is not included). */
function composite(c: Case, t: Inputs): Tensor {
  const chan = (p: Tensor) => view(p, [c.P, 1, 1]);
  switch (c.kind) {
    case 'bn-train':
    case 'bn-train-relu': {
      const y = add(mul(normalise(t.x, [0, 2, 3]), chan(t.w)), chan(t.b));
      return c.kind === 'bn-train-relu' ? relu(y) : y;
    }
    case 'bn-eval':
      return add(mul(mul(sub(t.x, chan(t.rm)), rsqrt(addScalar(chan(t.rv), EPS))), chan(t.w)), chan(t.b));
    case 'ln':
      return add(mul(normalise(t.x, [1]), t.w), t.b);
    case 'ln-plain':
      return normalise(t.x, [1]);
    case 'gn-silu': {
      const N = c.shape[0]!;
      const xn = reshape(normalise(reshape(t.x, [N, c.groups!, t.x.size / N / c.groups!]), [2]), c.shape);
      return silu(add(mul(xn, chan(t.w)), chan(t.b)));
    }
  }
}

/** tfjs where it has the op: batch norm (NHWC) and layer norm; null otherwise. */
function tfjsOp(c: Case): ((x: TfT, w: TfT, b: TfT, rm: TfT, rv: TfT) => TfT) | null {
  if (!tf) return null;
  switch (c.kind) {
    case 'bn-train':
    case 'bn-train-relu':
      return (x, w, b) => {
        const m = tf.moments(x, [0, 1, 2]);
        const y = tf.batchNorm(x, m.mean, m.variance, b, w, EPS);
        return c.kind === 'bn-train-relu' ? tf.relu(y) : y;
      };
    case 'bn-eval':
      return (x, w, b, rm, rv) => tf.batchNorm(x, rm, rv, b, w, EPS);
    case 'ln':
    case 'ln-plain':
      return (x, w, b) => {
        const m = tf.moments(x, -1, true);
        const y = tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, EPS)));
        return c.kind === 'ln' ? tf.add(tf.mul(y, w), b) : y;
      };
    default:
      return null;
  }
}

/** NCHW -> NHWC (tfjs's batch-norm layout), or the data as it is for other ranks. */
function toTfLayout(a: Float32Array, shape: number[]): [Float32Array, number[]] {
  if (shape.length !== 4) return [a, shape];
  const [N, C, H, W] = shape as [number, number, number, number];
  const o = new Float32Array(a.length);
  for (let n = 0; n < N; n++) for (let ch = 0; ch < C; ch++) for (let i = 0; i < H * W; i++) o[(n * H * W + i) * C + ch] = a[(n * C + ch) * H * W + i]!;
  return [o, [N, H, W, C]];
}

/** Time one implementation: forward only, or forward + backward (sync on dx). */
async function timeOurs(c: Case, t: Inputs, dy: Tensor, f: (t: Inputs) => Tensor, withBackward: boolean) {
  const leaves = c.kind === 'ln-plain' ? [t.x] : [t.x, t.w, t.b];
  return timeIt(
    async (iters) => {
      for (let i = 0; i < iters; i++) {
        const keep = ctx.scope(() => {
          if (!withBackward) return ctx.noGrad(() => f(t));
          for (const l of leaves) {
            l.grad?.dispose();
            l.grad = null;
          }
          backward(f(t), dy);
          return null;
        });
        if (i === iters - 1) await ctx.readBuffer((keep ?? t.x.grad!).buffer('bench'), 4);
        keep?.dispose();
      }
    },
    { minTime },
  );
}

const cpuDevice = /software|swiftshader/.test(ctx.adapterInfo.architecture);
const metric = cpuDevice ? 'cpu' : 'wall';
const cost = (t: { best: number; cpu: number }) => (cpuDevice ? t.cpu : t.best);

const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
for (const c of CASES) {
  const n = c.shape.reduce((p, q) => p * q, 1);
  const xd = rand(n, -2, 3), wd = rand(c.P, 0.5, 1.5), bd = rand(c.P), rmd = rand(c.P), rvd = rand(c.P, 0.5, 2), dyd = rand(n);
  const t: Inputs = {
    x: requireGrad(tensor(ctx, xd, c.shape)),
    w: requireGrad(tensor(ctx, wd, [c.P])),
    b: requireGrad(tensor(ctx, bd, [c.P])),
    rm: tensor(ctx, rmd, [c.P]),
    rv: tensor(ctx, rvd, [c.P]),
  };
  const dy = tensor(ctx, dyd, c.shape);
  // agreement on the case's data (forward); eval's running statistics are not updated
  const reference = await ctx.scope(async () => {
    const fresh = { ...t, rm: tensor(ctx, rmd, [c.P]), rv: tensor(ctx, rvd, [c.P]) };
    return ctx.noGrad(() => ours(c, fresh)).read();
  });
  const compOut = await ctx.scope(() => ctx.noGrad(() => composite(c, t)).read());
  const diffComp = relDiff(compOut, reference);
  if (!(diffComp < 1e-4)) throw new Error(`${c.name}: ours and the composite disagree (${diffComp})`);
  const tfop = tfjsOp(c);
  let diffTf = NaN;
  let tfIn: TfT[] = [];
  if (tf && tfop) {
    const [xt, st] = toTfLayout(xd, c.shape);
    tfIn = [tf.tensor(xt, st), tf.tensor1d(wd), tf.tensor1d(bd), tf.tensor1d(rmd), tf.tensor1d(rvd), tf.tensor(toTfLayout(dyd, c.shape)[0], st)];
    const o = tfop(tfIn[0]!, tfIn[1]!, tfIn[2]!, tfIn[3]!, tfIn[4]!);
    diffTf = relDiff((await o.data()) as Float32Array, toTfLayout(reference, c.shape)[0]);
    o.dispose();
    if (!(diffTf < 1e-4)) throw new Error(`${c.name}: ours and tfjs disagree (${diffTf})`);
  }
  for (const pass of ['fwd', 'fwd+bwd'] as const) {
    const bwd = pass === 'fwd+bwd';
    const to = await timeOurs(c, t, dy, (u) => ours(c, u), bwd);
    const tc = await timeOurs(c, t, dy, (u) => composite(c, u), bwd);
    let tt: { sec: number; best: number; cpu: number } | null = null;
    if (tf && tfop) {
      const [x, w, bb, rm, rv, dyt] = tfIn as [TfT, TfT, TfT, TfT, TfT, TfT];
      const affine = c.kind !== 'ln-plain';
      const grads = tf.grads((...a: TfT[]) => tfop(a[0]!, affine ? a[1]! : w, affine ? a[2]! : bb, rm, rv));
      const r = await timeIt(
        async (iters) => {
          let last: TfT[] = [];
          for (let i = 0; i < iters; i++) {
            for (const o of last) o.dispose();
            last = bwd ? grads(affine ? [x, w, bb] : [x], dyt) : [tfop(x, w, bb, rm, rv)];
          }
          const probe = tf.slice(tf.reshape(last[0]!, [-1]), [0], [1]);
          await probe.data();
          probe.dispose();
          for (const o of last) o.dispose();
        },
        { minTime },
      );
      tt = r;
    }
    const ms = (t: { best: number; cpu: number } | null) => (t ? fmt(cost(t) * 1e3) : '-');
    rows.push([
      c.name,
      JSON.stringify(c.shape),
      pass,
      fmt(to.best * 1e3),
      ms(to),
      ms(tc),
      ms(tt),
      fmt(cost(tc) / cost(to)),
      tt ? fmt(cost(tt) / cost(to)) : '-',
      diffComp.toExponential(1),
      Number.isNaN(diffTf) ? '-' : diffTf.toExponential(1),
    ]);
    results.push({ case: c.name, kind: c.kind, shape: c.shape, pass, ours: to, composite: tc, tfjs: tt, relDiffComposite: diffComp, relDiffTfjs: diffTf });
    if (!args.has('no-variants') && bwd)
      for (const s of VARIANTS) {
        const tv = await timeOurs(c, t, dy, (u) => ours(c, u, s), bwd);
        rows.push([`  └ ${label(s)}`, '', pass, fmt(tv.best * 1e3), ms(tv), '', '', fmt(cost(tc) / cost(tv)), '', '', '']);
        results.push({ case: c.name, kind: c.kind, shape: c.shape, pass, strategy: s, ours: tv });
      }
  }
  for (const u of [t.x, t.w, t.b, t.rm, t.rv, dy]) u.dispose();
  for (const u of [t.x, t.w, t.b]) u.grad?.dispose();
  for (const u of tfIn) u.dispose();
  await ctx.sync();
}
const table = printTable(
  ['case', 'shape', 'pass', 'ours ms (best)', `ours ${metric} ms`, `composite ${metric} ms`, `tfjs ${metric} ms`, 'composite/ours', 'tfjs/ours', 'rel diff composite', 'rel diff tfjs'],
  rows,
);
writeJson(args.out, { ...meta(ctx), benchmark: 'norm', metric, table, results });
await b.close();
process.exit(0);
