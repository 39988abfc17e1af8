// Swin Transformer (tiny instances): every parameter gradient against a directional finite
// difference of the GPU forward (maps with padding, shift and the shifted-window mask, odd patch
// merges), a few AdamW steps lower the loss, torchvision's index/mask/window helpers on hand-checked
// cases, bad configurations and inputs refused with the offending value named, and the experiment
// config accepting `model.arch: swin_t`. Exactness against torchvision: test/swin-golden.test.ts.
import { describe, it, expect } from 'vitest';
import { useGpu } from './helpers.js';
import { directionalCheck, fitLosses } from './transformer-check.js';
import { SwinTransformer, relativePositionIndex, shiftedWindowMask, windowIndex } from '../src/models/swin.js';
import { architecture } from '../src/models/registry.js';
import { randn } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';
import { resolveConfig } from '../src/unlearn/classification/config.js';
import { classificationExperiment } from '../src/unlearn/classification/experiment.js';
import { forgetSplitOf } from '../src/unlearn/classification/split.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { paramGroups } from '../src/nn/optim.js';
import { transformerNoDecay } from '../src/models/transformer-parts.js';

const gpu = useGpu();
// 10x10 input, patch 2 -> 5x5 (padded to 6: shift 1 and the mask); merge 5 -> 3 (odd), padded to 4
const tiny = { patchSize: 2, embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: 2, numClasses: 3, stochasticDepthProb: 0, seed: 3 };

