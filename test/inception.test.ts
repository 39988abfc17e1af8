// Inception-v3 (torchvision's Inception3 and pytorch-fid's FID Inception): golden values from
// scripts/make_inception_golden.py at 1/16 width and the real 299x299 geometry (eval-mode forward and
// backward through every block, training-mode logits and aux logits with the aux head's gradients,
// transform_input, the FID blocks' unpadded average and max pools, pytorch-fid's --dims 64/192/768
// features), each tensor within
// max(1e-4, 4 x PyTorch's own float32 error) of the float64 answer as max|a-b|/max|b|; the full-width
// parameter counts torchvision and pytorch-fid give; a directional finite-difference check of every
// parameter gradient; a few AdamW steps lower the loss; bad options and inputs named.
import { describe, it, expect, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { directionalCheck, fitLosses } from './transformer-check.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32, type SafetensorsFile, type SafetensorsTensor } from '../src/io/safetensors.js';
import { tensor, mean, crossEntropy, labelsTensor, backward, add, mulScalar, randn } from '../src/ops/index.js';
import { requireGrad } from '../src/autograd/graph.js';
import { InceptionV3 } from '../src/models/inception.js';
import { architecture } from '../src/models/registry.js';
import { Generator } from '../src/util/rng.js';
import { relErr, goldenLookup } from './golden.js';
import { runForward } from '../src/cli/forward.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE = fileURLToPath(new URL('./fixtures/inception_golden.safetensors', import.meta.url));
const S = 299;

/** The fixture's inputs: an integer hash of the flat index mapped to [-scale, scale), float32 (as the script). */
function hashed(n: number, scale = 1.5): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = Math.imul(i, 2654435761) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 2246822519) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    out[i] = ((h / 2 ** 32) * 2) * scale - scale;
  }
  return out;
}

const gpu = useGpu();
let file: SafetensorsFile;
let options: Record<'tv' | 'fid', Record<string, unknown>>;
let torchErr: Record<string, number>;
let golden: (name: string) => SafetensorsTensor;
beforeAll(async () => {
  file = await loadSafetensorsFile(FIXTURE);
  options = JSON.parse(file.metadata.options!);
  torchErr = JSON.parse(file.metadata.torch_f32_err!);
  golden = goldenLookup(file);
});

/** The tv state dict (torchvision names), optionally without the aux head. */
const stateOf = (withAux: boolean) =>
  new Map(
    [...file.tensors]
      .filter(([n]) => n.startsWith('tv.') && !/^tv\.(eval|train)\./.test(n) && (withAux || !n.startsWith('tv.AuxLogits.')))
      .map(([n, t]) => [n.slice(3), t]),
  );

/** One row per compared tensor; the tolerance is max(1e-4, 4 x torch's float32 error). */
type Row = { name: string; err: number; tol: number };
const row = (name: string, a: ArrayLike<number>): Row => ({ name, err: relErr(a, toFloat32(golden(name))), tol: Math.max(1e-4, 4 * (torchErr[name] ?? 0)) });
function expectRows(what: string, rows: Row[]) {
  const worst = rows.reduce((a, b) => (b.err / b.tol > a.err / a.tol ? b : a));
  console.log(`Inception golden ${what}: ${rows.length} tensors, worst ${worst.err.toExponential(2)} (${worst.name}, tolerance ${worst.tol.toExponential(1)})`);
  expect(rows.filter((r) => !(r.err <= r.tol)).map((r) => `${r.name}: ${r.err.toExponential(2)} > ${r.tol.toExponential(1)}`)).toEqual([]);
}

