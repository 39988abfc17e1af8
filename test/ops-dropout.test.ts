// dropout: the mask equals the CPU Threefry reference (so it is reproducible per seed and stream),
// the kept fraction is near 1 - p, and backward is mask * g / (1 - p); identity when off.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose } from './helpers.js';
import { tensor, randomRef } from '../src/wgsl/fill.js';
import { mul } from '../src/wgsl/elementwise.js';
import { sum } from '../src/wgsl/reduce.js';
import { requireGrad } from '../src/autograd/graph.js';
import { dropout } from '../src/wgsl/dropout.js';
import { Generator } from '../src/util/rng.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

describe('dropout', () => {
  it('forward and backward match the float64 reference built from the same Threefry bits', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    for (const [shape, p] of [[[7], 0.5], [[3, 5], 0.1], [[33, 61], 0.3]] as [number[], number][]) {
      await ctx.scope(async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const seed = Math.floor(Math.random() * 2 ** 40);
        const gen = new Generator(seed);
        gen.nextStream(); // start mid-sequence
        const stream = gen.state().stream;
        const xd = viaF32(rng.uniform(n));
        const x = requireGrad(tensor(ctx, f32(xd), shape));
        const y = dropout(x, p, gen, true);
        expect(gen.state().stream).toBe(stream + 1);
        const keep = Math.fround(1 - p);
        const scale = Math.fround(1 / (1 - p));
        const mask = Array.from({ length: n }, (_, i) => randomRef('bernoulli', gen.k0, gen.k1, stream, i, keep, 0));
        expectClose(await y.read(), xd.map((v, i) => v * mask[i]! * scale), 1e-6, 0, `dropout ${shape} p ${p} forward`);
        // same seed and stream reproduce the same output
        const again = new Generator(seed);
        again.setState({ seed, stream });
        expect(Array.from(await dropout(x, p, again, true).read())).toEqual(Array.from(await y.read()));
        const dOut = viaF32(rng.uniform(n));
        backward(sum(mul(y, tensor(ctx, f32(dOut), shape))));
        expectClose(await x.grad!.read(), dOut.map((g, i) => g * mask[i]! * scale), 1e-6, 0, `dropout ${shape} dx`);
        if (n > 1000) {
          const kept = mask.reduce((a, b) => a + b, 0) / n;
          expect(Math.abs(kept - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
        }
      });
    }
  });

  it('is the identity when not training or p = 0, and rejects p outside [0, 1)', async () => {
    const { ctx } = gpu;
    await ctx.scope(async () => {
      const gen = new Generator(3);
      const x = requireGrad(tensor(ctx, f32([1, 2, 3]), [3]));
      const a = dropout(x, 0.5, gen, false);
      const b = dropout(x, 0, gen, true);
      expect(gen.state().stream).toBe(0);
      expect(Array.from(await a.read())).toEqual([1, 2, 3]);
      expect(Array.from(await b.read())).toEqual([1, 2, 3]);
      backward(sum(mul(a, tensor(ctx, f32([1, 2, 3]), [3]))));
      expect(Array.from(await x.grad!.read())).toEqual([1, 2, 3]);
      expect(() => dropout(x, 1, gen, true)).toThrow(/dropout: drop probability 1 is outside \[0, 1\)/);
    });
  });
});
