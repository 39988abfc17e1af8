// Tensor creation: constants, ranges, uploads from typed arrays, and seeded random numbers from a
// counter-based generator (Threefry-2x32-20, as in Random123 and JAX) so the same seed gives the same
// numbers on every device and on the CPU reference. No autograd here: created tensors are leaves.

import { type GpuContext } from '../gpu/context.js';
import { Tensor, type DType } from '../autograd/tensor.js';
import { numel, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { THREEFRY_ROTATIONS, threefry2x32, u32ToUnit, type Generator } from '../util/rng.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

export function fillShader(kind: 'const' | 'arange', dtype: DType): string {
  const T = dtype === 'f32' ? 'f32' : dtype;
  const value =
    kind === 'const'
      ? `bitcast<${T}>(P.bits)`
      : dtype === 'f32'
        ? `bitcast<f32>(P.bits) + f32(i) * P.step`
        : `bitcast<${T}>(P.bits) + ${T}(i) * ${T}(P.step)`;
  return /* wgsl */ `
struct Params { n: u32, bits: u32, step: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<${T}>;
@group(0) @binding(1) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  out[i] = ${value};
}`;
}

function bitsOf(value: number, dtype: DType): number {
  const dv = new DataView(new ArrayBuffer(4));
  if (dtype === 'f32') dv.setFloat32(0, value, true);
  else if (dtype === 'i32') dv.setInt32(0, value, true);
  else if (dtype === 'u32') dv.setUint32(0, value, true);
  else throw new EngineError('full', `dtype ${dtype} is not supported for fills yet`);
  return dv.getUint32(0, true);
}

function fillKernel(t: Tensor, kind: 'const' | 'arange', start: number, step: number): Tensor {
  if (t.size === 0) return t;
  t.ctx.dispatch({
    op: kind === 'const' ? 'full' : 'arange',
    key: `fill:${kind}:${t.dtype}`,
    code: () => fillShader(kind, t.dtype),
    buffers: [t.binding('full')],
    uniforms: packUniforms([t.size, bitsOf(start, t.dtype), { f: step }]),
    workgroups: grid1d(t.size, WG),
  });
  return t;
}

/** A tensor filled with `value`. */
export function full(ctx: GpuContext, shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  return fillKernel(new Tensor(ctx, shape, dtype), 'const', value, 0);
}
export const zeros = (ctx: GpuContext, shape: readonly number[], dtype: DType = 'f32') => full(ctx, shape, 0, dtype);
export const ones = (ctx: GpuContext, shape: readonly number[], dtype: DType = 'f32') => full(ctx, shape, 1, dtype);
export const zerosLike = (t: Tensor) => full(t.ctx, t.shape, 0, t.dtype);
export const onesLike = (t: Tensor) => full(t.ctx, t.shape, 1, t.dtype);

/** [start, start + step, ...) with `n` elements. */
export function arange(ctx: GpuContext, n: number, start = 0, step = 1, dtype: DType = 'f32'): Tensor {
  return fillKernel(new Tensor(ctx, [n], dtype), 'arange', start, step);
}

/** Upload a typed array (or plain numbers) as a tensor; dtype follows the array unless given. */
export function tensor(
  ctx: GpuContext,
  data: Float32Array | Int32Array | Uint32Array | readonly number[],
  shape?: readonly number[],
  dtype?: DType,
): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
  const shp = shape ?? [data.length];
  if (numel(shp) !== data.length)
    throw new EngineError('tensor', `${data.length} values do not fill shape ${shapeStr(shp)}`);
  const arr =
    dt === 'f32'
      ? data instanceof Float32Array
        ? data
        : Float32Array.from(data as ArrayLike<number>)
      : dt === 'i32'
        ? data instanceof Int32Array
          ? data
          : Int32Array.from(data as ArrayLike<number>)
        : data instanceof Uint32Array
          ? data
          : Uint32Array.from(data as ArrayLike<number>);
  const t = new Tensor(ctx, shp, dt);
  if (arr.length) ctx.upload(t.buffer('tensor'), arr);
  return t;
}

