// Normalization layers with PyTorch's names, buffers and defaults: BatchNorm2d (running statistics,
// num_batches_tracked). A fused activation is part of the layer's config (an epilogue of the same
// kernel), never a forward flag. Letters: N batch, C channels, H W spatial size.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { addScalar, batchNorm2d, batchNorm2dRelu } from '../../ops/index.js';
import { Module, constantInit } from '../module.js';

export interface BatchNorm2dConfig {
  numFeatures: number;
  /** Running-statistics momentum (torch default 0.1). */
  momentum?: number;
  eps?: number;
  /** Fused epilogue: relu(bn(x)) in one kernel (torchvision's bn → relu pairs). */
  activation?: 'relu';
}

/**
 * BatchNorm2d(C): weight [C] = 1, bias [C] = 0, buffers running_mean [C] = 0, running_var [C] = 1,
 * num_batches_tracked (f32 scalar [], exact to 2^24; PyTorch's is I64 and loading accepts either).
 * In training mode the running statistics are updated in place on the GPU; the counter is counted
 * on the CPU and added on the GPU (into a new tensor) whenever stateDict()/namedBuffers() list it,
 * so a training step costs no extra dispatch.
 */
export class BatchNorm2d extends Module<[Tensor], Tensor, BatchNorm2dConfig> {
  readonly weight: Tensor;
  readonly bias: Tensor;
  /** Training batches not yet added to num_batches_tracked (added on the GPU when the buffers are listed). */
  private pendingBatches = 0;
  constructor(ctx: GpuContext, config: BatchNorm2dConfig) {
    super(ctx, config);
    const C = config.numFeatures;
    if (!Number.isInteger(C) || C < 1) throw new EngineError('BatchNorm2d', `numFeatures must be a positive integer, got ${C}`);
    this.weight = this.registerParameter('weight', constantInit(ctx, [C], 1));
    this.bias = this.registerParameter('bias', constantInit(ctx, [C], 0));
    this.registerBuffer('running_mean', constantInit(ctx, [C], 0));
    this.registerBuffer('running_var', constantInit(ctx, [C], 1));
    this.registerBuffer('num_batches_tracked', constantInit(ctx, [], 0));
  }
  /** x [N, C, H, W] -> same shape. */
  forward(x: Tensor): Tensor {
    const C = this.config.numFeatures;
    if (x.rank !== 4 || x.shape[1] !== C) throw new EngineError('BatchNorm2d', `expected [N, ${C}, H, W], got ${x.describe()}`);
    const opts = { training: this.training, momentum: this.config.momentum ?? 0.1, eps: this.config.eps ?? 1e-5 };
    const f = this.config.activation === 'relu' ? batchNorm2dRelu : batchNorm2d;
    const y = f(x, this.weight, this.bias, this.getBuffer('running_mean'), this.getBuffer('running_var'), opts);
    if (this.training) this.pendingBatches++;
    return y;
  }
  protected override syncBuffers(): void {
    if (this.pendingBatches === 0) return;
    const n = this.pendingBatches;
    this.pendingBatches = 0;
    this.setBuffer('num_batches_tracked', addScalar(this.getBuffer('num_batches_tracked'), n));
  }
}
