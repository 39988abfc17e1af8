// matmul and linear against float64 references through the shared checkOp (forward and backward):
// odd sizes and sizes of 1, batch broadcasting (incl. rank-2 with batched), all four transpose
// combinations, vec4-aligned and unaligned storage, 8x8 register tiles with edge guards, linear with
// and without bias, and the errors for mismatched shapes. The same checks with each GEMM tiling
// forced run in test/portable/gemm.ts (Node and Chromium); these use the context's default choice.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, checkOp, size } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { matmul, linear } from '../src/wgsl/matmul.js';
import { checkMatmul } from './portable/gemm.js';

const gpu = useGpu();
/** Four pipelines (8x8 register tiles for the larger sizes) compile per test: lavapipe on a loaded machine needs minutes. */
const COMPILE_HEAVY_MS = 360_000;

describe('matmul', () => {
  const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 64, 64], [8, 12, 16], [5, 4, 13], [68, 8, 72]];
  for (const [M, K, N] of SIZES)
    it(`${M}x${K}x${N}, all four transpose combinations${M >= 64 && N >= 64 ? ' (8x8 register tiles, edge guards)' : ''}`, async () => {
      const rng = new Rng();
      for (const ta of [false, true]) for (const tb of [false, true]) await checkMatmul(gpu.ctx, rng, [], [], M, K, N, ta, tb);
    }, COMPILE_HEAVY_MS);

  it('batched [2,3,5]x[5,4] (rank-2 operand with a batched one, both ways)', async () => {
    const rng = new Rng();
    await checkMatmul(gpu.ctx, rng, [2], [], 3, 5, 4, false, false);
    await checkMatmul(gpu.ctx, rng, [2], [], 3, 5, 4, false, true);
    await checkMatmul(gpu.ctx, rng, [2], [], 3, 5, 4, true, false);
    await checkMatmul(gpu.ctx, rng, [], [2], 3, 5, 4, false, false);
    await checkMatmul(gpu.ctx, rng, [], [3, 2], 4, 8, 5, true, true);
  });

  it('broadcast batch [2,1,3,4]x[1,5,4,6] and friends', async () => {
    const rng = new Rng();
    await checkMatmul(gpu.ctx, rng, [2, 1], [1, 5], 3, 4, 6, false, false);
    await checkMatmul(gpu.ctx, rng, [2, 1], [1, 5], 3, 4, 6, true, true);
    await checkMatmul(gpu.ctx, rng, [3], [2, 1], 8, 4, 8, false, true);
    await checkMatmul(gpu.ctx, rng, [1], [2], 5, 3, 2, true, false);
  });

  it('rejects mismatched inner dimensions naming both shapes', () => {
    const { ctx } = gpu;
    ctx.scope(() => {
      const a = tensor(ctx, new Float32Array(6), [2, 3]);
      const b = tensor(ctx, new Float32Array(8), [4, 2]);
      expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: a \[2,3\] has K=3, b \[4,2\] has K=4/);
      expect(() => matmul(a, tensor(ctx, new Float32Array(12), [2, 2, 3]))).toThrow(/matmul: .*\[2,3\].*\[2,2,3\]/);
      expect(() => matmul(a, tensor(ctx, new Float32Array(3), [3]))).toThrow(/matmul: b is f32\[3\]/);
      expect(() => linear(a, tensor(ctx, new Float32Array(8), [2, 4]))).toThrow(/linear: .*\[2,3\].*\[2,4\]/);
    });
  });
});

describe('linear', () => {
  for (const [xs, IN, OUT, withBias] of [
    [[5], 3, 4, true],
    [[6], 8, 12, true],
    [[2, 3], 7, 5, true],
    [[4], 5, 3, false],
    [[], 4, 3, true],
  ] as [number[], number, number, boolean][])
    it(`x ${JSON.stringify([...xs, IN])}, w [${OUT},${IN}]${withBias ? ', bias' : ''}`, async () => {
      const rows = size(xs);
      await checkOp(gpu.ctx, new Rng(), {
        what: `linear x[${[...xs, IN]}] w[${OUT},${IN}]${withBias ? ' +bias' : ''}`,
        inputs: [{ shape: [...xs, IN], name: 'x' }, { shape: [OUT, IN], name: 'w' }, ...(withBias ? [{ shape: [OUT], name: 'bias' }] : [])],
        op: (x, w, b) => linear(x, w, b),
        ref: (x, w, b) => {
          const out = new Float64Array(rows * OUT);
          for (let r = 0; r < rows; r++)
            for (let o = 0; o < OUT; o++) {
              let s = b ? b[o]! : 0;
              for (let i = 0; i < IN; i++) s += x[r * IN + i]! * w[o * IN + i]!;
              out[r * OUT + o] = s;
            }
          return out;
        },
        outShape: [...xs, OUT],
        tol: [1e-5, 1e-5],
      });
    });
});
