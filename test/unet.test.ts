// The DDPM UNet (src/models/diffusion/unet.ts) beyond the golden test: the CIFAR-10 configuration's
// state-dict names and shapes against PyTorch's (scripts/make_unet_names.py), the timestep embedding
// of both paths against float64, a loss that goes down under Adam, parameter gradients against
// central finite differences of the GPU forward on a tiny instance, dropout only in training, and
// bad input rejected with the name of what is wrong.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { useGpu, Rng, expectClose } from './helpers.js';
import { tensor, randn } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';
import { ConditionalUNet, type UNetOptions } from '../src/models/diffusion/unet.js';
import { TimestepEmbedding, sinusoidRef, checkTimesteps, checkClasses, timestepsTensor, classesTensor } from '../src/models/diffusion/common.js';
import { expectEpsLossDecreases, expectParamGradsMatchFd } from './diffusion-model-check.js';

const gpu = useGpu();
const TINY: UNetOptions = { ch: 8, chMult: [1, 2], numResBlocks: 1, attnResolutions: [8], dropout: 0, imageSize: 8, numGroups: 2, numClasses: 4, numTimesteps: 50 };
const NAMES = JSON.parse(readFileSync(new URL('./fixtures/unet_cifar10_names.json', import.meta.url), 'utf8')) as {
  config: Record<string, unknown>;
  parameters: number;
  state: [string, number[]][];
};

