// Portable checks of the elementwise table (src/wgsl/elementwise.ts over map.ts's kernel): every unary
// row and every differentiable binary op, forward and backward against float64, on odd shapes (scalar
// path) and multiples of 4 (vec4 path), binaries across every broadcast mode (contiguous, block,
// vec4 block, strided); comparisons, where, the block-broadcast index plan and the error messages.
// Not here: reductions (checks.ts) and the composites built on these ops (composite.ts).

import type { GpuContext } from '../../src/gpu/context.js';
import { tensor } from '../../src/wgsl/fill.js';
import { requireGrad } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { blockBroadcast } from '../../src/wgsl/map.js';
import {
  UNARY,
  BINARY,
  unary,
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  where,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  addScalar,
  clamp,
  type UnaryName,
} from '../../src/wgsl/elementwise.js';
import type { Tensor } from '../../src/autograd/tensor.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { Rng, assertClose, assertEqual, assertThrows, f32, size, strides } from './ref.js';

/** [7] and [3,5] take the scalar contiguous kernel, [2,3,4] (24 elements) the vec4 one. */
const SHAPES = [[7], [3, 5], [2, 3, 4]];
/** input domain per op (log, sqrt need positives; powScalar keeps a away from 0) */
const DOMAIN: Partial<Record<UnaryName, [number, number]>> = {
  log: [0.2, 3],
  sqrt: [0.2, 3],
  rsqrt: [0.2, 3],
  reciprocal: [0.5, 3],
  powScalar: [0.3, 2],
};
/** scalar parameters p0, p1 of the rows that take them */
const PARAMS: Partial<Record<UnaryName, [number, number]>> = {
  addScalar: [0.75, 0],
  mulScalar: [-1.5, 0],
  powScalar: [2.5, 0],
  clamp: [-0.4, 0.3],
};

/**
 * Tolerances [forward, gradient] where the default (2e-5 relative) is tighter than WGSL allows: sin
 * and cos have an absolute error bound of 2^-11 on [-pi, pi] (SwiftShader uses it; lavapipe is exact).
 */
const TRIG_ATOL = 2 ** -11;
const TOL: Partial<Record<UnaryName, [[number, number], [number, number]]>> = {
  sin: [[2e-5, TRIG_ATOL], [1e-3, TRIG_ATOL]],
  cos: [[2e-5, TRIG_ATOL], [1e-3, TRIG_ATOL]],
};

/** Float64 reference of a broadcast binary op: output shape and f(a, b) over row-major arrays. */
function broadcastRef(f: (a: number, b: number) => number, sa: readonly number[], sb: readonly number[]) {
  const n = Math.max(sa.length, sb.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.max(sa[sa.length - n + i] ?? 1, sb[sb.length - n + i] ?? 1));
  const so = strides(out);
  const offset = (shape: readonly number[], coord: number[]) => {
    const st = strides(shape);
    let o = 0;
    shape.forEach((d, j) => (o += (d === 1 ? 0 : coord[coord.length - shape.length + j]!) * st[j]!));
    return o;
  };
  return {
    shape: out,
    f: (a: Float64Array, b: Float64Array) => {
      const y = new Float64Array(size(out));
      for (let i = 0; i < y.length; i++) {
        const coord = so.map((s, j) => Math.floor(i / s) % out[j]!);
        y[i] = f(a[offset(sa, coord)]!, b[offset(sb, coord)]!);
      }
      return y;
    },
  };
}

/** Shape pairs covering every mode of mapRaw (see map.ts's MapMode). */
const PAIRS: [number[], number[]][] = [
  [[3, 5], [3, 5]], // contiguous, scalar path
  [[2, 3, 4], [2, 3, 4]], // contiguous, vec4 path
  [[3, 5], [5]], // row broadcast, block path
  [[4, 1, 3], [1, 5, 1]], // both broadcast: strided path
  [[7], [1]], // a scalar operand
  [[2, 1], [2, 6]], // a broadcast: block path on a, contiguous b
  [[2, 3, 4, 5], [1, 3, 1, 1]], // per-channel: vec4 block path, b splat
  [[4, 8], [8]], // row broadcast: vec4 block path, b read as vec4
  [[3, 8], [3, 1]], // column broadcast: vec4 block path, b splat
  [[3, 5], [3, 1]], // block path without vec4 (15 elements)
  [[3, 1, 5], [2, 3, 4, 5]], // broadcast inside the block: strided path
];
const DIFFERENTIABLE = { add, sub, mul, div, pow, maximum, minimum };
const COMPARISONS = { eq, ne, lt, le, gt, ge };

function unaryCheck(name: UnaryName): Check {
  return {
    name: `elementwise: ${name} forward/backward (scalar and vec4 paths)`,
    run: async (ctx, rng) => {
      const [lo, hi] = DOMAIN[name] ?? [-2.5, 2.5];
      const [p0, p1] = PARAMS[name] ?? [0, 0];
      const ref = UNARY[name].ref as (a: number, p0: number, p1: number) => number;
      for (const shape of SHAPES)
        await checkOp(ctx, rng, {
          what: `${name}${JSON.stringify(shape)}`,
          inputs: [{ shape, range: [lo, hi] }],
          op: (x) => unary(name, x, p0, p1),
          ref: (x) => x.map((v) => ref(v, p0, p1)),
          outShape: shape,
          tol: TOL[name]?.[0] ?? [2e-5, 2e-6],
          gradTol: TOL[name]?.[1],
        });
    },
  };
}

