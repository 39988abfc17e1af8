// Binary L2-regularised logistic regression on the CPU, fitted exactly by damped Newton steps: the
// membership-inference attack of spec §6 (SFR-on form) fits it on a 1-D feature. Pure TypeScript.
// Deliberately no feature standardisation, no multiclass, no L1: sklearn's default objective only.
//
// Letters: N samples, D features. X is row-major [N*D].

import { EngineError } from '../../util/errors.js';

/** Options with sklearn's `LogisticRegression` meaning. */
export interface LogRegOptions {
  /** inverse regularisation strength (sklearn default 1.0) */
  C?: number;
  /** 'balanced': weight_c = N / (2 * N_c), as sklearn; null: every sample weight 1. Default 'balanced'. */
  classWeight?: 'balanced' | null;
  /** Newton iterations cap (default 100) */
  maxIter?: number;
  /** stop when the max-abs gradient of the objective is below tol (default 1e-10 relative, see fit) */
  tol?: number;
}

/** A fitted model: decision(x) = coef·x + intercept; predict 1 when decision > 0 (as sklearn). */
export interface LogRegModel {
  coef: Float64Array; // [D]
  intercept: number;
  /** per-class sample weights used, [w0, w1] */
  classWeight: [number, number];
  C: number;
  iterations: number;
  /** max-abs gradient of the objective at the returned solution */
  gradNorm: number;
}

/**
 * The objective sklearn's lbfgs solver minimises for binary L2 logistic regression:
 *   F(w, b) = ½‖w‖² + C Σᵢ sᵢ · log(1 + exp(−ỹᵢ (w·xᵢ + b))),  ỹᵢ = 2yᵢ − 1,
 * with sᵢ the class weight of yᵢ; the intercept b is not penalised.
 * Returns F and its gradient [dW (D), dB].
 */
export function logRegObjective(
  coef: ArrayLike<number>,
  intercept: number,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  classWeight: [number, number],
  C: number,
): { value: number; grad: Float64Array } {
  const D = coef.length;
  const N = y.length;
  const grad = new Float64Array(D + 1);
  let value = 0;
  for (let d = 0; d < D; d++) {
    value += 0.5 * coef[d]! * coef[d]!;
    grad[d] = coef[d]!;
  }
  for (let i = 0; i < N; i++) {
    const yt = y[i] === 1 ? 1 : -1;
    const s = classWeight[y[i] === 1 ? 1 : 0];
    let z = intercept;
    for (let d = 0; d < D; d++) z += coef[d]! * X[i * D + d]!;
    const m = yt * z;
    value += C * s * softplus(-m);
    // d/dz log(1+exp(-ỹz)) = −ỹ σ(−ỹz)
    const g = -C * s * yt * sigmoid(-m);
    for (let d = 0; d < D; d++) grad[d] += g * X[i * D + d]!;
    grad[D] += g;
  }
  return { value, grad };
}

/**
 * Fit on X [N*D] (row-major) and labels y ∈ {0, 1} [N]. Newton's method on the (strictly convex in
 * w, convex in b) objective of `logRegObjective`, with a backtracking line search so every step
 * decreases F. Converges quadratically; exact up to floating point for the low-D features of §6.
 * Throws when y is not binary or one class is missing.
 */
