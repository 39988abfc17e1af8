// The classification experiment task (core/experiment.ts's ExperimentTask): a ResNet-18, Swin or ViT
// from the config, the original and RT trained with the config's recipes (keeping the epoch of best test
// accuracy by default, as the authors), evaluation on D_f, D_r and the test set, and the paper's
// table row. Browser-safe: data arrive loaded, files go through the runner's store.

import type { GpuContext } from '../../gpu/context.js';
import type { AnyModule } from '../../nn/module.js';
import { SGD, AdamW, paramGroups } from '../../nn/optim.js';
import { cosineLr, constantLr, warmup } from '../../nn/schedule.js';
import { trainClassifier } from '../../nn/train.js';
import { tensorsToRecord } from '../../io/state.js';
import { DataLoader, type Batch } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import { compose, normalize, randomCrop, randomHorizontalFlip, type Transform } from '../../data/transforms.js';
import { ResNet } from '../../models/resnet.js';
import { architecture } from '../../models/registry.js';
import { transformerNoDecay } from '../../models/transformer-parts.js';
import type { ForgetSplit } from '../core/split.js';
import type { ExperimentTask, TrainContext } from '../core/experiment.js';
import type { ExperimentConfig, TrainRecipe } from './config.js';
import type { ClassificationData } from './data.js';
import { computeMetrics, metricsRow, outputsOf, type SplitOutputs } from './evaluate.js';
import { classificationProblem, type ClassBatch } from './task.js';
import type { MethodResult } from './report.js';

/** A table row: the report's MethodResult plus run details. */
export interface MethodRow extends MethodResult {
  steps?: number;
  maskDensity?: number;
}

export type ClassificationExperiment = ExperimentTask<Batch, ClassBatch, SplitOutputs, MethodRow>;

