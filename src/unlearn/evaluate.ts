// Evaluation of a (possibly unlearned) classifier per spec §6: softmax outputs on D_f, D_r and the test
// set in eval mode without augmentation, then FA / RA / TA, both MIA forms, and divergences to RT.
// The forward passes run on the GPU; the metric fits (logistic regression, SVC) run on the CPU.

import type { GpuContext } from '../gpu/context.js';
import type { Module } from '../nn/module.js';
import type { DataLoader } from '../data/loader.js';
import { toGpuBatch } from '../data/gpu.js';
import { accuracy, argmaxRows, miaEntropyLogReg, miaConfidenceSvc, klDivergence, jsDivergence, trueLabelConfidence } from './metrics.js';
import { Generator } from '../util/rng.js';
import { softmax } from '../ops/index.js';

/** Softmax outputs of a model over a loader, in loader order. */
export interface Outputs {
  /** [n, C] probabilities */
  probs: Float32Array;
  /** [n] argmax predictions */
  preds: Int32Array;
  /** [n] true labels */
  labels: Int32Array;
  /** [n] dataset indices */
  indices: Int32Array;
  n: number;
  C: number;
}

/** Run the model in eval mode over every batch of `loader` (which must not shuffle or augment). */
export async function predict(ctx: GpuContext, model: Module, loader: DataLoader, progress?: (d: number, n: number) => void): Promise<Outputs> {
  const wasTraining = model.training;
  model.eval();
  const chunks: { p: Float32Array; y: Int32Array; idx: Int32Array }[] = [];
  let C = 0;
  let k = 0;
  for await (const b of loader.batches(0)) {
    const pT = ctx.noGrad(() => ctx.scope(() => ctx.keep(softmax(model.forward(toGpuBatch(ctx, b).x)))));
    C = pT.shape[1]!;
    chunks.push({ p: await pT.read(), y: b.y, idx: b.indices });
    pT.dispose();
    progress?.(++k, loader.numBatches);
  }
  model.train(wasTraining);
  const n = chunks.reduce((s, c) => s + c.y.length, 0);
  const out: Outputs = { probs: new Float32Array(n * C), preds: new Int32Array(n), labels: new Int32Array(n), indices: new Int32Array(n), n, C };
  let off = 0;
  for (const c of chunks) {
    out.probs.set(c.p, off * C);
    out.labels.set(c.y, off);
    out.indices.set(c.idx, off);
    off += c.y.length;
  }
  out.preds = argmaxRows(out.probs, C);
  return out;
}

/** The table row of one method (percentages except kl / js in nats). */
export interface MethodMetrics {
  FA: number;
  RA: number;
  TA: number;
  /** SFR-on form: entropy feature, balanced logistic regression; % of D_f predicted member */
  MIA_entropy: number;
  /** SalUn form (MIA-efficacy): confidence feature, RBF SVC; % of D_f predicted non-member */
  MIA_svc: number;
  /** mean KL(p_RT ‖ p) over D_f (absent for RT itself) */
  kl?: number;
  js?: number;
}

export interface SplitOutputs {
  forget: Outputs;
  remain: Outputs;
  test: Outputs;
}

const confidence = (o: Outputs) => trueLabelConfidence(o.probs, o.labels, o.C);

/** Metrics of spec §6 from the three output sets; divergences when RT's D_f outputs are given. */
export function computeMetrics(out: SplitOutputs, rtForget: Outputs | null, seed: number): MethodMetrics {
  const C = out.test.C;
  const m: MethodMetrics = {
    FA: accuracy(out.forget.preds, out.forget.labels),
    RA: accuracy(out.remain.preds, out.remain.labels),
    TA: accuracy(out.test.preds, out.test.labels),
    MIA_entropy: miaEntropyLogReg({ remainProbs: out.remain.probs, testProbs: out.test.probs, forgetProbs: out.forget.probs, numClasses: C }),
    MIA_svc: miaConfidenceSvc({
      remainConf: confidence(out.remain),
      testConf: confidence(out.test),
      forgetConf: confidence(out.forget),
      rng: new Generator(seed ^ 0x4d4941),
    }),
  };
  if (rtForget) {
    if (rtForget.n !== out.forget.n || rtForget.indices.some((v, i) => v !== out.forget.indices[i]))
      throw new Error('computeMetrics: RT outputs cover different forget samples than the method outputs');
    m.kl = klDivergence(rtForget.probs, out.forget.probs, out.forget.n, C);
    m.js = jsDivergence(rtForget.probs, out.forget.probs, out.forget.n, C);
  }
  return m;
}
