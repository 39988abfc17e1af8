// The `forward` parity verb on PyTorch's own files (scripts/make_resnet_forward_check.py): FP16 weights
// in two shards cut inside a BatchNorm, an input batch, and PyTorch's eval-mode logits; plus each bad
// input the verb must reject before any GPU work (with the name of what is wrong).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { useGpu } from './helpers.js';
import { runForward } from '../src/cli/forward.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { serializeSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { relErr } from './golden.js';

const gpu = useGpu();
const FIX = new URL('./fixtures/forward-resnet18/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'forward-'));

async function expected(c: string) {
  const f = await loadSafetensorsFile(`${FIX}${c}.expected.safetensors`);
  return { out: toFloat32(f.tensors.get('out')!), shape: f.tensors.get('out')!.shape, options: JSON.parse(f.metadata.options!) };
}

describe('forward --arch resnet18 against PyTorch', () => {
  for (const c of ['cifar', 'imagenet']) {
    it(`${c} stem: logits from two FP16 shards match PyTorch to 1e-4 relative`, async () => {
      const exp = await expected(c);
      const out = join(tmp, `${c}.out.safetensors`);
      const shape = await runForward(gpu.ctx, {
        arch: 'resnet18',
        options: exp.options,
        weights: `${FIX}${c}.weights-1.safetensors,${FIX}${c}.weights-2.safetensors`,
        input: `${FIX}${c}.input.safetensors`,
        out,
      });
      expect(shape).toEqual(exp.shape);
      const got = toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!);
      expect(relErr(got, exp.out)).toBeLessThan(1e-4);
    });
  }

  it('the CLI verb writes the same file', async () => {
    const exp = await expected('cifar');
    const out = join(tmp, 'cli.out.safetensors');
    await promisify(execFile)(
      'npx',
      ['tsx', 'src/cli/main.ts', 'forward', '--arch', 'resnet18', '--options', JSON.stringify(exp.options), '--weights',
        `${FIX}cifar.weights-1.safetensors,${FIX}cifar.weights-2.safetensors`, '--input', `${FIX}cifar.input.safetensors`, '--out', out],
      { cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, XDG_RUNTIME_DIR: tmpdir() } },
    );
    expect(relErr(toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!), exp.out)).toBeLessThan(1e-4);
  }, 180_000);
});

describe('forward rejects bad input before any work', () => {
  const base = () => ({
    arch: 'resnet18',
    options: { numClasses: 10, variant: 'cifar', width: 8 } as Record<string, unknown>,
    weights: `${FIX}cifar.weights-1.safetensors,${FIX}cifar.weights-2.safetensors`,
    input: `${FIX}cifar.input.safetensors`,
    out: join(tmp, 'bad.out.safetensors'),
  });
  it('one shard only: names the missing tensors', async () => {
    await expect(runForward(gpu.ctx, { ...base(), weights: `${FIX}cifar.weights-1.safetensors` })).rejects.toThrow(/missing \d+: .*running_(mean|var)/);
  });
  it('a shard that does not exist, an unknown architecture, an unknown option', async () => {
    await expect(runForward(gpu.ctx, { ...base(), weights: `${FIX}cifar.weights-1.safetensors,${FIX}nope.safetensors` })).rejects.toThrow(/nope\.safetensors does not exist/);
    await expect(runForward(gpu.ctx, { ...base(), arch: 'resnet50' })).rejects.toThrow(/unknown architecture 'resnet50'/);
    await expect(runForward(gpu.ctx, { ...base(), options: { numClases: 10 } })).rejects.toThrow(/no option 'numClases'/);
  });
  it('wrong widths: names the mis-shaped tensors', async () => {
    await expect(runForward(gpu.ctx, { ...base(), options: { numClasses: 10, variant: 'cifar', width: 4 } })).rejects.toThrow(/'conv1\.weight' has shape \[8,3,3,3\] in the source, expected \[4,3,3,3\]/);
  });
  it('an input without x, an input of the wrong rank, NaN weights, a truncated shard', async () => {
    const noX = join(tmp, 'nox.safetensors');
    writeFileSync(noX, serializeSafetensors(new Map([['y', { dtype: 'F32', shape: [2], data: new Float32Array(2) }]])));
    await expect(runForward(gpu.ctx, { ...base(), input: noX })).rejects.toThrow(/has no tensor 'x'/);
    const flat = join(tmp, 'flat.safetensors');
    writeFileSync(flat, serializeSafetensors(new Map([['x', { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) }]])));
    await expect(runForward(gpu.ctx, { ...base(), input: flat })).rejects.toThrow(/input 'x' has shape \[2, 3\]; resnet18 takes rank 4/);
    const w1 = await loadSafetensorsFile(`${FIX}cifar.weights-1.safetensors`);
    const t = w1.tensors.get('conv1.weight')!;
    const data = Uint16Array.from(t.data as Uint16Array);
    data[5] = 0x7e00; // an F16 NaN
    w1.tensors.set('conv1.weight', { ...t, data });
    const nan = join(tmp, 'nan.safetensors');
    writeFileSync(nan, serializeSafetensors(w1.tensors));
    await expect(runForward(gpu.ctx, { ...base(), weights: `${nan},${FIX}cifar.weights-2.safetensors` })).rejects.toThrow(/conv1\.weight.*(NaN|non-finite)/);
    const cut = join(tmp, 'cut.safetensors');
    copyFileSync(`${FIX}cifar.weights-2.safetensors`, cut);
    writeFileSync(cut, readFileSync(cut).subarray(0, 5000));
    await expect(runForward(gpu.ctx, { ...base(), weights: `${FIX}cifar.weights-1.safetensors,${cut}` })).rejects.toThrow(/cut\.safetensors/);
  });
});

