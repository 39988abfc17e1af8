// DiT, the diffusion transformer with adaLN-Zero conditioning (facebookresearch/DiT models.py, the same
// as the SFR-on authors' DiT/models.py), with its state-dict names, run in pixel space on small images
// (no VAE weights can be had here). It follows the noise-predictor interface of common.ts:
//   forward(x f32 [N, C, S, S], t i32 [N] in [0, numTimesteps), y i32 [N] in [0, numClasses])
//   -> f32 [N, outChannels, S, S], outChannels = 2C with learnSigma (the reference's default: the first
//   C channels are eps, the rest the variance interpolation), C without. y = numClasses is the null
//   class (row numClasses of y_embedder.embedding_table, present when classDropoutProb > 0).
//   guided(x, t, y, s): the reference's forward_with_cfg per sample: on the first C channels
//   u + s·(c − u) (c = with y, u = with the null class), the other channels from c. s = 1 + w in the
//   UNet's (1 + w)·c − w·u convention.
// Label dropout in training (the reference's token_drop) is the caller's: the module never draws
// classes (y = numClasses where a label is dropped).
//
// Names: x_embedder.proj (Conv2d k = s = patch), pos_embed (fixed 2-D sin-cos [1, T, D], a buffer here:
// in the state dict, never trained; the reference holds it as a frozen nn.Parameter), t_embedder.mlp.0
// / .2, y_embedder.embedding_table, blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2,
// adaLN_modulation.1}, final_layer.{norm_final, linear, adaLN_modulation.1}.
// Initialisation as the reference: xavier-uniform linears (and patch conv as a matrix) with zero
// biases, N(0, 0.02) label table and timestep MLP weights, zero adaLN modulations and final linear.
// The timestep frequency embedding (256 wide, [cos, sin]) is a float64 table for i32 timesteps.
//
// Letters: N batch, C channels, S image size, p patch, G = S/p grid, T = G² tokens, D hidden, H heads.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';
import { add, addScalar, attention, concat, full, geluTanh, mul, mulScalar, narrow, permute, randn, reshape, sub, tensor, transpose } from '../../ops/index.js';
import { Module, constantInit, uniformInit } from '../../nn/module.js';
import { Activation, Conv2d, Embedding, LayerNorm, Linear, Sequential } from '../../nn/layers/index.js';
import { ModuleList, Namespace, TimestepEmbedding, checkNoiseInputs } from './common.js';

export interface DiTOptions {
  /** Image size S (default 32, the reference's latent size). */
  inputSize?: number;
  /** Patch size p dividing S (default 2). */
  patchSize?: number;
  /** Image channels C (default 4, the reference's latent channels; 3 or 1 in pixel space). */
  inChannels?: number;
  /** Width D (default 1152). */
  hiddenSize?: number;
  /** Transformer blocks (default 28). */
  depth?: number;
  /** Attention heads dividing D (default 16). */
  numHeads?: number;
  /** MLP width = D·mlpRatio (default 4). */
  mlpRatio?: number;
  /** > 0 adds the null-class row to the label table (default 0.1); the drop itself is the caller's. */
  classDropoutProb?: number;
  /** Classes K (default 1000). */
  numClasses?: number;
  /** Predict the variance too: 2C output channels (default true). */
  learnSigma?: boolean;
  /** Diffusion steps T: timesteps are in [0, T) (default 1000; not a reference argument). */
  numTimesteps?: number;
  /** Seed of the initialisation (default 0). */
  seed?: number;
}

const FREQ_DIM = 256;
const LN_EPS = 1e-6;

/** Overwrite a freshly built module's tensors with `values` (all of them), then free the sources. */
function reinit(m: { loadStateDict: Module['loadStateDict'] }, values: [string, Tensor][]): void {
  m.loadStateDict(new Map(values));
  for (const [, t] of values) t.dispose();
}

/** Xavier-uniform [out, in] weight (bound sqrt(6 / (in + out))) and zero bias. */
function xavierLinear(ctx: GpuContext, inF: number, outF: number, gen: Generator, zero = false): Linear {
  const l = new Linear(ctx, { inFeatures: inF, outFeatures: outF, gen });
  const w = zero ? constantInit(ctx, [outF, inF], 0) : uniformInit(ctx, [outF, inF], Math.sqrt(6 / (inF + outF)), gen);
  reinit(l, [['weight', w], ['bias', constantInit(ctx, [outF], 0)]]);
  return l;
}

