// Small pieces the transformer models (swin.ts, vit.ts) need that are composed here from existing ops
// until their nn/ops versions land (helper `attention` adds fused roll / window-partition / drop-path
// kernels and nn LayerNorm on its branch): TEMPORARY — at merge, swap LayerNorm for nn's, roll and
// dropPath for the ops', keeping the names (parameter names `weight`, `bias` are torch's).
// It holds no model.
//
// Letters: N batch, C channels (the last axis).

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { bernoulli, concat, layerNorm, mul, mulScalar, permute, randn, slice, zeros } from '../ops/index.js';
import { Module, constantInit, copyTensor } from '../nn/module.js';
import type { Linear } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** torch.nn.LayerNorm(dim, eps) over the last axis: weight [C] = 1, bias [C] = 0. (TEMPORARY, see header.) */
export class LayerNorm extends Module<[Tensor], Tensor, { dim: number; eps: number }> {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(ctx: GpuContext, config: { dim: number; eps: number }) {
    super(ctx, config);
    this.weight = this.registerParameter('weight', constantInit(ctx, [config.dim], 1));
    this.bias = this.registerParameter('bias', constantInit(ctx, [config.dim], 0));
  }
  forward(x: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.config.dim) throw new EngineError('LayerNorm', `expected [..., ${this.config.dim}], got ${x.describe()}`);
    return layerNorm(x, this.config.dim, this.weight, this.bias, this.config.eps);
  }
}

/** torchvision.ops.misc.Permute: a parameter-free axis reordering (a Sequential child, holds no state). */
export class Permute extends Module<[Tensor], Tensor, { dims: number[] }> {
  forward(x: Tensor): Tensor {
    return permute(x, this.config.dims);
  }
}

/** torch.roll(x, shifts, dims): element i moves to (i + shift) mod n along each dim. (TEMPORARY: slices + concat.) */
export function roll(x: Tensor, shifts: readonly number[], dims: readonly number[]): Tensor {
  let y = x;
  dims.forEach((d, k) => {
    const n = y.shape[d]!;
    const s = (((shifts[k]! % n) + n) % n) | 0;
    if (s === 0) return;
    const starts = y.shape.map(() => 0);
    const ends = [...y.shape];
    const tail = slice(y, starts.map((v, i) => (i === d ? n - s : v)), ends);
    const head = slice(y, starts, ends.map((v, i) => (i === d ? n - s : v)));
    y = concat([tail, head], d);
  });
  return y;
}

/**
 * Stochastic depth, torchvision's mode 'row': in training each sample's residual branch is zeroed
 * with probability p and the kept ones scaled by 1/(1 − p); identity in eval or at p = 0. (TEMPORARY.)
 */
export function dropPath(x: Tensor, p: number, gen: Generator, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const keep = bernoulli(x.ctx, [x.shape[0]!, ...x.shape.slice(1).map(() => 1)], gen, 1 - p);
  return mul(x, mulScalar(keep, 1 / (1 - p)));
}

/** Overwrite a Linear's weight with N(0, std²) and its bias with 0 (torchvision transformers' init). */
export function initLinear(l: Linear, std: number, gen: Generator): Linear {
  const ctx = l.ctx;
  const w = randn(ctx, l.weight.shape, gen, 0, std);
  copyTensor('initLinear', w, l.weight);
  w.dispose();
  if (l.bias) {
    const b = zeros(ctx, l.bias.shape);
    copyTensor('initLinear', b, l.bias);
    b.dispose();
  }
  return l;
}
