// The generation metrics in float64: the Jacobi eigendecomposition (A V = V Λ, VᵀV = I), √ of a
// PSD matrix (R² = A), the Fréchet distance against closed forms (diagonal and commuting
// covariances: Σ(√a − √b)²; 2×2 non-commuting: tr √M = √(tr M + 2√det M)), its symmetry on random
// non-commuting covariances, the unbiased covariance, FA; the grid raster's layout.
// No scipy/numpy on this machine: every expected value is a closed form, not a fixture.
import { describe, it, expect } from 'vitest';
import { Rng, expectClose } from './helpers.js';
import { symmetricEigen, sqrtPsd, frechetDistance, traceSqrtProduct, gaussianStats, forgetAccuracy, noneShare } from '../src/unlearn/diffusion/metrics.js';
import { generationHtml, generationMarkdown, generationSweep, gridRaster, type GenerationRow } from '../src/unlearn/diffusion/report.js';

const rng = new Rng();
const tag = (w: string) => `${w} (seed ${rng.seed})`;

function randomOrthogonal(n: number): Float64Array {
  // eigenvectors of a random symmetric matrix
  const a = rng.normal(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i]!;
  return symmetricEigen(a, n).vectors;
}

/** Q diag(d) Qᵀ */
function compose(Q: Float64Array, d: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) out[i * n + j] += Q[i * n + k]! * d[k]! * Q[j * n + k]!;
  return out;
}

function randomSpd(n: number): Float64Array {
  const g = rng.normal(n * (n + 2));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n + 2; k++) out[i * n + j] += (g[i * (n + 2) + k]! * g[j * (n + 2) + k]!) / n;
  return out;
}