/** The task of `cfg` on loaded data and a validated split. */
export function classificationExperiment(ctx: GpuContext, cfg: ExperimentConfig, data: ClassificationData, split: ForgetSplit): ClassificationExperiment {
  const { train, test } = data;
  const C = train.numClasses;
  const norm = normalize(data.mean, data.std);
  const trainTf: Transform = data.augment && cfg.augment !== false ? compose(randomCrop(train.shape[1], 4), randomHorizontalFlip(0.5), norm) : norm;
  const evalLoader = (ds: Dataset, indices?: ArrayLike<number>) => new DataLoader(ds, { batchSize: 256, shuffle: false, indices, transform: norm });
  const forgetEval = evalLoader(train, split.forget);
  const remainEval = evalLoader(train, split.remain);
  const testEval = evalLoader(test);

  const arch = cfg.model.arch ?? 'resnet18';
  const makeModel = (seed: number): AnyModule => {
    if (arch === 'resnet18')
      return new ResNet(ctx, { numClasses: C, inChannels: train.shape[0], width: cfg.model.width ?? 64, variant: cfg.model.variant ?? 'cifar', seed });
    const options: Record<string, unknown> = { ...cfg.model.options, numClasses: C, inChannels: train.shape[0], seed };
    if (arch === 'vit_b_16') options.imageSize ??= train.shape[1];
    return architecture(arch, options).build(ctx, options);
  };
  // AdamW's usual groups: no decay on biases, norms, position tables (the transformers' default)
  const noDecay = (recipe: TrainRecipe) => recipe.noDecay ?? arch !== 'resnet18';

  /**
   * Train from scratch with a recipe, one epoch per trainClassifier call (each resumes from the
   * store's checkpoint, so an interrupted run continues where it stopped); with keep 'best' the
   * weights of the epoch with the highest test accuracy (the first such) are kept, as the authors.
   */
  async function trainStage(model: AnyModule, c: TrainContext): Promise<void> {
    const recipe: TrainRecipe = c.stage === 'pretrained' ? cfg.pretrain : cfg.retrain;
    const seed = c.stage === 'pretrained' ? cfg.seed : cfg.seed + 1;
    const indices = c.stage === 'retrain' ? split.remain : undefined;
    const loader = new DataLoader(train, { batchSize: recipe.batchSize, shuffle: true, seed, indices, transform: trainTf });
    const params = noDecay(recipe) ? paramGroups(model, { noDecay: transformerNoDecay }) : model.trainableParameters();
    const opt =
      recipe.optimizer === 'adamw'
        ? new AdamW(params, { lr: recipe.lr, weightDecay: recipe.weightDecay })
        : new SGD(params, { lr: recipe.lr, momentum: recipe.momentum, weightDecay: recipe.weightDecay });
    const warm = recipe.warmupEpochs ?? 0;
    const after = recipe.schedule === 'cosine' && recipe.epochs > warm ? cosineLr(recipe.lr, recipe.epochs - warm) : constantLr(recipe.lr);
    const schedule = warm > 0 ? warmup(warm, after) : after;
    const keepBest = (recipe.keep ?? 'best') === 'best';
    const bestName = `${c.stage}-best.safetensors`;
    const saved = keepBest ? await c.store.readTensors(bestName) : null;
    let best = saved ? { epoch: Number(saved.metadata.epoch), accuracy: Number(saved.metadata.testAccuracy) } : { epoch: 0, accuracy: -Infinity };
    try {
      for (let e = 0; e < recipe.epochs; ) {
        const r = await trainClassifier({
          ctx,
          model,
          trainLoader: loader,
          testLoader: keepBest ? testEval : undefined,
          optimizer: opt,
          schedule,
          epochs: e + 1,
          checkpointDir: `${c.stage}-ckpt`,
          resume: true,
          checkpointIO: c.store.checkpointIO,
          progress: false,
          signal: c.signal,
          onProgress: (pr) => c.progress?.(`${c.stage} epoch ${pr.epoch + 1}/${recipe.epochs}`, pr.step, pr.stepsPerEpoch),
        });
        if (r.interrupted) c.signal?.throwIfAborted();
        e = r.history.length; // past e + 1 when a checkpoint further on was resumed
        const acc = r.history[e - 1]?.testAccuracy;
        if (keepBest && acc !== undefined && acc > best.accuracy) {
          best = { epoch: e, accuracy: acc };
          await c.store.writeTensors(bestName, await tensorsToRecord(model.stateDict()), { epoch: String(e), testAccuracy: String(acc) });
        }
      }
      if (keepBest && best.epoch > 0) {
        if (best.epoch < recipe.epochs) model.loadStateDict((await c.store.readTensors(bestName))!, { strict: true });
        c.log(`${c.stage}: kept epoch ${best.epoch} of ${recipe.epochs} (best test accuracy ${(100 * best.accuracy).toFixed(2)}%)`);
      }
    } finally {
      opt.dispose();
    }
  }

  return {
    split,
    makeModel,
    train: trainStage,
    problem: () => classificationProblem({ ctx, train, numClasses: C, split, batchSize: cfg.batchSize, transform: trainTf, seed: cfg.seed }),
    async evaluate(model, label, progress) {
      const on = (set: string) => (d: number, n: number) => progress?.(`${label} eval ${set}`, d, n);
      const forget = await outputsOf(ctx, model, forgetEval, on('D_f'));
      const remain = await outputsOf(ctx, model, remainEval, on('D_r'));
      return { forget, remain, test: await outputsOf(ctx, model, testEval, on('test')) };
    },
    row(label, out, rt, rteMinutes, extra = {}) {
      const m = computeMetrics(out, rt ? rt.out.forget : null, cfg.seed);
      const row: MethodRow = metricsRow(label, m, rt ? rt.row : null, rteMinutes);
      for (const [k, v] of Object.entries(extra)) if (v !== undefined) (row as unknown as Record<string, number>)[k] = v;
      return row;
    },
    failedRow: (label) => ({ method: label, FA: NaN, RA: NaN, TA: NaN, MIA_entropy: NaN, MIA_svc: NaN, rteMinutes: NaN }),
  };
}