describe('Inception-v3 golden values (torchvision layout and the FID Inception, 1/16 width, 299x299)', () => {
  it('eval mode: strict load; logits, features, transform_input, the input gradient and every parameter gradient match', async () => {
    const { ctx } = gpu;
    const model = new InceptionV3(ctx, options.tv);
    model.loadStateDict(stateOf(true), { strict: true });
    model.eval();
    const x = ctx.keep(requireGrad(tensor(ctx, hashed(2 * 3 * S * S), [2, 3, S, S])));
    const y = ctx.keep(labelsTensor(ctx, toInt32(golden('input.y2')), 10));
    const [logits, feats] = ctx.scope(() => {
      const lg = model.forward(x);
      backward(mean(crossEntropy(lg, y)));
      return [lg, ctx.noGrad(() => model.features(x))];
    });
    const rows: Row[] = [row('tv.eval.logits', await logits!.read()), row('tv.eval.features', await feats!.read())];
    const gx = (await x.grad!.read()) as Float32Array;
    // the input gradient: a projection on v over all of it, and its top-left 12x12 corner in full
    let dot = 0;
    for (let i = 0; i < gx.length; i++) dot += gx[i]! * Math.cos(i * 0.3137 + 0.1);
    const dotErr = Math.abs(dot - toFloat32(golden('tv.eval.grad.input.dot'))[0]!) / toFloat32(golden('tv.eval.grad.input.absdot'))[0]!;
    rows.push({ name: 'tv.eval.grad.input.dot', err: dotErr, tol: 1e-4 });
    const corner: number[] = [];
    for (let nc = 0; nc < 6; nc++) for (let h = 0; h < 12; h++) for (let w = 0; w < 12; w++) corner.push(gx[(nc * S + h) * S + w]!);
    rows.push(row('tv.eval.grad.input.corner', corner));
    let compared = 0;
    for (const [name, t] of model.namedParameters()) {
      if (name.startsWith('AuxLogits.')) {
        expect(t.grad, `${name}: the aux head does not run in eval mode`).toBeFalsy();
        continue;
      }
      expect(t.grad, `${name} has no gradient`).toBeTruthy();
      rows.push(row(`tv.eval.grad.${name}`, await t.grad!.read()));
      compared++;
    }
    expect(compared).toBe([...file.tensors.keys()].filter((n) => n.startsWith('tv.eval.grad.') && !n.startsWith('tv.eval.grad.input.')).length);
    expectRows('eval', rows);
    logits!.dispose();
    feats!.dispose();
    // transform_input: the same weights, ImageNet-normalised input mapped to the weights' range first
    const tmodel = new InceptionV3(ctx, { ...options.tv, transformInput: true });
    tmodel.loadStateDict(stateOf(true), { strict: true });
    tmodel.eval();
    const tl = ctx.scope(() => ctx.noGrad(() => tmodel.forward(x)));
    expectRows('transform_input', [row('tv.eval.transform.logits', await tl.read())]);
    tl.dispose();
    tmodel.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
  }, 300_000);

  it('training mode (batch statistics): logits, aux logits, loss and the aux head gradients match', async () => {
    const { ctx } = gpu;
    const model = new InceptionV3(ctx, options.tv);
    model.loadStateDict(stateOf(true), { strict: true });
    model.train();
    const x = ctx.keep(tensor(ctx, hashed(8 * 3 * S * S), [8, 3, S, S]));
    const y = ctx.keep(labelsTensor(ctx, toInt32(golden('input.y8')), 10));
    const [logits, aux, loss] = ctx.scope(() => {
      const { logits: lg, aux: ax } = model.forwardWithAux(x);
      const l = add(mean(crossEntropy(lg, y)), mulScalar(mean(crossEntropy(ax!, y)), 0.4));
      backward(l);
      return [lg, ax!, l];
    });
    const rows: Row[] = [row('tv.train.logits', await logits!.read()), row('tv.train.aux', await aux!.read()), row('tv.train.loss', [await loss!.item()])];
    const auxParams = model.namedParameters().filter(([n]) => n.startsWith('AuxLogits.'));
    expect(auxParams.length).toBe(8);
    for (const [name, t] of auxParams) rows.push(row(`tv.train.grad.${name}`, await t.grad!.read()));
    expectRows('train', rows);
    for (const t of [logits!, aux!, loss!, x, y]) t.dispose();
    model.dispose();
  }, 300_000);

  it("fid: pytorch-fid's blocks (unpadded average pools, Mixed_7c max pool): features and logits match", async () => {
    const { ctx } = gpu;
    const model = new InceptionV3(ctx, options.fid);
    expect(model.AuxLogits).toBeNull();
    model.loadStateDict(stateOf(false), { strict: true });
    model.eval();
    const [lg, ft] = ctx.scope(() =>
      ctx.noGrad(() => {
        const x = tensor(ctx, hashed(2 * 3 * S * S), [2, 3, S, S]);
        return [model.forward(x), model.features(x)];
      }),
    );
    expectRows('fid', [row('fid.eval.logits', await lg!.read()), row('fid.eval.features', await ft!.read())]);
    lg!.dispose();
    ft!.dispose();
    // pytorch-fid's --dims 64, 192, 768 (its blocks 0-2, spatially averaged): featuresAt and the option
    const lower: Row[] = [];
    for (const dims of [64, 192, 768] as const) {
      const m = new InceptionV3(ctx, { ...options.fid, featureDims: dims });
      m.loadStateDict(stateOf(false), { strict: true });
      m.eval();
      const [a, b] = ctx.scope(() =>
        ctx.noGrad(() => {
          const x = tensor(ctx, hashed(2 * 3 * S * S), [2, 3, S, S]);
          return [m.features(x), model.featuresAt(x, dims)];
        }),
      );
      expect(a!.shape).toEqual([2, dims / 16]);
      lower.push(row(`fid.eval.dims${dims}`, await a!.read()), { ...row(`fid.eval.dims${dims}`, await b!.read()), name: `featuresAt ${dims}` });
      a!.dispose();
      b!.dispose();
      m.dispose();
    }
    expectRows('fid --dims', lower);
    // the torchvision blocks on the same weights give other features: the FID patches matter here
    const tv = new InceptionV3(ctx, { ...options.fid, fid: false, auxLogits: false });
    tv.loadStateDict(stateOf(false), { strict: true });
    tv.eval();
    const other = ctx.scope(() => ctx.noGrad(() => tv.features(tensor(ctx, hashed(2 * 3 * S * S), [2, 3, S, S]))));
    expect(relErr(await other.read(), toFloat32(golden('fid.eval.features')))).toBeGreaterThan(1e-2);
    other.dispose();
    tv.dispose();
    model.dispose();
  }, 300_000);
});

