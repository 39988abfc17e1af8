// Normalization layers with PyTorch's names, buffers and defaults: BatchNorm2d (running statistics,
// num_batches_tracked), LayerNorm and GroupNorm (no buffers). A fused activation is part of the layer's config (an epilogue of the same
// kernel), never a forward flag. Letters: N batch, C channels, H W spatial size.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { addScalar, batchNorm2d, batchNorm2dRelu, groupNorm, layerNorm, mul, rsqrt, sub } from '../../ops/index.js';
import { shapeStr } from '../../autograd/shape.js';
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
  /**
   * Eval-mode batch norm as a per-channel affine map y = x·scale + shift from the running statistics
   * (scale = weight / √(running_var + eps), shift = bias − running_mean·scale); differentiable in weight
   * and bias. What a preceding convolution folds in (see ResNet's eval path).
   */
  evalAffine(): { scale: Tensor; shift: Tensor } {
    const eps = this.config.eps ?? 1e-5;
    const scale = mul(this.weight, rsqrt(addScalar(this.getBuffer('running_var'), eps)));
    return { scale, shift: sub(this.bias, mul(this.getBuffer('running_mean'), scale)) };
  }
  protected override syncBuffers(): void {
    if (this.pendingBatches === 0) return;
    const n = this.pendingBatches;
    this.pendingBatches = 0;
    this.setBuffer('num_batches_tracked', addScalar(this.getBuffer('num_batches_tracked'), n));
  }
}

export interface LayerNormConfig {
  /** The trailing dims normalised over (torch's normalized_shape; a number is one last dim). */
  normalizedShape: number | readonly number[];
  /** Default 1e-5. */
  eps?: number;
  /** Learnable weight (= 1) and bias (= 0) of shape normalizedShape (torch's elementwise_affine, default true). */
  elementwiseAffine?: boolean;
}

/** LayerNorm(normalizedShape): x [..., *normalizedShape] -> same shape; parameters weight, bias. */
export class LayerNorm extends Module<[Tensor], Tensor, LayerNormConfig> {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  private readonly shape: number[];
  constructor(ctx: GpuContext, config: LayerNormConfig) {
    super(ctx, config);
    const ns = typeof config.normalizedShape === 'number' ? [config.normalizedShape] : [...config.normalizedShape];
    if (ns.length === 0 || ns.some((d) => !Number.isInteger(d) || d < 1))
      throw new EngineError('LayerNorm', `normalizedShape must be positive integers, got ${shapeStr(ns)}`);
    this.shape = ns;
    const affine = config.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', constantInit(ctx, ns, 1)) : null;
    this.bias = affine ? this.registerParameter('bias', constantInit(ctx, ns, 0)) : null;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.shape, this.weight, this.bias, this.config.eps ?? 1e-5);
  }
}

export interface GroupNormConfig {
  numGroups: number;
  numChannels: number;
  /** Default 1e-5. */
  eps?: number;
  /** Learnable per-channel weight (= 1) and bias (= 0), default true. */
  affine?: boolean;
}

/** GroupNorm(G, C): x [N, C, *] -> same shape; parameters weight [C], bias [C]. */
export class GroupNorm extends Module<[Tensor], Tensor, GroupNormConfig> {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(ctx: GpuContext, config: GroupNormConfig) {
    super(ctx, config);
    const { numGroups: G, numChannels: C } = config;
    if (!Number.isInteger(C) || C < 1) throw new EngineError('GroupNorm', `numChannels must be a positive integer, got ${C}`);
    if (!Number.isInteger(G) || G < 1 || C % G !== 0)
      throw new EngineError('GroupNorm', `numGroups ${G} must be a positive integer dividing numChannels ${C}`);
    const affine = config.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', constantInit(ctx, [C], 1)) : null;
    this.bias = affine ? this.registerParameter('bias', constantInit(ctx, [C], 0)) : null;
  }
  forward(x: Tensor): Tensor {
    const C = this.config.numChannels;
    if (x.rank < 2 || x.shape[1] !== C) throw new EngineError('GroupNorm', `expected [N, ${C}, *], got ${x.describe()}`);
    return groupNorm(x, this.config.numGroups, this.weight, this.bias, this.config.eps ?? 1e-5);
  }
}
