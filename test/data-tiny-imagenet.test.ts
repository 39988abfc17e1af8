// TinyImageNet layout loader on a tiny synthetic copy made here (3 classes, 5x4 images: PNG bytes
// under .JPEG names so every image is distinguishable, plus PIL-written RGB and greyscale JPEG
// fixtures), from a directory and from a .tar.gz; label order; every error case naming the file.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';
import { loadTinyImageNet } from '../src/data/image-folder-node.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'data-tin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'images');
const pil = JSON.parse(readFileSync(path.join(FIX, 'pil_pixels.json'), 'utf8')) as { files: Record<string, { pixels: string }> };

const H = 5;
const W = 4;
/** A 5x4 RGB PNG whose every pixel of channel c is seed * 10 + c. */
function png(seed: number): Buffer {
  const p = new pngjs.PNG({ width: W, height: H });
  for (let i = 0; i < H * W; i++) p.data.set([seed * 10, seed * 10 + 1, seed * 10 + 2, 255], i * 4);
  return pngjs.PNG.sync.write(p, { colorType: 2 });
}
function write(file: string, data: Uint8Array | string) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, data);
}

// wnids.txt deliberately unsorted; n02 holds the PIL JPEG fixtures (one of them greyscale)
const WNIDS = ['n03', 'n01', 'n02'];
function makeTin(root: string) {
  write(path.join(root, 'wnids.txt'), `${WNIDS.join('\n')}\n`);
  write(path.join(root, 'words.txt'), 'n00\tentity\nn01\tgoldfish, Carassius auratus\nn02\tsalamander\nn03\tbullfrog\n');
  let seed = 1;
  for (const w of ['n01', 'n03']) {
    for (const i of [1, 0, 10]) write(path.join(root, 'train', w, 'images', `${w}_${i}.JPEG`), png(seed++)); // seeds n01: 1 2 3, n03: 4 5 6
    write(path.join(root, 'train', w, `${w}_boxes.txt`), `${w}_0.JPEG\t0\t0\t3\t4\n`);
  }
  cpSync(path.join(FIX, 'smooth-5x4.jpg'), path.join(root, 'train', 'n02', 'images', 'n02_0.JPEG'));
  cpSync(path.join(FIX, 'smooth-grey-5x4.jpg'), path.join(root, 'train', 'n02', 'images', 'n02_1.JPEG'));
  // val: annotations in file order; labels n03, n01, n02, n01
  const val: [string, string, number][] = [['val_0.JPEG', 'n03', 7], ['val_1.JPEG', 'n01', 8], ['val_2.JPEG', 'n02', 9], ['val_10.JPEG', 'n01', 10]];
  for (const [f, , s] of val) write(path.join(root, 'val', 'images', f), png(s));
  write(path.join(root, 'val', 'val_annotations.txt'), val.map(([f, w]) => `${f}\t${w}\t0\t0\t3\t4`).join('\n') + '\n');
  write(path.join(root, 'test', 'images', 'test_0.JPEG'), png(20));
}
const first = (ds: { get(i: number): { image: ArrayLike<number>; label: number } }, i: number) => {
  const s = ds.get(i);
  return [s.image[0], s.image[H * W], s.image[2 * H * W], s.label];
};

