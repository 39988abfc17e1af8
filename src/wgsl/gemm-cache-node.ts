// Node-only persistence of the GEMM core's measured tiling choices (tuneGemm): one JSON file keyed
// `adapter#shapeClass`, written atomically (temporary file, then rename) so concurrent runs never read
// a torn file. Not imported by any browser-safe module; the browser keeps choices in memory only.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { GemmChoiceStore, GemmVariant } from './gemm.js';

/** Default location, relative to the working directory. */
export const GEMM_CACHE_PATH = '.cache/gemm-tilings.json';

/** A GemmChoiceStore on a JSON file (missing or unreadable file = no choices yet). */
export function fileChoiceStore(path = GEMM_CACHE_PATH): GemmChoiceStore {
  return {
    async load() {
      try {
        const data = JSON.parse(await readFile(path, 'utf8')) as { choices?: Record<string, GemmVariant> };
        return data.choices ?? {};
      } catch {
        return {};
      }
    },
    async save(choices) {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(tmp, `${JSON.stringify({ version: 1, choices }, null, 2)}\n`);
      await rename(tmp, path);
    },
  };
}
