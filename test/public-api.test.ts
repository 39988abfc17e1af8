// The public API, listed: every runtime name exported by the package entries. A change to the API
// must show up as a diff here (add or remove the name on purpose). Types are not listed (they
// vanish at run time); tsc checks them.
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as nodeApi from '../src/node.js';

const BROWSER_ENTRY = [
    'Activation', 'Adam', 'AdamW', 'AdaptiveAvgPool2d', 'AvgPool2d', 'BINARY', 'BasicBlock', 'BatchNorm2d',
    'ByteImageDataset', 'CHECKPOINT_FILE', 'CIFAR10_CLASSES', 'CIFAR10_MEAN', 'CIFAR10_PRESETS',
    'CIFAR10_STD', 'ConcatDataset', 'Conv2d', 'DTYPE_BYTES', 'DataLoader', 'Dropout', 'Embedding',
    'EngineError', 'FASHION_MNIST_CLASSES', 'Flatten', 'Generator', 'GpuContext', 'Identity', 'Linear',
    'METHODS', 'METHOD_NAMES', 'MLP', 'MNIST_MEAN', 'MNIST_PRESETS', 'MNIST_STD', 'MaxPool2d', 'Module',
    'NO_ADAPTER_HELP', 'OPTIONAL_FEATURES', 'Optimizer', 'PRESETS', 'ProgressBar', 'REQUESTED_LIMITS',
    'ReLU', 'ResNet', 'SGD', 'SVC', 'Sequential', 'Subset', 'TINYIMAGENET_PRESETS', 'Tensor', 'UNARY',
    'abs', 'accuracy', 'adaptiveAscent', 'adaptiveAvgPool2d', 'adaptiveWeights', 'add', 'addScalar',
    'arange', 'argmax', 'argmin', 'ascentLoss', 'assertSameSplit', 'avgGap', 'avgPool2d', 'backward',
    'barChart', 'batchNorm2d', 'batchNorm2dRelu', 'bernoulli', 'bf16ToNumber', 'broadcastShapes',
    'browserImageDecoder', 'checkMethodConfig', 'cifar10EvalTransform', 'cifar10FromBatches',
    'cifar10TrainTransform', 'clamp', 'classForgetSplit', 'classificationExperiment',
    'classificationProblem', 'clipGradNorm', 'compose', 'computeMetrics', 'concat', 'constantLr', 'conv2d',
    'copyTensor', 'cos', 'cosineLr', 'crossEntropy', 'decayFactor', 'demoConfig', 'detach', 'div',
    'downsampleDataset', 'drawRandomLabels', 'dropout', 'eq', 'evaluate', 'evenSubset', 'exp',
    'f16ToNumber', 'fisherRatioMask', 'fitLogReg', 'float32ToF16', 'forgetSplitOf', 'formatDuration',
    'full', 'gapToRt', 'gapsToReference', 'ge', 'gelu', 'globalAvgPool2d', 'gt', 'gunzip',
    'imageFolderFromArchive', 'imageFolderFromFiles', 'imageFolderIndex', 'indexFileSplit', 'indexSelect',
    'indexTensor', 'jsDivergence', 'klDivFromLogits', 'klDivergence', 'labelsTensor', 'le', 'linePlot',
    'linear', 'linearLr', 'loadCheckpoint', 'loadIdxImages', 'loadIdxLabels', 'loadIntoTensors',
    'loadOptimizerState', 'log', 'logRegPredict', 'logSoftmax', 'logSumExp', 'lt', 'makeSplit',
    'maskDensity', 'maskGradients', 'matmul', 'max', 'maxPool2d', 'maximum', 'mean', 'meanLoss',
    'memoryStore', 'methodLabel', 'miaConfidenceSvc', 'miaEntropyLogReg', 'min', 'minimum', 'mnistFromIdx',
    'mnistTransform', 'mseLoss', 'mul', 'mulScalar', 'narrow', 'ne', 'neg', 'nodeCheckpointIO', 'normalize',
    'numberToF16', 'numel', 'oneHot', 'ones', 'onesLike', 'optimizerStateToRecord', 'outputsOf', 'pad',
    'parseCifar10Batch', 'parseIdx', 'parseSafetensors', 'permute', 'pow', 'powScalar', 'predictionEntropy',
    'rand', 'randn', 'randomCrop', 'randomForgetSplit', 'randomHorizontalFlip', 'readTar', 'reciprocal',
    'record', 'relu', 'requireGrad', 'reshape', 'resnet18', 'resolveConfig', 'resolveMethod', 'rsqrt',
    'runTaskExperiment', 'runUnlearning', 'salunMask', 'sameShape', 'saveCheckpoint', 'scatterAdd',
    'serializeSafetensors', 'shapeStr', 'sigmoid', 'silu', 'sin', 'slice', 'softmax', 'splitFromJson',
    'splitHash', 'splitToJson', 'sqrt', 'square', 'std', 'stridesOf', 'sub', 'sum', 'sumTo', 'tanh',
    'tensor', 'tensorsToRecord', 'threefry2x32', 'toCsv', 'toFloat32', 'toGpuBatch', 'toHtml', 'toInt32',
    'toJson', 'toMarkdown', 'trainClassifier', 'transpose', 'trueLabelConfidence', 'unary', 'variance',
    'view', 'warmup', 'where', 'withCliMethods', 'zeros', 'zerosLike',
];

/** Names the Node entry adds to the browser entry. */
const NODE_ENTRY_EXTRA = [
    'CIFAR10_BATCH_FILES', 'cachedByteDataset', 'createNodeContext', 'decodeImageNode', 'defaultMnistDir',
    'jpegComponents', 'loadByteDataset', 'loadCifar10Binary', 'loadData', 'loadImageFolder',
    'loadImageFolderSplits', 'loadMnist', 'loadSafetensorsFile', 'nodeCheckpointReader', 'nodeStore',
    'readArchive', 'readMaybeGzip', 'runExperiment', 'saveByteDataset', 'saveSafetensorsFile',
    'writeFileAtomic', 'writeReport',
];

describe('public API', () => {
  it('src/index.ts exports exactly the listed names', () => {
    expect(Object.keys(api).sort()).toEqual([...BROWSER_ENTRY].sort());
  });
  it('src/node.ts adds exactly the listed Node-only names', () => {
    expect(Object.keys(nodeApi).filter((k) => !(k in api)).sort()).toEqual([...NODE_ENTRY_EXTRA].sort());
  });
});