function binaryCheck(name: keyof typeof DIFFERENTIABLE): Check {
  return {
    name: `elementwise: ${name} forward/backward with every broadcast mode`,
    run: async (ctx, rng) => {
      const positive = name === 'pow' || name === 'div';
      const range: [number, number] = positive ? [0.5, 2] : [-2, 2];
      for (const [sa, sb] of PAIRS) {
        const { shape, f } = broadcastRef(BINARY[name].ref, sa, sb);
        await checkOp(ctx, rng, {
          what: `${name} ${JSON.stringify(sa)}|${JSON.stringify(sb)}`,
          inputs: [
            { shape: sa, range, name: 'a' },
            { shape: sb, range, name: 'b' },
          ],
          op: DIFFERENTIABLE[name],
          ref: f,
          outShape: shape,
          tol: [2e-5, 2e-6],
          gradTol: [1e-3, 2e-4],
        });
      }
    },
  };
}

/** Values on a grid of halves in [-1, 1], so equal pairs occur. */
const halves = (rng: Rng, n: number) => rng.uniform(n).map((v) => Math.round(v * 2) / 2);

export const ELEMENTWISE_CHECKS: Check[] = [
  ...(Object.keys(UNARY) as UnaryName[]).map(unaryCheck),
  ...(Object.keys(DIFFERENTIABLE) as (keyof typeof DIFFERENTIABLE)[]).map(binaryCheck),
  {
    name: 'elementwise: an expression reusing an input (gradients of both uses add up)',
    run: (ctx, rng) =>
      checkOp(ctx, rng, {
        what: 'a*b/(b+1)',
        inputs: [
          { shape: [3, 5], range: [0.5, 2], name: 'a' },
          { shape: [5], range: [0.5, 2], name: 'b' },
        ],
        op: (a, b) => div(mul(a, b), addScalar(b, 1)),
        ref: (a, b) => a.map((v, i) => (v * b[i % 5]!) / (b[i % 5]! + 1)),
        tol: [2e-5, 2e-6],
      }),
  },
  {
    name: 'elementwise: comparisons (all six, broadcast) and where forward/backward',
    run: async (ctx, rng) => {
      for (const [name, fn] of Object.entries(COMPARISONS)) {
        const { f } = broadcastRef(BINARY[name as keyof typeof COMPARISONS].ref, [3, 5], [5]);
        await checkOp(ctx, rng, {
          what: name,
          inputs: [
            { shape: [3, 5], values: halves(rng, 15), grad: false },
            { shape: [5], values: halves(rng, 5), grad: false },
          ],
          op: fn,
          ref: f,
          tol: [0, 0],
        });
      }
      // where(cond, x, y): cond [3,5] a 0/1 mask, x [3,5], y [5] broadcast; no gradient for cond
      const cond = Float64Array.from(rng.int(15, 2));
      cond[0] = 1;
      cond[1] = 0;
      await checkOp(ctx, rng, {
        what: 'where',
        inputs: [
          { shape: [3, 5], values: cond, grad: false, name: 'cond' },
          { shape: [3, 5], name: 'x' },
          { shape: [5], name: 'y' },
        ],
        op: where,
        ref: (c, x, y) => x.map((v, i) => (c[i] ? v : y[i % 5]!)),
        tol: [0, 0],
        gradTol: [1e-6, 1e-6],
      });
    },
  },
  {
    name: 'elementwise: blockBroadcast finds (i / div) % mod for contiguous blocks and refuses the rest',
    run: async () => {
      assertEqual(blockBroadcast([5], [3, 5]), { div: 1, mod: 5 }, '[5] in [3,5]');
      assertEqual(blockBroadcast([1, 3, 1, 1], [2, 3, 4, 5]), { div: 20, mod: 3 }, '[1,3,1,1] in [2,3,4,5]');
      assertEqual(blockBroadcast([2, 1], [2, 6]), { div: 6, mod: 2 }, '[2,1] in [2,6]');
      assertEqual(blockBroadcast([1], [7]), { div: 1, mod: 1 }, '[1] in [7]');
      assertEqual(blockBroadcast([4, 1, 3], [4, 5, 3]), null, '[4,1,3] in [4,5,3]');
    },
  },
  {
    name: 'elementwise: bad shapes, dtypes, bounds and disposed tensors are rejected naming the op',
    run: (ctx) => errors(ctx),
  },
];

async function errors(ctx: GpuContext) {
  ctx.scope(() => {
    const a = tensor(ctx, new Float32Array(6), [2, 3]);
    const b = tensor(ctx, new Float32Array(4), [4]);
    assertThrows(() => add(a, b), /add: shapes \[2,3\] and \[4\] cannot be broadcast \(dimension 1: 3 vs 4\)/);
    const i = tensor(ctx, new Int32Array(6), [2, 3], 'i32');
    assertThrows(() => mul(a, i), /mul: argument 1 is i32\[2,3\]/);
    assertThrows(() => clamp(a, 1, -1), /clamp: lower bound 1 is above upper bound -1/);
    assertThrows(() => requireGrad(i), /requireGrad: i32\[2,3\].* is not floating point/);
    a.dispose();
    assertThrows(() => add(a, a), /add: f32\[2,3\] was used after dispose/);
  });
  // backward() itself checks the output gradient it is given
  await ctx.scope(async () => {
    const x = requireGrad(tensor(ctx, f32([1, 2, 3]), [3]));
    const y: Tensor = mul(x, x);
    assertThrows(() => backward(y, tensor(ctx, f32([1, 1]), [2])), /backward: output gradient \[2\] does not match output \[3\]/);
    assertThrows(() => backward(y), /backward: .* is not a scalar; pass its output gradient/);
    backward(y, tensor(ctx, f32([1, 1, 1]), [3]));
    assertClose(await x.grad!.read(), [2, 4, 6], 0, 0, 'd(x*x)');
    assertThrows(() => backward(y, tensor(ctx, f32([1, 1, 1]), [3])), /backward: the graph of .* was freed by an earlier backward\(\)/);
  });
}
