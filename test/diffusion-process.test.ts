// The DDPM process against float64 references on a tiny linear stand-in ε-model: the linear β
// schedule and ᾱ, q(x_t|x_0), antithetic timesteps and class dropout, the per-sample noise loss and
// its gradient, classifier-free guidance (1+w)ε_c − wε_∅, one DDIM and one DDPM step, seeded
// reproducibility, bad input errors, and a loss-goes-down run of the MLP denoiser.
import { describe, it, expect } from 'vitest';
import { useGpu, expectClose, Rng } from './helpers.js';
import { StandInEps, OracleEps, refEps, refNoiseLossGrad } from './diffusion-standin.js';
import { DiffusionSchedule, qSample, noisedBatch, uploadNoised, noiseLossPerSample, guidedEps, epsError, gaussian } from '../src/models/diffusion/process.js';
import { sampleImages, timestepSequence, ddimCoefficients } from '../src/models/diffusion/samplers.js';
import { trainDiffusion } from '../src/models/diffusion/train.js';
import { MlpDenoiser } from '../src/models/diffusion/mlp-denoiser.js';
import { backward, mean, tensor } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();
const rng = new Rng();
const tag = (w: string) => `${w} (seed ${rng.seed})`;
const IMG: [number, number, number] = [1, 2, 3];
const D = 6;
const K = 3;
const T = 20;

function standIn() {
  const c = {
    image: IMG,
    numClasses: K,
    T,
    W: Float32Array.from(rng.uniform(D * D, -0.3, 0.3)),
    U: Float32Array.from(rng.uniform((K + 1) * D)),
    v: Float32Array.from(rng.uniform(D)),
    tau: Float32Array.from(rng.uniform(T * D)),
  };
  const model = new StandInEps(gpu.ctx, c);
  const ref = { W: Float64Array.from(c.W), U: Float64Array.from(c.U), v: Float64Array.from(c.v) };
  return { model, ref, tau: c.tau };
}

