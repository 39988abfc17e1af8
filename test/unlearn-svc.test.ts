// SVC (RBF C-SVC by SMO): separable, XOR, overlapping (dual constraints + KKT), a two-point case
// solved by hand, subsampling above the cap, and speed on a few thousand 1-D points. CPU only.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SVC } from '../src/unlearn/classification/svc.js';
import { Rng } from './helpers.js';
import { Generator } from '../src/util/rng.js';

/** n points around (cx, cy) with spread s */
function cluster(rng: Rng, n: number, cx: number, cy: number, s: number): number[][] {
  const z = rng.normal(2 * n);
  return Array.from({ length: n }, (_, i) => [cx + s * z[2 * i]!, cy + s * z[2 * i + 1]!]);
}

function trainAccuracy(svc: SVC, X: number[][], y: number[]): number {
  const p = svc.predict(X);
  let hit = 0;
  for (let i = 0; i < y.length; i++) if (p[i] === y[i]) hit++;
  return hit / y.length;
}

/** float64 decision value from the full dual solution, independent of the SV bookkeeping */
function refDecision(svc: SVC, X: number[][], x: number[]): number {
  let s = -svc.rho;
  for (let i = 0; i < X.length; i++) {
    let d2 = 0;
    for (let k = 0; k < x.length; k++) d2 += (X[i]![k]! - x[k]!) ** 2;
    s += svc.alpha[i]! * svc.ySigned[i]! * Math.exp(-svc.gamma * d2);
  }
  return s;
}

