// Node side of image folders: decoding PNG (pngjs) and JPEG (jpeg-js), and reading the files from a
// directory or straight from a .tar / .tar.gz / .tgz archive. Class/label logic is in image-folder.ts.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { ByteImageDataset } from './dataset.js';
import { imageFolderFromFiles, type DecodedImage, type FolderFile, type ImageFolderOptions } from './image-folder.js';
import { readTar } from './tar.js';
import { readMaybeGzip } from './mnist-node.js';
import { EngineError } from '../util/errors.js';

/** Number of colour components in a JPEG's start-of-frame segment, or 0 when none is found. */
export function jpegComponents(b: Uint8Array): number {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return 0;
    const m = b[i + 1]!;
    if (m === 0xff) {
      i++;
      continue;
    }
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    // SOF0..SOF15 except DHT (c4), JPG (c8), DAC (cc)
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return b[i + 9] ?? 0;
    if (m === 0xda) return 0;
    i += 2 + len;
  }
  return 0;
}

/** Decodes a PNG or JPEG (detected by magic bytes); throws EngineError naming `name` when corrupt. */
export function decodeImageNode(bytes: Uint8Array, name: string): DecodedImage {
  try {
    if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
      const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const colour = ((png.colorType as number) & 2) !== 0; // colour types 2, 3 (palette), 6
      return { width: png.width, height: png.height, channels: colour ? 3 : 1, pixelStride: 4, data: png.data };
    }
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8) {
      const comps = jpegComponents(bytes);
      if (comps !== 1 && comps !== 3) throw new Error(`unsupported JPEG with ${comps} components`);
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
      return { width: img.width, height: img.height, channels: comps, pixelStride: 3, data: img.data };
    }
  } catch (e) {
    throw new EngineError('decodeImage', `${name}: corrupt image (${(e as Error).message})`);
  }
  throw new EngineError('decodeImage', `${name}: neither PNG nor JPEG (starts with ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')})`);
}

const isArchive = (p: string) => /\.(tar|tar\.gz|tgz)$/i.test(p);

/** Regular files under `dir` (recursively), '/'-separated paths relative to `dir`, and the directories. */
function walk(dir: string): { files: FolderFile[]; dirs: string[] } {
  const files: FolderFile[] = [];
  const dirs: string[] = [];
  const visit = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        dirs.push(r);
        visit(r);
      } else if (e.isFile()) {
        const full = path.join(dir, r);
        files.push({ path: r, data: () => readFileSync(full) });
      }
    }
  };
  visit('');
  return { files, dirs };
}

/** The regular files and directory names of a .tar / .tar.gz archive (gzip detected by magic bytes). */
export function readArchive(file: string): { files: FolderFile[]; dirs: string[] } {
  const entries = readTar(readMaybeGzip(file), file, { directories: true });
  return {
    files: entries.filter((e) => !e.directory).map((e) => ({ path: e.name, data: e.data })),
    dirs: entries.filter((e) => e.directory).map((e) => e.name),
  };
}

/**
 * An ImageFolder data set from a directory or a .tar / .tar.gz / .tgz archive, decoded up front with
 * jpeg-js / pngjs. `prefix` selects a subtree (e.g. 'train' in the shared CIFAR-10 archive).
 * Pass `archive` (from readArchive(source)) to decode several splits from one archive read.
 */
export async function loadImageFolder(
  source: string,
  opts: ImageFolderOptions & { archive?: { files: FolderFile[]; dirs: string[] } } = {},
): Promise<ByteImageDataset> {
  let files = opts.archive?.files;
  let dirs = opts.archive?.dirs;
  if (!files) {
    let st;
    try {
      st = statSync(source);
    } catch (e) {
      throw new EngineError('loadImageFolder', `cannot read ${source}: ${(e as Error).message}`);
    }
    if (st.isDirectory()) ({ files, dirs } = walk(source));
    else if (isArchive(source)) ({ files, dirs } = readArchive(source));
    else throw new EngineError('loadImageFolder', `${source} is neither a directory nor a .tar/.tar.gz/.tgz archive`);
  }
  return imageFolderFromFiles(files, decodeImageNode, { ...opts, dirs, source });
}

/**
 * Several splits (e.g. ['train', 'test']) of one directory or archive, read once; each split is the
 * prefix of its subtree. All splits must have the same class folders so labels mean the same.
 */
export async function loadImageFolderSplits<S extends string>(
  source: string,
  splits: readonly S[],
  opts: Omit<ImageFolderOptions, 'prefix'> = {},
): Promise<Record<S, ByteImageDataset>> {
  const archive = isArchive(source) ? readArchive(source) : undefined;
  const out = {} as Record<S, ByteImageDataset>;
  for (const split of splits) {
    out[split] = await loadImageFolder(archive ? source : path.join(source, split), { ...opts, archive, prefix: archive ? split : undefined });
    const first = out[splits[0]!];
    if (out[split].classes!.join('\n') !== first.classes!.join('\n'))
      throw new EngineError(
        'loadImageFolderSplits',
        `${source}: split '${split}' has classes [${out[split].classes!.join(', ')}], '${splits[0]}' has [${first.classes!.join(', ')}]`,
      );
  }
  return out;
}
