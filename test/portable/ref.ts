// Float64 reference helpers shared by the Node tests and the browser tests (no vitest, no Node
// imports): seeded random inputs (seed visible, replayable through TEST_SEED), closeness checks
// naming the first bad index, finite-difference VJPs. It does not launch kernels (grad.ts does).

import { Generator } from '../../src/util/rng.js';
import { EngineError } from '../../src/util/errors.js';

/**
 * The seed a replay asks for: TEST_SEED from the environment in Node, or the `TEST_SEED` URL
 * parameter of the page in a browser; undefined when neither is set. Throws on a malformed value.
 */
export function requestedSeed(): number | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; location?: { search?: string } };
  const raw = g.process?.env?.TEST_SEED ?? (g.location?.search ? new URLSearchParams(g.location.search).get('TEST_SEED') : null) ?? undefined;
  if (raw === undefined || raw === '') return undefined;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`TEST_SEED must be an integer in [0, 2^32), got '${raw}'`);
  return seed;
}

/** TEST_SEED when a replay asks for one, else a fresh random 32-bit seed. */
export const testSeed = (): number => requestedSeed() ?? Math.floor(Math.random() * 4294967296);

/** Seeded float64 random arrays for inputs; `seed` is public so a failure can name it. */
export class Rng {
  private g: Generator;
  readonly seed: number;
  constructor(seed = testSeed()) {
    this.seed = seed;
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
  /** A 32-bit seed for an engine Generator drawn from this stream (so a replay reproduces it too). */
  u32(): number {
    return (this.g.cpuInt(65536) * 65536 + this.g.cpuInt(65536)) >>> 0;
  }
}

/**
 * n distinct values spread evenly over [lo, hi) in random order: no two within (hi - lo) / n, so
 * central differences of a max (pooling, max reductions) never straddle a tie.
 */
export function distinct(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  const order = Array.from(rng.uniform(n), (u, i) => [u, i] as const).sort((a, b) => a[0] - b[0]);
  const v = new Float64Array(n);
  order.forEach(([, i], rank) => (v[i] = lo + ((hi - lo) * (rank + 0.5)) / n));
  return v;
}

/** f32 copy of float64 data (what the GPU sees). */
export const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
/** float64 copy of data rounded through f32, so references start from exactly the GPU's inputs. */
export const viaF32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

/** Row-major coordinate of flat index i in `shape`, e.g. "[1,0,2]". */
function coordStr(i: number, shape: readonly number[]): string {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return `[${c.join(',')}]`;
}

/**
 * Assert |a - e| <= atol + rtol |e| elementwise (NaN matches only NaN); throws an Error naming the
 * first offending index (and its coordinate when `shape` is given), how many are off, and the worst.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 1e-5,
  atol = 1e-6,
  what = 'value',
  shape?: readonly number[],
) {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let first = -1,
    bad = 0,
    worst = -1,
    worstErr = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    const err = Number.isNaN(a) || Number.isNaN(e) ? Infinity : Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(err > 0)) continue;
    bad++;
    if (first < 0) first = i;
    if (err > worstErr) (worst = i), (worstErr = err);
  }
  if (first < 0) return;
  const at = (i: number) => `[${i}]${shape && shape.length > 1 ? ` ${coordStr(i, shape)}` : ''}: got ${actual[i]}, expected ${expected[i]}`;
  const more = bad > 1 ? `; ${bad} of ${expected.length} off, the worst at ${at(worst)}` : '';
  throw new Error(`${what}${at(first)} (rtol ${rtol}, atol ${atol})${more}`);
}

/** Assert structural equality of plain data (shapes, index plans, integer arrays) through JSON. */
export function assertEqual(actual: unknown, expected: unknown, what = 'value'): void {
  const plain = (v: unknown) => JSON.stringify(ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v);
  if (plain(actual) !== plain(expected)) throw new Error(`${what}: got ${plain(actual)}, expected ${plain(expected)}`);
}

/**
 * Assert that `fn` throws an EngineError (the library's one error type for bad input) whose message
 * matches `pattern`; the Error thrown otherwise says what was thrown instead.
 */
export function assertThrows(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  if (!threw) throw new Error(`expected an EngineError matching ${pattern}; nothing was thrown`);
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  if (!(thrown instanceof EngineError)) throw new Error(`expected an EngineError matching ${pattern}; got ${(thrown as Error)?.name ?? typeof thrown}: ${message}`);
  if (!pattern.test(message)) throw new Error(`expected an error matching ${pattern}; got: ${message}`);
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
