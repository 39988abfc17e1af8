// DiT (src/models/diffusion/dit.ts) beyond the golden test: DiT-S/2's state-dict names and shapes
// against PyTorch's (scripts/make_dit_names.py), the position table against a direct float64
// evaluation, adaLN-Zero (a fresh model predicts exactly zero), a loss that goes down under Adam,
// gradients against central finite differences of the GPU forward on a tiny instance, and bad input
// rejected with the name of what is wrong.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { useGpu, Rng } from './helpers.js';
import { tensor, randn, sum, mul, backward } from '../src/ops/index.js';
import { copyTensor } from '../src/nn/module.js';
import { Generator } from '../src/util/rng.js';
import { DiT, sincosPosEmbed, type DiTOptions } from '../src/models/diffusion/dit.js';
import { timestepsTensor, classesTensor } from '../src/models/diffusion/common.js';
import { expectEpsLossDecreases, expectParamGradsMatchFd } from './diffusion-model-check.js';

const gpu = useGpu();
const TINY: DiTOptions = { inputSize: 8, patchSize: 2, inChannels: 3, hiddenSize: 16, depth: 2, numHeads: 2, numClasses: 4, learnSigma: false, numTimesteps: 50 };
const NAMES = JSON.parse(readFileSync(new URL('./fixtures/dit_s2_names.json', import.meta.url), 'utf8')) as {
  config: Record<string, number | boolean>;
  trainable: number;
  state: [string, number[]][];
};

/** A DiT whose adaLN and final layers are not zero (so every path carries signal), values from `seed`. */
function liven(model: DiT, seed: number) {
  const { ctx } = model;
  const g = new Generator(seed);
  ctx.scope(() => {
    for (const [name, p] of model.namedParameters())
      if (name.includes('adaLN_modulation') || name.startsWith('final_layer.linear')) copyTensor('test', randn(ctx, p.shape, g, 0, 0.2), p);
  });
}

