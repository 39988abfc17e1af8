// Public entry point (browser-safe: no Node-only imports). Node users also import createNodeContext
// from 'unlearn-gpu/node' (or the package root, which resolves to src/node.ts under Node).

export { GpuContext, EngineError, REQUESTED_LIMITS, OPTIONAL_FEATURES } from './gpu/context.js';
export type { DispatchSpec, ContextStats } from './gpu/context.js';
export { Tensor, DTYPE_BYTES } from './autograd/tensor.js';
export type { DType, GradNode } from './autograd/tensor.js';
export { backward, record, view, detach, requireGrad } from './autograd/graph.js';
export * from './autograd/shape.js';
export * from './wgsl/fill.js';
export * from './wgsl/elementwise.js';
export * from './wgsl/reduce.js';
export * from './wgsl/optim.js';
export * from './nn/optim.js';
export * from './nn/schedule.js';
export * from './wgsl/matmul.js';
export * from './wgsl/softmax.js';
export * from './wgsl/cross_entropy.js';
export * from './wgsl/conv2d.js';
export * from './wgsl/batchnorm.js';
export * from './wgsl/pool2d.js';
export * from './data/dataset.js';
export * from './data/idx.js';
export * from './data/cifar.js';
export * from './data/tar.js';
export * from './data/image-folder.js';
export * from './data/loader.js';
export * from './data/transforms.js';
export * from './data/gpu.js';
export * from './io/safetensors.js';
export * from './io/state.js';
export * from './wgsl/gather.js';
export * from './wgsl/scatter_add.js';
export * from './wgsl/permute.js';
export * from './wgsl/slice.js';
export * from './wgsl/pad.js';
export * from './wgsl/concat.js';
export * from './wgsl/dropout.js';
export * from './ops/composite.js';
