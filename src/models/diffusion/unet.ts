// The SFR-on authors' class-conditional DDPM UNet (DDPM/models/diffusion.py, class Conditional_Model)
// with their state-dict names, for the CIFAR-10 configuration (ch 128, ch_mult [1, 2, 2, 2], 2 res
// blocks, attention at 16x16, dropout 0.1, GroupNorm(32, eps 1e-6), SiLU) and smaller widths,
// resolutions and group counts for CPU runs. It follows the noise-predictor interface of common.ts:
//   forward(x f32 [N, C, S, S], t i32 [N] in [0, numTimesteps), y i32 [N] in [0, numClasses]) -> eps
//   f32 [N, outCh, S, S]; y = numClasses selects `null_classes_emb` (the dropped condition).
//   guided(x, t, y, w) = (1 + w)·eps(x, t, y) − w·eps(x, t, null), the authors' w = 2.
// Class dropout in training (y := numClasses with probability 0.1) is the caller's; the reference
// draws it inside forward, this module never draws classes.
//
// Differences from the reference, on purpose:
// - temb_cemb_proj is Linear(8·ch, C_out), the width of the concatenation [temb, cemb] it is applied
//   to; the reference sizes it 4·ch + 512, which equals 8·ch only at ch = 128 (the CIFAR config).
// - the timestep embedding is computed in float64 (a table; see common.ts), the reference's in f32.
// - GroupNorm's group count is an option (numGroups, default 32) so tiny widths keep several
//   channels per group (scripts/make_unet_golden.py explains why that matters).
// Not built: the 'bayesian' model type (its logvar parameter), resamp_with_conv = false.
//
// Layout (names as the reference): temb.dense.{0,1}, classes_emb, null_classes_emb, cemb.dense.{0,1},
// conv_in, down.{i}.block.{j} / .attn.{j} / .downsample.conv, mid.block_1 / attn_1 / block_2,
// up.{i}.block.{j} (numResBlocks + 1 per level, input = concat[h, popped skip]) / .attn.{j} /
// .upsample.conv (up.0 is full resolution), norm_out, conv_out.
//
// Letters: N batch, C channels, S image size, L = H·W positions, T timesteps, K classes.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import {
  add,
  attention,
  concat,
  dropout,
  full,
  indexSelect,
  linear,
  mulScalar,
  pad,
  randn,
  reshape,
  silu,
  sub,
  transpose,
  upsampleNearest2d,
} from '../../ops/index.js';
import { Module } from '../../nn/module.js';
import { Conv2d, Embedding, GroupNorm, Linear } from '../../nn/layers/index.js';
import { ModuleList, Namespace, TimestepEmbedding, checkNoiseInputs, groupNormSilu } from './common.js';

export interface UNetOptions {
  /** Base width (default 128). */
  ch?: number;
  /** Width multiplier per resolution level (default [1, 2, 2, 2]). */
  chMult?: readonly number[];
  /** ResNet blocks per level on the way down (default 2; numResBlocks + 1 on the way up). */
  numResBlocks?: number;
  /** Resolutions with self-attention after each block (default [16]). */
  attnResolutions?: readonly number[];
  /** Dropout inside the ResNet blocks, training mode only (default 0.1). */
  dropout?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Output channels (default 3). */
  outCh?: number;
  /** Image size S of the square inputs (default 32); must be divisible by 2^(levels - 1). */
  imageSize?: number;
  /** Classes K (default 10); class K is the null class. */
  numClasses?: number;
  /** Diffusion steps T (default 1000): timesteps are in [0, T). */
  numTimesteps?: number;
  /** GroupNorm groups (default 32, the reference's); must divide every width. */
  numGroups?: number;
  /** Seed of the initialisation and of dropout (default 0). */
  seed?: number;
}

const GN_EPS = 1e-6;

interface ResBlockConfig {
  inCh: number;
  outCh: number;
  condWidth: number;
  dropout: number;
  groups: number;
  gen: Generator;
}

