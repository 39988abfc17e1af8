// Golden test against torchvision: a tiny SwinTransformer (v1, swin_t's structure: 4 stages, patch 4,
// window 7) loaded from the state dict scripts/make_swin_golden.py wrote, one training-mode forward,
// mean cross-entropy and backward per input size (32x32 and 64x64 with every parameter gradient;
// 40x40, odd maps in patch merging, with the input gradient); each tensor within 1e-4 of PyTorch's
// float64 answer as max|a-b|/max|b|. Also the relative_position_index buffer is torchvision's exactly.
import { describe, it, expect, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32, type SafetensorsFile } from '../src/io/safetensors.js';
import { tensor, mean, crossEntropy, labelsTensor, backward } from '../src/ops/index.js';
import { SwinTransformer, relativePositionIndex } from '../src/models/swin.js';
import { requireGrad } from '../src/autograd/graph.js';
import { runForward } from '../src/cli/forward.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { relErr, goldenLookup } from './golden.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/swin_golden.safetensors', import.meta.url));
const TOL = 1e-4;

const gpu = useGpu();
let file: SafetensorsFile;
let config: { patch_size: number[]; embed_dim: number; depths: number[]; num_heads: number[]; window_size: number[]; mlp_ratio: number; num_classes: number };
beforeAll(async () => {
  file = await loadSafetensorsFile(FIXTURE);
  config = JSON.parse(file.metadata.config!);
});

const golden = (name: string) => goldenLookup(file)(name); // file is read in beforeAll
const build = () =>
  new SwinTransformer(gpu.ctx, {
    patchSize: config.patch_size as [number, number],
    embedDim: config.embed_dim,
    depths: config.depths,
    numHeads: config.num_heads,
    windowSize: config.window_size as [number, number],
    mlpRatio: config.mlp_ratio,
    numClasses: config.num_classes,
    stochasticDepthProb: 0,
  });

describe('Swin golden values from torchvision (train mode, no dropout)', () => {
  it('loads the state dict under torch names, nothing missing or left over; relative_position_index equals torch', async () => {
    const model = build();
    const { missing, unexpected } = model.loadStateDict(file, { strict: false });
    expect(missing).toEqual([]);
    expect(unexpected.filter((n) => !/^case\d+\./.test(n))).toEqual([]);
    const [wh, ww] = config.window_size as [number, number];
    expect(Array.from(relativePositionIndex(wh, ww))).toEqual(Array.from(toInt32(golden('features.1.0.attn.relative_position_index'))));
    model.dispose();
  });

  for (const S of [32, 64, 40]) {
    it(`${S}x${S}: logits, loss, input gradient${S === 40 ? '' : ' and every parameter gradient'} match`, async () => {
      const { ctx } = gpu;
      const model = build();
      model.loadStateDict(file, { strict: false });
      model.train();
      const p = `case${S}.`;
      const xs = golden(p + 'input.x');
      const x = ctx.keep(requireGrad(tensor(ctx, toFloat32(xs), xs.shape)));
      const y = ctx.keep(labelsTensor(ctx, toInt32(golden(p + 'input.y')), config.num_classes));
      const [logits, loss] = ctx.scope(() => {
        const lg = model.forward(x);
        const l = mean(crossEntropy(lg, y));
        backward(l);
        return [lg, l];
      });
      const rows: { name: string; err: number }[] = [];
      rows.push({ name: 'logits', err: relErr(await logits!.read(), toFloat32(golden(p + 'out.logits'))) });
      rows.push({ name: 'loss', err: relErr([await loss!.item()], toFloat32(golden(p + 'out.loss'))) });
      rows.push({ name: 'input.x', err: relErr(await x.grad!.read(), toFloat32(golden(p + 'grad.input.x'))) });
      if (file.tensors.has(p + 'grad.head.weight')) {
        const params = model.namedParameters();
        expect(params.length).toBe([...file.tensors.keys()].filter((n) => n.startsWith(p + 'grad.') && n !== p + 'grad.input.x').length);
        for (const [name, t] of params) {
          expect(t.grad, `${name} has no gradient`).toBeTruthy();
          rows.push({ name, err: relErr(await t.grad!.read(), toFloat32(golden(`${p}grad.${name}`))) });
        }
      }
      const worst = rows.reduce((a, b) => (b.err > a.err ? b : a));
      console.log(`Swin golden ${S}x${S}: ${rows.length} tensors, worst max|a-b|/max|b| ${worst.err.toExponential(2)} (${worst.name})`);
      expect(rows.filter((r) => !(r.err <= TOL)).map((r) => `${r.name}: ${r.err.toExponential(2)}`)).toEqual([]);
      logits!.dispose();
      loss!.dispose();
      x.dispose();
      y.dispose();
      model.dispose();
    }, 120_000);
  }
});

describe('forward --arch swin_t on torchvision weights', () => {
  it('the state dict alone (I64 index buffers included) loads strictly and the eval-mode logits match at 32 and 64 px', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'swin-forward-'));
    const weights = join(tmp, 'weights.safetensors');
    writeFileSync(weights, serializeSafetensors(new Map([...file.tensors].filter(([n]) => !/^case\d+\./.test(n)))));
    const options = {
      patchSize: config.patch_size,
      embedDim: config.embed_dim,
      depths: config.depths,
      numHeads: config.num_heads,
      windowSize: config.window_size,
      mlpRatio: config.mlp_ratio,
      numClasses: config.num_classes,
    };
    for (const S of [32, 64]) {
      const input = join(tmp, `in${S}.safetensors`);
      writeFileSync(input, serializeSafetensors(new Map([['x', golden(`case${S}.input.x`)]])));
      const out = join(tmp, `out${S}.safetensors`);
      // no dropout in the fixture's model; eval mode also turns stochastic depth (swin_t's default 0.2) off
      const shape = await runForward(gpu.ctx, { arch: 'swin_t', options, weights, input, out });
      expect(shape).toEqual(golden(`case${S}.out.logits`).shape);
      const got = toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!);
      expect(relErr(got, toFloat32(golden(`case${S}.out.logits`)))).toBeLessThan(TOL);
    }
    await expect(runForward(gpu.ctx, { arch: 'swin_t', options: { ...options, embedDim: 8 }, weights, input: join(tmp, 'in32.safetensors'), out: join(tmp, 'x.safetensors') })).rejects.toThrow(
      /features\.0\.0\.weight' has shape/,
    );
  }, 120_000);
});
