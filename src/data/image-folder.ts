// Image folders as torchvision's ImageFolder (browser-safe core): files `<root>/<class>/.../<file>`,
// classes sorted by name get labels 0.., files sorted by path within each class. All images are
// decoded UP FRONT into one ByteImageDataset (CIFAR-scale sets fit in memory as bytes, and decoding
// once beats decoding every epoch). The decoder is passed in: decodeImageNode (image-folder-node.ts)
// in Node, browserImageDecoder() here for browsers. No resizing, no colour conversion: every image
// must already have the requested channel count and size. Alpha channels are ignored.

import { ByteImageDataset } from './dataset.js';
import { gunzip, isGzip } from './idx.js';
import { readTar } from './tar.js';
import { EngineError } from '../util/errors.js';

/** A decoded image: `channels` native channels (1 grey, 3 colour) of pixel p stored at data[p * pixelStride + c]. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: number;
  pixelStride: number;
  data: Uint8Array;
}

/** Decodes one encoded image; throws for corrupt input. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => DecodedImage | Promise<DecodedImage>;

export interface ImageFolderOptions {
  /** Only files under this '/'-separated prefix are used, e.g. 'train' or 'cifar10/test/'. */
  prefix?: string;
  /** Expected channels (1 or 3); default: those of the first image. */
  channels?: 1 | 3;
  /** Expected [H, W]; default: that of the first image. */
  size?: [number, number];
  /** File name endings that count as images (lower case); default .jpg .jpeg .png. */
  extensions?: readonly string[];
  /** Called every 1000 images and at the end. */
  onProgress?: (done: number, total: number) => void;
}

/** A file of the folder or archive; data may be read lazily. */
export interface FolderFile {
  path: string;
  data: Uint8Array | (() => Uint8Array);
}

const DEFAULT_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

/** Strips './', leading and trailing '/' and returns '' for the root. */
const normPrefix = (p: string | undefined) => (p ?? '').replace(/^(\.\/)+/, '').replace(/^\/+|\/+$/g, '');

/**
 * Groups files into classes (first path component below `prefix`) and sorts both.
 * `dirs` lists directories that exist (for naming empty class folders); `source` names the root in errors.
 */