describe('Swin (tiny)', () => {
  it('every parameter gradient matches a directional finite difference (padding, shift, mask, odd merge)', async () => {
    const model = new SwinTransformer(gpu.ctx, tiny);
    const { analytic, numeric } = await directionalCheck(gpu.ctx, model, [2, 3, 10, 10], 7);
    expect(Math.abs(analytic - numeric), `autograd ${analytic} vs finite differences ${numeric}`).toBeLessThan(5e-3 * Math.abs(numeric) + 1e-3);
    model.dispose();
  });

  it('loss goes down over a few AdamW steps', async () => {
    const model = new SwinTransformer(gpu.ctx, { ...tiny, stochasticDepthProb: 0.1 });
    const losses = await fitLosses(gpu.ctx, model, [6, 3, 8, 8], 3, 12, 1e-2);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!, losses.join(', ')).toBeLessThan(losses[0]! * 0.6);
    model.dispose();
  });

  it("torchvision's relative position index, shifted-window mask and window order", () => {
    // 2x2 window: tokens (0,0) (0,1) (1,0) (1,1); index = (dh + 1)·3 + (dw + 1)
    expect(Array.from(relativePositionIndex(2, 2))).toEqual([4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
    // 4x4 map, window 2, shift 1: regions rows {0-1 | 2 | 3} x cols {0-1 | 2 | 3}; the last window
    // (rows 2-3, cols 2-3) holds 4 regions, so every pair of distinct tokens there is masked
    const m = shiftedWindowMask(4, 4, 2, 2, 1, 1);
    expect(Array.from(m.subarray(0, 16)).every((v) => v === 0)).toBe(true);
    const last = Array.from(m.subarray(3 * 16, 4 * 16));
    expect(last.filter((v) => v === 0).length).toBe(4);
    expect(last.filter((v) => v === -100).length).toBe(12);
    // 3x3 map, window 2 -> padded to 4 (4 windows); no shift: window 0 = tokens 0, 1, 3, 4; the
    // padded row/column read the zero row (index 9)
    const idx = windowIndex(3, 3, 2, 2, 0, 0);
    expect(Array.from(idx.subarray(0, 4))).toEqual([0, 1, 3, 4]);
    expect(Array.from(idx.subarray(12, 16))).toEqual([8, 9, 9, 9]);
    // roll by -1: window 0 starts at token (1, 1)
    expect(Array.from(windowIndex(3, 3, 2, 2, 1, 1).subarray(0, 4))).toEqual([4, 5, 7, 8]);
  });

  it('refuses bad configurations and inputs, naming the value', () => {
    const { ctx } = gpu;
    expect(() => new SwinTransformer(ctx, { ...tiny, numHeads: [3, 2] })).toThrow(/stage 1: 3 heads do not divide its width 8/);
    expect(() => new SwinTransformer(ctx, { ...tiny, numHeads: [1] })).toThrow(/one head count per stage \(2\)/);
    expect(() => new SwinTransformer(ctx, { ...tiny, windowSize: 0 })).toThrow(/windowSize must be a positive integer/);
    expect(() => new SwinTransformer(ctx, { ...tiny, patchSize: [2, 4] })).toThrow(/patchSize must be square/);
    expect(() => new SwinTransformer(ctx, { ...tiny, stochasticDepthProb: 1 })).toThrow(/stochasticDepthProb must be in \[0, 1\)/);
    const model = new SwinTransformer(ctx, tiny);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 1, 10, 10], new Generator(1))))).toThrow(/expected input \[N, 3, H, W\], got .*\[1,\s?1,\s?10,\s?10\]/);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 3, 1, 10], new Generator(1))))).toThrow(/smaller than one 2x2 patch/);
    // a window larger than the map is not an error (torchvision pads): 4x4 map, window 7
    const big = new SwinTransformer(ctx, { ...tiny, windowSize: 7 });
    const y = ctx.scope(() => big.forward(randn(ctx, [1, 3, 8, 8], new Generator(1))));
    expect(y.shape).toEqual([1, 3]);
    y.dispose();
    big.dispose();
    model.dispose();
  });

  it('registry and experiment config: swin_t with options; unknown or misplaced options are refused', () => {
    expect(() => architecture('swin_t', { embedDim: 8, windowSz: 2 })).toThrow(/no option 'windowSz'/);
    const cfg = resolveConfig({ model: { arch: 'swin_t', options: { embedDim: 8, depths: [2], numHeads: [1] } }, presets: 'swin-mnist' });
    expect(cfg.model.arch).toBe('swin_t');
    expect(() => resolveConfig({ model: { arch: 'swin_t', options: { numHeads: [1], depht: 2 } } })).toThrow(/config\.model\.options: .*no option 'depht'/);
    expect(() => resolveConfig({ model: { arch: 'swin_t', width: 8 } })).toThrow(/width and variant are ResNet-18's/);
    expect(() => resolveConfig({ model: { arch: 'swin_t', options: { numClasses: 3 } } })).toThrow(/numClasses come from the data/);
    expect(() => resolveConfig({ model: { arch: 'swin_b' } })).toThrow(/config\.model\.arch: expected one of "resnet18", "swin_t", "vit_b_16"/);
  });

  it('the experiment runner builds the configured Swin/ViT for the data; no weight decay on biases, norms and position tables', () => {
    const { ctx } = gpu;
    const N = 20;
    const ds = new ByteImageDataset(new Uint8Array(N * 12 * 12), Int32Array.from({ length: N }, (_, i) => i % 4), [1, 12, 12], 4);
    const split = forgetSplitOf({ kind: 'random', fraction: 0.1, seed: 1 }, ds.labels);
    const data = { train: ds, test: ds, mean: [0.5], std: [0.5], augment: false };
    const swinCfg = resolveConfig({ model: { arch: 'swin_t', options: { patchSize: 2, embedDim: 8, depths: [2], numHeads: [2], windowSize: 3 } } });
    const swin = classificationExperiment(ctx, swinCfg, data, split).makeModel(5) as SwinTransformer;
    expect(swin).toBeInstanceOf(SwinTransformer);
    expect(swin.options).toMatchObject({ numClasses: 4, inChannels: 1, seed: 5, embedDim: 8 });
    const [decay, noDecay] = paramGroups(swin, { noDecay: transformerNoDecay });
    const names = new Map(swin.namedParameters().map(([n, t]) => [t, n]));
    const noDecayNames = noDecay!.params.map((t) => names.get(t)!);
    expect(noDecayNames).toContain('features.1.0.attn.relative_position_bias_table');
    expect(noDecayNames).toContain('features.1.0.norm1.weight');
    expect(noDecayNames.some((n) => n.endsWith('qkv.weight'))).toBe(false);
    expect(decay!.params.map((t) => names.get(t)!)).toContain('features.1.0.attn.qkv.weight');
    swin.dispose();
    const vitCfg = resolveConfig({ model: { arch: 'vit_b_16', options: { patchSize: 4, numLayers: 1, numHeads: 2, hiddenDim: 8, mlpDim: 16 } } });
    const vit = classificationExperiment(ctx, vitCfg, data, split).makeModel(5);
    expect((vit as unknown as { options: { imageSize: number } }).options.imageSize).toBe(12);
    const vitNoDecay = paramGroups(vit, { noDecay: transformerNoDecay })[1]!.params;
    const vnames = new Map(vit.namedParameters().map(([n, t]) => [t, n]));
    expect(vitNoDecay.map((t) => vnames.get(t))).toEqual(expect.arrayContaining(['class_token', 'encoder.pos_embedding']));
    vit.dispose();
  });
});
