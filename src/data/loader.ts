// Mini-batches on the CPU: a seeded shuffle per epoch, an optional index subset, drop-last, a per-batch
// seeded transform, and asynchronous prefetch (the next batches are built in small event-loop chunks
// while the consumer awaits the GPU). It does not upload (see gpu.ts) and uses no worker threads.
//
// Dimension letters: B batch, C channels, H height, W width.

import { checkIndex, type Dataset, type ImageShape } from './dataset.js';
import type { Transform } from './transforms.js';
import { EngineError } from '../util/errors.js';
import { Generator, threefry2x32 } from '../util/rng.js';

/** One mini-batch. */
export interface Batch {
  /** [B, C, H, W] pixels after the transform (in [0, 1] without one). */
  x: Float32Array;
  /** [B] labels. */
  y: Int32Array;
  /** [B] indices of the samples in the loader's dataset. */
  indices: Int32Array;
  /** [B, C, H, W]. */
  shape: [number, number, number, number];
  /** Labels lie in [0, numClasses) (the dataset's class count). */
  numClasses: number;
  epoch: number;
  /** Position of the batch in its epoch. */
  batch: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** New permutation each epoch (default false: dataset / `indices` order). */
  shuffle?: boolean;
  /** Seeds the shuffle and the transform's randomness (default 0). */
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Use only these dataset indices (in this order when not shuffling). */
  indices?: ArrayLike<number>;
  /** Applied to each image (a float CHW copy in [0, 1]). */
  transform?: Transform;
  /** Batches built ahead in the background while iterating asynchronously (default 2; 0 = on demand). */
  prefetch?: number;
}

// Domain tags keep the shuffle and augmentation streams of one seed apart.
const SHUFFLE_TAG = 0x5348_5546;
const AUGMENT_TAG = 0x4155_4700;

/** A Generator seed (< 2^53) derived from (seed, tag, a, b) with Threefry. */
export function deriveSeed(seed: number, tag: number, a: number, b: number): number {
  const [x0, x1] = threefry2x32((seed >>> 0) ^ tag, Math.floor(seed / 4294967296) >>> 0, a >>> 0, b >>> 0);
  return x0 + (x1 & 0x1fffff) * 4294967296;
}

const nextTick: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : () =>
        new Promise((r) => {
          const ch = new MessageChannel();
          ch.port1.onmessage = () => r();
          ch.port2.postMessage(0);
        });

