// Module / layer bookkeeping: torchvision ResNet-18 names and shapes, parameter counts, state-dict
// round trips (live tensors and safetensors-style CPU records with PyTorch's I64 counter), one error
// naming every bad entry, freeze / clone / train-eval, BatchNorm's counter.
import { describe, it, expect } from 'vitest';
import { useGpu, expectClose } from './helpers.js';
import { tensor, randn } from '../src/wgsl/fill.js';
import { sum } from '../src/wgsl/reduce.js';
import { ResNet } from '../src/models/resnet.js';
import { MLP } from '../src/models/mlp.js';
import { BatchNorm2d, Dropout, Flatten, Sequential, Linear } from '../src/nn/layers/index.js';
import type { Tensor } from '../src/autograd/tensor.js';
import { Generator } from '../src/util/rng.js';
import { EngineError } from '../src/util/errors.js';
import { backward } from '../src/autograd/backward.js';

const gpu = useGpu();

/** torchvision resnet18().state_dict() names in order, with the CIFAR stem, width 8, 10 classes. */
const RESNET18_CIFAR_W8: [string, number[]][] = [
  ['conv1.weight', [8, 3, 3, 3]],
  ['bn1.weight', [8]],
  ['bn1.bias', [8]],
  ['bn1.running_mean', [8]],
  ['bn1.running_var', [8]],
  ['bn1.num_batches_tracked', []],
  ['layer1.0.conv1.weight', [8, 8, 3, 3]],
  ['layer1.0.bn1.weight', [8]],
  ['layer1.0.bn1.bias', [8]],
  ['layer1.0.bn1.running_mean', [8]],
  ['layer1.0.bn1.running_var', [8]],
  ['layer1.0.bn1.num_batches_tracked', []],
  ['layer1.0.conv2.weight', [8, 8, 3, 3]],
  ['layer1.0.bn2.weight', [8]],
  ['layer1.0.bn2.bias', [8]],
  ['layer1.0.bn2.running_mean', [8]],
  ['layer1.0.bn2.running_var', [8]],
  ['layer1.0.bn2.num_batches_tracked', []],
  ['layer1.1.conv1.weight', [8, 8, 3, 3]],
  ['layer1.1.bn1.weight', [8]],
  ['layer1.1.bn1.bias', [8]],
  ['layer1.1.bn1.running_mean', [8]],
  ['layer1.1.bn1.running_var', [8]],
  ['layer1.1.bn1.num_batches_tracked', []],
  ['layer1.1.conv2.weight', [8, 8, 3, 3]],
  ['layer1.1.bn2.weight', [8]],
  ['layer1.1.bn2.bias', [8]],
  ['layer1.1.bn2.running_mean', [8]],
  ['layer1.1.bn2.running_var', [8]],
  ['layer1.1.bn2.num_batches_tracked', []],
  ['layer2.0.conv1.weight', [16, 8, 3, 3]],
  ['layer2.0.bn1.weight', [16]],
  ['layer2.0.bn1.bias', [16]],
  ['layer2.0.bn1.running_mean', [16]],
  ['layer2.0.bn1.running_var', [16]],
  ['layer2.0.bn1.num_batches_tracked', []],
  ['layer2.0.conv2.weight', [16, 16, 3, 3]],
  ['layer2.0.bn2.weight', [16]],
  ['layer2.0.bn2.bias', [16]],
  ['layer2.0.bn2.running_mean', [16]],
  ['layer2.0.bn2.running_var', [16]],
  ['layer2.0.bn2.num_batches_tracked', []],
  ['layer2.0.downsample.0.weight', [16, 8, 1, 1]],
  ['layer2.0.downsample.1.weight', [16]],
  ['layer2.0.downsample.1.bias', [16]],
  ['layer2.0.downsample.1.running_mean', [16]],
  ['layer2.0.downsample.1.running_var', [16]],
  ['layer2.0.downsample.1.num_batches_tracked', []],
  ['layer2.1.conv1.weight', [16, 16, 3, 3]],
  ['layer2.1.bn1.weight', [16]],
  ['layer2.1.bn1.bias', [16]],
  ['layer2.1.bn1.running_mean', [16]],
  ['layer2.1.bn1.running_var', [16]],
  ['layer2.1.bn1.num_batches_tracked', []],
  ['layer2.1.conv2.weight', [16, 16, 3, 3]],
  ['layer2.1.bn2.weight', [16]],
  ['layer2.1.bn2.bias', [16]],
  ['layer2.1.bn2.running_mean', [16]],
  ['layer2.1.bn2.running_var', [16]],
  ['layer2.1.bn2.num_batches_tracked', []],
  ['layer3.0.conv1.weight', [32, 16, 3, 3]],
  ['layer3.0.bn1.weight', [32]],
  ['layer3.0.bn1.bias', [32]],
  ['layer3.0.bn1.running_mean', [32]],
  ['layer3.0.bn1.running_var', [32]],
  ['layer3.0.bn1.num_batches_tracked', []],
  ['layer3.0.conv2.weight', [32, 32, 3, 3]],
  ['layer3.0.bn2.weight', [32]],
  ['layer3.0.bn2.bias', [32]],
  ['layer3.0.bn2.running_mean', [32]],
  ['layer3.0.bn2.running_var', [32]],
  ['layer3.0.bn2.num_batches_tracked', []],
  ['layer3.0.downsample.0.weight', [32, 16, 1, 1]],
  ['layer3.0.downsample.1.weight', [32]],
  ['layer3.0.downsample.1.bias', [32]],
  ['layer3.0.downsample.1.running_mean', [32]],
  ['layer3.0.downsample.1.running_var', [32]],
  ['layer3.0.downsample.1.num_batches_tracked', []],
  ['layer3.1.conv1.weight', [32, 32, 3, 3]],
  ['layer3.1.bn1.weight', [32]],
  ['layer3.1.bn1.bias', [32]],
  ['layer3.1.bn1.running_mean', [32]],
  ['layer3.1.bn1.running_var', [32]],
  ['layer3.1.bn1.num_batches_tracked', []],
  ['layer3.1.conv2.weight', [32, 32, 3, 3]],
  ['layer3.1.bn2.weight', [32]],
  ['layer3.1.bn2.bias', [32]],
  ['layer3.1.bn2.running_mean', [32]],
  ['layer3.1.bn2.running_var', [32]],
  ['layer3.1.bn2.num_batches_tracked', []],
  ['layer4.0.conv1.weight', [64, 32, 3, 3]],
  ['layer4.0.bn1.weight', [64]],
  ['layer4.0.bn1.bias', [64]],
  ['layer4.0.bn1.running_mean', [64]],
  ['layer4.0.bn1.running_var', [64]],
  ['layer4.0.bn1.num_batches_tracked', []],
  ['layer4.0.conv2.weight', [64, 64, 3, 3]],
  ['layer4.0.bn2.weight', [64]],
  ['layer4.0.bn2.bias', [64]],
  ['layer4.0.bn2.running_mean', [64]],
  ['layer4.0.bn2.running_var', [64]],
  ['layer4.0.bn2.num_batches_tracked', []],
  ['layer4.0.downsample.0.weight', [64, 32, 1, 1]],
  ['layer4.0.downsample.1.weight', [64]],
  ['layer4.0.downsample.1.bias', [64]],
  ['layer4.0.downsample.1.running_mean', [64]],
  ['layer4.0.downsample.1.running_var', [64]],
  ['layer4.0.downsample.1.num_batches_tracked', []],
  ['layer4.1.conv1.weight', [64, 64, 3, 3]],
  ['layer4.1.bn1.weight', [64]],
  ['layer4.1.bn1.bias', [64]],
  ['layer4.1.bn1.running_mean', [64]],
  ['layer4.1.bn1.running_var', [64]],
  ['layer4.1.bn1.num_batches_tracked', []],
  ['layer4.1.conv2.weight', [64, 64, 3, 3]],
  ['layer4.1.bn2.weight', [64]],
  ['layer4.1.bn2.bias', [64]],
  ['layer4.1.bn2.running_mean', [64]],
  ['layer4.1.bn2.running_var', [64]],
  ['layer4.1.bn2.num_batches_tracked', []],
  ['fc.weight', [10, 64]],
  ['fc.bias', [10]],
];

