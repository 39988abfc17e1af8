// Parsers for the IDX format of MNIST and Fashion-MNIST (browser-safe: bytes in, arrays out).
// Gzipped input is recognised by its magic bytes; decompress it first with gunzip() (async, via
// DecompressionStream) or, in Node, with the *-node.ts readers. No file access here.
//
// Dimension letters: N images, H height, W width.

import { ByteImageDataset } from './dataset.js';
import { EngineError } from '../util/errors.js';

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export const isGzip = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Largest decompressed size accepted by default: what one Uint8Array can hold (4 GiB - 1). */
export const MAX_GUNZIP_BYTES = 2 ** 32 - 1;

/**
 * Decompresses gzip with the web-standard DecompressionStream (browsers, Node >= 18), stopping with
 * an error as soon as the output passes `maxBytes` (a gzip bomb, or data too large for one array).
 */
export async function gunzip(bytes: Uint8Array, name = 'input', maxBytes = MAX_GUNZIP_BYTES): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    const reader = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip')).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw new EngineError('gunzip', `${name}: decompresses to more than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('gunzip', `${name}: corrupt or truncated gzip data (${(e as Error).message})`);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** An IDX array of unsigned bytes: dims and a view of the data. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses an uncompressed IDX file holding unsigned bytes (type code 0x08), checking the magic number,
 * the number of dimensions and that the byte count matches the header exactly.
 */
export function parseIdx(bytes: Uint8Array, name = 'input', expectedRank?: number): IdxArray {
  const op = 'parseIdx';
  if (isGzip(bytes)) throw new EngineError(op, `${name} is gzipped: decompress it first (gunzip())`);
  if (bytes.length < 4) throw new EngineError(op, `${name}: ${bytes.length} bytes is too short for an IDX header (expected at least 4)`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new EngineError(op, `${name}: bad magic number ${hex(bytes, 4)} (an IDX file starts with 00 00)`);
  if (bytes[2] !== 0x08) throw new EngineError(op, `${name}: element type 0x${bytes[2]!.toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3]!;
  if (expectedRank !== undefined && rank !== expectedRank)
    throw new EngineError(op, `${name}: has ${rank} dimensions, expected ${expectedRank}`);
  const header = 4 + 4 * rank;
  if (bytes.length < header)
    throw new EngineError(op, `${name}: truncated header: expected ${header} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = header + count;
  if (bytes.length < expected)
    throw new EngineError(op, `${name}: truncated: expected ${expected} bytes for dims [${dims.join(', ')}], got ${bytes.length}`);
  if (bytes.length > expected)
    throw new EngineError(op, `${name}: ${bytes.length - expected} unexpected trailing bytes (expected ${expected} bytes, got ${bytes.length})`);
  return { dims, data: bytes.subarray(header, expected) };
}

function hex(bytes: Uint8Array, n: number) {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Images of an idx3 file (magic 0x00000803): pixels [N * H * W] and their count and size. */
export function loadIdxImages(bytes: Uint8Array, name = 'images'): { images: Uint8Array; n: number; h: number; w: number } {
  const { dims, data } = parseIdx(bytes, name, 3);
  return { images: data, n: dims[0]!, h: dims[1]!, w: dims[2]! };
}

/** Labels of an idx1 file (magic 0x00000801) as an Int32Array [N], each checked < numClasses. */
export function loadIdxLabels(bytes: Uint8Array, name = 'labels', numClasses = 10): Int32Array {
  const { data } = parseIdx(bytes, name, 1);
  const labels = Int32Array.from(data);
  for (let i = 0; i < labels.length; i++)
    if (labels[i]! >= numClasses)
      throw new EngineError('loadIdxLabels', `${name}: label ${labels[i]} of record ${i} is outside [0, ${numClasses})`);
  return labels;
}

/** A [1, H, W] byte-image data set from an images file and a labels file (uncompressed bytes). */
export function mnistFromIdx(
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  names: { images?: string; labels?: string; classes?: readonly string[] } = {},
): ByteImageDataset {
  const img = loadIdxImages(imageBytes, names.images);
  const labels = loadIdxLabels(labelBytes, names.labels);
  if (labels.length !== img.n)
    throw new EngineError('mnistFromIdx', `${names.images ?? 'images'} holds ${img.n} images but ${names.labels ?? 'labels'} holds ${labels.length} labels`);
  return new ByteImageDataset(img.images, labels, [1, img.h, img.w], 10, names.classes);
}

/** Class names of Fashion-MNIST, by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;
