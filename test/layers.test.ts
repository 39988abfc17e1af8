// The layering rule of src/: folders point down only (scripts/check-layers.mjs) and no file-level
// import cycle exists. The checker is also run on a small planted tree to show it catches both.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: plain .mjs script without types
import { checkLayers, LAYERS } from '../scripts/check-layers.mjs';

describe('layering of src/', () => {
  it('has no upward import and no import cycle', () => {
    const { files, problems } = checkLayers(new URL('../src', import.meta.url).pathname);
    expect(files).toBeGreaterThan(50);
    expect(problems).toEqual([]);
  });

  it('the checker reports a planted cycle, an upward import, a kernel call from unlearn and an unknown folder', () => {
    const root = mkdtempSync(join(tmpdir(), 'layers-'));
    try {
      for (const d of ['util', 'wgsl', 'nn', 'unlearn', 'mystery']) mkdirSync(join(root, d));
      writeFileSync(join(root, 'util', 'a.ts'), "import { b } from './b.js';\nexport const a = 1;\n");
      writeFileSync(join(root, 'util', 'b.ts'), "import { a } from './a.js';\nexport const b = 2;\n");
      writeFileSync(join(root, 'wgsl', 'k.ts'), "import { L } from '../nn/l.js';\nexport const k = 3;\n");
      writeFileSync(join(root, 'nn', 'l.ts'), 'export const L = 4;\n');
      writeFileSync(join(root, 'mystery', 'm.ts'), "import { a } from '../util/a.js';\n");
      writeFileSync(join(root, 'unlearn', 'u.ts'), "import { k } from '../wgsl/k.js';\n");
      const { problems } = checkLayers(root) as { problems: string[] };
      expect(problems.some((p) => /import cycle: util\/a\.ts <-> util\/b\.ts/.test(p))).toBe(true);
      expect(problems.some((p) => /wgsl\/k\.ts: imports '\.\.\/nn\/l\.js' from layer 'nn'/.test(p))).toBe(true);
      expect(problems.some((p) => /folder 'mystery' is not in the layer list/.test(p))).toBe(true);
      expect(problems.some((p) => /unlearn\/u\.ts: imports kernel file '\.\.\/wgsl\/k\.js'/.test(p))).toBe(true);
      expect(LAYERS.indexOf('wgsl')).toBeLessThan(LAYERS.indexOf('nn'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
