// Public entry point (browser-safe: no Node-only imports). Node users also import createNodeContext
// from 'unlearn-gpu/node' (or the package root, which resolves to src/node.ts under Node).
// Curated: every name here is public API, listed by test/public-api.test.ts, so a change to it is a
// visible diff. Kernel internals (shaders, raw launchers, tilings) stay in their own files.

// device, errors, randomness
export { GpuContext, DeviceLostError, REQUESTED_LIMITS, OPTIONAL_FEATURES, NO_ADAPTER_HELP } from './gpu/context.js';
export type { DispatchSpec, ContextStats, LimitName } from './gpu/context.js';
export { EngineError } from './util/errors.js';
export { Generator, threefry2x32 } from './util/rng.js';

// tensors, autograd and every op
export { Tensor, DTYPE_BYTES } from './autograd/tensor.js';
export type { DType, GradNode } from './autograd/tensor.js';
export { record } from './autograd/graph.js';
export { numel, shapeStr, sameShape, stridesOf, broadcastShapes } from './autograd/shape.js';
export * from './ops/index.js';

// modules, layers, optimizers, training
export { Module, copyTensor } from './nn/module.js';
export type { AnyModule, CpuTensor, StateSource, LoadResult } from './nn/module.js';
export * from './nn/layers/index.js';
export { Optimizer, SGD, Adam, AdamW, clipGradNorm, maskGradients, paramGroups, defaultNoDecay, optimizerStateToRecord, loadOptimizerState } from './nn/optim.js';
export type { OptimizerStateDict, SGDOptions, AdamOptions, ParamGroup, ResolvedParamGroup } from './nn/optim.js';
export { constantLr, cosineLr, linearLr, warmup } from './nn/schedule.js';
export type { LrSchedule } from './nn/schedule.js';
export { train } from './nn/loop.js';
export { autocast, GradScaler } from './nn/amp.js';
export type { GradScalerOptions } from './nn/amp.js';
export type { EpochLoader, StepInfo, StepOutput, StepFn, TrainHook, LoopCheckpointOptions, EpochRecord, LoopProgress, TrainOptions, LoopResult } from './nn/loop.js';
export { trainClassifier, evaluate, CHECKPOINT_FILE } from './nn/train.js';
export type { EpochMetrics, TrainProgress, TrainClassifierOptions, TrainResult, EvaluateResult, EvaluateOptions, EvaluateOutputs } from './nn/train.js';
export { saveCheckpoint, loadCheckpoint, checkpointState, memoryCheckpointIO, CHECKPOINT_FORMAT } from './nn/checkpoint.js';
export type { CheckpointIO, CheckpointParts } from './nn/checkpoint.js';
export { ExponentialMovingAverage } from './nn/ema.js';
export type { EmaOptions } from './nn/ema.js';
export { ProgressBar, formatDuration } from './nn/progress.js';
export type { ProgressStream, ProgressOptions, ProgressStats } from './nn/progress.js';

// models
export { ResNet, BasicBlock, resnet18 } from './models/resnet.js';
export type { ResNetOptions, BasicBlockConfig } from './models/resnet.js';
export { MLP } from './models/mlp.js';
export { SwinTransformer, swinT } from './models/swin.js';
export type { SwinOptions } from './models/swin.js';
export { VisionTransformer, vitB16 } from './models/vit.js';
export type { ViTOptions } from './models/vit.js';
export { InceptionV3, BasicConv2d } from './models/inception.js';
export type { InceptionV3Options, BasicConv2dConfig } from './models/inception.js';
export { transformerNoDecay } from './models/transformer-parts.js';
export { ConditionalUNet } from './models/diffusion/unet.js';
export type { UNetOptions } from './models/diffusion/unet.js';
export { DiT } from './models/diffusion/dit.js';
export type { DiTOptions } from './models/diffusion/dit.js';
export { checkTimesteps, checkClasses, timestepsTensor, classesTensor } from './models/diffusion/common.js';
export type { MlpOptions } from './models/mlp.js';
export { ARCHITECTURES, architecture } from './models/registry.js';
export type { Architecture, ArchInput } from './models/registry.js';