/** Fixed 2-D sin-cos position table [T, D] in float64 (token r·G + c: first D/2 code the column, last D/2 the row). */
export function sincosPosEmbed(D: number, G: number): Float64Array {
  if (D % 4 !== 0) throw new EngineError('DiT', `hiddenSize ${D} must be divisible by 4 (2-D sin-cos position embedding)`);
  const out = new Float64Array(G * G * D);
  const q = D / 4; // frequencies per axis
  for (let r = 0; r < G; r++)
    for (let c = 0; c < G; c++) {
      const row = (r * G + c) * D;
      for (let k = 0; k < q; k++) {
        const w = 1 / Math.pow(10000, k / q);
        out[row + k] = Math.sin(c * w);
        out[row + q + k] = Math.cos(c * w);
        out[row + 2 * q + k] = Math.sin(r * w);
        out[row + 3 * q + k] = Math.cos(r * w);
      }
    }
  return out;
}

/** x·(1 + scale) + shift with scale, shift [N, 1, D] over x [N, T, D]. */
const modulate = (x: Tensor, shift: Tensor, scale: Tensor) => add(mul(x, addScalar(scale, 1)), shift);

/** The k-th of `parts` equal chunks of m [N, parts·D] along the features, as [N, 1, D]. */
function chunk(m: Tensor, parts: number, k: number): Tensor {
  const [N, W] = m.shape as [number, number];
  const D = W / parts;
  return reshape(narrow(m, 1, k * D, D), [N, 1, D]);
}

interface BlockConfig {
  D: number;
  heads: number;
  mlpRatio: number;
  gen: Generator;
}

/** Multi-head self-attention: qkv linear, per-head scaled dot product, proj. x [N, T, D] -> same. */
class Attention extends Module<[Tensor], Tensor, BlockConfig> {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(ctx: GpuContext, config: BlockConfig) {
    super(ctx, config);
    this.qkv = this.registerModule('qkv', xavierLinear(ctx, config.D, 3 * config.D, config.gen));
    this.proj = this.registerModule('proj', xavierLinear(ctx, config.D, config.D, config.gen));
  }
  forward(x: Tensor): Tensor {
    const [N, T, D] = x.shape as [number, number, number];
    const H = this.config.heads;
    const Dh = D / H;
    // [N, T, 3, H, Dh] -> [3, N, H, T, Dh]
    const qkv = permute(reshape(this.qkv.forward(x), [N, T, 3, H, Dh]), [2, 0, 3, 1, 4]);
    const part = (i: number) => reshape(narrow(qkv, 0, i, 1), [N, H, T, Dh]);
    const o = attention(part(0), part(1), part(2)); // [N, H, T, Dh], scale Dh^-1/2
    return this.proj.forward(reshape(transpose(o, 1, 2), [N, T, D]));
  }
}

/** fc1, GELU (tanh approximation), fc2. */
class Mlp extends Module<[Tensor], Tensor, BlockConfig> {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(ctx: GpuContext, config: BlockConfig) {
    super(ctx, config);
    const hidden = Math.trunc(config.D * config.mlpRatio);
    this.fc1 = this.registerModule('fc1', xavierLinear(ctx, config.D, hidden, config.gen));
    this.fc2 = this.registerModule('fc2', xavierLinear(ctx, hidden, config.D, config.gen));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(geluTanh(this.fc1.forward(x)));
  }
}

/** SiLU then Linear(D, parts·D), zero-initialised (names adaLN_modulation.1). */
function adaLN(ctx: GpuContext, D: number, parts: number, gen: Generator): Sequential {
  return new Sequential(ctx, [new Activation(ctx, { kind: 'silu' }), xavierLinear(ctx, D, parts * D, gen, true)]);
}

/** DiT block with adaLN-Zero: x [N, T, D], c [N, D] -> [N, T, D]. */
export class DiTBlock extends Module<[Tensor, Tensor], Tensor, BlockConfig> {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly adaLN_modulation: Sequential;
  constructor(ctx: GpuContext, config: BlockConfig) {
    super(ctx, config);
    const ln = () => new LayerNorm(ctx, { normalizedShape: config.D, eps: LN_EPS, elementwiseAffine: false });
    this.norm1 = this.registerModule('norm1', ln());
    this.attn = this.registerModule('attn', new Attention(ctx, config));
    this.norm2 = this.registerModule('norm2', ln());
    this.mlp = this.registerModule('mlp', new Mlp(ctx, config));
    this.adaLN_modulation = this.registerModule('adaLN_modulation', adaLN(ctx, config.D, 6, config.gen));
  }
  forward(x: Tensor, c: Tensor): Tensor {
    const m = this.adaLN_modulation.forward(c); // [N, 6D]: shift, scale, gate (msa), shift, scale, gate (mlp)
    const part = (k: number) => chunk(m, 6, k);
    x = add(x, mul(part(2), this.attn.forward(modulate(this.norm1.forward(x), part(0), part(1)))));
    return add(x, mul(part(5), this.mlp.forward(modulate(this.norm2.forward(x), part(3), part(4)))));
  }
}

