// The user-supplied feature network of the generation FID (src/unlearn/diffusion/feature-model.ts):
// bilinear resizing against PyTorch's F.interpolate(bilinear, align_corners=False, antialias=False)
// from a committed fixture (scripts/make_resize_fixture.py: up, down, mixed, 1x1, unchanged); the
// preparation (grey -> 3 channels, [−1, 1] -> [0, 1], per-channel normalisation) on values computed
// by hand; modelFeatures against ResNet.features run directly on the same prepared batch; and the
// checks that name a bad spec.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Rng, expectClose, useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32 } from '../src/io/safetensors.js';
import { IMAGENET_MEAN, IMAGENET_STD, checkFeaturePrep, isFeatureModel, modelFeatures, prepareImages, resizeBilinear } from '../src/unlearn/diffusion/feature-model.js';
import { VisionTransformer } from '../src/models/vit.js';
import { ResNet } from '../src/models/resnet.js';
import { InceptionV3 } from '../src/models/inception.js';
import { balancedSubset } from '../src/models/diffusion/train.js';
import { tensor } from '../src/ops/index.js';
import { checkFidModel, fidBatchSize } from '../src/cli/diffusion-demo.js';

const FIXTURE = 'test/fixtures/resize_bilinear.safetensors';
const rng = new Rng();

describe('bilinear resize (PyTorch align_corners=False)', () => {
  it('matches F.interpolate at every size of the fixture', async () => {
    expect(existsSync(FIXTURE), `${FIXTURE} (scripts/make_resize_fixture.py)`).toBe(true);
    const file = await loadSafetensorsFile(FIXTURE);
    const x = file.tensors.get('x')!;
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const sizes = [...file.tensors.keys()].filter((k) => k.startsWith('out_'));
    expect(sizes.length).toBeGreaterThanOrEqual(5);
    for (const k of sizes) {
      const want = file.tensors.get(k)!;
      const [oh, ow] = want.shape.slice(2) as [number, number];
      const got = resizeBilinear(toFloat32(x), n, c, h, w, oh, ow);
      expect(got.length, k).toBe(n * c * oh * ow);
      expectClose(got, toFloat32(want), 1e-5, 1e-6, k);
    }
    expect(() => resizeBilinear(new Float32Array(5), 1, 1, 2, 2, 3, 3)).toThrow(/5 values are not \[1, 1, 2, 2\]/);
  });
});

