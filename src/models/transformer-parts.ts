// Pieces the transformer models (swin.ts, vit.ts) share: row gathers with an inverse-gather backward
// (torchvision's pad -> roll -> window partition in one pass, which the ops' windowPartition does not
// do for maps that are not a multiple of the window; head splits of packed q/k/v projections), packed
// multi-head self-attention, an OrderedDict-style Sequential, the no-decay rule and Linear init.
// It holds no model.
//
// Letters: N batch, C channels (the last axis).

import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { attention, indexSelect, indexTensor, pad, permute, randn, reshape, zeros, type AttentionOptions } from '../ops/index.js';
import { record } from '../autograd/graph.js';
import { Module, copyTensor } from '../nn/module.js';
import type { Linear } from '../nn/layers/index.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

/** torchvision.ops.misc.Permute: a parameter-free axis reordering (a Sequential child, holds no state). */
export class Permute extends Module<[Tensor], Tensor, { dims: number[] }> {
  forward(x: Tensor): Tensor {
    return permute(x, this.config.dims);
  }
}

/** An nn.Sequential built from an OrderedDict: children with given names (torchvision's encoder_layer_i, heads.head), applied in order. */
export class NamedSequential extends Module<[Tensor], Tensor, { layers: readonly (readonly [string, Module])[] }> {
  constructor(ctx: GpuContext, config: { layers: readonly (readonly [string, Module])[] }) {
    super(ctx, config);
    for (const [name, m] of config.layers) this.registerModule(name, m);
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const [, m] of this.config.layers) y = m.forward(y);
    return y;
  }
  override spawn(): this {
    return new NamedSequential(this.ctx, { layers: this.config.layers.map(([n, m]) => [n, m.spawn()] as const) }) as this;
  }
}

/**
 * Rows of x along `axis` picked by `index` (torch.index_select), where every row of x is picked at
 * most once and index value A (= x's size along the axis) picks a row of zeros. With that, cyclic
 * roll + zero padding + window partition, their inverse, head splits and patch-merging's neighbour
 * concatenation are each one gather on [..., rows, C] (C contiguous), and the backward is the same
 * gather with the inverse index (no scatter). (TEMPORARY until the ops' roll / window kernels land:
 * it replaces chains of strided copies, which are slow on lavapipe.)
 * @param x [..., A, ...]; index values in [0, A], each of [0, A) at most once -> [..., K, ...]
 */
export function gatherRows(x: Tensor, axis: number, index: Int32Array): Tensor {
  const ctx = x.ctx;
  const A = x.shape[axis]!;
  const K = index.length;
  const inverse = new Int32Array(A).fill(K);
  let padded = false;
  index.forEach((a, k) => {
    if (a === A) return void (padded = true);
    if (!(a >= 0 && a < A) || inverse[a] !== K) throw new EngineError('gatherRows', `index ${a} at ${k} is out of [0, ${A}] or repeated`);
    inverse[a] = k;
  });
  const zeroRow = (t: Tensor) => pad(t, t.shape.map((_, d) => (d === axis ? [0, 1] : [0, 0]) as [number, number]));
  const idx = indexTensor(ctx, index, A + 1);
  const src = padded ? ctx.noGrad(() => zeroRow(x)) : x;
  const out = ctx.noGrad(() => indexSelect(src, axis, idx));
  idx.dispose();
  if (src !== x) src.dispose();
  const unpicked = inverse.some((k) => k === K);
  return record(out, 'gatherRows', [x], (g) => {
    const inv = indexTensor(ctx, inverse, K + 1);
    const gs = unpicked ? ctx.noGrad(() => zeroRow(g)) : g;
    const dx = ctx.noGrad(() => indexSelect(gs, axis, inv));
    inv.dispose();
    if (gs !== g) gs.dispose();
    return [dx];
  });
}

/** The inverse of a gather index (every entry < n picked once): for each of the n rows, where it went. */
export function inverseIndex(index: Int32Array, n: number): Int32Array {
  const inv = new Int32Array(n);
  index.forEach((a, k) => {
    if (a < n) inv[a] = k;
  });
  return inv;
}

/**
 * Rows of part `i` of a token-major [M, P·K] row layout (P parts of K heads each, rows of D: a
 * packed q/k/v projection viewed as [M·P·K, D]) in head-major order: out row k·M + m is m·P·K + i·K + k.
 */
export function headRows(M: number, K: number, i: number, P: number): Int32Array {
  const out = new Int32Array(K * M);
  for (let k = 0; k < K; k++) for (let m = 0; m < M; m++) out[k * M + m] = m * P * K + i * K + k;
  return out;
}

/**
 * Multi-head self-attention on [B, M, K·D] from a packed [B, M, 3·K·D] projection: heads split by
 * gathers, attention(), heads merged back -> [B, M, K·D].
 */
export function packedSelfAttention(qkv: Tensor, K: number, opts: AttentionOptions = {}): Tensor {
  const [B, M, C3] = qkv.shape as [number, number, number];
  const D = C3 / 3 / K;
  const rows = reshape(qkv, [B, M * 3 * K, D]);
  const part = (i: number) => reshape(gatherRows(rows, 1, headRows(M, K, i, 3)), [B, K, M, D]);
  const o = attention(part(0), part(1), part(2), opts); // [B, K, M, D]
  return reshape(gatherRows(reshape(o, [B, K * M, D]), 1, inverseIndex(headRows(M, K, 0, 1), K * M)), [B, M, K * D]);
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

/**
 * The transformers' no-decay rule (torchvision's training reference: norm and bias decay 0, and
 * `transformer_embedding_decay` 0 for class_token, position_embedding, relative_position_bias_table):
 * parameters of rank < 2 and those tables, by name.
 */
export function transformerNoDecay(name: string, p: Tensor): boolean {
  return p.rank < 2 || /(^|\.)(class_token|pos_embedding|position_embedding|relative_position_bias_table)$/.test(name);
}
