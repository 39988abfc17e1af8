// Portable checks of dropout (src/wgsl/dropout.ts): the mask equals the CPU Threefry reference for the
// generator's (seed, stream), so it is reproducible and the same on every device; forward and
// backward (mask * g / (1 - p)) against float64; the kept fraction is near 1 - p; identity when not
// training or p = 0; p outside [0, 1) rejected. Not here: the random fills (checks.ts).

import { tensor } from '../../src/wgsl/fill.js';
import { randomRef } from '../../src/wgsl/fill.js';
import { requireGrad } from '../../src/autograd/graph.js';
import { backward } from '../../src/autograd/backward.js';
import { dropout } from '../../src/wgsl/dropout.js';
import { Generator } from '../../src/util/rng.js';
import type { Check } from './harness.js';
import { checkOp } from './grad.js';
import { Rng, assertClose, assertEqual, assertThrows, f32, size } from './ref.js';

/** A Generator seed above 2^32 (both key words in use), drawn from the check's Rng. */
const wideSeed = (rng: Rng) => rng.u32() + 4294967296 * (1 + rng.int(1, 255)[0]!);

export const DROPOUT_CHECKS: Check[] = [
  {
    name: 'dropout: mask rebuilt from (seed, stream) on the CPU, reproducible, forward/backward, kept fraction near 1 - p',
    run: async (ctx, rng) => {
      for (const [shape, p] of [[[7], 0.5], [[3, 5], 0.1], [[203], 0.3], [[33, 61], 0.3]] as [number[], number][]) {
        const n = size(shape);
        const seed = wideSeed(rng);
        const gen = new Generator(seed);
        gen.nextStream(); // start mid-sequence
        const stream = gen.state().stream;
        // the kernel compares in f32: keep = f32(1 - p), scale = f32(1 / keep)
        const keep = Math.fround(1 - p);
        const scale = Math.fround(1 / keep);
        const mask = Float64Array.from({ length: n }, (_, i) => randomRef('bernoulli', gen.k0, gen.k1, stream, i, keep, 0));
        const kept = mask.reduce((a, b) => a + b, 0);
        const what = `dropout ${JSON.stringify(shape)} p ${p} seed ${seed}`;
        if (n > 100 && (kept === 0 || kept === n)) throw new Error(`${what}: the reference mask keeps ${kept} of ${n}`);
        // the fraction kept is Binomial(n, 1 - p) / n: within 5 standard deviations of 1 - p
        if (n > 1000 && Math.abs(kept / n - (1 - p)) > 5 * Math.sqrt((p * (1 - p)) / n))
          throw new Error(`${what}: kept ${kept} of ${n}, expected about ${(1 - p) * n}`);
        const r = await checkOp(ctx, rng, {
          what,
          inputs: [{ shape }],
          op: (x) => dropout(x, p, gen, true),
          ref: (x) => x.map((v, i) => v * mask[i]! * scale),
          outShape: shape,
          tol: [1e-6, 0],
          gradTol: [1e-6, 1e-7],
        });
        assertEqual(gen.state().stream, stream + 1, `${what}: streams used`);
        // the same seed and stream give the same output
        const again = new Generator(seed);
        again.setState({ seed, stream });
        await ctx.scope(async () => assertClose(await dropout(tensor(ctx, f32(r.xs[0]!), shape), p, again, true).read(), r.y, 0, 0, `${what} replayed`));
      }
    },
  },
  {
    name: 'dropout: identity (and identity gradient) when not training or p = 0; p outside [0, 1) rejected',
    run: (ctx, rng) =>
      ctx.scope(async () => {
        const gen = new Generator(rng.u32());
        const xd = f32(rng.uniform(5));
        for (const [training, p] of [[false, 0.5], [true, 0]] as const) {
          const x = requireGrad(tensor(ctx, xd, [5]));
          const y = dropout(x, p, gen, training);
          assertClose(await y.read(), xd, 0, 0, `dropout training=${training} p=${p}`);
          const g = f32(rng.uniform(5));
          backward(y, tensor(ctx, g, [5]));
          assertClose(await x.grad!.read(), g, 0, 0, `dropout training=${training} p=${p} dx`);
        }
        assertEqual(gen.state().stream, 0, 'streams used by identity dropouts');
        const x = tensor(ctx, xd, [5]);
        assertThrows(() => dropout(x, 1, gen, true), /dropout: drop probability 1 is outside \[0, 1\)/);
        assertThrows(() => dropout(x, -0.1, gen, true), /dropout: drop probability -0.1 is outside \[0, 1\)/);
        assertThrows(() => dropout(x, NaN, gen, true), /dropout: drop probability NaN is outside \[0, 1\)/);
        assertThrows(() => dropout(tensor(ctx, new Int32Array(2), [2], 'i32'), 0.5, gen, true), /dropout: expected f32, got i32\[2\]/);
      }),
  },
];
