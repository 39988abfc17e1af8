// Golden test against PyTorch: ResNet-18 (width 8, CIFAR stem, 10 classes) loaded from the state
// dict that scripts/make_resnet_golden.py wrote (torch's names, I64 counter), one training-mode
// forward, mean cross-entropy and backward; logits, loss, every parameter gradient and the updated
// BatchNorm running statistics and counters must match PyTorch's float64 answer to max|a-b|/max|b|
// <= 1e-4 per tensor. It does not cover eval mode or the optimizer step.
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { useGpu } from './helpers.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { toFloat32, toInt32 } from '../src/io/safetensors.js';
import { tensor } from '../src/wgsl/fill.js';
import { mean } from '../src/wgsl/reduce.js';
import { crossEntropy, labelsTensor } from '../src/wgsl/cross_entropy.js';
import { ResNet } from '../src/models/resnet.js';
import { backward } from '../src/autograd/backward.js';
import { relErr, goldenLookup } from './golden.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/resnet_golden.safetensors', import.meta.url));
const TOL = 1e-4;
const PREFIXES = ['input.', 'out.', 'grad.', 'after.'];

const gpu = useGpu();

describe('ResNet-18 golden values from PyTorch (train mode)', () => {
  it('logits, loss, every gradient and the running statistics match', async () => {
    const { ctx } = gpu;
    const file = await loadSafetensorsFile(FIXTURE);
    const golden = goldenLookup(file);

    const model = new ResNet(ctx, { width: 8, numClasses: 10, inChannels: 3, variant: 'cifar', seed: 123 });
    // the file also holds the inputs and golden outputs: load the state under torch's own names
    const { missing, unexpected } = model.loadStateDict(file, { strict: false });
    expect(missing).toEqual([]);
    expect(unexpected.filter((n) => !PREFIXES.some((p) => n.startsWith(p)))).toEqual([]);
    model.train();

    const xs = golden('input.x');
    const x = ctx.keep(tensor(ctx, toFloat32(xs), xs.shape));
    const y = ctx.keep(labelsTensor(ctx, toInt32(golden('input.y')), 10));
    const [logits, loss] = ctx.scope(() => {
      const lg = model.forward(x);
      const l = mean(crossEntropy(lg, y));
      backward(l);
      return [lg, l];
    });

    const rows: { kind: string; name: string; err: number }[] = [];
    const check = (kind: string, name: string, actual: ArrayLike<number>, expected: ArrayLike<number>) =>
      rows.push({ kind, name, err: relErr(actual, expected) });

    check('logits', 'out.logits', await logits!.read(), toFloat32(golden('out.logits')));
    check('loss', 'out.loss', [await loss!.item()], toFloat32(golden('out.loss')));
    const params = model.namedParameters();
    expect(params.length).toBe([...file.tensors.keys()].filter((n) => n.startsWith('grad.')).length);
    for (const [name, p] of params) {
      expect(p.grad, `${name} has no gradient`).toBeTruthy();
      check('grad', name, await p.grad!.read(), toFloat32(golden(`grad.${name}`)));
    }
    let buffers = 0;
    for (const [name, b] of model.stateDict()) {
      if (!name.endsWith('running_mean') && !name.endsWith('running_var') && !name.endsWith('num_batches_tracked')) continue;
      buffers++;
      const g = golden(`after.${name}`);
      const expected = g.dtype === 'I64' ? Array.from(toInt32(g, name)) : toFloat32(g);
      const kind = name.endsWith('num_batches_tracked') ? 'num_batches_tracked' : name.endsWith('running_mean') ? 'running_mean' : 'running_var';
      const actual = Array.from(await b.read(), Number);
      if (kind === 'num_batches_tracked') expect(actual, name).toEqual(expected); // exact: 3 + 1
      check(kind, name, actual, expected);
    }
    expect(buffers).toBe(3 * 20); // 20 BatchNorms in ResNet-18

    // worst relative error per kind (printed so the margin to the tolerance is on record)
    const worst = new Map<string, { name: string; err: number }>();
    for (const r of rows) if (!(worst.get(r.kind)!?.err >= r.err)) worst.set(r.kind, r);
    console.log(
      'ResNet-18 golden, worst max|a-b|/max|b| per kind: ' +
        [...worst].map(([k, w]) => `${k} ${w.err.toExponential(2)} (${w.name})`).join(', '),
    );
    const failing = rows.filter((r) => !(r.err <= TOL)).map((r) => `${r.name}: ${r.err.toExponential(2)}`);
    expect(failing, `tensors above ${TOL}`).toEqual([]);

    logits!.dispose();
    loss!.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
  }, 60_000);
});
