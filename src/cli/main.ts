#!/usr/bin/env node
// The command-line entry (`unlearn-gpu <command>`): the MNIST unlearning demo, experiments from a JSON
// config, classifier training, and report regeneration. Each command creates one GPU context and
// closes it before exiting (Dawn keeps Node alive otherwise). Exit status: 0 done, 1 error, 2 unknown
// command, 75 GPU device lost (a line on stderr says how to resume from the saved checkpoints).

import { readFileSync, existsSync } from 'node:fs';
import { createNodeContext } from '../gpu/node.js';
import { DeviceLostError, type GpuContext } from '../gpu/context.js';

const HELP = `unlearn-gpu: WebGPU deep learning and machine unlearning (SFR-on and baselines)

Commands:
  demo [--out DIR] [--methods A,B]   MNIST unlearning demo: pretrain (cached), RT, SFR-on, FT, GA, RL, SalUn
                                     for 10% random forgetting; prints the table, writes the report to DIR
                                     (default runs/mnist-demo)
  unlearn --config FILE [--methods A,B] [--out DIR] [--lambdas 0,0.25,0.5,1]
                                     run an unlearning experiment from a JSON config (see README); resumes;
                                     --lambdas adds an SFR-on λ sweep (also accepted by demo);
                                     --budget-minutes N starts no new method after N minutes
  pretrain  --config FILE | --demo   only pretrain (or reuse) the original model of an experiment
  retrain   --config FILE | --demo   pretrain + RT on the saved split, evaluate both, write the table
  evaluate  --config FILE | --demo --model FILE.safetensors[,SHARD2...] [--name LABEL]
                                     score a model checkpoint (one file or its shards; checked by name
                                     and shape before anything runs) against the experiment's RT
  report --results FILE [--out DIR]  rebuild the Markdown/CSV/JSON/HTML report from results.json
  forward --arch NAME --options JSON --weights A.safetensors[,B...] --input IN.safetensors --out OUT.safetensors [--train]
                                     one forward pass of an architecture (resnet18) on IN's tensors (x, and
                                     t, y where the model takes them) with the given weights; writes 'out'.
                                     The way to check an imported PyTorch model against PyTorch
  train --config FILE [--resume]     train and evaluate a classifier from a JSON config
  mnist-mlp [--epochs N]             train an MLP on MNIST and print the test accuracy
  diffusion-demo [--out DIR] [--forget D] [--config FILE] [--no-bundled] [--lambdas 0,0.25,1]
                                     generation demo: the authors' class-conditional DDPM UNet (width 8)
                                     on MNIST 16×16, digit D forgotten with SFR-on, SalUn and SA, RT as the
                                     reference; table (FA, none, FID in-domain, steps, time) and image grids
                                     in DIR/report.html (default runs/diffusion-demo); resumes. The original
                                     (and RT for D = 0; another D trains its RT) come from bundled checkpoints
                                     trained by this engine with the same settings; --no-bundled trains them here (~45 min on
                                     2 CPU cores). configs/diffusion-mnist-mlp.json: a small MLP ε-model
                                     trained from scratch in minutes. --lambdas adds an SFR-on row per λ
                                     and the λ sweep's plots to the report
  help                               this text

Exit status: 0 done, 1 error, 2 unknown command, 75 the GPU device was lost (rerun the same command,
with --resume for train, to continue from the last checkpoint).
`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new Error(`config file ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

async function withContext<T>(fn: (ctx: GpuContext) => Promise<T>): Promise<T> {
  const ctx = await createNodeContext();
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd = 'help', ...args] = argv;
  switch (cmd) {
    case 'demo':
    case 'unlearn':
    case 'pretrain':
    case 'retrain':
    case 'evaluate': {
      const { runUnlearnCommand, commandConfig } = await import('./unlearn.js');
      const cfgPath = flag(args, 'config');
      if (cmd !== 'demo' && !cfgPath && !args.includes('--demo')) throw new Error(`${cmd} needs --config FILE (or --demo for the demo's setting)`);
      const config = cfgPath ? readJson(cfgPath) : undefined;
      const model = flag(args, 'model');
      if (cmd === 'evaluate' && !model) throw new Error('evaluate needs --model FILE.safetensors');
      // the whole config is checked before a GPU context exists
      const cfg = commandConfig({
        demo: !config,
        config,
        out: flag(args, 'out'),
        methods: flag(args, 'methods')?.split(','),
        lambdas: flag(args, 'lambdas')?.split(',').map(Number),
      });
      return withContext((ctx) =>
        runUnlearnCommand(ctx, cfg, {
          until: cmd === 'pretrain' ? 'pretrain' : cmd === 'retrain' ? 'retrain' : undefined,
          evaluate: cmd === 'evaluate' ? { path: model!.split(','), label: flag(args, 'name') ?? model!.split(',')[0]!.replace(/^.*\//, '') } : undefined,
          budgetMinutes: flag(args, 'budget-minutes') ? Number(flag(args, 'budget-minutes')) : undefined,
        }),
      );
    }
    case 'report': {
      const { runReportCommand } = await import('./unlearn.js');
      const results = flag(args, 'results');
      if (!results) throw new Error('report needs --results FILE');
      return runReportCommand(results, flag(args, 'out'));
    }
    case 'forward': {
      const { runForward } = await import('./forward.js');
      const need = (name: string) => {
        const v = flag(args, name);
        if (v === undefined) throw new Error(`forward needs --${name}`);
        return v;
      };
      const arch = need('arch');
      let options: Record<string, unknown> = {};
      const optText = flag(args, 'options');
      if (optText !== undefined) {
        try {
          options = JSON.parse(optText) as Record<string, unknown>;
        } catch (e) {
          throw new Error(`--options is not valid JSON: ${(e as Error).message}`);
        }
      }
      const req = { arch, options, weights: need('weights'), input: need('input'), out: need('out'), train: args.includes('--train') };
      return withContext(async (ctx) => {
        const shape = await runForward(ctx, req);
        console.log(`forward: ${arch} -> out [${shape.join(', ')}] written to ${req.out}`);
        return 0;
      });
    }
    case 'train': {
      const { runTrain } = await import('./train.js');
      if (!flag(args, 'config')) throw new Error('train needs --config FILE');
      await runTrain(args); // --resume and --no-progress pass through
      return 0;
    }
    case 'mnist-mlp': {
      const { runMnistMlp } = await import('./mnist-mlp.js');
      const epochs = flag(args, 'epochs');
      const r = await runMnistMlp({ epochs: epochs ? Number(epochs) : undefined });
      console.log(`MNIST MLP test accuracy: ${(r.testAccuracy * (r.testAccuracy <= 1 ? 100 : 1)).toFixed(2)}% in ${r.seconds.toFixed(1)} s`);
      return 0;
    }
    case 'diffusion-demo': {
      const { runDiffusionDemo, resolveDemoConfig, withLambdaSweep } = await import('./diffusion-demo.js');
      const cfgPath = flag(args, 'config');
      const cfg = resolveDemoConfig(cfgPath ? readJson(cfgPath) : undefined, flag(args, 'out'));
      const forget = flag(args, 'forget');
      if (forget !== undefined) cfg.forgetClass = Number(forget);
      if (!(Number.isInteger(cfg.forgetClass) && cfg.forgetClass >= 0 && cfg.forgetClass < 10)) throw new Error(`--forget must be a class 0-9, got ${forget ?? cfg.forgetClass}`);
      const lambdas = flag(args, 'lambdas');
      const swept = lambdas === undefined ? cfg : withLambdaSweep(cfg, lambdas.split(',').map((v) => (v.trim() === '' ? NaN : Number(v))));
      return withContext(async (ctx) => {
        const r = await runDiffusionDemo(ctx, swept, { device: `WebGPU (Dawn), ${ctx.deviceName}`, bundleDir: args.includes('--no-bundled') ? null : undefined });
        for (const row of r.rows)
          console.log(`${row.method.padEnd(10)} FA ${row.fa.toFixed(1).padStart(5)}%  none ${(row.none ?? NaN).toFixed(1).padStart(5)}%  FID (in-domain) ${row.fid.toFixed(2).padStart(8)}  steps ${String(row.steps ?? '—').padStart(5)}  ${row.seconds.toFixed(1)} s`);
        console.log(`report: ${r.reportHtml}`);
        return 0;
      });
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`unknown command '${cmd}'\n\n${HELP}`);
      return 2;
  }
}

/** Exit status after a lost GPU device: EX_TEMPFAIL (75), "try again later" (the run resumes). */
const EXIT_DEVICE_LOST = 75;

/** The command that resumes `argv` after an interruption (train needs --resume; the others resume by themselves). */
function resumeCommand(argv: string[]): string {
  const args = argv[0] === 'train' && !argv.includes('--resume') ? [...argv, '--resume'] : argv;
  return ['unlearn-gpu', ...args].map((a) => (/^[\w./=,:@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => process.exit(code),
  (e) => {
    const err = e as Error;
    process.stderr.write(`error: ${err.message}\n`);
    if (process.env.DEBUG) console.error(e);
    if (err instanceof DeviceLostError || err.name === 'DeviceLostError') {
      // the runs checkpoint as they go (training per epoch, each method and model when done)
      process.stderr.write(`resume: finished work is saved; rerun to continue from the last checkpoint: ${resumeCommand(argv)}\n`);
      process.exit(EXIT_DEVICE_LOST);
    }
    process.exit(1);
  },
);
