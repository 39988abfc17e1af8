// The diffusion noise predictors' entries of the architecture registry (src/models/registry.ts spreads
// them in): `ddpm-unet` (the authors' Conditional_Model) and `dit` (facebookresearch/DiT). Inputs x f32
// [N, C, S, S], t i32 [N] timesteps in [0, numTimesteps), y i32 [N] classes in [0, numClasses]
// (numClasses = the null class); both checked on the CPU before the forward. Option `condScale` w
// gives the UNet's guided prediction (1 + w)·eps(x, t, y) − w·eps(x, t, null) instead of eps(x, t, y);
// `cfgScale` s gives DiT's forward_with_cfg output (eps channels u + s·(c − u)).

import type { Tensor } from '../../autograd/tensor.js';
import type { GpuContext } from '../../gpu/context.js';
import type { AnyModule } from '../../nn/module.js';
import { EngineError } from '../../util/errors.js';
import { ConditionalUNet, type UNetOptions } from './unet.js';
import { DiT, type DiTOptions } from './dit.js';
import { checkClasses, checkTimesteps } from './common.js';

const NOISE_INPUTS = [
  { name: 'x', dtype: 'f32', rank: 4 },
  { name: 't', dtype: 'i32', rank: 1 },
  { name: 'y', dtype: 'i32', rank: 1 },
] as const;

interface NoisePredictor {
  numTimesteps: number;
  numClasses: number;
}

function checkNoiseValues(model: unknown, inputs: ReadonlyMap<string, ArrayLike<number>>) {
  const m = model as NoisePredictor;
  checkTimesteps('forward', inputs.get('t')!, m.numTimesteps);
  checkClasses('forward', inputs.get('y')!, m.numClasses);
}

function scaleOption(options: Record<string, unknown>, key: 'condScale' | 'cfgScale'): number | undefined {
  const w = options[key];
  if (w === undefined) return undefined;
  if (typeof w !== 'number' || !Number.isFinite(w)) throw new EngineError('forward', `${key} must be a finite number, got ${JSON.stringify(w)}`);
  return w;
}

/** An entry of src/models/registry.ts's Architecture shape (not imported: that file imports this one). */
interface DiffusionArchitecture {
  summary: string;
  optionKeys: readonly string[];
  build(ctx: GpuContext, options: Record<string, unknown>): AnyModule;
  inputs: typeof NOISE_INPUTS;
  checkInputs(model: AnyModule, inputs: ReadonlyMap<string, ArrayLike<number>>): void;
  forward(model: AnyModule, inputs: Tensor[], options: Record<string, unknown>): Tensor;
}

export const DIFFUSION_ARCHITECTURES: Record<string, DiffusionArchitecture> = {
  'ddpm-unet': {
    summary:
      "the SFR-on authors' class-conditional DDPM UNet (Conditional_Model); options ch, chMult, numResBlocks, attnResolutions, dropout, inChannels, outCh, imageSize, numClasses, numTimesteps, numGroups, seed, condScale (guided output)",
    optionKeys: ['ch', 'chMult', 'numResBlocks', 'attnResolutions', 'dropout', 'inChannels', 'outCh', 'imageSize', 'numClasses', 'numTimesteps', 'numGroups', 'seed', 'condScale'],
    build: (ctx, o) => {
      const { condScale: _w, ...rest } = o;
      scaleOption(o, 'condScale');
      return new ConditionalUNet(ctx, rest as UNetOptions);
    },
    inputs: NOISE_INPUTS,
    checkInputs: checkNoiseValues,
    forward: (model, [x, t, y], o) => {
      const m = model as ConditionalUNet;
      const w = scaleOption(o, 'condScale');
      return w === undefined ? m.forward(x as Tensor, t as Tensor, y as Tensor) : m.guided(x as Tensor, t as Tensor, y as Tensor, w);
    },
  },
  dit: {
    summary:
      'DiT with adaLN-Zero (facebookresearch/DiT), pixel space; options inputSize, patchSize, inChannels, hiddenSize, depth, numHeads, mlpRatio, classDropoutProb, numClasses, learnSigma, numTimesteps, seed, cfgScale (guided output)',
    optionKeys: ['inputSize', 'patchSize', 'inChannels', 'hiddenSize', 'depth', 'numHeads', 'mlpRatio', 'classDropoutProb', 'numClasses', 'learnSigma', 'numTimesteps', 'seed', 'cfgScale'],
    build: (ctx, o) => {
      const { cfgScale: _s, ...rest } = o;
      scaleOption(o, 'cfgScale');
      return new DiT(ctx, rest as DiTOptions);
    },
    inputs: NOISE_INPUTS,
    checkInputs: checkNoiseValues,
    forward: (model, [x, t, y], o) => {
      const m = model as DiT;
      const s = scaleOption(o, 'cfgScale');
      return s === undefined ? m.forward(x as Tensor, t as Tensor, y as Tensor) : m.guided(x as Tensor, t as Tensor, y as Tensor, s);
    },
  },
};
