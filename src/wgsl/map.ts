// The generic elementwise kernel: evaluates a WGSL expression over up to three broadcast f32 inputs
// (vec4 when every input has the output's shape, block-broadcast fast paths for per-channel, row and
// scalar operands, a general strided path otherwise). No autograd and no op table here: elementwise.ts
// holds the table and the backward rules; reduce.ts and others use mapRaw for their own expressions.

import { EngineError } from '../util/errors.js';
import { Tensor } from '../autograd/tensor.js';
import { broadcastShapes, broadcastStrides, sameShape, checkRank } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';

const WG = 64;

/** WGSL helpers available to every expression (erf/erfc for exact GELU; tanh that never overflows). */
const PRELUDE = /* wgsl */ `
fn erfc_(x: T) -> T {
  // erfc with relative error ~1.2e-7 for every x (Chebyshev fit, Numerical Recipes' erfcc); no
  // cancellation in the tails, so 1 + erf(x) = erfc(-x) stays accurate for very negative x
  let z = abs(x);
  let t = T(1.0) / (T(1.0) + T(0.5) * z);
  let r = t * exp(-z * z - T(1.26551223) + t * (T(1.00002368) + t * (T(0.37409196) + t * (T(0.09678418) +
    t * (T(-0.18628806) + t * (T(0.27886807) + t * (T(-1.13520398) + t * (T(1.48851587) +
    t * (T(-0.82215223) + t * T(0.17087277))))))))));
  return select(r, T(2.0) - r, x < T(0.0));
}
fn erf_(x: T) -> T {
  // Maclaurin series up to x^13 near 0 (relative error < 2e-8 for |x| < 0.5), 1 - erfc beyond
  let z2 = x * x;
  let series = x * (T(1.1283791670955126) + z2 * (T(-0.37612638903183754) + z2 * (T(0.11283791670955126) +
    z2 * (T(-0.026866170645131252) + z2 * (T(0.005223977625442188) + z2 * (T(-0.0008548327023450852) +
    z2 * T(0.00012055332981789664)))))));
  return select(sign(x) * (T(1.0) - erfc_(abs(x))), series, abs(x) < T(0.5));
}
fn tanh_(x: T) -> T {
  let e = exp(T(-2.0) * abs(x));
  return sign(x) * (T(1.0) - e) / (T(1.0) + e);
}
fn sigmoid_(x: T) -> T { return T(1.0) / (T(1.0) + exp(-x)); }
fn powf_(x: T, p: T) -> T {
  // x^p for any sign of x when p is an integer; NaN-free 0^p for p > 0.
  let m = pow(abs(x), p);
  let odd = (abs(p - T(2.0) * floor(p / T(2.0))) == T(1.0));
  return select(m, -m, (x < T(0.0)) & odd);
}
`;

/**
 * vec4 contiguous, scalar contiguous, block broadcast (offset = (i / div) % mod), its vec4 form (each
 * input either a vec4 run, div = 1 and mod % 4 = 0, or one value splat over 4 lanes, div % 4 = 0),
 * general strided
 */
type MapMode = 'v4' | 'c' | 'b' | 'b4' | 's';

/**
 * When an input's non-1 dimensions form one contiguous block of the output's (e.g. [C] or [1,C,1,1]
 * against [N,C,H,W], or a scalar), its element for output index i is (i / div) % mod: two integer
 * ops instead of a div/mod per dimension. Returns null for other broadcasts.
 */
export function blockBroadcast(inShape: readonly number[], outShape: readonly number[]): { div: number; mod: number } | null {
  const R = outShape.length;
  const padded = [...new Array<number>(R - inShape.length).fill(1), ...inShape];
  const kept = padded.flatMap((d, k) => (d !== 1 ? [k] : []));
  if (kept.length === 0) return { div: 1, mod: 1 }; // a scalar
  const first = kept[0]!;
  const last = kept[kept.length - 1]!;
  let mod = 1;
  for (let k = first; k <= last; k++) {
    if (padded[k] !== outShape[k]) return null; // a broadcast dimension inside the block
    mod *= outShape[k]!;
  }
  let div = 1;
  for (let k = last + 1; k < R; k++) div *= outShape[k]!;
  return { div, mod };
}