/** ResnetBlock: x [N, inCh, H, W], c = SiLU([temb, cemb]) [N, 8ch] -> [N, outCh, H, W]. */
export class ResnetBlock extends Module<[Tensor, Tensor], Tensor, ResBlockConfig> {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly temb_cemb_proj: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly nin_shortcut: Conv2d | null;
  constructor(ctx: GpuContext, config: ResBlockConfig) {
    super(ctx, config);
    const { inCh, outCh, condWidth, groups, gen } = config;
    const gn = (c: number) => new GroupNorm(ctx, { numGroups: groups, numChannels: c, eps: GN_EPS });
    this.norm1 = this.registerModule('norm1', gn(inCh));
    this.conv1 = this.registerModule('conv1', new Conv2d(ctx, { inChannels: inCh, outChannels: outCh, kernelSize: 3, padding: 1, gen }));
    this.temb_cemb_proj = this.registerModule('temb_cemb_proj', new Linear(ctx, { inFeatures: condWidth, outFeatures: outCh, gen }));
    this.norm2 = this.registerModule('norm2', gn(outCh));
    this.conv2 = this.registerModule('conv2', new Conv2d(ctx, { inChannels: outCh, outChannels: outCh, kernelSize: 3, padding: 1, gen }));
    this.nin_shortcut =
      inCh !== outCh ? this.registerModule('nin_shortcut', new Conv2d(ctx, { inChannels: inCh, outChannels: outCh, kernelSize: 1, gen })) : null;
  }
  /** x [N, inCh, H, W], cAct = SiLU(cond) [N, condWidth]. */
  forward(x: Tensor, cAct: Tensor): Tensor {
    const N = x.shape[0]!;
    let h = this.conv1.forward(groupNormSilu(this.norm1, x));
    h = add(h, reshape(this.temb_cemb_proj.forward(cAct), [N, this.config.outCh, 1, 1]));
    h = dropout(groupNormSilu(this.norm2, h), this.config.dropout, this.config.gen, this.training);
    h = this.conv2.forward(h);
    return add(this.nin_shortcut ? this.nin_shortcut.forward(x) : x, h);
  }
}

/** AttnBlock: one head over the L = H·W positions, scale C^-1/2, residual; 1x1 convs q, k, v, proj_out. */
export class AttnBlock extends Module<[Tensor], Tensor, { ch: number; groups: number; gen: Generator }> {
  readonly norm: GroupNorm;
  readonly q: Conv2d;
  readonly k: Conv2d;
  readonly v: Conv2d;
  readonly proj_out: Conv2d;
  constructor(ctx: GpuContext, config: { ch: number; groups: number; gen: Generator }) {
    super(ctx, config);
    const { ch: C, groups, gen } = config;
    this.norm = this.registerModule('norm', new GroupNorm(ctx, { numGroups: groups, numChannels: C, eps: GN_EPS }));
    const conv = () => new Conv2d(ctx, { inChannels: C, outChannels: C, kernelSize: 1, gen });
    this.q = this.registerModule('q', conv());
    this.k = this.registerModule('k', conv());
    this.v = this.registerModule('v', conv());
    this.proj_out = this.registerModule('proj_out', conv());
  }
  forward(x: Tensor): Tensor {
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const L = H * W;
    // 1x1 convs as linears over the channel-last positions [N, L, C] (one transpose in, one out)
    const z = transpose(reshape(this.norm.forward(x), [N, C, L]), 1, 2);
    const lin = (m: Conv2d, a: Tensor) => linear(a, reshape(m.weight, [C, C]), m.bias ?? undefined);
    const heads = (m: Conv2d) => reshape(lin(m, z), [N, 1, L, C]);
    const a = attention(heads(this.q), heads(this.k), heads(this.v)); // [N, 1, L, C], scale C^-1/2
    const o = lin(this.proj_out, reshape(a, [N, L, C]));
    return add(x, reshape(transpose(o, 1, 2), [N, C, H, W]));
  }
}

