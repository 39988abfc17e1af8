// Classification on the generic loop: an MLP on a small synthetic image set learns (loss falls,
// accuracy far above chance); evaluate() gives probabilities, predictions, labels and indices in
// loader order; an interrupted run resumed from its checkpoint (at an epoch end, or mid-epoch from an
// in-memory step checkpoint) ends with bit-identical weights, BatchNorm buffers, optimizer state and
// history to an uninterrupted run (MLP and a tiny ResNet with augmentation).
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu } from './helpers.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { compose, randomCrop, randomHorizontalFlip } from '../src/data/transforms.js';
import { SGD } from '../src/nn/optim.js';
import { cosineLr } from '../src/nn/schedule.js';
import { MLP } from '../src/models/mlp.js';
import { ResNet } from '../src/models/resnet.js';
import { trainClassifier, evaluate, type TrainProgress } from '../src/nn/train.js';
import { nodeCheckpointIO } from '../src/nn/checkpoint-node.js';
import { memoryCheckpointIO } from '../src/nn/checkpoint.js';
import type { Outputs } from '../src/unlearn/classification/evaluate.js';
import type { Module } from '../src/nn/module.js';
import { trainFromConfig, checkTrainConfig } from '../src/cli/train.js';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { readFileSync } from 'node:fs';
import { Generator } from '../src/util/rng.js';

const gpu = useGpu();
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'train-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** n images [1, S, S] of `classes` classes: a class-specific bright block plus noise. */
function synthetic(n: number, S: number, classes: number, seed: number): ByteImageDataset {
  const g = new Generator(seed);
  const images = new Uint8Array(n * S * S);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = g.cpuInt(classes);
    labels[i] = c;
    for (let p = 0; p < S * S; p++) {
      const r = Math.floor(p / S);
      const inBlock = Math.floor((r * classes) / S) === c;
      images[i * S * S + p] = Math.min(255, Math.floor((inBlock ? 150 : 40) + 100 * g.cpuUniform()));
    }
  }
  return new ByteImageDataset(images, labels, [1, S, S], classes);
}

async function weights(m: Module): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, t] of m.stateDict()) out.set(n, (await t.read()) as Float32Array);
  return out;
}

