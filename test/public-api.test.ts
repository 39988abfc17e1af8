// The public API, listed: every runtime name exported by the package entries. A change to the API
// must show up as a diff here (add or remove the name on purpose). Types are not listed (they
// vanish at run time); tsc checks them.
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as nodeApi from '../src/node.js';

const BROWSER_ENTRY = [
  'ARCHITECTURES', 'architecture',
  'createJpegDecoder', 'compileJpegWasm', 'JPEG_WASM_PATH', 'jpegInfo', 'pngInfo', 'imageFormat', 'MAX_IMAGE_PIXELS', 'byCodePoint', 'decodeLabelled', 'TORCHVISION_IMG_EXTENSIONS', 'tinyImageNetFromFiles', 'tinyImageNetRoot', 'mergeSafetensors', 'parseSafetensorsIndex', 'checkAgainstIndex', 'assertFinite', 'firstNonFinite',
    'Activation', 'Adam', 'AdamW', 'AdaptiveAvgPool2d', 'AvgPool2d', 'BINARY', 'BasicBlock', 'BatchNorm2d',
    'ByteImageDataset', 'CHECKPOINT_FILE', 'CHECKPOINT_FORMAT', 'CIFAR10_CLASSES', 'CIFAR10_MEAN', 'CIFAR10_PRESETS',
    'CIFAR10_STD', 'ConcatDataset', 'Conv2d', 'DTYPE_BYTES', 'DataLoader', 'Dropout', 'Embedding',
    'EngineError', 'ExponentialMovingAverage', 'FASHION_MNIST_CLASSES', 'Flatten', 'Generator', 'GpuContext', 'Identity', 'Linear', 'MLP',
    'MNIST_MEAN', 'MNIST_STD', 'MaxPool2d', 'Module', 'NO_ADAPTER_HELP', 'OPTIONAL_FEATURES', 'Optimizer',
    'ProgressBar', 'REQUESTED_LIMITS', 'ReLU', 'ResNet', 'SGD', 'SVC', 'Sequential', 'Subset', 'Tensor',
    'UNARY', 'abs', 'accuracy', 'adaptiveAscent', 'adaptiveAvgPool2d', 'adaptiveWeights', 'add', 'addScalar',
    'arange', 'argmax', 'argmin', 'assertSameSplit', 'avgGap', 'avgPool2d', 'backward', 'badTeacherKl',
    'barChart', 'batchNorm2d', 'batchNorm2dRelu', 'bernoulli', 'bf16ToNumber', 'broadcastShapes',
    'browserImageDecoder', 'checkpointState', 'cifar10EvalTransform', 'cifar10FromBatches', 'cifar10TrainTransform', 'clamp',
    'classForgetSplit', 'clipGradNorm', 'compose', 'computeMetrics', 'concat', 'constantLr', 'conv2d',
    'copyTensor', 'cos', 'cosineLr', 'crossEntropy', 'decayFactor', 'defaultNoDecay', 'detach', 'div', 'drawRandomLabels',
    'dropout', 'eq', 'evaluate', 'exp', 'f16ToNumber', 'fisherRatioMask', 'fitLogReg', 'float32ToF16',
    'formatDuration', 'full', 'gapsToReference', 'ge', 'gelu', 'globalAvgPool2d', 'gradientAscent', 'groupNorm', 'gt',
    'gunzip', 'imageFolderFromArchive', 'imageFolderFromFiles', 'imageFolderIndex', 'indexFileSplit',
    'indexSelect', 'indexTensor', 'jsDivergence', 'klDivFromLogits', 'klDivergence', 'labelsTensor', 'layerNorm', 'le',
    'linePlot', 'linear', 'linearLr', 'loadCheckpoint', 'loadIdxImages', 'loadIdxLabels', 'loadIntoTensors',
    'loadOptimizerState', 'log', 'logRegPredict', 'logSoftmax', 'logSumExp', 'lt', 'makeSplit', 'maskDensity',
    'maskGradients', 'matmul', 'max', 'maxPool2d', 'maximum', 'mean', 'meanCrossEntropy', 'memoryCheckpointIO', 'miaConfidenceSvc',
    'miaEntropyLogReg', 'min', 'minimum', 'mnistFromIdx', 'mnistTransform', 'mseLoss', 'mul', 'mulScalar',
    'narrow', 'ne', 'neg', 'normalize', 'numberToF16', 'numel', 'oneHot', 'ones',
    'onesLike', 'optimizerStateToRecord', 'pad', 'paramGroups', 'parseCifar10Batch', 'parseIdx', 'parseSafetensors',
    'permute', 'pow', 'powScalar', 'predict', 'predictionEntropy', 'rand', 'randn', 'randomCrop',
    'randomForgetSplit', 'randomHorizontalFlip', 'randomLabelCrossEntropy', 'readTar', 'reciprocal', 'record',
    'relu', 'requireGrad', 'reshape', 'resnet18', 'rsqrt', 'runUnlearning', 'salunMask', 'sameShape',
    'saveCheckpoint', 'scatterAdd', 'scrubKd', 'scrubMax', 'scrubMin', 'serializeSafetensors', 'shapeStr',
    'sigmoid', 'silu', 'sin', 'slice', 'softmax', 'splitFromJson', 'splitHash', 'splitToJson', 'sqrt',
    'square', 'std', 'stridesOf', 'sub', 'sum', 'sumTo', 'tanh', 'tensor', 'tensorsToRecord', 'threefry2x32',
    'toCsv', 'toFloat32', 'toGpuBatch', 'toHtml', 'toInt32', 'toJson', 'toMarkdown', 'train', 'trainClassifier',
    'transpose', 'trueLabelConfidence', 'unary', 'uploadBatch', 'variance', 'view', 'warmup', 'where',
    'zeros', 'zerosLike',
];

/** Names the Node entry adds to the browser entry. */
const NODE_ENTRY_EXTRA = [
    'CIFAR10_BATCH_FILES', 'cachedByteDataset', 'createNodeContext', 'decodePng', 'defaultMnistDir',
    'downsampleDataset', 'gap', 'gunzipNode', 'jpegWasmFile', 'listFolder', 'loadByteDataset', 'loadCifar10Binary', 'loadData',
    'loadImageFolder', 'loadImageFolderSplits', 'loadMnist', 'loadSafetensorsFile', 'loadSafetensorsShards', 'loadSplit',
    'loadTinyImageNet', 'nodeImageDecoder', 'nodeJpegDecoder',
    'methodLabel', 'nodeCheckpointIO', 'readArchive', 'readMaybeGzip', 'runExperiment', 'saveByteDataset', 'saveSafetensorsFile',
    'saveSplit', 'writeFileAtomic', 'writeReport',
];

describe('public API', () => {
  it('src/index.ts exports exactly the listed names', () => {
    expect(Object.keys(api).sort()).toEqual([...BROWSER_ENTRY].sort());
  });
  it('src/node.ts adds exactly the listed Node-only names', () => {
    expect(Object.keys(nodeApi).filter((k) => !(k in api)).sort()).toEqual([...NODE_ENTRY_EXTRA].sort());
  });
});
