// Shared benchmark plumbing: one Dawn instance serving both our GpuContext and (optionally)
// tfjs-backend-webgpu on the same adapter, flags, timing with read-back sync, tables and JSON output.
// It holds no kernels and assumes nothing about the adapter (runs on lavapipe and on real GPUs).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GpuContext } from '../src/gpu/context.js';

export interface Args {
  out: string;
  quick: boolean;
  /** raw flag values, e.g. --shapes 512,1024 */
  get(name: string): string | undefined;
  has(name: string): boolean;
}

/** --out <json> (default given), --quick, and any other --name value / --flag pairs. */
export function parseArgs(defaultOut: string, argv = process.argv.slice(2)): Args {
  const map = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) map.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) map.set(a.slice(2), argv[++i]!);
    else map.set(a.slice(2), '');
  }
  return {
    out: map.get('out') || defaultOut,
    quick: map.has('quick'),
    get: (n) => map.get(n),
    has: (n) => map.has(n),
  };
}

/** Dawn flags for both contexts (same as createNodeContext; extra ones from --dawn-flags a,b). */
export const DAWN_FLAGS = ['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia'];

export interface Bench {
  ctx: GpuContext;
  /** tfjs-core with the webgpu backend active, when requested */
  tf: typeof import('@tensorflow/tfjs-core') | null;
  /** keep the Dawn GPU object reachable for the whole run (Dawn frees its instance on GC) */
  gpu: GPU;
  close(): Promise<void>;
}

/**
 * Create our context and, when `withTf`, tfjs-backend-webgpu on the same Dawn instance (tfjs asks
 * navigator.gpu for its own device on the same adapter).
 */
export async function setup(withTf: boolean, extraFlags: string[] = []): Promise<Bench> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = (await import('node:os')).tmpdir();
  const { create, globals } = await import('webgpu');
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const gpu = create([...DAWN_FLAGS, ...extraFlags]);
  const ctx = await GpuContext.fromGPU(gpu);
  let tf: Bench['tf'] = null;
  if (withTf) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    const ok = await tf.setBackend('webgpu');
    if (!ok || tf.getBackend() !== 'webgpu') throw new Error('tfjs-backend-webgpu failed to initialise');
    await tf.ready();
  }
  return {
    ctx,
    tf,
    gpu,
    async close() {
      if (tf) {
        tf.engine().reset();
        await new Promise((r) => setTimeout(r, 100));
      }
      await ctx.close();
    },
  };
}

export interface Timing {
  /** median seconds per call */
  sec: number;
  /** fastest repeat, seconds per call (least disturbed by other load on a shared machine) */
  best: number;
  /**
   * process CPU seconds (all threads, so lavapipe's workers included) per call, median over repeats:
   * on a CPU device shared with other jobs this moves much less than wall time
   */
  cpu: number;
  iters: number;
}

/**
 * Time `run(iters)`, which must issue `iters` calls and wait for the result on the CPU (read-back
 * sync). One warm-up call first, then repeats until `minTime` seconds have passed (at least
 * `minReps` repeats); reports the median seconds per call.
 */
export async function timeIt(
  run: (iters: number) => Promise<void>,
  opts: { minTime?: number; minReps?: number; warmup?: number; iters?: number } = {},
): Promise<Timing> {
  const { minTime = 1, minReps = 3, warmup = 1 } = opts;
  for (let i = 0; i < warmup; i++) await run(1);
  // choose the number of calls per repeat so one repeat takes about minTime / minReps
  let iters = opts.iters ?? 1;
  if (!opts.iters) {
    const t0 = performance.now();
    await run(1);
    const one = (performance.now() - t0) / 1000;
    iters = Math.max(1, Math.min(200, Math.round(minTime / minReps / Math.max(one, 1e-6))));
  }
  const samples: number[] = [];
  const cpu: number[] = [];
  const start = performance.now();
  while (samples.length < minReps || (performance.now() - start) / 1000 < minTime) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await run(iters);
    const c = process.cpuUsage(c0);
    samples.push((performance.now() - t0) / 1000 / iters);
    cpu.push((c.user + c.system) / 1e6 / iters);
    if (samples.length >= 50) break;
  }
  samples.sort((p, q) => p - q);
  cpu.sort((p, q) => p - q);
  const mid = Math.floor(samples.length / 2);
  return { sec: samples[mid]!, best: samples[0]!, cpu: cpu[mid]!, iters };
}

/** Print a fixed-width table (first column left-aligned). */
export function printTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const w = header.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((c, j) => (j === 0 ? c.padEnd(w[j]!) : c.padStart(w[j]!))).join(' | ') + ' |';
  const text = [line(header), '|' + w.map((x, j) => (j === 0 ? ':' : '') + '-'.repeat(x + 1) + (j === 0 ? '' : ':')).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
  console.log(text);
  return text;
}

export function writeJson(path: string, data: unknown) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
  console.log(`wrote ${path}`);
}

/** Largest relative difference max|a-b| / max|b|. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

export const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** Common header for results: date, device, command line. */
export function meta(ctx: GpuContext) {
  return {
    date: new Date().toISOString(),
    device: ctx.deviceName,
    command: `tsx ${process.argv.slice(1).map((a) => a.replace(process.cwd() + '/', '')).join(' ')}`,
  };
}
