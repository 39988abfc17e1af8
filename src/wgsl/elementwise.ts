// Elementwise ops from one table: each row gives the op's WGSL expression, its float64 CPU reference
// (used by the tests) and its backward; the generic map kernel of map.ts evaluates any row over up to
// three broadcast inputs. f32 only: integer tensors (labels, indices) go through gather/scatter and
// cross-entropy instead. Expressions are over the WGSL type alias `T` (f32 or vec4<f32>), e.g.
// `select(T(0.0), a, a > T(0.0))`; scalar parameters are `p0`, `p1` (already splat to T).

import { EngineError } from '../util/errors.js';
import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { sameShape } from '../autograd/shape.js';
import { mapRaw } from './map.js';
import { sumTo } from './reduce.js';

const INV_SQRT2 = 0.7071067811865476;
const INV_SQRT_2PI = 0.3989422804014327;
const SQRT_2_PI = 0.7978845608028654; // sqrt(2 / pi)

function erfRef(x: number): number {
  // float64 erf by series / continued fraction (accurate to ~1e-15), for the references.
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let term = z,
      sum = z;
    for (let n = 1; n < 100; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // continued fraction for erfc
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}
/** float64 erfc without cancellation for large positive x (the continued fraction above). */
function erfcRef(x: number): number {
  if (x < 3) return 1 - erfRef(x);
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (x + f);
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / (x + f);
}
const sigmoidRef = (x: number) => 1 / (1 + Math.exp(-x));

/** Unary ops. Gradient expressions are over x (input), y (output), g (output gradient). */
export const UNARY = {
  neg: { f: '-a', ref: (a: number) => -a, grad: '-g' },
  exp: { f: 'exp(a)', ref: Math.exp, grad: 'g * b' },
  log: { f: 'log(a)', ref: Math.log, grad: 'g / a' },
  sqrt: { f: 'sqrt(a)', ref: Math.sqrt, grad: 'g * T(0.5) / b' },
  rsqrt: { f: 'inverseSqrt(a)', ref: (a: number) => 1 / Math.sqrt(a), grad: 'g * T(-0.5) * b * b * b' },
  reciprocal: { f: 'T(1.0) / a', ref: (a: number) => 1 / a, grad: '-g * b * b' },
  abs: { f: 'abs(a)', ref: Math.abs, grad: 'g * sign(a)' },
  square: { f: 'a * a', ref: (a: number) => a * a, grad: 'g * T(2.0) * a' },
  relu: { f: 'max(a, T(0.0))', ref: (a: number) => Math.max(a, 0), grad: 'select(T(0.0), g, a > T(0.0))' },
  sigmoid: { f: 'sigmoid_(a)', ref: sigmoidRef, grad: 'g * b * (T(1.0) - b)' },
  tanh: { f: 'tanh_(a)', ref: Math.tanh, grad: 'g * (T(1.0) - b * b)' },
  silu: {
    f: 'a * sigmoid_(a)',
    ref: (a: number) => a * sigmoidRef(a),
    grad: 'g * sigmoid_(a) * (T(1.0) + a * (T(1.0) - sigmoid_(a)))',
  },
  gelu: {
    // exact (erf) GELU, PyTorch's default, as 0.5 x erfc(-x / sqrt 2) (no cancellation for x << 0)
    f: `T(0.5) * a * erfc_(a * T(${-INV_SQRT2}))`,
    ref: (a: number) => 0.5 * a * erfcRef(-a * INV_SQRT2),
    grad: `g * (T(0.5) * erfc_(a * T(${-INV_SQRT2})) + a * T(${INV_SQRT_2PI}) * exp(T(-0.5) * a * a))`,
  },
  geluTanh: {
    // GELU's tanh approximation (torch approximate='tanh'): 0.5 x (1 + tanh(u)) = x sigmoid(2u),
    // u = sqrt(2/pi) (x + 0.044715 x^3); written with the sigmoid so x << 0 does not cancel
    f: `a * sigmoid_(T(${2 * SQRT_2_PI}) * (a + T(0.044715) * a * a * a))`,
    ref: (a: number) => 0.5 * a * (1 + Math.tanh(SQRT_2_PI * (a + 0.044715 * a * a * a))),
    grad: `g * (sigmoid_(T(${2 * SQRT_2_PI}) * (a + T(0.044715) * a * a * a)) * (T(1.0) + a * (T(1.0) - sigmoid_(T(${2 * SQRT_2_PI}) * (a + T(0.044715) * a * a * a))) * T(${2 * SQRT_2_PI}) * (T(1.0) + T(${3 * 0.044715}) * a * a)))`,
  },
  sin: { f: 'sin(a)', ref: Math.sin, grad: 'g * cos(a)' },
  cos: { f: 'cos(a)', ref: Math.cos, grad: '-g * sin(a)' },
  // with scalar parameters
  addScalar: { f: 'a + p0', ref: (a: number, p0: number) => a + p0, grad: 'g' },
  mulScalar: { f: 'a * p0', ref: (a: number, p0: number) => a * p0, grad: 'g * p0' },
  powScalar: {
    f: 'powf_(a, p0)',
    ref: (a: number, p0: number) => Math.pow(a, p0),
    grad: 'g * p0 * powf_(a, p0 - T(1.0))',
  },
  clamp: {
    f: 'clamp(a, p0, p1)',
    ref: (a: number, p0: number, p1: number) => Math.min(Math.max(a, p0), p1),
    grad: 'select(T(0.0), g, (a >= p0) & (a <= p1))',
  },
} satisfies Record<string, { f: string; ref: (a: number, p0: number, p1: number) => number; grad: string }>;
export type UnaryName = keyof typeof UNARY;

/** Binary ops with broadcasting. Comparisons return 1.0 / 0.0 and have no gradient. */
export const BINARY = {
  add: { f: 'a + b', ref: (a: number, b: number) => a + b },
  sub: { f: 'a - b', ref: (a: number, b: number) => a - b },
  mul: { f: 'a * b', ref: (a: number, b: number) => a * b },
  div: { f: 'a / b', ref: (a: number, b: number) => a / b },
  pow: { f: 'powf_(a, b)', ref: (a: number, b: number) => Math.pow(a, b) },
  maximum: { f: 'max(a, b)', ref: Math.max },
  minimum: { f: 'min(a, b)', ref: Math.min },
  eq: { f: 'select(T(0.0), T(1.0), a == b)', ref: (a: number, b: number) => +(a === b) },
  ne: { f: 'select(T(0.0), T(1.0), a != b)', ref: (a: number, b: number) => +(a !== b) },
  lt: { f: 'select(T(0.0), T(1.0), a < b)', ref: (a: number, b: number) => +(a < b) },
  le: { f: 'select(T(0.0), T(1.0), a <= b)', ref: (a: number, b: number) => +(a <= b) },
  gt: { f: 'select(T(0.0), T(1.0), a > b)', ref: (a: number, b: number) => +(a > b) },
  ge: { f: 'select(T(0.0), T(1.0), a >= b)', ref: (a: number, b: number) => +(a >= b) },
} satisfies Record<string, { f: string; ref: (a: number, b: number) => number }>;
export type BinaryName = keyof typeof BINARY;

// ------------------------------------------------------------------------------------------------
// Public ops with autograd

/** y = f(x) for a unary op of the table; `p0`, `p1` are its scalar parameters where it has any. */
export function unary(name: UnaryName, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const spec = UNARY[name];
  const y = mapRaw(name, spec.f, [x], [p0, p1]);
  return record(y, name, [x], (g) => {
    // gradient expression over a = x, b = y, c = g (renamed so the map kernel can evaluate it)
    const expr = spec.grad.replace(/\bg\b/g, 'c');
    return [mapRaw(`${name}.backward`, expr, [x, y, g], [p0, p1])];
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const relu = (x: Tensor) => unary('relu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const silu = (x: Tensor) => unary('silu', x);
export const gelu = (x: Tensor) => unary('gelu', x);
/** GELU with the tanh approximation (torch's approximate='tanh'). */
export const geluTanh = (x: Tensor) => unary('geluTanh', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s);
export const mulScalar = (x: Tensor, s: number) => unary('mulScalar', x, s);
export const powScalar = (x: Tensor, p: number) => unary('powScalar', x, p);
export const clamp = (x: Tensor, lo: number, hi: number) => {
  if (!(lo <= hi)) throw new EngineError('clamp', `lower bound ${lo} is above upper bound ${hi}`);
  return unary('clamp', x, lo, hi);
};

function binaryRaw(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  return mapRaw(name, BINARY[name].f, [a, b]);
}

/** Reduce a broadcast gradient back to an input's shape. */
function gradTo(g: Tensor, shape: readonly number[]): Tensor {
  return sameShape(g.shape, shape) ? g : sumTo(g, shape);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('add', a, b), 'add', [a, b], (g) => [gradTo(g, a.shape), gradTo(g, b.shape)]);
}
export function sub(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('sub', a, b), 'sub', [a, b], (g) => [
    gradTo(g, a.shape),
    b.requiresGrad ? gradTo(mapRaw('sub.backward', '-a', [g]), b.shape) : null,
  ]);
}
export function mul(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('mul', a, b), 'mul', [a, b], (g) => [
    a.requiresGrad ? gradTo(mapRaw('mul.backward', 'a * b', [g, b]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('mul.backward', 'a * b', [g, a]), b.shape) : null,
  ]);
}
export function div(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('div', a, b), 'div', [a, b], (g) => [
    a.requiresGrad ? gradTo(mapRaw('div.backward', 'a / b', [g, b]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('div.backward', '-a * b / (c * c)', [g, a, b]), b.shape) : null,
  ]);
}
/** a^b elementwise (a > 0 for a gradient with respect to b). */
export function pow(a: Tensor, b: Tensor): Tensor {
  const y = binaryRaw('pow', a, b);
  return record(y, 'pow', [a, b], (g) => [
    a.requiresGrad ? gradTo(mapRaw('pow.backward', 'a * c * powf_(b, c - T(1.0))', [g, a, b]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('pow.backward', 'a * b * log(c)', [g, y, a]), b.shape) : null,
  ]);
}
/** Elementwise maximum; on ties the gradient goes to `a`. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('maximum', a, b), 'maximum', [a, b], (g) => [
    a.requiresGrad ? gradTo(mapRaw('maximum.backward', 'select(T(0.0), a, b >= c)', [g, a, b]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('maximum.backward', 'select(T(0.0), a, b < c)', [g, a, b]), b.shape) : null,
  ]);
}
/** Elementwise minimum; on ties the gradient goes to `a`. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw('minimum', a, b), 'minimum', [a, b], (g) => [
    a.requiresGrad ? gradTo(mapRaw('minimum.backward', 'select(T(0.0), a, b <= c)', [g, a, b]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('minimum.backward', 'select(T(0.0), a, b > c)', [g, a, b]), b.shape) : null,
  ]);
}
/** Comparisons: 1.0 where true, 0.0 where false; not differentiable. */
export const eq = (a: Tensor, b: Tensor) => binaryRaw('eq', a, b);
export const ne = (a: Tensor, b: Tensor) => binaryRaw('ne', a, b);
export const lt = (a: Tensor, b: Tensor) => binaryRaw('lt', a, b);
export const le = (a: Tensor, b: Tensor) => binaryRaw('le', a, b);
export const gt = (a: Tensor, b: Tensor) => binaryRaw('gt', a, b);
export const ge = (a: Tensor, b: Tensor) => binaryRaw('ge', a, b);

/** cond ? a : b elementwise with broadcasting; `cond` is an f32 mask (nonzero = true). */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const y = mapRaw('where', 'select(c, b, a != T(0.0))', [cond, a, b]);
  return record(y, 'where', [cond, a, b], (g) => [
    null,
    a.requiresGrad ? gradTo(mapRaw('where.backward', 'select(T(0.0), a, b != T(0.0))', [g, cond]), a.shape) : null,
    b.requiresGrad ? gradTo(mapRaw('where.backward', 'select(a, T(0.0), b != T(0.0))', [g, cond]), b.shape) : null,
  ]);
}

