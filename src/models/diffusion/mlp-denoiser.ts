// A small class-conditional ε-model for CPU-sized demos (MNIST at 16×16 on lavapipe): the image
// flattened, a sinusoidal timestep embedding (a fixed table, as the UNet's) through a 2-layer MLP,
// a learned class embedding with a null row (index numClasses), added to every hidden layer of a
// residual MLP. Not the authors' architecture (that is the UNet in unet.ts); a stand-in that the
// demo can train in minutes.
//
// Dimension letters: N samples, C channels, H, W image size, D = C·H·W, E embedding width, K hidden.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { Module } from '../../nn/module.js';
import { Embedding, Linear } from '../../nn/layers/index.js';
import { add, indexSelect, reshape, silu, tensor } from '../../ops/index.js';
import { EngineError } from '../../util/errors.js';
import { Generator } from '../../util/rng.js';

export interface MlpDenoiserConfig {
  image: readonly [number, number, number];
  numClasses: number;
  /** Hidden width K (default 512). */
  hidden?: number;
  /** Residual blocks (default 3). */
  blocks?: number;
  /** Sinusoidal embedding width E (default 64). */
  embed?: number;
  /** Timesteps the embedding table covers (default 1000). */
  T?: number;
  seed?: number;
}

/** The sinusoidal embedding of the authors' UNet for t = 0…T−1: [sin(t·f_k), cos(t·f_k)], f_k = exp(−k ln 10⁴/(E/2 − 1)). */
export function sinusoidalTable(T: number, E: number): Float32Array {
  const half = E / 2;
  const out = new Float32Array(T * E);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < half; k++) {
      const f = Math.exp((-k * Math.log(10000)) / Math.max(1, half - 1));
      out[t * E + k] = Math.sin(t * f);
      out[t * E + half + k] = Math.cos(t * f);
    }
  return out;
}

/** forward(x [N,C,H,W], t i32 [N], y i32 [N]) -> ε̂ [N,C,H,W]. */
export class MlpDenoiser extends Module<[Tensor, Tensor, Tensor], Tensor, MlpDenoiserConfig> {
  private readonly table: Tensor;
  readonly inProj: Linear;
  readonly temb0: Linear;
  readonly temb1: Linear;
  readonly classEmb: Embedding;
  readonly blocksA: Linear[] = [];
  readonly blocksB: Linear[] = [];
  readonly outProj: Linear;
  constructor(ctx: GpuContext, config: MlpDenoiserConfig) {
    super(ctx, config);
    const [C, H, W] = config.image;
    const D = C * H * W;
    const K = config.hidden ?? 512;
    const E = config.embed ?? 64;
    const T = config.T ?? 1000;
    if (!(Number.isInteger(D) && D > 0 && Number.isInteger(K) && K > 0 && E % 2 === 0 && E > 0 && config.numClasses >= 1))
      throw new EngineError('MlpDenoiser', `bad config ${JSON.stringify(config)}`);
    const gen = new Generator(config.seed ?? 0);
    this.table = this.registerBuffer('timeTable', tensor(ctx, sinusoidalTable(T, E), [T, E]));
    this.inProj = this.registerModule('inProj', new Linear(ctx, { inFeatures: D, outFeatures: K, gen }));
    this.temb0 = this.registerModule('temb0', new Linear(ctx, { inFeatures: E, outFeatures: K, gen }));
    this.temb1 = this.registerModule('temb1', new Linear(ctx, { inFeatures: K, outFeatures: K, gen }));
    this.classEmb = this.registerModule('classEmb', new Embedding(ctx, { numEmbeddings: config.numClasses + 1, embeddingDim: K, gen }));
    for (let b = 0; b < (config.blocks ?? 3); b++) {
      this.blocksA.push(this.registerModule(`block${b}a`, new Linear(ctx, { inFeatures: K, outFeatures: K, gen })));
      this.blocksB.push(this.registerModule(`block${b}b`, new Linear(ctx, { inFeatures: K, outFeatures: K, gen })));
    }
    this.outProj = this.registerModule('outProj', new Linear(ctx, { inFeatures: K, outFeatures: D, gen }));
  }
  forward(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const [C, H, W] = this.config.image;
    const n = x.shape[0]!;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W)
      throw new EngineError('MlpDenoiser', `x ${x.describe()} is not [N, ${C}, ${H}, ${W}] (image size mismatch)`);
    if (t.shape.join() !== `${n}` || y.shape.join() !== `${n}` || t.dtype !== 'i32' || y.dtype !== 'i32')
      throw new EngineError('MlpDenoiser', `t ${t.describe()} and y ${y.describe()} must be i32 [${n}]`);
    const temb = this.temb1.forward(silu(this.temb0.forward(indexSelect(this.table, 0, t))));
    const e = add(temb, this.classEmb.forward(y)); // [N, K]
    let h = silu(add(this.inProj.forward(reshape(x, [n, C * H * W])), e));
    for (let b = 0; b < this.blocksA.length; b++) h = add(h, this.blocksB[b]!.forward(silu(add(this.blocksA[b]!.forward(h), e))));
    return reshape(this.outProj.forward(h), [n, C, H, W]);
  }
}
