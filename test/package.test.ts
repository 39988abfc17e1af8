// Packaging checks: the build config compiles into a private temporary outDir (never dist/, so it
// cannot race with anyone's `npm run build`), the built entry points import in a fresh Node process,
// `npm pack` (dry run, on a temporary copy of the package) ships dist/src/**/*.js and .d.ts and no
// tests, and src/index.ts bundles for the browser (no Node-only import reachable from it).
// It does not create a GPU context.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
let tmp = '';

/** Run a command, returning stdout; on failure the error carries its stderr. */
function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

describe('package', () => {
  beforeAll(() => {
    // inside the repository so the built files resolve node_modules like dist/ would
    mkdirSync(path.join(root, '.cache'), { recursive: true });
    tmp = mkdtempSync(path.join(root, '.cache', 'pkg-test-'));
    run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', path.join(tmp, 'dist')], root);
  }, 120_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the build emits the entry points package.json names, with declarations', () => {
    const targets = [pkg.main, pkg.types, pkg.exports['.'].types, pkg.exports['.'].node, pkg.exports['.'].default,
      pkg.exports['./node'].types, pkg.exports['./node'].default];
    for (const t of targets) expect(existsSync(path.join(tmp, t)), `${t} is not produced by the build`).toBe(true);
    expect(existsSync(path.join(tmp, 'dist/test')), 'tests compiled into the build').toBe(false);
    expect(existsSync(path.join(tmp, 'dist/bench')), 'benchmarks compiled into the build').toBe(false);
  });

  it('the built browser and Node entries import in a fresh Node process', () => {
    const index = pathToFileURL(path.join(tmp, 'dist/src/index.js')).href;
    const node = pathToFileURL(path.join(tmp, 'dist/src/node.js')).href;
    const script = `
      const m = await import(${JSON.stringify(index)});
      const n = await import(${JSON.stringify(node)});
      const want = ['GpuContext', 'Tensor', 'matmul', 'conv2d', 'crossEntropy', 'backward', 'SGD', 'Adam', 'MLP', 'DataLoader'];
      const missing = want.filter((k) => typeof m[k] !== 'function');
      if (typeof n.createNodeContext !== 'function') missing.push('node: createNodeContext');
      if (typeof n.loadMnist !== 'function') missing.push('node: loadMnist');
      if (n.Tensor !== m.Tensor) missing.push('node re-exports the same Tensor');
      console.log(JSON.stringify({ missing, count: Object.keys(m).length }));
      process.exit(0);`;
    const out = JSON.parse(run(process.execPath, ['--input-type=module', '-e', script], tmp).trim().split('\n').pop()!);
    expect(out.missing).toEqual([]);
    expect(out.count).toBeGreaterThan(50);
  });

  it('npm pack ships dist/src JavaScript and declarations and no tests', () => {
    const stage = path.join(tmp); // the temporary build already sits at <tmp>/dist
    copyFileSync(path.join(root, 'package.json'), path.join(stage, 'package.json'));
    if (existsSync(path.join(root, 'README.md'))) copyFileSync(path.join(root, 'README.md'), path.join(stage, 'README.md'));
    cpSync(path.join(root, 'assets', 'diffusion-demo'), path.join(stage, 'assets', 'diffusion-demo'), { recursive: true });
    const json = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], stage));
    const files: string[] = json[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files).toContain('dist/src/node.js');
    expect(files).toContain('dist/src/node.d.ts');
    expect(files.filter((f) => f.endsWith('.js')).length).toBeGreaterThan(40);
    // the diffusion demo's bundled original and RT travel with the package (its CLI finds them there)
    expect(files.filter((f) => f.startsWith('assets/diffusion-demo/')).length, 'bundled diffusion checkpoints').toBeGreaterThanOrEqual(4);
    const stray = files.filter((f) => !(f.startsWith('dist/src/') || f.startsWith('assets/diffusion-demo/') || ['package.json', 'README.md', 'LICENSE'].includes(f)));
    expect(stray, 'files outside dist/src').toEqual([]);
    expect(files.filter((f) => /(^|\/)(test|bench)\/|\.test\./.test(f)), 'test files in the package').toEqual([]);
    // every .js module has its declaration
    const noDts = files.filter((f) => f.endsWith('.js') && !files.includes(f.replace(/\.js$/, '.d.ts')));
    expect(noDts).toEqual([]);
    // the bin is shipped once src/cli/main.ts exists (the CLI entry)
    if (existsSync(path.join(root, 'src/cli/main.ts'))) expect(files).toContain(pkg.bin['unlearn-gpu'].replace(/^\.\//, ''));
  });

  it('src/index.ts bundles for the browser (no Node-only import reachable)', async () => {
    const res = await build({
      entryPoints: [path.join(root, 'src/index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(res.metafile!.inputs);
    expect(inputs.filter((f) => /(^|\/)(node\.ts|[\w-]+-node\.ts)$/.test(f) || f.startsWith('node:')), 'Node-only modules in the browser bundle').toEqual([]);
    expect(inputs.some((f) => f.includes('webgpu/')), 'the Dawn package in the browser bundle').toBe(false);
    expect(res.outputFiles![0]!.text.length).toBeGreaterThan(10_000);
  });
});
