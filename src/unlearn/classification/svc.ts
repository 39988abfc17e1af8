// Binary RBF-kernel C-SVC on the CPU, trained by SMO with second-order working-set selection (Fan,
// Chen & Lin 2005, as libsvm): the "MIA-efficacy" attack of spec §6 (SalUn form). Pure TypeScript.
// Identical samples are merged exactly; above `maxTrain` (5000) distinct points it trains on a seeded
// stratified subsample with C rescaled (see SvcOptions). Deliberately no shrinking, no probability
// outputs, no multiclass, no other kernels.
//
// Letters: N training samples, D features. Feature matrices are given as rows (one ArrayLike per
// sample) or as a flat row-major array with `d`.

import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';

/** Rows of features, or a flat row-major [N*D] array with its D. */
export type FeatureMatrix = ArrayLike<ArrayLike<number>> | { data: ArrayLike<number>; d: number };

export interface SvcOptions {
  /** box constraint (sklearn default 1.0; SalUn's MIA uses 3) */
  C?: number;
  /** RBF width: a number, 'auto' = 1/D (default, sklearn's gamma='auto'), or 'scale' = 1/(D·Var(X)) */
  gamma?: number | 'auto' | 'scale';
  /** stopping tolerance on the maximal KKT violation, as libsvm's eps (default 1e-3) */
  tol?: number;
  /** SMO iteration cap (default max(10⁷, 100·N)); `converged` is false when it is hit */
  maxIter?: number;
  /**
   * Training-set cap (default 5000). Above it, fit() trains on a class-stratified random subset of
   * m = `maxTrain` samples drawn with `rng` (or Generator(0) when none is given); `trainedOn`
   * records it. The box is then rescaled to C·N/m (see `rescaleC`).
   */
  maxTrain?: number;
  /**
   * When subsampling, train with C_eff = C·N/m (default true): the subset's hinge sum estimates
   * the full one times m/N, so this keeps the primal objective ½‖w‖² + C Σ ξ of the full problem.
   * Measured on 20,000 1-D confidence points (10,000 per class, heavy overlap): the attack's
   * percentage on 5,000 held-out points was 29.52 on all points, and 29.52 / 29.50 / 29.88 with
   * m = 2,000 / 5,000 / 10,000 rescaled, but 16.50 / 22.72 / 26.56 without rescaling. On another
   * such set scikit-learn's full fit gave 29.14, ours 29.14 in full (22 s) and 28.70–29.16 with
   * m = 5,000 over three seeds (about 1 s).
   */
  rescaleC?: boolean;
  /** merge identical samples of the same class into one point with box C·count (exact; default true) */
  mergeDuplicates?: boolean;
  rng?: Generator;
  /** memory for cached kernel rows, in MiB (default 256): N ≤ 5000 keeps all rows */
  cacheMiB?: number;
}

/**
 * C-SVC with K(a, b) = exp(−γ‖a − b‖²). Dual: min ½αᵀQα − Σα, 0 ≤ α ≤ C, Σ αᵢ yᵢ = 0,
 * Q_ij = yᵢ yⱼ K_ij with yᵢ = ±1 (the larger of the two class labels is +1, as sklearn).
 * decision(x) = Σ αᵢ yᵢ K(xᵢ, x) − rho.
 */
export class SVC {
  readonly C: number;
  /** the box actually used: C, or C·N/m after subsampling (see SvcOptions.rescaleC) */
  effectiveC = NaN;
  readonly tol: number;
  private readonly opts: SvcOptions;
  gamma = NaN;
  /** the two class labels, ascending; classes[1] is the positive class */
  classes: [number, number] = [0, 1];
  /** support vectors, flat [nSV*D] */
  supportVectors = new Float64Array(0);
  /** αᵢ yᵢ for each support vector */
  dualCoef = new Float64Array(0);
  /** decision = Σ dualCoef K − rho (sklearn's intercept_ is −rho) */
  rho = 0;
  D = 0;
  /** full dual solution, one entry per distinct training point (after subsampling and merging) */
  alpha = new Float64Array(0);
  /** per distinct point: how many identical training samples it stands for */
  counts: Float64Array = new Float64Array(0);
  /** per distinct point: its box, effectiveC · count */
  box: Float64Array = new Float64Array(0);
  /** ±1 labels of the training set (after subsampling) */
  ySigned = new Float64Array(0);
  /** gradient of the dual ∇f = Qα − 1 at the solution */
  dualGrad = new Float64Array(0);
  iterations = 0;
  converged = false;
  /** indices (into the X given to fit) actually trained on */
  trainedOn: Int32Array = new Int32Array(0);

