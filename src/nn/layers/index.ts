// Every layer, by kind (one file each: linear, conv, norm, activation, pooling, embedding, container).
export * from './linear.js';
export * from './conv.js';
export * from './norm.js';
export * from './activation.js';
export * from './pooling.js';
export * from './embedding.js';
export * from './container.js';
