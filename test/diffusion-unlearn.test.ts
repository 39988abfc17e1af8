// One iteration of each diffusion unlearning method against a float64 reference on the linear
// stand-in ε-model (test/diffusion-standin.ts): the same noised batches (read from the task's own
// loaders), the guided-output Fisher-ratio mask with per-batch clipping (SFR-on), the top-50% saliency
// mask and the relabelled-noise MSE (SalUn), SA's uniform-noise surrogate, replay and EWC with the
// replay Fisher, SFR-on's detached adaptive weights and α₀, clipping, Adam. Each optimizer step's
// gradient is captured after it was masked and clipped, and the final weights are compared.
// A wrong sign, mask, weight, clip or loss misses these by far more than the f32 tolerance.
import { describe, it, expect } from 'vitest';
import { useGpu, expectClose, Rng } from './helpers.js';
import { StandInEps, refEps, type RefParams } from './diffusion-standin.js';
import { DiffusionSchedule, gaussian, qSample, type NoisedBatch } from '../src/models/diffusion/process.js';
import { sampleImages } from '../src/models/diffusion/samplers.js';
import { diffusionProblem, type DiffusionProblem } from '../src/unlearn/diffusion/task.js';
import { DIFFUSION_PRESETS, runDiffusionUnlearning, checkDiffusionMethod, type DiffusionMethodConfig } from '../src/unlearn/diffusion/methods.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { mulScalar } from '../src/ops/index.js';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();
const rng = new Rng();
const tag = (w: string) => `${w} (seed ${rng.seed})`;
const IMG: [number, number, number] = [1, 2, 2];
const D = 4;
const K = 3;
const T = 20;
const F = 1; // forgotten class
const B = 4; // batch

// ------------------------------------------------------------------------------------------------
// float64 reference

type Grads = { W: Float64Array; U: Float64Array; v: Float64Array };
const zeroGrads = (p: RefParams): Grads => ({ W: new Float64Array(p.W.length), U: new Float64Array(p.U.length), v: new Float64Array(p.v.length) });

/**
 * Per-sample prediction ε̂ᵢ = W xᵢ + Σ_(c, a) a·U[c] + τ[tᵢ] ⊙ v (a guided prediction is the
 * combination (y, 1+w), (K, −w)); `dOut(i, eps)` is dL/dε̂ᵢ; returns the parameter gradient.
 */
function refBackward(p: RefParams, tau: Float32Array, b: NoisedBatch, combos: (i: number) => [number, number][], dOut: (i: number, eps: Float64Array) => Float64Array): Grads {
  const g = zeroGrads(p);
  for (let i = 0; i < b.t.length; i++) {
    const x = b.xt.subarray(i * D, (i + 1) * D);
    const eps = predict(p, tau, x, b.t[i]!, combos(i));
    const d = dOut(i, eps);
    for (let r = 0; r < D; r++) {
      for (let j = 0; j < D; j++) g.W[r * D + j] += d[r]! * x[j]!;
      for (const [c, a] of combos(i)) g.U[c * D + r] += a * d[r]!;
      g.v[r] += d[r]! * tau[b.t[i]! * D + r]!;
    }
  }
  return g;
}

function predict(p: RefParams, tau: Float32Array, x: ArrayLike<number>, t: number, combos: [number, number][]): Float64Array {
  const base = refEps({ ...p, U: new Float64Array(p.U.length) }, tau, D, x, t, 0); // W x + τ ⊙ v
  for (const [c, a] of combos) for (let r = 0; r < D; r++) base[r] += a * p.U[c * D + r]!;
  return base;
}

const lossOf = (b: NoisedBatch, i: number, eps: Float64Array) => eps.reduce((s, e, r) => s + (b.noise[i * D + r]! - e) ** 2, 0);
/** d/dε̂ of c · Σ(ε − ε̂)² */
const dNoise = (b: NoisedBatch, c: number) => (i: number, eps: Float64Array) => eps.map((e, r) => -2 * c * (b.noise[i * D + r]! - e));

function gradNorm(g: Grads): number {
  let s = 0;
  for (const a of [g.W, g.U, g.v]) for (const x of a) s += x * x;
  return Math.sqrt(s);
}
function scale(g: Grads, k: number): Grads {
  return { W: g.W.map((x) => x * k), U: g.U.map((x) => x * k), v: g.v.map((x) => x * k) };
}
const clip = (g: Grads, max: number) => scale(g, Math.min(1, max / (gradNorm(g) + 1e-6)));
const add = (a: Grads, b: Grads): Grads => ({ W: a.W.map((x, i) => x + b.W[i]!), U: a.U.map((x, i) => x + b.U[i]!), v: a.v.map((x, i) => x + b.v[i]!) });
const maskMul = (g: Grads, m: Grads): Grads => ({ W: g.W.map((x, i) => x * m.W[i]!), U: g.U.map((x, i) => x * m.U[i]!), v: g.v.map((x, i) => x * m.v[i]!) });

