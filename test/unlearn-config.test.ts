// Experiment configs and users' checkpoints, checked before any work: unknown keys, wrong types and
// unknown method names in a config (every problem named), a config's presets deciding the defaults of
// methods the command line adds (--methods, --lambdas), and safetensors headers (one file or shards)
// against a model's state dict without loading the tensors.
import { describe, it, expect } from 'vitest';
import { useGpu } from './helpers.js';
import { MLP } from '../src/models/mlp.js';
import { serializeSafetensors, numberToF16 } from '../src/io/safetensors.js';
import { resolveConfig, withCliMethods, demoConfig } from '../src/unlearn/classification/config.js';
import { CIFAR10_PRESETS, MNIST_PRESETS, TINYIMAGENET_PRESETS } from '../src/unlearn/classification/presets.js';
import { methodLabel, type SfrOnConfig } from '../src/unlearn/core/methods.js';
import { checkAgainstModel, headerLength, parseHeader } from '../src/unlearn/core/checkpoint.js';

const gpu = useGpu();

describe('experiment configs', () => {
  it('lists every unknown key, wrong type and bad value, with its path', () => {
    const raw = {
      name: 3,
      presets: 'cifar',
      data: { kind: 'mnist', trainLimt: 10 },
      pretrain: { epochs: 1.5, lr: 0.1, momentum: 0.9, weightDecay: 0, batchSize: 64, schedule: 'cosine', keep: 'first' },
      forget: { kind: 'random', fraction: 1.5, seed: 1 },
      methods: ['SFR-on'],
      extra: true,
      pretrained: [],
    };
    let msg = '';
    try {
      resolveConfig(raw);
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const want of [
      'config.name: expected a string, got number',
      'config.presets: expected one of "mnist", "cifar10", "tinyimagenet", "swin-mnist", got "cifar"',
      'config.data.trainLimt: unknown key',
      'config.pretrain.epochs: expected a non-negative integer, got 1.5',
      'config.pretrain.keep: expected one of "best", "last", got "first"',
      'config.forget.fraction: expected a fraction in (0, 1), got 1.5',
      'config.extra: unknown key',
      'config.pretrained: expected a safetensors path or a non-empty list of shard paths',
    ])
      expect(msg).toContain(want);
  });

  it('methods: unknown names and fields are named; duplicate labels are refused', () => {
    expect(() => resolveConfig({ methods: ['SFR-on', 'SFRon'] })).toThrow(/config\.methods\[1\]: unknown method "SFRon"/);
    expect(() => resolveConfig({ methods: [{ method: 'GA', lr: 1 }] })).toThrow(/config\.methods\[0\]\.lr: unknown key for GA/);
    expect(() => resolveConfig({ methods: ['FT', { method: 'FT', epochs: 3 }] })).toThrow(/a second method labelled 'FT'/);
    const ok = resolveConfig({ methods: ['FT', { method: 'FT', epochs: 3, label: 'FT (3 ep)' }] });
    expect(ok.methods.map(methodLabel)).toEqual(['FT', 'FT (3 ep)']);
  });

  it("a config's presets fill its methods, and the command line's --methods/--lambdas use the same presets", () => {
    const cfg = resolveConfig({ presets: 'cifar10', methods: ['FT'] });
    expect(cfg.methods).toEqual([CIFAR10_PRESETS.FT]);
    const withCli = withCliMethods(cfg, { methods: ['FT', 'SCRUB', 'SFR-on'], lambdas: [0, 1] });
    expect(withCli.methods.map(methodLabel)).toEqual(['FT', 'SCRUB', 'SFR-on', 'SFR-on (λ=0)', 'SFR-on (λ=1)']);
    expect(withCli.methods[1]).toEqual(CIFAR10_PRESETS.SCRUB);
    expect(withCli.methods[1]).not.toEqual(MNIST_PRESETS.SCRUB);
    expect((withCli.methods[3] as SfrOnConfig).iterations).toBe(1500); // CIFAR-10's, not the MNIST demo's 80
    const tiny = withCliMethods(resolveConfig({ presets: 'tinyimagenet', methods: ['FT'] }), { lambdas: [0.6] });
    expect(tiny.methods.map(methodLabel)).toEqual(['FT', 'SFR-on (λ=0.6)']); // labels name λ unless it is 0.5
    expect(tiny.methods[1]).toMatchObject({ lambda: 0.6, alpha0: 500, iterations: 500, optimizer: { kind: 'adamw', lr: 2e-5 } });
    expect(() => withCliMethods(cfg, { methods: ['XX'] })).toThrow(/unknown method 'XX'/);
    expect(() => withCliMethods(cfg, { lambdas: [-1] })).toThrow(/-1 is not a non-negative number/);
    expect(demoConfig().methods.map((m) => m.method)).toEqual(['SFR-on', 'FT', 'GA', 'RL', 'SalUn']);
  });

  it("presets are the authors' settings", () => {
    expect(CIFAR10_PRESETS.SCRUB).toMatchObject({ optimizer: { kind: 'sgd', lr: 8e-5, momentum: 0.9, weightDecay: 5e-4 }, epochs: 6, msteps: 2, T: 4, gamma: 0.99, alpha: 0.001, lrSchedule: 'cosine' });
    expect(TINYIMAGENET_PRESETS.SCRUB).toMatchObject({ optimizer: { kind: 'adamw', lr: 1e-4, weightDecay: 0.05 }, epochs: 1 });
    expect(CIFAR10_PRESETS['SFR-on']).toMatchObject({ iterations: 1500, forgetFreq: 5, alpha0: 25, maxNorm: 7, lambda: 0.5, gamma: 1, beta: 1 });
    expect(TINYIMAGENET_PRESETS.GA).toMatchObject({ optimizer: { kind: 'adamw', lr: 1e-6 }, epochs: 9, clip: 0.1 });
    expect(TINYIMAGENET_PRESETS.SalUn).toMatchObject({ threshold: 0.5, epochs: 1 });
  });
});

