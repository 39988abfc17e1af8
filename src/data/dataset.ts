import { EngineError } from '../util/errors.js';
// Image classification data sets held on the CPU: the Dataset interface, an in-memory byte-image
// data set (all images in one Uint8Array, CHW per image), Subset and ConcatDataset.
// It does not batch, shuffle or augment (see loader.ts and transforms.ts), and it touches no GPU.
//
// Dimension letters: N images, C channels, H height, W width.


/** [C, H, W] of one image. */
export type ImageShape = [number, number, number];

/** One sample: pixels in CHW order, either bytes 0..255 or floats in [0, 1]; the class index. */
export interface Sample {
  image: Float32Array | Uint8Array;
  label: number;
}

/** A finite, indexable set of labelled images that all share one shape. */
export interface Dataset {
  readonly length: number;
  readonly numClasses: number;
  /** [C, H, W] of every image. */
  readonly shape: ImageShape;
  /** Class names by label, when known (image folders, CIFAR-10). */
  readonly classes?: readonly string[];
  /** Sample i, 0 <= i < length. The image may be a view into shared storage: do not modify it. */
  get(i: number): Sample;
}

/** Throws an EngineError naming `op`, the bad index and the valid range unless 0 <= i < n. */
export function checkIndex(op: string, i: number, n: number, what = 'index'): void {
  if (!Number.isInteger(i) || i < 0 || i >= n)
    throw new EngineError(op, `${what} ${i} is out of range [0, ${n})`);
}

const imageSize = (s: ImageShape) => s[0] * s[1] * s[2];

/**
 * All images stored as bytes in one Uint8Array [N, C, H, W] with labels in an Int32Array [N].
 * get(i) returns a view (no copy). This is the storage for MNIST, CIFAR-10 and decoded image folders.
 */
export class ByteImageDataset implements Dataset {
  readonly length: number;
  constructor(
    /** [N * C * H * W] pixel bytes, image after image, each in CHW order. */
    readonly images: Uint8Array,
    /** [N] class indices in [0, numClasses). */
    readonly labels: Int32Array,
    readonly shape: ImageShape,
    readonly numClasses: number,
    readonly classes?: readonly string[],
  ) {
    const op = 'ByteImageDataset';
    if (shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d <= 0))
      throw new EngineError(op, `shape [${shape.join(', ')}] must be three positive integers [C, H, W]`);
    if (images.length !== labels.length * imageSize(shape))
      throw new EngineError(
        op,
        `${images.length} pixel bytes do not hold ${labels.length} images of shape [${shape.join(', ')}] ` +
          `(expected ${labels.length * imageSize(shape)})`,
      );
    if (classes && classes.length !== numClasses)
      throw new EngineError(op, `${classes.length} class names for ${numClasses} classes`);
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i]!;
      if (!(y >= 0 && y < numClasses)) throw new EngineError(op, `label ${y} of sample ${i} is outside [0, ${numClasses})`);
    }
    this.length = labels.length;
  }
  get(i: number): Sample {
    checkIndex('ByteImageDataset.get', i, this.length);
    const n = imageSize(this.shape);
    return { image: this.images.subarray(i * n, (i + 1) * n), label: this.labels[i]! };
  }
}

/** The samples of `dataset` at `indices`, in that order (repeats allowed). */
export class Subset implements Dataset {
  readonly indices: Int32Array;
  constructor(
    readonly dataset: Dataset,
    indices: ArrayLike<number>,
  ) {
    this.indices = Int32Array.from(indices as ArrayLike<number>);
    for (let k = 0; k < indices.length; k++)
      checkIndex('Subset', indices[k]!, dataset.length, `indices[${k}] =`);
  }
  get length() {
    return this.indices.length;
  }
  get numClasses() {
    return this.dataset.numClasses;
  }
  get shape() {
    return this.dataset.shape;
  }
  get classes() {
    return this.dataset.classes;
  }
  get(i: number): Sample {
    checkIndex('Subset.get', i, this.indices.length);
    return this.dataset.get(this.indices[i]!);
  }
}

/** Several data sets of one image shape, one after the other. */
export class ConcatDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly shape: ImageShape;
  private readonly starts: number[] = [];
  constructor(readonly datasets: readonly Dataset[]) {
    if (datasets.length === 0) throw new EngineError('ConcatDataset', 'needs at least one data set');
    this.shape = datasets[0]!.shape;
    let n = 0;
    datasets.forEach((d, k) => {
      if (d.shape.join() !== this.shape.join())
        throw new EngineError(
          'ConcatDataset',
          `data set ${k} has image shape [${d.shape.join(', ')}], data set 0 has [${this.shape.join(', ')}]`,
        );
      this.starts.push(n);
      n += d.length;
    });
    this.length = n;
    this.numClasses = Math.max(...datasets.map((d) => d.numClasses));
  }
  get(i: number): Sample {
    checkIndex('ConcatDataset.get', i, this.length);
    let k = this.starts.length - 1;
    while (this.starts[k]! > i) k--;
    return this.datasets[k]!.get(i - this.starts[k]!);
  }
}