describe('trainClassifier', () => {
  it('an MLP learns a synthetic task: loss falls, accuracy far above chance', async () => {
    const { ctx } = gpu;
    const train = synthetic(240, 6, 4, 1);
    const test = synthetic(80, 6, 4, 2);
    const model = new MLP(ctx, { sizes: [36, 32, 4], seed: 3 });
    const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const events: TrainProgress[] = [];
    const before = await evaluate(ctx, model, new DataLoader(test, { batchSize: 32 }));
    const res = await trainClassifier({
      ctx, model, optimizer, epochs: 4,
      trainLoader: new DataLoader(train, { batchSize: 16, shuffle: true, seed: 5 }),
      testLoader: new DataLoader(test, { batchSize: 32 }),
      schedule: cosineLr(0.1, 4), progress: false, readEvery: 5,
      onProgress: (p) => events.push(p),
    });
    expect(res.history.length).toBe(4);
    const h = res.history;
    expect(h[3]!.trainLoss).toBeLessThan(h[0]!.trainLoss * 0.5);
    expect(h[3]!.testAccuracy!).toBeGreaterThan(0.8); // chance is 0.25
    expect(h[3]!.testLoss!).toBeLessThan(before.loss * 0.5);
    expect(h.map((e) => e.lr)).toEqual([0, 1, 2, 3].map((e) => cosineLr(0.1, 4)(e)));
    expect(events.filter((e) => e.kind === 'epoch').length).toBe(4);
    expect(events.filter((e) => e.kind === 'step').length).toBeGreaterThan(4);
    // evaluate agrees with the history and returns probabilities, predictions, labels and dataset
    // indices in loader order (the loader here serves a shuffled subset)
    const order = Int32Array.from(new Generator(4).permutation(80).slice(0, 70));
    const evalLoader = new DataLoader(test, { batchSize: 32, indices: order });
    const calls: [number, number][] = [];
    const ev = await evaluate(ctx, model, evalLoader, { probs: true, progress: (d, n) => calls.push([d, n]) });
    const asPredict: Outputs = ev; // (compile-time) everything the unlearning code's predict() returns
    expect(asPredict.n).toBe(70);
    expect(calls).toEqual([[1, 3], [2, 3], [3, 3]]);
    const evAll = await evaluate(ctx, model, new DataLoader(test, { batchSize: 32 }));
    expect(evAll.accuracy).toBeCloseTo(h[3]!.testAccuracy!, 6);
    expect([ev.n, ev.C, ev.probs!.length]).toEqual([70, 4, 70 * 4]);
    expect([...ev.indices!]).toEqual([...order]);
    expect([...ev.labels!]).toEqual([...order].map((i) => test.get(i).label));
    for (let i = 0; i < 70; i++) {
      const row = [...ev.probs!.subarray(i * 4, i * 4 + 4)];
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1), `row ${i} sums to 1`).toBeLessThan(1e-5);
      expect(ev.preds![i], `pred ${i}`).toBe(row.indexOf(Math.max(...row)));
    }
    // the accuracy counted on the GPU is the fraction of CPU argmax predictions that match
    expect(ev.accuracy).toBeCloseTo(ev.preds!.filter((p, i) => p === ev.labels![i]).length / 70, 6);
    expect(model.training).toBe(true);
    optimizer.dispose();
    model.dispose();
  });

  const cases = [
    { name: 'MLP', make: () => new MLP(gpu.ctx, { sizes: [36, 16, 4], seed: 7 }), transform: undefined, epochs: 3, stopAfter: 1 },
    {
      name: 'ResNet (BatchNorm buffers, augmentation)',
      make: () => new ResNet(gpu.ctx, { width: 2, inChannels: 1, numClasses: 4, seed: 7 }),
      transform: () => compose(randomCrop(6, 1), randomHorizontalFlip()),
      epochs: 2,
      stopAfter: 1,
    },
  ];
  for (const c of cases) {
    it(`resume after an interruption gives bit-identical weights (${c.name})`, async () => {
      const { ctx } = gpu;
      const train = synthetic(c.name === 'MLP' ? 96 : 48, 6, 4, 11);
      const run = async (dir: string, signal?: AbortSignal, onEpoch?: (e: number) => void, resume = false) => {
        const model = c.make();
        const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
        const res = await trainClassifier({
          ctx, model, optimizer, epochs: c.epochs, checkpointDir: dir, checkpointIO: nodeCheckpointIO(), resume, signal,
          trainLoader: new DataLoader(train, { batchSize: 16, shuffle: true, seed: 9, transform: c.transform?.() }),
          schedule: cosineLr(0.05, c.epochs), progress: false,
          onProgress: (p) => p.kind === 'epoch' && onEpoch?.(p.epoch),
        });
        return { model, optimizer, res };
      };
      const full = await run(tmp());
      expect(full.res.epochsDone).toBe(c.epochs);

      const dir = tmp();
      const ac = new AbortController();
      const first = await run(dir, ac.signal, (e) => e + 1 === c.stopAfter && ac.abort());
      expect(first.res.interrupted).toBe(true);
      expect(first.res.epochsDone).toBe(c.stopAfter);
      expect(existsSync(join(dir, 'checkpoint.safetensors'))).toBe(true);
      first.model.dispose();
      first.optimizer.dispose();

      const resumed = await run(dir, undefined, undefined, true);
      expect(resumed.res.resumedAt).toBe(c.stopAfter);
      expect(resumed.res.epochsDone).toBe(c.epochs);
      expect(resumed.res.history.map((e) => e.trainLoss)).toEqual(full.res.history.map((e) => e.trainLoss));

      const [a, b] = [await weights(full.model), await weights(resumed.model)];
      for (const [n, v] of a) expect(Buffer.from(b.get(n)!.buffer).equals(Buffer.from(v.buffer)), n).toBe(true);
      const oa = full.optimizer.stateDict().tensors as Map<string, import('../src/autograd/tensor.js').Tensor>;
      const ob = resumed.optimizer.stateDict().tensors as Map<string, import('../src/autograd/tensor.js').Tensor>;
      for (const [n, t] of oa) expect([...(await ob.get(n)!.read())], n).toEqual([...(await t.read())]);
      // and training changed the weights at all
      const fresh = await weights(c.make());
      expect([...a.values()].some((v, i) => v.some((x, j) => x !== [...fresh.values()][i]![j]))).toBe(true);
      for (const r of [full, resumed]) {
        r.model.dispose();
        r.optimizer.dispose();
      }
    });
  }

  it('a mid-epoch abort checkpoints the partial epoch; resuming gives the same bits and history (in-memory checkpoints)', async () => {
    const { ctx } = gpu;
    const train = synthetic(96, 6, 4, 12); // 6 steps per epoch
    const run = async (io: ReturnType<typeof memoryCheckpointIO>, signal?: AbortSignal, onStep?: (globalStep: number) => void, resume = false) => {
      const model = new MLP(ctx, { sizes: [36, 16, 4], seed: 8 });
      const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const res = await trainClassifier({
        ctx, model, optimizer, epochs: 3, checkpointDir: 'mem', checkpointIO: io, checkpointEverySteps: 4, resume, signal, readEvery: 2,
        trainLoader: new DataLoader(train, { batchSize: 16, shuffle: true, seed: 2 }),
        schedule: cosineLr(0.05, 18), scheduleUnit: 'step', progress: false,
        onProgress: (p) => p.kind === 'step' && onStep?.(p.globalStep),
      });
      return { model, optimizer, res };
    };
    const full = await run(memoryCheckpointIO());
    const io = memoryCheckpointIO();
    const ac = new AbortController();
    const first = await run(io, ac.signal, (g) => g === 10 && ac.abort()); // epoch 1, step 4
    expect([first.res.interrupted, first.res.epochsDone, first.res.checkpointPath]).toEqual([true, 1, 'mem/checkpoint.safetensors']);
    first.model.dispose();
    first.optimizer.dispose();
    const resumed = await run(io, undefined, undefined, true);
    expect(resumed.res.resumedAt).toBe(1);
    // the partial epoch's loss and accuracy sums were restored: the history is the same numbers
    expect(resumed.res.history.map((e) => [e.trainLoss, e.trainAccuracy, e.lr])).toEqual(full.res.history.map((e) => [e.trainLoss, e.trainAccuracy, e.lr]));
    const [a, b] = [await weights(full.model), await weights(resumed.model)];
    for (const [n, v] of a) expect(Buffer.from(b.get(n)!.buffer).equals(Buffer.from(v.buffer)), n).toBe(true);
    for (const r of [full, resumed]) {
      r.model.dispose();
      r.optimizer.dispose();
    }
  });

  it.skipIf(!defaultMnistDir())('the train command trains an MLP on an MNIST subset and writes its outputs', async () => {
    const { ctx } = gpu;
    const dir = tmp();
    const cfg = checkTrainConfig({
      model: { name: 'mlp', hidden: [32] }, dataset: { kind: 'mnist' }, epochs: 1, lr: 0.1, momentum: 0.9,
      batchSize: 50, seed: 3, outDir: dir, trainSubset: 2000, testSubset: 500,
    });
    const res = await trainFromConfig(ctx, cfg, { progress: false });
    expect(res.test!.accuracy).toBeGreaterThan(0.6); // chance 0.1
    expect(res.test!.n).toBe(500);
    const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    expect(metrics.history.length).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, 'train-indices.json'), 'utf8')).length).toBe(2000);
    const model = await loadSafetensorsFile(join(dir, 'model.safetensors'));
    expect([...model.tensors.keys()].sort()).toEqual(['layers.0.bias', 'layers.0.weight', 'layers.2.bias', 'layers.2.weight']);
    expect(model.tensors.get('layers.0.weight')!.shape).toEqual([32, 784]);
    // resuming a finished run trains nothing more and reports the same history
    const again = await trainFromConfig(ctx, cfg, { progress: false, resume: true });
    expect(again.history).toEqual(res.history);
  });

  it('config errors list every problem', () => {
    expect(() => checkTrainConfig({ model: { name: 'vgg' }, dataset: { kind: 'cifar10-bin' }, epochs: -1, lr: 0.1, batchSize: 8, outDir: 'x', extra: 1 })).toThrow(
      /unknown field 'extra'.*model\.name.*dataset\.path.*epochs/,
    );
  });
});
