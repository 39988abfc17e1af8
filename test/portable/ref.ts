import { Generator } from '../../src/util/rng.js';
// Float64 reference helpers shared by the Node tests and the browser tests (no vitest, no Node
// imports): seeded random inputs, closeness checks naming the first bad index, finite-difference VJPs.


/** Seeded float64 random arrays for inputs (fresh per test through the seed). */
export class Rng {
  private g: Generator;
  constructor(seed = Math.floor(Math.random() * 4294967296)) {
    this.g = new Generator(seed);
  }
  uniform(n: number, lo = -1, hi = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.g.cpuUniform();
    return a;
  }
  normal(n: number): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u = this.g.cpuUniform() + 1e-12;
      a[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.g.cpuUniform());
    }
    return a;
  }
  int(n: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.g.cpuInt(hi);
    return a;
  }
}

/** f32 copy of float64 data (what the GPU sees). */
export const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
/** float64 copy of data rounded through f32, so references start from exactly the GPU's inputs. */
export const viaF32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

/** Assert |a - e| <= atol + rtol |e| elementwise, naming the first offending index (throws Error). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = 'value') {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let worst = -1,
    worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (Number.isNaN(a) !== Number.isNaN(e) || err > worstErr) {
      worst = i;
      worstErr = Number.isNaN(a) ? Infinity : err;
      if (Number.isNaN(a)) break;
    }
  }
  if (worst >= 0)
    throw new Error(`${what}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
}

/**
 * Vector-Jacobian product of a float64 reference function by central differences:
 * for each input i and element k, d<f(x), dOut>/dx_ik. Exact to ~1e-8 for smooth functions.
 */
export function refVjp(
  f: (...xs: Float64Array[]) => ArrayLike<number>,
  inputs: Float64Array[],
  dOut: ArrayLike<number>,
  h = 1e-6,
): Float64Array[] {
  const dot = (y: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i]! * dOut[i]!;
    return s;
  };
  return inputs.map((x, i) => {
    const g = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const xs = inputs.map((t) => Float64Array.from(t));
      xs[i]![k] = x[k]! + h;
      const up = dot(f(...xs));
      xs[i]![k] = x[k]! - h;
      const down = dot(f(...xs));
      g[k] = (up - down) / (2 * h);
    }
    return g;
  });
}

/** Index helpers for references over row-major arrays (trivial, so shared with the engine). */
export { stridesOf as strides, numel as size } from '../../src/autograd/shape.js';
