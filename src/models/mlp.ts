// A multilayer perceptron for small image data (MNIST): flattens [N, C, H, W] to [N, C*H*W], then
// Linear -> activation -> ... -> Linear. Parameters are named like torch's nn.Sequential inside a
// `layers` attribute (`layers.0.weight`, `layers.2.weight`, ...). No dropout or normalisation.

import { type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { Module } from '../nn/module.js';
import { Activation, Linear, Sequential, type ActivationKind } from '../nn/layers/index.js';
import { reshape } from '../ops/index.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';

export interface MlpOptions {
  /** [inFeatures, hidden..., numClasses] */
  sizes: readonly number[];
  activation?: ActivationKind;
  seed?: number;
}

/** forward: [N, ...] -> [N, sizes.at(-1)]. */
export class MLP extends Module<[Tensor], Tensor, MlpOptions> {
  readonly layers: Sequential;
  constructor(ctx: GpuContext, config: MlpOptions) {
    super(ctx, config);
    const { sizes } = config;
    if (sizes.length < 2 || !sizes.every((s) => Number.isInteger(s) && s > 0))
      throw new EngineError('MLP', `sizes must be at least two positive integers, got [${sizes.join(', ')}]`);
    const gen = new Generator(config.seed ?? 0);
    const mods: Module[] = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      mods.push(new Linear(ctx, { inFeatures: sizes[i]!, outFeatures: sizes[i + 1]!, gen }));
      if (i + 2 < sizes.length) mods.push(new Activation(ctx, { kind: config.activation ?? 'relu' }));
    }
    this.layers = this.registerModule('layers', new Sequential(ctx, mods));
  }
  forward(x: Tensor): Tensor {
    const sizes = this.config.sizes;
    const flat = x.rank === 2 ? x : reshape(x, [x.shape[0] ?? 1, -1]);
    if (flat.shape[1] !== sizes[0]) throw new EngineError('MLP', `input ${x.describe()} has ${flat.shape[1]} features, expected ${sizes[0]}`);
    return this.layers.forward(flat);
  }
}
