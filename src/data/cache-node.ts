// A binary cache for decoded byte-image data sets (Node), so image folders / archives are decoded
// once: a file holding a JSON header, the labels and the pixels. It does not check whether the
// source changed since the cache was written: delete the cache file to rebuild it.
//
// Layout: 'UGDS' | u32 LE header length | header JSON | pad to 4 | Int32 LE labels [N] | pixels [N*C*H*W].

import { existsSync, readFileSync } from 'node:fs';
import { ByteImageDataset, type ImageShape } from './dataset.js';
import { EngineError } from '../util/errors.js';
import { writeFileAtomicSync } from '../io/atomic-node.js';

const MAGIC = 'UGDS';

interface Header {
  version: 1;
  n: number;
  shape: ImageShape;
  numClasses: number;
  classes?: readonly string[];
}

/** Writes `ds` to `file` atomically (io/atomic-node: a killed write leaves a temp file the next write removes). */
export function saveByteDataset(ds: ByteImageDataset, file: string): void {
  const header: Header = { version: 1, n: ds.length, shape: ds.shape, numClasses: ds.numClasses, classes: ds.classes };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pre = 8 + json.length;
  const pad = (4 - (pre % 4)) % 4;
  const out = new Uint8Array(pre + pad + 4 * ds.length + ds.images.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  const lab = new DataView(out.buffer, pre + pad, 4 * ds.length);
  for (let i = 0; i < ds.length; i++) lab.setInt32(4 * i, ds.labels[i]!, true);
  out.set(ds.images, pre + pad + 4 * ds.length);
  writeFileAtomicSync(file, out);
}

const isCount = (x: unknown, min: number) => Number.isSafeInteger(x) && (x as number) >= min;

/** Reads a file written by saveByteDataset; every error (corrupt header, wrong size, bad labels) names the file. */
export function loadByteDataset(file: string): ByteImageDataset {
  const op = 'loadByteDataset';
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch (e) {
    throw new EngineError(op, `cannot read ${file}: ${(e as Error).message}`);
  }
  if (b.length < 8 || new TextDecoder().decode(b.subarray(0, 4)) !== MAGIC)
    throw new EngineError(op, `${file} is not a dataset cache (no '${MAGIC}' magic)`);
  const len = b.readUInt32LE(4);
  if (8 + len > b.length) throw new EngineError(op, `${file}: header length ${len} runs beyond the file (${b.length} bytes)`);
  let h: Header;
  try {
    h = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + len))) as Header;
  } catch {
    throw new EngineError(op, `${file}: corrupt header`);
  }
  const shapeOk = Array.isArray(h?.shape) && h.shape.length === 3 && h.shape.every((d) => isCount(d, 1));
  const classesOk = h?.classes === undefined || (Array.isArray(h.classes) && h.classes.every((c) => typeof c === 'string'));
  if (h?.version !== 1 || !isCount(h.n, 0) || !shapeOk || !isCount(h.numClasses, 1) || !classesOk)
    throw new EngineError(op, `${file}: corrupt header ${JSON.stringify(h).slice(0, 200)}`);
  const pre = 8 + len;
  const at = pre + ((4 - (pre % 4)) % 4);
  const px = h.n * h.shape[0] * h.shape[1] * h.shape[2];
  const expected = at + 4 * h.n + px;
  if (b.length !== expected) throw new EngineError(op, `${file}: expected ${expected} bytes, got ${b.length}`);
  const labels = new Int32Array(h.n);
  for (let i = 0; i < h.n; i++) labels[i] = b.readInt32LE(at + 4 * i);
  const images = new Uint8Array(b.buffer, b.byteOffset + at + 4 * h.n, px);
  try {
    return new ByteImageDataset(images, labels, h.shape, h.numClasses, h.classes);
  } catch (e) {
    throw new EngineError(op, `${file}: ${(e as Error).message}`);
  }
}

/** Loads `file` when it exists, else builds the data set and saves it there. */
export async function cachedByteDataset(file: string, build: () => Promise<ByteImageDataset> | ByteImageDataset): Promise<ByteImageDataset> {
  if (existsSync(file)) return loadByteDataset(file);
  const ds = await build();
  saveByteDataset(ds, file);
  return ds;
}