describe('feature model input', () => {
  it('maps [−1, 1] to [0, 1], replicates grey to 3 channels and normalises per channel', () => {
    const v = rng.uniform(4);
    const img = Float32Array.from(v); // one 1x2x2 grey image
    const prep = { size: 2, channels: 3, mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] };
    const out = prepareImages(img, [1, 2, 2], prep);
    expect(out.length).toBe(12);
    for (let ch = 0; ch < 3; ch++)
      for (let k = 0; k < 4; k++) expect(out[ch * 4 + k]).toBeCloseTo(((v[k]! + 1) / 2 - prep.mean[ch]!) / prep.std[ch]!, 5);
    // three channels stay three
    const rgb = prepareImages(Float32Array.from([-1, 1, 0]), [3, 1, 1], { size: 1, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(Array.from(rgb)).toEqual([0, 1, 0.5]);
  });

  it('names a bad preparation or spec', () => {
    const ok = { size: 8, channels: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    expect(() => checkFeaturePrep({ ...ok, channels: 1, mean: [0], std: [1] }, [3, 8, 8])).toThrow(/images of 3 channels cannot be given to a feature model of 1 input channels/);
    expect(() => checkFeaturePrep({ ...ok, std: [1, 0, 1] }, [1, 8, 8])).toThrow(/std must be 3 finite number\(s\) > 0/);
    expect(() => checkFeaturePrep({ ...ok, size: 0 }, [1, 8, 8])).toThrow(/inputSize must be a positive integer/);
    const spec = { arch: 'resnet18', options: { width: 4 }, weights: 'w.safetensors', inputSize: 32 };
    expect(checkFidModel(spec, [1, 16, 16]).prep).toEqual({ size: 32, channels: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD });
    expect(checkFidModel({ ...spec, options: { inChannels: 1 }, label: 'mine' }, [1, 16, 16])).toMatchObject({ label: 'mine', prep: { channels: 1, mean: [0.485], std: [0.229] } });
    expect(() => checkFidModel({ ...spec, arch: 'inception_v4' }, [1, 16, 16])).toThrow(/unknown architecture 'inception_v4'/);
    expect(() => checkFidModel({ ...spec, inputSize: undefined }, [1, 16, 16])).toThrow(/inputSize is required for resnet18 .*only inception_v3 has a default, 299/);
    expect(() => checkFidModel({ ...spec, inputSize: 0 }, [1, 16, 16])).toThrow(/inputSize must be a positive integer, got 0/);
    // Inception: pytorch-fid's 299x299 in [−1, 1] unless said otherwise; ImageNet's with transformInput
    const fid = { arch: 'inception_v3', options: { fid: true }, weights: 'pt_inception.safetensors' };
    expect(checkFidModel(fid, [1, 16, 16]).prep).toEqual({ size: 299, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(checkFidModel({ ...fid, options: { transformInput: true }, inputSize: 342 }, [3, 32, 32]).prep).toEqual({ size: 342, channels: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD });
    expect(() => checkFidModel({ ...spec, weight: 'x' }, [1, 16, 16])).toThrow(/unknown key\(s\) weight/);
    expect(() => checkFidModel({ ...spec, weights: [] }, [1, 16, 16])).toThrow(/weights must be a safetensors path/);
    expect(() => checkFidModel({ ...spec, options: { chanels: 3 } }, [1, 16, 16])).toThrow(/chanels/);
  });
});

describe('balancedSubset (the real images of a fidModel FID)', () => {
  it('takes the classes round-robin, in their order, and all of a set no larger than n', () => {
    const y = Int32Array.from([1, 1, 1, 1, 2, 3, 2, 1, 3]);
    const set = { image: [1, 1, 1] as [number, number, number], x: Float32Array.from(y.keys(), (i) => i * 10), y };
    const sub = balancedSubset(set, 5);
    // class 1: indices 0, 1; class 2: 4, 6; class 3: 5 (round 0: 0, 4, 5; round 1: 1, 6)
    expect(Array.from(sub.x)).toEqual([0, 10, 40, 50, 60]);
    expect(Array.from(sub.y)).toEqual([1, 1, 2, 3, 2]);
    expect(balancedSubset(set, 9)).toBe(set);
    expect(() => balancedSubset(set, 0)).toThrow(/n must be a positive integer, got 0/);
    expect(() => checkFidModel({ arch: 'resnet18', weights: 'w.safetensors', inputSize: 8, realImages: 2.5 }, [1, 8, 8])).toThrow(/realImages must be an integer >= 2 .* got 2\.5/);
    expect(() => checkFidModel({ arch: 'resnet18', weights: 'w.safetensors', inputSize: 8, batchSize: 0 }, [1, 8, 8])).toThrow(/batchSize must be a positive integer, got 0/);
    // default feature batches: 2^19 input pixels, 1 to 32 images
    expect([fidBatchSize(299), fidBatchSize(224), fidBatchSize(32), fidBatchSize(1024)]).toEqual([5, 10, 32, 1]);
  });
});

describe('modelFeatures', () => {
  const gpu = useGpu();
  it('is ResNet.features of the prepared images, batch by batch', async () => {
    const { ctx } = gpu;
    const model = new ResNet(ctx, { width: 4, inChannels: 3, numClasses: 10, seed: rng.u32() });
    model.eval();
    const n = 5;
    const images = Float32Array.from(rng.uniform(n * 1 * 6 * 6));
    const prep = { size: 12, channels: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    try {
      const got = await modelFeatures(ctx, model, images, [1, 6, 6], prep, 2); // batches of 2, 2, 1
      expect(got.F).toBe(32);
      const x = prepareImages(images, [1, 6, 6], prep);
      const want = await ctx.scope(async () => ctx.noGrad(() => model.features(tensor(ctx, x, [n, 3, 12, 12]))).read());
      expectClose(got.features, want, 1e-5, 1e-6, 'features');
    } finally {
      model.dispose();
    }
  });

  it("takes the FID Inception: 16x16 grey images to pytorch-fid's 299x299 input in [−1, 1], pool3 features", async () => {
    const { ctx } = gpu;
    const net = new InceptionV3(ctx, { fid: true, widthDiv: 16, seed: rng.u32() });
    net.eval();
    const images = Float32Array.from(rng.uniform(3 * 256));
    const { prep } = checkFidModel({ arch: 'inception_v3', options: { fid: true, widthDiv: 16 }, weights: 'w.safetensors' }, [1, 16, 16]);
    try {
      const got = await modelFeatures(ctx, net, images, [1, 16, 16], prep, 2);
      expect(got.F).toBe(128);
      // pytorch-fid: x in [0, 1] resized to 299, then 2x − 1
      const x = resizeBilinear(Float32Array.from(images, (v) => (v + 1) / 2), 3, 1, 16, 16, 299, 299);
      const rgb = new Float32Array(3 * 3 * 299 * 299);
      for (let i = 0; i < 3; i++) for (let c = 0; c < 3; c++) for (let k = 0; k < 299 * 299; k++) rgb[(i * 3 + c) * 299 * 299 + k] = 2 * x[i * 299 * 299 + k]! - 1;
      const want = await ctx.scope(async () => ctx.noGrad(() => net.features(tensor(ctx, rgb, [3, 3, 299, 299]))).read());
      expectClose(got.features, want, 1e-4, 1e-6, 'Inception features');
    } finally {
      net.dispose();
    }
  });

  it("takes featuresOf(x) where features names a submodule (a tiny ViT's class token)", async () => {
    const { ctx } = gpu;
    const vit = new VisionTransformer(ctx, { imageSize: 8, patchSize: 4, numLayers: 1, numHeads: 2, hiddenDim: 8, mlpDim: 12, numClasses: 3, seed: rng.u32() });
    vit.eval();
    expect(isFeatureModel(vit)).toBe(true);
    expect(isFeatureModel({ forward: () => null })).toBe(false);
    const images = Float32Array.from(rng.uniform(3 * 16));
    const prep = { size: 8, channels: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    try {
      const got = await modelFeatures(ctx, vit, images, [1, 4, 4], prep);
      expect(got.F).toBe(8);
      const want = await ctx.scope(async () => ctx.noGrad(() => vit.featuresOf(tensor(ctx, prepareImages(images, [1, 4, 4], prep), [3, 3, 8, 8]))).read());
      expectClose(got.features, want, 1e-5, 1e-6, 'ViT features');
    } finally {
      vit.dispose();
    }
  });
});
