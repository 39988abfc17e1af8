#!/usr/bin/env node
// The layering check: every folder of src/ is one layer and imports point down only, in the order
// below; no file-level import cycle anywhere in src/. Prints each violation (file, import, why) and
// exits 1 on any. Reads import/export-from statements with a regex (the code base uses no other form).
// Usage: node scripts/check-layers.mjs [srcDir]

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lowest first. A folder may import itself and any folder listed before it. */
export const LAYERS = ['util', 'gpu', 'autograd', 'wgsl', 'ops', 'io', 'data', 'nn', 'models', 'unlearn', 'cli'];
/**
 * Folders that must stay on the public op surface (src/ops) instead of calling kernels: models and
 * the unlearning layer read like the math, and a kernel change cannot reach past the ops' checks.
 */
export const NO_KERNELS = ['models', 'unlearn', 'cli'];
/** Files directly in src/ (package entries) sit above every folder. */
const ENTRY = '(entry)';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]/g;
const DYNAMIC_RE = /import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

export function checkLayers(srcDir) {
  const root = resolve(srcDir);
  const files = walk(root);
  const known = new Set(files);
  const layerOf = (f) => {
    const rel = relative(root, f).split(sep);
    return rel.length === 1 ? ENTRY : rel[0];
  };
  const rank = (layer) => (layer === ENTRY ? LAYERS.length : LAYERS.indexOf(layer));
  const problems = [];
  const graph = new Map();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps = [];
    for (const re of [IMPORT_RE, DYNAMIC_RE]) {
      re.lastIndex = 0;
      for (let m; (m = re.exec(text)); ) {
        const spec = m[1];
        let target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
        if (!known.has(target) && known.has(target.replace(/\.ts$/, '.tsx'))) target = target.replace(/\.ts$/, '.tsx');
        if (!known.has(target)) {
          problems.push(`${relative(root, f)}: import '${spec}' does not resolve to a file in src/`);
          continue;
        }
        deps.push(target);
        const from = layerOf(f), to = layerOf(target);
        if (rank(from) < 0) problems.push(`${relative(root, f)}: folder '${from}' is not in the layer list (scripts/check-layers.mjs)`);
        else if (NO_KERNELS.includes(from) && to === 'wgsl')
          problems.push(`${relative(root, f)}: imports kernel file '${spec}'; '${from}' uses the public ops (src/ops/index.ts)`);
        else if (rank(to) > rank(from))
          problems.push(`${relative(root, f)}: imports '${spec}' from layer '${to}', above its own layer '${from}' (order: ${LAYERS.join(' < ')})`);
      }
    }
    graph.set(f, deps);
  }
  // file-level cycles (Tarjan's strongly connected components)
  let index = 0;
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v))
        problems.push(`import cycle: ${comp.map((c) => relative(root, c)).sort().join(' <-> ')}`);
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  return { files: files.length, problems };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const { files, problems } = checkLayers(src);
  for (const p of problems) console.error(p);
  console.log(`check-layers: ${files} files, ${problems.length} problem(s)`);
  process.exit(problems.length ? 1 : 0);
}
