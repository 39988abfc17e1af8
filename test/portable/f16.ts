// Portable checks of f16 tensors (src/wgsl/cast.ts) and the f16 matmul / mixed-precision linear and
// matmul (src/wgsl/matmul_f16.ts). Casts are checked bit for bit against the CPU converters of
// src/io/safetensors.ts (numberToF16, f16ToNumber) on special values, every f16 bit pattern, ties
// and random values. The matmuls are checked two ways:
//   - against a float64 product of the same f16-rounded operands: f16×f16 products are exact in f32,
//     so only the f32 accumulation differs, |err| <= K·2^-23·Σ_k|a_ik||b_kj| (a generous multiple of
//     the K·u/(1 - K·u) summation bound with u = 2^-24);
//   - against the f32 path on the unrounded operands: rounding each operand to f16 costs a relative
//     2^-11 (f16's unit roundoff), so each product is off by at most (2·2^-11 + 2^-22)|a||b| and
//     |c16 - c32| <= (2^-10 + 2^-21 + 2·K·2^-23)·Σ_k|a_ik||b_kj|; an f16 output adds 2^-10·|c| (WGSL
//     lets f32 -> f16 pick either neighbour of an inexact value, so up to one f16 ulp, not half).
// On lavapipe, f16 values in registers are carried at f32 precision (f16(1/3) reads back as
// 0.33333334 and f16(70000) as 70000, not inf): only storage is really binary16 there, so these checks
// see the rounding of the operands (stored as f16) but could not see f16 arithmetic; the kernels do
// none by design (products and sums in f32), and the bounds hold for a device that rounds too.
// Every check skips with a printed line when the device lacks 'shader-f16' (Chromium's SwiftShader
// may), except the one that checks the error a device without it gives.

import type { GpuContext } from '../../src/gpu/context.js';
import { Tensor } from '../../src/autograd/tensor.js';
import { requireGrad } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { tensor } from '../../src/wgsl/fill.js';
import { cast, castRaw, hasF16, readF32, tensorF16 } from '../../src/wgsl/cast.js';
import { linearMixed, matmulF16Raw, matmulMixed } from '../../src/wgsl/matmul_f16.js';
import { linear, matmul } from '../../src/wgsl/matmul.js';
import { f16ToNumber, numberToF16 } from '../../src/io/safetensors.js';
import type { Check } from './harness.js';
import { Rng, assertEqual, assertThrows, f32 } from './ref.js';

const U = 2 ** -24; // f32 unit roundoff
const U16 = 2 ** -11; // f16 unit roundoff

/** Print why a check did nothing and return true when the device has no 'shader-f16'. */
function skipWithoutF16(ctx: GpuContext, name: string): boolean {
  if (hasF16(ctx)) return false;
  console.log(`skipped '${name}': this device (${ctx.deviceName}) has no 'shader-f16'`);
  return true;
}

/** A view of `ctx` whose device reports no 'shader-f16' (everything else is the real context). */
export function withoutF16(ctx: GpuContext): GpuContext {
  const features = new Set([...ctx.features].filter((f) => f !== 'shader-f16'));
  return Object.create(ctx, { features: { value: features } }) as GpuContext;
}

const r16 = (x: number) => f16ToNumber(numberToF16(x));

