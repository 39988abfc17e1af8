// The public op surface: every tensor operation a user (or src/unlearn, src/models) calls, with its
// autograd rule, re-exported from the kernel files and the composites. Kernel internals (shaders,
// raw launchers, tilings) are not here; they stay importable from their own files for tests.

export { reshape, view, detach, requireGrad } from '../autograd/graph.js';
export { backward } from '../autograd/backward.js';
export { tensor, full, zeros, ones, zerosLike, onesLike, arange, rand, randn, bernoulli } from '../wgsl/fill.js';
export {
  UNARY,
  BINARY,
  unary,
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  reciprocal,
  abs,
  square,
  relu,
  sigmoid,
  tanh,
  silu,
  gelu,
  geluTanh,
  sin,
  cos,
  addScalar,
  mulScalar,
  powScalar,
  clamp,
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  where,
} from '../wgsl/elementwise.js';
export type { UnaryName, BinaryName } from '../wgsl/elementwise.js';
export { sum, mean, max, min, argmax, argmin, sumTo } from '../wgsl/reduce.js';
// matmul/linear route to the mixed-precision kernels inside autocast (src/nn/amp.ts), else f32
export { matmul, linear, matmulMixed, linearMixed } from '../wgsl/matmul_f16.js';
export { cast, tensorF16, readF32, hasF16 } from '../wgsl/cast.js';
export type { MatmulOptions } from '../wgsl/matmul.js';
export { softmax, logSoftmax } from '../wgsl/softmax.js';
export { crossEntropy, labelsTensor } from '../wgsl/cross_entropy.js';
export { conv2d, conv2dFused } from '../wgsl/conv2d.js';
export type { Conv2dOptions, ConvFused } from '../wgsl/conv2d.js';
export { batchNorm2d, batchNorm2dRelu, layerNorm, groupNorm } from '../wgsl/norm.js';
export type { BatchNorm2dOptions, NormOptions, NormActivation } from '../wgsl/norm.js';
export { maxPool2d, avgPool2d, globalAvgPool2d, adaptiveAvgPool2d } from '../wgsl/pool2d.js';
export { indexTensor, indexSelect, scatterAdd } from '../wgsl/gather.js';
export { permute, transpose } from '../wgsl/permute.js';
export { slice, narrow, pad } from '../wgsl/slice.js';
export { concat } from '../wgsl/concat.js';
export { dropout } from '../wgsl/dropout.js';
export { upsampleNearest2d } from '../wgsl/upsample.js';
export { variance, std, logSumExp, mseLoss, klDivFromLogits, oneHot } from './composite.js';
export { roll, windowPartition, windowReverse } from '../wgsl/window.js';
export { dropPath } from '../wgsl/droppath.js';
export { attention, attentionComposed, checkAttention, FUSED_MIN_SCORES } from './attention.js';
export type { AttentionOptions, AttentionShape } from './attention.js';
