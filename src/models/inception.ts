// Inception-v3 with torchvision's module and parameter names (Conv2d_1a_3x3.conv.weight,
// Mixed_5b.branch1x1.bn.running_mean, AuxLogits.fc.weight, fc.weight, ...), so that torchvision's
// `inception_v3` weights and pytorch-fid's FID Inception weights (pt_inception-2015-12-05, saved as
// safetensors) load strictly. Two layouts:
// - torchvision's Inception3 (auxLogits, transformInput as its constructor);
// - `fid: true`, pytorch-fid's fid_inception_v3: the pool branches of Mixed_5b-5d, 6b-6e and 7b
//   average without the padded zeros (count_include_pad=False, as TensorFlow's pool), Mixed_7c's pool
//   branch max-pools; 1008 classes and no aux head by default. `features(x)` gives its 2048 pool3
//   features, the vector FID is computed on (or, with `featureDims`, pytorch-fid's --dims 64, 192,
//   768: its earlier blocks, spatially averaged; the network then stops early).
// `widthDiv` divides every channel count (1 = the real network; tests use 16). Initialisation is
// torch's default for convolutions and linears (torchvision draws a truncated normal, std 0.1): this
// network is meant to be loaded, not trained from scratch here. Inputs must be at least 75x75
// (299x299 as trained); the aux head (training mode only) needs the 17x17 map a 299x299 input gives.
//
// Letters: N batch, C channels, H W spatial size.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { add, avgPool2d, concat, dropout, globalAvgPool2d, maxPool2d, mul, tensor } from '../ops/index.js';
import { Module, type AnyModule } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';

export interface InceptionV3Options {
  /** Output classes (default 1000; 1008 with fid, the FID weights' head). */
  numClasses?: number;
  /** Build the aux classifier `AuxLogits` on Mixed_6e (default true, as torchvision; false with fid). */
  auxLogits?: boolean;
  /** Map ImageNet-normalised input to the (x - 0.5) / 0.5 range the weights expect (default false). */
  transformInput?: boolean;
  /** pytorch-fid's FID Inception blocks (default false). */
  fid?: boolean;
  /** Divides every channel count: 1 (default), 2, 4, 8 or 16. */
  widthDiv?: number;
  /** Dropout before fc (default 0.5, as torchvision). */
  dropout?: number;
  /** Seed of the initialisation and the dropout draws (default 0). */
  seed?: number;
  /**
   * What features(x) returns, as pytorch-fid's --dims: 2048 (default, the final average pool), 768
   * (Mixed_6e, the aux head's input), 192 (after the second max pool) or 64 (after the first), each
   * averaged over space; divided by widthDiv. Fewer dimensions suit FIDs of fewer images (a d-dim
   * covariance needs more than d of them) and stop the network early. The logits are unaffected.
   */
  featureDims?: 64 | 192 | 768 | 2048;
}

type Pair = number | [number, number];

export interface BasicConv2dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  gen: Generator;
}

