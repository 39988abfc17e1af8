// ResNet-18 end to end on a tiny instance (width 4, 8x8 inputs): the forward pass matches a float64
// reference of torchvision's architecture (both stems, eval and train mode), SGD lowers the loss, and
// the gradient of single conv weight entries matches central finite differences of the GPU forward
// (eval mode, BatchNorm on running statistics; and training mode through the batch statistics).
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose, fitSteps, expectElementGradMatchesFd } from './helpers.js';
import { tensor, randn } from '../src/wgsl/fill.js';
import { mean, sum } from '../src/wgsl/reduce.js';
import { mul } from '../src/wgsl/elementwise.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { SGD } from '../src/nn/optim.js';
import { ResNet } from '../src/models/resnet.js';
import { copyTensor } from '../src/nn/module.js';
import { Generator } from '../src/util/rng.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

// ------------------------------------------------------------------------------------------------
// float64 reference of torchvision's ResNet-18 forward, on NCHW arrays with explicit shapes

type Arr = { d: Float64Array; s: number[] };
function conv(x: Arr, w: Arr, stride: number, pad: number): Arr {
  const [N, C, H, W] = x.s as [number, number, number, number];
  const [O, , K] = w.s as [number, number, number, number];
  const OH = Math.floor((H + 2 * pad - K) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - K) / stride) + 1;
  const d = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let acc = 0;
          for (let c = 0; c < C; c++)
            for (let a = 0; a < K; a++)
              for (let b = 0; b < K; b++) {
                const y = i * stride - pad + a;
                const z = j * stride - pad + b;
                if (y >= 0 && y < H && z >= 0 && z < W) acc += x.d[((n * C + c) * H + y) * W + z]! * w.d[((o * C + c) * K + a) * K + b]!;
              }
          d[((n * O + o) * OH + i) * OW + j] = acc;
        }
  return { d, s: [N, O, OH, OW] };
}
function bn(x: Arr, p: (k: string) => Float64Array, name: string, training: boolean): Arr {
  const [N, C, H, W] = x.s as [number, number, number, number];
  const [g, b, rm, rv] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => p(`${name}.${k}`)) as Float64Array[];
  const d = new Float64Array(x.d.length);
  for (let c = 0; c < C; c++) {
    let mu = rm![c]!;
    let va = rv![c]!;
    if (training) {
      let s1 = 0;
      let s2 = 0;
      for (let n = 0; n < N; n++) for (let q = 0; q < H * W; q++) s1 += x.d[(n * C + c) * H * W + q]!;
      mu = s1 / (N * H * W);
      for (let n = 0; n < N; n++) for (let q = 0; q < H * W; q++) s2 += (x.d[(n * C + c) * H * W + q]! - mu) ** 2;
      va = s2 / (N * H * W);
    }
    for (let n = 0; n < N; n++)
      for (let q = 0; q < H * W; q++) {
        const k = (n * C + c) * H * W + q;
        d[k] = ((x.d[k]! - mu) / Math.sqrt(va + 1e-5)) * g![c]! + b![c]!;
      }
  }
  return { d, s: x.s };
}
const reluA = (x: Arr): Arr => ({ d: x.d.map((v) => Math.max(v, 0)), s: x.s });
const addA = (x: Arr, y: Arr): Arr => ({ d: x.d.map((v, i) => v + y.d[i]!), s: x.s });
function maxpool3s2p1(x: Arr): Arr {
  const [N, C, H, W] = x.s as [number, number, number, number];
  const OH = Math.floor((H + 2 - 3) / 2) + 1;
  const OW = Math.floor((W + 2 - 3) / 2) + 1;
  const d = new Float64Array(N * C * OH * OW).fill(-Infinity);
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++)
        for (let a = 0; a < 3; a++)
          for (let b = 0; b < 3; b++) {
            const y = 2 * i - 1 + a;
            const z = 2 * j - 1 + b;
            if (y >= 0 && y < H && z >= 0 && z < W) d[(nc * OH + i) * OW + j] = Math.max(d[(nc * OH + i) * OW + j]!, x.d[(nc * H + y) * W + z]!);
          }
  return { d, s: [N, C, OH, OW] };
}
/** logits [N, classes] of torchvision's resnet18 with the given state (float64). */
function resnetRef(x: Arr, sd: Map<string, Arr>, variant: 'cifar' | 'imagenet', training: boolean): Float64Array {
  const p = (k: string) => sd.get(k)!.d;
  const W = (k: string) => sd.get(k)!;
  let h = variant === 'cifar' ? conv(x, W('conv1.weight'), 1, 1) : conv(x, W('conv1.weight'), 2, 3);
  h = reluA(bn(h, p, 'bn1', training));
  if (variant === 'imagenet') h = maxpool3s2p1(h);
  for (let l = 1; l <= 4; l++)
    for (let b = 0; b < 2; b++) {
      const pre = `layer${l}.${b}`;
      const stride = l > 1 && b === 0 ? 2 : 1;
      let o = reluA(bn(conv(h, W(`${pre}.conv1.weight`), stride, 1), p, `${pre}.bn1`, training));
      o = bn(conv(o, W(`${pre}.conv2.weight`), 1, 1), p, `${pre}.bn2`, training);
      const id = sd.has(`${pre}.downsample.0.weight`) ? bn(conv(h, W(`${pre}.downsample.0.weight`), stride, 0), p, `${pre}.downsample.1`, training) : h;
      h = reluA(addA(o, id));
    }
  const [N, C, HH, WW] = h.s as [number, number, number, number];
  const fw = W('fc.weight');
  const K = fw.s[0]!;
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      let acc = p('fc.bias')[k]!;
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let q = 0; q < HH * WW; q++) m += h.d[(n * C + c) * HH * WW + q]!;
        acc += (m / (HH * WW)) * fw.d[k * C + c]!;
      }
      out[n * K + k] = acc;
    }
  return out;
}

