// Node side of image folders: the image decoder (JPEG through the MozJPEG WebAssembly build in
// @jsquash/jpeg, read from node_modules: pixels identical to PIL's; PNG through pngjs), and reading the
// files from a directory or straight from a .tar / .tar.gz / .tgz archive. Class/label logic is in
// image-folder.ts, header checks in image-decode.ts. No network access: the .wasm ships in the package.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import pngjs from 'pngjs';
import type { ByteImageDataset } from './dataset.js';
import { imageFormat, MAX_IMAGE_PIXELS, pngInfo, unsupportedFormat, type DecodedImage, type ImageDecoder } from './image-decode.js';
import { imageFolderFromFiles, type FolderFile, type ImageFolderOptions } from './image-folder.js';
import { compileJpegWasm, createJpegDecoder, JPEG_WASM_PATH, type JpegDecoder } from './jpeg.js';
import { readTar } from './tar.js';
import { tinyImageNetFromFiles, type TinyImageNet, type TinyImageNetOptions } from './tiny-imagenet.js';
import { readMaybeGzip } from './mnist-node.js';
import { EngineError } from '../util/errors.js';

/** Where the installed @jsquash/jpeg keeps its decoder's .wasm. */
export function jpegWasmFile(): string {
  return createRequire(import.meta.url).resolve(JPEG_WASM_PATH);
}

// A cache of the compiled (immutable) WebAssembly module: each decoder still owns its own instance.
let compiled: Promise<WebAssembly.Module> | undefined;

/** A JPEG decoder (jpeg.ts) with the .wasm read from node_modules. */
export function nodeJpegDecoder(opts: { maxPixels?: number } = {}): Promise<JpegDecoder> {
  compiled ??= compileJpegWasm(readFileSync(jpegWasmFile()));
  return compiled.then((m) => createJpegDecoder(m, opts));
}

/** Decodes a PNG with pngjs after pngInfo's header checks; 16-bit samples are scaled to 8 bits by pngjs. */
export function decodePng(bytes: Uint8Array, name: string, maxPixels = MAX_IMAGE_PIXELS): DecodedImage {
  const info = pngInfo(bytes, name, maxPixels);
  let png: pngjs.PNG;
  try {
    png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new EngineError('decodeImage', `${name}: corrupt image (${(e as Error).message})`);
  }
  return { width: png.width, height: png.height, channels: info.channels, pixelStride: 4, data: png.data };
}

/**
 * The Node image decoder: PNG (pngjs) or JPEG (MozJPEG WASM, identical to PIL), detected by magic
 * bytes; other formats (BMP, WebP, TIFF, PNM, GIF) get an error naming the format and the file.
 */
export async function nodeImageDecoder(opts: { maxPixels?: number } = {}): Promise<ImageDecoder> {
  const jpeg = await nodeJpegDecoder(opts);
  return (bytes, name) => {
    const format = imageFormat(bytes);
    if (format === 'png') return decodePng(bytes, name, opts.maxPixels);
    if (format === 'jpeg') return jpeg.decode(bytes, name);
    return unsupportedFormat(bytes, name);
  };
}

const isArchive = (p: string) => /\.(tar|tar\.gz|tgz)$/i.test(p);

const statOrNull = (p: string) => {
  try {
    return statSync(p);
  } catch {
    return null; // a dangling link
  }
};
const isDirLink = (p: string) => statOrNull(p)?.isDirectory() ?? false;
const isFileLink = (p: string) => statOrNull(p)?.isFile() ?? false;

/**
 * Regular files under `dir` (recursively, following symbolic links as torchvision does), '/'-separated
 * paths relative to `dir` (read lazily), and the directories.
 */
export function listFolder(dir: string): { files: FolderFile[]; dirs: string[] } {
  const files: FolderFile[] = [];
  const dirs: string[] = [];
  const visit = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      // symbolic links are followed, as torchvision's os.walk(followlinks=True) does
      if (e.isDirectory() || (e.isSymbolicLink() && isDirLink(path.join(dir, r)))) {
        dirs.push(r);
        visit(r);
      } else if (e.isFile() || (e.isSymbolicLink() && isFileLink(path.join(dir, r)))) {
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
 * An ImageFolder data set from a directory or a .tar / .tar.gz / .tgz archive, decoded up front
 * (nodeImageDecoder unless `decode` is given). Labels and order are torchvision 0.14 ImageFolder's
 * (see imageFolderIndex: classes and files sorted by code point, hidden folders included, its
 * IMG_EXTENSIONS). `prefix` selects a subtree (e.g. 'train' in the shared CIFAR-10 archive).
 * Pass `archive` (from readArchive(source)) to decode several splits from one archive read.
 */
export async function loadImageFolder(
  source: string,
  opts: ImageFolderOptions & { archive?: { files: FolderFile[]; dirs: string[] }; decode?: ImageDecoder } = {},
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
    if (st.isDirectory()) ({ files, dirs } = listFolder(source));
    else if (isArchive(source)) ({ files, dirs } = readArchive(source));
    else throw new EngineError('loadImageFolder', `${source} is neither a directory nor a .tar/.tar.gz/.tgz archive`);
  }
  return imageFolderFromFiles(files, opts.decode ?? (await nodeImageDecoder()), { ...opts, dirs, source });
}

/**
 * Several splits (e.g. ['train', 'test']) of one directory or archive, read once; each split is the
 * prefix of its subtree. All splits must have the same class folders so labels mean the same.
 */
export async function loadImageFolderSplits<S extends string>(
  source: string,
  splits: readonly S[],
  opts: Omit<ImageFolderOptions, 'prefix'> & { decode?: ImageDecoder } = {},
): Promise<Record<S, ByteImageDataset>> {
  const archive = isArchive(source) ? readArchive(source) : undefined;
  const decode = opts.decode ?? (await nodeImageDecoder());
  const out = {} as Record<S, ByteImageDataset>;
  for (const split of splits) {
    out[split] = await loadImageFolder(archive ? source : path.join(source, split), { ...opts, decode, archive, prefix: archive ? split : undefined });
    const first = out[splits[0]!];
    if (out[split].classes!.join('\n') !== first.classes!.join('\n'))
      throw new EngineError(
        'loadImageFolderSplits',
        `${source}: split '${split}' has classes [${out[split].classes!.join(', ')}], '${splits[0]}' has [${first.classes!.join(', ')}]`,
      );
  }
  return out;
}

/**
 * TinyImageNet from its directory or a .tar / .tar.gz of it (wnids.txt at the top or one folder down,
 * e.g. tiny-imagenet-200/). Layout, label order (sorted wnids = torchvision ImageFolder on train/)
 * and errors: see tiny-imagenet.ts.
 */
export async function loadTinyImageNet(source: string, opts: TinyImageNetOptions & { decode?: ImageDecoder } = {}): Promise<TinyImageNet> {
  let st;
  try {
    st = statSync(source);
  } catch (e) {
    throw new EngineError('loadTinyImageNet', `cannot read ${source}: ${(e as Error).message}`);
  }
  let files: FolderFile[];
  if (st.isDirectory()) files = listFolder(source).files;
  else if (isArchive(source)) files = readArchive(source).files;
  else throw new EngineError('loadTinyImageNet', `${source} is neither a directory nor a .tar/.tar.gz/.tgz archive`);
  return tinyImageNetFromFiles(files, opts.decode ?? (await nodeImageDecoder()), { ...opts, source });
}
