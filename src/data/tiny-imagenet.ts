// TinyImageNet (200 classes of 64x64 JPEGs) in its published layout (browser-safe core: files in,
// data sets out): wnids.txt, optional words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG with
// val/val_annotations.txt (tab-separated: file, wnid, x0, y0, x1, y1). The unlabelled test split and the
// bounding boxes are not read. File access is in image-folder-node.ts (loadTinyImageNet).
//
// Class order (labels): the wnids sorted by code point, i.e. what torchvision's ImageFolder gives on
// train/ (the usual PyTorch pipeline), NOT the line order of wnids.txt (which is not sorted); pass
// classOrder: 'wnids.txt' for the latter. wnids.txt must list exactly the train/ class folders.

import { EngineError } from '../util/errors.js';
import type { ByteImageDataset } from './dataset.js';
import type { ImageDecoder } from './image-decode.js';
import { byCodePoint, decodeLabelled, imageFolderIndex, type FolderFile, type ImageFolderOptions } from './image-folder.js';

const OP = 'TinyImageNet';

export interface TinyImageNetOptions extends Pick<ImageFolderOptions, 'onProgress'> {
  /** 'sorted' (default: torchvision ImageFolder on train/) or 'wnids.txt' (that file's line order). */
  classOrder?: 'sorted' | 'wnids.txt';
  /** Which splits to decode (default both). */
  splits?: readonly ('train' | 'val')[];
  /** Names the root in errors (a directory or archive path). */
  source?: string;
}

export interface TinyImageNet {
  /** [3, 64, 64] images (greyscale JPEGs replicated to RGB, as torchvision's loader does); classes = wnids. */
  train?: ByteImageDataset;
  /**
   * Labels from val_annotations.txt; ordered by class, then file name (what ImageFolder gives on the
   * val set re-sorted into val/<wnid>/ folders, the usual preparation for PyTorch).
   */
  val?: ByteImageDataset;
  /** wnids by label. */
  wnids: string[];
  /** Names by label from words.txt (its text after the tab), when the file exists. */
  words?: string[];
}

const text = (f: FolderFile) => new TextDecoder().decode(typeof f.data === 'function' ? f.data() : f.data);

/**
 * Finds the data set's root below the archive/folder root: '' when wnids.txt is at the top, else the
 * one directory holding it (e.g. 'tiny-imagenet-200', as in the published zip).
 */
export function tinyImageNetRoot(files: readonly FolderFile[], source = '.'): string {
  const hits = files.filter((f) => f.path === 'wnids.txt' || /^[^/]+\/wnids\.txt$/.test(f.path)).map((f) => f.path.slice(0, -'wnids.txt'.length).replace(/\/$/, ''));
  if (hits.includes('')) return '';
  if (hits.length === 1) return hits[0]!;
  if (hits.length === 0) throw new EngineError(OP, `${source}: no wnids.txt at the top or one level down: not a TinyImageNet folder`);
  throw new EngineError(OP, `${source}: several wnids.txt (${hits.map((h) => `${h}/wnids.txt`).join(', ')}): pick one with a narrower source`);
}

