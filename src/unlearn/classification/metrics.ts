// Evaluation metrics of spec §6 on CPU arrays: accuracy, the two membership-inference attacks
// (SFR-on's entropy + logistic regression, SalUn's confidence + RBF SVC), KL / JS divergence to the
// retrained model and the average gap. Deliberately no model evaluation here: callers run the model
// (eval mode, no augmentation) and pass softmax outputs.
//
// Input format: a probability matrix is a row-major Float32Array (or any ArrayLike) [N*C] of softmax
// outputs, one row per sample; labels are Int32Array [N]. Percentages are in [0, 100].

import { fitLogReg, logRegPredict, type LogRegModel } from './logreg.js';
import { SVC, type SvcOptions } from './svc.js';
import { EngineError } from '../../util/errors.js';
import type { Generator } from '../../util/rng.js';

/** Top-1 accuracy in percent of pred [N] against labels [N]. */
export function accuracy(pred: Int32Array, labels: Int32Array): number {
  if (pred.length !== labels.length) throw new EngineError('accuracy', `pred has ${pred.length} entries, labels ${labels.length}`);
  if (pred.length === 0) throw new EngineError('accuracy', 'empty input');
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) hit++;
  return (100 * hit) / pred.length;
}

/** Row-wise argmax of probs [N*C] (first index on ties), [N]. */
export function argmaxRows(probs: ArrayLike<number>, C: number): Int32Array {
  const N = rowsOf(probs, C, 'argmaxRows');
  const out = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (probs[i * C + c]! > probs[i * C + best]!) best = c;
    out[i] = best;
  }
  return out;
}

/** Shannon entropy (nats) of each row of probs [N*C], with 0·log 0 = 0; [N]. */
export function predictionEntropy(probs: ArrayLike<number>, C: number): Float64Array {
  const N = rowsOf(probs, C, 'predictionEntropy');
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let h = 0;
    for (let c = 0; c < C; c++) {
      const p = probs[i * C + c]!;
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}

/** Confidence = softmax probability of the true label, probs [N*C], labels [N] -> [N]. */
export function trueLabelConfidence(probs: ArrayLike<number>, labels: Int32Array, C: number): Float64Array {
  const N = rowsOf(probs, C, 'trueLabelConfidence');
  if (labels.length !== N) throw new EngineError('trueLabelConfidence', `probs have ${N} rows, labels ${labels.length}`);
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < C)) throw new EngineError('trueLabelConfidence', `labels[${i}] = ${y} is outside [0, ${C})`);
    out[i] = probs[i * C + y]!;
  }
  return out;
}

export interface MiaEntropyInput {
  /** softmax outputs on D_r (members), [N_r*C] */
  remainProbs: ArrayLike<number>;
  /** softmax outputs on the test set (non-members), [N_t*C] */
  testProbs: ArrayLike<number>;
  /** softmax outputs on D_f (the samples attacked), [N_f*C] */
  forgetProbs: ArrayLike<number>;
  numClasses: number;
}

/**
 * MIA, SFR-on form (spec §6): feature = entropy of the softmax output (1-D). A class-balanced L2
 * logistic regression (no standardisation) is fitted with D_r as members (1) and the test set as
 * non-members (0). Returns the percentage of D_f predicted "member".
 * The authors call sklearn's LogisticRegression(class_weight="balanced", solver="lbfgs",
 * multi_class="multinomial"): on two classes that is a softmax over two weight vectors, each
 * penalised, whose optimum has w₁ = −w₀ = w/2, i.e. the binary objective with the penalty ¼‖w‖²:
 * binary logistic regression with C = 2 (same predictions; sklearn reports w/2). So C = 2 here.
 * `details` gives the fitted model as well.
 */
/** The binary C equivalent to the authors' two-class multinomial fit with C = 1 (see miaEntropyLogReg). */
export const MIA_LOGREG_C = 2;

export function miaEntropyLogReg(input: MiaEntropyInput): number {
  return miaEntropyLogRegDetails(input).percent;
}

export function miaEntropyLogRegDetails(input: MiaEntropyInput): { percent: number; model: LogRegModel } {
  const C = input.numClasses;
  const hR = predictionEntropy(input.remainProbs, C);
  const hT = predictionEntropy(input.testProbs, C);
  const hF = predictionEntropy(input.forgetProbs, C);
  if (hR.length === 0 || hT.length === 0 || hF.length === 0) throw new EngineError('miaEntropyLogReg', `empty set (remain ${hR.length}, test ${hT.length}, forget ${hF.length})`);
  const X = new Float64Array(hR.length + hT.length);
  X.set(hR, 0);
  X.set(hT, hR.length);
  const y = new Int32Array(X.length);
  y.fill(1, 0, hR.length);
  const model = fitLogReg(X, y, 1, { C: MIA_LOGREG_C, classWeight: 'balanced' });
  const pred = logRegPredict(model, hF);
  let members = 0;
  for (const p of pred) members += p;
  return { percent: (100 * members) / pred.length, model };
}

