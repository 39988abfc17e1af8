// Image folders exactly as torchvision's ImageFolder (0.14) orders them (browser-safe core): files
// `<root>/<class>/.../<file>`; see imageFolderIndex for the rule. All images are decoded UP FRONT into
// one ByteImageDataset (CIFAR-scale sets fit in memory as bytes, and decoding once beats decoding every
// epoch). The decoder is passed in: nodeImageDecoder() (image-folder-node.ts) in Node,
// browserImageDecoder() (image-decode.ts) in browsers. No resizing, no colour conversion (torchvision's
// loader converts every image to RGB; here every image must already have the same channel count and
// size). Alpha channels are ignored.

import { ByteImageDataset } from './dataset.js';
import type { DecodedImage, ImageDecoder } from './image-decode.js';
import { gunzip, isGzip } from './idx.js';
import { readTar } from './tar.js';
import { EngineError } from '../util/errors.js';

export type { DecodedImage, ImageDecoder } from './image-decode.js';
export { browserImageDecoder } from './image-decode.js';

export interface ImageFolderOptions {
  /** Only files under this '/'-separated prefix are used, e.g. 'train' or 'cifar10/test/'. */
  prefix?: string;
  /** Channels (1 or 3); default: those of the first image. With 3, greyscale images are replicated to RGB. */
  channels?: 1 | 3;
  /** Expected [H, W]; default: that of the first image. */
  size?: [number, number];
  /**
   * File name endings that count as images (lower case, matched case-insensitively against the
   * whole name); default torchvision's IMG_EXTENSIONS. Files of these kinds other than JPEG and PNG
   * are listed (so that labels and order stay torchvision's) and then fail to decode with a clear error.
   */
  extensions?: readonly string[];
  /** Called every 1000 images and at the end. */
  onProgress?: (done: number, total: number) => void;
}

/** A file of the folder or archive; data may be read lazily. */
export interface FolderFile {
  path: string;
  data: Uint8Array | (() => Uint8Array);
}

/** torchvision 0.14's IMG_EXTENSIONS. */
export const TORCHVISION_IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'] as const;

/** Strips './', leading and trailing '/' and returns '' for the root. */
const normPrefix = (p: string | undefined) => (p ?? '').replace(/^(\.\/)+/, '').replace(/^\/+|\/+$/g, '');

/**
 * Python's default string order (by Unicode code point). JavaScript's `<` compares UTF-16 code units,
 * which differs for characters above U+FFFF against U+E000..U+FFFF.
 */
export function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++; // both strings hold the same surrogate pair here
  }
  return a.length - b.length;
}

/**
 * Groups files into classes and orders both exactly as torchvision 0.14's ImageFolder:
 * - classes: every directory directly below the root (`prefix`), hidden ones included, sorted by code
 *   point (Python's sorted()); label = position in that order;
 * - files of a class: `sorted(os.walk(class_dir))`, i.e. directories by their path (code point), and
 *   within one directory the file names sorted by code point; so `a/x.png` comes before `a/sub/y.png`;
 * - a file counts when its lower-cased name ends with one of `extensions` (default torchvision's
 *   IMG_EXTENSIONS), hidden files included; files directly in the root are ignored;
 * - a class without any such file is an error (torchvision raises FileNotFoundError too).
 * `dirs` lists directories that exist (for naming empty class folders); `source` names the root in errors.
 */