describe('ResNet-18 (tiny)', () => {
  for (const [variant, S] of [['cifar', 8], ['imagenet', 16]] as const)
    for (const mode of ['eval', 'train'] as const)
      it(`forward matches a float64 reference of torchvision's ResNet-18 (${variant} stem, ${mode} mode)`, async () => {
        const { ctx } = gpu;
        const rng = new Rng();
        const rint = (n: number) => rng.int(1, n)[0]!;
        const model = new ResNet(ctx, { width: 4, numClasses: 5, variant, seed: rint(1000) });
        // non-trivial running statistics and BN affine parameters
        ctx.scope(() => model.forward(randn(ctx, [3, 3, S, S], new Generator(rint(1000)), 0.5, 2)));
        for (const [n, t] of model.namedParameters())
          if (/bn|downsample\.1/.test(n)) ctx.scope(() => copyTensor('test', tensor(ctx, f32(rng.uniform(t.size, n.endsWith('weight') ? 0.5 : -0.5, n.endsWith('weight') ? 1.5 : 0.5)), t.shape), t));
        model.train(mode === 'train');
        const sd = new Map<string, { d: Float64Array; s: number[] }>();
        for (const [n, t] of model.stateDict()) sd.set(n, { d: Float64Array.from(await t.read()), s: [...t.shape] });
        const xd = viaF32(rng.normal(4 * 3 * S * S));
        const logits = await ctx.scope(async () => model.forward(tensor(ctx, f32(xd), [4, 3, S, S])).read());
        const ref = resnetRef({ d: xd, s: [4, 3, S, S] }, sd, variant, mode === 'train');
        expectClose(logits, ref, 2e-3, 2e-4, `${variant} ${mode} logits`);
        model.dispose();
      });

  it('eval mode with batch norm folded into the convolutions (fuseEval) gives the separate passes\' logits and every parameter gradient', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const rint = (n: number) => rng.int(1, n)[0]!;
    const model = new ResNet(ctx, { width: 4, numClasses: 5, seed: rint(1000) });
    ctx.scope(() => model.forward(randn(ctx, [6, 3, 8, 8], new Generator(rint(1000)), 0.5, 2)));
    for (const [n, t] of model.namedParameters())
      if (/bn|downsample\.1/.test(n)) ctx.scope(() => copyTensor('test', tensor(ctx, f32(rng.uniform(t.size, 0.5, 1.5)), t.shape), t));
    model.eval();
    const x = ctx.keep(randn(ctx, [4, 3, 8, 8], new Generator(rint(1000))));
    const dir = ctx.keep(randn(ctx, [4, 5], new Generator(rint(1000))));
    const run = async (fuse: boolean) => {
      model.fuseEval = fuse;
      model.zeroGrad();
      const logits = await ctx.scope(async () => {
        const y = model.forward(x);
        backward(sum(mul(y, dir)));
        return y.read();
      });
      const grads = new Map<string, Float32Array>();
      for (const [n, t] of model.namedParameters()) grads.set(n, await t.grad!.read());
      return { logits, grads };
    };
    const fused = await run(true);
    const apart = await run(false);
    expect(model.fuseEval).toBe(false);
    expectClose(fused.logits, apart.logits, 1e-4, 1e-5, 'eval logits');
    for (const [n, g] of apart.grads) expectClose(fused.grads.get(n)!, g, 1e-3, 1e-5, `d ${n}`);
    x.dispose();
    dir.dispose();
    model.dispose();
  });

  it('loss goes down over a few SGD steps (cifar and imagenet stems)', async () => {
    const { ctx } = gpu;
    for (const variant of ['cifar', 'imagenet'] as const) {
      const model = new ResNet(ctx, { width: 4, numClasses: 3, variant, seed: 11 });
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = ctx.keep(randn(ctx, [4, 3, 8, 8], new Generator(3)));
      const y = ctx.keep(labelsTensor(ctx, [0, 1, 2, 1], 3));
      const losses = await fitSteps(ctx, opt, 8, () => mean(crossEntropy(model.forward(x), y)));
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]!, `${variant}: ${losses.join(', ')}`).toBeLessThan(losses[0]! * 0.6);
      expect(await model.stateDict().get('layer3.0.bn2.num_batches_tracked')!.item()).toBe(8);
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    }
  });

  for (const mode of ['eval', 'train'] as const) {
    it(`conv weight gradients match finite differences (${mode} mode)`, async () => {
      const { ctx } = gpu;
      // A fixed instance: f32 central differences through a kinky net (ReLUs, batch statistics) miss
      // on ~1 draw in 10, which would make CI flaky. Exactness against PyTorch is checked by
      // test/resnet-golden.test.ts; this test keeps an independent check on one tiny instance per mode.
      const rng = new Rng(mode === 'eval' ? 1011 : 1012);
      const rint = (n: number) => rng.int(1, n)[0]!;
      const model = new ResNet(ctx, { width: 4, numClasses: 3, seed: rint(1000) });
      // non-trivial running statistics first, then freeze them by choosing the mode
      ctx.scope(() => model.forward(randn(ctx, [8, 3, 16, 16], new Generator(rint(1000)), 0.3, 1.2)));
      model.train(mode === 'train');
      const x = ctx.keep(randn(ctx, [8, 3, 16, 16], new Generator(rint(1000))));
      const dir = ctx.keep(randn(ctx, [8, 3], new Generator(rint(1000))));
      // loss = sum(logits * dir): a fixed random projection of the output
      const forwardLoss = () => sum(mul(model.forward(x), dir));
      // (the graph must stay alive until backward: forward and backward share one scope)
      ctx.scope(() => backward(forwardLoss()));
      const sd = model.stateDict();
      for (const name of ['conv1.weight', 'layer1.0.conv2.weight', 'layer2.0.downsample.0.weight', 'layer4.1.conv1.weight']) {
        const w = sd.get(name)!;
        // The tiny net is kinky (ReLUs, 1x1 maps in layer4, batch statistics over 4 values): central
        // differences converge to the gradient only for small steps, where f32 rounding of the loss
        // grows. Accept the gradient when one of three step sizes agrees with it.
        await expectElementGradMatchesFd(ctx, w, rint(w.size), forwardLoss, { hs: [1e-3, 3e-4, 1e-4], rtol: 0.03, gtol: 0.005, noise: 4e-7, what: name });
      }
      x.dispose();
      dir.dispose();
      model.dispose();
    });
  }
});
