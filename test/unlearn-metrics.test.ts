// Metrics of spec §6 (accuracy, both MIAs, KL/JS, Avg.D) and the logistic regression behind the
// entropy MIA, checked against closed forms, brute-force minima and hand-computed values. CPU only.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fitLogReg, logRegObjective, logRegPredict } from '../src/unlearn/classification/logreg.js';
import { accuracy, argmaxRows, avgGap, jsDivergence, klDivergence, miaConfidenceSvc, miaEntropyLogReg, miaEntropyLogRegDetails, predictionEntropy, trueLabelConfidence } from '../src/unlearn/classification/metrics.js';
import { Rng } from './helpers.js';
import { Generator } from '../src/util/rng.js';

/** independent float64 objective: ½w² + C Σ s log(1 + exp(−ỹ(wx + b))) for 1-D x */
function obj1d(w: number, b: number, x: number[], y: number[], s: [number, number], C = 1): number {
  let f = 0.5 * w * w;
  for (let i = 0; i < x.length; i++) {
    const m = (y[i] === 1 ? 1 : -1) * (w * x[i]! + b);
    f += C * s[y[i]!]! * Math.log1p(Math.exp(-m));
  }
  return f;
}

describe('logistic regression (sklearn objective, class_weight balanced)', () => {
  it('symmetric 1-D case matches the closed form w = C·N·σ(−w), b = 0', () => {
    // x = −1 (class 0) and +1 (class 1), n each; balanced weights are 1; by symmetry b = 0 and
    // dF/dw = w − C·2n·σ(−w) = 0
    const n = 20;
    const x = [...Array(n).fill(-1), ...Array(n).fill(1)];
    const y = [...Array(n).fill(0), ...Array(n).fill(1)];
    for (const C of [0.01, 1, 5]) {
      const m = fitLogReg(x, y, 1, { C });
      let lo = 0;
      let hi = 1000;
      for (let k = 0; k < 200; k++) {
        const mid = (lo + hi) / 2;
        if (mid - C * 2 * n / (1 + Math.exp(mid)) > 0) hi = mid;
        else lo = mid;
      }
      expect(m.coef[0]).toBeCloseTo(lo, 8);
      expect(m.intercept).toBeCloseTo(0, 8);
      expect(m.classWeight).toEqual([1, 1]);
    }
  });

  it('separable-ish data: the boundary lies between the classes and every point is right', () => {
    const rng = new Rng();
    const x = [...rng.uniform(30, -3, -1), ...rng.uniform(10, 1, 3)];
    const y = [...Array(30).fill(0), ...Array(10).fill(1)];
    const m = fitLogReg(x, y, 1);
    expect(m.classWeight[0]).toBeCloseTo(40 / 60, 12);
    expect(m.classWeight[1]).toBeCloseTo(40 / 20, 12);
    const boundary = -m.intercept / m.coef[0]!;
    expect(boundary).toBeGreaterThan(-1);
    expect(boundary).toBeLessThan(1);
    expect(Array.from(logRegPredict(m, x))).toEqual(y);
  });

  it('inseparable 1-D data: the solution is the brute-force grid minimum, gradient ~0', () => {
    const rng = new Rng();
    const x = [...rng.normal(50).map((v) => v + 0.5), ...rng.normal(20).map((v) => v - 0.5)];
    const y = [...Array(50).fill(1), ...Array(20).fill(0)];
    const m = fitLogReg(x, y, 1);
    const s: [number, number] = [70 / 40, 70 / 100];
    expect(m.classWeight[0]).toBeCloseTo(s[0], 12);
    expect(m.classWeight[1]).toBeCloseTo(s[1], 12);
    const w = m.coef[0]!;
    const b = m.intercept;
    const f = obj1d(w, b, x, y, s);
    // central differences of the independent objective
    const h = 1e-5;
    expect((obj1d(w + h, b, x, y, s) - obj1d(w - h, b, x, y, s)) / (2 * h)).toBeCloseTo(0, 5);
    expect((obj1d(w, b + h, x, y, s) - obj1d(w, b - h, x, y, s)) / (2 * h)).toBeCloseTo(0, 5);
    // grid of 81×81 around the solution: nothing lower
    let gridMin = Infinity;
    for (let i = -40; i <= 40; i++) for (let j = -40; j <= 40; j++) gridMin = Math.min(gridMin, obj1d(w + i * 0.01, b + j * 0.01, x, y, s));
    expect(f).toBeLessThanOrEqual(gridMin + 1e-12);
    expect(logRegObjective([w], b, x, y, s, 1).value).toBeCloseTo(f, 10);
  });

  it('3-D inseparable data: objective gradient ~0 (by finite differences)', () => {
    const rng = new Rng();
    const N = 60;
    const X = rng.normal(N * 3);
    const y = Int32Array.from({ length: N }, (_, i) => (X[i * 3]! + 0.5 * X[i * 3 + 1]! + rng.normal(1)[0]! > 0.3 ? 1 : 0));
    const m = fitLogReg(X, y, 3, { C: 0.5 });
    const p = [...m.coef, m.intercept];
    const F = (q: number[]) => logRegObjective(q.slice(0, 3), q[3]!, X, y, m.classWeight, 0.5).value;
    for (let k = 0; k < 4; k++) {
      const a = [...p];
      const c = [...p];
      a[k] += 1e-5;
      c[k] -= 1e-5;
      expect((F(a) - F(c)) / 2e-5).toBeCloseTo(0, 5);
    }
  });

  it('matches scikit-learn LogisticRegression(class_weight="balanced") (fixture from unlearn_sklearn.py)', () => {
    const ref = JSON.parse(readFileSync(new URL('./fixtures/unlearn_sklearn.json', import.meta.url), 'utf8'));
    const a = ref.logreg1d;
    const m1 = fitLogReg(a.x, a.y, 1);
    expect(m1.coef[0]).toBeCloseTo(a.coef[0], 7);
    expect(m1.intercept).toBeCloseTo(a.intercept, 7);
    const b = ref.logreg3d;
    const m3 = fitLogReg(b.X, b.y, 3, { C: b.C });
    for (let d = 0; d < 3; d++) expect(m3.coef[d]).toBeCloseTo(b.coef[d], 7);
    expect(m3.intercept).toBeCloseTo(b.intercept, 7);
  });

  it('rejects non-binary labels and a missing class', () => {
    expect(() => fitLogReg([1, 2], [0, 2], 1)).toThrow(/y\[1\] = 2/);
    expect(() => fitLogReg([1, 2], [1, 1], 1)).toThrow(/both classes/);
    expect(() => fitLogReg([1, 2, 3], [0, 1], 1)).toThrow(/expected N\*D/);
  });
});

