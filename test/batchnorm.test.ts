// batchNorm2d against float64 references: training (batch statistics, in-place running-stat update
// with the unbiased variance, full batch-stat backward) and eval (running statistics), forward and
// backward for x, weight and bias; the fused batchNorm2dRelu against batchNorm2d + relu; argument
// errors of the whole norm family (batchNorm2d, layerNorm, groupNorm). Layer and group norm's
// numerical checks are device-portable: test/portable/norm.ts.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, refVjp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { mul, relu } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { batchNorm2d, batchNorm2dRelu, groupNorm, layerNorm, type NormActivation } from '../src/wgsl/norm.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();
const SHAPES: [number, number, number, number][] = [
  [1, 3, 3, 5],
  [3, 5, 2, 3],
  [2, 4, 4, 4],
  [3, 2, 1, 1],
];

/** float64 batch norm; stats from the batch (training) or from rm/rv (eval). */
function refBn(shape: number[], training: boolean, eps: number, rm: Float64Array, rv: Float64Array, withRelu = false) {
  const [N, C, H, W] = shape as [number, number, number, number];
  const HW = H * W, M = N * HW;
  const batchStats = (x: Float64Array) => {
    const mean = new Float64Array(C), varB = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i]!;
      mean[c] = s / M;
      let q = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) q += (x[(n * C + c) * HW + i]! - mean[c]!) ** 2;
      varB[c] = q / M;
    }
    return { mean, varB };
  };
  const forward = (x: Float64Array, w: Float64Array, b: Float64Array) => {
    const { mean, varB } = training ? batchStats(x) : { mean: rm, varB: rv };
    const y = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / HW) % C;
      const v = ((x[i]! - mean[c]!) / Math.sqrt(varB[c]! + eps)) * w[c]! + b[c]!;
      y[i] = withRelu ? Math.max(v, 0) : v;
    }
    return y;
  };
  return { forward, batchStats, M };
}

async function runCase(ctx: Tensor['ctx'], rng: Rng, shape: [number, number, number, number], training: boolean, fused: boolean) {
  const C = shape[1];
  const eps = 1e-3 * (1 + rng.uniform(1)[0]!), momentum = 0.1 + 0.3 * rng.uniform(1, 0, 1)[0]!;
  const name = `${training ? 'train' : 'eval'}${fused ? '+relu' : ''} ${JSON.stringify(shape)}`;
  const xd = viaF32(rng.uniform(size(shape), -2, 3));
  const wd = viaF32(rng.uniform(C, 0.5, 1.5)), bd = viaF32(rng.uniform(C));
  const rmd = viaF32(rng.uniform(C)), rvd = viaF32(rng.uniform(C, 0.5, 2));
  const x = requireGrad(tensor(ctx, f32(xd), shape));
  const w = requireGrad(tensor(ctx, f32(wd), [C])), b = requireGrad(tensor(ctx, f32(bd), [C]));
  const rm = tensor(ctx, f32(rmd), [C]), rv = tensor(ctx, f32(rvd), [C]);
  const opts = { training, momentum, eps };
  const y = fused ? batchNorm2dRelu(x, w, b, rm, rv, opts) : relu(batchNorm2d(x, w, b, rm, rv, opts));
  const ref = refBn(shape, training, eps, rmd, rvd, true);
  const yd = ref.forward(xd, wd, bd);
  expectClose(await y.read(), yd, 1e-4, 1e-5, `${name} forward`);
  // running statistics (unbiased batch variance), updated in place only in training
  if (training) {
    const { mean, varB } = ref.batchStats(xd);
    const unbias = ref.M / (ref.M - 1);
    expectClose(await rm.read(), rmd.map((r, c) => (1 - momentum) * r + momentum * mean[c]!), 1e-5, 1e-6, `${name} runningMean`);
    expectClose(await rv.read(), rvd.map((r, c) => (1 - momentum) * r + momentum * varB[c]! * unbias), 1e-5, 1e-6, `${name} runningVar`);
  } else {
    expectClose(await rm.read(), rmd, 0, 0, `${name} runningMean untouched`);
    expectClose(await rv.read(), rvd, 0, 0, `${name} runningVar untouched`);
  }
  // keep dOut away from the relu kink: only elements clearly away from 0 carry a gradient
  const dOut = viaF32(rng.uniform(size(shape)).map((v, i) => (Math.abs(yd[i]!) < 1e-3 ? 0 : v)));
  backward(sum(mul(y, tensor(ctx, f32(dOut), shape))));
  const [dx, dw, db] = refVjp(ref.forward, [xd, wd, bd], dOut);
  expectClose(await x.grad!.read(), dx!, 2e-3, 2e-4, `${name} dx`);
  expectClose(await w.grad!.read(), dw!, 2e-3, 2e-4, `${name} dweight`);
  expectClose(await b.grad!.read(), db!, 2e-3, 2e-4, `${name} dbias`);
}