// files
export { parseSafetensors, serializeSafetensors, toFloat32, toInt32, f16ToNumber, bf16ToNumber, numberToF16, float32ToF16 } from './io/safetensors.js';
export type { SafetensorsDType, SafetensorsTensor, SafetensorsFile } from './io/safetensors.js';
export { mergeSafetensors, parseSafetensorsIndex, checkAgainstIndex, assertFinite, firstNonFinite } from './io/safetensors.js';
export type { SafetensorsIndex, ParseOptions } from './io/safetensors.js';
export { tensorsToRecord, loadIntoTensors } from './io/state.js';
export type { LoadSource, LoadReport, LoadOptions, LoadPlan } from './io/state.js';

// data
export { ByteImageDataset, Subset, ConcatDataset } from './data/dataset.js';
export type { Dataset, Sample, ImageShape } from './data/dataset.js';
export { DataLoader } from './data/loader.js';
export type { Batch, DataLoaderOptions } from './data/loader.js';
export {
  compose,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  CIFAR10_MEAN,
  CIFAR10_STD,
  MNIST_MEAN,
  MNIST_STD,
  cifar10TrainTransform,
  cifar10EvalTransform,
  mnistTransform,
} from './data/transforms.js';
export type { Transform } from './data/transforms.js';
export { parseIdx, loadIdxImages, loadIdxLabels, mnistFromIdx, gunzip, FASHION_MNIST_CLASSES } from './data/idx.js';
export { CIFAR10_CLASSES, parseCifar10Batch, cifar10FromBatches } from './data/cifar.js';
export { readTar } from './data/tar.js';
export type { TarEntry } from './data/tar.js';
export { imageFolderIndex, imageFolderFromFiles, imageFolderFromArchive, browserImageDecoder } from './data/image-folder.js';
export type { DecodedImage, ImageDecoder, ImageFolderOptions, FolderFile } from './data/image-folder.js';
export { toGpuBatch } from './data/gpu.js';
export { createJpegDecoder, compileJpegWasm, JPEG_WASM_PATH } from './data/jpeg.js';
export type { JpegDecoder, WasmSource } from './data/jpeg.js';
export { jpegInfo, pngInfo, imageFormat, MAX_IMAGE_PIXELS } from './data/image-decode.js';
export { byCodePoint, decodeLabelled, TORCHVISION_IMG_EXTENSIONS } from './data/image-folder.js';
export { tinyImageNetFromFiles, tinyImageNetRoot } from './data/tiny-imagenet.js';
export type { TinyImageNet, TinyImageNetOptions } from './data/tiny-imagenet.js';

