// The classification experiment's JSON config: its types, the MNIST demo's config, and resolving a
// user's JSON into a complete config, with every problem found before any work (unknown keys, wrong
// types, out-of-range values, unknown method names; a config's `presets` decide every method's
// defaults, whatever methods or λ values the command line adds). Browser-safe: no file access.

import { EngineError } from '../../util/errors.js';
import { checkMethodConfig, methodLabel, resolveMethod, METHOD_NAMES, type MethodConfig, type MethodName, type SfrOnConfig } from '../core/methods.js';
import type { ForgetSpec } from './split.js';
import { PRESETS, type PresetName } from './presets.js';
import { architecture } from '../../models/registry.js';

/** How the original model (pretraining on D) or RT (on D_r) is trained. */
export interface TrainRecipe {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  batchSize: number;
  schedule: 'cosine' | 'constant';
  /** Default 'sgd' (CIFAR-10); 'adamw' as the authors' TinyImageNet RT (momentum unused). */
  optimizer?: 'sgd' | 'adamw';
  /** Which epoch's weights to keep: 'best' test accuracy (default, as the authors) or the 'last'. */
  keep?: 'best' | 'last';
  /** Linear warm-up epochs before the schedule (default 0); the schedule then runs over the rest. */
  warmupEpochs?: number;
  /**
   * No weight decay on biases, norms and position tables (AdamW's usual groups, models' noDecay rule).
   * Default: on for the transformers (swin_t, vit_b_16), off for ResNet-18.
   */
  noDecay?: boolean;
}

/** The architectures an experiment can train and unlearn (names as models/registry.ts). */
export const EXPERIMENT_ARCHS = ['resnet18', 'swin_t', 'vit_b_16'] as const;
export type ExperimentArch = (typeof EXPERIMENT_ARCHS)[number];

/**
 * The model: ResNet-18 by default (width and variant), or a registry architecture with its
 * constructor options (camelCase; numClasses, inChannels and seed come from the data and the config;
 * vit_b_16's imageSize defaults to the data's side).
 */
export interface ModelSpec {
  /** Default 'resnet18'. */
  arch?: ExperimentArch;
  /** ResNet-18 only: base width (default 64). */
  width?: number;
  /** ResNet-18 only: stem (default 'cifar'). */
  variant?: 'cifar' | 'imagenet';
  /** swin_t / vit_b_16: constructor options (see models/registry.ts). */
  options?: Record<string, unknown>;
}

export type DataSpec =
  | { kind: 'mnist'; dir?: string; trainLimit?: number; testLimit?: number; downsample?: number }
  | { kind: 'cifar10-jpeg'; archive: string; trainLimit?: number; testLimit?: number }
  | { kind: 'cifar10-bin'; dir: string; trainLimit?: number; testLimit?: number };

/** A safetensors file, or the shards of one model (names must not repeat across shards). */
export type CheckpointSource = string | string[];

export interface ExperimentConfig {
  name: string;
  /** Whose method defaults fill in methods given by name or partially (default 'mnist'). */
  presets: PresetName;
  data: DataSpec;
  /** The architecture (torchvision names): ResNet-18 with a base width and stem, or Swin-T / ViT with options. */
  model: ModelSpec;
  forget: ForgetSpec;
  pretrain: TrainRecipe;
  retrain: TrainRecipe;
  /** batch size of the unlearning loaders (spec: 128) */
  batchSize: number;
  methods: MethodConfig[];
  seed: number;
  outDir: string;
  /** Training augmentation (CIFAR: random crop + flip) while pretraining, RT and unlearning; default on where the data has it. */
  augment?: boolean;
  /** Use this model as the original instead of pretraining (f32/f16/bf16; checked strictly by name and shape). */
  pretrained?: CheckpointSource;
  /** Use this model as RT instead of retraining (trained on D_r of this config's split). */
  retrained?: CheckpointSource;
}

/** The MNIST demo (`npm run demo`): 10% random forgetting on 5,000 14x14 images, five methods. */
export function demoConfig(out = 'runs/mnist-demo'): ExperimentConfig {
  const recipe: TrainRecipe = { epochs: 4, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, schedule: 'cosine' };
  return {
    name: 'MNIST, ResNet-18 (width 8, 14x14), 10% random forgetting',
    presets: 'mnist',
    data: { kind: 'mnist', trainLimit: 5000, testLimit: 1000, downsample: 2 },
    model: { width: 8, variant: 'cifar' },
    forget: { kind: 'random', fraction: 0.1, seed: 1 },
    pretrain: { ...recipe },
    retrain: { ...recipe },
    batchSize: 128,
    methods: (['SFR-on', 'FT', 'GA', 'RL', 'SalUn'] as MethodName[]).map((m) => structuredClone(PRESETS.mnist[m]) as MethodConfig),
    seed: 0,
    outDir: out,
  };
}

