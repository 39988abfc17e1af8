// Swin Transformer v1 with torchvision's module and parameter names (`swin_t`: patch 4, embed 96,
// depths [2, 2, 6, 2], heads [3, 6, 12, 24], window 7), configurable for small CPU runs, so a
// torchvision state_dict loads strictly. Padding follows torchvision (not the original Swin code): a
// window is never shrunk; the channels-last map is zero-padded on the bottom/right to a multiple of
// the window (padded tokens take part in attention unmasked), and the shift along a side is 0 only
// when the window covers that whole padded side. (ARCHITECTURES.md says the window shrinks to a small
// side; torchvision does not do that, and the golden fixture follows torchvision.)
// It does not build Swin v2 (log-spaced CPB, scaled cosine attention).
//
// Letters: N batch, H W map size (pH pW padded), C channels, M = wh·ww tokens per window, nW windows
// per image, K heads, D = C / K head width.

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import {
  add,
  dropPath,
  indexSelect,
  mean,
  randn,
  reshape,
  tensor,
  transpose,
} from '../ops/index.js';
import { Module } from '../nn/module.js';
import { Activation, Conv2d, Dropout, Identity, LayerNorm, Linear, Sequential } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import { Generator } from '../util/rng.js';
import { Permute, gatherRows, initLinear, inverseIndex, packedSelfAttention } from './transformer-parts.js';

export interface SwinOptions {
  /** Side of the square patch of the stem conv (default 4; a [p, p] pair is accepted). */
  patchSize?: number | [number, number];
  /** Channels of stage 1 (default 96); stage i has embedDim·2^i. */
  embedDim?: number;
  /** Blocks per stage (default [2, 2, 6, 2]). */
  depths?: number[];
  /** Heads per stage (default [3, 6, 12, 24]); each must divide its stage's width. */
  numHeads?: number[];
  /** Window [wh, ww] or a side (default 7). */
  windowSize?: number | [number, number];
  /** MLP hidden width / C (default 4). */
  mlpRatio?: number;
  /** Dropout after the attention projection and in the MLP (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities (default 0). */
  attentionDropout?: number;
  /** Drop-path probability, rising linearly from 0 to this over all blocks (default 0.2, as swin_t). */
  stochasticDepthProb?: number;
  /** Output classes (default 1000). */
  numClasses?: number;
  /** Input channels (default 3; torchvision's is fixed at 3). */
  inChannels?: number;
  /** Seed of the initialisation and of the dropout/drop-path draws (default 0). */
  seed?: number;
}

