// Parser for the CIFAR-10 binary release (browser-safe: bytes in, arrays out). Each record is one
// label byte followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue: already CHW, 32 x 32).
// No file access here (see cifar-node.ts); CIFAR-100's two-label records are not handled.

import { ByteImageDataset } from './dataset.js';
import { EngineError } from '../util/errors.js';

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;

const PIXELS = 3 * 32 * 32;
const RECORD = 1 + PIXELS;

/** Splits one batch file into pixels [N * 3 * 32 * 32] and labels [N], validating size and labels. */
export function parseCifar10Batch(bytes: Uint8Array, name = 'batch'): { images: Uint8Array; labels: Int32Array } {
  const op = 'parseCifar10Batch';
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    const n = Math.max(1, Math.round(bytes.length / RECORD));
    throw new EngineError(
      op,
      `${name}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records (expected e.g. ${n * RECORD} for ${n} records)`,
    );
  }
  const n = bytes.length / RECORD;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const y = bytes[r * RECORD]!;
    if (y > 9) throw new EngineError(op, `${name}: label ${y} of record ${r} is outside [0, 9]`);
    labels[r] = y;
    images.set(bytes.subarray(r * RECORD + 1, (r + 1) * RECORD), r * PIXELS);
  }
  return { images, labels };
}

/** One [3, 32, 32] data set from several batch files (in order). */
export function cifar10FromBatches(batches: { bytes: Uint8Array; name: string }[]): ByteImageDataset {
  const parts = batches.map((b) => parseCifar10Batch(b.bytes, b.name));
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * PIXELS);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return new ByteImageDataset(images, labels, [3, 32, 32], 10, CIFAR10_CLASSES);
}
