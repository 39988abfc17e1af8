// Kernel checks that run unchanged on every device: Dawn in Node (test/portable.test.ts) and headless
// Chromium (test/browser.test.ts). One or more per kernel, forward and backward, against float64
// references on fresh random inputs. Browser-safe: no Node or vitest imports.

import type { GpuContext } from '../../src/gpu/context.js';
import * as E from '../../src/index.js';
import { Rng, assertClose, f32, viaF32, refVjp, size } from './ref.js';

export interface Check {
  name: string;
  run: (ctx: GpuContext) => Promise<void>;
}

/** loss = sum(y * dOut) so backward sees dOut as the output gradient */
function backwardWith(y: E.Tensor, dOut: Float64Array) {
  E.backward(E.sum(E.mul(y, E.tensor(y.ctx, f32(dOut), y.shape))));
}

export const CHECKS: Check[] = [
  {
    name: 'elementwise: gelu forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const shape = [3, 7];
        const xd = viaF32(rng.uniform(size(shape), -3, 3));
        const x = E.requireGrad(E.tensor(ctx, f32(xd), shape));
        const y = E.gelu(x);
        const ref = (a: Float64Array) => a.map((v) => E.UNARY.gelu.ref(v));
        assertClose(await y.read(), ref(xd), 2e-5, 2e-6, 'gelu');
        const dOut = rng.uniform(size(shape));
        backwardWith(y, dOut);
        assertClose(await x.grad!.read(), refVjp(ref, [xd], viaF32(dOut))[0]!, 1e-3, 1e-4, 'gelu dx');
      }),
  },
  {
    name: 'elementwise: broadcast mul/div forward/backward',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const ad = viaF32(rng.uniform(15, 0.5, 2));
        const bd = viaF32(rng.uniform(5, 0.5, 2));
        const a = E.requireGrad(E.tensor(ctx, f32(ad), [3, 5]));
        const b = E.requireGrad(E.tensor(ctx, f32(bd), [5]));
        const y = E.div(E.mul(a, b), E.addScalar(b, 1));
        const ref = (p: Float64Array, q: Float64Array) => p.map((v, i) => (v * q[i % 5]!) / (q[i % 5]! + 1));
        assertClose(await y.read(), ref(ad, bd), 2e-5, 2e-6, 'mul/div');
        const dOut = rng.uniform(15);
        backwardWith(y, dOut);
        const [da, db] = refVjp(ref, [ad, bd], viaF32(dOut));
        assertClose(await a.grad!.read(), da!, 1e-3, 1e-4, 'da');
        assertClose(await b.grad!.read(), db!, 1e-3, 1e-4, 'db');
      }),
  },
  {
    name: 'reduce: sum/max along an axis with backward, argmax',
    run: (ctx) =>
      ctx.scope(async () => {
        const rng = new Rng();
        const [R, C] = [5, 9];
        const xd = viaF32(rng.uniform(R * C));
        const x = E.requireGrad(E.tensor(ctx, f32(xd), [R, C]));
        const s = E.sum(x, 0);
        const m = E.max(x, 1);
        const sumRef = (a: Float64Array) => Float64Array.from({ length: C }, (_, j) => {
          let t = 0;
          for (let i = 0; i < R; i++) t += a[i * C + j]!;
          return t;
        });
        const maxRef = (a: Float64Array) => Float64Array.from({ length: R }, (_, i) => Math.max(...a.slice(i * C, i * C + C)));
        assertClose(await s.read(), sumRef(xd), 1e-5, 1e-6, 'sum');
        assertClose(await m.read(), maxRef(xd), 0, 0, 'max');
        const am = await E.argmax(x, 1).read();
        const amRef = Array.from({ length: R }, (_, i) => { const row = Array.from(xd.slice(i * C, i * C + C)); return row.indexOf(Math.max(...row)); });
        assertClose(am, amRef, 0, 0, 'argmax');
        const d1 = rng.uniform(C), d2 = rng.uniform(R);
        E.backward(E.add(E.sum(E.mul(s, E.tensor(ctx, f32(d1), [C]))), E.sum(E.mul(m, E.tensor(ctx, f32(d2), [R])))));
        const [g1] = refVjp(sumRef, [xd], viaF32(d1));
        const [g2] = refVjp(maxRef, [xd], viaF32(d2));
        assertClose(await x.grad!.read(), g1!.map((v, i) => v + g2![i]!), 1e-3, 1e-4, 'dx');
      }),
  },
  {
    name: 'random: seeded uniform and normal follow the Threefry reference (same counters on every device)',
    run: (ctx) =>
      ctx.scope(async () => {
        const seed = Math.floor(Math.random() * 1e9);
        const g = new E.Generator(seed);
        const n = 1000;
        const u = await E.rand(ctx, [n], g, -2, 3).read();
        const z = await E.randn(ctx, [n], g).read();
        const ref = new E.Generator(seed);
        const su = ref.nextStream(), sz = ref.nextStream();
        assertClose(u, Float64Array.from({ length: n }, (_, i) => E.randomRef('uniform', ref.k0, ref.k1, su, i, -2, 3)), 1e-6, 1e-6, 'uniform');
        assertClose(z, Float64Array.from({ length: n }, (_, i) => E.randomRef('normal', ref.k0, ref.k1, sz, i, 0, 1)), 1e-3, 1e-4, 'normal'); // log/cos precision differs by device
      }),
  },
];
