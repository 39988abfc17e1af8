// Device-portable checks of the normalisation family (src/wgsl/norm.ts) and of the shared workgroup
// reduction (src/wgsl/reduce_wg.ts, through reduce's workgroup path): layer, group and batch norm
// forward and backward against float64 references, each reduction strategy forced in turn, and the
// fused kernels against the same math composed from primitives. Browser-safe; shapes kept tiny.
//
// Letters: N batch, C channels, G groups, S spatial positions, R rows, D normalised features.

import type { GpuContext } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import { requireGrad, reshape, view } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { tensor } from '../../src/wgsl/fill.js';
import { add, addScalar, mul, relu, rsqrt, silu, square, sub } from '../../src/wgsl/elementwise.js';
import { mean, reduceRaw, sum, type ReduceKind } from '../../src/wgsl/reduce.js';
import { batchNorm2d, groupNorm, layerNorm, type NormActivation } from '../../src/wgsl/norm.js';
import type { ReduceChoice } from '../../src/wgsl/reduce_wg.js';
import type { Check } from './checks.js';
import { Rng, assertClose, f32, viaF32, refVjp, size } from './ref.js';

/**
 * The workgroup reduction paths: the tree (64 wide: wider trees are the same code), one subgroup per
 * workgroup, and several (with the one-barrier step); devices without a fixed subgroup size run
 * trees instead. The tiny shapes of the other checks take the loop path (one invocation per output).
 */
const WORKGROUP_STRATEGIES: ReduceChoice[] = [{ strategy: 'tree', wg: 64 }, 'subgroup', { strategy: 'subgroup', wg: 64 }];
const label = (s: ReduceChoice | undefined) => (s === undefined ? '' : ` (${typeof s === 'string' ? s : `${s.strategy} ${s.wg}`})`);

const actRef: Record<NormActivation, (z: number) => number> = {
  none: (z) => z,
  relu: (z) => Math.max(z, 0),
  silu: (z) => z / (1 + Math.exp(-z)),
};

/**
 * Float64 normalisation: value i belongs to statistic group groupOf(i) and affine channel
 * channelOf(i); each group is normalised with its mean and biased variance (or with `fixed` mean /
 * variance per group), then z = xhat·w + b and y = act(z). Returns y and z.
 */
