// The one forward + backward check of an op against its float64 reference, for every kernel test
// (portable checks and Node test files alike): fresh seeded inputs, forward compared elementwise,
// a random output gradient fed straight to backward(y, dOut), every input's gradient compared with
// refVjp of the reference (random-direction central differences in float64). Browser-safe. It does
// not time anything and does not poison buffers (the context's pool does that).

import type { GpuContext } from '../../src/gpu/context.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import { requireGrad } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { tensor } from '../../src/wgsl/fill.js';
import { Rng, assertClose, f32, viaF32, refVjp, size } from './ref.js';

/** One input of the op under test. */
export interface InputSpec {
  shape: readonly number[];
  /** f32 values uniform in [lo, hi) (default [-1, 1]); i32 values are integers in [0, hi) */
  range?: readonly [number, number];
  dtype?: 'f32' | 'i32';
  /** check this input's gradient (default: true for f32; i32 inputs never have one) */
  grad?: boolean;
  /** fixed values instead of random ones (rounded through f32 for f32 inputs) */
  values?: ArrayLike<number>;
  /** name in failure messages (default x, or x0, x1, ... for several inputs) */
  name?: string;
}

/** [rtol, atol]: |got - expected| <= atol + rtol |expected| */
export type Tol = readonly [number, number];

export interface OpCase {
  /** what is checked, e.g. "mul [3,5]|[5]"; every failure message starts with it and the seed */
  what: string;
  inputs: readonly InputSpec[];
  /** the op under test, on tensors made from `inputs` in order */
  op: (...xs: Tensor[]) => Tensor;
  /** its float64 reference, on the same inputs (i32 ones as integer-valued float64) */
  ref: (...xs: Float64Array[]) => ArrayLike<number>;
  /** the output shape the op must give (default: only the element count is checked) */
  outShape?: readonly number[];
  /** forward tolerance (default [1e-5, 1e-6]) */
  tol?: Tol;
  /** gradient tolerance (default [1e-3, 1e-4]) */
  gradTol?: Tol;
  /** the output gradient (default uniform in [-1, 1)); e.g. zero it next to a kink of the reference */
  dOut?: (rng: Rng, yRef: Float64Array) => ArrayLike<number>;
  /**
   * Exact vector-Jacobian product, only where central differences cannot apply (a max with planted
   * ties): the expected gradient of every input with a gradient (null for the others). Default:
   * refVjp of `ref`.
   */
  vjp?: (xs: Float64Array[], dOut: Float64Array) => (ArrayLike<number> | null)[];
  /** finite-difference step of refVjp (default 1e-6) */
  h?: number;
  /**
   * A second implementation on the GPU that must agree with `op` forward and backward on the same
   * inputs and output gradient (a fused kernel keeps its composite as a reference).
   */
  composite?: { op: (...xs: Tensor[]) => Tensor; tol?: Tol; gradTol?: Tol };
}

export interface OpResult {
  /** the inputs as the GPU saw them (float64 copies) */
  xs: Float64Array[];
  /** the op's output as read back */
  y: Float32Array;
  /** the output gradient used (null when no input has a gradient) */
  dOut: Float64Array | null;
  /** each input's gradient as read back (null where not checked) */
  grads: (Float32Array | null)[];
}

const FWD: Tol = [1e-5, 1e-6];
const BWD: Tol = [1e-3, 1e-4];

function draw(rng: Rng, s: InputSpec): Float64Array {
  const n = size(s.shape);
  if (s.values) {
    if (s.values.length !== n) throw new Error(`values of length ${s.values.length} for shape [${s.shape}]`);
    return s.dtype === 'i32' ? Float64Array.from(s.values) : viaF32(s.values);
  }
  if (s.dtype === 'i32') return Float64Array.from(rng.int(n, s.range?.[1] ?? 2));
  const [lo, hi] = s.range ?? [-1, 1];
  return viaF32(rng.uniform(n, lo, hi));
}

