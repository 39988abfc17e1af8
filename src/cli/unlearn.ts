// `unlearn-gpu demo` and `unlearn-gpu unlearn --config`: builds the experiment config (the embedded
// MNIST demo, or a user's JSON resolved against its presets), runs it with progress bars, prints the
// table and writes the report. Command-line method choices (--methods, --lambdas) take their
// defaults from the config's presets (classification/config.ts withCliMethods).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GpuContext } from '../gpu/context.js';
import { ProgressBar } from '../nn/progress.js';
import { runExperiment, type ExperimentResult } from '../unlearn/experiment-node.js';
import { methodLabel, type MethodConfig } from '../unlearn/core/methods.js';
import { demoConfig, resolveConfig, withCliMethods, type ExperimentConfig } from '../unlearn/classification/config.js';
import { toMarkdown, type LambdaSweep, type ReportOptions } from '../unlearn/classification/report.js';
import { writeReport } from '../unlearn/classification/report-node.js';
import type { CheckpointSource } from '../unlearn/core/experiment.js';

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

/**
 * The experiment config of a command, every problem found before a GPU context is made: the demo's,
 * or a user's JSON resolved against its presets, with the command line's methods and λ values.
 */
export function commandConfig(opts: { demo: boolean; config?: unknown; out?: string; methods?: string[]; lambdas?: number[] }): ExperimentConfig {
  const base = opts.demo ? demoConfig(opts.out) : resolveConfig(opts.config, opts.out);
  return withCliMethods(base, { methods: opts.methods, lambdas: opts.lambdas });
}

export async function runUnlearnCommand(
  ctx: GpuContext,
  cfg: ExperimentConfig,
  opts: {
    budgetMinutes?: number;
    until?: 'pretrain' | 'retrain';
    evaluate?: { path: CheckpointSource; label: string };
  },
): Promise<number> {
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
      `data: ${JSON.stringify(c.data)}; forget: ${JSON.stringify(c.forget)}; model: ${c.model.arch ?? 'resnet18'} ${JSON.stringify(c.model)}; method presets: ${c.presets}`,
      ...(c.pretrained ? [`original model: ${JSON.stringify(c.pretrained)} (not pretrained here)`] : []),
      ...(c.retrained ? [`RT model: ${JSON.stringify(c.retrained)} (not retrained here)`] : []),
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