describe('TinyImageNet', () => {
  const dir = path.join(tmp, 'tin');
  makeTin(path.join(dir, 'tiny-imagenet-200'));
  execFileSync('tar', ['-czf', path.join(tmp, 'tin.tar.gz'), '-C', dir, 'tiny-imagenet-200']);

  it('labels = sorted wnids (torchvision ImageFolder on train/), files sorted, greyscale replicated, val from annotations', async () => {
    for (const src of [dir, path.join(dir, 'tiny-imagenet-200'), path.join(tmp, 'tin.tar.gz')]) {
      const t = await loadTinyImageNet(src);
      expect(t.wnids, src).toEqual(['n01', 'n02', 'n03']);
      expect(t.words).toEqual(['goldfish, Carassius auratus', 'salamander', 'bullfrog']);
      const tr = t.train!;
      expect([tr.length, tr.shape, tr.numClasses, tr.classes]).toEqual([8, [3, H, W], 3, ['n01', 'n02', 'n03']]);
      // n01: files n01_0, n01_1, n01_10 (code-point order) = seeds 2, 1, 3; n02: two JPEGs; n03: seeds 5, 4, 6
      expect([0, 1, 2, 5, 6, 7].map((i) => first(tr, i))).toEqual([
        [20, 21, 22, 0], [10, 11, 12, 0], [30, 31, 32, 0], [50, 51, 52, 2], [40, 41, 42, 2], [60, 61, 62, 2],
      ]);
      // the RGB JPEG: PIL's pixels (HWC -> CHW); the greyscale one: PIL's grey value in all three channels
      const rgb = Buffer.from(pil.files['smooth-5x4.jpg']!.pixels, 'base64');
      const grey = Buffer.from(pil.files['smooth-grey-5x4.jpg']!.pixels, 'base64');
      const a = tr.get(3).image;
      const g = tr.get(4).image;
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < H * W; p++) {
          expect(a[c * H * W + p]).toBe(rgb[p * 3 + c]);
          expect(g[c * H * W + p]).toBe(grey[p]);
        }
      // val sorted by class, then file name: n01 (val_1, val_10), n02 (val_2), n03 (val_0)
      const v = t.val!;
      expect([0, 1, 2, 3].map((i) => first(v, i))).toEqual([[80, 81, 82, 0], [100, 101, 102, 0], [90, 91, 92, 1], [70, 71, 72, 2]]);
    }
  });

  it('classOrder wnids.txt: labels in that file\'s line order; splits: only the asked ones', async () => {
    const t = await loadTinyImageNet(dir, { classOrder: 'wnids.txt', splits: ['val'] });
    expect(t.wnids).toEqual(WNIDS);
    expect(t.train).toBeUndefined();
    // n03 (val_0), n01 (val_1, val_10), n02 (val_2)
    expect([0, 1, 2, 3].map((i) => first(t.val!, i))).toEqual([[70, 71, 72, 0], [80, 81, 82, 1], [100, 101, 102, 1], [90, 91, 92, 2]]);
    const tr = (await loadTinyImageNet(dir, { classOrder: 'wnids.txt', splits: ['train'] })).train!;
    expect(Array.from(tr.labels)).toEqual([0, 0, 0, 1, 1, 1, 2, 2]);
    expect(first(tr, 0)).toEqual([50, 51, 52, 0]);
  });

  it('clear errors naming the file: unknown val wnid, missing or unannotated val images, folders vs wnids.txt, missing files', async () => {
    let n = 0;
    const variant = (edit: (root: string) => void) => {
      const root = path.join(tmp, `bad${n++}`);
      makeTin(root);
      edit(root);
      return root;
    };
    const ann = (root: string, text: string) => writeFileSync(path.join(root, 'val', 'val_annotations.txt'), text);
    let r = variant((root) => ann(root, 'val_0.JPEG\tn03\t0\t0\t1\t1\nval_1.JPEG\tn99\t0\t0\t1\t1\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/val/val_annotations.txt line 2: val_1.JPEG has wnid n99, which is not in wnids.txt`);
    r = variant((root) => ann(root, 'val_0.JPEG\tn03\nval_5.JPEG\tn01\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/val/val_annotations.txt line 2: ${r}/val/images/val_5.JPEG is missing`);
    r = variant((root) => ann(root, 'val_0.JPEG\tn03\nval_1.JPEG\tn01\nval_2.JPEG\tn02\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/val/images/val_10.JPEG has no line in val_annotations.txt`);
    r = variant((root) => ann(root, 'val_0.JPEG n03\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/val/val_annotations.txt line 1: expected 'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1', got 'val_0.JPEG n03'`);
    r = variant((root) => ann(root, 'val_0.JPEG\tn03\nval_0.JPEG\tn03\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow('line 2: val_0.JPEG is annotated twice');
    r = variant((root) => writeFileSync(path.join(root, 'wnids.txt'), 'n01\nn02\nn03\nn04\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/train class folders do not match ${r}/wnids.txt; no folder for n04`);
    r = variant((root) => write(path.join(root, 'train', 'n05', 'images', 'n05_0.JPEG'), png(1)));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`folder(s) not in wnids.txt: n05`);
    r = variant((root) => writeFileSync(path.join(root, 'wnids.txt'), 'n01\nn02\nn03\nn01\n'));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/wnids.txt lists n01 twice`);
    r = variant((root) => rmSync(path.join(root, 'val', 'val_annotations.txt')));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/val/val_annotations.txt is missing`);
    await expect(loadTinyImageNet(r, { splits: ['train'] })).resolves.toMatchObject({ wnids: ['n01', 'n02', 'n03'] });
    r = variant((root) => rmSync(path.join(root, 'wnids.txt')));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}: no wnids.txt at the top or one level down: not a TinyImageNet folder`);
    r = variant((root) => writeFileSync(path.join(root, 'train', 'n01', 'images', 'n01_1.JPEG'), png(1).subarray(0, 40)));
    await expect(loadTinyImageNet(r)).rejects.toThrow(`${r}/train/n01/images/n01_1.JPEG: corrupt image`);
    await expect(loadTinyImageNet(path.join(tmp, 'nothing'))).rejects.toThrow(`cannot read ${path.join(tmp, 'nothing')}`);
  });
});