export function imageFolderIndex(
  files: readonly FolderFile[],
  opts: ImageFolderOptions & { dirs?: readonly string[]; source?: string } = {},
): { classes: string[]; files: { file: FolderFile; label: number }[] } {
  const prefix = normPrefix(opts.prefix);
  const root = prefix ? `${prefix}/` : '';
  const source = opts.source ? `${opts.source}${prefix ? `/${prefix}` : ''}` : prefix || '.';
  const exts = (opts.extensions ?? TORCHVISION_IMG_EXTENSIONS).map((e) => e.toLowerCase());
  const byClass = new Map<string, { dir: string; base: string; file: FolderFile }[]>();
  const split = (p: string) => {
    if (!p.startsWith(root)) return null;
    const rest = p.slice(root.length);
    const slash = rest.indexOf('/');
    return slash > 0 ? { cls: rest.slice(0, slash), rel: rest.slice(slash + 1) } : null;
  };
  for (const d of opts.dirs ?? []) {
    const c = split(`${d.replace(/\/+$/, '')}/`);
    if (c !== null && !byClass.has(c.cls)) byClass.set(c.cls, []);
  }
  for (const file of files) {
    const c = split(file.path);
    if (c === null || c.rel === '') continue;
    if (!byClass.has(c.cls)) byClass.set(c.cls, []);
    const cut = c.rel.lastIndexOf('/');
    const base = c.rel.slice(cut + 1);
    if (!exts.some((e) => base.toLowerCase().endsWith(e))) continue;
    byClass.get(c.cls)!.push({ dir: cut < 0 ? '' : `/${c.rel.slice(0, cut)}`, base, file });
  }
  const classes = [...byClass.keys()].sort(byCodePoint);
  if (classes.length === 0) throw new EngineError('ImageFolder', `${source}: no class folders found`);
  const empty = classes.filter((c) => byClass.get(c)!.length === 0);
  if (empty.length)
    throw new EngineError(
      'ImageFolder',
      `class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => `${source}/${c}`).join(', ')} hold${empty.length > 1 ? '' : 's'} no image files (${exts.join(' ')})`,
    );
  const out: { file: FolderFile; label: number }[] = [];
  classes.forEach((c, label) => {
    const list = byClass.get(c)!;
    list.sort((a, b) => byCodePoint(a.dir, b.dir) || byCodePoint(a.base, b.base));
    for (const { file } of list) out.push({ file, label });
  });
  return { classes, files: out };
}

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
  return decodeLabelled(list, classes, decode, opts);
}

/**
 * Decodes labelled files, in the given order, into one [C, H, W] ByteImageDataset with `classes` as its
 * class names. C, H, W are `channels` / `size` when given, else the first image's; with `channels: 3`
 * a greyscale image is replicated to RGB (exactly what PIL's convert('RGB'), and so torchvision's
 * loader, does); any other mismatch is an error naming the file. `source` prefixes names in errors.
 */
export async function decodeLabelled(
  list: readonly { file: FolderFile; label: number }[],
  classes: readonly string[],
  decode: ImageDecoder,
  opts: Pick<ImageFolderOptions, 'channels' | 'size' | 'onProgress'> & { source?: string; op?: string } = {},
): Promise<ByteImageDataset> {
  const op = opts.op ?? 'ImageFolder';
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
      throw new EngineError(op, `${name}: corrupt image (${(e as Error).message})`);
    }
    if (i === 0) {
      C ||= img.channels;
      H ||= img.height;
      W ||= img.width;
      if (C !== 1 && C !== 3) throw new EngineError(op, `${name}: has ${img.channels} channels; only 1 or 3 are supported`);
      const total = list.length * C * H * W;
      if (total > 2 ** 32 - 1)
        throw new EngineError(op, `${list.length} images of ${C}x${H}x${W} need ${(total / 2 ** 30).toFixed(1)} GiB as bytes, over the 4 GiB a typed array can hold`);
      images = new Uint8Array(total);
    }
    const replicate = img.channels === 1 && opts.channels === 3;
    if (img.channels !== C && !replicate)
      throw new EngineError(op, `${name}: has ${img.channels} channel(s), expected ${C}`);
    if (img.height !== H || img.width !== W)
      throw new EngineError(op, `${name}: is ${img.height}x${img.width} (HxW), expected ${H}x${W}`);
    // HWC (with pixelStride) -> CHW
    const hw = H * W;
    const base = i * C * hw;
    const d = img.data;
    const s = img.pixelStride;
    for (let c = 0; c < C; c++) {
      const o = base + c * hw;
      const k = replicate ? 0 : c;
      for (let p = 0; p < hw; p++) images[o + p] = d[p * s + k]!;
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