describe('batchNorm2d', () => {
  for (const training of [true, false])
    for (const fused of [false, true])
      it(`${training ? 'training' : 'eval'}${fused ? ' fused with relu' : ' (then relu)'}: forward, running stats and backward match float64`, async () => {
        const { ctx } = gpu;
        const rng = new Rng();
        for (const shape of SHAPES) await ctx.scope(() => runCase(ctx, rng, shape, training, fused));
      });

  it('without relu: forward and backward match float64; repeated training steps keep updating the running stats', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const shape: [number, number, number, number] = [2, 3, 3, 3];
    await ctx.scope(async () => {
      const xd = viaF32(rng.uniform(size(shape), -1, 2)), wd = viaF32(rng.uniform(3)), bd = viaF32(rng.uniform(3));
      const x = requireGrad(tensor(ctx, f32(xd), shape));
      const w = requireGrad(tensor(ctx, f32(wd), [3])), b = requireGrad(tensor(ctx, f32(bd), [3]));
      const rm = tensor(ctx, f32([0, 0, 0]), [3]), rv = tensor(ctx, f32([1, 1, 1]), [3]);
      const y = batchNorm2d(x, w, b, rm, rv, { training: true });
      ctx.noGrad(() => batchNorm2d(x, w, b, rm, rv, { training: true }));
      const ref = refBn(shape, true, 1e-5, new Float64Array(3), new Float64Array(3));
      expectClose(await y.read(), ref.forward(xd, wd, bd), 1e-4, 1e-5, 'forward');
      const { mean, varB } = ref.batchStats(xd);
      const u = ref.M / (ref.M - 1);
      // two updates with momentum 0.1 from (0, 1)
      expectClose(await rm.read(), mean.map((m) => 0.9 * 0.1 * m + 0.1 * m), 1e-5, 1e-6, 'runningMean after 2 steps');
      expectClose(await rv.read(), varB.map((v) => 0.9 * (0.9 + 0.1 * v * u) + 0.1 * v * u), 1e-5, 1e-6, 'runningVar after 2 steps');
      const dOut = viaF32(rng.uniform(size(shape)));
      backward(sum(mul(y, tensor(ctx, f32(dOut), shape))));
      const [dx, dw, db] = refVjp(ref.forward, [xd, wd, bd], dOut);
      expectClose(await x.grad!.read(), dx!, 2e-3, 2e-4, 'dx');
      expectClose(await w.grad!.read(), dw!, 2e-3, 2e-4, 'dweight');
      expectClose(await b.grad!.read(), db!, 2e-3, 2e-4, 'dbias');
    });
  });

  it('rejects bad shapes with the op and shapes named', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(2 * 3 * 4), [2, 3, 2, 2]);
      const c3 = tensor(ctx, new Float32Array(3), [3]);
      const c4 = tensor(ctx, new Float32Array(4), [4]);
      expect(() => batchNorm2d(x, c4, c3, c3, c3, { training: true })).toThrow(/batchNorm2d: weight must be \[3\] for input \[2,3,2,2\], got \[4\]/);
      expect(() => batchNorm2d(x, c3, c3, c3, c4, { training: false })).toThrow(/batchNorm2d: runningVar must be \[3\]/);
      const x3 = tensor(ctx, new Float32Array(6), [2, 3]);
      expect(() => batchNorm2d(x3, c3, c3, c3, c3, { training: true })).toThrow(/batchNorm2d: input must be 4-D \[N,C,H,W\], got f32\[2,3\]/);
      const one = tensor(ctx, new Float32Array(3), [1, 3, 1, 1]);
      expect(() => batchNorm2d(one, c3, c3, c3, c3, { training: true })).toThrow(/more than one value per channel/);
      expect(() => batchNorm2d(one, c3, c3, c3, c3, { training: false })).not.toThrow();
    });
  });

  it('rejects bad momentum, eps and activation before launching anything', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(2 * 3 * 4), [2, 3, 2, 2]);
      const c3 = tensor(ctx, new Float32Array(3), [3]);
      for (const momentum of [-0.1, 1.5, NaN])
        expect(() => batchNorm2d(x, c3, c3, c3, c3, { training: true, momentum })).toThrow(/batchNorm2d: momentum must be in \[0, 1\], got/);
      for (const eps of [0, -1e-5, NaN, Infinity])
        expect(() => batchNorm2d(x, c3, c3, c3, c3, { training: true, eps })).toThrow(/batchNorm2d: eps must be a finite number > 0, got/);
      expect(() => batchNorm2d(x, c3, c3, c3, c3, { training: true, activation: 'gelu' as NormActivation })).toThrow(
        /batchNorm2d: activation must be 'none', 'relu' or 'silu', got gelu/,
      );
      const rg = requireGrad(tensor(ctx, new Float32Array(3), [3]));
      expect(() => batchNorm2d(x, c3, c3, rg, c3, { training: true })).toThrow(/must not require grad/);
    });
  });
});

