// The public API, listed: every runtime name exported by the package entries. A change to the API
// must show up as a diff here (add or remove the name on purpose). Types are not listed (they
// vanish at run time); tsc checks them.
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as nodeApi from '../src/node.js';

const BROWSER_ENTRY = [
    'ARCHITECTURES', 'Activation', 'Adam', 'AdamW', 'AdaptiveAvgPool2d', 'AvgPool2d', 'BINARY',
    'BasicBlock', 'BatchNorm2d', 'ByteImageDataset', 'CHECKPOINT_FILE', 'CHECKPOINT_FORMAT',
    'CIFAR10_CLASSES', 'CIFAR10_MEAN', 'CIFAR10_PRESETS', 'CIFAR10_STD', 'ConcatDataset', 'Conv2d',
    'DTYPE_BYTES', 'DataLoader', 'DeviceLostError', 'Dropout', 'Embedding', 'EngineError',
    'ExponentialMovingAverage', 'FASHION_MNIST_CLASSES', 'FUSED_MIN_SCORES', 'Flatten', 'GELU', 'Generator', 'GroupNorm', 'GpuContext', 'Identity',
    'JPEG_WASM_PATH', 'LayerNorm', 'Linear', 'MAX_IMAGE_PIXELS', 'METHODS', 'METHOD_NAMES', 'MLP', 'MNIST_MEAN',
    'MNIST_PRESETS', 'MNIST_STD', 'MaxPool2d', 'Module', 'NO_ADAPTER_HELP', 'OPTIONAL_FEATURES',
    'Optimizer', 'PRESETS', 'ProgressBar', 'REQUESTED_LIMITS', 'ReLU', 'ResNet', 'SGD', 'SVC', 'Sequential',
    'Subset', 'TINYIMAGENET_PRESETS', 'TORCHVISION_IMG_EXTENSIONS', 'Tensor', 'UNARY', 'abs', 'accuracy',
    'adaptiveAscent', 'adaptiveAvgPool2d', 'adaptiveWeights', 'add', 'addScalar', 'arange', 'architecture', 'attention', 'attentionComposed',
    'argmax', 'argmin', 'ascentLoss', 'assertFinite', 'assertSameSplit', 'avgGap', 'avgPool2d', 'backward',
    'barChart', 'batchNorm2d', 'batchNorm2dRelu', 'bernoulli', 'bf16ToNumber', 'broadcastShapes',
    'browserImageDecoder', 'byCodePoint', 'checkAgainstIndex', 'checkAttention', 'checkMethodConfig', 'checkpointState',
    'cifar10EvalTransform', 'cifar10FromBatches', 'cifar10TrainTransform', 'clamp', 'classForgetSplit',
    'classificationExperiment', 'classificationProblem', 'clipGradNorm', 'compileJpegWasm', 'compose',
    'computeMetrics', 'concat', 'constantLr', 'conv2d', 'conv2dFused', 'copyTensor', 'cos', 'cosineLr',
    'createJpegDecoder', 'crossEntropy', 'decayFactor', 'decodeLabelled', 'defaultNoDecay', 'demoConfig',
    'detach', 'div', 'downsampleDataset', 'drawRandomLabels', 'dropPath', 'dropout', 'eq', 'evaluate', 'evenSubset',
    'exp', 'f16ToNumber', 'firstNonFinite', 'fisherRatioMask', 'fitLogReg', 'float32ToF16', 'forgetSplitOf',
    'formatDuration', 'full', 'gapToRt', 'gapsToReference', 'ge', 'gelu', 'geluTanh', 'globalAvgPool2d', 'groupNorm',
    'gt', 'gunzip', 'imageFolderFromArchive', 'imageFolderFromFiles', 'imageFolderIndex', 'imageFormat',
    'indexFileSplit', 'indexSelect', 'indexTensor', 'jpegInfo', 'jsDivergence', 'klDivFromLogits',
    'klDivergence', 'labelsTensor', 'layerNorm', 'le', 'linePlot', 'linear', 'linearLr', 'loadCheckpoint',
    'loadIdxImages', 'loadIdxLabels', 'loadIntoTensors', 'loadOptimizerState', 'log', 'logRegPredict',
    'logSoftmax', 'logSumExp', 'lt', 'makeSplit', 'maskDensity', 'maskGradients', 'matmul', 'max',
    'maxPool2d', 'maximum', 'mean', 'meanLoss', 'memoryCheckpointIO', 'memoryStore', 'mergeSafetensors',
    'methodLabel', 'miaConfidenceSvc', 'miaEntropyLogReg', 'min', 'minimum', 'mnistFromIdx',
    'mnistTransform', 'mseLoss', 'mul', 'mulScalar', 'narrow', 'ne', 'neg', 'normalize', 'numberToF16',
    'numel', 'oneHot', 'ones', 'onesLike', 'optimizerStateToRecord', 'outputsOf', 'pad', 'paramGroups',
    'parseCifar10Batch', 'parseIdx', 'parseSafetensors', 'parseSafetensorsIndex', 'permute', 'pngInfo',
    'pow', 'powScalar', 'predictionEntropy', 'rand', 'randn', 'randomCrop', 'randomForgetSplit',
    'randomHorizontalFlip', 'readTar', 'reciprocal', 'record', 'relu', 'requireGrad', 'reshape', 'resnet18',
    'resolveConfig', 'resolveMethod', 'roll', 'rsqrt', 'runTaskExperiment', 'runUnlearning', 'salunMask',
    'sameShape', 'saveCheckpoint', 'scatterAdd', 'serializeSafetensors', 'shapeStr', 'sigmoid', 'silu',
    'sin', 'slice', 'softmax', 'splitFromJson', 'splitHash', 'splitToJson', 'sqrt', 'square', 'std',
    'stridesOf', 'sub', 'sum', 'sumTo', 'tanh', 'tensor', 'tensorsToRecord', 'threefry2x32',
    'tinyImageNetFromFiles', 'tinyImageNetRoot', 'toCsv', 'toFloat32', 'toGpuBatch', 'toHtml', 'toInt32',
    'toJson', 'toMarkdown', 'train', 'trainClassifier', 'transpose', 'trueLabelConfidence', 'unary',
    'variance', 'view', 'warmup', 'where', 'windowPartition', 'windowReverse', 'withCliMethods', 'zeros', 'zerosLike',
    // diffusion models (src/models/diffusion) and their kernels
    'ConditionalUNet', 'DiT', 'SwinTransformer', 'VisionTransformer', 'InceptionV3', 'BasicConv2d', 'swinT', 'transformerNoDecay', 'vitB16', 'checkClasses', 'checkTimesteps', 'classesTensor', 'timestepsTensor', 'upsampleNearest2d',
    // mixed precision and f16 tensors
    'GradScaler', 'autocast', 'cast', 'hasF16', 'linearMixed', 'matmulMixed', 'readF32', 'tensorF16',
    // generation (diffusion)
    'DIFFUSION_PRESETS', 'DiffusionSchedule', 'FID_LABEL', 'MlpDenoiser', 'NoisedLoader',
    'checkDiffusionMethod', 'classifierOutputs', 'ddimCoefficients', 'diffusionProblem', 'epsError',
    'ewcPenalty', 'filterClasses', 'forgetAccuracy', 'frechetDistance', 'gaussian', 'gaussianStats',
    'generationCsv', 'generationHtml', 'generationJson', 'generationMarkdown', 'gridRaster', 'guidedEps',
    'inDomainFid', 'noiseLossPerSample', 'noisedBatch', 'qSample', 'runDiffusionUnlearning', 'sampleImages',
    'sinusoidalTable', 'sqrtPsd', 'symmetricEigen', 'timestepSequence', 'trainDiffusion', 'trainEvalClassifier',
    'uploadNoised', 'generationSweep', 'modelFeatures', 'prepareImages', 'resizeBilinear', 'checkFeaturePrep', 'IMAGENET_MEAN', 'IMAGENET_STD',
];

