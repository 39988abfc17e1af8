// Node reader for the CIFAR-10 binary release: a directory holding data_batch_1..5.bin and
// test_batch.bin (or its cifar-10-batches-bin/ subdirectory). Parsing is in cifar.ts.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ByteImageDataset } from './dataset.js';
import { cifar10FromBatches } from './cifar.js';
import { EngineError } from '../util/errors.js';

export const CIFAR10_BATCH_FILES = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
} as const;

/** CIFAR-10 (binary version) from `dir`: train = 50,000 images, test = 10,000, each [3, 32, 32]. */
export function loadCifar10Binary(dir: string, split: 'train' | 'test'): ByteImageDataset {
  const files = CIFAR10_BATCH_FILES[split];
  if (!files) throw new EngineError('loadCifar10Binary', `split '${split}' is neither 'train' nor 'test'`);
  const sub = path.join(dir, 'cifar-10-batches-bin');
  const base = !existsSync(path.join(dir, files[0])) && existsSync(path.join(sub, files[0])) ? sub : dir;
  return cifar10FromBatches(
    files.map((f) => {
      const name = path.join(base, f);
      if (!existsSync(name)) throw new EngineError('loadCifar10Binary', `${name} does not exist`);
      return { bytes: readFileSync(name), name };
    }),
  );
}