describe('checkpoint headers', () => {
  const f16 = (n: number) => Uint16Array.from({ length: n }, () => numberToF16(0.5));

  it('a file or its shards are checked by name, shape and dtype against the model, every problem listed', async () => {
    const { ctx } = gpu;
    const model = new MLP(ctx, { sizes: [4, 3], seed: 1 }); // layers.0.weight [3, 4], layers.0.bias [3]
    const header = (tensors: Parameters<typeof serializeSafetensors>[0], file: string) => {
      const bytes = serializeSafetensors(tensors);
      expect(headerLength(bytes.subarray(0, 8), file)).toBeLessThan(bytes.length);
      return parseHeader(bytes.subarray(0, headerLength(bytes.subarray(0, 8), file)), file, bytes.length);
    };
    const a = header({ 'layers.0.weight': { dtype: 'F16', shape: [3, 4], data: f16(12) } }, 'a.safetensors');
    const b = header({ 'layers.0.bias': { dtype: 'BF16', shape: [3], data: new Uint16Array(3) } }, 'b.safetensors');
    expect(() => checkAgainstModel([a, b], model, 'pretrained')).not.toThrow();
    expect(() => checkAgainstModel([a], model, 'pretrained')).toThrow(/pretrained \(a\.safetensors\) does not fit the model: missing 1: layers\.0\.bias/);
    const bad = header(
      {
        'layers.0.weight': { dtype: 'F32', shape: [4, 3], data: new Float32Array(12) },
        'layers.0.bias': { dtype: 'I32', shape: [3], data: new Int32Array(3) },
        'fc.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
      },
      'c.safetensors',
    );
    expect(() => checkAgainstModel([bad], model, 'x')).toThrow(/unexpected 1: fc\.weight; 'layers\.0\.weight' has shape \[4, 3\] in c\.safetensors, the model needs \[3, 4\]; 'layers\.0\.bias' is I32 in c\.safetensors; expected F32, F16 or BF16/);
    expect(() => checkAgainstModel([a, a, b], model, 'x')).toThrow(/'layers\.0\.weight' is in two shards \(a\.safetensors and a\.safetensors\)/);
    // truncated and foreign files
    expect(() => parseHeader(new Uint8Array([1, 2, 3]), 'short.bin')).toThrow(/short\.bin: 3 bytes, not a safetensors file/);
    const full = serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    expect(() => parseHeader(full, 'cut.safetensors', full.length - 4)).toThrow(/cut\.safetensors: tensor 'w': data_offsets \[0,8\] lie outside/);
    expect(() => headerLength(new TextEncoder().encode('{"not": "safetensors"}'), 'j.json')).toThrow(/j\.json: header length .* not a safetensors file/);
    model.dispose();
  });
});
