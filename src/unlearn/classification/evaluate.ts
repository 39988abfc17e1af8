// Evaluation of a (possibly unlearned) classifier per spec §6: softmax outputs on D_f, D_r and the
// test set (eval mode, no augmentation, through nn/train.ts `evaluate`), then FA / RA / TA, both MIA
// forms and the divergences to RT, and the report row with its gap to RT. The forward passes run on
// the GPU; the attack fits (logistic regression, SVC) on the CPU. No training here.

import type { GpuContext } from '../../gpu/context.js';
import type { AnyModule } from '../../nn/module.js';
import type { DataLoader } from '../../data/loader.js';
import { evaluate } from '../../nn/train.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { accuracy, avgGap, miaEntropyLogReg, miaConfidenceSvc, klDivergence, jsDivergence, trueLabelConfidence } from './metrics.js';
import type { MethodResult } from './report.js';

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

/** The outputs of `model` over `loader` (which must not shuffle or augment), in eval mode. */
export async function outputsOf(ctx: GpuContext, model: AnyModule, loader: DataLoader, progress?: (done: number, total: number) => void): Promise<Outputs> {
  const r = await evaluate(ctx, model, loader, { probs: true, progress });
  return { probs: r.probs, preds: r.preds, labels: r.labels, indices: r.indices, n: r.n, C: r.C };
}

/** The table row of one model (percentages except kl / js in nats). */
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
      throw new EngineError('computeMetrics', 'RT outputs cover different forget samples than the method outputs');
    m.kl = klDivergence(rtForget.probs, out.forget.probs, out.forget.n, C);
    m.js = jsDivergence(rtForget.probs, out.forget.probs, out.forget.n, C);
  }
  return m;
}

/** Avg.D over FA, RA, TA and MIA (the SFR-on entropy form), against RT's metrics. */
export function gapToRt(m: MethodMetrics, rt: MethodMetrics): number {
  return avgGap({ ...m, MIA: m.MIA_entropy }, { ...rt, MIA: rt.MIA_entropy });
}

/** A report row: the metrics, Avg.D to RT (when RT's metrics are given) and the runtime. */
export function metricsRow(method: string, m: MethodMetrics, rt: MethodMetrics | null, rteMinutes: number): MethodResult {
  return { method, ...m, ...(rt ? { avgGap: gapToRt(m, rt) } : {}), rteMinutes };
}