/** TinyImageNet's splits from its files (see the file comment for layout, label order and errors). */
export async function tinyImageNetFromFiles(files: readonly FolderFile[], decode: ImageDecoder, opts: TinyImageNetOptions = {}): Promise<TinyImageNet> {
  const source = opts.source ?? '.';
  const root = tinyImageNetRoot(files, source);
  const at = (p: string) => (root ? `${root}/${p}` : p);
  const shown = (p: string) => `${source}/${at(p)}`;
  const byPath = new Map(files.map((f) => [f.path, f]));
  const need = (p: string) => {
    const f = byPath.get(at(p));
    if (!f) throw new EngineError(OP, `${shown(p)} is missing`);
    return f;
  };

  const listed = text(need('wnids.txt'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const dup = listed.find((w, i) => listed.indexOf(w) !== i);
  if (dup) throw new EngineError(OP, `${shown('wnids.txt')} lists ${dup} twice`);
  const wnids = opts.classOrder === 'wnids.txt' ? listed : [...listed].sort(byCodePoint);
  const label = new Map(wnids.map((w, i) => [w, i]));

  let words: string[] | undefined;
  const wordsFile = byPath.get(at('words.txt'));
  if (wordsFile) {
    const names = new Map<string, string>();
    for (const line of text(wordsFile).split(/\r?\n/)) {
      const tab = line.indexOf('\t');
      if (tab > 0) names.set(line.slice(0, tab), line.slice(tab + 1).trim());
    }
    words = wnids.map((w) => names.get(w) ?? w);
  }

  const splits = opts.splits ?? ['train', 'val'];
  const out: TinyImageNet = { wnids, ...(words ? { words } : {}) };
  const decodeOpts = { channels: 3 as const, source, onProgress: opts.onProgress, op: OP };

  if (splits.includes('train')) {
    // exactly torchvision's ImageFolder on train/, whose classes must be the wnids
    const idx = imageFolderIndex(files, { prefix: at('train'), source });
    const missing = listed.filter((w) => !idx.classes.includes(w));
    const extra = idx.classes.filter((c) => !label.has(c));
    if (missing.length || extra.length)
      throw new EngineError(
        OP,
        `${shown('train')} class folders do not match ${shown('wnids.txt')}` +
          `${missing.length ? `; no folder for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}` : ''}` +
          `${extra.length ? `; folder(s) not in wnids.txt: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}` : ''}`,
      );
    const list = idx.files.map(({ file, label: l }) => ({ file, label: label.get(idx.classes[l]!)! }));
    if (opts.classOrder === 'wnids.txt') list.sort((a, b) => a.label - b.label); // stable: keeps file order per class
    out.train = await decodeLabelled(list, wnids, decode, decodeOpts);
  }

  if (splits.includes('val')) {
    const annotations = need('val/val_annotations.txt');
    const valDir = `${at('val/images')}/`;
    const images = new Map(files.filter((f) => f.path.startsWith(valDir) && !f.path.slice(valDir.length).includes('/')).map((f) => [f.path.slice(valDir.length), f]));
    const seen = new Set<string>();
    const list: { file: FolderFile; label: number; base: string }[] = [];
    text(annotations)
      .split(/\r?\n/)
      .forEach((line, i) => {
        if (line.trim() === '') return;
        const where = `${shown('val/val_annotations.txt')} line ${i + 1}`;
        const [file, wnid] = line.split('\t');
        if (!file || !wnid) throw new EngineError(OP, `${where}: expected 'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1', got '${line.slice(0, 80)}'`);
        const l = label.get(wnid);
        if (l === undefined) throw new EngineError(OP, `${where}: ${file} has wnid ${wnid}, which is not in wnids.txt`);
        if (seen.has(file)) throw new EngineError(OP, `${where}: ${file} is annotated twice`);
        seen.add(file);
        const f = images.get(file);
        if (!f) throw new EngineError(OP, `${where}: ${shown(`val/images/${file}`)} is missing`);
        list.push({ file: f, label: l, base: file });
      });
    const unlabelled = [...images.keys()].filter((n) => !seen.has(n) && /\.jpe?g$/i.test(n));
    if (unlabelled.length)
      throw new EngineError(OP, `${shown(`val/images/${unlabelled[0]}`)} has no line in val_annotations.txt${unlabelled.length > 1 ? ` (nor ${unlabelled.length - 1} more)` : ''}`);
    if (list.length === 0) throw new EngineError(OP, `${shown('val/val_annotations.txt')} lists no images`);
    list.sort((a, b) => a.label - b.label || byCodePoint(a.base, b.base));
    out.val = await decodeLabelled(list, wnids, decode, decodeOpts);
  }
  return out;
}
