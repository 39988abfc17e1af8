// ResNet-18 (BasicBlock, [2, 2, 2, 2]) with torchvision's module and parameter names, in two stems:
// 'imagenet' (7x7 stride-2 conv + 3x3 stride-2 max-pool) and 'cifar' (3x3 stride-1 conv, no pool),
// and a configurable base width. Initialisation follows torchvision (kaiming-normal fan-out convs,
// BN weight 1 / bias 0, default Linear). It does not build Bottleneck ResNets (50/101/152).
//
// Letters: N batch, C channels, H W spatial size.

import { type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { add, relu, globalAvgPool2d, conv2dFused, mul, reshape } from '../ops/index.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear, MaxPool2d, Sequential } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';

export interface ResNetOptions {
  /** Output classes (default 10). */
  numClasses?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Base width: channels of layer1 (default 64; layers 2-4 use 2x, 4x, 8x). */
  width?: number;
  /** 'cifar' (default): 3x3 stride-1 stem, no max-pool. 'imagenet': 7x7 stride-2 stem + max-pool. */
  variant?: 'cifar' | 'imagenet';
  /** Seed of the initialisation (default 0). */
  seed?: number;
}

export interface BasicBlockConfig {
  inPlanes: number;
  planes: number;
  stride: number;
  gen: Generator;
}

/**
 * conv then eval-mode batch norm (then `act`, after adding `residual`) as one convolution: the batch
 * norm's affine map is folded into the weights and a bias, and the GEMM's epilogue adds the residual and
 * applies the ReLU. Same function as conv → bn → (+ residual) → act up to float rounding; differentiable.
 */
function convBnEval(conv: Conv2d, bn: BatchNorm2d, x: Tensor, act: 'relu' | 'none', residual?: Tensor): Tensor {
  const { scale, shift } = bn.evalAffine();
  const O = conv.weight.shape[0]!;
  const w = mul(conv.weight, reshape(scale, [O, 1, 1, 1]));
  const b = conv.bias ? add(shift, mul(conv.bias, scale)) : shift;
  const { stride = 1, padding = 0, dilation = 1 } = conv.config;
  return conv2dFused(x, w, b, { stride, padding, dilation }, { act, residual });
}

/**
 * torchvision BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x)); bn1 carries the relu.
 * With fuseEval, eval mode runs each conv-bn pair as one convolution with the batch norm folded in and
 * the residual add and ReLU in its epilogue (convBnEval): three GEMMs per block and no other pass.
 */
export class BasicBlock extends Module<[Tensor], Tensor, BasicBlockConfig> {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;
  /**
   * Eval mode folds batch norm into the convolutions (default false: on lavapipe the folded path
   * measured 4-10% slower than the separate passes on a quiet machine, bench/RESULTS.md "resnet-eval").
   */
  fuseEval = false;
  constructor(ctx: GpuContext, config: BasicBlockConfig) {
    super(ctx, config);
    const { inPlanes, planes, stride, gen } = config;
    const conv = (cin: number, k: number, s: number) =>
      new Conv2d(ctx, { inChannels: cin, outChannels: planes, kernelSize: k, stride: s, padding: (k - 1) / 2, bias: false, gen, init: 'kaiming-fan-out' });
    this.conv1 = this.registerModule('conv1', conv(inPlanes, 3, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(ctx, { numFeatures: planes, activation: 'relu' }));
    this.conv2 = this.registerModule('conv2', conv(planes, 3, 1));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(ctx, { numFeatures: planes }));
    this.downsample =
      stride !== 1 || inPlanes !== planes
        ? this.registerModule('downsample', new Sequential(ctx, [conv(inPlanes, 1, stride), new BatchNorm2d(ctx, { numFeatures: planes })]))
        : null;
  }
  /** x [N, inPlanes, H, W] -> [N, planes, H/stride, W/stride]. */
  forward(x: Tensor): Tensor {
    if (!this.training && this.fuseEval) {
      const ds = this.downsample?.layers as [Conv2d, BatchNorm2d] | undefined;
      const identity = ds ? convBnEval(ds[0], ds[1], x, 'none') : x;
      return convBnEval(this.conv2, this.bn2, convBnEval(this.conv1, this.bn1, x, 'relu'), 'relu', identity);
    }
    const h = this.bn1.forward(this.conv1.forward(x));
    const out = this.bn2.forward(this.conv2.forward(h));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu(add(out, identity));
  }
}

/** ResNet-18. forward: x [N, inChannels, H, W] -> logits [N, numClasses]. */
export class ResNet extends Module<[Tensor], Tensor, ResNetOptions> {
  readonly options: Required<ResNetOptions>;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d | null;
  readonly layers: Sequential[];
  readonly fc: Linear;
  constructor(ctx: GpuContext, opts: ResNetOptions = {}) {
    super(ctx, opts);
    const o: Required<ResNetOptions> = {
      numClasses: opts.numClasses ?? 10,
      inChannels: opts.inChannels ?? 3,
      width: opts.width ?? 64,
      variant: opts.variant ?? 'cifar',
      seed: opts.seed ?? 0,
    };
    for (const k of ['numClasses', 'inChannels', 'width'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new EngineError('ResNet', `${k} must be a positive integer, got ${o[k]}`);
    if (o.variant !== 'cifar' && o.variant !== 'imagenet') throw new EngineError('ResNet', `unknown variant '${o.variant}'`);
    this.options = o;
    const gen = new Generator(o.seed);
    const w = o.width;
    const stem = o.variant === 'cifar' ? { k: 3, stride: 1, padding: 1 } : { k: 7, stride: 2, padding: 3 };
    this.conv1 = this.registerModule(
      'conv1',
      new Conv2d(ctx, { inChannels: o.inChannels, outChannels: w, kernelSize: stem.k, stride: stem.stride, padding: stem.padding, bias: false, gen, init: 'kaiming-fan-out' }),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(ctx, { numFeatures: w, activation: 'relu' }));
    // torchvision's maxpool has no parameters, so leaving it out of the registry keeps the names equal
    this.maxpool = o.variant === 'imagenet' ? new MaxPool2d(ctx, { kernelSize: 3, stride: 2, padding: 1 }) : null;
    let inPlanes = w;
    this.layers = [1, 2, 4, 8].map((mult, i) => {
      const planes = w * mult;
      const stride = i === 0 ? 1 : 2;
      const blocks = [new BasicBlock(ctx, { inPlanes, planes, stride, gen }), new BasicBlock(ctx, { inPlanes: planes, planes, stride: 1, gen })];
      inPlanes = planes;
      return this.registerModule(`layer${i + 1}`, new Sequential(ctx, blocks));
    });
    this.fc = this.registerModule('fc', new Linear(ctx, { inFeatures: 8 * w, outFeatures: o.numClasses, gen }));
  }

  /**
   * Eval mode runs each conv + batch norm (+ residual + ReLU) as one convolution with the batch norm
   * folded in when true; false (the default) keeps the separate passes, measured faster on lavapipe.
   */
  get fuseEval(): boolean {
    return this.layers.every((l) => l.layers.every((b) => (b as BasicBlock).fuseEval));
  }
  set fuseEval(on: boolean) {
    for (const layer of this.layers) for (const b of layer.layers) (b as BasicBlock).fuseEval = on;
  }

  /** Features before the classifier: [N, 8*width] after global average pooling. */
  features(x: Tensor): Tensor {
    let h = this.training || !this.fuseEval ? this.bn1.forward(this.conv1.forward(x)) : convBnEval(this.conv1, this.bn1, x, 'relu');
    if (this.maxpool) h = this.maxpool.forward(h);
    for (const layer of this.layers) h = layer.forward(h);
    return globalAvgPool2d(h);
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.options.inChannels)
      throw new EngineError('ResNet', `expected input [N, ${this.options.inChannels}, H, W], got ${x.describe()}`);
    return this.fc.forward(this.features(x));
  }
}

/** ResNet-18 with BasicBlocks [2, 2, 2, 2]. */
export function resnet18(ctx: GpuContext, opts: ResNetOptions = {}): ResNet {
  return new ResNet(ctx, opts);
}
