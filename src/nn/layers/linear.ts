// Linear (torch.nn.Linear): y = x·wᵀ + b with PyTorch's parameter names, shapes and default init.
// Letters: IN / OUT features; x is [..., IN].

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { Generator } from '../../util/rng.js';
import { linear } from '../../ops/index.js';
import { Module, uniformInit } from '../module.js';

export interface LinearConfig {
  inFeatures: number;
  outFeatures: number;
  /** Default true. */
  bias?: boolean;
  /** Draws the initial weights (torch's kaiming_uniform(a=√5) = U(±1/√IN), bias U(±1/√IN)). */
  gen: Generator;
}

/** x [..., IN] -> [..., OUT]. Parameters weight [OUT, IN], bias [OUT]. */
export class Linear extends Module<[Tensor], Tensor, LinearConfig> {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(ctx: GpuContext, config: LinearConfig) {
    super(ctx, config);
    const { inFeatures: IN, outFeatures: OUT } = config;
    const bound = 1 / Math.sqrt(IN);
    this.weight = this.registerParameter('weight', uniformInit(ctx, [OUT, IN], bound, config.gen));
    this.bias = config.bias === false ? null : this.registerParameter('bias', uniformInit(ctx, [OUT], bound, config.gen));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}