describe('diffusion process', () => {
  it('linear betas 1e-4 -> 0.02 over T = 1000 and their cumulative product', () => {
    const s = new DiffusionSchedule();
    expect(s.T).toBe(1000);
    expect(s.betas[0]).toBeCloseTo(1e-4, 12);
    expect(s.betas[999]).toBeCloseTo(0.02, 12);
    expect(s.betas[500]! - s.betas[499]!).toBeCloseTo((0.02 - 1e-4) / 999, 12);
    let p = 1;
    for (let i = 0; i <= 700; i++) p *= 1 - s.betas[i]!;
    expect(s.alphaBar[700]).toBeCloseTo(p, 12);
    expect(s.abar(-1)).toBe(1);
  });

  it('q_sample, antithetic timesteps and class dropout', () => {
    const s = new DiffusionSchedule({ T });
    const n = 8;
    const x0 = Float32Array.from(rng.uniform(n * D));
    const y = Int32Array.from({ length: n }, (_, i) => i % K);
    const b = noisedBatch(s, x0, y, IMG, new Generator(rng.seed), { numClasses: K, condDrop: 0.5 });
    for (let i = 0; i < n; i++) {
      const a = s.alphaBar[b.t[i]!]!;
      for (let j = 0; j < D; j++) expect(b.xt[i * D + j]).toBeCloseTo(Math.sqrt(a) * x0[i * D + j]! + Math.sqrt(1 - a) * b.noise[i * D + j]!, 5);
    }
    for (let i = 5; i < n; i++) expect(b.t[i]).toBe(T - 1 - b.t[i - 5]!); // pairs (t, T−1−t)
    expect([...b.y].every((v, i) => v === y[i] || v === K)).toBe(true);
    const drops = noisedBatch(s, new Float32Array(400 * D), new Int32Array(400), IMG, new Generator(rng.seed + 1), { numClasses: K, condDrop: 0.1 }).y.filter((v) => v === K).length;
    expect(drops).toBeGreaterThan(15); // Binomial(400, 0.1): mean 40, sd 6
    expect(drops).toBeLessThan(70);
    // the same generator state gives the same batch
    const again = noisedBatch(s, x0, y, IMG, new Generator(rng.seed), { numClasses: K, condDrop: 0.5 });
    expect([...again.xt]).toEqual([...b.xt]);
  });

  it('per-sample noise loss and its gradient match float64', async () => {
    const { ctx } = gpu;
    const { model, ref, tau } = standIn();
    const s = new DiffusionSchedule({ T });
    const n = 5;
    const b = noisedBatch(s, Float32Array.from(rng.uniform(n * D)), Int32Array.from([0, 1, 2, 1, 0]), IMG, new Generator(rng.seed + 2), { numClasses: K, condDrop: 0.3 });
    const want = refNoiseLossGrad(ref, tau, D, b.xt, b.noise, b.t, b.y, new Float64Array(n).fill(1 / n));
    const l = ctx.scope(() => {
      model.zeroGrad();
      const per = noiseLossPerSample(model, uploadNoised(ctx, b));
      backward(mean(per));
      return ctx.keep(per);
    });
    expectClose(await l.read(), want.losses, 1e-4, 1e-5, tag('losses'));
    expectClose(await model.W.grad!.read(), want.dW, 1e-4, 1e-5, tag('dW'));
    expectClose(await model.U.grad!.read(), want.dU, 1e-4, 1e-5, tag('dU'));
    expectClose(await model.v.grad!.read(), want.dv, 1e-4, 1e-5, tag('dv'));
    l.dispose();
    model.dispose();
  });

  it('classifier-free guidance is (1+w)·eps_c − w·eps_null', async () => {
    const { ctx } = gpu;
    const { model, ref, tau } = standIn();
    const x = Float32Array.from(rng.uniform(2 * D));
    const t = Int32Array.from([3, 17]);
    const y = Int32Array.from([2, 0]);
    const w = 2;
    const out = await ctx.scope(() => ctx.keep(guidedEps(model, tensor(ctx, x, [2, ...IMG]), t, y, w, K))).read();
    const want: number[] = [];
    for (let i = 0; i < 2; i++) {
      const c = refEps(ref, tau, D, x.subarray(i * D), t[i]!, y[i]!);
      const u = refEps(ref, tau, D, x.subarray(i * D), t[i]!, K);
      for (let j = 0; j < D; j++) want.push((1 + w) * c[j]! - w * u[j]!);
    }
    expectClose(out, want, 1e-4, 1e-5, tag('guided'));
    model.dispose();
  });

  it('one DDIM (η = 0) and one DDPM step match float64; seeded grids reproduce', async () => {
    const { ctx } = gpu;
    const { model, ref, tau } = standIn();
    const s = new DiffusionSchedule({ T });
    expect(timestepSequence(T, 4)).toEqual([0, 5, 10, 15]);
    const w = 2;
    const run = (sampler: 'ddim' | 'ddpm', seeds: number[]) =>
      sampleImages(ctx, model, s, { classes: [1, 2], seeds, image: IMG, numClasses: K, steps: 1, sampler, guidance: w });
    // steps = 1 visits t = 0 only: x_T = z from each seed, one step to t = −1
    for (const sampler of ['ddim', 'ddpm'] as const) {
      const got = await run(sampler, [11, 12]);
      for (let i = 0; i < 2; i++) {
        const z = gaussian(new Generator(11 + i), D);
        const c = refEps(ref, tau, D, z, 0, i + 1);
        const u = refEps(ref, tau, D, z, 0, K);
        const a = s.alphaBar[0]!;
        for (let j = 0; j < D; j++) {
          const e = (1 + w) * c[j]! - w * u[j]!;
          let x0 = (z[j]! - Math.sqrt(1 - a) * e) / Math.sqrt(a);
          if (sampler === 'ddpm') x0 = Math.max(-1, Math.min(1, x0)); // ᾱ(−1) = 1: the mean is x̂₀, no noise at t = 0
          expect(got[i * D + j]).toBeCloseTo(Math.max(-1, Math.min(1, x0)), 3);
        }
      }
    }
    const c = ddimCoefficients(s, 10, 5, 0);
    const a = s.abar(10);
    const an = s.abar(5);
    expect(c.cz).toBe(0);
    expect(c.cx).toBeCloseTo(Math.sqrt(an / a), 12);
    expect(c.ce).toBeCloseTo(Math.sqrt(1 - an) - Math.sqrt(an / a) * Math.sqrt(1 - a), 12);
    const g1 = await sampleImages(ctx, model, s, { classes: [1, 2, 0], seed0: 5, image: IMG, numClasses: K, steps: 4, sampler: 'ddpm', batchSize: 3 });
    const g2 = await sampleImages(ctx, model, s, { classes: [1, 2, 0], seed0: 5, image: IMG, numClasses: K, steps: 4, sampler: 'ddpm', batchSize: 1 });
    expect([...g2]).toEqual([...g1]); // an image depends on its seed, not on its batch
    model.dispose();
  });

  it('DDIM and DDPM over many steps bring noise to the data under the exact ε of one-image classes', async () => {
    const { ctx } = gpu;
    const s = new DiffusionSchedule({ T: 1000 });
    const targets = Float32Array.from(rng.uniform(K * D, -0.9, 0.9));
    const oracle = new OracleEps(ctx, { targets, alphaBar: s.alphaBar, D, K });
    const classes = [0, 2, 1, 2];
    const want = classes.flatMap((c) => [...targets.subarray(c * D, (c + 1) * D)]);
    for (const [sampler, steps, clipDenoised] of [['ddim', 20, false], ['ddim', 20, true], ['ddim', 50, false], ['ddpm', 100, false]] as const) {
      const got = await sampleImages(ctx, oracle, s, { classes, seed0: 9, image: IMG, numClasses: K, steps, sampler, guidance: 0, clipDenoised });
      expectClose(got, want, 0, sampler === 'ddim' ? 1e-3 : 0.05, tag(`${sampler} ${steps} steps${clipDenoised ? ', x̂₀ clamped' : ''}`));
    }
    oracle.dispose();
  });

  it('rejects bad input before any work', () => {
    const { ctx } = gpu;
    const { model } = standIn();
    const s = new DiffusionSchedule({ T });
    expect(() => qSample(s, new Float32Array(D), Int32Array.from([T]), new Float32Array(D))).toThrow(/timestep t\[0\] = 20 is not in \[0, 20\)/);
    expect(() => noisedBatch(s, new Float32Array(D), Int32Array.from([K]), IMG, new Generator(1), { numClasses: K, condDrop: 0 })).toThrow(/class y\[0\] = 3/);
    expect(() => noisedBatch(s, new Float32Array(D + 1), Int32Array.from([0]), IMG, new Generator(1), { numClasses: K, condDrop: 0 })).toThrow(/7 values; 1 images/);
    expect(() => guidedEps(model, tensor(ctx, new Float32Array(D), [1, ...IMG]), Int32Array.from([0]), Int32Array.from([K + 1]), 2, K)).toThrow(/class y\[0\] = 4/);
    expect(() => epsError(tensor(ctx, new Float32Array(D), [1, ...IMG]), tensor(ctx, new Float32Array(D), [1, 1, 3, 2]))).toThrow(/image size mismatch/);
    expect(() => timestepSequence(T, T + 1)).toThrow(/steps = 21/);
    model.dispose();
  });

  it('training the MLP denoiser lowers the noise loss; a NaN loss is an error', async () => {
    const { ctx } = gpu;
    const img: [number, number, number] = [1, 4, 4];
    const n = 64;
    // two classes of fixed patterns plus small noise
    const x = new Float32Array(n * 16);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      for (let j = 0; j < 16; j++) x[i * 16 + j] = (y[i] ? (j % 2 ? 0.8 : -0.8) : j < 8 ? 0.8 : -0.8) + 0.05 * Math.sin(i + j);
    }
    const s = new DiffusionSchedule({ T: 50 });
    const model = new MlpDenoiser(ctx, { image: img, numClasses: 2, hidden: 32, blocks: 1, embed: 8, T: 50, seed: 1 });
    const base = { ctx, model, sched: s, data: { image: img, x, y }, numClasses: 2, batchSize: 16, lr: 3e-3, seed: 3, emaDecay: null };
    const first = await trainDiffusion({ ...base, steps: 4 });
    const later = await trainDiffusion({ ...base, steps: 120, seed: 4 });
    expect(later.lastLoss).toBeLessThan(first.lastLoss * 0.7);
    x[0] = NaN;
    await expect(trainDiffusion({ ...base, steps: 4 })).rejects.toThrow(/loss became NaN/);
    model.dispose();
  });
});
