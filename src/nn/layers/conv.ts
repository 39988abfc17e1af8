// Conv2d (torch.nn.Conv2d) with PyTorch's parameter names and shapes, torch's default init or
// torchvision ResNet's kaiming-normal fan-out init. No grouped or transposed convolutions.
// Kernel, stride, padding and dilation are a number or a [height, width] pair, as torch's.
// Letters: N batch, C in channels, O out channels, H W spatial size, KH KW kernel size.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { Generator } from '../../util/rng.js';
import { conv2d } from '../../ops/index.js';
import { Module, uniformInit, kaimingNormalFanOut } from '../module.js';

/** How Linear/Conv2d weights are drawn. */
export type WeightInit = 'default' | 'kaiming-fan-out';

export interface Conv2dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  /** Default true (as torch); ResNet convs use false. */
  bias?: boolean;
  gen: Generator;
  /** 'default' = torch's kaiming_uniform(a=√5); 'kaiming-fan-out' = torchvision ResNet's normal init. */
  init?: WeightInit;
}

/** x [N, C, H, W] -> [N, O, OH, OW]. Parameters weight [O, C, KH, KW], bias [O]. */
export class Conv2d extends Module<[Tensor], Tensor, Conv2dConfig> {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(ctx: GpuContext, config: Conv2dConfig) {
    super(ctx, config);
    const { inChannels: C, outChannels: O, kernelSize: K, gen } = config;
    const [KH, KW] = typeof K === 'number' ? [K, K] : K;
    const shape = [O, C, KH, KW];
    const bound = 1 / Math.sqrt(C * KH * KW);
    const w = config.init === 'kaiming-fan-out' ? kaimingNormalFanOut(ctx, shape, gen) : uniformInit(ctx, shape, bound, gen);
    this.weight = this.registerParameter('weight', w);
    this.bias = config.bias === false ? null : this.registerParameter('bias', uniformInit(ctx, [O], bound, gen));
  }
  forward(x: Tensor): Tensor {
    const { stride = 1, padding = 0, dilation = 1 } = this.config;
    return conv2d(x, this.weight, this.bias ?? undefined, { stride, padding, dilation });
  }
}
