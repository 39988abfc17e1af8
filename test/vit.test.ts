// ViT (tiny instances): every parameter gradient against a directional finite difference of the GPU
// forward, a few AdamW steps lower the loss, torchvision's state-dict names, and bad configurations
// and inputs refused with the offending value named. Exactness against torchvision:
// test/vit-golden.test.ts.
import { describe, it, expect } from 'vitest';
import { useGpu } from './helpers.js';
import { directionalCheck, fitLosses } from './transformer-check.js';
import { VisionTransformer } from '../src/models/vit.js';
import { randn, mulScalar, add } from '../src/ops/index.js';
import { copyTensor } from '../src/nn/module.js';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();
const tiny = { imageSize: 8, patchSize: 4, numLayers: 2, numHeads: 2, hiddenDim: 8, mlpDim: 12, numClasses: 3, seed: 4 };

describe('ViT (tiny)', () => {
  it('every parameter gradient matches a directional finite difference', async () => {
    const { ctx } = gpu;
    const model = new VisionTransformer(ctx, tiny);
    // torchvision starts heads.head and class_token at zero: give them values so every path carries signal
    for (const name of ['heads.head.weight', 'class_token']) {
      const p = model.stateDict().get(name)!;
      ctx.scope(() => copyTensor('test', add(p, mulScalar(randn(ctx, p.shape, new Generator(9)), 0.5)), p));
    }
    const { analytic, numeric } = await directionalCheck(ctx, model, [2, 3, 8, 8], 11);
    expect(Math.abs(analytic - numeric), `autograd ${analytic} vs finite differences ${numeric}`).toBeLessThan(5e-3 * Math.abs(numeric) + 1e-3);
    model.dispose();
  });

  it('loss goes down over a few AdamW steps', async () => {
    const model = new VisionTransformer(gpu.ctx, tiny);
    const losses = await fitLosses(gpu.ctx, model, [6, 3, 8, 8], 3, 12, 1e-2);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!, losses.join(', ')).toBeLessThan(losses[0]! * 0.6);
    model.dispose();
  });

  it("state-dict names are torchvision's vit_b_16 names", () => {
    const model = new VisionTransformer(gpu.ctx, { ...tiny, numLayers: 1 });
    expect([...model.stateDict().keys()]).toEqual([
      'class_token',
      'conv_proj.weight',
      'conv_proj.bias',
      'encoder.pos_embedding',
      'encoder.layers.encoder_layer_0.ln_1.weight',
      'encoder.layers.encoder_layer_0.ln_1.bias',
      'encoder.layers.encoder_layer_0.self_attention.in_proj_weight',
      'encoder.layers.encoder_layer_0.self_attention.in_proj_bias',
      'encoder.layers.encoder_layer_0.self_attention.out_proj.weight',
      'encoder.layers.encoder_layer_0.self_attention.out_proj.bias',
      'encoder.layers.encoder_layer_0.ln_2.weight',
      'encoder.layers.encoder_layer_0.ln_2.bias',
      'encoder.layers.encoder_layer_0.mlp.0.weight',
      'encoder.layers.encoder_layer_0.mlp.0.bias',
      'encoder.layers.encoder_layer_0.mlp.3.weight',
      'encoder.layers.encoder_layer_0.mlp.3.bias',
      'encoder.ln.weight',
      'encoder.ln.bias',
      'heads.head.weight',
      'heads.head.bias',
    ]);
    model.dispose();
  });

  it('refuses bad configurations and inputs, naming the value', () => {
    const { ctx } = gpu;
    expect(() => new VisionTransformer(ctx, { ...tiny, patchSize: 3 })).toThrow(/patchSize 3 does not divide imageSize 8/);
    expect(() => new VisionTransformer(ctx, { ...tiny, numHeads: 3 })).toThrow(/3 heads do not divide hiddenDim 8/);
    expect(() => new VisionTransformer(ctx, { ...tiny, dropout: 1.5 })).toThrow(/dropout must be in \[0, 1\)/);
    const model = new VisionTransformer(ctx, tiny);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 3, 12, 12], new Generator(1))))).toThrow(/expected input \[N, 3, 8, 8\]/);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 1, 8, 8], new Generator(1))))).toThrow(/expected input \[N, 3, 8, 8\]/);
    model.dispose();
  });
});
