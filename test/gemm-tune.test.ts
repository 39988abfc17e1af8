// The GEMM core's measured tiling choice: tuneGemm times both variants on one tiny problem, records
// the faster for (adapter, shape class), saves it through the atomic file store, and a second call
// reads it back without measuring; gemmVariant then returns it unless a variant is forced.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { matmulRaw } from '../src/wgsl/matmul.js';
import { adapterKey, gemmVariant, setGemmVariant, shapeClass, tuneGemm } from '../src/wgsl/gemm.js';
import { fileChoiceStore } from '../src/wgsl/gemm-cache-node.js';

const gpu = useGpu();

describe('tuneGemm', () => {
  it('measures once, records per adapter and shape class, persists atomically, and is overridden by a forced variant', async () => {
    const { ctx } = gpu;
    const dir = mkdtempSync(join(tmpdir(), 'gemm-tune-'));
    try {
      const path = join(dir, 'sub', 'gemm-tilings.json');
      const store = fileChoiceStore(path);
      const cls = shapeClass('matmul-tune-test', 5, 6, 7);
      const a = tensor(ctx, new Float32Array(35).fill(0.5), [5, 7]);
      const b = tensor(ctx, new Float32Array(42).fill(0.25), [7, 6]);
      let runs = 0;
      const cases = [{ cls, run: () => (runs++, matmulRaw(a, b)) }];
      const first = await tuneGemm(ctx, cases, { store, reps: 1 });
      expect(['reg', 'wg']).toContain(first[cls]);
      expect(runs).toBe(4); // warm-up + 1 timed run per variant
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { choices: Record<string, string> };
      expect(saved.choices[`${adapterKey(ctx)}#${cls}`]).toBe(first[cls]);
      const again = await tuneGemm(ctx, cases, { store, reps: 1 });
      expect(again[cls]).toBe(first[cls]);
      expect(runs).toBe(4); // known: not measured again
      if (!process.env.GEMM_VARIANT) expect(gemmVariant(ctx, cls)).toBe(first[cls]);
      const other = first[cls] === 'reg' ? 'wg' : 'reg';
      setGemmVariant(ctx, other);
      expect(gemmVariant(ctx, cls)).toBe(other);
      setGemmVariant(ctx, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
