// Layers as Modules with PyTorch's parameter names, shapes, defaults and seeded initialisation:
// Linear, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout,
// Sequential. Forward passes call the kernels of src/wgsl; no layer holds math of its own.
// It does not do grouped convolutions, BatchNorm without affine/running stats, or in-place ReLU.
//
// Letters: N batch, C channels, H W spatial size, IN/OUT features.

import { EngineError, type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { numel, shapeStr } from '../autograd/shape.js';
import { addScalar, relu } from '../wgsl/elementwise.js';
import type { Generator } from '../wgsl/fill.js';
import { dropout } from '../wgsl/dropout.js';
import { linear } from '../wgsl/matmul.js';
import { conv2d } from '../wgsl/conv2d.js';
import { batchNorm2d, batchNorm2dRelu } from '../wgsl/norm.js';
import { maxPool2d, avgPool2d, adaptiveAvgPool2d } from '../wgsl/pool2d.js';
import { Module, uniformInit, kaimingNormalFanOut, constantInit } from './module.js';

/** How Linear/Conv2d weights are drawn. */
export type WeightInit = 'default' | 'kaiming-fan-out';

/**
 * A reshape that keeps the autograd graph (the gradient is reshaped back). Shares storage.
 * @param shape may contain one -1
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const k = s.indexOf(-1);
  if (k >= 0) s[k] = x.size / Math.max(1, numel(s.filter((d) => d !== -1)));
  if (numel(s) !== x.size || !s.every((d) => Number.isInteger(d) && d >= 0))
    throw new EngineError('reshape', `cannot reshape ${x.describe()} to ${shapeStr(shape)}`);
  const y = view(x, s);
  return record(y, 'reshape', [x], (g) => [view(g, x.shape)]);
}

/** y = x wᵀ + b. x [N, IN] (or [..., IN]) -> [N, OUT]. Parameters weight [OUT, IN], bias [OUT]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    ctx: GpuContext,
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly opts: { bias?: boolean; gen: Generator },
  ) {
    super(ctx);
    // torch: kaiming_uniform_(a=sqrt(5)) = U(±1/sqrt(IN)); bias U(±1/sqrt(IN))
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniformInit(ctx, [outFeatures, inFeatures], bound, opts.gen));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniformInit(ctx, [outFeatures], bound, opts.gen));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
  override spawn(): Linear {
    return new Linear(this.ctx, this.inFeatures, this.outFeatures, this.opts);
  }
}

export interface Conv2dLayerOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  /** Default true (as torch); ResNet convs use false. */
  bias?: boolean;
  gen: Generator;
  /** 'default' = torch's kaiming_uniform(a=sqrt(5)); 'kaiming-fan-out' = torchvision ResNet's normal init. */
  init?: WeightInit;
}

/** 2-D convolution. x [N, C, H, W] -> [N, O, OH, OW]. Parameters weight [O, C, KH, KW], bias [O]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    ctx: GpuContext,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly opts: Conv2dLayerOptions,
  ) {
    super(ctx);
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    const fanIn = inChannels * kernelSize * kernelSize;
    const bound = 1 / Math.sqrt(fanIn);
    const w = opts.init === 'kaiming-fan-out' ? kaimingNormalFanOut(ctx, shape, opts.gen) : uniformInit(ctx, shape, bound, opts.gen);
    this.weight = this.registerParameter('weight', w);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniformInit(ctx, [outChannels], bound, opts.gen));
  }
  forward(x: Tensor): Tensor {
    const { stride = 1, padding = 0, dilation = 1 } = this.opts;
    return conv2d(x, this.weight, this.bias ?? undefined, { stride, padding, dilation });
  }
  override spawn(): Conv2d {
    return new Conv2d(this.ctx, this.inChannels, this.outChannels, this.kernelSize, this.opts);
  }
}

/**
 * BatchNorm2d(C): weight [C] = 1, bias [C] = 0, buffers running_mean [C] = 0, running_var [C] = 1,
 * num_batches_tracked (f32 scalar [], exact to 2^24; PyTorch's is I64 and loading accepts either).
 * In training mode the running statistics are updated in place on the GPU; the counter is counted
 * on the CPU and added on the GPU (into a new tensor) whenever stateDict()/namedBuffers() list it,
 * so a training step costs no extra dispatch. `fuseRelu` gives relu(bn(x)) in one kernel.
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    ctx: GpuContext,
    readonly numFeatures: number,
    readonly opts: { momentum?: number; eps?: number } = {},
  ) {
    super(ctx);
    this.weight = this.registerParameter('weight', constantInit(ctx, [numFeatures], 1));
    this.bias = this.registerParameter('bias', constantInit(ctx, [numFeatures], 0));
    this.registerBuffer('running_mean', constantInit(ctx, [numFeatures], 0));
    this.registerBuffer('running_var', constantInit(ctx, [numFeatures], 1));
    this.registerBuffer('num_batches_tracked', constantInit(ctx, [], 0));
  }
  private buf(name: string): Tensor {
    return this.getBuffer(name);
  }
  forward(x: Tensor, fuseRelu = false): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.numFeatures)
      throw new EngineError('BatchNorm2d', `expected [N, ${this.numFeatures}, H, W], got ${x.describe()}`);
    const opts = { training: this.training, momentum: this.opts.momentum ?? 0.1, eps: this.opts.eps ?? 1e-5 };
    const f = fuseRelu ? batchNorm2dRelu : batchNorm2d;
    const y = f(x, this.weight, this.bias, this.buf('running_mean'), this.buf('running_var'), opts);
    if (this.training) this.pendingBatches++;
    return y;
  }
  /** Training batches not yet added to num_batches_tracked (added on the GPU when the buffers are listed). */
  private pendingBatches = 0;
  protected override syncBuffers(): void {
    if (this.pendingBatches === 0) return;
    const n = this.pendingBatches;
    this.pendingBatches = 0;
    this.setBuffer('num_batches_tracked', addScalar(this.buf('num_batches_tracked'), n));
  }
  override spawn(): BatchNorm2d {
    return new BatchNorm2d(this.ctx, this.numFeatures, this.opts);
  }
}