describe('forward --arch ddpm-unet against PyTorch (test/fixtures/unet_golden.safetensors)', () => {
  const GOLD = new URL('./fixtures/unet_golden.safetensors', import.meta.url).pathname;
  /** Weights-only and input files cut from the golden fixture; returns the options and the golden outputs. */
  async function files(y: 'cond' | 'dropped', t?: number[], yOverride?: number[]) {
    const f = await loadSafetensorsFile(GOLD);
    const cfg = JSON.parse(f.metadata.config!);
    const options = { ch: cfg.ch, chMult: cfg.ch_mult, numResBlocks: cfg.num_res_blocks, attnResolutions: cfg.attn_resolutions, dropout: cfg.dropout, imageSize: cfg.resolution, numClasses: cfg.n_classes, numGroups: cfg.num_groups };
    const weights = new Map([...f.tensors].filter(([n]) => !/^(input|out|grad)\./.test(n)));
    const wPath = join(tmp, 'unet.weights.safetensors');
    writeFileSync(wPath, serializeSafetensors(weights));
    const drop = f.tensors.get('input.cond_drop')!.data as BigInt64Array;
    const ys = Array.from(f.tensors.get('input.y')!.data as BigInt64Array, (v, i) => (y === 'dropped' && drop[i] ? cfg.n_classes : Number(v)));
    const ts = Array.from(f.tensors.get('input.t')!.data as BigInt64Array, Number);
    const inPath = join(tmp, `unet.${y}.input.safetensors`);
    writeFileSync(
      inPath,
      serializeSafetensors(
        new Map([
          ['x', f.tensors.get('input.x')!],
          ['t', { dtype: 'I64', shape: [3], data: BigInt64Array.from((t ?? ts).map(BigInt)) }],
          ['y', { dtype: 'I64', shape: [3], data: BigInt64Array.from((yOverride ?? ys).map(BigInt)) }],
        ]),
      ),
    );
    return { options, wPath, inPath, eps: toFloat32(f.tensors.get('out.eps')!), guided: toFloat32(f.tensors.get('out.guided')!), w: Number(f.metadata.cond_scale) };
  }
  it('eps with the null class for the dropped sample, and the guided output (condScale 2), match to 1e-4', async () => {
    for (const kind of ['dropped', 'cond'] as const) {
      const g = await files(kind);
      const out = join(tmp, `unet.${kind}.out.safetensors`);
      const options = kind === 'cond' ? { ...g.options, condScale: g.w } : g.options;
      const shape = await runForward(gpu.ctx, { arch: 'ddpm-unet', options, weights: g.wPath, input: g.inPath, out });
      expect(shape).toEqual([3, 3, 16, 16]);
      expect(relErr(toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!), kind === 'cond' ? g.guided : g.eps)).toBeLessThan(1e-4);
    }
  }, 120_000);
  it('rejects a timestep >= T, a class beyond the null class and a wrong image size, naming them', async () => {
    const out = join(tmp, 'unet.bad.out.safetensors');
    const a = await files('cond', [0, 1000, 3]);
    await expect(runForward(gpu.ctx, { arch: 'ddpm-unet', options: a.options, weights: a.wPath, input: a.inPath, out })).rejects.toThrow(/timestep t\[1\] = 1000 is outside \[0, 1000\)/);
    const b = await files('cond', undefined, [0, 11, 3]);
    await expect(runForward(gpu.ctx, { arch: 'ddpm-unet', options: b.options, weights: b.wPath, input: b.inPath, out })).rejects.toThrow(/class y\[1\] = 11 is outside \[0, 10\]/);
    // the same weights fit a 32x32 model (no size-dependent parameter): the 16x16 input is refused
    await expect(runForward(gpu.ctx, { arch: 'ddpm-unet', options: { ...b.options, imageSize: 32, attnResolutions: [32] }, weights: a.wPath, input: (await files('cond')).inPath, out })).rejects.toThrow(/is 16x16; the model was built for 32x32 images/);
    await expect(runForward(gpu.ctx, { arch: 'ddpm-unet', options: { ...b.options, condScale: 'two' }, weights: a.wPath, input: a.inPath, out })).rejects.toThrow(/condScale must be a finite number/);
  }, 120_000);
});