/** norm_final, adaLN shift/scale, linear to p·p·C_out per token. */
class FinalLayer extends Module<[Tensor, Tensor], Tensor, { D: number; out: number; gen: Generator }> {
  readonly norm_final: LayerNorm;
  readonly linear: Linear;
  readonly adaLN_modulation: Sequential;
  constructor(ctx: GpuContext, config: { D: number; out: number; gen: Generator }) {
    super(ctx, config);
    const { D, out, gen } = config;
    this.norm_final = this.registerModule('norm_final', new LayerNorm(ctx, { normalizedShape: D, eps: LN_EPS, elementwiseAffine: false }));
    this.linear = this.registerModule('linear', xavierLinear(ctx, D, out, gen, true));
    this.adaLN_modulation = this.registerModule('adaLN_modulation', adaLN(ctx, D, 2, gen));
  }
  forward(x: Tensor, c: Tensor): Tensor {
    const m = this.adaLN_modulation.forward(c);
    return this.linear.forward(modulate(this.norm_final.forward(x), chunk(m, 2, 0), chunk(m, 2, 1)));
  }
}

/** DiT: forward(x, t, y) -> [N, outChannels, S, S] (see the file header). */
export class DiT extends Module<[Tensor, Tensor, Tensor], Tensor, DiTOptions> {
  readonly options: Required<DiTOptions>;
  readonly outChannels: number;
  readonly x_embedder: Namespace;
  readonly proj: Conv2d;
  readonly t_mlp: Sequential;
  readonly embedding_table: Embedding;
  readonly blocks: ModuleList<DiTBlock>;
  readonly final_layer: FinalLayer;
  private readonly sinusoid: TimestepEmbedding;

