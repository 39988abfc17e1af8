// Scaled dot-product attention: the one functional entry point every attention-using model calls
// (Swin's shifted windows, ViT, the DDPM UNet's AttnBlock, DiT). This file holds the contract, the
// composed implementation (matmul -> scale/bias/mask -> softmax -> dropout -> matmul, built only from
// ops with their own backward) and the dispatch to the fused kernel of src/wgsl/attention.ts. The
// composed path is the fused kernel's test reference and its fallback (head widths over
// MAX_HEAD_DIM, a mask that requires a gradient, no keys).
//
// Shapes (letters: B = batch (for Swin: images x windows), H = heads, L = query tokens, S = key
// tokens, D = head width, E = value width):
//   q [B, H, L, D], k [B, H, S, D], v [B, H, S, E] -> [B, H, L, E]
//   bias: additive, broadcastable to [B, H, L, S] (a relative position bias is [1, H, L, S])
//   mask: additive [G, L, S] for G groups of consecutive batch rows: row b takes mask[b % G] (Swin's
//         shifted-window mask, G = windows per image, B = images x G)

import type { Tensor } from '../autograd/tensor.js';
import { reshape } from '../autograd/graph.js';
import { shapeStr } from '../autograd/shape.js';
import { add, mulScalar } from '../wgsl/elementwise.js';
import { matmul } from '../wgsl/matmul.js';
import { softmax } from '../wgsl/softmax.js';
import { dropout } from '../wgsl/dropout.js';
import { tensor } from '../wgsl/fill.js';
import type { Generator } from '../util/rng.js';
import { EngineError } from '../util/errors.js';
import { fusedAttention, fusedAttentionSupported, MAX_SEQUENCE } from '../wgsl/attention.js';

export interface AttentionOptions {
  /** Multiplier of q·k; default 1/sqrt(D). */
  scale?: number;
  /** Additive bias broadcastable to [B, H, L, S]. */
  bias?: Tensor;
  /** Additive mask [G, L, S]; batch row b uses mask[b % G]. */
  mask?: Tensor;
  /** Query i sees keys j <= i + (S - L) only. */
  causal?: boolean;
  /** Dropout on the attention probabilities (only when `training`). */
  dropout?: number;
  generator?: Generator;
  training?: boolean;
  /**
   * Which implementation: 'auto' (default) takes the fused kernel once the [B, H, L, S] scores reach
   * FUSED_MIN_SCORES elements (where the composed path's memory hurts), and, when no gradient is
   * recorded (inference, or no operand requires one), from FUSED_NARROW_MIN_SCORES scores for heads
   * at most FUSED_NARROW_HEAD wide (Swin's windows: the fused forward measured 2-3x faster than
   * composed there, its backward slower); the composed path otherwise (see bench/RESULTS.md
   * "attention-fused-speed"); 'fused' / 'composed' force one.
   */
  impl?: 'auto' | 'fused' | 'composed';
}

/** Score-matrix size from which 'auto' takes the fused kernel (2^24 floats = 64 MiB per [B, H, L, S] tensor). */
export const FUSED_MIN_SCORES = 2 ** 24;
/** Widest head (D and E) for which 'auto' takes the fused kernel from FUSED_NARROW_MIN_SCORES scores when no gradient is recorded. */
export const FUSED_NARROW_HEAD = 32;
/** Score-matrix size from which 'auto' takes the fused kernel for narrow heads (the bench's smallest Swin shape has 2^18.8). */
export const FUSED_NARROW_MIN_SCORES = 2 ** 18;

export interface AttentionShape {
  B: number;
  H: number;
  L: number;
  S: number;
  D: number;
  E: number;
}