// unlearning: the task-generic core (masks, terms, update rules, methods, experiment runner)
export { runUnlearning, resolveMethod, checkMethodConfig, methodLabel, METHODS, METHOD_NAMES } from './unlearn/core/methods.js';
export type { MethodConfig, MethodName, SfrOnConfig, SfrOnOptions, EpochMethodOptions, Presets, UnlearnSetup, UnlearnResult } from './unlearn/core/methods.js';
export { decayFactor } from './unlearn/core/update.js';
export type { Decay, OptimizerSpec } from './unlearn/core/update.js';
export { fisherRatioMask, salunMask, maskDensity } from './unlearn/core/masks.js';
export type { SaliencyMask } from './unlearn/core/masks.js';
export { meanLoss, ascentLoss, adaptiveAscent, adaptiveWeights } from './unlearn/core/terms.js';
export type { BatchSource, Term, TermContext, TaskTerms, UnlearnProblem } from './unlearn/core/task.js';
export { runTaskExperiment, memoryStore } from './unlearn/core/experiment.js';
export type { ExperimentStore, ExperimentTask, CheckpointReader, CheckpointSource, ResultRow, RunnerConfig, RunOptions, TrainContext, ExperimentOutcome } from './unlearn/core/experiment.js';
export { randomForgetSplit, indexFileSplit, makeSplit, splitHash, assertSameSplit, splitToJson, splitFromJson } from './unlearn/core/split.js';
export type { ForgetSplit, ForgetSplitKind } from './unlearn/core/split.js';
// unlearning: the classification task
export { classificationProblem, drawRandomLabels } from './unlearn/classification/task.js';
export type { ClassBatch, ClassificationProblemOptions } from './unlearn/classification/task.js';
export { classificationExperiment } from './unlearn/classification/experiment.js';
export type { MethodRow, ClassificationExperiment } from './unlearn/classification/experiment.js';
export { outputsOf, computeMetrics, gapToRt } from './unlearn/classification/evaluate.js';
export type { Outputs, MethodMetrics, SplitOutputs } from './unlearn/classification/evaluate.js';
export {
  accuracy,
  predictionEntropy,
  trueLabelConfidence,
  miaEntropyLogReg,
  miaConfidenceSvc,
  klDivergence,
  jsDivergence,
  avgGap,
} from './unlearn/classification/metrics.js';
export { fitLogReg, logRegPredict } from './unlearn/classification/logreg.js';
export { SVC } from './unlearn/classification/svc.js';
export { classForgetSplit, forgetSplitOf } from './unlearn/classification/split.js';
export type { ForgetSpec } from './unlearn/classification/split.js';
export { CIFAR10_PRESETS, TINYIMAGENET_PRESETS, MNIST_PRESETS, PRESETS } from './unlearn/classification/presets.js';
export type { PresetName } from './unlearn/classification/presets.js';
export { demoConfig, resolveConfig, withCliMethods } from './unlearn/classification/config.js';
export type { ExperimentConfig, TrainRecipe, DataSpec } from './unlearn/classification/config.js';
export { downsampleDataset, evenSubset } from './unlearn/classification/data.js';
export type { ClassificationData } from './unlearn/classification/data.js';
export { toMarkdown, toCsv, toJson, toHtml, gapsToReference, linePlot, barChart } from './unlearn/classification/report.js';
export type { MethodResult, LambdaSweep, ReportOptions } from './unlearn/classification/report.js';
// generation: DDPM process, samplers, training; class forgetting in diffusion models
export { DiffusionSchedule, qSample, noisedBatch, uploadNoised, epsError, noiseLossPerSample, guidedEps, gaussian } from './models/diffusion/process.js';
export type { EpsModel, NoisedBatch, NoisedTensors, NoiseOptions, ScheduleConfig } from './models/diffusion/process.js';
export { sampleImages, timestepSequence, ddimCoefficients } from './models/diffusion/samplers.js';
export type { SampleOptions } from './models/diffusion/samplers.js';
export { trainDiffusion, NoisedLoader, filterClasses } from './models/diffusion/train.js';
export type { ImageSet, DiffusionTrainOptions, DiffusionTrainResult } from './models/diffusion/train.js';
export { MlpDenoiser, sinusoidalTable } from './models/diffusion/mlp-denoiser.js';
export type { MlpDenoiserConfig } from './models/diffusion/mlp-denoiser.js';
export { diffusionProblem } from './unlearn/diffusion/task.js';
export type { DiffusionProblem, DiffusionProblemOptions } from './unlearn/diffusion/task.js';
export { runDiffusionUnlearning, checkDiffusionMethod, DIFFUSION_PRESETS, ewcPenalty } from './unlearn/diffusion/methods.js';
export type { DiffusionMethodConfig, DiffusionSfrOnConfig, DiffusionSalUnConfig, DiffusionSaConfig, DiffusionUnlearnResult } from './unlearn/diffusion/methods.js';
export { frechetDistance, symmetricEigen, sqrtPsd, gaussianStats, classifierOutputs, forgetAccuracy, inDomainFid, FID_LABEL } from './unlearn/diffusion/metrics.js';
export { trainEvalClassifier } from './unlearn/diffusion/classifier.js';
export { gridRaster, generationMarkdown, generationCsv, generationJson, generationHtml, generationSweep } from './unlearn/diffusion/report.js';
export type { GenerationRow, GenerationReport, GenerationSweep } from './unlearn/diffusion/report.js';
export { modelFeatures, prepareImages, resizeBilinear, checkFeaturePrep, IMAGENET_MEAN, IMAGENET_STD } from './unlearn/diffusion/feature-model.js';
export type { FeatureModel, FeaturePrep } from './unlearn/diffusion/feature-model.js';
