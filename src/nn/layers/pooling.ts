// Pooling layers (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1)) over [N, C, H, W]; stride
// defaults to the kernel size; average pooling counts zero padding unless countIncludePad is false
// (as torch). No ceil_mode, no adaptive output sizes other than 1.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d } from '../../ops/index.js';
import { Module } from '../module.js';

export interface Pool2dConfig {
  kernelSize: number;
  /** Default: kernelSize. */
  stride?: number;
  padding?: number;
}

export interface AvgPool2dConfig extends Pool2dConfig {
  /** torch's count_include_pad (default true): false divides by the in-bounds elements only. */
  countIncludePad?: boolean;
}

/** [N, C, H, W] -> [N, C, OH, OW]. */
export class MaxPool2d extends Module<[Tensor], Tensor, Pool2dConfig> {
  forward(x: Tensor): Tensor {
    const { kernelSize: k, stride = k, padding = 0 } = this.config;
    return maxPool2d(x, k, stride, padding);
  }
}

/** [N, C, H, W] -> [N, C, OH, OW]. */
export class AvgPool2d extends Module<[Tensor], Tensor, AvgPool2dConfig> {
  forward(x: Tensor): Tensor {
    const { kernelSize: k, stride = k, padding = 0, countIncludePad = true } = this.config;
    return avgPool2d(x, k, stride, padding, { countIncludePad });
  }
}

/** AdaptiveAvgPool2d(1): the mean over H and W, [N, C, H, W] -> [N, C, 1, 1]. */
export class AdaptiveAvgPool2d extends Module<[Tensor], Tensor, { outputSize: 1 }> {
  constructor(ctx: GpuContext, config: { outputSize: 1 } = { outputSize: 1 }) {
    super(ctx, config);
    if (config.outputSize !== 1) throw new EngineError('AdaptiveAvgPool2d', `only output size 1 is supported, got ${config.outputSize}`);
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new EngineError('AdaptiveAvgPool2d', `expected [N, C, H, W], got ${x.describe()}`);
    return adaptiveAvgPool2d(x, 1);
  }
}
