// Node entry point: everything in the browser-safe entry plus the Dawn-backed context factory.
export * from './index.js';
export { createNodeContext } from './gpu/node.js';
export type { NodeContextOptions } from './gpu/node.js';
export * from './data/mnist-node.js';
export * from './data/cifar-node.js';
export * from './data/image-folder-node.js';
export * from './io/safetensors-node.js';
export * from './data/cache-node.js';
export { runExperiment, nodeStore, nodeCheckpointReader } from './unlearn/experiment-node.js';
export type { ExperimentResult } from './unlearn/experiment-node.js';
export { loadData } from './unlearn/classification/data-node.js';
export { writeReport } from './unlearn/classification/report-node.js';
export { writeGenerationReport, writeGridPng, gridPng } from './unlearn/diffusion/report-node.js';
export type { ReportFiles } from './unlearn/classification/report-node.js';
export { writeFileAtomic } from './io/atomic-node.js';
export { nodeCheckpointIO } from './nn/checkpoint-node.js';