/** Downsample: zero-pad right and bottom by one, 3x3 conv stride 2 (reference 'conv' resampling). */
export class Downsample extends Module<[Tensor], Tensor, { ch: number; gen: Generator }> {
  readonly conv: Conv2d;
  constructor(ctx: GpuContext, config: { ch: number; gen: Generator }) {
    super(ctx, config);
    this.conv = this.registerModule('conv', new Conv2d(ctx, { inChannels: config.ch, outChannels: config.ch, kernelSize: 3, stride: 2, gen: config.gen }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(pad(x, [[0, 0], [0, 0], [0, 1], [0, 1]]));
  }
}

/** Upsample: nearest x2, then 3x3 conv (padding 1). */
export class Upsample extends Module<[Tensor], Tensor, { ch: number; gen: Generator }> {
  readonly conv: Conv2d;
  constructor(ctx: GpuContext, config: { ch: number; gen: Generator }) {
    super(ctx, config);
    this.conv = this.registerModule('conv', new Conv2d(ctx, { inChannels: config.ch, outChannels: config.ch, kernelSize: 3, padding: 1, gen: config.gen }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(upsampleNearest2d(x, 2));
  }
}

/** Linear, SiLU, Linear held as `dense.0`, `dense.1`. */
class EmbedMlp extends Module<[Tensor], Tensor, { inF: number; outF: number; gen: Generator }> {
  readonly dense: ModuleList<Linear>;
  constructor(ctx: GpuContext, config: { inF: number; outF: number; gen: Generator }) {
    super(ctx, config);
    const { inF, outF, gen } = config;
    this.dense = this.registerModule(
      'dense',
      new ModuleList(ctx, [new Linear(ctx, { inFeatures: inF, outFeatures: outF, gen }), new Linear(ctx, { inFeatures: outF, outFeatures: outF, gen })]),
    );
  }
  forward(e: Tensor): Tensor {
    return this.dense.at(1).forward(silu(this.dense.at(0).forward(e)));
  }
}

interface Level {
  block: ModuleList<ResnetBlock>;
  attn: ModuleList<AttnBlock>;
  resample: Downsample | Upsample | null;
}

/** The authors' Conditional_Model: forward(x, t, y) -> eps (see the file header). */
export class ConditionalUNet extends Module<[Tensor, Tensor, Tensor], Tensor, UNetOptions> {
  readonly options: Required<UNetOptions>;
  readonly temb: EmbedMlp;
  readonly classes_emb: Embedding;
  readonly null_classes_emb: Tensor;
  readonly cemb: EmbedMlp;
  readonly conv_in: Conv2d;
  readonly downLevels: Level[] = [];
  readonly mid: { block_1: ResnetBlock; attn_1: AttnBlock; block_2: ResnetBlock };
  /** up.0 (full resolution) first, as the reference's state dict; the forward runs them in reverse. */
  readonly upLevels: Level[];
  readonly norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  private readonly sinusoid: TimestepEmbedding;

  constructor(ctx: GpuContext, opts: UNetOptions = {}) {
    super(ctx, opts);
    const o: Required<UNetOptions> = {
      ch: opts.ch ?? 128,
      chMult: [...(opts.chMult ?? [1, 2, 2, 2])],
      numResBlocks: opts.numResBlocks ?? 2,
      attnResolutions: [...(opts.attnResolutions ?? [16])],
      dropout: opts.dropout ?? 0.1,
      inChannels: opts.inChannels ?? 3,
      outCh: opts.outCh ?? 3,
      imageSize: opts.imageSize ?? 32,
      numClasses: opts.numClasses ?? 10,
      numTimesteps: opts.numTimesteps ?? 1000,
      numGroups: opts.numGroups ?? 32,
      seed: opts.seed ?? 0,
    };
    const op = 'ConditionalUNet';
    for (const k of ['ch', 'numResBlocks', 'inChannels', 'outCh', 'imageSize', 'numClasses', 'numTimesteps', 'numGroups'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new EngineError(op, `${k} must be a positive integer, got ${o[k]}`);
    if (!Array.isArray(o.chMult) || o.chMult.length < 1 || o.chMult.some((m) => !Number.isInteger(m) || m < 1))
      throw new EngineError(op, `chMult must be a non-empty list of positive integers, got ${JSON.stringify(o.chMult)}`);
    if (!Array.isArray(o.attnResolutions) || o.attnResolutions.some((r) => !Number.isInteger(r)))
      throw new EngineError(op, `attnResolutions must be a list of integers, got ${JSON.stringify(o.attnResolutions)}`);
    if (!(o.dropout >= 0 && o.dropout < 1)) throw new EngineError(op, `dropout ${o.dropout} is outside [0, 1)`);
    const levels = o.chMult.length;
    if (o.imageSize % 2 ** (levels - 1) !== 0)
      throw new EngineError(op, `imageSize ${o.imageSize} must be divisible by 2^${levels - 1} (${levels} levels of chMult)`);
    if (o.ch % 2 !== 0 || o.ch < 4) throw new EngineError(op, `ch ${o.ch} must be even and at least 4 (the timestep embedding is ch wide)`);
    const widths = o.chMult.map((m) => o.ch * m);
    for (const w of [o.ch, ...widths])
      if (w % o.numGroups !== 0) throw new EngineError(op, `numGroups ${o.numGroups} does not divide the width ${w} (ch ${o.ch}, chMult ${JSON.stringify(o.chMult)})`);
    this.options = o;

    const gen = new Generator(o.seed);
    const ch = o.ch;
    const condWidth = 8 * ch; // [temb (4ch), cemb (4ch)]; the reference's 4ch + 512 (see header)
    const block = (a: number, b: number) => new ResnetBlock(ctx, { inCh: a, outCh: b, condWidth, dropout: o.dropout, groups: o.numGroups, gen });
    const attn = (c: number) => new AttnBlock(ctx, { ch: c, groups: o.numGroups, gen });

    this.temb = this.registerModule('temb', new EmbedMlp(ctx, { inF: ch, outF: 4 * ch, gen }));
    this.classes_emb = this.registerModule('classes_emb', new Embedding(ctx, { numEmbeddings: o.numClasses, embeddingDim: ch, gen }));
    this.null_classes_emb = this.registerParameter('null_classes_emb', randn(ctx, [ch], gen));
    this.cemb = this.registerModule('cemb', new EmbedMlp(ctx, { inF: ch, outF: 4 * ch, gen }));
    this.conv_in = this.registerModule('conv_in', new Conv2d(ctx, { inChannels: o.inChannels, outChannels: ch, kernelSize: 3, padding: 1, gen }));

    const res = widths.map((_, i) => o.imageSize / 2 ** i);
    const skips = [ch];
    let c = ch;
    const down: Namespace[] = [];
    for (let i = 0; i < levels; i++) {
      const blocks: ResnetBlock[] = [];
      const attns: AttnBlock[] = [];
      for (let j = 0; j < o.numResBlocks; j++) {
        blocks.push(block(c, widths[i]!));
        c = widths[i]!;
        if (o.attnResolutions.includes(res[i]!)) attns.push(attn(c));
        skips.push(c);
      }
      const level: Level = { block: new ModuleList(ctx, blocks), attn: new ModuleList(ctx, attns), resample: null };
      if (i < levels - 1) {
        level.resample = new Downsample(ctx, { ch: c, gen });
        skips.push(c);
      }
      this.downLevels.push(level);
      down.push(new Namespace(ctx, { block: level.block, attn: level.attn, downsample: level.resample }));
    }
    this.registerModule('down', new ModuleList(ctx, down));

    this.mid = { block_1: block(c, c), attn_1: attn(c), block_2: block(c, c) };
    this.registerModule('mid', new Namespace(ctx, this.mid));

    const up: Level[] = new Array<Level>(levels);
    for (let i = levels - 1; i >= 0; i--) {
      const blocks: ResnetBlock[] = [];
      const attns: AttnBlock[] = [];
      for (let j = 0; j <= o.numResBlocks; j++) {
        blocks.push(block(c + skips.pop()!, widths[i]!));
        c = widths[i]!;
        if (o.attnResolutions.includes(res[i]!)) attns.push(attn(c));
      }
      up[i] = { block: new ModuleList(ctx, blocks), attn: new ModuleList(ctx, attns), resample: i > 0 ? new Upsample(ctx, { ch: c, gen }) : null };
    }
    this.upLevels = up;
    this.registerModule('up', new ModuleList(ctx, up.map((l) => new Namespace(ctx, { block: l.block, attn: l.attn, upsample: l.resample }))));
    this.norm_out = this.registerModule('norm_out', new GroupNorm(ctx, { numGroups: o.numGroups, numChannels: c, eps: GN_EPS }));
    this.conv_out = this.registerModule('conv_out', new Conv2d(ctx, { inChannels: c, outChannels: o.outCh, kernelSize: 3, padding: 1, gen }));
    this.sinusoid = new TimestepEmbedding(
      ctx,
      { dim: ch, order: 'sin-cos', freq: (k, half) => Math.exp((-k * Math.log(10000)) / (half - 1)) },
      o.numTimesteps,
    );
  }

  get numClasses(): number {
    return this.options.numClasses;
  }
  get numTimesteps(): number {
    return this.options.numTimesteps;
  }
  get inChannels(): number {
    return this.options.inChannels;
  }
  get imageSize(): number {
    return this.options.imageSize;
  }

  /** eps(x, t, y): x f32 [N, inChannels, S, S], t i32 [N] in [0, T), y i32 [N] in [0, K] (K = null). */
  forward(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const o = this.options;
    const N = checkNoiseInputs('ConditionalUNet', x, t, y, o.inChannels, o.imageSize);
    const temb = this.temb.forward(this.sinusoid.embed(t));
    // rows 0..K-1: classes_emb, row K: null_classes_emb
    const table = concat([this.classes_emb.weight, reshape(this.null_classes_emb, [1, o.ch])], 0);
    const cemb = this.cemb.forward(indexSelect(table, 0, y));
    const cAct = silu(concat([temb, cemb], 1)); // what every temb_cemb_proj sees
    if (cAct.shape[0] !== N) throw new EngineError('ConditionalUNet', 'internal: conditioning batch mismatch');

    const stack: Tensor[] = [this.conv_in.forward(x)];
    for (const level of this.downLevels) {
      level.block.items.forEach((blk, j) => {
        const h = blk.forward(stack[stack.length - 1]!, cAct);
        stack.push(level.attn.length ? level.attn.at(j).forward(h) : h);
      });
      if (level.resample) stack.push(level.resample.forward(stack[stack.length - 1]!));
    }
    let h = stack[stack.length - 1]!;
    h = this.mid.block_2.forward(this.mid.attn_1.forward(this.mid.block_1.forward(h, cAct)), cAct);
    for (let i = this.upLevels.length - 1; i >= 0; i--) {
      const level = this.upLevels[i]!;
      level.block.items.forEach((blk, j) => {
        h = blk.forward(concat([h, stack.pop()!], 1), cAct);
        if (level.attn.length) h = level.attn.at(j).forward(h);
      });
      if (level.resample) h = level.resample.forward(h);
    }
    return this.conv_out.forward(groupNormSilu(this.norm_out, h));
  }

  /**
   * Classifier-free guidance, the reference's test mode: (1 + w)·eps(x, t, y) − w·eps(x, t, null).
   * Two forwards (the classes are i32, which concat does not join).
   */
  guided(x: Tensor, t: Tensor, y: Tensor, w: number): Tensor {
    const o = this.options;
    const N = checkNoiseInputs('ConditionalUNet.guided', x, t, y, o.inChannels, o.imageSize);
    if (!Number.isFinite(w)) throw new EngineError('ConditionalUNet.guided', `guidance scale must be finite, got ${w}`);
    const cond = this.forward(x, t, y);
    const uncond = this.forward(x, t, full(this.ctx, [N], o.numClasses, 'i32'));
    return sub(mulScalar(cond, 1 + w), mulScalar(uncond, w));
  }

  override dispose(): void {
    this.sinusoid.dispose();
    super.dispose();
  }
}