describe('layerNorm and groupNorm arguments', () => {
  it('layerNorm names the tensor and shapes on bad input', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(24), [2, 3, 4]);
      const d4 = tensor(ctx, new Float32Array(4), [4]);
      const d3 = tensor(ctx, new Float32Array(3), [3]);
      const d34 = tensor(ctx, new Float32Array(12), [3, 4]);
      expect(() => layerNorm(x, [3])).toThrow(/layerNorm: input \[2,3,4\] does not end with normalizedShape \[3\]/);
      expect(() => layerNorm(x, [1, 2, 3, 4])).toThrow(/does not end with normalizedShape \[1,2,3,4\]/);
      expect(() => layerNorm(x, [])).toThrow(/layerNorm: normalizedShape must be a non-empty list of positive integers, got \[\]/);
      expect(() => layerNorm(x, [0])).toThrow(/normalizedShape must be a non-empty list of positive integers, got \[0\]/);
      expect(() => layerNorm(x, 4, d3)).toThrow(/layerNorm: weight must be \[4\] for input \[2,3,4\], got \[3\]/);
      expect(() => layerNorm(x, [3, 4], d34, d4)).toThrow(/layerNorm: bias must be \[3,4\] for input \[2,3,4\], got \[4\]/);
      expect(() => layerNorm(x, 4, d4, d4, 0)).toThrow(/layerNorm: eps must be a finite number > 0, got 0/);
      expect(() => layerNorm(x, 4, null, null, NaN)).toThrow(/layerNorm: eps must be a finite number > 0, got NaN/);
      expect(() => layerNorm(x, 4, null, null, 1e-5, { activation: 'tanh' as NormActivation })).toThrow(/layerNorm: activation must be/);
      const xi = tensor(ctx, new Int32Array(4), [1, 4], 'i32');
      expect(() => layerNorm(xi, 4)).toThrow(/layerNorm: input must be f32, got i32\[1,4\]/);
      expect(() => layerNorm(x, 4, d4, d4)).not.toThrow();
    });
  });

  it('groupNorm names the tensor and shapes on bad input', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const x = tensor(ctx, new Float32Array(36), [2, 6, 3]);
      const c6 = tensor(ctx, new Float32Array(6), [6]);
      const c4 = tensor(ctx, new Float32Array(4), [4]);
      expect(() => groupNorm(x, 4)).toThrow(/groupNorm: numGroups must be a positive integer dividing the 6 channels of input \[2,6,3\], got 4/);
      expect(() => groupNorm(x, 0)).toThrow(/numGroups must be a positive integer dividing/);
      expect(() => groupNorm(x, 1.5)).toThrow(/numGroups must be a positive integer dividing/);
      expect(() => groupNorm(x, 3, c4)).toThrow(/groupNorm: weight must be \[6\] for input \[2,6,3\], got \[4\]/);
      expect(() => groupNorm(x, 3, c6, c4)).toThrow(/groupNorm: bias must be \[6\] for input \[2,6,3\], got \[4\]/);
      expect(() => groupNorm(x, 3, c6, c6, -1)).toThrow(/groupNorm: eps must be a finite number > 0, got -1/);
      const v = tensor(ctx, new Float32Array(6), [6]);
      expect(() => groupNorm(v, 3)).toThrow(/groupNorm: input must be \[N, C, \*\], got f32\[6\]/);
      expect(() => groupNorm(x, 3, c6, c6, 1e-6, { activation: 'silu' })).not.toThrow();
    });
  });
});
