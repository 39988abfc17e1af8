// Memory acceptance check of the engine: 200 SGD-momentum steps of a small MLP, each inside
// ctx.scope, must leave the live buffer count and bytes exactly flat after warm-up and must stop
// creating GPU buffers (the pool reuses them). It does not measure speed or check numerics.

import { describe, expect, it } from 'vitest';
import { useGpu, Rng, f32 } from './helpers.js';
import { MLP } from '../src/models/mlp.js';
import { SGD } from '../src/nn/optim.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { mean } from '../src/wgsl/reduce.js';
import { tensor } from '../src/wgsl/fill.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

describe('training memory', () => {
  it('200 MLP steps: live buffers/bytes flat after warm-up, no new buffers, loss goes down', async () => {
    const ctx = gpu.ctx;
    const [B, D, C] = [16, 64, 10];
    const STEPS = 200, WARMUP = 20;
    const rng = new Rng();
    // a fixed pool of 4 random batches, with labels a learnable function of the inputs
    const batches = Array.from({ length: 4 }, () => {
      const x = rng.normal(B * D);
      const y = Int32Array.from({ length: B }, (_, i) => {
        let best = 0;
        for (let c = 1; c < C; c++) if (x[i * D + c]! > x[i * D + best]!) best = c;
        return best;
      });
      return { x: f32(x), y };
    });
    const model = new MLP(ctx, { sizes: [D, 32, C], seed: 1 });
    const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const live: number[] = [], bytes: number[] = [], created: number[] = [], losses: number[] = [];
    for (let step = 0; step < STEPS; step++) {
      const b = batches[step % batches.length]!;
      const loss = await ctx.scope(async () => {
        const x = tensor(ctx, b.x, [B, D]);
        const y = labelsTensor(ctx, b.y, C);
        const l = mean(crossEntropy(model.forward(x), y));
        backward(l);
        opt.step();
        opt.zeroGrad();
        return (await l.read())[0]!;
      });
      losses.push(loss);
      const s = ctx.stats();
      live.push(s.liveBuffers);
      bytes.push(s.liveBytes);
      created.push(s.created);
    }
    const after = (a: number[]) => a.slice(WARMUP);
    const range = (a: number[]) => [Math.min(...after(a)), Math.max(...after(a))];
    expect(range(live), `liveBuffers after step ${WARMUP}: ${after(live).join(',')}`).toEqual([live[WARMUP], live[WARMUP]]);
    expect(range(bytes), 'liveBytes after warm-up').toEqual([bytes[WARMUP], bytes[WARMUP]]);
    expect(created[STEPS - 1], `pool created ${created[WARMUP]} buffers at step ${WARMUP}, ${created[STEPS - 1]} at the end`).toBe(created[WARMUP]);
    const head = losses.slice(0, 8).reduce((s, v) => s + v, 0) / 8;
    const tail = losses.slice(-8).reduce((s, v) => s + v, 0) / 8;
    expect(Number.isFinite(tail)).toBe(true);
    expect(tail, `loss ${head} -> ${tail}`).toBeLessThan(0.7 * head);
    opt.dispose();
  });
});