// ------------------------------------------------------------------------------------------------
// Validation: a tiny schema, every problem collected

type Check = (v: unknown, where: string, problems: string[]) => void;

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const str: Check = (v, w, p) => void (typeof v !== 'string' && p.push(`${w}: expected a string, got ${typeName(v)}`));
const bool: Check = (v, w, p) => void (typeof v !== 'boolean' && p.push(`${w}: expected true or false, got ${typeName(v)}`));
const num = (ok: (x: number) => boolean, what: string): Check => (v, w, p) => void ((!isNum(v) || !ok(v)) && p.push(`${w}: expected ${what}, got ${JSON.stringify(v)}`));
const posInt = num((x) => Number.isInteger(x) && x > 0, 'a positive integer');
const nonNegInt = num((x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
const nonNeg = num((x) => x >= 0, 'a non-negative number');
const oneOf = (...vals: string[]): Check => (v, w, p) => void (!vals.includes(v as string) && p.push(`${w}: expected one of ${vals.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`));
const plainObject: Check = (v, w, p) => void (typeName(v) !== 'object' && p.push(`${w}: expected an object, got ${typeName(v)}`));
const checkpoint: Check = (v, w, p) => {
  if (typeof v === 'string' ? v.length === 0 : !(Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s.length > 0)))
    p.push(`${w}: expected a safetensors path or a non-empty list of shard paths, got ${JSON.stringify(v)}`);
};

/** An object with exactly these optional (`?`-suffixed) and required keys. */
function object(spec: Record<string, Check>): Check {
  return (v, w, p) => {
    if (typeName(v) !== 'object') return void p.push(`${w}: expected an object, got ${typeName(v)}`);
    const o = v as Record<string, unknown>;
    const keys = new Map(Object.keys(spec).map((k) => [k.replace(/\?$/, ''), k]));
    for (const k of Object.keys(o)) if (!keys.has(k)) p.push(`${w}.${k}: unknown key (allowed: ${[...keys.keys()].join(', ')})`);
    for (const [k, full] of keys) {
      if (o[k] === undefined) {
        if (!full.endsWith('?')) p.push(`${w}.${k}: missing`);
      } else spec[full]!(o[k], `${w}.${k}`, p);
    }
  };
}

/** One of several object shapes, chosen by the value of `kind`. */
function tagged(specs: Record<string, Record<string, Check>>): Check {
  return (v, w, p) => {
    const kind = typeName(v) === 'object' ? (v as { kind?: unknown }).kind : undefined;
    if (typeof kind !== 'string' || !(kind in specs))
      return void p.push(`${w}.kind: expected one of ${Object.keys(specs).map((k) => JSON.stringify(k)).join(', ')}, got ${JSON.stringify(kind)}`);
    object({ kind: str, ...specs[kind] })(v, w, p);
  };
}

const RECIPE = object({
  epochs: nonNegInt,
  lr: nonNeg,
  momentum: nonNeg,
  weightDecay: nonNeg,
  batchSize: posInt,
  schedule: oneOf('cosine', 'constant'),
  'optimizer?': oneOf('sgd', 'adamw'),
  'keep?': oneOf('best', 'last'),
  'warmupEpochs?': nonNegInt,
  'noDecay?': bool,
});
const MODEL: Check = (v, w, p) => {
  object({ 'arch?': oneOf(...EXPERIMENT_ARCHS), 'width?': posInt, 'variant?': oneOf('cifar', 'imagenet'), 'options?': plainObject })(v, w, p);
  const m = v as ModelSpec;
  if (typeName(v) !== 'object') return;
  const arch = m.arch ?? 'resnet18';
  if (arch === 'resnet18' && m.options !== undefined) p.push(`${w}.options: resnet18 takes width and variant, not options`);
  if (arch !== 'resnet18' && (m.width !== undefined || m.variant !== undefined)) p.push(`${w}: width and variant are ResNet-18's; give ${arch}'s settings in options`);
  if (arch !== 'resnet18' && EXPERIMENT_ARCHS.includes(arch) && typeName(m.options ?? {}) === 'object') {
    const given = Object.keys(m.options ?? {}).filter((k) => ['numClasses', 'inChannels', 'seed'].includes(k));
    if (given.length) p.push(`${w}.options: ${given.join(', ')} come from the data and the config's seed`);
    try {
      architecture(arch, m.options ?? {});
    } catch (e) {
      p.push(`${w}.options: ${(e as Error).message.replace(/^architecture: /, '')}`);
    }
  }
};
const LIMITS = { 'trainLimit?': posInt, 'testLimit?': posInt };
const SCHEMA: Record<string, Check> = {
  'name?': str,
  'presets?': oneOf(...Object.keys(PRESETS)),
  'data?': tagged({
    mnist: { 'dir?': str, 'downsample?': posInt, ...LIMITS },
    'cifar10-jpeg': { archive: str, ...LIMITS },
    'cifar10-bin': { dir: str, ...LIMITS },
  }),
  'model?': MODEL,
  'forget?': tagged({
    random: { fraction: num((x) => x > 0 && x < 1, 'a fraction in (0, 1)'), seed: nonNegInt },
    class: {
      classes: (v, w, p) => void (!(Array.isArray(v) && v.length > 0 && v.every((c) => Number.isInteger(c) && c >= 0)) && p.push(`${w}: expected a non-empty list of class indices, got ${JSON.stringify(v)}`)),
    },
    file: { path: str },
  }),
  'pretrain?': RECIPE,
  'retrain?': RECIPE,
  'batchSize?': posInt,
  'methods?': (v, w, p) => void (!(Array.isArray(v) && v.length > 0) && p.push(`${w}: expected a non-empty list of method names or objects, got ${JSON.stringify(v)}`)),
  'seed?': nonNegInt,
  'outDir?': str,
  'augment?': bool,
  'pretrained?': checkpoint,
  'retrained?': checkpoint,
};

/**
 * A complete config from a user's JSON value: every key checked (unknown keys, wrong types, ranges;
 * every problem listed in one EngineError), methods resolved against the config's presets (names,
 * or objects overriding a preset's fields), anything left out taken from the MNIST demo's config.
 * `out` overrides outDir.
 */
export function resolveConfig(raw: unknown, out?: string): ExperimentConfig {
  const problems: string[] = [];
  object(SCHEMA)(raw, 'config', problems);
  if (typeName(raw) !== 'object') throw new EngineError('config', problems.join('; '));
  const cfg = raw as Partial<ExperimentConfig> & { methods?: unknown[] };
  const presetName: PresetName = typeof cfg.presets === 'string' && cfg.presets in PRESETS ? cfg.presets : 'mnist';
  const presets = PRESETS[presetName];
  const base = demoConfig(out ?? cfg.outDir);
  const methods: MethodConfig[] = [];
  (Array.isArray(cfg.methods) ? cfg.methods : base.methods.map((m) => m.method)).forEach((m, i) => {
    try {
      methods.push(resolveMethod(m, presets, `config.methods[${i}]`));
    } catch (e) {
      problems.push((e as Error).message.replace(/^config: /, ''));
    }
  });
  const labels = methods.map(methodLabel);
  labels.forEach((l, i) => {
    if (labels.indexOf(l) !== i) problems.push(`config.methods[${i}]: a second method labelled '${l}' (give one a "label")`);
  });
  if (problems.length) throw new EngineError('config', problems.join('; '));
  return { ...base, ...cfg, presets: presetName, methods, outDir: out ?? cfg.outDir ?? base.outDir } as ExperimentConfig;
}

/**
 * The command line's method choices applied to a resolved config: `methods` keeps (in the given
 * order) the config's methods of these names and adds the config's presets for names it lacks;
 * `lambdas` adds an SFR-on row per λ (a sweep, spec §8) built on the config's SFR-on (or its presets').
 */
export function withCliMethods(cfg: ExperimentConfig, opts: { methods?: string[]; lambdas?: number[] }): ExperimentConfig {
  const presets = PRESETS[cfg.presets];
  let methods = [...cfg.methods];
  if (opts.methods) {
    const unknown = opts.methods.filter((m) => !METHOD_NAMES.includes(m as MethodName));
    if (unknown.length) throw new EngineError('--methods', `unknown method ${unknown.map((m) => `'${m}'`).join(', ')} (known: ${METHOD_NAMES.join(', ')})`);
    const wanted = [...new Set(opts.methods)] as MethodName[];
    methods = wanted.flatMap((name) => {
      const have = methods.filter((m) => m.method === name);
      return have.length ? have : [structuredClone(presets[name]) as MethodConfig];
    });
  }
  if (opts.lambdas) {
    const base = (methods.find((m) => m.method === 'SFR-on') ?? presets['SFR-on']) as SfrOnConfig;
    for (const lambda of opts.lambdas) {
      if (!(isNum(lambda) && lambda >= 0)) throw new EngineError('--lambdas', `${lambda} is not a non-negative number`);
      const mc: SfrOnConfig = { ...structuredClone(base), lambda, label: undefined };
      delete mc.label;
      checkMethodConfig(mc);
      if (!methods.some((m) => methodLabel(m) === methodLabel(mc))) methods.push(mc);
    }
  }
  return { ...cfg, methods };
}
