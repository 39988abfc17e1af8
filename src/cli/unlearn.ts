// `unlearn-gpu demo` and `unlearn-gpu unlearn --config`: builds the experiment config (the embedded
// MNIST demo, or a user's JSON with presets filled in), runs it with progress bars, prints the table
// and writes the report. MNIST presets are scaled-down versions of the authors' CIFAR-10 settings
// (see MNIST_PRESETS below for how each was chosen).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GpuContext } from '../gpu/context.js';
import { ProgressBar } from '../nn/progress.js';
import { runExperiment, methodLabel, type ExperimentConfig, type ExperimentResult } from '../unlearn/experiment-node.js';
import { CIFAR10_PRESETS, type MethodConfig, type MethodName } from '../unlearn/methods.js';
import { toMarkdown, type LambdaSweep, type ReportOptions } from '../unlearn/report.js';
import { writeReport } from '../unlearn/report-node.js';

/**
 * MNIST presets for the demo's small ResNet-18 (width 8, 14x14 input, 5,000 training images). The
 * unlearning budget is scaled so each method sees a comparable number of optimizer steps to the
 * others (one or two passes over its data), since the CIFAR schedules (10 epochs over 45k images)
 * would take hours on a CPU. Learning rates are the authors' CIFAR values unless noted.
 */
export const MNIST_PRESETS: Record<MethodName, MethodConfig> = {
  FT: { ...CIFAR10_PRESETS.FT, epochs: 2 } as MethodConfig,
  // lr 1e-4 with clip 0.1 barely moves a model in 20 steps; 1e-3 is the smallest that forgets at all here
  GA: { ...CIFAR10_PRESETS.GA, epochs: 5, optimizer: { kind: 'sgd', lr: 1e-3, momentum: 0.9, weightDecay: 5e-4 } } as MethodConfig,
  RL: { ...CIFAR10_PRESETS.RL, epochs: 2 } as MethodConfig,
  SalUn: { ...CIFAR10_PRESETS.SalUn, epochs: 2 } as MethodConfig,
  BT: { ...CIFAR10_PRESETS.BT, epochs: 2 } as MethodConfig,
  SCRUB: { ...CIFAR10_PRESETS.SCRUB, epochs: 3 } as MethodConfig,
  'SFR-on': { ...(CIFAR10_PRESETS['SFR-on'] as Extract<MethodConfig, { method: 'SFR-on' }>), iterations: 80 },
};

export function demoConfig(out = 'runs/mnist-demo'): ExperimentConfig {
  return {
    name: 'MNIST, ResNet-18 (width 8, 14x14), 10% random forgetting',
    data: { kind: 'mnist', trainLimit: 5000, testLimit: 1000, downsample: 2 },
    model: { width: 8, variant: 'cifar' },
    forget: { kind: 'random', fraction: 0.1, seed: 1 },
    pretrain: { epochs: 4, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, schedule: 'cosine' },
    retrain: { epochs: 4, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, schedule: 'cosine' },
    batchSize: 128,
    methods: (['SFR-on', 'FT', 'GA', 'RL', 'SalUn'] as MethodName[]).map((m) => MNIST_PRESETS[m]),
    seed: 0,
    outDir: out,
  };
}

/** Fill a user's config: methods may be names (preset) or objects (preset fields overridden). */
export function resolveConfig(raw: unknown, out?: string): ExperimentConfig {
  if (typeof raw !== 'object' || raw === null) throw new Error('config must be a JSON object');
  const cfg = raw as Partial<ExperimentConfig> & { methods?: (string | Partial<MethodConfig>)[]; presets?: 'cifar10' | 'mnist' };
  const presets = cfg.presets === 'cifar10' ? CIFAR10_PRESETS : MNIST_PRESETS;
  const base = demoConfig(out ?? cfg.outDir);
  const methods = (cfg.methods ?? base.methods).map((m, i) => {
    const name = (typeof m === 'string' ? m : m.method) as MethodName | undefined;
    if (!name || !(name in presets)) throw new Error(`methods[${i}]: unknown method '${String(name)}' (known: ${Object.keys(presets).join(', ')})`);
    return { ...presets[name], ...(typeof m === 'string' ? {} : m) } as MethodConfig;
  });
  return { ...base, ...cfg, methods, outDir: out ?? cfg.outDir ?? base.outDir } as ExperimentConfig;
}

/** Progress bars for every long phase (one bar per phase name). */
function phaseBars() {
  let current: { name: string; bar: ProgressBar } | null = null;
  return (phase: string, done: number, total: number) => {
    if (!current || current.name !== phase) {
      current?.bar.finish();
      current = { name: phase, bar: new ProgressBar({ total, label: phase }) };
    }
    current.bar.update(done);
    if (done >= total) {
      current.bar.finish();
      current = null;
    }
  };
}