export interface MiaConfidenceInput {
  /** confidence (true-label softmax probability) on D_r, [N_r] — see trueLabelConfidence */
  remainConf: ArrayLike<number>;
  /** confidence on the test set, [N_t] */
  testConf: ArrayLike<number>;
  /** confidence on D_f, [N_f] */
  forgetConf: ArrayLike<number>;
  /** draws the member subset of D_r (and the SVC's subsample, if any) */
  rng: Generator;
  /** SVC overrides; the defaults are C = 3, gamma = 1/n_features = 1, maxTrain = 5000 */
  svc?: SvcOptions;
}

/**
 * MIA-efficacy, SalUn form (spec §6): feature = confidence. Members (1) = a random subset of D_r as
 * large as the test set (all of D_r if it is smaller), non-members (0) = the test set. An RBF SVC
 * with C = 3, gamma = 1/n_features is fitted; returns the percentage of D_f predicted NON-member
 * (higher = better forgetting).
 * Note: identical confidences of one class are merged exactly (box C·count). The SVC trains on at
 * most `svc.maxTrain` (default 5000) distinct points; above that (e.g. 2 × 10,000 on CIFAR-10) it
 * uses a stratified random subset drawn from `rng` with C rescaled to C·N/m, which reproduced the
 * full-data percentage within 0.4 points in a measurement (see SvcOptions.rescaleC). Pass
 * `svc: { maxTrain: Infinity }` for the exact full fit (9–30 s at 20,000 points on this machine).
 */
export function miaConfidenceSvc(input: MiaConfidenceInput): number {
  const { remainConf, testConf, forgetConf, rng } = input;
  const nT = testConf.length;
  if (remainConf.length === 0 || nT === 0 || forgetConf.length === 0) {
    throw new EngineError('miaConfidenceSvc', `empty set (remain ${remainConf.length}, test ${nT}, forget ${forgetConf.length})`);
  }
  const perm = rng.permutation(remainConf.length);
  const nM = Math.min(nT, remainConf.length);
  const X = new Float64Array(nM + nT);
  for (let k = 0; k < nM; k++) X[k] = remainConf[perm[k]!]!;
  for (let k = 0; k < nT; k++) X[nM + k] = testConf[k]!;
  const y = new Int32Array(X.length);
  y.fill(1, 0, nM);
  const svc = new SVC({ C: 3, gamma: 'auto', rng, ...input.svc }).fit({ data: X, d: 1 }, y);
  const pred = svc.predict({ data: forgetConf, d: 1 });
  let nonMembers = 0;
  for (const p of pred) if (p === 0) nonMembers++;
  return (100 * nonMembers) / pred.length;
}

/** mean over rows of KL(p ‖ q) in nats, 1e-20 added inside the logs; p, q [N*C] */
export function klDivergence(pRT: ArrayLike<number>, pUn: ArrayLike<number>, n: number, C: number): number {
  checkPair(pRT, pUn, n, C, 'klDivergence');
  let s = 0;
  for (let i = 0; i < n * C; i++) {
    const p = pRT[i]!;
    s += p * (Math.log(p + 1e-20) - Math.log(pUn[i]! + 1e-20));
  }
  return s / n;
}

/** mean over rows of JS(p, q) = ½KL(p ‖ m) + ½KL(q ‖ m), m = (p + q)/2, nats, 1e-20 inside logs */
export function jsDivergence(pRT: ArrayLike<number>, pUn: ArrayLike<number>, n: number, C: number): number {
  checkPair(pRT, pUn, n, C, 'jsDivergence');
  let s = 0;
  for (let i = 0; i < n * C; i++) {
    const p = pRT[i]!;
    const q = pUn[i]!;
    const lm = Math.log((p + q) / 2 + 1e-20);
    s += 0.5 * p * (Math.log(p + 1e-20) - lm) + 0.5 * q * (Math.log(q + 1e-20) - lm);
  }
  return s / n;
}

/** The four numbers the average gap is taken over (percentages). */
export interface GapMetrics {
  FA: number;
  RA: number;
  TA: number;
  MIA: number;
}

/** Avg.D: mean |method − RT| over FA, RA, TA and MIA. */
export function avgGap(methodMetrics: GapMetrics, rtMetrics: GapMetrics): number {
  const keys = ['FA', 'RA', 'TA', 'MIA'] as const;
  let s = 0;
  for (const k of keys) {
    const a = methodMetrics[k];
    const b = rtMetrics[k];
    if (!Number.isFinite(a) || !Number.isFinite(b)) throw new EngineError('avgGap', `${k} is not finite (method ${a}, RT ${b})`);
    s += Math.abs(a - b);
  }
  return s / keys.length;
}

function rowsOf(probs: ArrayLike<number>, C: number, op: string): number {
  if (!(Number.isInteger(C) && C >= 1)) throw new EngineError(op, `numClasses must be a positive integer, got ${C}`);
  if (probs.length % C !== 0) throw new EngineError(op, `probs have ${probs.length} values, not a multiple of C = ${C}`);
  return probs.length / C;
}

function checkPair(p: ArrayLike<number>, q: ArrayLike<number>, n: number, C: number, op: string): void {
  if (p.length !== n * C || q.length !== n * C) throw new EngineError(op, `pRT has ${p.length} values, pUn ${q.length}, expected n*C = ${n}*${C}`);
  if (n === 0) throw new EngineError(op, 'no samples');
}