describe('SVC', () => {
  it('separates two linearly separable clusters (100% train accuracy)', () => {
    const rng = new Rng();
    const X = [...cluster(rng, 40, -2, -2, 0.4), ...cluster(rng, 40, 2, 2, 0.4)];
    const y = [...Array(40).fill(0), ...Array(40).fill(1)];
    const svc = new SVC({ C: 3 }).fit(X, y);
    expect(svc.converged).toBe(true);
    expect(trainAccuracy(svc, X, y)).toBe(1);
    expect(svc.predict([[-2, -2], [2, 2]])).toEqual(new Float64Array([0, 1]));
  });

  it('separates XOR-like data (not linearly separable)', () => {
    const rng = new Rng();
    const X = [...cluster(rng, 25, -1, -1, 0.15), ...cluster(rng, 25, 1, 1, 0.15), ...cluster(rng, 25, -1, 1, 0.15), ...cluster(rng, 25, 1, -1, 0.15)];
    const y = [...Array(50).fill(-1), ...Array(50).fill(1)];
    const svc = new SVC({ C: 10 }).fit(X, y);
    expect(svc.classes).toEqual([-1, 1]);
    expect(trainAccuracy(svc, X, y)).toBe(1);
    expect(svc.predict([[-1, -1], [1, 1], [-1, 1], [1, -1]])).toEqual(new Float64Array([-1, -1, 1, 1]));
  });

  it('overlapping classes: 0 <= alpha <= C, sum alpha*y = 0, KKT within tolerance', () => {
    const rng = new Rng();
    const X = [...cluster(rng, 60, -0.5, 0, 1), ...cluster(rng, 60, 0.5, 0, 1)];
    const y = [...Array(60).fill(0), ...Array(60).fill(1)];
    const C = 3;
    const svc = new SVC({ C, tol: 1e-4 }).fit(X, y);
    expect(svc.converged).toBe(true);
    let sumAy = 0;
    let atBound = 0;
    for (let i = 0; i < X.length; i++) {
      const a = svc.alpha[i]!;
      expect(a).toBeGreaterThanOrEqual(0);
      expect(a).toBeLessThanOrEqual(C);
      if (a === C) atBound++;
      sumAy += a * svc.ySigned[i]!;
      const yf = svc.ySigned[i]! * refDecision(svc, X, X[i]!);
      const kkt = 2e-3; // libsvm-style eps 1e-4 plus f32 kernel-row rounding in the gradient
      if (a === 0) expect(yf).toBeGreaterThanOrEqual(1 - kkt);
      else if (a === C) expect(yf).toBeLessThanOrEqual(1 + kkt);
      else expect(Math.abs(yf - 1)).toBeLessThanOrEqual(kkt);
    }
    expect(Math.abs(sumAy)).toBeLessThan(1e-9);
    expect(atBound).toBeGreaterThan(0); // the overlap forces bounded SVs, so the box is exercised
    // decisionFunction (support vectors only) agrees with the full-dual reference
    const z = svc.decisionFunction(X.slice(0, 10));
    for (let i = 0; i < 10; i++) expect(z[i]).toBeCloseTo(refDecision(svc, X, X[i]!), 10);
  });

  it('two points: alphas and bias by hand', () => {
    // x1 = 0 (y = -1), x2 = 1 (y = +1), gamma = 1/D = 1, K12 = e^-1. Σαy = 0 gives α1 = α2 = α;
    // dual ½α²(2 − 2e^-1) − 2α is minimal at α = 1/(1 − e^-1) ≈ 1.582 < C = 3; by symmetry rho = 0,
    // and the points sit on the margin: f(x1) = −1, f(x2) = +1.
    const svc = new SVC({ C: 3, tol: 1e-9 }).fit([[0], [1]], [0, 1]);
    const a = 1 / (1 - Math.exp(-1));
    expect(svc.gamma).toBe(1);
    expect(svc.alpha[0]).toBeCloseTo(a, 6);
    expect(svc.alpha[1]).toBeCloseTo(a, 6);
    expect(svc.rho).toBeCloseTo(0, 6);
    const z = svc.decisionFunction([[0], [1], [0.5]]);
    expect(z[0]).toBeCloseTo(-1, 6);
    expect(z[1]).toBeCloseTo(1, 6);
    expect(z[2]).toBeCloseTo(0, 6);
    // with C = 1 the box binds: α = C for both, rho stays 0 (middle of its bounds)
    const boxed = new SVC({ C: 1 }).fit([[0], [1]], [0, 1]);
    expect(Array.from(boxed.alpha)).toEqual([1, 1]);
    expect(boxed.rho).toBeCloseTo(0, 12);
  });

  it('subsamples above maxTrain with a seeded rng (stratified, reproducible)', () => {
    const rng = new Rng();
    const X = [...cluster(rng, 300, -2, 0, 0.5), ...cluster(rng, 100, 2, 0, 0.5)];
    const y = [...Array(300).fill(0), ...Array(100).fill(1)];
    const a = new SVC({ maxTrain: 100, rng: new Generator(7) }).fit(X, y);
    const b = new SVC({ maxTrain: 100, rng: new Generator(7) }).fit(X, y);
    expect(a.trainedOn.length).toBe(100);
    expect(Array.from(a.trainedOn)).toEqual(Array.from(b.trainedOn));
    expect(a.ySigned.filter((v) => v === 1).length).toBe(25);
    expect(a.effectiveC).toBeCloseTo((1.0 * 400) / 100, 12); // box rescaled to C·N/m
    expect(new SVC({ maxTrain: 100, rescaleC: false }).fit(X, y).effectiveC).toBe(1);
    expect(new SVC().fit(X, y).effectiveC).toBe(1);
    for (const al of a.alpha) expect(al).toBeLessThanOrEqual(a.effectiveC);
    expect(trainAccuracy(a, X, y)).toBeGreaterThan(0.99);
  });

  it('merges duplicate samples exactly (same decision function), cap counts distinct points', () => {
    const rng = new Rng();
    // 40 distinct 1-D values per class, each repeated 1..4 times, overlapping classes
    const base0 = rng.uniform(40, 0, 0.7);
    const base1 = rng.uniform(40, 0.3, 1);
    const reps = rng.int(80, 4);
    const x: number[] = [];
    const y: number[] = [];
    [...base0, ...base1].forEach((v, k) => {
      for (let r = 0; r <= reps[k]!; r++) (x.push(v), y.push(k < 40 ? 0 : 1));
    });
    const merged = new SVC({ C: 3, tol: 1e-6 }).fit({ data: x, d: 1 }, y);
    const plain = new SVC({ C: 3, tol: 1e-6, mergeDuplicates: false }).fit({ data: x, d: 1 }, y);
    expect(merged.alpha.length).toBe(80);
    expect(plain.alpha.length).toBe(x.length);
    expect(merged.counts.reduce((a, b) => a + b, 0)).toBe(x.length);
    const grid = { data: Array.from({ length: 101 }, (_, i) => i / 100), d: 1 };
    const zm = merged.decisionFunction(grid);
    const zp = plain.decisionFunction(grid);
    for (let i = 0; i < zm.length; i++) expect(Math.abs(zm[i]! - zp[i]!)).toBeLessThan(5e-3);
    for (let k = 0; k < 80; k++) expect(merged.alpha[k]!).toBeLessThanOrEqual(3 * merged.counts[k]!);
    // 6000 samples but only 80 distinct points: no subsampling under the default cap of 5000
    const big = { data: Array.from({ length: 6000 }, (_, i) => x[i % x.length]!), d: 1 };
    const bigY = Array.from({ length: 6000 }, (_, i) => y[i % y.length]!);
    const s = new SVC({ C: 3 }).fit(big, bigY);
    expect(s.trainedOn.length).toBe(6000);
    expect(s.effectiveC).toBe(3);
    expect(s.alpha.length).toBe(80);
  });

  it('matches scikit-learn (libsvm) on fixed 1-D and 2-D data (fixture from unlearn_sklearn.py)', () => {
    const ref = JSON.parse(readFileSync(new URL('./fixtures/unlearn_sklearn.json', import.meta.url), 'utf8'));
    const a = ref.svc1d;
    const s1 = new SVC({ C: 3, gamma: 'auto', tol: 1e-6 }).fit({ data: a.x, d: 1 }, a.y);
    expect(s1.dualCoef.length).toBe(a.nSupport);
    expect(-s1.rho).toBeCloseTo(a.intercept, 3);
    const z1 = s1.decisionFunction({ data: a.grid, d: 1 });
    for (let i = 0; i < z1.length; i++) expect(Math.abs(z1[i]! - a.decision[i])).toBeLessThan(1e-4); // measured: 4e-13 (1-D), 1e-6 (2-D)
    const b = ref.svc2d;
    const s2 = new SVC({ C: 1, gamma: 'scale', tol: 1e-6 }).fit({ data: b.X, d: 2 }, b.y);
    expect(s2.gamma).toBeCloseTo(b.gamma, 12);
    expect(s2.dualCoef.length).toBe(b.nSupport);
    const z2 = s2.decisionFunction({ data: b.probe, d: 2 });
    for (let i = 0; i < z2.length; i++) expect(Math.abs(z2[i]! - b.decision[i])).toBeLessThan(1e-4); // measured: 4e-13 (1-D), 1e-6 (2-D)
  });

  it('rejects bad input', () => {
    expect(() => new SVC().fit([[0], [1]], [1, 1])).toThrow(/two classes/);
    expect(() => new SVC().fit([[0], [1, 2]], [0, 1])).toThrow(/row 1/);
    expect(() => new SVC().fit([[0], [NaN]], [0, 1])).toThrow(/not finite/);
    expect(() => new SVC().decisionFunction([[0]])).toThrow(/not fitted/);
    expect(() => new SVC({ C: 0 })).toThrow(/C must be/);
  });

  it('fits 4000 overlapping 1-D points in seconds', () => {
    const rng = new Rng();
    const u = rng.uniform(4000, 0, 1);
    const X = { data: Float64Array.from(u, (v, i) => (i < 2000 ? 0.3 + 0.7 * v : v)), d: 1 };
    const y = Int32Array.from({ length: 4000 }, (_, i) => (i < 2000 ? 1 : 0));
    const t0 = performance.now();
    const svc = new SVC({ C: 3 }).fit(X, y);
    const ms = performance.now() - t0;
    console.log(`SVC 4000x1: ${ms.toFixed(0)} ms, ${svc.iterations} iterations, ${svc.dualCoef.length} SVs`);
    expect(svc.converged).toBe(true);
    expect(ms).toBeLessThan(15000);
    // members sit in [0.3, 1], non-members in [0, 1]: below 0.3 must be "non-member"
    expect(svc.predict({ data: [0.05, 0.1, 0.2], d: 1 })).toEqual(new Float64Array([0, 0, 0]));
  });
});