function refNorm(
  x: Float64Array,
  nGroups: number,
  groupOf: (i: number) => number,
  channelOf: (i: number) => number,
  w: Float64Array | null,
  b: Float64Array | null,
  eps: number,
  act: NormActivation,
  fixed?: { mean: Float64Array; variance: Float64Array },
) {
  const cnt = new Float64Array(nGroups), mu = new Float64Array(nGroups), va = new Float64Array(nGroups);
  if (fixed) {
    mu.set(fixed.mean);
    va.set(fixed.variance);
  } else {
    for (let i = 0; i < x.length; i++) {
      cnt[groupOf(i)]++;
      mu[groupOf(i)] += x[i]!;
    }
    for (let g = 0; g < nGroups; g++) mu[g] /= cnt[g]!;
    for (let i = 0; i < x.length; i++) va[groupOf(i)] += (x[i]! - mu[groupOf(i)]!) ** 2;
    for (let g = 0; g < nGroups; g++) va[g] /= cnt[g]!;
  }
  const z = new Float64Array(x.length), y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const g = groupOf(i), c = channelOf(i);
    z[i] = ((x[i]! - mu[g]!) / Math.sqrt(va[g]! + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
    y[i] = actRef[act](z[i]!);
  }
  return { y, z, mu, va, cnt };
}

/** Output gradient for a check: random, but zero near relu's kink (|z| < 1e-3). */
function outGrad(rng: Rng, z: Float64Array, act: NormActivation) {
  return viaF32(rng.uniform(z.length).map((v, i) => (act === 'relu' && Math.abs(z[i]!) < 1e-3 ? 0 : v)));
}

/** loss = sum(y * dOut) so backward sees dOut as the output gradient */
function backwardWith(y: Tensor, dOut: Float64Array) {
  backward(sum(mul(y, tensor(y.ctx, f32(dOut), y.shape))));
}

interface Case {
  what: string;
  shape: number[];
  /** shape of weight / bias (null: absent) */
  affine: number[] | null;
  hasBias?: boolean;
  act: NormActivation;
}

/**
 * Run one forward/backward comparison on fresh random inputs: `run` applies the GPU op to
 * (x, w?, b?), `ref` is the float64 function of (x, w?, b?) returning { y, z }. Returns the input x.
 */
async function compare(
  ctx: GpuContext,
  rng: Rng,
  c: Case,
  run: (x: Tensor, w: Tensor | null, b: Tensor | null) => Tensor,
  ref: (x: Float64Array, w: Float64Array | null, b: Float64Array | null) => { y: Float64Array; z: Float64Array },
) {
  const xd = viaF32(rng.uniform(size(c.shape), -2, 3));
  const P = c.affine ? size(c.affine) : 0;
  const wd = c.affine ? viaF32(rng.uniform(P, 0.5, 1.5)) : null;
  const bd = c.affine && c.hasBias !== false ? viaF32(rng.uniform(P)) : null;
  const x = requireGrad(tensor(ctx, f32(xd), c.shape));
  const w = wd ? requireGrad(tensor(ctx, f32(wd), c.affine!)) : null;
  const b = bd ? requireGrad(tensor(ctx, f32(bd), c.affine!)) : null;
  const y = run(x, w, b);
  const { y: yd, z } = ref(xd, wd, bd);
  assertClose(await y.read(), yd, 1e-4, 1e-5, `${c.what} forward`);
  const dOut = outGrad(rng, z, c.act);
  backwardWith(y, dOut);
  const inputs = [xd, ...(wd ? [wd] : []), ...(bd ? [bd] : [])];
  const grads = refVjp((p, ...rest) => ref(p, wd ? rest[0]! : null, bd ? rest[wd ? 1 : 0]! : null).y, inputs, dOut);
  assertClose(await x.grad!.read(), grads[0]!, 2e-3, 2e-4, `${c.what} dx`);
  if (w) assertClose(await w.grad!.read(), grads[1]!, 2e-3, 2e-4, `${c.what} dweight`);
  if (b) assertClose(await b.grad!.read(), grads[w ? 2 : 1]!, 2e-3, 2e-4, `${c.what} dbias`);
  return xd;
}

/** layerNorm case over the trailing `nd` dims of `shape`. */
function layerNormCase(ctx: GpuContext, rng: Rng, shape: number[], nd: number, affine: boolean, act: NormActivation, eps: number, strategy?: ReduceChoice, hasBias = true) {
  const ns = shape.slice(shape.length - nd);
  const D = size(ns);
  const what = `layerNorm ${JSON.stringify(shape)} over ${JSON.stringify(ns)} ${affine ? (hasBias ? 'affine' : 'weight only') : 'no affine'} ${act}${label(strategy)}`;
  return compare(
    ctx,
    rng,
    { what, shape, affine: affine ? ns : null, hasBias, act },
    (x, w, b) => layerNorm(x, ns, w, b, eps, { activation: act, strategy }),
    (x, w, b) => refNorm(x, size(shape) / D, (i) => Math.floor(i / D), (i) => i % D, w, b, eps, act),
  );
}

/** groupNorm case: x [N, C, *], G groups. */
function groupNormCase(ctx: GpuContext, rng: Rng, shape: number[], G: number, affine: boolean, act: NormActivation, eps: number, strategy?: ReduceChoice) {
  const [N, C] = shape as [number, number];
  const S = size(shape.slice(2));
  const what = `groupNorm ${JSON.stringify(shape)} G=${G} ${affine ? 'affine' : 'no affine'} ${act}${label(strategy)}`;
  return compare(
    ctx,
    rng,
    { what, shape, affine: affine ? [C] : null, act },
    (x, w, b) => groupNorm(x, G, w, b, eps, { activation: act, strategy }),
    (x, w, b) => refNorm(x, N * G, (i) => Math.floor(i / ((C / G) * S)), (i) => Math.floor(i / S) % C, w, b, eps, act),
  );
}

/** batchNorm2d case (train or eval) including the running statistics. */
async function batchNormCase(ctx: GpuContext, rng: Rng, shape: [number, number, number, number], training: boolean, act: NormActivation, strategy?: ReduceChoice) {
  const [, C, H, W] = shape;
  const S = H * W;
  const eps = 1e-5 * (1 + rng.uniform(1, 0, 9)[0]!), momentum = 0.05 + 0.5 * rng.uniform(1, 0, 1)[0]!;
  const rmd = viaF32(rng.uniform(C)), rvd = viaF32(rng.uniform(C, 0.5, 2));
  const rm = tensor(ctx, f32(rmd), [C]), rv = tensor(ctx, f32(rvd), [C]);
  const chan = (i: number) => Math.floor(i / S) % C;
  const ref = (x: Float64Array, w: Float64Array | null, b: Float64Array | null) =>
    refNorm(x, C, chan, chan, w, b, eps, act, training ? undefined : { mean: rmd, variance: rvd });
  const what = `batchNorm2d ${JSON.stringify(shape)} ${training ? 'train' : 'eval'} ${act}${label(strategy)}`;
  const xd = await compare(
    ctx,
    rng,
    { what, shape, affine: [C], act },
    (x, w, b) => batchNorm2d(x, w!, b!, rm, rv, { training, momentum, eps, activation: act, strategy }),
    ref,
  );
  const { mu, va, cnt } = refNorm(xd, C, chan, chan, null, null, eps, 'none');
  const expMean = training ? rmd.map((r, c) => (1 - momentum) * r + momentum * mu[c]!) : rmd;
  const expVar = training ? rvd.map((r, c) => (1 - momentum) * r + momentum * va[c]! * (cnt[c]! / (cnt[c]! - 1))) : rvd;
  assertClose(await rm.read(), expMean, 1e-5, 1e-6, `${what} runningMean`);
  assertClose(await rv.read(), expVar, 1e-5, 1e-6, `${what} runningVar`);
}

/** float64 reduction of [outer, R, inner] along R, like reduceRaw. */
function refReduce(kind: ReduceKind, x: Float64Array, outer: number, R: number, inner: number) {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < inner; j++) {
      let acc = kind === 'sum' ? 0 : x[o * R * inner + j]!;
      let idx = 0;
      for (let r = 0; r < R; r++) {
        const v = x[(o * R + r) * inner + j]!;
        if (kind === 'sum') acc += v;
        else if (kind === 'max' || kind === 'argmax' ? v > acc : v < acc) [acc, idx] = [v, r];
      }
      out[o * inner + j] = kind.startsWith('arg') ? idx : acc;
    }
  return out;
}