export function imageFolderIndex(
  files: readonly FolderFile[],
  opts: ImageFolderOptions & { dirs?: readonly string[]; source?: string } = {},
): { classes: string[]; files: { file: FolderFile; label: number }[] } {
  const prefix = normPrefix(opts.prefix);
  const root = prefix ? `${prefix}/` : '';
  const source = opts.source ? `${opts.source}${prefix ? `/${prefix}` : ''}` : prefix || '.';
  const exts = opts.extensions ?? DEFAULT_EXTENSIONS;
  const byClass = new Map<string, FolderFile[]>();
  const classOf = (p: string) => {
    if (!p.startsWith(root)) return null;
    const rest = p.slice(root.length).split('/');
    return rest.length >= 2 && rest[0] && !rest[0].startsWith('.') ? rest[0] : null;
  };
  for (const d of opts.dirs ?? []) {
    const c = classOf(`${d.replace(/\/+$/, '')}/x`);
    if (c !== null && !byClass.has(c)) byClass.set(c, []);
  }
  for (const f of files) {
    const c = classOf(f.path);
    const base = f.path.slice(f.path.lastIndexOf('/') + 1);
    if (c === null) continue;
    if (!byClass.has(c)) byClass.set(c, []);
    if (base.startsWith('.') || !exts.some((e) => base.toLowerCase().endsWith(e))) continue;
    byClass.get(c)!.push(f);
  }
  const classes = [...byClass.keys()].sort(byCodePoint);
  if (classes.length === 0) throw new EngineError('ImageFolder', `${source}: no class folders found`);
  const out: { file: FolderFile; label: number }[] = [];
  classes.forEach((c, label) => {
    const list = byClass.get(c)!;
    if (list.length === 0)
      throw new EngineError('ImageFolder', `class folder ${source}/${c} holds no image files (${exts.join(' ')})`);
    list.sort((a, b) => byCodePoint(a.path, b.path));
    for (const file of list) out.push({ file, label });
  });
  return { classes, files: out };
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Decodes every image of an image folder into one [C, H, W] ByteImageDataset (labels = sorted class
 * order). Errors name the file: corrupt data, wrong channel count, size differing from the first
 * image (or `size`), empty class folder.
 */
export async function imageFolderFromFiles(
  files: readonly FolderFile[],
  decode: ImageDecoder,
  opts: ImageFolderOptions & { dirs?: readonly string[]; source?: string } = {},
): Promise<ByteImageDataset> {
  const { classes, files: list } = imageFolderIndex(files, opts);
  const src = (p: string) => (opts.source ? `${opts.source}/${p}` : p);
  let C = opts.channels ?? 0;
  let H = opts.size?.[0] ?? 0;
  let W = opts.size?.[1] ?? 0;
  let images = new Uint8Array(0);
  const labels = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const { file, label } = list[i]!;
    labels[i] = label;
    const name = src(file.path);
    const bytes = typeof file.data === 'function' ? file.data() : file.data;
    let img: DecodedImage;
    try {
      img = await decode(bytes, name);
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError('ImageFolder', `${name}: corrupt image (${(e as Error).message})`);
    }
    if (i === 0) {
      C ||= img.channels;
      H ||= img.height;
      W ||= img.width;
      if (C !== 1 && C !== 3) throw new EngineError('ImageFolder', `${name}: has ${img.channels} channels; only 1 or 3 are supported`);
      images = new Uint8Array(list.length * C * H * W);
    }
    if (img.channels !== C)
      throw new EngineError('ImageFolder', `${name}: has ${img.channels} channel(s), expected ${C}`);
    if (img.height !== H || img.width !== W)
      throw new EngineError('ImageFolder', `${name}: is ${img.height}x${img.width} (HxW), expected ${H}x${W}`);
    // HWC (with pixelStride) -> CHW
    const hw = H * W;
    const base = i * C * hw;
    const d = img.data;
    const s = img.pixelStride;
    for (let c = 0; c < C; c++) {
      const o = base + c * hw;
      for (let p = 0; p < hw; p++) images[o + p] = d[p * s + c]!;
    }
    if (opts.onProgress && ((i + 1) % 1000 === 0 || i + 1 === list.length)) opts.onProgress(i + 1, list.length);
  }
  return new ByteImageDataset(images, labels, [C, H, W], classes.length, classes);
}

/**
 * An image folder straight from the bytes of a .tar or .tar.gz archive (gzip detected by magic bytes,
 * decompressed with DecompressionStream), e.g. fetched in a browser: `prefix` selects the split.
 */
export async function imageFolderFromArchive(
  bytes: Uint8Array,
  decode: ImageDecoder,
  opts: ImageFolderOptions & { source?: string } = {},
): Promise<ByteImageDataset> {
  const source = opts.source ?? 'archive';
  const tar = isGzip(bytes) ? await gunzip(bytes, source) : bytes;
  const entries = readTar(tar, source, { directories: true });
  const files = entries.filter((e) => !e.directory).map((e) => ({ path: e.name, data: e.data }));
  const dirs = entries.filter((e) => e.directory).map((e) => e.name);
  return imageFolderFromFiles(files, decode, { ...opts, dirs, source });
}

/**
 * Browser decoder via createImageBitmap + OffscreenCanvas. The canvas always yields RGBA, so the
 * channel count cannot be read from the file: it reports `channels` (3: RGB; 1: the red channel).
 * JPEG pixels differ slightly from jpeg-js's (other IDCT / chroma upsampling): on CIFAR-10 JPEGs in
 * Chromium, max 17 and mean 1.5 levels of 255 (checked ad hoc, not in the test suite).
 */
export function browserImageDecoder(channels: 1 | 3 = 3): ImageDecoder {
  return async (bytes, name) => {
    const type = bytes[0] === 0x89 ? 'image/png' : 'image/jpeg';
    let bitmap: ImageBitmap;
    try {
      // exact pixels: no colour-space conversion, no premultiplied alpha
      bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type }), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
    } catch (e) {
      throw new EngineError('ImageFolder', `${name}: corrupt image (${(e as Error).message})`);
    }
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new EngineError('ImageFolder', 'OffscreenCanvas 2d context is not available');
    g.drawImage(bitmap, 0, 0);
    const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
    bitmap.close();
    return { width: canvas.width, height: canvas.height, channels, pixelStride: 4, data: new Uint8Array(data.buffer) };
  };
}