// ------------------------------------------------------------------------------------------------
// Counter-based random numbers on the GPU (the CPU form and the Generator are in src/util/rng.ts)

export const THREEFRY_WGSL = /* wgsl */ `
fn rotl(x: u32, s: u32) -> u32 { return (x << s) | (x >> (32u - s)); }
fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {
  let ks = array<u32, 3>(k0, k1, k0 ^ k1 ^ 0x1bd11bdau);
  let rot = array<u32, 8>(${THREEFRY_ROTATIONS.map((r) => `${r}u`).join(', ')});
  var x0 = c0 + ks[0];
  var x1 = c1 + ks[1];
  for (var r = 0u; r < 20u; r++) {
    x0 = x0 + x1;
    x1 = rotl(x1, rot[r % 8u]);
    x1 = x1 ^ x0;
    if (r % 4u == 3u) {
      let j = (r + 1u) / 4u;
      x0 = x0 + ks[j % 3u];
      x1 = x1 + ks[(j + 1u) % 3u] + j;
    }
  }
  return vec2<u32>(x0, x1);
}`;

type RandomKind = 'uniform' | 'normal' | 'bernoulli';

function randomShader(kind: RandomKind): string {
  const value =
    kind === 'uniform'
      ? 'P.a + (P.b - P.a) * unit(r.x)'
      : kind === 'normal'
        ? // Box-Muller: u1 in (0, 1] so the log is finite
          'P.a + P.b * sqrt(-2.0 * log(unit(r.x) + 5.960464477539063e-8)) * cos(6.283185307179586 * unit(r.y))'
        : 'select(0.0, 1.0, unit(r.x) < P.a)';
  return /* wgsl */ `
${THREEFRY_WGSL}
fn unit(x: u32) -> f32 { return f32(x >> 8u) * 5.960464477539063e-8; }
struct Params { n: u32, k0: u32, k1: u32, stream: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  let r = threefry(P.k0, P.k1, i, P.stream);
  out[i] = ${value};
}`;
}

/** CPU reference of element i of a random draw (float64 arithmetic on the same bits). */
export function randomRef(kind: RandomKind, k0: number, k1: number, stream: number, i: number, a: number, b: number) {
  const [x0, x1] = threefry2x32(k0, k1, i, stream);
  if (kind === 'uniform') return a + (b - a) * u32ToUnit(x0);
  if (kind === 'normal')
    return a + b * Math.sqrt(-2 * Math.log(u32ToUnit(x0) + 5.960464477539063e-8)) * Math.cos(2 * Math.PI * u32ToUnit(x1));
  return u32ToUnit(x0) < a ? 1 : 0;
}

function randomFill(ctx: GpuContext, shape: readonly number[], gen: Generator, kind: RandomKind, a: number, b: number) {
  const t = new Tensor(ctx, shape, 'f32');
  if (t.size === 0) return t;
  if (t.size > 0xffffffff) throw new EngineError(kind, 'too many elements for one 32-bit counter');
  ctx.dispatch({
    op: kind,
    key: `random:${kind}`,
    code: () => randomShader(kind),
    buffers: [t.binding(kind)],
    uniforms: packUniforms([t.size, gen.k0, gen.k1, gen.nextStream(), { f: a }, { f: b }]),
    workgroups: grid1d(t.size, WG),
  });
  return t;
}

/** Uniform in [lo, hi). */
export const rand = (ctx: GpuContext, shape: readonly number[], gen: Generator, lo = 0, hi = 1) =>
  randomFill(ctx, shape, gen, 'uniform', lo, hi);
/** Normal with the given mean and standard deviation. */
export const randn = (ctx: GpuContext, shape: readonly number[], gen: Generator, mean = 0, std = 1) =>
  randomFill(ctx, shape, gen, 'normal', mean, std);
/** 1.0 with probability p, else 0.0. */
export const bernoulli = (ctx: GpuContext, shape: readonly number[], gen: Generator, p: number) => {
  if (!(p >= 0 && p <= 1)) throw new EngineError('bernoulli', `probability ${p} is outside [0, 1]`);
  return randomFill(ctx, shape, gen, 'bernoulli', p, 0);
};