/** Names the Node entry adds to the browser entry. */
const NODE_ENTRY_EXTRA = [
    'CIFAR10_BATCH_FILES', 'cachedByteDataset', 'createNodeContext', 'decodePng', 'defaultMnistDir',
    'gunzipNode', 'jpegWasmFile', 'listFolder', 'loadByteDataset', 'loadCifar10Binary', 'loadData',
    'loadImageFolder', 'loadImageFolderSplits', 'loadMnist', 'loadSafetensorsFile', 'loadSafetensorsShards',
    'loadTinyImageNet', 'nodeCheckpointIO', 'nodeCheckpointReader', 'nodeImageDecoder', 'nodeJpegDecoder',
    'nodeStore', 'readArchive', 'readMaybeGzip', 'runExperiment', 'saveByteDataset', 'saveSafetensorsFile',
    'writeFileAtomic', 'writeReport', 'gridPng', 'writeGenerationReport', 'writeGridPng',
];

describe('public API', () => {
  it('src/index.ts exports exactly the listed names', () => {
    expect(Object.keys(api).sort()).toEqual([...BROWSER_ENTRY].sort());
  });
  it('src/node.ts adds exactly the listed Node-only names', () => {
    expect(Object.keys(nodeApi).filter((k) => !(k in api)).sort()).toEqual([...NODE_ENTRY_EXTRA].sort());
  });
});