export function mapShader(expr: string, arity: number, mode: MapMode, vecInputs: boolean[] = []): string {
  const T = mode === 'v4' || mode === 'b4' ? 'vec4<f32>' : 'f32';
  const names = ['a', 'b', 'c'].slice(0, arity);
  const inT = (k: number) => (mode === 'b4' ? (vecInputs[k] ? 'vec4<f32>' : 'f32') : T);
  const inputs = names.map((n, k) => `@group(0) @binding(${k + 1}) var<storage, read> in_${n}: array<${inT(k)}>;`).join('\n');
  const strided = mode === 's';
  const params = strided
    ? `struct Params { n: u32, rank: u32, p0: f32, p1: f32, shape: array<vec4<u32>, 2>, ${names
        .map((n) => `st_${n}: array<vec4<u32>, 2>`)
        .join(', ')} }`
    : mode === 'b' || mode === 'b4'
      ? `struct Params { n: u32, rank: u32, p0: f32, p1: f32, ${names.map((n) => `div_${n}: u32, mod_${n}: u32`).join(', ')} }`
      : `struct Params { n: u32, rank: u32, p0: f32, p1: f32 }`;
  const loads = mode === 'b'
    ? names.map((n) => `let ${n} = in_${n}[(i / P.div_${n}) % P.mod_${n}];`).join('\n  ')
    : mode === 'b4'
    ? // i counts vec4s: a vec4 input's mod is in vec4s; a splat input reads element (4i / div) % mod
      names.map((n, k) => (vecInputs[k] ? `let ${n} = in_${n}[i % P.mod_${n}];` : `let ${n} = T(in_${n}[((4u * i) / P.div_${n}) % P.mod_${n}]);`)).join('\n  ')
    : strided
    ? `
  var rem = i;
  ${names.map((n) => `var o_${n} = 0u;`).join(' ')}
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = P.shape[du / 4u][du % 4u];
    let coord = rem % size;
    rem = rem / size;
    ${names.map((n) => `o_${n} += coord * P.st_${n}[du / 4u][du % 4u];`).join('\n    ')}
  }
  ${names.map((n) => `let ${n} = in_${n}[o_${n}];`).join('\n  ')}`
    : names.map((n) => `let ${n} = in_${n}[i];`).join('\n  ');
  return /* wgsl */ `
alias T = ${T};
${PRELUDE}
${params}
@group(0) @binding(0) var<storage, read_write> out: array<${T}>;
${inputs}
@group(0) @binding(${arity + 1}) var<uniform> P: Params;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  let p0 = T(P.p0);
  let p1 = T(P.p1);
  ${loads}
  out[i] = ${expr};
}`;
}

/**
 * Evaluate a WGSL expression elementwise over broadcast inputs (no autograd). The building block
 * of every elementwise op and of elementwise backward rules.
 */
export function mapRaw(op: string, expr: string, inputs: Tensor[], params: [number, number] = [0, 0], outShape?: number[]): Tensor {
  const ctx = inputs[0]!.ctx;
  for (const [k, t] of inputs.entries()) {
    if (t.dtype !== 'f32') throw new EngineError(op, `argument ${k} is ${t.describe()}; elementwise ops take f32`);
    if (t.ctx !== ctx) throw new EngineError(op, `argument ${k} lives on another GPU context`);
  }
  let shape = outShape ?? [...inputs[0]!.shape];
  if (!outShape) for (const t of inputs.slice(1)) shape = broadcastShapes(op, shape, t.shape);
  checkRank(op, shape);
  const out = new Tensor(ctx, shape, 'f32');
  const n = out.size;
  if (n === 0) return out;
  const contiguous = inputs.every((t) => sameShape(t.shape, shape));
  const blocks = contiguous ? null : inputs.map((t) => blockBroadcast(t.shape, shape));
  const vecInputs = blocks?.map((b) => !!b && b.div === 1 && b.mod % 4 === 0) ?? [];
  const b4 = !!blocks && n % 4 === 0 && blocks.every((b, k) => b && (vecInputs[k] || b.div % 4 === 0));
  const mode: MapMode = contiguous ? (n % 4 === 0 ? 'v4' : 'c') : b4 ? 'b4' : blocks!.every((b) => b) ? 'b' : 's';
  const threads = mode === 'v4' || mode === 'b4' ? n / 4 : n;
  const arity = inputs.length;
  let uniforms: ArrayBuffer;
  if (contiguous) uniforms = packUniforms([threads, shape.length, { f: params[0] }, { f: params[1] }]);
  else if (mode === 'b')
    uniforms = packUniforms([n, shape.length, { f: params[0] }, { f: params[1] }, ...blocks!.flatMap((b) => [b!.div, b!.mod])]);
  else if (mode === 'b4')
    uniforms = packUniforms([
      threads,
      shape.length,
      { f: params[0] },
      { f: params[1] },
      ...blocks!.flatMap((b, k) => (vecInputs[k] ? [1, b!.mod / 4] : [b!.div, b!.mod])),
    ]);
  else
    uniforms = packUniforms([
      n,
      shape.length,
      { f: params[0] },
      { f: params[1] },
      { u32x4: shape, pad: 8 },
      ...inputs.map((t) => ({ u32x4: broadcastStrides(t.shape, shape), pad: 8 })),
    ]);
  ctx.dispatch({
    op,
    key: `map:${mode}${mode === 'b4' ? vecInputs.map((v) => (v ? 'v' : 's')).join('') : ''}:${arity}:${expr}`,
    code: () => mapShader(expr, arity, mode, vecInputs),
    buffers: [out.binding(op), ...inputs.map((t) => t.binding(op))],
    uniforms,
    workgroups: grid1d(threads, WG),
  });
  return out;
}