async function readAll(m: Map<string, Tensor>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, t] of m) out.set(n, (await t.read()) as Float32Array);
  return out;
}

describe('Module', () => {
  it('ResNet-18 (cifar, width 8) has torchvision names and shapes, in order', () => {
    const { ctx } = gpu;
    const model = new ResNet(ctx, { width: 8, numClasses: 10, variant: 'cifar' });
    const sd = [...model.stateDict()].map(([n, t]) => [n, [...t.shape]]);
    expect(sd).toEqual(RESNET18_CIFAR_W8);
    const params = model.namedParameters().map(([n]) => n);
    expect(params).toEqual(RESNET18_CIFAR_W8.map(([n]) => n).filter((n) => !/running_|num_batches/.test(n)));
    expect(model.namedBuffers().length).toBe(60);
    expect(model.parameters().every((p) => p.requiresGrad)).toBe(true);
    model.dispose();
  });

  it('parameter counts match torchvision at width 64', () => {
    const { ctx } = gpu;
    const imagenet = new ResNet(ctx, { width: 64, numClasses: 1000, variant: 'imagenet' });
    expect(imagenet.numParameters()).toBe(11_689_512); // torchvision.models.resnet18()
    expect(imagenet.stateDict().get('conv1.weight')!.shape).toEqual([64, 3, 7, 7]);
    imagenet.dispose();
    const cifar = new ResNet(ctx, { width: 64, numClasses: 10, variant: 'cifar' });
    expect(cifar.numParameters()).toBe(11_173_962);
    cifar.dispose();
  });

  it('same seed gives the same weights, another seed different ones', async () => {
    const { ctx } = gpu;
    const a = new MLP(ctx, { sizes: [12, 7, 3], seed: 5 });
    const b = new MLP(ctx, { sizes: [12, 7, 3], seed: 5 });
    const c = new MLP(ctx, { sizes: [12, 7, 3], seed: 6 });
    const [ra, rb, rc] = await Promise.all([readAll(a.stateDict()), readAll(b.stateDict()), readAll(c.stateDict())]);
    for (const [n, v] of ra) {
      expect([...rb.get(n)!]).toEqual([...v]);
      expect([...rc.get(n)!]).not.toEqual([...v]);
    }
    // torch's default Linear init: U(-1/sqrt(in), 1/sqrt(in))
    const w = ra.get('layers.0.weight')!;
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(12));
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(12));
    for (const m of [a, b, c]) m.dispose();
  });

  it('stateDict round trip through live tensors and through a CPU record with an I64 counter', async () => {
    const { ctx } = gpu;
    const a = new ResNet(ctx, { width: 4, numClasses: 3, seed: 1 });
    const b = new ResNet(ctx, { width: 4, numClasses: 3, seed: 2 });
    // make the buffers non-trivial: one training forward on a
    ctx.scope(() => a.forward(randn(ctx, [2, 3, 8, 8], new Generator(9))));
    b.loadStateDict(a.stateDict());
    const ra = await readAll(a.stateDict());
    const rb = await readAll(b.stateDict());
    for (const [n, v] of ra) expect([...rb.get(n)!], n).toEqual([...v]);
    expect(ra.get('bn1.num_batches_tracked')![0]).toBe(1);

    // a safetensors-style record as PyTorch writes it (num_batches_tracked I64)
    const c = new ResNet(ctx, { width: 4, numClasses: 3, seed: 3 });
    const record = new Map<string, { dtype: string; shape: number[]; data: ArrayLike<number> | BigInt64Array }>();
    for (const [n, v] of ra)
      record.set(n, n.endsWith('num_batches_tracked') ? { dtype: 'I64', shape: [], data: BigInt64Array.from([7n]) } : { dtype: 'F32', shape: [...a.stateDict().get(n)!.shape], data: v });
    c.loadStateDict({ tensors: record });
    const rc = await readAll(c.stateDict());
    for (const [n, v] of ra) {
      if (n.endsWith('num_batches_tracked')) expect(rc.get(n)![0]).toBe(7);
      else expect([...rc.get(n)!], n).toEqual([...v]);
    }
    for (const m of [a, b, c]) m.dispose();
  });

  it('loadStateDict lists every missing, unexpected and mis-shaped name in one error, writing nothing', async () => {
    const { ctx } = gpu;
    const a = new ResNet(ctx, { width: 4, numClasses: 3 });
    const other = new ResNet(ctx, { width: 4, numClasses: 3, seed: 5 });
    const before = await readAll(a.stateDict());
    const src = new Map<string, Tensor>(other.stateDict());
    src.delete('layer2.0.downsample.0.weight');
    src.delete('bn1.running_var');
    src.set('layer9.weird', src.get('fc.bias')!);
    const wrong = tensor(ctx, new Float32Array(5), [5]);
    src.set('fc.bias', wrong);
    let err: unknown;
    try {
      a.loadStateDict(src);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    const msg = (err as Error).message;
    for (const n of ['layer2.0.downsample.0.weight', 'bn1.running_var', 'layer9.weird', 'fc.bias']) expect(msg).toContain(n);
    expect(msg).toMatch(/^ResNet\.loadStateDict: 3 problem\(s\)/);
    expect(msg).toMatch(/missing 2: 'bn1\.running_var', 'layer2\.0\.downsample\.0\.weight'/);
    expect(msg).toMatch(/unexpected 1: 'layer9\.weird'/);
    expect(msg).toMatch(/'fc\.bias' has shape \[5\] in the source, expected \[3\]/);
    // a live tensor of another dtype is named too
    const ints = tensor(ctx, new Int32Array(3), [3], 'i32');
    expect(() => a.loadStateDict(new Map([...src, ['fc.bias', ints]]), { strict: false })).toThrow(/'fc\.bias' is i32 in the source, cannot load into f32\[3\]/);
    ints.dispose();
    // nothing was written by the failed loads (the two seeds' conv and linear weights differ)
    const after = await readAll(a.stateDict());
    expect([...before.get('conv1.weight')!]).not.toEqual([...(await readAll(other.stateDict())).get('conv1.weight')!]);
    for (const [n, v] of before) expect([...after.get(n)!], n).toEqual([...v]);
    // non-strict: missing/unexpected are returned, the shape error still throws
    expect(() => a.loadStateDict(src, { strict: false })).toThrow(/fc\.bias/);
    src.set('fc.bias', other.stateDict().get('fc.bias')!);
    const r = a.loadStateDict(src, { strict: false });
    expect(r.missing.sort()).toEqual(['bn1.running_var', 'layer2.0.downsample.0.weight']);
    expect(r.unexpected).toEqual(['layer9.weird']);
    // the non-strict load wrote what it matched and left the missing ones
    const loaded = await readAll(a.stateDict());
    const want = await readAll(other.stateDict());
    expect([...loaded.get('conv1.weight')!]).toEqual([...want.get('conv1.weight')!]);
    expect([...loaded.get('bn1.running_var')!]).toEqual([...before.get('bn1.running_var')!]);
    wrong.dispose();
    a.dispose();
    other.dispose();
  });

  it('freeze stops parameter gradients; unfreeze restores them', async () => {
    const { ctx } = gpu;
    const m = new MLP(ctx, { sizes: [6, 5, 2], seed: 1 });
    m.freeze();
    expect(m.parameters().every((p) => !p.requiresGrad)).toBe(true);
    await ctx.scope(async () => {
      const x = tensor(ctx, new Float32Array(12).map((_, i) => i / 7), [2, 6]);
      x.requiresGrad = true;
      backward(sum(m.forward(x)));
      expect(x.grad).not.toBeNull();
      expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    });
    m.unfreeze();
    ctx.scope(() => backward(sum(m.forward(tensor(ctx, new Float32Array(12).fill(1), [2, 6])))));
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
    m.dispose();
  });

  it('clone is an independent copy with the same values, mode and flags', async () => {
    const { ctx } = gpu;
    const a = new ResNet(ctx, { width: 4, numClasses: 3, seed: 4 });
    ctx.scope(() => a.forward(randn(ctx, [2, 3, 8, 8], new Generator(1))));
    const teacher = a.clone().freeze().eval();
    expect(teacher.training).toBe(false);
    expect(teacher.layers[1]!.namedModules().every(([, m]) => !m.training)).toBe(true);
    expect(a.training).toBe(true);
    expect(teacher.parameters().every((p) => !p.requiresGrad)).toBe(true);
    const ra = await readAll(a.stateDict());
    const rt = await readAll(teacher.stateDict());
    for (const [n, v] of ra) expect([...rt.get(n)!], n).toEqual([...v]);
    // training a changes a only
    ctx.scope(() => a.forward(randn(ctx, [2, 3, 8, 8], new Generator(2))));
    const rt2 = await readAll(teacher.stateDict());
    const ra2 = await readAll(a.stateDict());
    expect([...rt2.get('bn1.running_mean')!]).toEqual([...rt.get('bn1.running_mean')!]);
    expect([...ra2.get('bn1.running_mean')!]).not.toEqual([...ra.get('bn1.running_mean')!]);
    // and a clone of the clone shares nothing with it
    const t2 = teacher.clone();
    t2.dispose();
    expect((await teacher.stateDict().get('fc.weight')!.read()).length).toBe(3 * 32);
    a.dispose();
    teacher.dispose();
  });

  it('BatchNorm2d counts batches in training only and matches the batch statistics', async () => {
    const { ctx } = gpu;
    const bn = new BatchNorm2d(ctx, { numFeatures: 3 });
    const xs = new Float32Array(2 * 3 * 2 * 2).map((_, i) => Math.sin(i * 1.3) * 2 + (i % 3));
    await ctx.scope(async () => {
      const x = tensor(ctx, xs, [2, 3, 2, 2]);
      const y = bn.forward(x);
      bn.forward(x);
      bn.eval();
      bn.forward(x);
      expect(await bn.stateDict().get('num_batches_tracked')!.item()).toBe(2);
      // training output: per-channel standardisation with the biased variance
      const yv = await y.read();
      const ref = new Float64Array(xs.length);
      for (let c = 0; c < 3; c++) {
        const idx: number[] = [];
        for (let n = 0; n < 2; n++) for (let p = 0; p < 4; p++) idx.push(n * 12 + c * 4 + p);
        const mu = idx.reduce((s, i) => s + xs[i]!, 0) / idx.length;
        const va = idx.reduce((s, i) => s + (xs[i]! - mu) ** 2, 0) / idx.length;
        for (const i of idx) ref[i] = (xs[i]! - mu) / Math.sqrt(va + 1e-5);
      }
      expectClose(yv, ref, 1e-4, 1e-5, 'bn train output');
    });
    bn.dispose();
  });

  it('Sequential, Flatten and Dropout: names, gradient through the reshape, train/eval behaviour', async () => {
    const { ctx } = gpu;
    const gen = new Generator(3);
    const net = new Sequential(ctx, [new Flatten(ctx), new Dropout(ctx, { p: 0.5, gen }), new Linear(ctx, { inFeatures: 8, outFeatures: 2, gen })]);
    expect(net.namedParameters().map(([n]) => n)).toEqual(['2.weight', '2.bias']);
    const xs = new Float32Array(16).map((_, i) => 1 + i);
    await ctx.scope(async () => {
      const x = tensor(ctx, xs, [2, 2, 2, 2]);
      x.requiresGrad = true;
      const h = (net.layers[1] as Dropout).forward((net.layers[0] as Flatten).forward(x));
      const hv = await h.read();
      const zeros = hv.filter((v) => v === 0).length;
      expect(zeros).toBeGreaterThan(0);
      expect(zeros).toBeLessThan(16);
      hv.forEach((v, i) => v !== 0 && expect(v).toBeCloseTo(2 * xs[i]!, 5));
      backward(sum(h));
      const gx = await x.grad!.read();
      gx.forEach((g, i) => expect(g).toBe(hv[i] === 0 ? 0 : 2));
      net.eval();
      const e = await (net.layers[1] as Dropout).forward(tensor(ctx, xs, [2, 8])).read();
      expect([...e]).toEqual([...xs]);
    });
    net.dispose();
  });
});