  constructor(opts: SvcOptions = {}) {
    this.C = opts.C ?? 1.0;
    this.tol = opts.tol ?? 1e-3;
    if (!(this.C > 0)) throw new EngineError('SVC', `C must be > 0, got ${this.C}`);
    if (!(this.tol > 0)) throw new EngineError('SVC', `tol must be > 0, got ${this.tol}`);
    this.opts = opts;
  }

  /** Train on X (N rows) and labels y (two distinct values). Returns this. */
  fit(X: FeatureMatrix, y: ArrayLike<number>): this {
    const op = 'SVC.fit';
    const { data: all, d: D } = toFlat(X, op);
    const nAll = y.length;
    if (all.length !== nAll * D) throw new EngineError(op, `X has ${all.length / D} rows, y has ${nAll}`);
    const labels = [...new Set(Array.from(y))].sort((a, b) => a - b);
    if (labels.length !== 2) throw new EngineError(op, `need exactly two classes, got [${labels.slice(0, 5).join(', ')}]`);
    this.classes = [labels[0]!, labels[1]!];
    this.D = D;
    for (let i = 0; i < all.length; i++) if (!Number.isFinite(all[i]!)) throw new EngineError(op, `X value ${i} (row ${Math.floor(i / D)}) = ${all[i]} is not finite`);

    // Identical points with the same label share one slack in the primal, so they merge exactly
    // into one point with box C·count (saturated confidences repeat a lot). The cap applies to the
    // distinct points: a stratified subsample is drawn only when there are more than `maxTrain`.
    const cap = this.opts.maxTrain ?? 5000;
    const merge = this.opts.mergeDuplicates ?? true;
    let idx: Int32Array = Int32Array.from({ length: nAll }, (_, i) => i);
    let groups = merge ? mergeDuplicates(all, y, D, idx) : { rep: idx, count: new Float64Array(nAll).fill(1) };
    if (groups.rep.length > cap) {
      idx = stratifiedSubset(y, this.classes[1], cap, this.opts.rng ?? new Generator(0));
      groups = merge ? mergeDuplicates(all, y, D, idx) : { rep: idx, count: new Float64Array(idx.length).fill(1) };
    }
    this.trainedOn = idx;
    this.counts = groups.count;
    const N = groups.rep.length;
    const X64 = new Float64Array(N * D);
    const ys = new Float64Array(N);
    for (let k = 0; k < N; k++) {
      const r = groups.rep[k]!;
      for (let d = 0; d < D; d++) X64[k * D + d] = all[r * D + d]!;
      ys[k] = y[r] === this.classes[1] ? 1 : -1;
    }
    const g = this.opts.gamma ?? 'auto';
    this.gamma = g === 'auto' ? 1 / D : g === 'scale' ? scaleGamma(all, D, idx) : g;
    if (!(this.gamma > 0)) throw new EngineError(op, `gamma must be > 0, got ${this.gamma}`);

    this.effectiveC = idx.length < nAll && (this.opts.rescaleC ?? true) ? (this.C * nAll) / idx.length : this.C;
    const box = groups.count.map((c) => c * this.effectiveC);
    const kernel = new KernelRows(X64, D, this.gamma, this.opts.cacheMiB ?? 256);
    const { alpha, G, iterations, converged } = smo(kernel, ys, box, this.tol, this.opts.maxIter ?? Math.max(10_000_000, 100 * N));
    this.box = box;
    this.alpha = alpha;
    this.ySigned = ys;
    this.dualGrad = G;
    this.iterations = iterations;
    this.converged = converged;
    this.rho = computeRho(alpha, G, ys, box);

    const sv: number[] = [];
    for (let i = 0; i < N; i++) if (alpha[i]! > 0) sv.push(i);
    this.supportVectors = new Float64Array(sv.length * D);
    this.dualCoef = new Float64Array(sv.length);
    sv.forEach((i, k) => {
      for (let d = 0; d < D; d++) this.supportVectors[k * D + d] = X64[i * D + d]!;
      this.dualCoef[k] = alpha[i]! * ys[i]!;
    });
    return this;
  }

  /** decision values [N]: > 0 means classes[1] */
  decisionFunction(X: FeatureMatrix): Float64Array {
    const { data, d: D } = toFlat(X, 'SVC.decisionFunction');
    if (this.D === 0) throw new EngineError('SVC.decisionFunction', 'the model is not fitted');
    if (D !== this.D) throw new EngineError('SVC.decisionFunction', `X has ${D} features, the model ${this.D}`);
    const N = data.length / D;
    const nSV = this.dualCoef.length;
    const out = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let s = -this.rho;
      for (let k = 0; k < nSV; k++) {
        let dist = 0;
        for (let d = 0; d < D; d++) {
          const t = data[i * D + d]! - this.supportVectors[k * D + d]!;
          dist += t * t;
        }
        s += this.dualCoef[k]! * Math.exp(-this.gamma * dist);
      }
      out[i] = s;
    }
    return out;
  }

  /** predicted class labels [N] (classes[1] where decision > 0, else classes[0], as sklearn) */
  predict(X: FeatureMatrix): Float64Array {
    const z = this.decisionFunction(X);
    return z.map((v) => (v > 0 ? this.classes[1] : this.classes[0]));
  }
}