/** |got - want| <= bound elementwise (NaN only matches NaN); names the first offender. */
function assertWithin(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, expected ${want.length}`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!,
      w = want[i]!;
    if (g === w || (Number.isNaN(g) && Number.isNaN(w))) continue;
    if (!(Math.abs(g - w) <= bound[i]!)) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (first >= 0)
    throw new Error(`${what}[${first}]: got ${got[first]}, expected ${want[first]} ± ${bound[first]}; ${bad} of ${want.length} off`);
}

/** Row-major C = op(A)·op(B) in float64 and Σ|a||b| per element. */
function refMatmul(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, transA: boolean, transB: boolean) {
  const c = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0,
        t = 0;
      for (let k = 0; k < K; k++) {
        const av = a[transA ? k * M + m : m * K + k]!;
        const bv = b[transB ? n * K + k : k * N + n]!;
        s += av * bv;
        t += Math.abs(av * bv);
      }
      c[m * N + n] = s;
      absSum[m * N + n] = t;
    }
  return { c, absSum };
}

/** Bound of the f32 accumulation of exact products (see the file comment). */
const accBound = (absSum: Float64Array, K: number) => absSum.map((s) => K * 2 * U * s + 1e-30);
/** Bound of the f16 path against the f32 path on unrounded operands. */
const mixedBound = (absSum: Float64Array, K: number) => absSum.map((s) => (2 * U16 + 2 * 2 * U + 2 * K * 2 * U) * s + 1e-30);

/** f32 values whose f16 rounding exercises every branch of the conversion. */
function castInputs(rng: Rng): Float32Array {
  const v: number[] = [0, -0, 1, -1, Infinity, -Infinity, NaN, -NaN, 65504, -65504, 65519.99, 65520, 65536, 1e10, -1e10];
  v.push(2 ** -14, 2 ** -24, -(2 ** -24), 2 ** -25, 2 ** -25 * 1.0000001, 2 ** -26, 1.5 * 2 ** -24, 2.5 * 2 ** -24, 1e-30, -1e-45, 3e-8);
  // every finite f16 value round-trips; midpoints between neighbours test ties to even, and their
  // f32 neighbours (one f32 ulp above and below) test the rounding direction
  for (let h = 0; h < 0x7c00; h += 37) {
    const a = f16ToNumber(h);
    const b = f16ToNumber(h + 1);
    const mid = (a + b) / 2;
    v.push(a, -b, mid, -mid, Math.fround(mid * (1 + 2 ** -23)), Math.fround(mid * (1 - 2 ** -23)));
  }
  for (const x of rng.normal(301)) v.push(x * 2 ** Math.round(rng.uniform(1, -30, 20)[0]!));
  // an odd count, so the last word's high half is padding
  if (v.length % 2 === 0) v.push(0.1);
  return Float32Array.from(v);
}

export const F16_CHECKS: Check[] = [
  {
    name: "f16: a device without 'shader-f16' gets an error naming the feature from every f16 op",
    run: async (ctx) =>
      ctx.scope(() => {
        const no = withoutF16(ctx);
        assertThrows(() => tensorF16(no, [1, 2, 3]), /tensorF16: f16 tensors need the WebGPU feature 'shader-f16'/);
        const x = new Tensor(no, [3], 'f32');
        assertThrows(() => cast(x, 'f16'), /cast: f16 tensors need the WebGPU feature 'shader-f16', which this device/);
        const h = new Tensor(no, [3], 'f16');
        assertThrows(() => matmulF16Raw(h, h), /matmulF16: .*rank 2/);
        const h2 = new Tensor(no, [2, 2], 'f16');
        assertThrows(() => matmulF16Raw(h2, h2), /matmulF16: the f16 matmul need the WebGPU feature 'shader-f16'/);
        const w = new Tensor(no, [2, 3], 'f32');
        assertThrows(() => linearMixed(x, w), /linearMixed: f16 tensors need the WebGPU feature 'shader-f16'/);
      }),
  },
  {
    name: 'f16 cast: f32 -> f16 bits equal the CPU numberToF16 (ties to even, overflow, inf, NaN, ±0, subnormals); f16 -> f32 exact for all 65536 patterns',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        if (skipWithoutF16(ctx, 'f16 cast')) return;
        const x = castInputs(rng);
        const h = castRaw(tensor(ctx, x), 'f16');
        const bits = await h.read<'f16'>();
        assertEqual(bits.length, x.length, 'f16 element count');
        const want = Uint16Array.from(x, (v) => numberToF16(v));
        for (let i = 0; i < x.length; i++)
          if (bits[i] !== want[i])
            throw new Error(`f32 -> f16 of ${x[i]} (element ${i}): got 0x${bits[i]!.toString(16)}, expected 0x${want[i]!.toString(16)}`);
        // the padding half of the last word is zero
        const raw = new Uint16Array(await ctx.readBuffer(h.buffer('test'), Math.ceil(x.length / 2) * 4));
        assertEqual(raw[x.length], 0, 'padding half of the last word');
        // every bit pattern back to f32, exactly
        const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
        const back = await readF32(tensorF16(ctx, all));
        for (let i = 0; i < 65536; i++) {
          const e = f16ToNumber(i);
          const g = back[i]!;
          if (!(g === e && Object.is(g, e)) && !(Number.isNaN(g) && Number.isNaN(e)))
            throw new Error(`f16 -> f32 of 0x${i.toString(16)}: got ${g}, expected ${e}`);
        }
        // a round trip of f16 values is the identity on the bits (NaN payloads too)
        const again = await castRaw(tensor(ctx, back), 'f16').read<'f16'>();
        for (let i = 0; i < 65536; i++)
          if (again[i] !== i && !((i & 0x7c00) === 0x7c00 && i & 0x3ff))
            throw new Error(`f16 -> f32 -> f16 of 0x${i.toString(16)} gave 0x${again[i]!.toString(16)}`);
      }),
  },
  {
    name: 'f16 cast: differentiable, the f32 gradient passes through both casts; tensorF16 rounds like the CPU',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        if (skipWithoutF16(ctx, 'f16 cast gradient')) return;
        const n = 13;
        const xd = f32(rng.uniform(n, -3, 3));
        const x = requireGrad(tensor(ctx, xd, [n]));
        const h = cast(x, 'f16');
        assertEqual(h.dtype, 'f16', 'cast dtype');
        const y = cast(h, 'f32');
        const yv = await y.read();
        for (let i = 0; i < n; i++) if (yv[i] !== r16(xd[i]!)) throw new Error(`cast round trip of ${xd[i]}: got ${yv[i]}, expected ${r16(xd[i]!)}`);
        const g = f32(rng.uniform(n));
        backward(y, tensor(ctx, g, [n]));
        const dx = await x.grad!.read();
        for (let i = 0; i < n; i++) if (dx[i] !== g[i]) throw new Error(`dx[${i}]: got ${dx[i]}, expected ${g[i]}`);
        const t = await tensorF16(ctx, xd).read<'f16'>();
        assertEqual(Array.from(t), Array.from(xd, numberToF16), 'tensorF16 bits');
        assertThrows(() => cast(tensor(ctx, new Int32Array(2), [2], 'i32'), 'f16'), /cast: cannot cast i32\[2\] to f16/);
      }),
  },
  {
    name: 'f16 matmul: every transpose, f32 and f16 output, bias; vs float64 on the f16 operands (accumulation bound) and vs the f32 matmul (2^-10 rounding bound)',
    run: (ctx, rng) => {
      if (skipWithoutF16(ctx, 'f16 matmul')) return Promise.resolve();
      return ctx.scope(async () => {
        for (const [M, K, N] of [[5, 37, 7], [33, 16, 9], [1, 3, 1], [40, 70, 21]] as const)
          for (const transA of [false, true])
            for (const transB of [false, true]) {
              const what = `matmulF16 ${M}x${K}x${N}${transA ? ' transA' : ''}${transB ? ' transB' : ''}`;
              const ad = f32(rng.uniform(M * K, -2, 2));
              const bd = f32(rng.uniform(K * N, -2, 2));
              const biasd = f32(rng.uniform(N));
              const aShape = transA ? [K, M] : [M, K];
              const bShape = transB ? [N, K] : [K, N];
              const a16 = tensorF16(ctx, ad, aShape);
              const b16 = tensorF16(ctx, bd, bShape);
              const ar = Float64Array.from(ad, r16);
              const br = Float64Array.from(bd, r16);
              const { c, absSum } = refMatmul(ar, br, M, N, K, transA, transB);
              const withBias = c.map((v, i) => v + biasd[i % N]!);
              const bias = tensor(ctx, biasd);
              const got = await matmulF16Raw(a16, b16, { transA, transB, bias }).read();
              assertWithin(got, withBias, accBound(absSum, K).map((e, i) => e + U * Math.abs(withBias[i]!)), `${what} f32 out vs float64`);
              const got16 = await readF32(matmulF16Raw(a16, b16, { transA, transB, out: 'f16' }));
              assertWithin(got16, c, accBound(absSum, K).map((e, i) => e + 2 * U16 * Math.abs(c[i]!) + 2 ** -24), `${what} f16 out vs float64`);
              // against the f32 path on the unrounded operands
              const c32 = await matmul(tensor(ctx, ad, aShape), tensor(ctx, bd, bShape), { transA, transB }).read();
              const raw = refMatmul(ad, bd, M, N, K, transA, transB);
              const noBias = await matmulF16Raw(a16, b16, { transA, transB }).read();
              assertWithin(noBias, c32, mixedBound(raw.absSum, K), `${what} vs the f32 matmul`);
            }
        assertThrows(() => matmulF16Raw(tensorF16(ctx, [1, 2], [1, 2]), tensorF16(ctx, [1, 2, 3], [3, 1])), /matmulF16: inner dimensions differ/);
        assertThrows(() => matmulF16Raw(tensor(ctx, [1, 2], [1, 2]), tensorF16(ctx, [1, 2], [2, 1])), /matmulF16: a is f32\[1,2\]; the f16 matmul takes f16 operands/);
      });
    },
  },
  {
    name: 'mixed linear and matmul: forward and backward vs float64 of the f16-rounded operands and vs the f32 path (bounds from 2^-11 and K)',
    run: (ctx, rng) => {
      if (skipWithoutF16(ctx, 'mixed linear')) return Promise.resolve();
      return ctx.scope(async () => {
        for (const [B, IN, OUT] of [[6, 20, 7], [17, 33, 12]] as const) {
          const what = `linearMixed x[${B},${IN}] w[${OUT},${IN}]`;
          const xd = f32(rng.uniform(B * IN));
          const wd = f32(rng.uniform(OUT * IN));
          const bd = f32(rng.uniform(OUT));
          const gd = f32(rng.uniform(B * OUT));
          const run = (fn: typeof linear) => {
            const x = requireGrad(tensor(ctx, xd, [B, IN]));
            const w = requireGrad(tensor(ctx, wd, [OUT, IN]));
            const b = requireGrad(tensor(ctx, bd, [OUT]));
            const y = fn(x, w, b);
            backward(y, tensor(ctx, gd, [B, OUT]));
            return Promise.all([y.read(), x.grad!.read(), w.grad!.read(), b.grad!.read()]);
          };
          const [y, dx, dw, db] = await run(linearMixed);
          const [y32, dx32, dw32, db32] = await run(linear);
          // float64 of the rounded operands: y = r(x)·r(w)ᵀ + b, dx = r(g)·r(w), dw = r(g)ᵀ·r(x)
          const xr = Float64Array.from(xd, r16);
          const wr = Float64Array.from(wd, r16);
          const gr = Float64Array.from(gd, r16);
          const fy = refMatmul(xr, wr, B, OUT, IN, false, true);
          const yRef = fy.c.map((v, i) => v + bd[i % OUT]!);
          assertWithin(y, yRef, accBound(fy.absSum, IN).map((e, i) => e + U * Math.abs(yRef[i]!)), `${what} y vs float64`);
          const fdx = refMatmul(gr, wr, B, IN, OUT, false, false);
          assertWithin(dx, fdx.c, accBound(fdx.absSum, OUT), `${what} dx vs float64`);
          const fdw = refMatmul(gr, xr, OUT, IN, B, true, false);
          assertWithin(dw, fdw.c, accBound(fdw.absSum, B), `${what} dw vs float64`);
          const dbRef = Float64Array.from({ length: OUT }, (_, o) => {
            let s = 0;
            for (let r = 0; r < B; r++) s += gd[r * OUT + o]!;
            return s;
          });
          assertWithin(db, dbRef, dbRef.map(() => B * 2 * U * B), `${what} db (f32) vs float64`);
          // vs the f32 path
          const ay = refMatmul(xd, wd, B, OUT, IN, false, true);
          assertWithin(y, y32, mixedBound(ay.absSum, IN).map((e, i) => e + 2 * U * Math.abs(y32[i]!)), `${what} y vs f32 linear`);
          assertWithin(dx, dx32, mixedBound(refMatmul(gd, wd, B, IN, OUT, false, false).absSum, OUT), `${what} dx vs f32 linear`);
          assertWithin(dw, dw32, mixedBound(refMatmul(gd, xd, OUT, IN, B, true, false).absSum, B), `${what} dw vs f32 linear`);
          assertWithin(db, db32, db32.map(() => B * 4 * U * B), `${what} db vs f32 linear`);
        }
        // matmulMixed with a batched A (folded into M) and a transposed B
        const [Bt, M, K, N] = [3, 4, 9, 5];
        const ad = f32(rng.uniform(Bt * M * K));
        const bd = f32(rng.uniform(N * K));
        const gd = f32(rng.uniform(Bt * M * N));
        const a = requireGrad(tensor(ctx, ad, [Bt, M, K]));
        const b = requireGrad(tensor(ctx, bd, [N, K]));
        const c = matmulMixed(a, b, { transB: true });
        assertEqual(c.shape, [Bt, M, N], 'matmulMixed batched shape');
        backward(c, tensor(ctx, gd, [Bt, M, N]));
        const ar = Float64Array.from(ad, r16);
        const br = Float64Array.from(bd, r16);
        const gr = Float64Array.from(gd, r16);
        const fc = refMatmul(ar, br, Bt * M, N, K, false, true);
        assertWithin(await c.read(), fc.c, accBound(fc.absSum, K), 'matmulMixed c vs float64');
        const fa = refMatmul(gr, br, Bt * M, K, N, false, false);
        assertWithin(await a.grad!.read(), fa.c, accBound(fa.absSum, N), 'matmulMixed da vs float64');
        const fb = refMatmul(gr, ar, N, K, Bt * M, true, false);
        assertWithin(await b.grad!.read(), fb.c, accBound(fb.absSum, Bt * M), 'matmulMixed db vs float64');
        assertThrows(() => matmulMixed(tensor(ctx, ad, [Bt, M, K]), tensor(ctx, f32(rng.uniform(Bt * K * N)), [Bt, K, N])), /matmulMixed: .*needs rank-2 b/);
      });
    },
  },
];
