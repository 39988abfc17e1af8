// Vision Transformer with torchvision's module and parameter names (`vit_b_16`: image 224, patch 16,
// 12 layers, 12 heads, hidden 768, MLP 3072), configurable for small CPU runs, so a torchvision
// state_dict loads strictly: conv_proj, class_token, encoder.pos_embedding,
// encoder.layers.encoder_layer_{i}.{ln_1, self_attention (packed in_proj_weight/in_proj_bias,
// out_proj), ln_2, mlp.0, mlp.3}, encoder.ln, heads.head. LayerNorm eps 1e-6 as torchvision's ViT.
// It does not build the conv-stem variant or the representation_size (pre_logits) head.
//
// Letters: N batch, S = 1 + (imageSize/patchSize)² tokens, D hidden width, K heads.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { add, concat, linear, rand, randn, reshape, transpose, zeros, slice } from '../ops/index.js';
import { Module, copyTensor } from '../nn/module.js';
import { Activation, Conv2d, Dropout, Identity, LayerNorm, Linear, Sequential } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';
import { NamedSequential, packedSelfAttention } from './transformer-parts.js';

export interface ViTOptions {
  /** Side of the square input the model takes (default 224). */
  imageSize?: number;
  /** Side of the square patch (default 16); must divide imageSize. */
  patchSize?: number;
  numLayers?: number;
  numHeads?: number;
  hiddenDim?: number;
  mlpDim?: number;
  /** Dropout after the position embedding, attention and in the MLP (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities (default 0). */
  attentionDropout?: number;
  /** Output classes (default 1000). */
  numClasses?: number;
  /** Input channels (default 3; torchvision's is fixed at 3). */
  inChannels?: number;
  /** Seed of the initialisation and of the dropout draws (default 0). */
  seed?: number;
}

const fill = (t: Tensor, src: Tensor) => {
  copyTensor('ViT init', src, t);
  src.dispose();
};
const xavier = (ctx: GpuContext, out: number, inp: number, gen: Generator) => rand(ctx, [out, inp], gen, -Math.sqrt(6 / (inp + out)), Math.sqrt(6 / (inp + out)));

/** torch.nn.MultiheadAttention(D, K, batch_first=True) as self-attention: x [N, S, D] -> [N, S, D]. */
export class MultiheadSelfAttention extends Module<[Tensor], Tensor, { dim: number; numHeads: number; dropout: number; gen: Generator }> {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;
  constructor(ctx: GpuContext, config: { dim: number; numHeads: number; dropout: number; gen: Generator }) {
    super(ctx, config);
    const { dim: D, gen } = config;
    // torch: xavier_uniform_ on the packed [3D, D] weight, zero biases
    this.inProjWeight = this.registerParameter('in_proj_weight', xavier(ctx, 3 * D, D, gen));
    this.inProjBias = this.registerParameter('in_proj_bias', zeros(ctx, [3 * D]));
    this.outProj = this.registerModule('out_proj', new Linear(ctx, { inFeatures: D, outFeatures: D, gen }));
    fill(this.outProj.bias!, zeros(ctx, [D]));
  }
  forward(x: Tensor): Tensor {
    const { numHeads: K, dropout, gen } = this.config;
    const o = packedSelfAttention(linear(x, this.inProjWeight, this.inProjBias), K, { dropout, generator: gen, training: this.training });
    return this.outProj.forward(o);
  }
}

interface EncoderBlockConfig {
  hiddenDim: number;
  numHeads: number;
  mlpDim: number;
  dropout: number;
  attentionDropout: number;
  gen: Generator;
}