function toFlat(X: FeatureMatrix, op: string): { data: ArrayLike<number>; d: number } {
  if ('data' in X && 'd' in X && typeof (X as { d: unknown }).d === 'number') {
    const { data, d } = X as { data: ArrayLike<number>; d: number };
    if (!(d >= 1) || data.length % d !== 0) throw new EngineError(op, `flat X has ${data.length} values, not a multiple of d = ${d}`);
    return { data, d };
  }
  const rows = X as ArrayLike<ArrayLike<number>>;
  if (rows.length === 0) throw new EngineError(op, 'X has no rows');
  const d = rows[0]!.length;
  if (!(d >= 1)) throw new EngineError(op, 'X rows have no features');
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.length !== d) throw new EngineError(op, `row ${i} has ${r.length} features, row 0 has ${d}`);
    for (let j = 0; j < d; j++) data[i * d + j] = r[j]!;
  }
  return { data, d };
}

/** gamma = 1 / (D · Var(X)) over all values of the rows `idx`, as sklearn's 'scale' */
function scaleGamma(X: ArrayLike<number>, D: number, idx: Int32Array): number {
  let m = 0;
  for (const i of idx) for (let d = 0; d < D; d++) m += X[i * D + d]!;
  m /= idx.length * D;
  let v2 = 0;
  for (const i of idx) for (let d = 0; d < D; d++) v2 += (X[i * D + d]! - m) ** 2;
  const variance = v2 / (idx.length * D);
  return variance > 0 ? 1 / (D * variance) : 1;
}

/** groups of rows `idx` with identical features and label: first row of each group, group size */
function mergeDuplicates(X: ArrayLike<number>, y: ArrayLike<number>, D: number, idx: Int32Array): { rep: Int32Array; count: Float64Array } {
  const where = new Map<string, number>();
  const rep: number[] = [];
  const count: number[] = [];
  for (const i of idx) {
    let key = String(y[i]);
    for (let d = 0; d < D; d++) key += ',' + X[i * D + d]!;
    const g = where.get(key);
    if (g === undefined) {
      where.set(key, rep.length);
      rep.push(i);
      count.push(1);
    } else count[g]!++;
  }
  return { rep: Int32Array.from(rep), count: Float64Array.from(count) };
}

/** `cap` indices, each class keeping its share (at least one each), drawn without replacement. */
function stratifiedSubset(y: ArrayLike<number>, positive: number, cap: number, rng: Generator): Int32Array {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < y.length; i++) (y[i] === positive ? pos : neg).push(i);
  const nPos = Math.min(pos.length, Math.max(1, Math.round((cap * pos.length) / y.length)));
  const nNeg = Math.min(neg.length, cap - nPos);
  const pick = (from: number[], k: number) => {
    const p = rng.permutation(from.length);
    return Array.from(p.subarray(0, k), (j) => from[j]!);
  };
  return Int32Array.from([...pick(pos, nPos), ...pick(neg, nNeg)].sort((a, b) => a - b));
}

/** Kernel rows K[i, :] computed on demand, kept in an LRU cache bounded by `cacheMiB`. */
class KernelRows {
  private readonly cache = new Map<number, Float32Array>();
  private readonly maxRows: number;
  readonly diag: Float64Array;
  readonly n: number;
  constructor(
    private readonly X: Float64Array,
    private readonly D: number,
    private readonly gamma: number,
    cacheMiB: number,
  ) {
    this.n = X.length / D;
    this.maxRows = Math.max(2, Math.floor((cacheMiB * 1024 * 1024) / (4 * this.n)));
    this.diag = new Float64Array(this.n).fill(1); // K(x, x) = 1 for the RBF kernel
  }
  row(i: number): Float32Array {
    const hit = this.cache.get(i);
    if (hit) {
      this.cache.delete(i);
      this.cache.set(i, hit);
      return hit;
    }
    const { X, D, gamma, n } = this;
    const r = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      let dist = 0;
      for (let d = 0; d < D; d++) {
        const t = X[i * D + d]! - X[j * D + d]!;
        dist += t * t;
      }
      r[j] = Math.exp(-gamma * dist);
    }
    if (this.cache.size >= this.maxRows) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(i, r);
    return r;
  }
}

