// Golden test against PyTorch: DiT (adaLN-Zero, facebookresearch/DiT models.py) at a tiny size in pixel
// space (8x8x3 images, patch 2, width 32, depth 2, 2 heads, learn_sigma), loaded strictly from the state
// dict scripts/make_dit_golden.py wrote (seeded non-zero values everywhere, adaLN layers included, so
// every path carries signal; pos_embed included). The TS-built pos_embed must equal the file's; the
// prediction, the guided prediction (forward_with_cfg, scale 4), a loss touching every output channel,
// every parameter gradient and the input gradient must match PyTorch's float64 answer to
// max|a-b|/max|b| <= 1e-4 per tensor. Eval mode (DiT has no other train/eval difference).
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32 } from '../src/io/safetensors.js';
import { tensor, sub, square, sum, mulScalar, backward, requireGrad } from '../src/ops/index.js';
import { DiT } from '../src/models/diffusion/dit.js';
import { relErr, goldenLookup } from './golden.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/dit_golden.safetensors', import.meta.url));
const TOL = 1e-4;
const gpu = useGpu();

describe('DiT golden values from PyTorch', () => {
  it('pos_embed, prediction, guided prediction, loss and every gradient match', async () => {
    const { ctx } = gpu;
    const file = await loadSafetensorsFile(FIXTURE);
    const golden = goldenLookup(file);
    const cfg = JSON.parse(file.metadata.config!);
    const s = Number(file.metadata.cfg_scale);
    const model = new DiT(ctx, {
      inputSize: cfg.input_size,
      patchSize: cfg.patch_size,
      inChannels: cfg.in_channels,
      hiddenSize: cfg.hidden_size,
      depth: cfg.depth,
      numHeads: cfg.num_heads,
      mlpRatio: cfg.mlp_ratio,
      classDropoutProb: cfg.class_dropout_prob,
      numClasses: cfg.num_classes,
      learnSigma: cfg.learn_sigma,
      seed: 3,
    });
    const ownPos = await model.stateDict().get('pos_embed')!.read();
    const filePos = toFloat32(golden('pos_embed'));
    expect(ownPos.length).toBe(filePos.length);
    let posErr = 0;
    for (let i = 0; i < filePos.length; i++) posErr = Math.max(posErr, Math.abs(ownPos[i]! - filePos[i]!));
    expect(posErr).toBeLessThanOrEqual(1e-6);

    const { missing, unexpected } = model.loadStateDict(file, { strict: false });
    expect(missing).toEqual([]);
    expect(unexpected.filter((n) => !/^(input|out|grad)\./.test(n))).toEqual([]);
    model.eval();

    const xs = golden('input.x');
    const x = ctx.keep(requireGrad(tensor(ctx, toFloat32(xs), xs.shape)));
    const t = ctx.keep(tensor(ctx, toInt32(golden('input.t'), 't'), [3], 'i32'));
    const y = ctx.keep(tensor(ctx, toInt32(golden('input.y'), 'y'), [3], 'i32'));
    const tg = golden('input.target');
    const target = ctx.keep(tensor(ctx, toFloat32(tg), tg.shape));
    const [pred, loss] = ctx.scope(() => {
      const e = model.forward(x, t, y);
      const l = mulScalar(sum(square(sub(e, target))), 1 / xs.shape[0]!);
      backward(l);
      return [e, l];
    });
    const guided = ctx.scope(() => ctx.noGrad(() => model.guided(x, t, y, s)));

    const rows: { name: string; err: number }[] = [];
    rows.push({ name: 'out.pred', err: relErr(await pred!.read(), toFloat32(golden('out.pred'))) });
    rows.push({ name: 'out.guided', err: relErr(await guided.read(), toFloat32(golden('out.guided'))) });
    rows.push({ name: 'out.loss', err: relErr([await loss!.item()], toFloat32(golden('out.loss'))) });
    rows.push({ name: 'grad.input.x', err: relErr(await x.grad!.read(), toFloat32(golden('grad.input.x'))) });
    const params = model.namedParameters();
    expect(params.length).toBe([...file.tensors.keys()].filter((n) => n.startsWith('grad.') && n !== 'grad.input.x').length);
    for (const [name, p] of params) {
      expect(p.grad, `${name} has no gradient`).toBeTruthy();
      rows.push({ name: `grad.${name}`, err: relErr(await p.grad!.read(), toFloat32(golden(`grad.${name}`))) });
    }
    const bad = rows.filter((r) => !(r.err <= TOL));
    const worst = rows.reduce((a, b) => (b.err > a.err ? b : a));
    console.log(`DiT golden: ${rows.length} tensors, worst ${worst.err.toExponential(2)} (${worst.name})`);
    expect(bad, bad.map((r) => `${r.name}: ${r.err.toExponential(2)}`).join('\n')).toEqual([]);
    model.dispose();
  });
});
