// Tensor: a shape, a dtype and contiguous storage in one GPU buffer (row-major, offset 0). Views
// (reshape, detach) share the storage through a reference count. Lifetime is explicit: dispose(),
// or a ctx.scope() around the block. It holds no math: ops live in src/wgsl and src/ops.

import { type GpuContext } from '../gpu/context.js';
import { numel, shapeStr } from './shape.js';
import { EngineError } from '../util/errors.js';

/** Element types. f16: IEEE binary16, 2 bytes per element (storage padded to 4 bytes), needs 'shader-f16'; made and read by src/wgsl/cast.ts. */
export type DType = 'f32' | 'i32' | 'u32' | 'f16';
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, i32: 4, u32: 4, f16: 2 };

export type TypedArrayFor<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends 'u32'
      ? Uint32Array
      : Uint16Array;

/** Backward rule of one recorded op: gradients of the inputs given the gradient of the output. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Returns one gradient (or null where none is needed) per input, shaped like that input. */
  backward: (dOut: Tensor) => (Tensor | null)[];
}

/** Shared, reference-counted GPU storage of one or more tensors. */
export class Storage {
  refs = 1;
  constructor(
    readonly ctx: GpuContext,
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}
  release() {
    if (--this.refs === 0) this.ctx.pool.release(this.buffer);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  /** Set by the user on leaves (parameters); set by the engine on op outputs. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). Owned by the tensor: disposed with it. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when recorded for autograd. */
  node: GradNode | null = null;
  /** Optional name for error messages and checkpoints. */
  name?: string;
  private storage: Storage | null;

  /** Allocates fresh (uninitialised) storage unless `share` is given. Prefer the creation ops. */
  constructor(
    readonly ctx: GpuContext,
    shape: readonly number[],
    readonly dtype: DType = 'f32',
    share?: Tensor,
  ) {
    for (const d of shape)
      if (!Number.isInteger(d) || d < 0) throw new EngineError('tensor', `invalid shape ${shapeStr(shape)}`);
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    if (share) {
      const s = share.checkStorage('view');
      if (s.bytes < this.size * DTYPE_BYTES[dtype])
        throw new EngineError('view', `shape ${shapeStr(shape)} does not fit storage of ${share.describe()}`);
      s.refs++;
      this.storage = s;
    } else {
      const bytes = this.size * DTYPE_BYTES[dtype];
      // checked against the device's buffer limits before anything is allocated
      this.storage = new Storage(ctx, ctx.allocate(Math.max(4, bytes), this), bytes);
    }
    ctx.track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get bytes(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  private checkStorage(op: string): Storage {
    if (!this.storage) throw new EngineError(op, `${this.describe()} was used after dispose()`);
    return this.storage;
  }

  /** The GPU buffer, for kernels. Throws a clear error if the tensor was disposed. */
  buffer(op: string): GPUBuffer {
    return this.checkStorage(op).buffer;
  }

  /** Binding descriptor for DispatchSpec.buffers. */
  binding(op: string): { buffer: GPUBuffer; bytes: number } {
    return { buffer: this.checkStorage(op).buffer, bytes: this.bytes };
  }

  /** True when both tensors use the same GPU storage (views of each other). */
  sharesStorage(other: Tensor): boolean {
    return this.storage !== null && this.storage === other.storage;
  }

  /** "f32[2,3] 'fc.weight'" */
  describe(): string {
    return `${this.dtype}${shapeStr(this.shape)}${this.name ? ` '${this.name}'` : ''}`;
  }

  /** Free the storage (when no view shares it) and the gradient. Safe to call twice. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Copy the data back to the CPU (waits for the GPU). */
  async read<D extends DType = 'f32'>(): Promise<TypedArrayFor<D>> {
    const s = this.checkStorage('read');
    const raw = await this.ctx.readBuffer(s.buffer, this.bytes);
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(raw) as TypedArrayFor<D>;
      case 'i32':
        return new Int32Array(raw) as TypedArrayFor<D>;
      case 'u32':
        return new Uint32Array(raw) as TypedArrayFor<D>;
      case 'f16':
        return new Uint16Array(raw) as TypedArrayFor<D>;
    }
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new EngineError('item', `expected one element, got ${this.describe()}`);
    return (await this.read())[0]!;
  }

  toString(): string {
    return `Tensor(${this.describe()}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}
