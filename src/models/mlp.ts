// A multilayer perceptron for small image data (MNIST): flattens [N, C, H, W] to [N, C*H*W], then
// Linear -> activation -> ... -> Linear. Parameters are named like torch's nn.Sequential inside a
// `layers` attribute (`layers.0.weight`, `layers.2.weight`, ...). No dropout or normalisation.

import { EngineError, type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { gelu, relu, sigmoid, tanh } from '../wgsl/elementwise.js';
import { Generator } from '../wgsl/fill.js';
import { Module } from '../nn/module.js';
import { Linear, Sequential, reshape } from '../nn/layers.js';

export type Activation = 'relu' | 'tanh' | 'gelu' | 'sigmoid';
const ACT = { relu, tanh, gelu, sigmoid };

/** Parameter-free activation layer. */
export class ActivationLayer extends Module {
  constructor(
    ctx: GpuContext,
    readonly kind: Activation,
  ) {
    super(ctx);
    if (!(kind in ACT)) throw new EngineError('MLP', `unknown activation '${kind}' (relu, tanh, gelu, sigmoid)`);
  }
  forward(x: Tensor): Tensor {
    return ACT[this.kind](x);
  }
  override spawn(): ActivationLayer {
    return new ActivationLayer(this.ctx, this.kind);
  }
}

export interface MlpOptions {
  activation?: Activation;
  seed?: number;
}

/** sizes = [inFeatures, hidden..., numClasses]; forward: [N, ...] -> [N, sizes.at(-1)]. */
export class MLP extends Module {
  readonly layers: Sequential;
  constructor(
    ctx: GpuContext,
    readonly sizes: readonly number[],
    readonly opts: MlpOptions = {},
  ) {
    super(ctx);
    if (sizes.length < 2 || !sizes.every((s) => Number.isInteger(s) && s > 0))
      throw new EngineError('MLP', `sizes must be at least two positive integers, got [${sizes.join(', ')}]`);
    const gen = new Generator(opts.seed ?? 0);
    const mods: Module[] = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      mods.push(new Linear(ctx, sizes[i]!, sizes[i + 1]!, { gen }));
      if (i + 2 < sizes.length) mods.push(new ActivationLayer(ctx, opts.activation ?? 'relu'));
    }
    this.layers = this.registerModule('layers', new Sequential(ctx, mods));
  }
  forward(x: Tensor): Tensor {
    const flat = x.rank === 2 ? x : reshape(x, [x.shape[0] ?? 1, -1]);
    if (flat.shape[1] !== this.sizes[0])
      throw new EngineError('MLP', `input ${x.describe()} has ${flat.shape[1]} features, expected ${this.sizes[0]}`);
    return this.layers.forward(flat);
  }
  override spawn(): MLP {
    return new MLP(this.ctx, this.sizes, this.opts);
  }
}