describe('DDPM Conditional_Model', () => {
  it("the CIFAR-10 configuration has the reference's state-dict names and shapes", () => {
    const { ctx } = gpu;
    const c = NAMES.config as { ch: number; ch_mult: number[]; num_res_blocks: number; attn_resolutions: number[]; resolution: number; n_classes: number };
    const model = ctx.scope(() => new ConditionalUNet(ctx, { ch: c.ch, chMult: c.ch_mult, numResBlocks: c.num_res_blocks, attnResolutions: c.attn_resolutions, imageSize: c.resolution, numClasses: c.n_classes }));
    const mine = [...model.stateDict()].map(([n, t]) => [n, [...t.shape]]);
    expect(new Map(mine as [string, number[]][])).toEqual(new Map(NAMES.state));
    expect(model.numParameters()).toBe(NAMES.parameters);
    model.dispose();
  });

  it('timestep embeddings (i32 table and f32 GPU path) match float64', async () => {
    const { ctx } = gpu;
    const spec = { dim: 12, order: 'sin-cos' as const, freq: (k: number, half: number) => Math.exp((-k * Math.log(10000)) / (half - 1)) };
    const emb = new TimestepEmbedding(ctx, spec, 1000);
    const ts = [0, 1, 17, 500, 999];
    const want = ts.flatMap((t) => [...sinusoidRef(t, spec)]);
    await ctx.scope(async () => {
      expectClose(await emb.embed(tensor(ctx, Int32Array.from(ts), [5], 'i32')).read(), want, 0, 1e-7, 'i32 table');
      // the f32 path computes sin(t f) in f32: exact to the f32 rounding of the phase (|t f| ulp)
      expectClose(await emb.embed(tensor(ctx, Float32Array.from(ts), [5])).read(), want, 0, 2e-4, 'f32 GPU path');
    });
    // sin first, then cos; the frequency of the last column is 1 / 10000
    const r = sinusoidRef(3, spec);
    expect(r[0]).toBe(Math.sin(3));
    expect(r[6]).toBe(Math.cos(3));
    expect(r[5]).toBeCloseTo(Math.sin(3e-4), 12);
    emb.dispose();
  });

  it('loss goes down under Adam on a fixed noisy batch', async () => {
    await expectEpsLossDecreases(gpu.ctx, new ConditionalUNet(gpu.ctx, { ...TINY, seed: 3 }), 3e-3);
  });

  it('parameter gradients match central finite differences (tiny instance)', async () => {
    const { ctx } = gpu;
    const rng = new Rng(4242);
    const rint = (n: number) => rng.int(1, n)[0]!;
    const model = new ConditionalUNet(ctx, { ...TINY, seed: rint(1000) });
    const g = new Generator(rint(1000));
    const x = ctx.keep(randn(ctx, [2, 3, 8, 8], g));
    const dir = ctx.keep(randn(ctx, [2, 3, 8, 8], g));
    const t = ctx.keep(timestepsTensor(ctx, [7, 31], 50));
    const y = ctx.keep(classesTensor(ctx, [2, 4], 4)); // the second sample on the null class
    const names = ['temb.dense.0.weight', 'null_classes_emb', 'classes_emb.weight', 'down.0.attn.0.q.weight', 'down.0.downsample.conv.weight', 'up.1.upsample.conv.weight', 'up.0.block.1.nin_shortcut.weight', 'down.1.block.0.norm2.bias'];
    await expectParamGradsMatchFd(ctx, model, { x, t, y, dir }, names, (name, n) =>
      // classes_emb: the row of class 2 (the only used one) holds the gradient
      name === 'classes_emb.weight' ? 2 * 8 + rint(8) : rint(n),
    );
    model.dispose();
    for (const v of [x, dir, t, y]) v.dispose();
  });

  it('clone() (EMA copies, frozen teachers) predicts the same and owns its tensors', async () => {
    const { ctx } = gpu;
    const model = new ConditionalUNet(ctx, { ...TINY, seed: 8 }).eval();
    const copy = model.clone();
    await ctx.scope(async () => {
      const x = randn(ctx, [2, 3, 8, 8], new Generator(3));
      const t = timestepsTensor(ctx, [0, 49], 50);
      const y = classesTensor(ctx, [3, 4], 4);
      const a = await ctx.noGrad(() => model.forward(x, t, y)).read();
      model.dispose();
      const b = await ctx.noGrad(() => copy.forward(x, t, y)).read();
      expect(Array.from(b)).toEqual(Array.from(a));
    });
    copy.dispose();
  });

  it('dropout acts in training mode only', async () => {
    const { ctx } = gpu;
    const model = new ConditionalUNet(ctx, { ...TINY, dropout: 0.5, seed: 1 });
    await ctx.scope(async () => {
      const x = randn(ctx, [2, 3, 8, 8], new Generator(2));
      const t = timestepsTensor(ctx, [1, 2], 50);
      const y = classesTensor(ctx, [0, 1], 4);
      const run = async () => (await ctx.noGrad(() => model.forward(x, t, y)).read()) as Float32Array;
      model.eval();
      const e1 = await run();
      const e2 = await run();
      expect(Array.from(e1)).toEqual(Array.from(e2));
      model.train();
      const d1 = await run();
      const d2 = await run();
      expect(Array.from(d1)).not.toEqual(Array.from(d2));
      expect(Array.from(d1)).not.toEqual(Array.from(e1));
    });
    model.dispose();
  });

  it('rejects bad input naming the tensor and the expected shape', () => {
    const { ctx } = gpu;
    const model = new ConditionalUNet(ctx, TINY);
    ctx.scope(() => {
      const g = new Generator(1);
      const t = timestepsTensor(ctx, [1, 2], 50);
      const y = classesTensor(ctx, [0, 1], 4);
      expect(() => model.forward(randn(ctx, [2, 1, 8, 8], g), t, y)).toThrow(/ConditionalUNet: x f32\[2,1,8,8\] has 1 channels; the model takes 3/);
      expect(() => model.forward(randn(ctx, [2, 3, 16, 16], g), t, y)).toThrow(/x f32\[2,3,16,16\] is 16x16; the model was built for 8x8 images/);
      const x = randn(ctx, [2, 3, 8, 8], g);
      expect(() => model.forward(x, timestepsTensor(ctx, [1], 50), y)).toThrow(/t must be i32 \(or f32\) \[2\]/);
      expect(() => model.forward(x, t, tensor(ctx, [0, 1], [2]))).toThrow(/y must be i32 \[2\] \(one class per image\), got f32\[2\]/);
      expect(() => model.guided(x, t, y, NaN)).toThrow(/guidance scale must be finite/);
    });
    expect(() => checkTimesteps('sample', [0, 50], model.numTimesteps)).toThrow(/timestep t\[1\] = 50 is outside \[0, 50\)/);
    expect(() => timestepsTensor(ctx, [3, -1], 50)).toThrow(/timestep t\[1\] = -1 is outside/);
    expect(() => checkClasses('sample', [4, 5], model.numClasses)).toThrow(/class y\[1\] = 5 is outside \[0, 4\] \(4 classes; 4 is the null class\)/);
    expect(() => classesTensor(ctx, [1.5], 4)).toThrow(/class y\[0\] = 1.5/);
    expect(() => new ConditionalUNet(ctx, { ...TINY, numGroups: 3 })).toThrow(/numGroups 3 does not divide the width 8/);
    expect(() => new ConditionalUNet(ctx, { ...TINY, imageSize: 9 })).toThrow(/imageSize 9 must be divisible by 2\^1/);
    model.dispose();
  });
});