describe('forward --arch inception_v3 on FID Inception weights', () => {
  it('loads strictly, the eval-mode logits match, and a torchvision-layout file is refused by name', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'inception-forward-'));
    try {
      const weights = join(tmp, 'weights.safetensors');
      writeFileSync(weights, serializeSafetensors(stateOf(false)));
      const input = join(tmp, 'in.safetensors');
      writeFileSync(input, serializeSafetensors(new Map([['x', { dtype: 'F32', shape: [2, 3, S, S], data: hashed(2 * 3 * S * S) }]])));
      const out = join(tmp, 'out.safetensors');
      await runForward(gpu.ctx, { arch: 'inception_v3', options: options.fid, weights, input, out });
      const got = toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!);
      expect(relErr(got, toFloat32(golden('fid.eval.logits')))).toBeLessThan(1e-4);
      // the same file for the aux-head layout: the missing aux tensors are named
      await expect(runForward(gpu.ctx, { arch: 'inception_v3', options: { ...options.fid, auxLogits: true }, weights, input, out })).rejects.toThrow(/AuxLogits\.conv0\.conv\.weight/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('Inception-v3 (full width and tiny instances)', () => {
  it("full width has torchvision's and pytorch-fid's parameter counts and names", () => {
    const { ctx } = gpu;
    const count = (m: InceptionV3) => m.namedParameters().reduce((s, [, t]) => s + t.size, 0);
    const tv = new InceptionV3(ctx);
    // torchvision's inception_v3 (aux head, 1000 classes): 27,161,264 parameters
    expect(count(tv)).toBe(27_161_264);
    const names = [...tv.stateDict().keys()];
    expect(names.slice(0, 6)).toEqual([
      'Conv2d_1a_3x3.conv.weight',
      'Conv2d_1a_3x3.bn.weight',
      'Conv2d_1a_3x3.bn.bias',
      'Conv2d_1a_3x3.bn.running_mean',
      'Conv2d_1a_3x3.bn.running_var',
      'Conv2d_1a_3x3.bn.num_batches_tracked',
    ]);
    expect(names).toContain('Mixed_6e.branch7x7dbl_5.conv.weight');
    expect(names).toContain('AuxLogits.conv1.conv.weight');
    expect(names).toContain('Mixed_7c.branch3x3dbl_3b.bn.running_var');
    expect(tv.stateDict().get('Mixed_6b.branch7x7_2.conv.weight')!.shape).toEqual([128, 128, 1, 7]);
    expect(tv.stateDict().get('Mixed_7b.branch3x3_2b.conv.weight')!.shape).toEqual([384, 384, 3, 1]);
    tv.dispose();
    // pytorch-fid's FID Inception: no aux head, 1008 classes: 23,834,568 + 8 x 2049
    const fid = new InceptionV3(ctx, { fid: true });
    expect(count(fid)).toBe(23_834_568 + 8 * 2049);
    expect(fid.fc.weight.shape).toEqual([1008, 2048]);
    fid.dispose();
  }, 120_000);

  it('every parameter gradient matches a directional finite difference (eval mode, 75x75, 1/16 width)', async () => {
    const { ctx } = gpu;
    // the fixture's weights and running statistics: with the default initialisation and unit running
    // variances the eval-mode activations shrink to ~1e-7 by the last block, far below any usable
    // step, and central differences only measure the ReLU kinks they cross
    // both layouts: torchvision's blocks and the FID ones (unpadded average pools, Mixed_7c max pool)
    for (const fid of [false, true]) {
      const model = new InceptionV3(ctx, { ...options.fid, fid, auxLogits: false });
      model.loadStateDict(stateOf(false), { strict: true });
      model.eval();
      // a step of 1e-4 (the ReLUs and max pools crossed at 1e-3 cost ~1%)
      const { analytic, numeric } = await directionalCheck(ctx, model, [2, 3, 75, 75], 7, 1e-4);
      expect(Math.abs(analytic - numeric), `fid ${fid}: autograd ${analytic} vs finite differences ${numeric}`).toBeLessThan(1e-2 * Math.abs(numeric) + 1e-3);
      model.dispose();
    }
  }, 120_000);

  it('loss goes down over a few AdamW steps (training mode, 75x75, 1/16 width)', async () => {
    const model = new InceptionV3(gpu.ctx, { widthDiv: 16, numClasses: 3, auxLogits: false, dropout: 0, seed: 1 });
    const losses = await fitLosses(gpu.ctx, model, [6, 3, 75, 75], 3, 10, 3e-3);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!, losses.join(', ')).toBeLessThan(losses[0]! * 0.6);
    model.dispose();
  }, 120_000);

  it('refuses bad options and inputs, naming the value', () => {
    const { ctx } = gpu;
    expect(() => new InceptionV3(ctx, { widthDiv: 3 })).toThrow(/widthDiv must be 1, 2, 4, 8 or 16 .* got 3/);
    expect(() => new InceptionV3(ctx, { widthDiv: 16, dropout: 1 })).toThrow(/dropout must be in \[0, 1\), got 1/);
    expect(() => new InceptionV3(ctx, { widthDiv: 16, numClasses: 0 })).toThrow(/numClasses must be a positive integer, got 0/);
    expect(() => new InceptionV3(ctx, { widthDiv: 16, featureDims: 100 as 64 })).toThrow(/featureDims must be 64, 192, 768 or 2048 \(pytorch-fid's --dims\), got 100/);
    expect(() => architecture('inception_v3', { aux: true })).toThrow(/inception_v3 has no option 'aux'/);
    const model = new InceptionV3(ctx, { widthDiv: 16, numClasses: 3 });
    const g = new Generator(1);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 3, 74, 80], g)))).toThrow(/input 74x80 is smaller than the 75x75/);
    expect(() => ctx.scope(() => model.forward(randn(ctx, [1, 1, 80, 80], g)))).toThrow(/expected input \[N, 3, H, W\], got/);
    model.train();
    expect(() => ctx.scope(() => model.forwardWithAux(randn(ctx, [2, 3, 150, 150], g)))).toThrow(/the aux head needs a 17x17 Mixed_6e map \(299x299 input\); input 150x150 gives 7x7/);
    model.dispose();
  });
});