/** torchvision EncoderBlock: x + drop(attn(ln_1(x))), then + mlp(ln_2(·)). */
export class EncoderBlock extends Module<[Tensor], Tensor, EncoderBlockConfig> {
  readonly ln1: LayerNorm;
  readonly selfAttention: MultiheadSelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: Sequential;
  private readonly drop: Module;
  constructor(ctx: GpuContext, config: EncoderBlockConfig) {
    super(ctx, config);
    const { hiddenDim: D, mlpDim: F, gen, dropout } = config;
    this.ln1 = this.registerModule('ln_1', new LayerNorm(ctx, { normalizedShape: D, eps: 1e-6 }));
    this.selfAttention = this.registerModule('self_attention', new MultiheadSelfAttention(ctx, { dim: D, numHeads: config.numHeads, dropout: config.attentionDropout, gen }));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(ctx, { normalizedShape: D, eps: 1e-6 }));
    const drop = () => (dropout > 0 ? new Dropout(ctx, { p: dropout, gen }) : new Identity(ctx));
    const fc1 = new Linear(ctx, { inFeatures: D, outFeatures: F, gen });
    const fc2 = new Linear(ctx, { inFeatures: F, outFeatures: D, gen });
    // torchvision MLPBlock: xavier_uniform_ weights, N(0, 1e-6²) biases
    for (const l of [fc1, fc2]) {
      fill(l.weight, xavier(ctx, l.weight.shape[0]!, l.weight.shape[1]!, gen));
      fill(l.bias!, randn(ctx, l.bias!.shape, gen, 0, 1e-6));
    }
    this.mlp = this.registerModule('mlp', new Sequential(ctx, [fc1, new Activation(ctx, { kind: 'gelu' }), drop(), fc2, drop()]));
    this.drop = drop();
  }
  forward(x: Tensor): Tensor {
    const h = add(x, this.drop.forward(this.selfAttention.forward(this.ln1.forward(x))));
    return add(h, this.mlp.forward(this.ln2.forward(h)));
  }
}

/** torchvision Encoder: + pos_embedding, dropout, the blocks (encoder_layer_i), ln. */
export class Encoder extends Module<[Tensor], Tensor, EncoderBlockConfig & { seqLength: number; numLayers: number }> {
  readonly posEmbedding: Tensor;
  readonly layers: NamedSequential;
  readonly ln: LayerNorm;
  private readonly drop: Module;
  constructor(ctx: GpuContext, config: EncoderBlockConfig & { seqLength: number; numLayers: number }) {
    super(ctx, config);
    const { seqLength: S, hiddenDim: D, gen } = config;
    this.posEmbedding = this.registerParameter('pos_embedding', randn(ctx, [1, S, D], gen, 0, 0.02));
    this.drop = config.dropout > 0 ? new Dropout(ctx, { p: config.dropout, gen }) : new Identity(ctx);
    this.layers = this.registerModule('layers', new NamedSequential(ctx, { layers: Array.from({ length: config.numLayers }, (_, i) => [`encoder_layer_${i}`, new EncoderBlock(ctx, config)] as [string, Module]) }));
    this.ln = this.registerModule('ln', new LayerNorm(ctx, { normalizedShape: D, eps: 1e-6 }));
  }
  forward(x: Tensor): Tensor {
    return this.ln.forward(this.layers.forward(this.drop.forward(add(x, this.posEmbedding))));
  }
}