/** torch Adam (no weight decay) over a list of gradients from zero state. */
class RefAdam {
  m: Grads;
  s: Grads;
  t = 0;
  constructor(
    public p: RefParams,
    readonly lr: number,
  ) {
    this.m = zeroGrads(p);
    this.s = zeroGrads(p);
  }
  step(g: Grads): void {
    this.t++;
    const bc1 = 1 - 0.9 ** this.t;
    const bc2 = 1 - 0.999 ** this.t;
    for (const k of ['W', 'U', 'v'] as const) {
      const p = Float64Array.from(this.p[k]);
      for (let i = 0; i < p.length; i++) {
        this.m[k][i] = 0.9 * this.m[k][i]! + 0.1 * g[k][i]!;
        this.s[k][i] = 0.999 * this.s[k][i]! + 0.001 * g[k][i]! ** 2;
        p[i] -= (this.lr / bc1) * (this.m[k][i]! / (Math.sqrt(this.s[k][i]!) / Math.sqrt(bc2) + 1e-8));
      }
      this.p = { ...this.p, [k]: p };
    }
  }
}

// ------------------------------------------------------------------------------------------------
// set-up

function setup() {
  const { ctx } = gpu;
  const n = 12;
  const x = Float32Array.from(rng.uniform(n * D));
  const y = Int32Array.from({ length: n }, (_, i) => i % K);
  const sched = new DiffusionSchedule({ T });
  const problem = diffusionProblem(ctx, { sched, numClasses: K, forgetClass: F, data: { image: IMG, x, y }, batchSize: B, seed: 1 + (rng.seed % 1000) });
  const init = { W: Float32Array.from(rng.uniform(D * D, -0.4, 0.4)), U: Float32Array.from(rng.uniform((K + 1) * D)), v: Float32Array.from(rng.uniform(D)), tau: Float32Array.from(rng.uniform(T * D)) };
  const cfg = { image: IMG, numClasses: K, T, ...init };
  const model = new StandInEps(ctx, cfg);
  const original = new StandInEps(ctx, cfg).freeze().eval();
  const ref: RefParams = { W: Float64Array.from(init.W), U: Float64Array.from(init.U), v: Float64Array.from(init.v) };
  return { problem, model, original, ref, tau: init.tau };
}

async function firstBatch(src: { batches(e: number): AsyncIterable<NoisedBatch> }): Promise<NoisedBatch> {
  for await (const b of src.batches(0)) return b;
  throw new Error('empty');
}
async function allBatches(src: { batches(e: number): AsyncIterable<NoisedBatch> }): Promise<NoisedBatch[]> {
  const out: NoisedBatch[] = [];
  for await (const b of src.batches(0)) out.push(b);
  return out;
}

/** Runs the method, capturing each update's (masked, clipped) gradient; returns the gradients and the final weights. */
async function run(mc: DiffusionMethodConfig, s: ReturnType<typeof setup>) {
  const { ctx } = gpu;
  const captured: Grads[] = [];
  const pending: Tensor[][] = [];
  const r = await runDiffusionUnlearning(mc, {
    problem: s.problem,
    model: s.model,
    original: s.original,
    onStep: () => pending.push([s.model.W, s.model.U, s.model.v].map((q) => ctx.keep(ctx.noGrad(() => mulScalar(q.grad!, 1))))),
  });
  for (const [W, U, v] of pending) {
    captured.push({ W: Float64Array.from(await W!.read()), U: Float64Array.from(await U!.read()), v: Float64Array.from(await v!.read()) });
    [W, U, v].forEach((t) => t!.dispose());
  }
  const final = { W: await s.model.W.read(), U: await s.model.U.read(), v: await s.model.v.read() };
  return { r, captured, final };
}

function expectGrads(got: Grads, want: Grads, what: string) {
  for (const k of ['W', 'U', 'v'] as const) expectClose(got[k], want[k], 2e-3, 2e-5, tag(`${what} d${k}`));
}
function expectParams(got: { W: Float32Array; U: Float32Array; v: Float32Array }, want: RefParams, what: string) {
  for (const k of ['W', 'U', 'v'] as const) expectClose(got[k], want[k], 1e-4, 1e-6, tag(`${what} ${k}`));
}