/** probability rows: `n` rows with mass `top` on class y (drawn from rng), the rest spread evenly */
function peaked(rng: Rng, n: number, C: number, top: number, labels?: Int32Array): Float32Array {
  const p = new Float32Array(n * C);
  const ys = labels ?? rng.int(n, C);
  for (let i = 0; i < n; i++) {
    const t = top * (0.97 + 0.03 * rng.uniform(1, 0, 1)[0]!);
    for (let c = 0; c < C; c++) p[i * C + c] = c === ys[i] ? t : (1 - t) / (C - 1);
  }
  return p;
}

describe('metrics', () => {
  it('accuracy and argmax', () => {
    expect(accuracy(Int32Array.from([1, 2, 3, 4]), Int32Array.from([1, 0, 3, 0]))).toBe(50);
    expect(Array.from(argmaxRows([0.1, 0.7, 0.2, 0.5, 0.5, 0], 3))).toEqual([1, 0]);
    expect(() => accuracy(new Int32Array(2), new Int32Array(3))).toThrow(/pred has 2/);
  });

  it('entropy and confidence features by hand', () => {
    const h = predictionEntropy([0.5, 0.5, 0, 1, 0, 0], 3);
    expect(h[0]).toBeCloseTo(Math.log(2), 12);
    expect(h[1]).toBe(0);
    expect(Array.from(trueLabelConfidence([0.2, 0.8, 0.6, 0.4], Int32Array.from([1, 1]), 2))).toEqual([0.8, 0.4]);
    expect(() => trueLabelConfidence([0.2, 0.8], Int32Array.from([2]), 2)).toThrow(/labels\[0\] = 2/);
  });

  it("miaEntropyLogReg equals the authors' sklearn call on overlapping, unbalanced data (fixture from scripts/make_unlearn_mia_fixture.py)", () => {
    const ref = JSON.parse(readFileSync(new URL('./fixtures/unlearn_mia.json', import.meta.url), 'utf8'));
    const input = { remainProbs: Float32Array.from(ref.remainProbs), testProbs: Float32Array.from(ref.testProbs), forgetProbs: Float32Array.from(ref.forgetProbs), numClasses: ref.numClasses };
    const d = miaEntropyLogRegDetails(input);
    expect(d.percent).toBe(ref.miaEntropyPercent);
    // the fitted boundary is sklearn's binary C = 2 fit (what the two-class multinomial fit equals)
    // (to lbfgs's convergence: measured 5e-6 relative)
    expect(Math.abs(d.model.coef[0]! - ref.binaryC2.coef)).toBeLessThan(2e-5 * Math.abs(ref.binaryC2.coef));
    expect(Math.abs(d.model.intercept - ref.binaryC2.intercept)).toBeLessThan(2e-5 * Math.abs(ref.binaryC2.intercept));
    // the fixture separates a correct fit from one without class weights
    expect(Math.abs(ref.miaEntropyPercent - ref.unweightedPercent)).toBeGreaterThanOrEqual(5);
  });

  it('miaEntropyLogReg: confident forget outputs look like members, uncertain ones do not', () => {
    const rng = new Rng();
    const C = 10;
    const remainProbs = peaked(rng, 300, C, 0.99);
    const testProbs = peaked(rng, 200, C, 0.6);
    expect(miaEntropyLogReg({ remainProbs, testProbs, forgetProbs: peaked(rng, 50, C, 0.995), numClasses: C })).toBe(100);
    expect(miaEntropyLogReg({ remainProbs, testProbs, forgetProbs: peaked(rng, 50, C, 0.5), numClasses: C })).toBe(0);
    // half and half
    const mixed = new Float32Array([...peaked(rng, 20, C, 0.995), ...peaked(rng, 20, C, 0.5)]);
    expect(miaEntropyLogReg({ remainProbs, testProbs, forgetProbs: mixed, numClasses: C })).toBe(50);
  });

  it('miaConfidenceSvc: low-confidence forget samples are non-members, high-confidence are members', () => {
    const rng = new Rng();
    const remainConf = rng.uniform(800, 0.9, 1);
    const testConf = rng.uniform(300, 0.2, 0.8);
    const run = (forgetConf: Float64Array) => miaConfidenceSvc({ remainConf, testConf, forgetConf, rng: new Generator(3) });
    expect(run(rng.uniform(40, 0.92, 1))).toBe(0);
    expect(run(rng.uniform(40, 0.25, 0.75))).toBe(100);
    expect(run(new Float64Array([0.3, 0.5, 0.95, 0.99]))).toBe(50);
    // reproducible for a given seed
    const f = rng.uniform(40, 0.7, 0.95);
    expect(run(f)).toBe(run(f));
  });

  it('KL and JS divergence by hand', () => {
    const p = [0.5, 0.5, 1, 0];
    const q = [0.9, 0.1, 0.5, 0.5];
    const kl0 = 0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1);
    const kl1 = Math.log(1 / 0.5) + 0 * Math.log(1e-20 / (0.5 + 1e-20));
    expect(klDivergence(p, q, 2, 2)).toBeCloseTo((kl0 + kl1) / 2, 12);
    expect(klDivergence(p, p, 2, 2)).toBeCloseTo(0, 15);
    const kl = (a: number[], b: number[]) => a.reduce((s, ai, i) => s + ai * (Math.log(ai + 1e-20) - Math.log(b[i]! + 1e-20)), 0);
    const js = (a: number[], b: number[]) => {
      const m = a.map((ai, i) => (ai + b[i]!) / 2);
      return 0.5 * kl(a, m) + 0.5 * kl(b, m);
    };
    const expected = (js([0.5, 0.5], [0.9, 0.1]) + js([1, 0], [0.5, 0.5])) / 2;
    expect(jsDivergence(p, q, 2, 2)).toBeCloseTo(expected, 12);
    expect(jsDivergence(p, q, 2, 2)).toBeCloseTo(jsDivergence(q, p, 2, 2), 15);
    expect(jsDivergence([1, 0], [0, 1], 1, 2)).toBeCloseTo(Math.log(2), 12); // the maximum
    expect(() => klDivergence(p, q, 3, 2)).toThrow(/expected n\*C/);
  });

  it('avgGap = mean |diff| over FA, RA, TA, MIA', () => {
    expect(avgGap({ FA: 90, RA: 99, TA: 90, MIA: 20 }, { FA: 94, RA: 100, TA: 94, MIA: 12 })).toBe((4 + 1 + 4 + 8) / 4);
    expect(() => avgGap({ FA: NaN, RA: 0, TA: 0, MIA: 0 }, { FA: 0, RA: 0, TA: 0, MIA: 0 })).toThrow(/FA/);
  });
});