export function fitLogReg(X: ArrayLike<number>, y: ArrayLike<number>, D: number, opts: LogRegOptions = {}): LogRegModel {
  const op = 'fitLogReg';
  const N = y.length;
  const C = opts.C ?? 1.0;
  const maxIter = opts.maxIter ?? 100;
  if (!(D >= 1) || X.length !== N * D) throw new EngineError(op, `X has ${X.length} values, expected N*D = ${N}*${D}`);
  if (!(C > 0)) throw new EngineError(op, `C must be > 0, got ${C}`);
  let n1 = 0;
  for (let i = 0; i < N; i++) {
    if (y[i] !== 0 && y[i] !== 1) throw new EngineError(op, `label y[${i}] = ${y[i]} is not 0 or 1`);
    n1 += y[i]!;
  }
  const n0 = N - n1;
  if (n0 === 0 || n1 === 0) throw new EngineError(op, `both classes are needed (have ${n0} zeros, ${n1} ones)`);
  for (let i = 0; i < X.length; i++) if (!Number.isFinite(X[i]!)) throw new EngineError(op, `X[${i}] = ${X[i]} is not finite`);
  const classWeight: [number, number] = opts.classWeight === null ? [1, 1] : [N / (2 * n0), N / (2 * n1)];
  // the objective's scale grows with C·N, so the stopping tolerance is relative to it
  const tol = (opts.tol ?? 1e-10) * Math.max(1, C * N);

  const P = D + 1; // parameters: coef then intercept
  let w = new Float64Array(P);
  let cur = logRegObjective(w.subarray(0, D), w[D]!, X, y, classWeight, C);
  let it = 0;
  for (; it < maxIter; it++) {
    if (maxAbs(cur.grad) <= tol) break;
    // Hessian: I on the coef block (the L2 term) + C Σ sᵢ σ(1−σ) x̃ x̃ᵀ with x̃ = [x, 1]
    const H = new Float64Array(P * P);
    for (let d = 0; d < D; d++) H[d * P + d] = 1;
    for (let i = 0; i < N; i++) {
      const s = classWeight[y[i] === 1 ? 1 : 0];
      let z = w[D]!;
      for (let d = 0; d < D; d++) z += w[d]! * X[i * D + d]!;
      const p = sigmoid(z);
      const h = C * s * p * (1 - p);
      for (let a = 0; a < P; a++) {
        const xa = a < D ? X[i * D + a]! : 1;
        for (let b = 0; b <= a; b++) H[a * P + b] += h * xa * (b < D ? X[i * D + b]! : 1);
      }
    }
    for (let a = 0; a < P; a++) for (let b = 0; b < a; b++) H[b * P + a] = H[a * P + b]!;
    const step = solveSpd(H, cur.grad, P);
    // backtracking (Armijo) line search along −step
    let t = 1;
    const slope = -dot(cur.grad, step);
    let next = cur;
    let wNext = w;
    for (let k = 0; k < 60; k++) {
      wNext = new Float64Array(P);
      for (let a = 0; a < P; a++) wNext[a] = w[a]! - t * step[a]!;
      next = logRegObjective(wNext.subarray(0, D), wNext[D]!, X, y, classWeight, C);
      if (next.value <= cur.value + 1e-4 * t * slope) break;
      t *= 0.5;
    }
    if (!(next.value <= cur.value)) break; // no further decrease is representable
    w = wNext;
    cur = next;
  }
  return { coef: w.slice(0, D), intercept: w[D]!, classWeight, C, iterations: it, gradNorm: maxAbs(cur.grad) };
}

/** decision values coef·x + intercept for X [N*D] */
export function logRegDecision(model: LogRegModel, X: ArrayLike<number>): Float64Array {
  const D = model.coef.length;
  const N = Math.floor(X.length / D);
  if (N * D !== X.length) throw new EngineError('logRegDecision', `X has ${X.length} values, not a multiple of D = ${D}`);
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let z = model.intercept;
    for (let d = 0; d < D; d++) z += model.coef[d]! * X[i * D + d]!;
    out[i] = z;
  }
  return out;
}

/** predicted labels (1 where decision > 0, as sklearn), [N] */
export function logRegPredict(model: LogRegModel, X: ArrayLike<number>): Int32Array {
  const z = logRegDecision(model, X);
  const out = new Int32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = z[i]! > 0 ? 1 : 0;
  return out;
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** log(1 + exp(z)) without overflow */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Solve H x = g for a symmetric positive (semi)definite P×P H by Cholesky, with a tiny ridge
 * fallback when H is numerically singular (e.g. an all-zero feature column). */
function solveSpd(H: Float64Array, g: Float64Array, P: number): Float64Array {
  for (let ridge = 0; ; ridge = ridge === 0 ? 1e-12 : ridge * 100) {
    const L = new Float64Array(P * P);
    let ok = true;
    for (let i = 0; i < P && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = H[i * P + j]! + (i === j ? ridge * (1 + Math.abs(H[i * P + i]!)) : 0);
        for (let k = 0; k < j; k++) s -= L[i * P + k]! * L[j * P + k]!;
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          L[i * P + i] = Math.sqrt(s);
        } else L[i * P + j] = s / L[j * P + j]!;
      }
    }
    if (!ok) {
      if (ridge > 1) throw new EngineError('fitLogReg', 'Hessian is not positive definite');
      continue;
    }
    const z = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      let s = g[i]!;
      for (let k = 0; k < i; k++) s -= L[i * P + k]! * z[k]!;
      z[i] = s / L[i * P + i]!;
    }
    const x = new Float64Array(P);
    for (let i = P - 1; i >= 0; i--) {
      let s = z[i]!;
      for (let k = i + 1; k < P; k++) s -= L[k * P + i]! * x[k]!;
      x[i] = s / L[i * P + i]!;
    }
    return x;
  }
}