function upload(ctx: GpuContext, specs: readonly InputSpec[], xs: Float64Array[]): Tensor[] {
  return specs.map((s, k) => {
    if (s.dtype === 'i32') return tensor(ctx, Int32Array.from(xs[k]!), s.shape, 'i32');
    const t = tensor(ctx, f32(xs[k]!), s.shape);
    return s.grad === false ? t : requireGrad(t);
  });
}

const hasGrad = (s: InputSpec) => s.dtype !== 'i32' && s.grad !== false;
const shapeOk = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Check one op forward and backward on fresh inputs drawn from `rng` (see OpCase). Throws an Error
 * naming the case, the seed, the tensor and its first bad element. Runs in its own ctx.scope.
 */
export function checkOp(ctx: GpuContext, rng: Rng, c: OpCase): Promise<OpResult> {
  const tag = `${c.what} (seed ${rng.seed})`;
  const name = (k: number) => c.inputs[k]!.name ?? (c.inputs.length === 1 ? 'x' : `x${k}`);
  return ctx.scope(async () => {
    const xs = c.inputs.map((s) => draw(rng, s));
    const ts = upload(ctx, c.inputs, xs);
    const yT = c.op(...ts);
    if (c.outShape && !shapeOk(yT.shape, c.outShape)) throw new Error(`${tag}: output shape [${yT.shape}], expected [${c.outShape}]`);
    const yRef = Float64Array.from(c.ref(...xs));
    const y = await yT.read();
    assertClose(y, yRef, ...(c.tol ?? FWD), `${tag} forward`, yT.shape);

    const gradK = c.inputs.flatMap((s, k) => (hasGrad(s) ? [k] : []));
    if (gradK.length === 0) return { xs, y, dOut: null, grads: ts.map(() => null) };
    if (!yT.requiresGrad) throw new Error(`${tag}: output does not require grad though inputs ${gradK.map(name)} do`);
    const dOut = viaF32(c.dOut ? c.dOut(rng, yRef) : rng.uniform(yT.size));
    backward(yT, tensor(ctx, f32(dOut), yT.shape));
    let expected: (ArrayLike<number> | null)[];
    if (c.vjp) expected = c.vjp(xs, dOut);
    else {
      // differentiate with respect to the gradient inputs only, the others held fixed
      const at = (gs: Float64Array[]) => xs.map((x, k) => (gradK.includes(k) ? gs[gradK.indexOf(k)]! : x));
      const g = refVjp((...gs) => c.ref(...at(gs)), gradK.map((k) => xs[k]!), dOut, c.h);
      expected = xs.map((_, k) => (gradK.includes(k) ? g[gradK.indexOf(k)]! : null));
    }
    const grads: (Float32Array | null)[] = ts.map(() => null);
    for (const k of gradK) {
      const t = ts[k]!;
      if (!t.grad) throw new Error(`${tag}: input ${name(k)} got no gradient from backward`);
      grads[k] = await t.grad.read();
      const want = expected[k];
      if (!want) throw new Error(`${tag}: no expected gradient for input ${name(k)} (mark it grad: false instead)`);
      assertClose(grads[k]!, want, ...(c.gradTol ?? BWD), `${tag} d${name(k)}`, t.shape);
    }

    if (c.composite) {
      const ts2 = upload(ctx, c.inputs, xs);
      const y2 = c.composite.op(...ts2);
      assertClose(y, await y2.read(), ...(c.composite.tol ?? FWD), `${tag} forward vs composite`, yT.shape);
      backward(y2, tensor(ctx, f32(dOut), y2.shape));
      for (const k of gradK) {
        const g2 = ts2[k]!.grad;
        if (!g2) throw new Error(`${tag}: composite gave input ${name(k)} no gradient`);
        assertClose(grads[k]!, await g2.read(), ...(c.composite.gradTol ?? BWD), `${tag} d${name(k)} vs composite`, ts[k]!.shape);
      }
    }
    return { xs, y, dOut, grads };
  });
}