export const NORM_CHECKS: Check[] = [
  {
    name: 'layerNorm: over 1 and 2 trailing dims, with and without affine, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        // D % 4 == 0 takes the vec4 elementwise kernels, the other D the scalar ones
        await layerNormCase(ctx, rng, [3, 5], 1, true, 'none', 1e-5);
        await layerNormCase(ctx, rng, [2, 3, 4], 2, false, 'none', 1e-5);
        await layerNormCase(ctx, rng, [2, 2, 6], 1, true, 'none', 1e-6, undefined, false);
        await layerNormCase(ctx, rng, [4, 2, 3], 2, true, 'relu', 1e-3);
        await layerNormCase(ctx, rng, [3, 2, 4], 2, true, 'silu', 1e-5, undefined, false);
      }),
  },
  {
    name: 'groupNorm: G = 1, G = C and between, 4-D and 3-D, with and without affine, fused SiLU, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        // spatial size S % 4 == 0 takes the vec4 elementwise kernels
        await groupNormCase(ctx, rng, [2, 4, 3, 4], 2, true, 'silu', 1e-6);
        await groupNormCase(ctx, rng, [2, 4, 3, 2], 2, true, 'silu', 1e-6);
        await groupNormCase(ctx, rng, [2, 3, 5], 3, false, 'none', 1e-5);
        await groupNormCase(ctx, rng, [3, 4, 2, 2], 1, true, 'none', 1e-5);
        await groupNormCase(ctx, rng, [2, 6, 4], 3, true, 'silu', 1e-5);
        await groupNormCase(ctx, rng, [2, 4, 3], 4, false, 'silu', 1e-6);
      }),
  },
  {
    name: 'batchNorm2d through the norm family: train and eval, fused relu and silu, running statistics',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        await batchNormCase(ctx, rng, [3, 2, 2, 3], true, 'relu');
        await batchNormCase(ctx, rng, [2, 3, 2, 2], false, 'relu');
        await batchNormCase(ctx, rng, [2, 2, 3, 1], true, 'silu');
        await batchNormCase(ctx, rng, [2, 2, 2, 4], true, 'silu');
      }),
  },
  {
    name: 'norm family with each workgroup reduction path forced (tree, one subgroup, several subgroups): forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        for (const s of WORKGROUP_STRATEGIES) {
          // group norm reduces rows (statistics, dx sums) and channels (dweight, dbias); its spatial
          // rows are longer than a subgroup and shorter than a tree (the lane split); layer norm runs
          // the same kernels with S = 1 (one kernel variant each, as SwiftShader compiles slowly)
          await groupNormCase(ctx, rng, [2, 4, 19], 2, true, 'silu', 1e-6, s);
          await layerNormCase(ctx, rng, [3, 37], 1, true, 'silu', 1e-5, s);
          await batchNormCase(ctx, rng, [3, 2, 3, 5], true, 'relu', s);
        }
      }),
  },
  {
    name: 'reduce: workgroup paths (shared reduction: tree, one subgroup, several subgroups) on long rows, sum/max/argmax/argmin, first index on ties',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        for (const [outer, R, inner] of [
          [3, 700, 1],
          [2, 300, 3],
        ] as const) {
          const xd = viaF32(rng.uniform(outer * R * inner, -3, 3));
          const x = tensor(ctx, f32(xd), [outer, R, inner]);
          // min shares max's code with the comparison flipped; argmin is the flipped argmax
          const runs = WORKGROUP_STRATEGIES.flatMap((s) => (['sum', 'max', 'argmax', 'argmin'] as const).map((kind) => ({ s, kind, out: reduceRaw(kind, x, 1, s) })));
          const got = await Promise.all(runs.map((r) => r.out.read()));
          runs.forEach(({ s, kind }, j) =>
            assertClose(got[j]!, refReduce(kind, xd, outer, R, inner), kind === 'sum' ? 1e-5 : 0, kind === 'sum' ? 1e-4 : 0, `${kind} over [${outer},${R},${inner}] axis 1${label(s)}`),
          );
        }
        // ties: the first index wins, whichever lane holds it
        const tie = new Float32Array(500).fill(-1);
        tie[400] = 2;
        tie[131] = 2;
        tie[299] = 2;
        const t = tensor(ctx, tie, [1, 500]);
        for (const s of WORKGROUP_STRATEGIES) assertClose(await reduceRaw('argmax', t, 1, s).read(), [131], 0, 0, `argmax first of tied maxima${label(s)}`);
      }),
  },
  {
    name: 'layerNorm / groupNorm / batchNorm2d agree with the same math composed from primitives, forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const eps = 1e-5;
        // composite: (x - mean) * rsqrt(mean((x - mean)^2) + eps) over `axes`
        const normalise = (x: Tensor, axes: number[]) => {
          const xc = sub(x, mean(x, axes, true));
          return mul(xc, rsqrt(addScalar(mean(square(xc), axes, true), eps)));
        };
        const [N, C, H, W, G] = [2, 4, 3, 3, 2];
        const xd = f32(rng.uniform(N * C * H * W, -2, 3));
        const wd = f32(rng.uniform(C, 0.5, 1.5)), bd = f32(rng.uniform(C));
        const dOut = f32(rng.uniform(N * C * H * W));
        const cases: [string, (x: Tensor, w: Tensor, b: Tensor) => Tensor, (x: Tensor, w: Tensor, b: Tensor) => Tensor][] = [
          [
            'groupNorm+silu',
            (x, w, b) => groupNorm(x, G, w, b, eps, { activation: 'silu' }),
            (x, w, b) => {
              const xn = reshape(normalise(reshape(x, [N, G, (C / G) * H * W]), [2]), [N, C, H, W]);
              return silu(add(mul(xn, view(w, [C, 1, 1])), view(b, [C, 1, 1])));
            },
          ],
          [
            'layerNorm over [H, W]',
            (x) => layerNorm(x, [H, W], null, null, eps),
            (x) => normalise(x, [2, 3]),
          ],
          [
            'batchNorm2d+relu (train)',
            (x, w, b) => batchNorm2d(x, w, b, tensor(ctx, new Float32Array(C), [C]), tensor(ctx, new Float32Array(C).fill(1), [C]), { training: true, eps, activation: 'relu' }),
            (x, w, b) => relu(add(mul(normalise(x, [0, 2, 3]), view(w, [C, 1, 1])), view(b, [C, 1, 1]))),
          ],
        ];
        for (const [what, fused, composite] of cases) {
          const outs = [];
          for (const f of [fused, composite]) {
            const x = requireGrad(tensor(ctx, xd, [N, C, H, W]));
            const w = requireGrad(tensor(ctx, wd, [C])), b = requireGrad(tensor(ctx, bd, [C]));
            const y = f(x, w, b);
            const yv = await y.read();
            backward(sum(mul(y, tensor(ctx, dOut, [N, C, H, W]))));
            outs.push({ y: yv, dx: await x.grad!.read(), dw: w.grad ? await w.grad.read() : null, db: b.grad ? await b.grad.read() : null });
          }
          const [a, e] = outs as [(typeof outs)[0], (typeof outs)[0]];
          assertClose(a.y, e.y, 1e-4, 1e-5, `${what} forward vs composite`);
          assertClose(a.dx, e.dx, 2e-3, 2e-4, `${what} dx vs composite`);
          if (e.dw) assertClose(a.dw!, e.dw, 2e-3, 2e-4, `${what} dweight vs composite`);
          if (e.db) assertClose(a.db!, e.db, 2e-3, 2e-4, `${what} dbias vs composite`);
        }
      }),
  },
];