type Pair = [number, number];
const pair = (v: number | Pair, what: string): Pair => {
  const p: Pair = typeof v === 'number' ? [v, v] : [v[0]!, v[1]!];
  if (!(Array.isArray(v) ? v.length === 2 : true) || !p.every((n) => Number.isInteger(n) && n > 0))
    throw new EngineError('SwinTransformer', `${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  return p;
};

/** torchvision's relative_position_index of a wh x ww window: [M·M] entries into the (2wh−1)(2ww−1) table. */
export function relativePositionIndex(wh: number, ww: number): Int32Array {
  const M = wh * ww;
  const out = new Int32Array(M * M);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < M; j++) {
      const dh = Math.floor(i / ww) - Math.floor(j / ww) + wh - 1;
      const dw = (i % ww) - (j % ww) + ww - 1;
      out[i * M + j] = dh * (2 * ww - 1) + dw;
    }
  return out;
}

/** Python's slice bounds [a:b] on a length-n axis (negative from the end, -0 is 0, null = end). */
const pyRange = (a: number, b: number | null, n: number): [number, number] => {
  const fix = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  return [fix(a), b === null ? n : fix(b)];
};

/**
 * torchvision's shifted-window attention mask for a pH x pW padded map: [nW, M, M], 0 between tokens
 * of the same region and −100 between different ones (regions as torchvision labels them).
 */
export function shiftedWindowMask(pH: number, pW: number, wh: number, ww: number, sh: number, sw: number): Float32Array {
  const label = new Int32Array(pH * pW);
  const hs: [number, number | null][] = [[0, -wh], [-wh, -sh], [-sh, null]];
  const ws: [number, number | null][] = [[0, -ww], [-ww, -sw], [-sw, null]];
  let count = 0;
  for (const [h0, h1] of hs)
    for (const [w0, w1] of ws) {
      const [ya, yb] = pyRange(h0, h1, pH);
      const [xa, xb] = pyRange(w0, w1, pW);
      for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) label[y * pW + x] = count;
      count++;
    }
  const nh = pH / wh;
  const nw = pW / ww;
  const M = wh * ww;
  const out = new Float32Array(nh * nw * M * M);
  for (let wy = 0; wy < nh; wy++)
    for (let wx = 0; wx < nw; wx++) {
      const w = wy * nw + wx;
      const lab = (t: number) => label[(wy * wh + Math.floor(t / ww)) * pW + wx * ww + (t % ww)]!;
      for (let i = 0; i < M; i++) for (let j = 0; j < M; j++) out[(w * M + i) * M + j] = lab(i) === lab(j) ? 0 : -100;
    }
  return out;
}

/**
 * Token rows for torchvision's pad -> roll(-shift) -> window partition of an H x W map: entry
 * w·M + t is the map token (row-major, H·W = the zero row) that lands at token t of window w.
 */
export function windowIndex(H: number, W: number, wh: number, ww: number, sh: number, sw: number): Int32Array {
  const pH = H + ((wh - (H % wh)) % wh);
  const pW = W + ((ww - (W % ww)) % ww);
  const nw = pW / ww;
  const M = wh * ww;
  const out = new Int32Array(pH * pW);
  for (let w = 0; w < (pH / wh) * nw; w++)
    for (let t = 0; t < M; t++) {
      // rolled map position p reads padded position (p + shift) mod side
      const y = (Math.floor(w / nw) * wh + Math.floor(t / ww) + sh) % pH;
      const x = ((w % nw) * ww + (t % ww) + sw) % pW;
      out[w * M + t] = y < H && x < W ? y * W + x : H * W;
    }
  return out;
}

export interface ShiftedWindowAttentionConfig {
  dim: number;
  window: Pair;
  shift: Pair;
  numHeads: number;
  attentionDropout: number;
  dropout: number;
  gen: Generator;
}

/** torchvision ShiftedWindowAttention: x [N, H, W, C] -> same shape. */
export class ShiftedWindowAttention extends Module<[Tensor], Tensor, ShiftedWindowAttentionConfig> {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly relativePositionBiasTable: Tensor;
  private readonly drop: Module;
  constructor(ctx: GpuContext, config: ShiftedWindowAttentionConfig) {
    super(ctx, config);
    const { dim: C, window: [wh, ww], numHeads: K, gen } = config;
    if (C % K !== 0) throw new EngineError('ShiftedWindowAttention', `${K} heads do not divide the width ${C}`);
    this.qkv = this.registerModule('qkv', truncLinear(ctx, C, 3 * C, true, gen));
    this.proj = this.registerModule('proj', truncLinear(ctx, C, C, true, gen));
    this.relativePositionBiasTable = this.registerParameter('relative_position_bias_table', randn(ctx, [(2 * wh - 1) * (2 * ww - 1), K], gen, 0, 0.02));
    this.registerBuffer('relative_position_index', tensor(ctx, relativePositionIndex(wh, ww), [wh * ww * wh * ww], 'i32'));
    this.drop = config.dropout > 0 ? new Dropout(ctx, { p: config.dropout, gen }) : new Identity(ctx);
  }

  /** The relative position bias [1, K, M, M] gathered from the table. */
  positionBias(): Tensor {
    const [wh, ww] = this.config.window;
    const M = wh * ww;
    const K = this.config.numHeads;
    // table [T, K] -> [K, T] (small), then bias[k, i, j] = tableᵀ[k, index[i·M + j]]
    const b = indexSelect(transpose(this.relativePositionBiasTable, 0, 1), 1, this.getBuffer('relative_position_index')); // [K, M·M]
    return reshape(b, [1, K, M, M]);
  }

  forward(x: Tensor): Tensor {
    const { window: [wh, ww], numHeads: K, dim: C } = this.config;
    if (x.rank !== 4 || x.shape[3] !== C) throw new EngineError('ShiftedWindowAttention', `expected [N, H, W, ${C}], got ${x.describe()}`);
    const [N, H, W] = x.shape as [number, number, number, number];
    const pH = H + ((wh - (H % wh)) % wh);
    const pW = W + ((ww - (W % ww)) % ww);
    // torchvision: no shift along a side the window covers completely
    const sh = wh >= pH ? 0 : this.config.shift[0];
    const sw = ww >= pW ? 0 : this.config.shift[1];
    const M = wh * ww;
    const nW = (pH / wh) * (pW / ww);
    const index = windowIndex(H, W, wh, ww, sh, sw);
    // pad, roll(-shift) and window partition in one gather: [N, H·W, C] -> [N·nW, M, C]
    const win = reshape(gatherRows(reshape(x, [N, H * W, C]), 1, index), [N * nW, M, C]);
    const mask = sh + sw > 0 ? tensor(this.ctx, shiftedWindowMask(pH, pW, wh, ww, sh, sw), [nW, M, M]) : undefined;
    const merged = packedSelfAttention(this.qkv.forward(win), K, {
      bias: this.positionBias(),
      mask,
      dropout: this.config.attentionDropout,
      generator: this.config.gen,
      training: this.training,
    }); // [N·nW, M, C]
    const y = this.drop.forward(this.proj.forward(merged)); // [Bw, M, C]
    // window reverse, roll(+shift) and unpad: the inverse gather
    return reshape(gatherRows(reshape(y, [N, nW * M, C]), 1, inverseIndex(index, H * W)), [N, H, W, C]);
  }
}

/** Linear with torchvision's transformer init: weight trunc_normal(std 0.02) (its ±2 bounds are 100σ: a plain normal), bias 0. */
export function truncLinear(ctx: GpuContext, inF: number, outF: number, bias: boolean, gen: Generator): Linear {
  return initLinear(new Linear(ctx, { inFeatures: inF, outFeatures: outF, bias, gen }), 0.02, gen);
}

export interface SwinBlockConfig {
  dim: number;
  numHeads: number;
  window: Pair;
  shift: Pair;
  mlpRatio: number;
  dropout: number;
  attentionDropout: number;
  stochasticDepth: number;
  gen: Generator;
}

/** torchvision SwinTransformerBlock: x + dp(attn(norm1(x))), then + dp(mlp(norm2(x))). x [N, H, W, C]. */
export class SwinTransformerBlock extends Module<[Tensor], Tensor, SwinBlockConfig> {
  readonly norm1: LayerNorm;
  readonly attn: ShiftedWindowAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Sequential;
  constructor(ctx: GpuContext, config: SwinBlockConfig) {
    super(ctx, config);
    const { dim: C, gen } = config;
    this.norm1 = this.registerModule('norm1', new LayerNorm(ctx, { normalizedShape: C, eps: 1e-5 }));
    this.attn = this.registerModule(
      'attn',
      new ShiftedWindowAttention(ctx, { dim: C, window: config.window, shift: config.shift, numHeads: config.numHeads, attentionDropout: config.attentionDropout, dropout: config.dropout, gen }),
    );
    this.norm2 = this.registerModule('norm2', new LayerNorm(ctx, { normalizedShape: C, eps: 1e-5 }));
    const hidden = Math.floor(C * config.mlpRatio);
    const drop = () => (config.dropout > 0 ? new Dropout(ctx, { p: config.dropout, gen }) : new Identity(ctx));
    this.mlp = this.registerModule(
      'mlp',
      new Sequential(ctx, [truncLinear(ctx, C, hidden, true, gen), new Activation(ctx, { kind: 'gelu' }), drop(), truncLinear(ctx, hidden, C, true, gen), drop()]),
    );
  }
  forward(x: Tensor): Tensor {
    const p = this.config.stochasticDepth;
    const g = this.config.gen;
    const h = add(x, dropPath(this.attn.forward(this.norm1.forward(x)), p, g, this.training));
    return add(h, dropPath(this.mlp.forward(this.norm2.forward(h)), p, g, this.training));
  }
}

/** torchvision PatchMerging: [N, H, W, C] -> [N, ceil(H/2), ceil(W/2), 2C]. */
export class PatchMerging extends Module<[Tensor], Tensor, { dim: number; gen: Generator }> {
  readonly reduction: Linear;
  readonly norm: LayerNorm;
  constructor(ctx: GpuContext, config: { dim: number; gen: Generator }) {
    super(ctx, config);
    const C = config.dim;
    this.reduction = this.registerModule('reduction', truncLinear(ctx, 4 * C, 2 * C, false, config.gen));
    this.norm = this.registerModule('norm', new LayerNorm(ctx, { normalizedShape: 4 * C, eps: 1e-5 }));
  }
  forward(x: Tensor): Tensor {
    const [N, H, W, C] = x.shape as [number, number, number, number];
    const [h2, w2] = [Math.ceil(H / 2), Math.ceil(W / 2)];
    // x0 = [0::2, 0::2], x1 = [1::2, 0::2], x2 = [0::2, 1::2], x3 = [1::2, 1::2] of the map padded to
    // even sides, concatenated on C: one gather of C-rows
    const index = new Int32Array(h2 * w2 * 4);
    const OFF = [[0, 0], [1, 0], [0, 1], [1, 1]] as const;
    for (let i = 0; i < h2; i++)
      for (let j = 0; j < w2; j++)
        OFF.forEach(([dy, dx], q) => {
          const y = 2 * i + dy;
          const xx = 2 * j + dx;
          index[(i * w2 + j) * 4 + q] = y < H && xx < W ? y * W + xx : H * W;
        });
    const cat = reshape(gatherRows(reshape(x, [N, H * W, C]), 1, index), [N, h2, w2, 4 * C]);
    return this.reduction.forward(this.norm.forward(cat));
  }
}

/** Swin Transformer (v1). forward: x [N, inChannels, H, W] -> logits [N, numClasses]; any H, W ≥ patch. */
export class SwinTransformer extends Module<[Tensor], Tensor, SwinOptions> {
  readonly options: Required<Omit<SwinOptions, 'patchSize' | 'windowSize'>> & { patchSize: Pair; windowSize: Pair };
  readonly features: Sequential;
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(ctx: GpuContext, opts: SwinOptions = {}) {
    super(ctx, opts);
    const op = 'SwinTransformer';
    const o = {
      patchSize: pair(opts.patchSize ?? 4, 'patchSize'),
      embedDim: opts.embedDim ?? 96,
      depths: opts.depths ?? [2, 2, 6, 2],
      numHeads: opts.numHeads ?? [3, 6, 12, 24],
      windowSize: pair(opts.windowSize ?? 7, 'windowSize'),
      mlpRatio: opts.mlpRatio ?? 4,
      dropout: opts.dropout ?? 0,
      attentionDropout: opts.attentionDropout ?? 0,
      stochasticDepthProb: opts.stochasticDepthProb ?? 0.2,
      numClasses: opts.numClasses ?? 1000,
      inChannels: opts.inChannels ?? 3,
      seed: opts.seed ?? 0,
    };
    for (const k of ['embedDim', 'numClasses', 'inChannels'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new EngineError(op, `${k} must be a positive integer, got ${o[k]}`);
    if (o.patchSize[0] !== o.patchSize[1]) throw new EngineError(op, `patchSize must be square, got [${o.patchSize.join(', ')}]`);
    if (!Array.isArray(o.depths) || o.depths.length === 0 || !o.depths.every((d) => Number.isInteger(d) && d > 0))
      throw new EngineError(op, `depths must be a non-empty list of positive integers, got ${JSON.stringify(o.depths)}`);
    if (!Array.isArray(o.numHeads) || o.numHeads.length !== o.depths.length)
      throw new EngineError(op, `numHeads ${JSON.stringify(o.numHeads)} must list one head count per stage (${o.depths.length})`);
    o.numHeads.forEach((k, i) => {
      const C = o.embedDim * 2 ** i;
      if (!Number.isInteger(k) || k < 1 || C % k !== 0) throw new EngineError(op, `stage ${i + 1}: ${k} heads do not divide its width ${C}`);
    });
    for (const k of ['dropout', 'attentionDropout', 'stochasticDepthProb'] as const)
      if (!(o[k] >= 0 && o[k] < 1)) throw new EngineError(op, `${k} must be in [0, 1), got ${o[k]}`);
    if (!(o.mlpRatio > 0)) throw new EngineError(op, `mlpRatio must be positive, got ${o.mlpRatio}`);
    this.options = o;
    const gen = new Generator(o.seed);
    const P = o.patchSize[0];
    const layers: Module[] = [
      new Sequential(ctx, [
        new Conv2d(ctx, { inChannels: o.inChannels, outChannels: o.embedDim, kernelSize: P, stride: P, gen }),
        new Permute(ctx, { dims: [0, 2, 3, 1] }),
        new LayerNorm(ctx, { normalizedShape: o.embedDim, eps: 1e-5 }),
      ]),
    ];
    const total = o.depths.reduce((a, b) => a + b, 0);
    let id = 0;
    o.depths.forEach((depth, i) => {
      const dim = o.embedDim * 2 ** i;
      const blocks: Module[] = [];
      for (let j = 0; j < depth; j++) {
        const shift: Pair = j % 2 === 0 ? [0, 0] : [Math.floor(o.windowSize[0] / 2), Math.floor(o.windowSize[1] / 2)];
        const sd = total > 1 ? (o.stochasticDepthProb * id) / (total - 1) : 0;
        blocks.push(
          new SwinTransformerBlock(ctx, { dim, numHeads: o.numHeads[i]!, window: o.windowSize, shift, mlpRatio: o.mlpRatio, dropout: o.dropout, attentionDropout: o.attentionDropout, stochasticDepth: sd, gen }),
        );
        id++;
      }
      layers.push(new Sequential(ctx, blocks));
      if (i < o.depths.length - 1) layers.push(new PatchMerging(ctx, { dim, gen }));
    });
    this.features = this.registerModule('features', new Sequential(ctx, layers));
    const F = o.embedDim * 2 ** (o.depths.length - 1);
    this.norm = this.registerModule('norm', new LayerNorm(ctx, { normalizedShape: F, eps: 1e-5 }));
    this.head = this.registerModule('head', truncLinear(ctx, F, o.numClasses, true, gen));
  }

  /** Pooled features before the head: [N, embedDim·2^(stages−1)]. */
  featuresOf(x: Tensor): Tensor {
    const o = this.options;
    if (x.rank !== 4 || x.shape[1] !== o.inChannels)
      throw new EngineError('SwinTransformer', `expected input [N, ${o.inChannels}, H, W], got ${x.describe()}`);
    if (x.shape[2]! < o.patchSize[0] || x.shape[3]! < o.patchSize[1])
      throw new EngineError('SwinTransformer', `input ${x.describe()} is smaller than one ${o.patchSize[0]}x${o.patchSize[1]} patch`);
    // norm -> permute -> AdaptiveAvgPool2d(1) -> flatten is the mean over H, W of the channels-last map
    return mean(this.norm.forward(this.features.forward(x)), [1, 2]);
  }

  forward(x: Tensor): Tensor {
    return this.head.forward(this.featuresOf(x));
  }
}

/** torchvision swin_t's architecture (random init; no ImageNet weights are shipped). */
export function swinT(ctx: GpuContext, opts: SwinOptions = {}): SwinTransformer {
  return new SwinTransformer(ctx, opts);
}