export async function runUnlearnCommand(
  ctx: GpuContext,
  opts: {
    demo: boolean;
    config?: unknown;
    out?: string;
    methods?: string[];
    lambdas?: number[];
    budgetMinutes?: number;
    until?: 'pretrain' | 'retrain';
    evaluate?: { path: string; label: string };
  },
): Promise<number> {
  const cfg = opts.demo ? demoConfig(opts.out) : resolveConfig(opts.config, opts.out);
  if (opts.lambdas) {
    // a λ sweep of SFR-on (spec §8): one extra SFR-on row per λ, plotted against RT in the report
    const base = (cfg.methods.find((m) => m.method === 'SFR-on') ?? MNIST_PRESETS['SFR-on']) as Extract<MethodConfig, { method: 'SFR-on' }>;
    for (const lambda of opts.lambdas) {
      if (!(lambda >= 0)) throw new Error(`--lambdas: ${lambda} is not a non-negative number`);
      if (!cfg.methods.some((m) => m.method === 'SFR-on' && m.lambda === lambda && methodLabel(m) === methodLabel({ ...base, lambda })))
        cfg.methods.push({ ...base, lambda });
    }
  }
  if (opts.methods) {
    const wanted = new Set(opts.methods);
    const known = Object.keys(MNIST_PRESETS);
    for (const m of wanted) if (!known.includes(m)) throw new Error(`--methods: unknown method '${m}' (known: ${known.join(', ')})`);
    const have = new Set(cfg.methods.map((m) => m.method));
    cfg.methods = [...cfg.methods.filter((m) => wanted.has(m.method)), ...[...wanted].filter((m) => !have.has(m as MethodName)).map((m) => MNIST_PRESETS[m as MethodName])];
  }
  process.stderr.write(`${cfg.name}\ndevice: ${ctx.deviceName}\nmethods: ${cfg.methods.map(methodLabel).join(', ')}\noutput: ${cfg.outDir}\n`);
  const deadline = opts.budgetMinutes ? performance.now() + opts.budgetMinutes * 60_000 : undefined;
  const result = await runExperiment(ctx, cfg, { progress: phaseBars(), deadline, until: opts.until, evaluate: opts.evaluate });
  if (opts.until === 'pretrain') {
    process.stdout.write(`pretrained model: ${join(cfg.outDir, 'pretrained.safetensors')}\n`);
    return 0;
  }
  const label = opts.evaluate ? `evaluate-${opts.evaluate.label.replace(/[^A-Za-z0-9_.-]/g, '_')}` : 'report';
  await finish(result, cfg.outDir, label);
  return 0;
}

/** λ sweep data from the SFR-on rows that differ only in λ (labels "SFR-on" and "SFR-on (λ=x)"). */
export function lambdaSweep(result: ExperimentResult): LambdaSweep | undefined {
  const rt = result.rows.find((r) => r.method === 'RT');
  const pts = result.config.methods
    .filter((m): m is Extract<MethodConfig, { method: 'SFR-on' }> => m.method === 'SFR-on' && m.gamma !== null && m.alternate && !m.strictMask && m.beta === 1)
    .map((m) => ({ lambda: m.lambda, row: result.rows.find((r) => r.method === methodLabel(m)) }))
    .filter((p) => p.row && Number.isFinite(p.row.FA))
    .sort((a, b) => a.lambda - b.lambda);
  if (!rt || pts.length < 2) return undefined;
  return {
    lambdas: pts.map((p) => p.lambda),
    FA: pts.map((p) => p.row!.FA),
    RA: pts.map((p) => p.row!.RA),
    TA: pts.map((p) => p.row!.TA),
    kl: pts.map((p) => p.row!.kl ?? NaN),
    rt: { FA: rt.FA, RA: rt.RA, TA: rt.TA },
  };
}

function reportOptions(result: ExperimentResult): ReportOptions {
  const c = result.config;
  const o = result.original;
  return {
    title: c.name,
    notes: [
      `device: ${result.device}; total wall time ${(result.totalSeconds / 60).toFixed(1)} min (RTE is per method, mask computation included; RT's is its training time)`,
      `data: ${JSON.stringify(c.data)}; forget: ${JSON.stringify(c.forget)}; model: ResNet-18 ${JSON.stringify(c.model)}`,
      `pretrain: ${JSON.stringify(c.pretrain)}; retrain (RT): ${JSON.stringify(c.retrain)}`,
      o
        ? `original model before unlearning: FA ${o.FA.toFixed(2)}, RA ${o.RA.toFixed(2)}, TA ${o.TA.toFixed(2)}, MIA ${o.MIA_entropy.toFixed(2)}, D_KL ${o.kl?.toFixed(4)}`
        : 'no original-model row',
      `MIA = SFR-on form (entropy, balanced logistic regression; % of D_f predicted member); MIA-eff. = SalUn form (confidence, RBF SVC C=3; % of D_f predicted non-member)`,
    ],
    sweep: lambdaSweep(result),
  };
}

async function finish(result: ExperimentResult, outDir: string, basename = 'report') {
  const opts = reportOptions(result);
  process.stdout.write(`\n${toMarkdown(result.rows, opts)}\n`);
  const files = await writeReport(outDir, result.rows, { ...opts, basename });
  process.stdout.write(`\ntotal ${(result.totalSeconds / 60).toFixed(1)} min on ${result.device}\nreport: ${Object.values(files).join(', ')}\n`);
}

export async function runReportCommand(resultsPath: string, out?: string): Promise<number> {
  const result = JSON.parse(readFileSync(resultsPath, 'utf8')) as ExperimentResult;
  await finish(result, out ?? join(resultsPath, '..'));
  return 0;
}
