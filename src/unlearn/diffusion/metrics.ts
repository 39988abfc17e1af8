// Metrics of class forgetting in a generative model (spec §7), browser-safe:
//   - FA: the share of generated images of the forgotten class that a classifier trained here on
//     real data assigns to that class (lower = more forgotten);
//   - "FID (in-domain features)": the Fréchet distance between Gaussians fitted to that
//     classifier's penultimate features of generated and of real images of the kept classes. It is
//     NOT the paper's Inception FID (no ImageNet Inception weights here) and is not comparable to it.
// The Fréchet distance is computed in float64 with a symmetric square root:
// tr √(Σ₁Σ₂) = tr √(√Σ₁ Σ₂ √Σ₁), every square root from a Jacobi eigendecomposition.
// It does not sample images (../../models/diffusion/samplers.ts) or train the classifier (classifier.ts).
//
// Dimension letters: N samples, F features.

import type { Tensor } from '../../autograd/tensor.js';
import type { GpuContext } from '../../gpu/context.js';
import type { MLP } from '../../models/mlp.js';
import { argmax, tensor } from '../../ops/index.js';
import { reshape } from '../../ops/index.js';
import { EngineError } from '../../util/errors.js';

// ------------------------------------------------------------------------------------------------
// Linear algebra (float64)

/**
 * Eigendecomposition of a symmetric n×n matrix (row-major) by cyclic Jacobi rotations:
 * A = V diag(values) Vᵀ, V's columns the eigenvectors. Converges quadratically; stops when the
 * off-diagonal mass is below 1e-22 of the total (or after 100 sweeps).
 */
export function symmetricEigen(A: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  if (A.length !== n * n) throw new EngineError('symmetricEigen', `${A.length} values do not form a ${n}×${n} matrix`);
  const a = Float64Array.from(A);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < i; j++) {
      const s = (a[i * n + j]! + a[j * n + i]!) / 2; // symmetrise rounding noise
      a[i * n + j] = s;
      a[j * n + i] = s;
    }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! * a[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j]! * a[i * n + j]!;
    if (off <= 1e-22 * total || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // rotate rows/columns p and q: A ← Jᵀ A J
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

/** √A of a symmetric positive semi-definite matrix: V diag(√max(λ, 0)) Vᵀ. */
export function sqrtPsd(A: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]!));
    if (s === 0) continue;
    for (let i = 0; i < n; i++) {
      const vi = V[i * n + k]! * s;
      for (let j = 0; j < n; j++) out[i * n + j] += vi * V[j * n + k]!;
    }
  }
  return out;
}

function matmul64(A: Float64Array, B: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = A[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * B[k * n + j]!;
    }
  return out;
}

/** tr √(Σ₁ Σ₂) = Σ √max(λ, 0) over the eigenvalues of the symmetric √Σ₁ Σ₂ √Σ₁. */
export function traceSqrtProduct(S1: ArrayLike<number>, S2: ArrayLike<number>, n: number): number {
  const R = sqrtPsd(S1, n);
  const M = matmul64(matmul64(R, S2, n), R, n);
  const { values } = symmetricEigen(M, n);
  let tr = 0;
  for (const l of values) tr += Math.sqrt(Math.max(0, l));
  return tr;
}

/** d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂) (Fréchet distance of two Gaussians, as FID). */
export function frechetDistance(mu1: ArrayLike<number>, S1: ArrayLike<number>, mu2: ArrayLike<number>, S2: ArrayLike<number>): number {
  const n = mu1.length;
  if (mu2.length !== n || S1.length !== n * n || S2.length !== n * n)
    throw new EngineError('frechetDistance', `shapes differ: μ₁ [${n}], μ₂ [${mu2.length}], Σ₁ ${S1.length} values, Σ₂ ${S2.length} values`);
  let d = 0;
  for (let i = 0; i < n; i++) d += (mu1[i]! - mu2[i]!) ** 2;
  for (let i = 0; i < n; i++) d += S1[i * n + i]! + S2[i * n + i]!;
  return Math.max(0, d - 2 * traceSqrtProduct(S1, S2, n));
}

