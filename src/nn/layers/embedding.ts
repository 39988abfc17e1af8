// Embedding (torch.nn.Embedding): rows of a [V, D] table picked by i32 ids; the backward scatter-adds
// into the rows used. Letters: V vocabulary (rows), D embedding width. No padding_idx, no max_norm.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { Generator } from '../../util/rng.js';
import { EngineError } from '../../util/errors.js';
import { indexSelect, randn, reshape } from '../../ops/index.js';
import { Module } from '../module.js';

export interface EmbeddingConfig {
  numEmbeddings: number;
  embeddingDim: number;
  /** Draws the initial table (torch: N(0, 1)). */
  gen: Generator;
}

/** ids i32 [...] -> [..., D]. Parameter weight [V, D]. */
export class Embedding extends Module<[Tensor], Tensor, EmbeddingConfig> {
  readonly weight: Tensor;
  constructor(ctx: GpuContext, config: EmbeddingConfig) {
    super(ctx, config);
    const { numEmbeddings: V, embeddingDim: D } = config;
    if (!(Number.isInteger(V) && V > 0 && Number.isInteger(D) && D > 0))
      throw new EngineError('Embedding', `numEmbeddings and embeddingDim must be positive integers, got ${V} and ${D}`);
    this.weight = this.registerParameter('weight', randn(ctx, [V, D], config.gen));
  }
  forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'i32') throw new EngineError('Embedding', `ids must be i32, got ${ids.describe()}`);
    const flat = ids.rank === 1 ? ids : reshape(ids, [ids.size]);
    const rows = indexSelect(this.weight, 0, flat);
    return ids.rank === 1 ? rows : reshape(rows, [...ids.shape, this.config.embeddingDim]);
  }
}