describe('Fréchet distance (float64)', () => {
  it('Jacobi: A V = V Λ with V orthogonal; √A squares back to A', () => {
    const n = 12;
    const A = randomSpd(n);
    const { values, vectors: V } = symmetricEigen(A, n);
    for (let k = 0; k < n; k++)
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += A[i * n + j]! * V[j * n + k]!;
        expect(Math.abs(av - values[k]! * V[i * n + k]!)).toBeLessThan(1e-10);
      }
    for (let a = 0; a < n; a++)
      for (let b = 0; b < n; b++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += V[i * n + a]! * V[i * n + b]!;
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-12);
      }
    const R = sqrtPsd(A, n);
    const RR = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) RR[i * n + j] += R[i * n + k]! * R[k * n + j]!;
    // float64 rounding of R·R is relative to the matrix's scale, not to each entry: a small
    // off-diagonal entry (~1e-3 next to diagonals ~1) carries ~1e-12 of absolute error
    const scale = Math.max(...Array.from(A, Math.abs));
    expectClose(RR, A, 1e-10, 1e-11 * scale, tag('√A·√A'));
  });

  it('closed forms: identical Gaussians 0, diagonal and commuting covariances Σ(√a − √b)² + |Δμ|²', () => {
    const n = 7;
    const a = rng.uniform(n, 0.1, 3);
    const b = rng.uniform(n, 0.1, 3);
    const mu1 = rng.normal(n);
    const mu2 = rng.normal(n);
    let want = 0;
    for (let i = 0; i < n; i++) want += (mu1[i]! - mu2[i]!) ** 2 + (Math.sqrt(a[i]!) - Math.sqrt(b[i]!)) ** 2;
    const diag = (d: Float64Array) => compose(Float64Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 : 0)), d, n);
    expect(frechetDistance(mu1, diag(a), mu2, diag(b))).toBeCloseTo(want, 10);
    const Q = randomOrthogonal(n); // commuting: the same eigenvectors
    expect(frechetDistance(mu1, compose(Q, a, n), mu2, compose(Q, b, n))).toBeCloseTo(want, 9);
    const S = randomSpd(n);
    expect(frechetDistance(mu1, S, mu1, S)).toBeLessThan(1e-9);
  });

  it('2×2 non-commuting: tr √(Σ₁Σ₂) = √(tr Σ₁Σ₂ + 2√(det Σ₁ det Σ₂)); symmetric in its arguments', () => {
    const S1 = randomSpd(2);
    const S2 = randomSpd(2);
    const tr12 = S1[0]! * S2[0]! + S1[1]! * S2[2]! + S1[2]! * S2[1]! + S1[3]! * S2[3]!;
    const det = (m: Float64Array) => m[0]! * m[3]! - m[1]! * m[2]!;
    expect(traceSqrtProduct(S1, S2, 2)).toBeCloseTo(Math.sqrt(tr12 + 2 * Math.sqrt(det(S1) * det(S2))), 10);
    const n = 16;
    const A = randomSpd(n);
    const B = randomSpd(n);
    const mu = rng.normal(n);
    const nu = rng.normal(n);
    const d1 = frechetDistance(mu, A, nu, B);
    expect(d1).toBeGreaterThan(0);
    expect(Math.abs(d1 - frechetDistance(nu, B, mu, A))).toBeLessThan(1e-9 * (1 + d1));
  });

  it('gaussianStats is the unbiased covariance; FA counts the forgotten class; bad shapes throw', () => {
    const x = [1, 2, 3, 5, 2, 0]; // rows (1,2), (3,5), (2,0)
    const { mean, cov } = gaussianStats(x, 3);
    expectClose(mean, [2, 7 / 3], 1e-12, 1e-12, 'mean');
    // var x = ((−1)² + 1² + 0²)/2 = 1; cov = ((−1)(−1/3) + (1)(8/3) + 0)/2 = 1.5; var y = (1/9 + 64/9 + 49/9)/2 = 19/3
    expectClose(cov, [1, 1.5, 1.5, 19 / 3], 1e-12, 1e-12, 'cov');
    expect(forgetAccuracy(Int32Array.from([3, 1, 3, 3]), 3)).toBe(75);
    expect(() => frechetDistance([0, 0], [1, 0, 0, 1], [0], [1])).toThrow(/shapes differ/);
    expect(() => gaussianStats([1, 2, 3], 2)).toThrow(/not 2/);
    expect(() => forgetAccuracy(new Int32Array(0), 0)).toThrow(/no generated images/);
  });

  it('FA counts the "none" label (= class count) as not the class, over all images; noneShare counts it', () => {
    // a stub classifier's labels for 8 generated images of class 0 with 10 classes: "none" = 10
    const preds = Int32Array.from([10, 10, 0, 10, 3, 10, 0, 10]);
    expect(forgetAccuracy(preds, 0)).toBe(25); // 2 of 8, not 2 of the 3 non-"none" labels
    expect(noneShare(preds, 10)).toBe(62.5);
    expect(forgetAccuracy(new Int32Array(4).fill(10), 0)).toBe(0);
    expect(noneShare(Int32Array.from([0, 1]), 10)).toBe(0);
    expect(() => noneShare(new Int32Array(0), 10)).toThrow(/no generated images/);
  });

  it('grid raster: rows × cols tiles, [−1, 1] mapped to 0..255, scaled and padded', () => {
    const img: [number, number, number] = [1, 2, 2];
    const images = Float32Array.from([-1, 1, 0, -1, /* tile (0,1) */ 1, 1, 1, 1, /* (1,0) */ -1, -1, -1, -1, /* (1,1) */ 0, 0, 0, 0]);
    const r = gridRaster(images, img, 2, 2, 2, 1);
    expect([r.width, r.height]).toEqual([2 * (4 + 1) + 1, 2 * (4 + 1) + 1]);
    const px = (x: number, y: number) => r.rgba[(y * r.width + x) * 4]!;
    expect(px(1, 1)).toBe(0); // tile (0,0), pixel (0,0) = −1
    expect(px(3, 1)).toBe(255); // pixel (0,1) = 1, scaled ×2
    expect(px(1, 3)).toBe(128); // pixel (1,0) = 0
    expect(px(6, 1)).toBe(255); // tile (0,1)
    expect(px(6, 6)).toBe(128); // tile (1,1)
    expect(px(0, 0)).toBe(0); // padding
    expect(() => gridRaster(images, img, 3, 2)).toThrow(/not 3×2 images/);
  });

  it('λ sweep: the SFR-on rows carrying λ, sorted, with RT as reference; in the Markdown table and as two HTML plots', () => {
    const row = (method: string, fa: number, fid: number, lambda?: number): GenerationRow => ({ method, fa, none: 100 - fa, fid, steps: null, updates: null, seconds: 1, ...(lambda === undefined ? {} : { lambda }) });
    const lam = [rng.uniform(1, 0.01, 0.49)[0]!, 0, rng.uniform(1, 0.51, 2)[0]!];
    // a labelled SFR-on variant (other settings) carries a λ but is not a point of the sweep
    const rows = [row('RT', 1, 20), row('Original', 90, 18), row('SFR-on', 3, 25, 0.5), row('SalUn', 2, 30), row('SFR-on fast', 50, 99, 0.75), row(`SFR-on (λ=${lam[0]})`, 7, 22, lam[0]), row('SFR-on (λ=0)', 0, 40, 0), row(`SFR-on (λ=${lam[2]})`, 9, 21, lam[2])];
    const sw = generationSweep(rows)!;
    const order = [0.5, ...lam].map((l, i) => [l, i]).sort((a, b) => a[0]! - b[0]!).map((p) => p[1]!);
    const faOf = [3, 7, 0, 9];
    expect(sw.lambdas).toEqual(order.map((i) => [0.5, ...lam][i]));
    expect(sw.fa).toEqual(order.map((i) => faOf[i]));
    expect(sw.none).toEqual(order.map((i) => 100 - faOf[i]!));
    expect(sw.rt).toEqual({ fa: 1, fid: 20 });
    // one λ is no sweep
    expect(generationSweep(rows.slice(0, 4))).toBeNull();
    const rep = { title: 't', forgetClass: 0, notes: [], device: 'd', date: '2026-12-02', rows };
    expect(generationMarkdown(rep)).toMatch(/λ sweep \(SFR-on\); RT: FA 1\.0, FID 20\.00:\n\n\| λ \| FA \(%\) \| none \(%\) \| FID \(in-domain\) \|\n\|---\|---\|---\|---\|\n\| 0 \| 0\.0 \| 100\.0 \| 40\.00 \|/);
    const html = generationHtml(rep);
    expect(html).toContain('<h2>λ sweep (SFR-on; dashed: RT)</h2>');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(generationHtml({ ...rep, rows: rows.slice(0, 4) })).not.toContain('<svg ');
  });
});
