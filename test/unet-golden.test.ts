// Golden test against PyTorch: the authors' class-conditional DDPM UNet (Conditional_Model) at a tiny
// width (ch 8, 2 groups, ch_mult [1, 2], one res block, attention at 16x16 in down.0, mid and up.0),
// loaded strictly from the state dict scripts/make_unet_golden.py wrote (F16-exact values under the
// reference's names). The conditional prediction (sample 2 on the null class), the guided prediction
// (w = 2), the noise-regression loss and every parameter gradient must match PyTorch's float64 answer
// to max|a-b|/max|b| <= 1e-4 per tensor; the attention key biases, whose gradient is mathematically
// zero, to 1e-5 of the largest gradient. Dropout is 0 here (its randomness cannot match torch's).
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32 } from '../src/io/safetensors.js';
import { tensor, sub, square, sum, mulScalar, backward } from '../src/ops/index.js';
import { ConditionalUNet } from '../src/models/diffusion/unet.js';
import { relErr, goldenLookup } from './golden.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/unet_golden.safetensors', import.meta.url));
const TOL = 1e-4;
const gpu = useGpu();

describe('DDPM Conditional_Model golden values from PyTorch', () => {
  it('conditional and guided predictions, loss and every gradient match', async () => {
    const { ctx } = gpu;
    const file = await loadSafetensorsFile(FIXTURE);
    const golden = goldenLookup(file);
    const cfg = JSON.parse(file.metadata.config!);
    const w = Number(file.metadata.cond_scale);
    const zeroGrads: string[] = JSON.parse(file.metadata.zero_grads!);
    const model = new ConditionalUNet(ctx, {
      ch: cfg.ch,
      chMult: cfg.ch_mult,
      numResBlocks: cfg.num_res_blocks,
      attnResolutions: cfg.attn_resolutions,
      dropout: cfg.dropout,
      inChannels: cfg.in_channels,
      outCh: cfg.out_ch,
      imageSize: cfg.resolution,
      numClasses: cfg.n_classes,
      numTimesteps: cfg.num_timesteps,
      numGroups: cfg.num_groups,
      seed: 5,
    });
    // strict: every parameter of the model is in the file, and the file holds nothing else but
    // inputs, outputs and gradients
    const { missing, unexpected } = model.loadStateDict(file, { strict: false });
    expect(missing).toEqual([]);
    expect(unexpected.filter((n) => !/^(input|out|grad)\./.test(n))).toEqual([]);
    model.train();

    const xs = golden('input.x');
    const K = cfg.n_classes as number;
    const drop = toInt32(golden('input.cond_drop'), 'cond_drop');
    const yRaw = toInt32(golden('input.y'), 'y');
    const yDrop = yRaw.map((v, i) => (drop[i] ? K : v));
    const x = ctx.keep(tensor(ctx, toFloat32(xs), xs.shape));
    const t = ctx.keep(tensor(ctx, toInt32(golden('input.t'), 't'), [3], 'i32'));
    const y = ctx.keep(tensor(ctx, yRaw, [3], 'i32'));
    const yd = ctx.keep(tensor(ctx, yDrop, [3], 'i32'));
    const target = ctx.keep(tensor(ctx, toFloat32(golden('input.eps')), xs.shape));

    const [eps, loss] = ctx.scope(() => {
      const e = model.forward(x, t, yd);
      const l = mulScalar(sum(square(sub(target, e))), 1 / xs.shape[0]!);
      backward(l);
      return [e, l];
    });
    const guided = ctx.scope(() => ctx.noGrad(() => model.guided(x, t, y, w)));

    const rows: { name: string; err: number }[] = [];
    rows.push({ name: 'out.eps', err: relErr(await eps!.read(), toFloat32(golden('out.eps'))) });
    rows.push({ name: 'out.guided', err: relErr(await guided.read(), toFloat32(golden('out.guided'))) });
    rows.push({ name: 'out.loss', err: relErr([await loss!.item()], toFloat32(golden('out.loss'))) });
    const params = model.namedParameters();
    expect(params.length).toBe([...file.tensors.keys()].filter((n) => n.startsWith('grad.')).length);
    let top = 0;
    for (const [name] of params) for (const v of toFloat32(golden(`grad.${name}`))) top = Math.max(top, Math.abs(v));
    for (const [name, p] of params) {
      expect(p.grad, `${name} has no gradient`).toBeTruthy();
      const g = await p.grad!.read();
      if (zeroGrads.includes(name)) rows.push({ name: `grad.${name} (zero)`, err: (g.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / top) * (TOL / 1e-5) });
      else rows.push({ name: `grad.${name}`, err: relErr(g, toFloat32(golden(`grad.${name}`))) });
    }
    const bad = rows.filter((r) => !(r.err <= TOL));
    const worst = rows.reduce((a, b) => (b.err > a.err ? b : a));
    console.log(`UNet golden: ${rows.length} tensors, worst ${worst.err.toExponential(2)} (${worst.name})`);
    expect(bad, bad.map((r) => `${r.name}: ${r.err.toExponential(2)}`).join('\n')).toEqual([]);
    model.dispose();
  }, 300_000); // ~25 s alone; minutes when the 2-core machine is shared
});