/** torchvision's BasicConv2d: conv (no bias) → batch norm (eps 0.001) → ReLU. */
export class BasicConv2d extends Module<[Tensor], Tensor, BasicConv2dConfig> {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(ctx: GpuContext, config: BasicConv2dConfig) {
    super(ctx, config);
    this.conv = this.registerModule('conv', new Conv2d(ctx, { ...config, bias: false }));
    this.bn = this.registerModule('bn', new BatchNorm2d(ctx, { numFeatures: config.outChannels, eps: 0.001, activation: 'relu' }));
  }
  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

/** How a block's pool branch pools: torchvision's average, the FID one without padding, or max. */
type PoolKind = 'avg' | 'avg-nopad' | 'max';

function poolBranch(x: Tensor, kind: PoolKind): Tensor {
  if (kind === 'max') return maxPool2d(x, 3, 1, 1);
  return avgPool2d(x, 3, 1, 1, { countIncludePad: kind === 'avg' });
}

/** A module whose children (torchvision's attribute names) run by name, in chains. */
abstract class Named<C> extends Module<[Tensor], Tensor, C> {
  private readonly units = new Map<string, Module<[Tensor], Tensor, unknown>>();
  protected reg<M extends Module<[Tensor], Tensor, unknown>>(name: string, m: M): M {
    this.units.set(name, m);
    return this.registerModule(name, m as M & AnyModule);
  }
  /** Runs the named children in order on x. */
  protected chain(x: Tensor, ...names: string[]): Tensor {
    let h = x;
    for (const n of names) {
      const m = this.units.get(n);
      if (!m) throw new EngineError('Inception', `no unit '${n}'`);
      h = m.forward(h);
    }
    return h;
  }
}

/** A block of parallel branches whose outputs are concatenated along channels. */
abstract class Mixed extends Named<Record<string, unknown>> {
  protected gen: Generator;
  constructor(ctx: GpuContext, config: Record<string, unknown>, gen: Generator) {
    super(ctx, config);
    this.gen = gen;
  }
  protected unit(name: string, inChannels: number, outChannels: number, kernelSize: Pair, more: { stride?: Pair; padding?: Pair } = {}): BasicConv2d {
    return this.reg(name, new BasicConv2d(this.ctx, { inChannels, outChannels, kernelSize, ...more, gen: this.gen }));
  }
}

/** InceptionA (Mixed_5b-5d): 1x1, 5x5, double 3x3 and pool branches. */
class InceptionA extends Mixed {
  constructor(ctx: GpuContext, cin: number, poolFeatures: number, d: number, pool: PoolKind, gen: Generator) {
    super(ctx, { cin, poolFeatures, pool }, gen);
    this.unit('branch1x1', cin, 64 / d, 1);
    this.unit('branch5x5_1', cin, 48 / d, 1);
    this.unit('branch5x5_2', 48 / d, 64 / d, 5, { padding: 2 });
    this.unit('branch3x3dbl_1', cin, 64 / d, 1);
    this.unit('branch3x3dbl_2', 64 / d, 96 / d, 3, { padding: 1 });
    this.unit('branch3x3dbl_3', 96 / d, 96 / d, 3, { padding: 1 });
    this.unit('branch_pool', cin, poolFeatures, 1);
  }
  forward(x: Tensor): Tensor {
    return concat(
      [
        this.chain(x, 'branch1x1'),
        this.chain(x, 'branch5x5_1', 'branch5x5_2'),
        this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'),
        this.chain(poolBranch(x, this.config.pool as PoolKind), 'branch_pool'),
      ],
      1,
    );
  }
}

/** InceptionB (Mixed_6a): stride-2 reduction. */
class InceptionB extends Mixed {
  constructor(ctx: GpuContext, cin: number, d: number, gen: Generator) {
    super(ctx, { cin }, gen);
    this.unit('branch3x3', cin, 384 / d, 3, { stride: 2 });
    this.unit('branch3x3dbl_1', cin, 64 / d, 1);
    this.unit('branch3x3dbl_2', 64 / d, 96 / d, 3, { padding: 1 });
    this.unit('branch3x3dbl_3', 96 / d, 96 / d, 3, { stride: 2 });
  }
  forward(x: Tensor): Tensor {
    return concat([this.chain(x, 'branch3x3'), this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'), maxPool2d(x, 3, 2)], 1);
  }
}

/** InceptionC (Mixed_6b-6e): factorised 7x7 branches (1x7 and 7x1). */
class InceptionC extends Mixed {
  constructor(ctx: GpuContext, cin: number, c7: number, d: number, pool: PoolKind, gen: Generator) {
    super(ctx, { cin, c7, pool }, gen);
    const row = { padding: [0, 3] as [number, number] };
    const col = { padding: [3, 0] as [number, number] };
    this.unit('branch1x1', cin, 192 / d, 1);
    this.unit('branch7x7_1', cin, c7, 1);
    this.unit('branch7x7_2', c7, c7, [1, 7], row);
    this.unit('branch7x7_3', c7, 192 / d, [7, 1], col);
    this.unit('branch7x7dbl_1', cin, c7, 1);
    this.unit('branch7x7dbl_2', c7, c7, [7, 1], col);
    this.unit('branch7x7dbl_3', c7, c7, [1, 7], row);
    this.unit('branch7x7dbl_4', c7, c7, [7, 1], col);
    this.unit('branch7x7dbl_5', c7, 192 / d, [1, 7], row);
    this.unit('branch_pool', cin, 192 / d, 1);
  }
  forward(x: Tensor): Tensor {
    return concat(
      [
        this.chain(x, 'branch1x1'),
        this.chain(x, 'branch7x7_1', 'branch7x7_2', 'branch7x7_3'),
        this.chain(x, 'branch7x7dbl_1', 'branch7x7dbl_2', 'branch7x7dbl_3', 'branch7x7dbl_4', 'branch7x7dbl_5'),
        this.chain(poolBranch(x, this.config.pool as PoolKind), 'branch_pool'),
      ],
      1,
    );
  }
}

/** InceptionD (Mixed_7a): stride-2 reduction. */
class InceptionD extends Mixed {
  constructor(ctx: GpuContext, cin: number, d: number, gen: Generator) {
    super(ctx, { cin }, gen);
    this.unit('branch3x3_1', cin, 192 / d, 1);
    this.unit('branch3x3_2', 192 / d, 320 / d, 3, { stride: 2 });
    this.unit('branch7x7x3_1', cin, 192 / d, 1);
    this.unit('branch7x7x3_2', 192 / d, 192 / d, [1, 7], { padding: [0, 3] });
    this.unit('branch7x7x3_3', 192 / d, 192 / d, [7, 1], { padding: [3, 0] });
    this.unit('branch7x7x3_4', 192 / d, 192 / d, 3, { stride: 2 });
  }
  forward(x: Tensor): Tensor {
    return concat(
      [this.chain(x, 'branch3x3_1', 'branch3x3_2'), this.chain(x, 'branch7x7x3_1', 'branch7x7x3_2', 'branch7x7x3_3', 'branch7x7x3_4'), maxPool2d(x, 3, 2)],
      1,
    );
  }
}

/** InceptionE (Mixed_7b, 7c): expanded 1x3 / 3x1 branches. */
class InceptionE extends Mixed {
  constructor(ctx: GpuContext, cin: number, d: number, pool: PoolKind, gen: Generator) {
    super(ctx, { cin, pool }, gen);
    this.unit('branch1x1', cin, 320 / d, 1);
    this.unit('branch3x3_1', cin, 384 / d, 1);
    this.unit('branch3x3_2a', 384 / d, 384 / d, [1, 3], { padding: [0, 1] });
    this.unit('branch3x3_2b', 384 / d, 384 / d, [3, 1], { padding: [1, 0] });
    this.unit('branch3x3dbl_1', cin, 448 / d, 1);
    this.unit('branch3x3dbl_2', 448 / d, 384 / d, 3, { padding: 1 });
    this.unit('branch3x3dbl_3a', 384 / d, 384 / d, [1, 3], { padding: [0, 1] });
    this.unit('branch3x3dbl_3b', 384 / d, 384 / d, [3, 1], { padding: [1, 0] });
    this.unit('branch_pool', cin, 192 / d, 1);
  }
  forward(x: Tensor): Tensor {
    const b3 = this.chain(x, 'branch3x3_1');
    const bd = this.chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2');
    return concat(
      [
        this.chain(x, 'branch1x1'),
        concat([this.chain(b3, 'branch3x3_2a'), this.chain(b3, 'branch3x3_2b')], 1),
        concat([this.chain(bd, 'branch3x3dbl_3a'), this.chain(bd, 'branch3x3dbl_3b')], 1),
        this.chain(poolBranch(x, this.config.pool as PoolKind), 'branch_pool'),
      ],
      1,
    );
  }
}

/** InceptionAux on Mixed_6e: 5x5 stride-3 average pool, 1x1 and 5x5 convolutions, mean, fc. */
class InceptionAux extends Mixed {
  readonly fc: Linear;
  constructor(ctx: GpuContext, cin: number, numClasses: number, d: number, gen: Generator) {
    super(ctx, { cin, numClasses }, gen);
    this.unit('conv0', cin, 128 / d, 1);
    this.unit('conv1', 128 / d, 768 / d, 5);
    this.fc = this.reg('fc', new Linear(ctx, { inFeatures: 768 / d, outFeatures: numClasses, gen }));
  }
  forward(x: Tensor): Tensor {
    return this.fc.forward(globalAvgPool2d(this.chain(avgPool2d(x, 5, 3), 'conv0', 'conv1')));
  }
}

const STEM = ['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'] as const;
const STEM2 = ['Conv2d_3b_1x1', 'Conv2d_4a_3x3'] as const;
const MIXED_TO_AUX = ['Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'] as const;
const MIXED_AFTER_AUX = ['Mixed_7a', 'Mixed_7b', 'Mixed_7c'] as const;

/** Spatial size after the stem and Mixed_6a for input side s (the map the aux head sees). */
const auxMapSize = (s: number) => {
  const conv = (n: number, k: number, st: number, p = 0) => Math.floor((n + 2 * p - k) / st) + 1;
  const stem = conv(conv(conv(conv(s, 3, 2), 3, 1), 3, 1, 1), 3, 2); // 1a, 2a, 2b, maxpool
  return conv(conv(conv(stem, 3, 1), 3, 2), 3, 2); // 4a, maxpool, Mixed_6a
};

/**
 * Inception-v3. forward: x [N, 3, H, W] (H, W >= 75) -> logits [N, numClasses]; features(x) ->
 * the pooled [N, 2048 / widthDiv] vector before dropout and fc; forwardWithAux(x) also returns the aux
 * head's logits in training mode. forward never runs the aux head (a training loop that calls it
 * leaves AuxLogits untouched; torchvision's recipe adds 0.4 x the aux loss through forwardWithAux).
 */
export class InceptionV3 extends Named<InceptionV3Options> {
  readonly options: Required<InceptionV3Options>;
  readonly AuxLogits: InceptionAux | null;
  readonly fc: Linear;
  private readonly gen: Generator;
  constructor(ctx: GpuContext, opts: InceptionV3Options = {}) {
    super(ctx, opts);
    const fid = opts.fid ?? false;
    const o: Required<InceptionV3Options> = {
      numClasses: opts.numClasses ?? (fid ? 1008 : 1000),
      auxLogits: opts.auxLogits ?? !fid,
      transformInput: opts.transformInput ?? false,
      fid,
      widthDiv: opts.widthDiv ?? 1,
      dropout: opts.dropout ?? 0.5,
      seed: opts.seed ?? 0,
      featureDims: opts.featureDims ?? 2048,
    };
    if (![64, 192, 768, 2048].includes(o.featureDims)) throw new EngineError('InceptionV3', `featureDims must be 64, 192, 768 or 2048 (pytorch-fid's --dims), got ${JSON.stringify(o.featureDims)}`);
    if (!Number.isInteger(o.numClasses) || o.numClasses < 1) throw new EngineError('InceptionV3', `numClasses must be a positive integer, got ${o.numClasses}`);
    if (![1, 2, 4, 8, 16].includes(o.widthDiv)) throw new EngineError('InceptionV3', `widthDiv must be 1, 2, 4, 8 or 16 (every channel count divides by 16), got ${o.widthDiv}`);
    if (!(o.dropout >= 0 && o.dropout < 1)) throw new EngineError('InceptionV3', `dropout must be in [0, 1), got ${o.dropout}`);
    for (const k of ['auxLogits', 'transformInput', 'fid'] as const)
      if (typeof o[k] !== 'boolean') throw new EngineError('InceptionV3', `${k} must be true or false, got ${JSON.stringify(o[k])}`);
    this.options = o;
    const gen = new Generator(o.seed);
    const d = o.widthDiv;
    const basic = (name: string, cin: number, cout: number, k: number, more: { stride?: number; padding?: number } = {}) =>
      this.reg(name, new BasicConv2d(ctx, { inChannels: cin, outChannels: cout, kernelSize: k, ...more, gen }));
    basic('Conv2d_1a_3x3', 3, 32 / d, 3, { stride: 2 });
    basic('Conv2d_2a_3x3', 32 / d, 32 / d, 3);
    basic('Conv2d_2b_3x3', 32 / d, 64 / d, 3, { padding: 1 });
    basic('Conv2d_3b_1x1', 64 / d, 80 / d, 1);
    basic('Conv2d_4a_3x3', 80 / d, 192 / d, 3);
    const avg: PoolKind = fid ? 'avg-nopad' : 'avg';
    this.reg('Mixed_5b', new InceptionA(ctx, 192 / d, 32 / d, d, avg, gen));
    this.reg('Mixed_5c', new InceptionA(ctx, 256 / d, 64 / d, d, avg, gen));
    this.reg('Mixed_5d', new InceptionA(ctx, 288 / d, 64 / d, d, avg, gen));
    this.reg('Mixed_6a', new InceptionB(ctx, 288 / d, d, gen));
    this.reg('Mixed_6b', new InceptionC(ctx, 768 / d, 128 / d, d, avg, gen));
    this.reg('Mixed_6c', new InceptionC(ctx, 768 / d, 160 / d, d, avg, gen));
    this.reg('Mixed_6d', new InceptionC(ctx, 768 / d, 160 / d, d, avg, gen));
    this.reg('Mixed_6e', new InceptionC(ctx, 768 / d, 192 / d, d, avg, gen));
    this.AuxLogits = o.auxLogits ? this.registerModule('AuxLogits', new InceptionAux(ctx, 768 / d, o.numClasses, d, gen)) : null;
    this.reg('Mixed_7a', new InceptionD(ctx, 768 / d, d, gen));
    this.reg('Mixed_7b', new InceptionE(ctx, 1280 / d, d, avg, gen));
    this.reg('Mixed_7c', new InceptionE(ctx, 2048 / d, d, fid ? 'max' : 'avg', gen));
    this.gen = gen; // draws the dropout masks (torchvision's Dropout module has no state to name)
    this.fc = this.registerModule('fc', new Linear(ctx, { inFeatures: 2048 / d, outFeatures: o.numClasses, gen }));
  }

  private check(x: Tensor): void {
    if (x.rank !== 4 || x.shape[1] !== 3) throw new EngineError('InceptionV3', `expected input [N, 3, H, W], got ${x.describe()}`);
    const [, , h, w] = x.shape as [number, number, number, number];
    if (h < 75 || w < 75) throw new EngineError('InceptionV3', `input ${h}x${w} is smaller than the 75x75 the network needs (it was trained on 299x299): resize first`);
  }

  /** transform_input's per-channel scale and shift [1, 3, 1, 1], uploaded once (not state: torchvision has none). */
  private affine: { scale: Tensor; shift: Tensor } | null = null;

  /** torchvision's transform_input: ImageNet-normalised channels to (x - 0.5) / 0.5. */
  private transform(x: Tensor): Tensor {
    if (!this.affine) {
      const mean = [0.485, 0.456, 0.406];
      const std = [0.229, 0.224, 0.225];
      this.affine = {
        scale: this.ctx.keep(tensor(this.ctx, std.map((s) => s / 0.5), [1, 3, 1, 1])),
        shift: this.ctx.keep(tensor(this.ctx, mean.map((m) => (m - 0.5) / 0.5), [1, 3, 1, 1])),
      };
    }
    return add(mul(x, this.affine.scale), this.affine.shift);
  }

  override dispose(): void {
    this.affine?.scale.dispose();
    this.affine?.shift.dispose();
    this.affine = null;
    super.dispose();
  }

  /** pytorch-fid's block 0: the first max pool's output [N, 64 / widthDiv, 73, 73] for 299x299 input. */
  private block0(x: Tensor): Tensor {
    this.check(x);
    const h = this.options.transformInput ? this.transform(x) : x;
    return maxPool2d(this.chain(h, ...STEM), 3, 2);
  }

  /** Block 1: the second max pool's output [N, 192 / widthDiv, 35, 35]. */
  private block1(h0: Tensor): Tensor {
    return maxPool2d(this.chain(h0, ...STEM2), 3, 2);
  }

  /** Mixed_6e's output [N, 768 / widthDiv, 17, 17] for 299x299 input. */
  private trunk(x: Tensor): Tensor {
    return this.chain(this.block1(this.block0(x)), ...MIXED_TO_AUX);
  }

  private head(h6e: Tensor): Tensor {
    return globalAvgPool2d(this.chain(h6e, ...MIXED_AFTER_AUX));
  }

  /**
   * Spatially averaged features [N, featureDims / widthDiv] (default 2048: pytorch-fid's pool3 with
   * fid), running the network only as far as they need.
   */
  features(x: Tensor): Tensor {
    return this.featuresAt(x, this.options.featureDims);
  }

  /** The features pytorch-fid's --dims names (64, 192, 768 or 2048), spatially averaged. */
  featuresAt(x: Tensor, dims: 64 | 192 | 768 | 2048): Tensor {
    const h0 = this.block0(x);
    if (dims === 64) return globalAvgPool2d(h0);
    const h1 = this.block1(h0);
    if (dims === 192) return globalAvgPool2d(h1);
    const h2 = this.chain(h1, ...MIXED_TO_AUX);
    if (dims === 768) return globalAvgPool2d(h2);
    if (dims !== 2048) throw new EngineError('InceptionV3', `feature dims must be 64, 192, 768 or 2048, got ${dims}`);
    return this.head(h2);
  }

  private classify(f: Tensor): Tensor {
    return this.fc.forward(this.options.dropout > 0 ? dropout(f, this.options.dropout, this.gen, this.training) : f);
  }

  forward(x: Tensor): Tensor {
    return this.classify(this.head(this.trunk(x)));
  }

  /** Logits and, in training mode with the aux head, the aux logits (torchvision's InceptionOutputs). */
  forwardWithAux(x: Tensor): { logits: Tensor; aux: Tensor | null } {
    const withAux = this.training && this.AuxLogits;
    if (withAux && x.rank === 4) {
      const s = Math.min(x.shape[2]!, x.shape[3]!);
      if (auxMapSize(s) < 17)
        throw new EngineError('InceptionV3', `the aux head needs a 17x17 Mixed_6e map (299x299 input); input ${x.shape[2]}x${x.shape[3]} gives ${auxMapSize(s)}x${auxMapSize(s)}`);
    }
    const h6e = this.trunk(x);
    const aux = withAux ? this.AuxLogits!.forward(h6e) : null;
    return { logits: this.classify(this.head(h6e)), aux };
  }
}