  constructor(ctx: GpuContext, opts: DiTOptions = {}) {
    super(ctx, opts);
    const o: Required<DiTOptions> = {
      inputSize: opts.inputSize ?? 32,
      patchSize: opts.patchSize ?? 2,
      inChannels: opts.inChannels ?? 4,
      hiddenSize: opts.hiddenSize ?? 1152,
      depth: opts.depth ?? 28,
      numHeads: opts.numHeads ?? 16,
      mlpRatio: opts.mlpRatio ?? 4,
      classDropoutProb: opts.classDropoutProb ?? 0.1,
      numClasses: opts.numClasses ?? 1000,
      learnSigma: opts.learnSigma ?? true,
      numTimesteps: opts.numTimesteps ?? 1000,
      seed: opts.seed ?? 0,
    };
    const op = 'DiT';
    for (const k of ['inputSize', 'patchSize', 'inChannels', 'hiddenSize', 'depth', 'numHeads', 'numClasses', 'numTimesteps'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new EngineError(op, `${k} must be a positive integer, got ${o[k]}`);
    if (o.inputSize % o.patchSize !== 0) throw new EngineError(op, `patchSize ${o.patchSize} does not divide inputSize ${o.inputSize}`);
    if (o.hiddenSize % o.numHeads !== 0) throw new EngineError(op, `numHeads ${o.numHeads} does not divide hiddenSize ${o.hiddenSize}`);
    if (!(o.mlpRatio > 0) || !Number.isInteger(Math.trunc(o.hiddenSize * o.mlpRatio)) || Math.trunc(o.hiddenSize * o.mlpRatio) < 1)
      throw new EngineError(op, `mlpRatio must be positive, got ${o.mlpRatio}`);
    if (!(o.classDropoutProb >= 0 && o.classDropoutProb < 1)) throw new EngineError(op, `classDropoutProb ${o.classDropoutProb} is outside [0, 1)`);
    if (typeof o.learnSigma !== 'boolean') throw new EngineError(op, `learnSigma must be true or false, got ${JSON.stringify(o.learnSigma)}`);
    this.options = o;
    const D = o.hiddenSize;
    const p = o.patchSize;
    const G = o.inputSize / p;
    const pos = sincosPosEmbed(D, G);
    this.outChannels = o.learnSigma ? 2 * o.inChannels : o.inChannels;
    const gen = new Generator(o.seed);

    this.proj = new Conv2d(ctx, { inChannels: o.inChannels, outChannels: D, kernelSize: p, stride: p, gen });
    const fanIn = o.inChannels * p * p;
    reinit(this.proj, [
      ['weight', uniformInit(ctx, [D, o.inChannels, p, p], Math.sqrt(6 / (fanIn + D)), gen)],
      ['bias', constantInit(ctx, [D], 0)],
    ]);
    this.x_embedder = this.registerModule('x_embedder', new Namespace(ctx, { proj: this.proj }));
    const tLin = (i: number, w: number) => {
      const l = new Linear(ctx, { inFeatures: i, outFeatures: w, gen });
      reinit(l, [['weight', randn(ctx, [w, i], gen, 0, 0.02)], ['bias', constantInit(ctx, [w], 0)]]);
      return l;
    };
    this.t_mlp = new Sequential(ctx, [tLin(FREQ_DIM, D), new Activation(ctx, { kind: 'silu' }), tLin(D, D)]);
    this.registerModule('t_embedder', new Namespace(ctx, { mlp: this.t_mlp }));
    const rows = o.numClasses + (o.classDropoutProb > 0 ? 1 : 0);
    this.embedding_table = new Embedding(ctx, { numEmbeddings: rows, embeddingDim: D, gen });
    reinit(this.embedding_table, [['weight', randn(ctx, [rows, D], gen, 0, 0.02)]]);
    this.registerModule('y_embedder', new Namespace(ctx, { embedding_table: this.embedding_table }));
    this.registerBuffer('pos_embed', tensor(ctx, Float32Array.from(pos), [1, G * G, D]));
    this.blocks = this.registerModule(
      'blocks',
      new ModuleList(
        ctx,
        Array.from({ length: o.depth }, () => new DiTBlock(ctx, { D, heads: o.numHeads, mlpRatio: o.mlpRatio, gen })),
      ),
    );
    this.final_layer = this.registerModule('final_layer', new FinalLayer(ctx, { D, out: p * p * this.outChannels, gen }));
    this.sinusoid = new TimestepEmbedding(ctx, { dim: FREQ_DIM, order: 'cos-sin', freq: (k, half) => Math.exp((-Math.log(10000) * k) / half) }, o.numTimesteps);
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
    return this.options.inputSize;
  }

  forward(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const o = this.options;
    const N = checkNoiseInputs('DiT', x, t, y, o.inChannels, o.inputSize);
    const D = o.hiddenSize;
    const p = o.patchSize;
    const G = o.inputSize / p;
    const T = G * G;
    let h = add(transpose(reshape(this.proj.forward(x), [N, D, T]), 1, 2), this.getBuffer('pos_embed')); // [N, T, D]
    const c = add(this.t_mlp.forward(this.sinusoid.embed(t)), this.embedding_table.forward(y));
    for (const blk of this.blocks.items) h = blk.forward(h, c);
    h = this.final_layer.forward(h, c); // [N, T, p·p·C_out]
    const Co = this.outChannels;
    return reshape(permute(reshape(h, [N, G, G, p, p, Co]), [0, 5, 1, 3, 2, 4]), [N, Co, G * p, G * p]);
  }

  /**
   * The reference's forward_with_cfg per sample: eps channels [0, C) as u + s·(c − u) (c with y, u
   * with the null class), the remaining channels (learnSigma) from c. Needs the null class row.
   */
  guided(x: Tensor, t: Tensor, y: Tensor, s: number): Tensor {
    const o = this.options;
    const N = checkNoiseInputs('DiT.guided', x, t, y, o.inChannels, o.inputSize);
    if (!Number.isFinite(s)) throw new EngineError('DiT.guided', `guidance scale must be finite, got ${s}`);
    if (o.classDropoutProb === 0) throw new EngineError('DiT.guided', 'this DiT has no null class (classDropoutProb 0)');
    const cond = this.forward(x, t, y);
    const uncond = this.forward(x, t, full(this.ctx, [N], o.numClasses, 'i32'));
    const C = o.inChannels;
    const ce = narrow(cond, 1, 0, C);
    const ue = narrow(uncond, 1, 0, C);
    const e = add(ue, mulScalar(sub(ce, ue), s));
    return this.outChannels === C ? e : concat([e, narrow(cond, 1, C, this.outChannels - C)], 1);
  }

  override dispose(): void {
    this.sinusoid.dispose();
    super.dispose();
  }
}
