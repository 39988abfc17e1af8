// ResNet-18 end to end on a tiny instance (width 4, 8x8 inputs): SGD lowers the loss, and the
// gradient of single conv weight entries matches central finite differences of the GPU forward
// (eval mode, BatchNorm on running statistics; and training mode through the batch statistics).
import { describe, it, expect } from 'vitest';
import { useGpu, Rng } from './helpers.js';
import { tensor, randn, Generator } from '../src/wgsl/fill.js';
import { backward } from '../src/autograd/graph.js';
import { mean, sum } from '../src/wgsl/reduce.js';
import { mul } from '../src/wgsl/elementwise.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { SGD } from '../src/nn/optim.js';
import { ResNet } from '../src/models/resnet.js';
import { copyTensor } from '../src/nn/module.js';
import type { Tensor } from '../src/autograd/tensor.js';

const gpu = useGpu();

describe('ResNet-18 (tiny)', () => {
  it('loss goes down over a few SGD steps (cifar and imagenet stems)', async () => {
    const { ctx } = gpu;
    for (const variant of ['cifar', 'imagenet'] as const) {
      const model = new ResNet(ctx, { width: 4, numClasses: 3, variant, seed: 11 });
      const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = ctx.keep(randn(ctx, [4, 3, 8, 8], new Generator(3)));
      const y = ctx.keep(labelsTensor(ctx, [0, 1, 2, 1], 3));
      const losses: number[] = [];
      for (let step = 0; step < 8; step++) {
        const l = ctx.scope(() => {
          const loss = mean(crossEntropy(model.forward(x), y));
          backward(loss);
          opt.step();
          opt.zeroGrad();
          return loss;
        });
        losses.push(await l.item());
        l.dispose();
      }
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
      const rng = new Rng();
      const rint = (n: number) => rng.int(1, n)[0]!;
      const model = new ResNet(ctx, { width: 4, numClasses: 3, seed: rint(1000) });
      // non-trivial running statistics first, then freeze them by choosing the mode
      ctx.scope(() => model.forward(randn(ctx, [4, 3, 8, 8], new Generator(rint(1000)), 0.3, 1.2)));
      model.train(mode === 'train');
      const x = ctx.keep(randn(ctx, [4, 3, 8, 8], new Generator(rint(1000))));
      const dir = ctx.keep(randn(ctx, [4, 3], new Generator(rint(1000))));
      // loss = sum(logits * dir): a fixed random projection of the output
      const forwardLoss = () => sum(mul(model.forward(x), dir));
      const lossOf = () => ctx.scope(forwardLoss);
      // (the graph must stay alive until backward: forward and backward share one scope)
      ctx.scope(() => backward(forwardLoss()));
      const sd = model.stateDict();
      for (const name of ['conv1.weight', 'layer1.0.conv2.weight', 'layer2.0.downsample.0.weight', 'layer4.1.conv1.weight']) {
        const w = sd.get(name)!;
        const w0 = (await w.read()) as Float32Array;
        const g = (await w.grad!.read()) as Float32Array;
        const i = rint(w0.length);
        const at = async (v: number) => {
          const wv = w0.slice();
          wv[i] = v;
          ctx.scope(() => copyTensor('test', tensor(ctx, wv, w.shape), w));
          const l = lossOf();
          const r = await l.item();
          l.dispose();
          return r;
        };
        // The tiny net is kinky (ReLUs, 1x1 maps in layer4, batch statistics over 4 values): central
        // differences converge to the gradient only for small steps, where f32 rounding of the loss
        // grows. Accept the gradient when one of three step sizes agrees with it.
        const scale = Math.max(...g.map(Math.abs));
        const tries: string[] = [];
        let ok = false;
        for (const h of [1e-3, 3e-4, 1e-4]) {
          const lp = await at(w0[i]! + h);
          const lm = await at(w0[i]! - h);
          const fd = (lp - lm) / (2 * h);
          const noise = (4e-7 * (Math.abs(lp) + Math.abs(lm))) / h;
          tries.push(`h=${h}: ${fd}`);
          if (Math.abs(g[i]! - fd) <= 0.03 * Math.abs(fd) + 0.005 * scale + noise) ok = true;
        }
        await at(w0[i]!);
        expect(ok, `${name}[${i}]: autograd ${g[i]} vs finite differences ${tries.join(', ')} (max |g| ${scale})`).toBe(true);
      }
      x.dispose();
      dir.dispose();
      model.dispose();
    });
  }
});