/** torchvision VisionTransformer. forward: x [N, inChannels, imageSize, imageSize] -> logits [N, numClasses]. */
export class VisionTransformer extends Module<[Tensor], Tensor, ViTOptions> {
  readonly options: Required<ViTOptions>;
  readonly convProj: Conv2d;
  readonly classToken: Tensor;
  readonly encoder: Encoder;
  readonly heads: NamedSequential;
  constructor(ctx: GpuContext, opts: ViTOptions = {}) {
    super(ctx, opts);
    const op = 'VisionTransformer';
    const o: Required<ViTOptions> = {
      imageSize: opts.imageSize ?? 224,
      patchSize: opts.patchSize ?? 16,
      numLayers: opts.numLayers ?? 12,
      numHeads: opts.numHeads ?? 12,
      hiddenDim: opts.hiddenDim ?? 768,
      mlpDim: opts.mlpDim ?? 3072,
      dropout: opts.dropout ?? 0,
      attentionDropout: opts.attentionDropout ?? 0,
      numClasses: opts.numClasses ?? 1000,
      inChannels: opts.inChannels ?? 3,
      seed: opts.seed ?? 0,
    };
    for (const k of ['imageSize', 'patchSize', 'numLayers', 'numHeads', 'hiddenDim', 'mlpDim', 'numClasses', 'inChannels'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new EngineError(op, `${k} must be a positive integer, got ${o[k]}`);
    if (o.imageSize % o.patchSize !== 0) throw new EngineError(op, `patchSize ${o.patchSize} does not divide imageSize ${o.imageSize}`);
    if (o.hiddenDim % o.numHeads !== 0) throw new EngineError(op, `${o.numHeads} heads do not divide hiddenDim ${o.hiddenDim}`);
    for (const k of ['dropout', 'attentionDropout'] as const) if (!(o[k] >= 0 && o[k] < 1)) throw new EngineError(op, `${k} must be in [0, 1), got ${o[k]}`);
    this.options = o;
    const gen = new Generator(o.seed);
    const { patchSize: P, hiddenDim: D } = o;
    this.convProj = this.registerModule('conv_proj', new Conv2d(ctx, { inChannels: o.inChannels, outChannels: D, kernelSize: P, stride: P, gen }));
    // torchvision: trunc_normal_(std = sqrt(1 / fan_in)) (bounds ±2 ≫ σ: a normal), bias 0
    fill(this.convProj.weight, randn(ctx, this.convProj.weight.shape, gen, 0, Math.sqrt(1 / (o.inChannels * P * P))));
    fill(this.convProj.bias!, zeros(ctx, [D]));
    this.classToken = this.registerParameter('class_token', zeros(ctx, [1, 1, D]));
    const seqLength = (o.imageSize / P) ** 2 + 1;
    this.encoder = this.registerModule(
      'encoder',
      new Encoder(ctx, { seqLength, numLayers: o.numLayers, hiddenDim: D, numHeads: o.numHeads, mlpDim: o.mlpDim, dropout: o.dropout, attentionDropout: o.attentionDropout, gen }),
    );
    const head = new Linear(ctx, { inFeatures: D, outFeatures: o.numClasses, gen });
    fill(head.weight, zeros(ctx, head.weight.shape));
    fill(head.bias!, zeros(ctx, [o.numClasses]));
    this.heads = this.registerModule('heads', new NamedSequential(ctx, { layers: [['head', head]] }));
  }

  /** The class token's final representation [N, D]. */
  featuresOf(x: Tensor): Tensor {
    const o = this.options;
    if (x.rank !== 4 || x.shape[1] !== o.inChannels || x.shape[2] !== o.imageSize || x.shape[3] !== o.imageSize)
      throw new EngineError('VisionTransformer', `expected input [N, ${o.inChannels}, ${o.imageSize}, ${o.imageSize}], got ${x.describe()}`);
    const N = x.shape[0]!;
    const D = o.hiddenDim;
    const p = this.convProj.forward(x); // [N, D, h, w]
    const tokens = transpose(reshape(p, [N, D, -1]), 1, 2); // [N, h·w, D]
    const cls = add(zeros(this.ctx, [N, 1, D]), this.classToken); // class_token.expand(N, -1, -1)
    const h = this.encoder.forward(concat([cls, tokens], 1)); // [N, S, D]
    return reshape(slice(h, [0, 0, 0], [N, 1, D]), [N, D]);
  }

  forward(x: Tensor): Tensor {
    return this.heads.forward(this.featuresOf(x));
  }
}

/** torchvision vit_b_16's architecture (random init; no ImageNet weights are shipped). */
export function vitB16(ctx: GpuContext, opts: ViTOptions = {}): VisionTransformer {
  return new VisionTransformer(ctx, opts);
}
