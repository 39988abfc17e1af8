// A tiny linear stand-in ε-model for the diffusion tests, with its float64 reference:
// ε̂(x, t, y) = W·x + U[y] + τ[t] ⊙ v, x flattened to D = C·H·W, U [(K+1), D] (row K = the null
// class), τ a fixed random table [T, D] (a buffer), W [D, D], v [D] parameters.
import type { GpuContext } from '../src/gpu/context.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Module } from '../src/nn/module.js';
import { add, indexSelect, matmul, mul, reshape, sub, tensor } from '../src/ops/index.js';

export interface StandInConfig {
  image: [number, number, number];
  numClasses: number;
  T: number;
  /** initial values (random in the tests) */
  W: Float32Array;
  U: Float32Array;
  v: Float32Array;
  tau: Float32Array;
}

export class StandInEps extends Module<[Tensor, Tensor, Tensor], Tensor, StandInConfig> {
  readonly W: Tensor;
  readonly U: Tensor;
  readonly v: Tensor;
  readonly tau: Tensor;
  constructor(ctx: GpuContext, c: StandInConfig) {
    super(ctx, c);
    const D = c.image[0] * c.image[1] * c.image[2];
    this.W = this.registerParameter('W', tensor(ctx, Float32Array.from(c.W), [D, D]));
    this.U = this.registerParameter('U', tensor(ctx, Float32Array.from(c.U), [c.numClasses + 1, D]));
    this.v = this.registerParameter('v', tensor(ctx, Float32Array.from(c.v), [D]));
    this.tau = this.registerBuffer('tau', tensor(ctx, Float32Array.from(c.tau), [c.T, D]));
  }
  forward(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const n = x.shape[0]!;
    const D = this.v.shape[0]!;
    const flat = reshape(x, [n, D]);
    const out = add(add(matmul(flat, this.W, { transB: true }), indexSelect(this.U, 0, y)), mul(indexSelect(this.tau, 0, t), this.v));
    return reshape(out, x.shape);
  }
}

export interface RefParams {
  W: Float64Array;
  U: Float64Array;
  v: Float64Array;
}

/** ε̂ of one sample in float64. */
export function refEps(p: RefParams, tau: Float32Array, D: number, x: ArrayLike<number>, t: number, y: number): Float64Array {
  const out = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    let s = p.U[y * D + i]! + tau[t * D + i]! * p.v[i]!;
    for (let j = 0; j < D; j++) s += p.W[i * D + j]! * x[j]!;
    out[i] = s;
  }
  return out;
}

/**
 * Gradient of Σ_i c_i · Σ_pixels (ε_i − ε̂_i)² w.r.t. W, U, v (c_i a per-sample weight), float64.
 * dL/dε̂ = −2 c (ε − ε̂).
 */
export function refNoiseLossGrad(
  p: RefParams,
  tau: Float32Array,
  D: number,
  xt: Float32Array,
  noise: Float32Array,
  t: Int32Array,
  y: Int32Array,
  c: ArrayLike<number>,
): { losses: Float64Array; dW: Float64Array; dU: Float64Array; dv: Float64Array } {
  const n = t.length;
  const losses = new Float64Array(n);
  const dW = new Float64Array(p.W.length);
  const dU = new Float64Array(p.U.length);
  const dv = new Float64Array(p.v.length);
  for (let s = 0; s < n; s++) {
    const x = xt.subarray(s * D, (s + 1) * D);
    const e = refEps(p, tau, D, x, t[s]!, y[s]!);
    for (let i = 0; i < D; i++) {
      const r = noise[s * D + i]! - e[i]!;
      losses[s] += r * r;
      const g = -2 * c[s]! * r;
      for (let j = 0; j < D; j++) dW[i * D + j] += g * x[j]!;
      dU[y[s]! * D + i] += g;
      dv[i] += g * tau[t[s]! * D + i]!;
    }
  }
  return { losses, dW, dU, dv };
}

/**
 * The exact ε-predictor for data that is one fixed image x* per class:
 * ε(x, t, y) = (x − √ᾱ_t x*_y) / √(1 − ᾱ_t). A correct sampler maps any x_T to x*_y.
 */
export class OracleEps extends Module<[Tensor, Tensor, Tensor], Tensor, { targets: Float32Array; alphaBar: Float64Array; D: number; K: number }> {
  readonly sa: Tensor;
  readonly inv: Tensor;
  readonly x: Tensor;
  constructor(ctx: GpuContext, c: { targets: Float32Array; alphaBar: Float64Array; D: number; K: number }) {
    super(ctx, c);
    const T = c.alphaBar.length;
    this.sa = this.registerBuffer('sa', tensor(ctx, Float32Array.from({ length: T * c.D }, (_, i) => Math.sqrt(c.alphaBar[Math.floor(i / c.D)]!)), [T, c.D]));
    this.inv = this.registerBuffer('inv', tensor(ctx, Float32Array.from({ length: T * c.D }, (_, i) => 1 / Math.sqrt(1 - c.alphaBar[Math.floor(i / c.D)]!)), [T, c.D]));
    // the null class (row K) predicts as class 0
    this.x = this.registerBuffer('x', tensor(ctx, Float32Array.from([...c.targets, ...c.targets.subarray(0, c.D)]), [c.K + 1, c.D]));
  }
  forward(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const n = x.shape[0]!;
    const flat = reshape(x, [n, this.config.D]);
    const out = mul(sub(flat, mul(indexSelect(this.sa, 0, t), indexSelect(this.x, 0, y))), indexSelect(this.inv, 0, t));
    return reshape(out, x.shape);
  }
}