/** Mean [F] and unbiased covariance [F·F] (numpy's cov) of N feature rows. */
export function gaussianStats(features: ArrayLike<number>, n: number): { mean: Float64Array; cov: Float64Array } {
  if (!(n >= 2) || features.length % n !== 0) throw new EngineError('gaussianStats', `${features.length} values are not ${n} (>= 2) feature rows`);
  const F = features.length / n;
  const mean = new Float64Array(F);
  for (let i = 0; i < n; i++) for (let f = 0; f < F; f++) mean[f] += features[i * F + f]! / n;
  const cov = new Float64Array(F * F);
  const row = new Float64Array(F);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < F; f++) row[f] = features[i * F + f]! - mean[f]!;
    for (let a = 0; a < F; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      for (let b = a; b < F; b++) cov[a * F + b] += ra * row[b]!;
    }
  }
  for (let a = 0; a < F; a++)
    for (let b = a; b < F; b++) {
      const v = cov[a * F + b]! / (n - 1);
      cov[a * F + b] = v;
      cov[b * F + a] = v;
    }
  return { mean, cov };
}

// ------------------------------------------------------------------------------------------------
// The classifier's outputs

/** Penultimate features [N, F] and predicted classes [N] of an MLP classifier on images [N·C·H·W]. */
export async function classifierOutputs(ctx: GpuContext, clf: MLP, images: Float32Array, image: readonly number[], batchSize = 500): Promise<{ features: Float32Array; preds: Int32Array; F: number }> {
  const d = image.reduce((a, b) => a * b, 1);
  const n = images.length / d;
  if (!Number.isInteger(n)) throw new EngineError('classifierOutputs', `${images.length} values are not whole images of [${image.join(', ')}]`);
  const layers = clf.layers.layers;
  const body = layers.slice(0, -1);
  const head = layers.at(-1)!;
  const feats: Float32Array[] = [];
  const preds = new Int32Array(n);
  let F = 0;
  const wasTraining = clf.training;
  clf.eval();
  try {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      const [f, p] = ctx.noGrad(() =>
        ctx.scope(() => {
          let h: Tensor = reshape(tensor(ctx, images.subarray(s * d, (s + m) * d), [m, d]), [m, d]);
          for (const l of body) h = l.forward(h);
          return [ctx.keep(h), ctx.keep(argmax(head.forward(h), -1))];
        }),
      );
      feats.push(await f.read());
      preds.set(await p.read<'i32'>(), s);
      F = f.shape[1]!;
      f.dispose();
      p.dispose();
    }
  } finally {
    clf.train(wasTraining);
  }
  const features = new Float32Array(n * F);
  let off = 0;
  for (const f of feats) {
    features.set(f, off);
    off += f.length;
  }
  return { features, preds, F };
}

/** FA in percent: the share of `preds` equal to the forgotten class. */
export function forgetAccuracy(preds: Int32Array, forgetClass: number): number {
  if (preds.length === 0) throw new EngineError('forgetAccuracy', 'no generated images to score');
  let hit = 0;
  for (const p of preds) if (p === forgetClass) hit++;
  return (100 * hit) / preds.length;
}

/** The label every table and report uses for the in-domain Fréchet distance. */
export const FID_LABEL = 'FID (in-domain features)';

/** Fréchet distance between generated and real feature sets (rows of F). */
export function inDomainFid(generated: ArrayLike<number>, nGen: number, real: ArrayLike<number> | { mean: Float64Array; cov: Float64Array }, nReal?: number): number {
  const g = gaussianStats(generated, nGen);
  const r = 'mean' in real ? real : gaussianStats(real, nReal!);
  return frechetDistance(g.mean, g.cov, r.mean, r.cov);
}