describe('forward --arch dit against PyTorch (test/fixtures/dit_golden.safetensors)', () => {
  it('prediction and forward_with_cfg output (cfgScale 4) match to 1e-4; a class beyond the null class is refused', async () => {
    const f = await loadSafetensorsFile(new URL('./fixtures/dit_golden.safetensors', import.meta.url).pathname);
    const c = JSON.parse(f.metadata.config!);
    const options = { inputSize: c.input_size, patchSize: c.patch_size, inChannels: c.in_channels, hiddenSize: c.hidden_size, depth: c.depth, numHeads: c.num_heads, mlpRatio: c.mlp_ratio, classDropoutProb: c.class_dropout_prob, numClasses: c.num_classes, learnSigma: c.learn_sigma };
    const wPath = join(tmp, 'dit.weights.safetensors');
    writeFileSync(wPath, serializeSafetensors(new Map([...f.tensors].filter(([n]) => !/^(input|out|grad)\./.test(n)))));
    const input = (y: bigint[]) => {
      const p = join(tmp, `dit.input.${y.join('-')}.safetensors`);
      writeFileSync(p, serializeSafetensors(new Map([['x', f.tensors.get('input.x')!], ['t', f.tensors.get('input.t')!], ['y', { dtype: 'I64', shape: [3], data: BigInt64Array.from(y) }]])));
      return p;
    };
    const inPath = input(Array.from(f.tensors.get('input.y')!.data as BigInt64Array));
    for (const [opts, key] of [[options, 'out.pred'], [{ ...options, cfgScale: Number(f.metadata.cfg_scale) }, 'out.guided']] as const) {
      const out = join(tmp, 'dit.out.safetensors');
      expect(await runForward(gpu.ctx, { arch: 'dit', options: opts, weights: wPath, input: inPath, out })).toEqual([3, 6, 8, 8]);
      expect(relErr(toFloat32((await loadSafetensorsFile(out)).tensors.get('out')!), toFloat32(f.tensors.get(key)!))).toBeLessThan(1e-4);
    }
    await expect(runForward(gpu.ctx, { arch: 'dit', options, weights: wPath, input: input([0n, 11n, 2n]), out: join(tmp, 'x.safetensors') })).rejects.toThrow(/class y\[1\] = 11 is outside \[0, 10\]/);
  }, 120_000);
});