/** Samples converted between event-loop yields when building a batch in the background. */
const CHUNK = 32;

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly transform: Transform | undefined;
  /** Dataset indices an epoch draws from, before shuffling. */
  readonly baseIndices: Int32Array;
  /** [C, H, W] of the batches' images (after the transform). */
  readonly shape: ImageShape;
  /** Epoch used by the next `for await (... of loader)`. */
  nextEpoch = 0;
  private readonly src: Float32Array;

  constructor(
    readonly dataset: Dataset,
    opts: DataLoaderOptions,
  ) {
    const op = 'DataLoader';
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)
      throw new EngineError(op, `batchSize ${opts.batchSize} must be a positive integer`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    this.prefetch = opts.prefetch ?? 2;
    this.transform = opts.transform;
    if (opts.indices) {
      this.baseIndices = Int32Array.from(opts.indices as ArrayLike<number>);
      for (let k = 0; k < opts.indices.length; k++) checkIndex(op, opts.indices[k]!, dataset.length, `indices[${k}] =`);
    } else this.baseIndices = Int32Array.from({ length: dataset.length }, (_, i) => i);
    const s = dataset.shape;
    this.src = new Float32Array(s[0] * s[1] * s[2]);
    this.shape = this.transform ? this.transform.outShape([...s]) : [...s];
  }

  /** Samples per epoch (before drop-last). */
  get length(): number {
    return this.baseIndices.length;
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const n = this.baseIndices.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Dataset indices of epoch `e` in the order they are served: a fixed permutation per (seed, e). */
  epoch(e: number): Int32Array {
    if (!this.shuffle) return this.baseIndices.slice();
    const perm = new Generator(deriveSeed(this.seed, SHUFFLE_TAG, e, 0)).permutation(this.baseIndices.length);
    return perm.map((p) => this.baseIndices[p]!);
  }

  /** Builds batch k of epoch e synchronously (pass `order` = epoch(e) to avoid recomputing it). */
  batch(e: number, k: number, order = this.epoch(e)): Batch {
    const b = this.startBatch(e, k, order);
    for (let i = 0; i < b.batch.indices.length; i++) b.fill(i);
    return b.batch;
  }

  /** Synchronous iteration over epoch e, starting at batch `from` (for resuming mid-epoch). */
  *batchesSync(e: number, from = 0): IterableIterator<Batch> {
    const order = this.epoch(e);
    for (let k = from; k < this.numBatches; k++) yield this.batch(e, k, order);
  }

  /**
   * Asynchronous iteration over epoch e with up to `prefetch` batches built ahead, one after another,
   * in chunks that yield to the event loop (so they progress while the consumer awaits the GPU).
   * Starts at batch `from` (for resuming mid-epoch); batch k is the same whatever `from` is.
   */
  async *batches(e: number, from = 0): AsyncGenerator<Batch> {
    const order = this.epoch(e);
    const n = this.numBatches;
    if (this.prefetch <= 0) {
      for (let k = from; k < n; k++) yield this.batch(e, k, order);
      return;
    }
    let cancelled = false;
    let chain: Promise<unknown> = Promise.resolve();
    const queue: Promise<Batch>[] = [];
    let next = from;
    const schedule = () => {
      while (next < n && queue.length < this.prefetch) {
        const k = next++;
        const p = chain.then(() => this.buildAsync(e, k, order, () => cancelled));
        p.catch(() => {}); // surfaced when awaited below
        chain = p.catch(() => {});
        queue.push(p);
      }
    };
    try {
      schedule();
      while (queue.length) {
        const b = await queue.shift()!;
        schedule();
        yield b;
      }
    } finally {
      cancelled = true;
    }
  }

  /** `for await (const b of loader)` runs epoch `nextEpoch` and then advances it. */
  [Symbol.asyncIterator](): AsyncGenerator<Batch> {
    return this.batches(this.nextEpoch++);
  }

  private async buildAsync(e: number, k: number, order: Int32Array, cancelled: () => boolean): Promise<Batch> {
    const b = this.startBatch(e, k, order);
    for (let i = 0; i < b.batch.indices.length; i++) {
      if (i % CHUNK === 0 && i > 0) {
        await nextTick();
        if (cancelled()) break;
      }
      b.fill(i);
    }
    return b.batch;
  }

  /** Allocates batch k of epoch e and returns a function that fills its sample i. */
  private startBatch(e: number, k: number, order: Int32Array) {
    if (!Number.isInteger(k) || k < 0 || k >= this.numBatches)
      throw new EngineError('DataLoader.batch', `batch ${k} is out of range [0, ${this.numBatches})`);
    const lo = k * this.batchSize;
    const indices = order.slice(lo, Math.min(lo + this.batchSize, order.length));
    const B = indices.length;
    const [C, H, W] = this.shape;
    const chw = C * H * W;
    const batch: Batch = { x: new Float32Array(B * chw), y: new Int32Array(B), indices, shape: [B, C, H, W], numClasses: this.dataset.numClasses, epoch: e, batch: k };
    const gen = this.transform ? new Generator(deriveSeed(this.seed, AUGMENT_TAG, e, k)) : null;
    const inShape = this.dataset.shape;
    const fill = (i: number) => {
      const { image, label } = this.dataset.get(indices[i]!);
      if (image.length !== this.src.length)
        throw new EngineError('DataLoader', `sample ${indices[i]} has ${image.length} values, expected ${this.src.length}`);
      batch.y[i] = label;
      const dst = this.transform ? this.src : batch.x.subarray(i * chw, (i + 1) * chw);
      if (image instanceof Uint8Array) for (let p = 0; p < image.length; p++) dst[p] = image[p]! / 255;
      else dst.set(image);
      if (this.transform) this.transform.apply(this.src, [...inShape], batch.x.subarray(i * chw, (i + 1) * chw), gen!);
    };
    return { batch, fill };
  }
}