/** Guided-loss gradient of one batch (mean over the batch of Σ(ε − ε̂_w)²), as the masks use it. */
const guidedGrad = (s: ReturnType<typeof setup>, b: NoisedBatch, w: number) =>
  refBackward(s.ref, s.tau, b, (i) => [[b.y[i]!, 1 + w], [K, -w]], dNoise(b, 1 / b.t.length));

describe('diffusion unlearning methods (one iteration vs float64)', () => {
  it('SFR-on: guided Fisher-ratio mask, −α₀ Σ wᵢlᵢ masked and clipped, then a clipped remain step', async () => {
    const s = setup();
    const p: DiffusionProblem = s.problem;
    const mc = { ...DIFFUSION_PRESETS['SFR-on'], iterations: 1, lr: 0.05, alpha0: 3, clip: 1, maskBatches: null };
    // mask: F = Σ clip(g)² / #batches over D_f and D_r (no class dropout), M = (F_f + ε)/(F_r + ε) ≥ γ
    const fisher = (bs: NoisedBatch[]) => {
      let acc = zeroGrads(s.ref);
      for (const b of bs) {
        const g = clip(guidedGrad(s, b, mc.guidance), mc.clip);
        acc = add(acc, { W: g.W.map((x) => (x * x) / bs.length), U: g.U.map((x) => (x * x) / bs.length), v: g.v.map((x) => (x * x) / bs.length) });
      }
      return acc;
    };
    const Ff = fisher(await allBatches(p.plain('forget')));
    const Fr = fisher(await allBatches(p.plain('remain')));
    const M: Grads = { W: Ff.W.map((f, i) => ((f + 1e-15) / (Fr.W[i]! + 1e-15) >= 1 ? 1 : 0)), U: Ff.U.map((f, i) => ((f + 1e-15) / (Fr.U[i]! + 1e-15) >= 1 ? 1 : 0)), v: Ff.v.map((f, i) => ((f + 1e-15) / (Fr.v[i]! + 1e-15) >= 1 ? 1 : 0)) };
    // forget step: wᵢ = cᵢ/Σc, cᵢ = 1/(lᵢ^λ + 1e-15), L = −α₀ Σ wᵢ lᵢ (weights detached)
    const bf = await firstBatch(p.forget);
    const own = (b: NoisedBatch) => (i: number): [number, number][] => [[b.y[i]!, 1]];
    const lf = Array.from(bf.t, (_, i) => lossOf(bf, i, predict(s.ref, s.tau, bf.xt.subarray(i * D, (i + 1) * D), bf.t[i]!, own(bf)(i))));
    const c = lf.map((l) => 1 / (l ** mc.lambda + 1e-15));
    const wsum = c.reduce((a, b) => a + b, 0);
    const gF = clip(maskMul(refBackward(s.ref, s.tau, bf, own(bf), (i, e) => dNoise(bf, (-mc.alpha0 * c[i]!) / wsum)(i, e)), M), mc.clip);
    const adam = new RefAdam(s.ref, mc.lr);
    adam.step(gF);
    // remain step at the post-forget weights
    const br = await firstBatch(p.remain);
    const gR = clip(refBackward(adam.p, s.tau, br, own(br), dNoise(br, 1 / B)), mc.clip);
    adam.step(gR);
    const { r, captured, final } = await run(mc, s);
    expect(r.updates).toBe(2);
    expect(r.maskDensity).toBeCloseTo([M.W, M.U, M.v].reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0) / (D * D + (K + 1) * D + D), 6);
    expectGrads(captured[0]!, gF, 'forget step');
    expectGrads(captured[1]!, gR, 'remain step');
    expectParams(final, adam.p, 'weights');
    s.model.dispose();
    s.original.dispose();
  });

  it('SalUn: top-50% saliency mask; fa·MSE(ε̂(x_t, c_f), sg ε̂(x_t, c_f+1)) + ra·L_r', async () => {
    const s = setup();
    const p = s.problem;
    const mc = { ...DIFFUSION_PRESETS.SalUn, iterations: 1, lr: 0.05, forgetAlpha: 1, remainAlpha: 0.25, maskBatches: null };
    // mask: |Σ clip(∇ guided loss)| over D_f, the top half
    let G = zeroGrads(s.ref);
    for (const b of await allBatches(p.plain('forget'))) G = add(G, clip(guidedGrad(s, b, mc.guidance), mc.clip));
    const flat = [...G.W, ...G.U, ...G.v].map(Math.abs);
    const cut = [...flat].sort((a, b) => b - a)[Math.floor(flat.length * mc.threshold) - 1]!;
    const M: Grads = { W: G.W.map((x) => (Math.abs(x) >= cut ? 1 : 0)), U: G.U.map((x) => (Math.abs(x) >= cut ? 1 : 0)), v: G.v.map((x) => (Math.abs(x) >= cut ? 1 : 0)) };
    const bf = await firstBatch(p.plain('forget'));
    const br = await firstBatch(p.remain);
    const pseudo = (F + 1) % K;
    const gForget = refBackward(s.ref, s.tau, bf, () => [[F, 1]], (i, e) => {
      const target = predict(s.ref, s.tau, bf.xt.subarray(i * D, (i + 1) * D), bf.t[i]!, [[pseudo, 1]]);
      return e.map((v, r) => (mc.forgetAlpha * 2 * (v - target[r]!)) / (B * D));
    });
    const gRemain = refBackward(s.ref, s.tau, br, (i) => [[br.y[i]!, 1]], dNoise(br, mc.remainAlpha / B));
    const g = clip(maskMul(add(gForget, gRemain), M), mc.clip);
    const adam = new RefAdam(s.ref, mc.lr);
    adam.step(g);
    const { r, captured, final } = await run(mc, s);
    expect(r.maskDensity).toBeCloseTo(0.5, 1);
    expectGrads(captured[0]!, g, 'SalUn step');
    expectParams(final, adam.p, 'weights');
    s.model.dispose();
    s.original.dispose();
  });

  it('SA: uniform-noise surrogate of the forgotten class + replay of the kept classes + EWC(λ) with the replay Fisher', async () => {
    const s = setup();
    const p = s.problem;
    const mc = { ...DIFFUSION_PRESETS.SA, iterations: 1, lr: 0.05, ewcLambda: 10, replayWeight: 1, replayPerClass: 2, replaySteps: 2, fisherSamples: 3, fisherTimesteps: 4 };
    // the replay set: the original's samples of the kept classes (the sampler is tested elsewhere)
    const replayY = Int32Array.from([0, 0, 2, 2]);
    const replayX = await sampleImages(gpu.ctx, s.original, p.sched, { classes: replayY, seed0: p.seed * 7919 + 1, image: IMG, numClasses: K, steps: mc.replaySteps, guidance: mc.guidance });
    // the same generator stream as the method: Fisher draws, then the step's draws
    const gen = new Generator(p.seed + 17);
    const fisher = zeroGrads(s.ref);
    const nt = mc.fisherTimesteps;
    for (let k = 0; k < mc.fisherSamples; k++) {
      const j = gen.cpuInt(replayY.length);
      const x0 = new Float32Array(nt * D);
      for (let q = 0; q < nt; q++) x0.set(replayX.subarray(j * D, (j + 1) * D), q * D);
      const t = Int32Array.from({ length: nt }, (_, q) => Math.floor(((q + 0.5) * T) / nt));
      const noise = gaussian(gen, nt * D);
      const b: NoisedBatch = { shape: [nt, ...IMG], xt: qSample(p.sched, x0, t, noise), noise, t, y: new Int32Array(nt).fill(replayY[j]!) };
      const g = refBackward(s.ref, s.tau, b, () => [[replayY[j]!, 1]], dNoise(b, 1)); // Σ over the timesteps
      for (const key of ['W', 'U', 'v'] as const) g[key].forEach((x, i) => (fisher[key][i] += (x * x) / mc.fisherSamples));
    }
    const xf = new Float32Array(B * D);
    for (let i = 0; i < xf.length; i++) xf[i] = gen.cpuUniform() * 2 - 1;
    const t = new Int32Array(B);
    const half = B / 2 + 1;
    for (let i = 0; i < half; i++) t[i] = gen.cpuInt(T);
    for (let i = half; i < B; i++) t[i] = T - 1 - t[i - half]!;
    const xr = new Float32Array(B * D);
    const yr = new Int32Array(B);
    for (let i = 0; i < B; i++) {
      const j = gen.cpuInt(replayY.length);
      xr.set(replayX.subarray(j * D, (j + 1) * D), i * D);
      yr[i] = replayY[j]!;
    }
    const nf = gaussian(gen, B * D);
    const nr = gaussian(gen, B * D);
    const bF: NoisedBatch = { shape: [B, ...IMG], xt: qSample(p.sched, xf, t, nf), noise: nf, t, y: new Int32Array(B).fill(F) };
    const bR: NoisedBatch = { shape: [B, ...IMG], xt: qSample(p.sched, xr, t, nr), noise: nr, t, y: yr };
    // at θ = θ₀ the EWC gradient 2λF(θ − θ₀) is zero: the step is the two noise losses, clipped
    const g = clip(add(refBackward(s.ref, s.tau, bF, () => [[F, 1]], dNoise(bF, 1 / B)), refBackward(s.ref, s.tau, bR, (i) => [[yr[i]!, 1]], dNoise(bR, mc.replayWeight / B))), mc.clip);
    const adam = new RefAdam(s.ref, mc.lr);
    adam.step(g);
    const { captured, final } = await run({ ...mc, iterations: 1 }, s);
    expectGrads(captured[0]!, g, 'SA step');
    expectParams(final, adam.p, 'weights');
    // the EWC term itself: with the weights moved, ∇ = 2λ F ⊙ (θ − θ₀)
    const { ewcPenalty } = await import('../src/unlearn/diffusion/methods.js');
    const { ctx } = gpu;
    const { backward } = await import('../src/ops/index.js');
    const fT = await import('../src/ops/index.js').then((o) => [o.tensor(ctx, Float32Array.from(fisher.W), [D, D])]);
    ctx.scope(() => {
      s.model.zeroGrad();
      backward(ewcPenalty([s.model.W], fT, [s.original.W], mc.ewcLambda));
    });
    const want = Array.from(final.W, (w, i) => 2 * mc.ewcLambda * fisher.W[i]! * (w - s.ref.W[i]!));
    expectClose(await s.model.W.grad!.read(), want, 1e-3, 1e-5, tag('EWC gradient'));
    fT[0]!.dispose();
    s.model.dispose();
    s.original.dispose();
  });

  it('rejects bad configs and splits before any work', () => {
    const s = setup();
    expect(() => checkDiffusionMethod({ ...DIFFUSION_PRESETS['SFR-on'], iterations: 0 })).toThrow(/SFR-on.iterations = 0/);
    expect(() => checkDiffusionMethod({ ...DIFFUSION_PRESETS.SalUn, threshold: 1.5 })).toThrow(/threshold = 1.5/);
    expect(() => checkDiffusionMethod({ ...DIFFUSION_PRESETS.SA, replayPerClass: -1 })).toThrow(/replayPerClass/);
    expect(() => diffusionProblem(gpu.ctx, { sched: s.problem.sched, numClasses: K, forgetClass: K, data: s.problem.forgetSet, batchSize: B, seed: 0 })).toThrow(/forgetClass 3/);
    s.model.dispose();
    s.original.dispose();
  });
});