/** Checks every operand's shape and option before any work; returns the problem's sizes. */
export function checkAttention(op: string, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): AttentionShape {
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.rank !== 4) throw new EngineError(op, `${name} must be [batch, heads, tokens, width], got ${t.describe()}`);
    if (t.dtype !== 'f32') throw new EngineError(op, `${name} must be f32, got ${t.describe()}`);
  }
  const [B, H, L, D] = q.shape as [number, number, number, number];
  const [Bk, Hk, S, Dk] = k.shape as [number, number, number, number];
  const [Bv, Hv, Sv, E] = v.shape as [number, number, number, number];
  if (Bk !== B || Hk !== H || Dk !== D)
    throw new EngineError(op, `k ${shapeStr(k.shape)} does not match q ${shapeStr(q.shape)} (expected [${B}, ${H}, S, ${D}])`);
  if (Bv !== B || Hv !== H || Sv !== S)
    throw new EngineError(op, `v ${shapeStr(v.shape)} does not match k ${shapeStr(k.shape)} (expected [${B}, ${H}, ${S}, E])`);
  if (opts.bias) {
    const b = opts.bias;
    const full = [B, H, L, S];
    if (b.dtype !== 'f32') throw new EngineError(op, `bias must be f32, got ${b.describe()}`);
    if (b.rank !== 4 || b.shape.some((n, i) => n !== 1 && n !== full[i]))
      throw new EngineError(op, `bias ${shapeStr(b.shape)} does not broadcast to [${full.join(', ')}]`);
  }
  if (opts.mask) {
    const m = opts.mask;
    if (m.dtype !== 'f32') throw new EngineError(op, `mask must be f32 (additive), got ${m.describe()}`);
    if (m.rank !== 3 || m.shape[1] !== L || m.shape[2] !== S || B % m.shape[0]! !== 0)
      throw new EngineError(op, `mask ${shapeStr(m.shape)} must be [G, ${L}, ${S}] with G dividing the batch ${B}`);
  }
  if (L > MAX_SEQUENCE || S > MAX_SEQUENCE)
    throw new EngineError(op, `sequence of ${L} queries x ${S} keys (q ${shapeStr(q.shape)}) exceeds the limit of ${MAX_SEQUENCE} tokens`);
  if (opts.scale !== undefined && !Number.isFinite(opts.scale)) throw new EngineError(op, `scale ${opts.scale} is not finite`);
  if (opts.causal && S < L) throw new EngineError(op, `causal attention needs at least as many keys (${S}) as queries (${L})`);
  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new EngineError(op, `dropout ${p} is outside [0, 1)`);
  if (p > 0 && opts.training && !opts.generator) throw new EngineError(op, 'dropout in training needs a generator');
  return { B, H, L, S, D, E };
}

/** Attention composed from matmul/softmax: materialises the [B, H, L, S] scores. */
export function attentionComposed(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { B, H, L, S, D } = checkAttention('attention', q, k, v, opts);
  let s = mulScalar(matmul(q, k, { transB: true }), opts.scale ?? 1 / Math.sqrt(D));
  if (opts.bias) s = add(s, opts.bias);
  if (opts.mask) {
    const G = opts.mask.shape[0]!;
    s = reshape(add(reshape(s, [B / G, G, H, L, S]), reshape(opts.mask, [1, G, 1, L, S])), [B, H, L, S]);
  }
  if (opts.causal) {
    const c = new Float32Array(L * S);
    for (let i = 0; i < L; i++) for (let j = i + (S - L) + 1; j < S; j++) c[i * S + j] = -1e30;
    s = add(s, tensor(q.ctx, c, [1, 1, L, S]));
  }
  let p = softmax(s, -1);
  const pd = opts.dropout ?? 0;
  if (pd > 0 && opts.training) p = dropout(p, pd, opts.generator!, true);
  return matmul(p, v);
}

/**
 * Scaled dot-product attention (see the file header for shapes and options): the fused kernel
 * (online softmax, no [L, S] scores in memory, backward by recomputation) for large score matrices
 * or when `impl: 'fused'`, the composed path otherwise (see `impl`). Both give the same values and, for the same generator state, the same
 * dropout mask.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { B, H, L, D, E, S } = checkAttention('attention', q, k, v, opts);
  const impl = opts.impl ?? 'auto';
  if (impl !== 'auto' && impl !== 'fused' && impl !== 'composed') throw new EngineError('attention', `impl '${String(impl)}' is not auto, fused or composed`);
  const scores = B * H * L * S;
  const narrow = D <= FUSED_NARROW_HEAD && E <= FUSED_NARROW_HEAD;
  const recordsGrad = q.ctx.gradEnabled && [q, k, v, opts.bias].some((t) => t?.requiresGrad);
  const small = impl === 'auto' && scores < FUSED_MIN_SCORES && !(narrow && !recordsGrad && scores >= FUSED_NARROW_MIN_SCORES);
  if (impl === 'composed' || small || !fusedAttentionSupported(D, E) || S === 0 || opts.mask?.requiresGrad) return attentionComposed(q, k, v, opts);
  const pd = opts.dropout ?? 0;
  return fusedAttention({
    q,
    k,
    v,
    bias: opts.bias,
    mask: opts.mask,
    scale: opts.scale ?? 1 / Math.sqrt(D),
    causal: !!opts.causal,
    dropout: pd > 0 && opts.training ? pd : 0,
    gen: opts.generator,
  });
}