describe('DiT', () => {
  it("DiT-S/2 has the reference's state-dict names and shapes", () => {
    const { ctx } = gpu;
    const c = NAMES.config;
    const model = ctx.scope(
      () =>
        new DiT(ctx, {
          inputSize: c.input_size as number,
          patchSize: c.patch_size as number,
          inChannels: c.in_channels as number,
          hiddenSize: c.hidden_size as number,
          depth: c.depth as number,
          numHeads: c.num_heads as number,
          mlpRatio: c.mlp_ratio as number,
          classDropoutProb: c.class_dropout_prob as number,
          numClasses: c.num_classes as number,
          learnSigma: c.learn_sigma as boolean,
        }),
    );
    const mine = [...model.stateDict()].map(([n, t]) => [n, [...t.shape]] as [string, number[]]);
    expect(new Map(mine)).toEqual(new Map(NAMES.state));
    expect(model.numParameters()).toBe(NAMES.trainable); // pos_embed is a buffer, not a parameter
    model.dispose();
  });

  it('the position table codes the column in the first half and the row in the second', () => {
    const D = 8, G = 3;
    const pos = sincosPosEmbed(D, G);
    // token (r, c) = (2, 1): first D/2 from the column, last D/2 from the row; frequencies 1, 1/100
    const at = (2 * G + 1) * D;
    expect(Array.from(pos.subarray(at, at + D))).toEqual([Math.sin(1), Math.sin(0.01), Math.cos(1), Math.cos(0.01), Math.sin(2), Math.sin(0.02), Math.cos(2), Math.cos(0.02)]);
    expect(() => sincosPosEmbed(6, 2)).toThrow(/hiddenSize 6 must be divisible by 4/);
  });

  it('adaLN-Zero: a fresh model predicts exactly zero, and only the final linear gets a gradient first', async () => {
    const { ctx } = gpu;
    const model = new DiT(ctx, { ...TINY, seed: 2 });
    await ctx.scope(async () => {
      const g = new Generator(4);
      const out = model.forward(randn(ctx, [2, 3, 8, 8], g), timestepsTensor(ctx, [3, 40], 50), classesTensor(ctx, [1, 4], 4));
      expect(out.shape).toEqual([2, 3, 8, 8]);
      expect(Array.from(await out.read()).every((v) => v === 0)).toBe(true);
      backward(sum(mul(out, randn(ctx, out.shape, g))));
      const gw = await model.final_layer.linear.weight.grad!.read();
      expect(Math.max(...gw.map(Math.abs))).toBeGreaterThan(0);
      const gq = model.blocks.at(0).attn.qkv.weight.grad;
      expect(gq === null || (await gq.read()).every((v) => v === 0)).toBe(true);
    });
    model.dispose();
  });

  it('loss goes down under Adam on a fixed noisy batch', async () => {
    await expectEpsLossDecreases(gpu.ctx, new DiT(gpu.ctx, { ...TINY, seed: 5 }), 1e-2);
  });

  it('parameter gradients match central finite differences (tiny instance, live adaLN)', async () => {
    const { ctx } = gpu;
    const rng = new Rng(777);
    const rint = (n: number) => rng.int(1, n)[0]!;
    const model = new DiT(ctx, { ...TINY, learnSigma: true, seed: rint(1000) });
    liven(model, rint(1000));
    const g = new Generator(rint(1000));
    const x = ctx.keep(randn(ctx, [2, 3, 8, 8], g));
    const dir = ctx.keep(randn(ctx, [2, 6, 8, 8], g));
    const t = ctx.keep(timestepsTensor(ctx, [7, 31], 50));
    const y = ctx.keep(classesTensor(ctx, [2, 4], 4));
    const names = ['x_embedder.proj.weight', 't_embedder.mlp.0.weight', 'y_embedder.embedding_table.weight', 'blocks.0.attn.qkv.weight', 'blocks.1.mlp.fc1.bias', 'blocks.0.adaLN_modulation.1.weight', 'final_layer.adaLN_modulation.1.bias'];
    await expectParamGradsMatchFd(ctx, model, { x, t, y, dir }, names, (name, n) =>
      // the label table: a row in use (class 2 or the null row 4)
      name.startsWith('y_embedder') ? (rint(2) ? 4 : 2) * 16 + rint(16) : rint(n),
    );
    model.dispose();
    for (const v of [x, dir, t, y]) v.dispose();
  });

  it('clone() predicts the same (live adaLN) and owns its tensors, pos_embed included', async () => {
    const { ctx } = gpu;
    const model = new DiT(ctx, { ...TINY, seed: 8 });
    liven(model, 12);
    const copy = model.clone();
    await ctx.scope(async () => {
      const x = randn(ctx, [2, 3, 8, 8], new Generator(3));
      const t = timestepsTensor(ctx, [0, 49], 50);
      const y = classesTensor(ctx, [3, 4], 4);
      const a = await ctx.noGrad(() => model.forward(x, t, y)).read();
      expect(a.some((v) => v !== 0)).toBe(true);
      model.dispose();
      const b = await ctx.noGrad(() => copy.forward(x, t, y)).read();
      expect(Array.from(b)).toEqual(Array.from(a));
    });
    copy.dispose();
  });

  it('rejects bad input and bad options naming them', () => {
    const { ctx } = gpu;
    const model = new DiT(ctx, TINY);
    ctx.scope(() => {
      const g = new Generator(1);
      const t = timestepsTensor(ctx, [1, 2], 50);
      const y = classesTensor(ctx, [0, 1], 4);
      expect(() => model.forward(randn(ctx, [2, 1, 8, 8], g), t, y)).toThrow(/DiT: x f32\[2,1,8,8\] has 1 channels; the model takes 3/);
      expect(() => model.forward(randn(ctx, [2, 3, 6, 6], g), t, y)).toThrow(/is 6x6; the model was built for 8x8 images/);
      expect(() => model.forward(randn(ctx, [2, 3, 8, 8], g), t, tensor(ctx, [0, 1], [2]))).toThrow(/y must be i32 \[2\]/);
    });
    expect(() => new DiT(ctx, { ...TINY, patchSize: 3 })).toThrow(/patchSize 3 does not divide inputSize 8/);
    expect(() => new DiT(ctx, { ...TINY, numHeads: 3 })).toThrow(/numHeads 3 does not divide hiddenSize 16/);
    const noNull = ctx.scope(() => new DiT(ctx, { ...TINY, classDropoutProb: 0 }));
    ctx.scope(() => {
      const x = randn(ctx, [1, 3, 8, 8], new Generator(2));
      expect(() => noNull.guided(x, timestepsTensor(ctx, [1], 50), classesTensor(ctx, [0], 4), 4)).toThrow(/no null class/);
    });
    noNull.dispose();
    model.dispose();
  });
});