describe('the UNet through the diffusion pipeline', () => {
  it('a tiny ddpm-unet trains, samples and unlearns (SFR-on) with the same code', async () => {
    const { ctx } = gpu;
    const { architecture } = await import('../src/models/registry.js');
    const { trainDiffusion } = await import('../src/models/diffusion/train.js');
    const opts = { ch: 8, chMult: [1, 2], numResBlocks: 1, attnResolutions: [4], dropout: 0.1, inChannels: 1, outCh: 1, imageSize: 8, numClasses: K, numTimesteps: T, numGroups: 4, seed: 2 };
    const model = architecture('ddpm-unet', opts).build(ctx, opts) as unknown as import('../src/models/diffusion/process.js').EpsModel;
    const img: [number, number, number] = [1, 8, 8];
    const n = 12;
    const data = { image: img, x: Float32Array.from(rng.uniform(n * 64)), y: Int32Array.from({ length: n }, (_, i) => i % K) };
    const sched = new DiffusionSchedule({ T });
    const r = await trainDiffusion({ ctx, model, sched, data, numClasses: K, steps: 2, batchSize: 4, lr: 1e-3, seed: 1, emaDecay: 0.9 });
    expect(Number.isFinite(r.lastLoss)).toBe(true);
    r.ema!.copyTo(model);
    r.ema!.dispose();
    model.eval();
    const imgs = await sampleImages(ctx, model, sched, { classes: [0, 2], image: img, numClasses: K, steps: 2 });
    expect(imgs.length).toBe(2 * 64);
    expect(imgs.every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
    const problem = diffusionProblem(ctx, { sched, numClasses: K, forgetClass: F, data, batchSize: 4, seed: 3 });
    const original = model.clone().freeze().eval();
    const res = await runDiffusionUnlearning({ ...DIFFUSION_PRESETS['SFR-on'], iterations: 1, maskBatches: 1 }, { problem, model, original });
    expect(res.updates).toBe(2);
    expect(res.maskDensity! > 0 && res.maskDensity! < 1).toBe(true);
    model.dispose();
    original.dispose();
  });
});
