// f16 tensors: casts between f32 and f16 (forward and backward), f16 uploads and reads, and the
// feature gate. f16 storage is IEEE binary16, two elements per 32-bit word, element 0 in the low
// half (little-endian, as a Uint16Array on the host); a tensor with an odd element count has a
// padded last word (the pool's buffers are 4-byte aligned), whose high half the casts set to 0.
//
// The casts work on the bits (u32 arithmetic, no float conversion in the shader): f32 -> f16 rounds
// to nearest even, overflows to ±inf, keeps signed zeros, makes subnormals, and turns any NaN into
// the quiet NaN 0x7e00 with its sign, exactly as the CPU's numberToF16 (src/io/safetensors.ts); f16
// -> f32 is exact (subnormals normalised, NaN payload kept). WGSL's own f32 -> f16 conversion is
// not used because the spec leaves the rounding of inexact values and the result of out-of-range
// values to the implementation, and drivers may flush f16 subnormals.
//
// Gradients stay f32 (the autograd sweep, src/autograd/backward.ts, is f32-only): the gradient of
// an f16 tensor is an f32 tensor of its shape, so both casts pass the gradient through unchanged.
// Kernels that compute in f16 (src/wgsl/matmul_f16.ts) round their own operands.
//
// f16 tensors need the adapter feature 'shader-f16' (requested by GpuContext.fromGPU when offered):
// every op here that makes or reads an f16 tensor checks it first (requireF16) and throws an
// EngineError naming the feature otherwise, so f16 data never reaches a device that cannot use it.

import type { GpuContext } from '../gpu/context.js';
import { Tensor, type DType } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { numel, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

/** The WebGPU feature f16 tensors and f16 kernels need. */
export const F16_FEATURE = 'shader-f16';

/** True when the context's device has 'shader-f16' enabled. */
export function hasF16(ctx: GpuContext): boolean {
  return ctx.features.has(F16_FEATURE);
}

/** Throw an EngineError naming 'shader-f16' unless the device has it. */
export function requireF16(ctx: GpuContext, op: string, what = 'f16 tensors'): void {
  if (hasF16(ctx)) return;
  throw new EngineError(
    op,
    `${what} need the WebGPU feature '${F16_FEATURE}', which this device (${ctx.deviceName}) does not have ` +
      `(features: ${[...ctx.features].sort().join(', ') || 'none'}); use f32 tensors (mixed precision falls back to f32 by itself)`,
  );
}

/** WGSL: f32 bits -> f16 bits (in the low 16 bits), round to nearest even; the same rules as numberToF16. */
export const F32_TO_F16_BITS_WGSL = /* wgsl */ `
fn f32_to_f16_bits(f: u32) -> u32 {
  let sign = (f >> 16u) & 0x8000u;
  let ex = (f >> 23u) & 0xffu;
  var mant = f & 0x7fffffu;
  if (ex == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = i32(ex) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    var r = mant >> shift;
    let rest = mant & ((1u << shift) - 1u);
    if (rest > half || (rest == half && (r & 1u) == 1u)) { r = r + 1u; }
    return sign | r;
  }
  var r = (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1u) == 1u)) { r = r + 1u; }
  return sign | r;
}`;

/** WGSL: f16 bits (low 16 bits) -> f32 bits, exact. */
export const F16_BITS_TO_F32_WGSL = /* wgsl */ `
fn f16_bits_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 31u) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let p = 31u - countLeadingZeros(m); // highest set bit, 0..9: value = m * 2^-24
  return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
}`;

function castShader(to: 'f16' | 'f32'): string {
  if (to === 'f16')
    return /* wgsl */ `
${F32_TO_F16_BITS_WGSL}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<uniform> P: vec4<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = ${LINEAR_INDEX(WG)};
  let n = P.x;
  if (2u * w >= n) { return; }
  let lo = f32_to_f16_bits(src[2u * w]);
  var hi = 0u;
  if (2u * w + 1u < n) { hi = f32_to_f16_bits(src[2u * w + 1u]); }
  out[w] = lo | (hi << 16u);
}`;
  return /* wgsl */ `
${F16_BITS_TO_F32_WGSL}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<uniform> P: vec4<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.x) { return; }
  let h = (src[i / 2u] >> (16u * (i % 2u))) & 0xffffu;
  out[i] = f16_bits_to_f32(h);
}`;
}

/** The cast kernel without autograd: a new tensor of dtype `to` (f32 <-> f16 only). */
export function castRaw(x: Tensor, to: 'f16' | 'f32', op = 'cast'): Tensor {
  const from = x.dtype;
  if (!((from === 'f32' && to === 'f16') || (from === 'f16' && to === 'f32')))
    throw new EngineError(op, `cannot cast ${x.describe()} to ${to} (only f32 <-> f16)`);
  requireF16(x.ctx, op);
  const out = new Tensor(x.ctx, x.shape, to);
  if (x.size === 0) return out;
  const invocations = to === 'f16' ? Math.ceil(x.size / 2) : x.size;
  x.ctx.dispatch({
    op,
    key: `cast:${from}->${to}`,
    code: () => castShader(to),
    buffers: [out.binding(op), x.binding(op)],
    uniforms: packUniforms([x.size, 0, 0, 0]),
    workgroups: grid1d(invocations, WG),
  });
  return out;
}

/**
 * `x` as dtype `to` (f32 <-> f16; the same dtype returns a view). Differentiable: the gradient (an
 * f32 tensor, see the file comment) passes through unchanged.
 */
export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return new Tensor(x.ctx, x.shape, to, x);
  if (to !== 'f16' && to !== 'f32') throw new EngineError('cast', `cannot cast ${x.describe()} to ${to} (only f32 <-> f16)`);
  const y = castRaw(x, to);
  return record(y, 'cast', [x], (g) => [new Tensor(g.ctx, g.shape, g.dtype, g)]);
}

/**
 * An f16 tensor from f32 values (rounded on the GPU to nearest even) or from raw binary16 bits
 * (a Uint16Array, uploaded as they are).
 */
export function tensorF16(ctx: GpuContext, data: Float32Array | Uint16Array | readonly number[], shape?: readonly number[]): Tensor {
  const op = 'tensorF16';
  const shp = shape ?? [data.length];
  if (numel(shp) !== data.length) throw new EngineError(op, `${data.length} values do not fill shape ${shapeStr(shp)}`);
  requireF16(ctx, op);
  if (data instanceof Uint16Array) {
    const t = new Tensor(ctx, shp, 'f16');
    if (data.length) ctx.upload(t.buffer(op), data);
    return t;
  }
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  const tmp = new Tensor(ctx, shp, 'f32');
  if (f.length) ctx.upload(tmp.buffer(op), f);
  const t = castRaw(tmp, 'f16', op);
  tmp.dispose();
  return t;
}

/** The values of an f32 or f16 tensor as a Float32Array (f16 widened exactly on the GPU first). */
export async function readF32(t: Tensor): Promise<Float32Array> {
  if (t.dtype === 'f32') return t.read<'f32'>();
  if (t.dtype !== 'f16') throw new EngineError('readF32', `${t.describe()} is not floating point`);
  const w = castRaw(t, 'f32', 'readF32');
  try {
    return await w.read<'f32'>();
  } finally {
    w.dispose();
  }
}
