// The architectures by name, as the `forward` parity verb and the experiment runner build them:
// each entry builds a model from the reference constructor's options (camelCase) and names the
// tensors its forward takes. An entry rejects unknown option keys. Models register here, nowhere else.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import type { AnyModule } from '../nn/module.js';
import { EngineError } from '../util/errors.js';
import { ResNet, type ResNetOptions } from './resnet.js';
import { DIFFUSION_ARCHITECTURES } from './diffusion/registry.js';
import { SwinTransformer, type SwinOptions } from './swin.js';
import { VisionTransformer, type ViTOptions } from './vit.js';
import { InceptionV3, type InceptionV3Options } from './inception.js';

/** One input tensor of an architecture's forward: its name in the input file and its dtype. */
export interface ArchInput {
  name: string;
  dtype: 'f32' | 'i32';
  /** Expected rank (checked before the forward). */
  rank: number;
}

export interface Architecture {
  /** One line for `help` and error messages. */
  summary: string;
  /** Option keys the builder accepts (others are an error). */
  optionKeys: readonly string[];
  build(ctx: GpuContext, options: Record<string, unknown>): AnyModule;
  inputs: readonly ArchInput[];
  /** One forward pass over the inputs in `inputs` order (default: model.forward(...inputs)). */
  forward?(model: AnyModule, inputs: Tensor[], options: Record<string, unknown>): Tensor;
  /** Checks input values on the CPU (e.g. timesteps and classes in range) before the forward. */
  checkInputs?(model: AnyModule, inputs: ReadonlyMap<string, ArrayLike<number>>): void;
}

export const ARCHITECTURES: Record<string, Architecture> = {
  resnet18: {
    summary: 'torchvision ResNet-18 (BasicBlock [2,2,2,2]); options numClasses, inChannels, width, variant (cifar|imagenet), seed',
    optionKeys: ['numClasses', 'inChannels', 'width', 'variant', 'seed'],
    build: (ctx, o) => new ResNet(ctx, o as ResNetOptions),
    inputs: [{ name: 'x', dtype: 'f32', rank: 4 }],
  },
  ...DIFFUSION_ARCHITECTURES,
  swin_t: {
    summary: 'torchvision swin_t (Swin v1); options patchSize, embedDim, depths, numHeads, windowSize, mlpRatio, dropout, attentionDropout, stochasticDepthProb, numClasses, inChannels, seed',
    optionKeys: ['patchSize', 'embedDim', 'depths', 'numHeads', 'windowSize', 'mlpRatio', 'dropout', 'attentionDropout', 'stochasticDepthProb', 'numClasses', 'inChannels', 'seed'],
    build: (ctx, o) => new SwinTransformer(ctx, o as SwinOptions),
    inputs: [{ name: 'x', dtype: 'f32', rank: 4 }],
  },
  vit_b_16: {
    summary: 'torchvision vit_b_16 (VisionTransformer); options imageSize, patchSize, numLayers, numHeads, hiddenDim, mlpDim, dropout, attentionDropout, numClasses, inChannels, seed',
    optionKeys: ['imageSize', 'patchSize', 'numLayers', 'numHeads', 'hiddenDim', 'mlpDim', 'dropout', 'attentionDropout', 'numClasses', 'inChannels', 'seed'],
    build: (ctx, o) => new VisionTransformer(ctx, o as ViTOptions),
    inputs: [{ name: 'x', dtype: 'f32', rank: 4 }],
  },
  inception_v3: {
    summary: "torchvision inception_v3 (Inception3), or pytorch-fid's FID Inception with fid: true; options numClasses, auxLogits, transformInput, fid, widthDiv, dropout, seed, featureDims (pytorch-fid's --dims for features(x))",
    optionKeys: ['numClasses', 'auxLogits', 'transformInput', 'fid', 'widthDiv', 'dropout', 'seed', 'featureDims'],
    build: (ctx, o) => new InceptionV3(ctx, o as InceptionV3Options),
    inputs: [{ name: 'x', dtype: 'f32', rank: 4 }],
  },
};

/** The architecture `name`, with its options checked against its keys. */
export function architecture(name: string, options: Record<string, unknown> = {}): Architecture {
  const arch = Object.prototype.hasOwnProperty.call(ARCHITECTURES, name) ? ARCHITECTURES[name] : undefined;
  if (!arch) throw new EngineError('architecture', `unknown architecture '${name}' (known: ${Object.keys(ARCHITECTURES).join(', ')})`);
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new EngineError('architecture', `options of ${name} must be a JSON object`);
  const unknown = Object.keys(options).filter((k) => !arch.optionKeys.includes(k));
  if (unknown.length)
    throw new EngineError('architecture', `${name} has no option ${unknown.map((k) => `'${k}'`).join(', ')} (options: ${arch.optionKeys.join(', ')})`);
  return arch;
}