/**
 * SMO on the dual. Working set (i, j): i maximises −yₜGₜ over I_up, j minimises the second-order
 * decrease −bₜ²/aₜ over I_low among violators (WSS-2). The pair moves along αᵢ += yᵢt, αⱼ −= yⱼt,
 * which keeps Σ αy fixed; the dual changes by t(yᵢGᵢ − yⱼGⱼ) + ½t²(Kᵢᵢ + Kⱼⱼ − 2Kᵢⱼ), so the
 * unclipped optimum is t = (yⱼGⱼ − yᵢGᵢ)/a, then clipped to the box.
 * Stops when max_{I_up} −yG − min_{I_low} −yG < tol (libsvm's criterion).
 */
function smo(K: KernelRows, y: Float64Array, box: Float64Array, tol: number, maxIter: number) {
  const N = y.length;
  const alpha = new Float64Array(N);
  const G = new Float64Array(N).fill(-1); // ∇f = Qα − 1 at α = 0
  const TAU = 1e-12;
  const inUp = (t: number) => (y[t] === 1 ? alpha[t]! < box[t]! : alpha[t]! > 0);
  const inLow = (t: number) => (y[t] === 1 ? alpha[t]! > 0 : alpha[t]! < box[t]!);
  let it = 0;
  let converged = false;
  for (; it < maxIter; it++) {
    let gMax = -Infinity;
    let i = -1;
    for (let t = 0; t < N; t++) {
      if (inUp(t) && -y[t]! * G[t]! >= gMax) {
        gMax = -y[t]! * G[t]!;
        i = t;
      }
    }
    if (i < 0) {
      converged = true;
      break;
    }
    const Ki = K.row(i);
    let gMin = Infinity;
    let j = -1;
    let best = Infinity;
    for (let t = 0; t < N; t++) {
      if (!inLow(t)) continue;
      const v = -y[t]! * G[t]!;
      if (v < gMin) gMin = v;
      const b = gMax - v;
      if (b > 0) {
        let a = K.diag[i]! + K.diag[t]! - 2 * Ki[t]!;
        if (a <= 0) a = TAU;
        const score = -(b * b) / a;
        if (score <= best) {
          best = score;
          j = t;
        }
      }
    }
    if (j < 0 || gMax - gMin < tol) {
      converged = true;
      break;
    }
    const Kj = K.row(j);
    let a = K.diag[i]! + K.diag[j]! - 2 * Ki[j]!;
    if (a <= 0) a = TAU;
    let t = (y[j]! * G[j]! - y[i]! * G[i]!) / a;
    // box: αᵢ + yᵢt ∈ [0, C] and αⱼ − yⱼt ∈ [0, C]; t > 0 here, so only upper limits bind
    const Ci = box[i]!;
    const Cj = box[j]!;
    t = Math.min(t, y[i] === 1 ? Ci - alpha[i]! : alpha[i]!, y[j] === 1 ? alpha[j]! : Cj - alpha[j]!);
    const oldI = alpha[i]!;
    const oldJ = alpha[j]!;
    alpha[i] = Math.min(Ci, Math.max(0, oldI + y[i]! * t));
    alpha[j] = Math.min(Cj, Math.max(0, oldJ - y[j]! * t));
    // snap to the bounds exactly so set membership is not blurred by rounding
    if (Math.abs(alpha[i]! - Ci) < 1e-12 * Ci) alpha[i] = Ci;
    if (Math.abs(alpha[j]! - Cj) < 1e-12 * Cj) alpha[j] = Cj;
    if (alpha[i]! < 1e-12 * Ci) alpha[i] = 0;
    if (alpha[j]! < 1e-12 * Cj) alpha[j] = 0;
    const dI = (alpha[i]! - oldI) * y[i]!;
    const dJ = (alpha[j]! - oldJ) * y[j]!;
    // Gₖ += Q_ki Δαᵢ + Q_kj Δαⱼ = yₖ (K_ki yᵢΔαᵢ + K_kj yⱼΔαⱼ)
    for (let k = 0; k < N; k++) G[k] += y[k]! * (Ki[k]! * dI + Kj[k]! * dJ);
  }
  return { alpha, G, iterations: it, converged };
}

/** rho = mean of yG over free SVs (where KKT makes it exact); with none, the middle of its bounds. */
function computeRho(alpha: Float64Array, G: Float64Array, y: Float64Array, box: Float64Array): number {
  let ub = Infinity;
  let lb = -Infinity;
  let sum = 0;
  let nFree = 0;
  for (let i = 0; i < y.length; i++) {
    const yG = y[i]! * G[i]!;
    if (alpha[i]! >= box[i]!) {
      if (y[i] === 1) lb = Math.max(lb, yG);
      else ub = Math.min(ub, yG);
    } else if (alpha[i]! <= 0) {
      if (y[i] === 1) ub = Math.min(ub, yG);
      else lb = Math.max(lb, yG);
    } else {
      sum += yG;
      nFree++;
    }
  }
  return nFree > 0 ? sum / nFree : (ub + lb) / 2;
}