/** max(x, 0), any shape. */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
  override spawn(): ReLU {
    return new ReLU(this.ctx);
  }
}

/** Max pooling [N, C, H, W] -> [N, C, OH, OW]; stride defaults to the kernel size. */
export class MaxPool2d extends Module {
  constructor(
    ctx: GpuContext,
    readonly kernelSize: number,
    readonly stride = kernelSize,
    readonly padding = 0,
  ) {
    super(ctx);
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.stride, this.padding);
  }
  override spawn(): MaxPool2d {
    return new MaxPool2d(this.ctx, this.kernelSize, this.stride, this.padding);
  }
}

/** Average pooling [N, C, H, W] -> [N, C, OH, OW] (zero padding counted, as torch's default). */
export class AvgPool2d extends Module {
  constructor(
    ctx: GpuContext,
    readonly kernelSize: number,
    readonly stride = kernelSize,
    readonly padding = 0,
  ) {
    super(ctx);
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.stride, this.padding);
  }
  override spawn(): AvgPool2d {
    return new AvgPool2d(this.ctx, this.kernelSize, this.stride, this.padding);
  }
}

/** AdaptiveAvgPool2d(1): the mean over H and W, [N, C, H, W] -> [N, C, 1, 1]. Only output size 1. */
export class AdaptiveAvgPool2d extends Module {
  constructor(
    ctx: GpuContext,
    readonly outputSize = 1,
  ) {
    super(ctx);
    if (outputSize !== 1) throw new EngineError('AdaptiveAvgPool2d', `only output size 1 is supported, got ${outputSize}`);
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new EngineError('AdaptiveAvgPool2d', `expected [N, C, H, W], got ${x.describe()}`);
    return adaptiveAvgPool2d(x, 1);
  }
  override spawn(): AdaptiveAvgPool2d {
    return new AdaptiveAvgPool2d(this.ctx, this.outputSize);
  }
}

/** [N, ...] -> [N, prod(...)] (torch.flatten(x, 1)). */
export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return reshape(x, [x.shape[0] ?? 1, -1]);
  }
  override spawn(): Flatten {
    return new Flatten(this.ctx);
  }
}

/** Inverted dropout: in training, zero with probability p and scale the rest by 1/(1-p); identity in eval. */
export class Dropout extends Module {
  constructor(
    ctx: GpuContext,
    readonly p: number,
    readonly gen: Generator,
  ) {
    super(ctx);
    if (!(p >= 0 && p < 1)) throw new EngineError('Dropout', `p = ${p} must be in [0, 1)`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.gen, this.training);
  }
  override spawn(): Dropout {
    return new Dropout(this.ctx, this.p, this.gen);
  }
}

/** Children named '0', '1', ... applied in order. */
export class Sequential extends Module {
  readonly layers: readonly Module[];
  constructor(ctx: GpuContext, layers: Module[]) {
    super(ctx);
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }
  override spawn(): Sequential {
    return new Sequential(
      this.ctx,
      this.layers.map((m) => m.spawn()),
    );
  }
}
