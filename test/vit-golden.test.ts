// Golden test against torchvision: two tiny VisionTransformers (vit_b_16's names; 32x32 with patch 8
// and 48x48 with patch 16 and an MLP width that is not 4x hidden) loaded strictly from the state
// dicts scripts/make_vit_golden.py wrote, one training-mode forward, mean cross-entropy and backward
// each; logits, loss, the input gradient and every parameter gradient within 1e-4 of PyTorch's
// float64 answer as max|a-b|/max|b|.
import { describe, it, expect, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32, type SafetensorsFile } from '../src/io/safetensors.js';
import { tensor, mean, crossEntropy, labelsTensor, backward } from '../src/ops/index.js';
import { VisionTransformer } from '../src/models/vit.js';
import { requireGrad } from '../src/autograd/graph.js';
import { runForward } from '../src/cli/forward.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { relErr, goldenLookup } from './golden.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/vit_golden.safetensors', import.meta.url));
const TOL = 1e-4;
const IO = ['input.', 'out.', 'grad.'];

const gpu = useGpu();
let file: SafetensorsFile;
let configs: Record<string, { image_size: number; patch_size: number; num_layers: number; num_heads: number; hidden_dim: number; mlp_dim: number; num_classes: number }>;
beforeAll(async () => {
  file = await loadSafetensorsFile(FIXTURE);
  configs = JSON.parse(file.metadata.configs!);
});

describe('ViT golden values from torchvision (train mode, no dropout)', () => {
  for (const prefix of ['vit32', 'vit48']) {
    it(`${prefix}: strict load; logits, loss, input gradient and every parameter gradient match`, async () => {
      const { ctx } = gpu;
      const c = configs[prefix]!;
      const golden = goldenLookup(file, `${prefix}.`);
      const model = new VisionTransformer(ctx, {
        imageSize: c.image_size,
        patchSize: c.patch_size,
        numLayers: c.num_layers,
        numHeads: c.num_heads,
        hiddenDim: c.hidden_dim,
        mlpDim: c.mlp_dim,
        numClasses: c.num_classes,
      });
      // exactly the model's state dict under torch's names (the prefix stripped), strictly
      const state = new Map([...file.tensors].filter(([n]) => n.startsWith(prefix + '.') && !IO.some((p) => n.startsWith(`${prefix}.${p}`))).map(([n, t]) => [n.slice(prefix.length + 1), t]));
      model.loadStateDict(state, { strict: true });
      model.train();
      const xs = golden('input.x');
      const x = ctx.keep(requireGrad(tensor(ctx, toFloat32(xs), xs.shape)));
      const y = ctx.keep(labelsTensor(ctx, toInt32(golden('input.y')), c.num_classes));
      const [logits, loss] = ctx.scope(() => {
        const lg = model.forward(x);
        const l = mean(crossEntropy(lg, y));
        backward(l);
        return [lg, l];
      });
      const rows: { name: string; err: number }[] = [];
      rows.push({ name: 'logits', err: relErr(await logits!.read(), toFloat32(golden('out.logits'))) });
      rows.push({ name: 'loss', err: relErr([await loss!.item()], toFloat32(golden('out.loss'))) });
      rows.push({ name: 'input.x', err: relErr(await x.grad!.read(), toFloat32(golden('grad.input.x'))) });
      const params = model.namedParameters();
      expect(params.length).toBe([...file.tensors.keys()].filter((n) => n.startsWith(`${prefix}.grad.`) && n !== `${prefix}.grad.input.x`).length);
      for (const [name, t] of params) {
        expect(t.grad, `${name} has no gradient`).toBeTruthy();
        rows.push({ name, err: relErr(await t.grad!.read(), toFloat32(golden(`grad.${name}`))) });
      }
      const worst = rows.reduce((a, b) => (b.err > a.err ? b : a));
      console.log(`ViT golden ${prefix}: ${rows.length} tensors, worst max|a-b|/max|b| ${worst.err.toExponential(2)} (${worst.name})`);
      expect(rows.filter((r) => !(r.err <= TOL)).map((r) => `${r.name}: ${r.err.toExponential(2)}`)).toEqual([]);
      logits!.dispose();
      loss!.dispose();
      x.dispose();
      y.dispose();
      model.dispose();
    }, 120_000);
  }
});

describe('forward --arch vit_b_16 on torchvision weights', () => {
  it('loads strictly and the eval-mode logits match (vit48)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'vit-forward-'));
    const p = 'vit48.';
    const c = configs.vit48!;
    const weights = join(tmp, 'weights.safetensors');
    writeFileSync(weights, serializeSafetensors(new Map([...file.tensors].filter(([n]) => n.startsWith(p) && !IO.some((q) => n.startsWith(p + q))).map(([n, t]) => [n.slice(p.length), t]))));
    const input = join(tmp, 'in.safetensors');
    writeFileSync(input, serializeSafetensors(new Map([['x', file.tensors.get(p + 'input.x')!]])));
    const out = join(tmp, 'out.safetensors');
    const options = { imageSize: c.image_size, patchSize: c.patch_size, numLayers: c.num_layers, numHeads: c.num_heads, hiddenDim: c.hidden_dim, mlpDim: c.mlp_dim, numClasses: c.num_classes };
    await runForward(gpu.ctx, { arch: 'vit_b_16', options, weights, input, out });
    const got = toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!);
    expect(relErr(got, toFloat32(file.tensors.get(p + 'out.logits')!))).toBeLessThan(TOL);
    await expect(runForward(gpu.ctx, { arch: 'vit_b_16', options: { ...options, imageSize: 32 }, weights, input, out })).rejects.toThrow(/pos_embedding' has shape/);
  }, 120_000);
});
