// JPEG decoding vs PIL over every JPEG of an archive (default: the shared CIFAR-10 archive, 60,000
// images): our decoder (MozJPEG WASM, src/data/jpeg.ts) and, when installed, the former one (jpeg-js),
// each against PIL's pixels written by bench/jpeg_vs_pil.py to a temp file. Reports max and mean
// |difference| over all RGB values, how many images differ, and decode time. Greyscale images are
// compared after replication to RGB (what PIL's convert('RGB') does). It times nothing else.
//
//   npx tsx bench/jpeg-vs-pil.ts [--archive FILE] [--python /usr/bin/python3] [--out bench/results/jpeg-vs-pil.json]

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeJpegDecoder, readArchive } from '../src/data/image-folder-node.js';
import type { DecodedImage } from '../src/data/image-decode.js';
import { parseArgs } from './common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseArgs(path.join(here, 'results', 'jpeg-vs-pil.json'));
const archive =
  args.get('archive') ??
  [path.resolve(here, '../../shared/data/cifar10-jpeg.tar.gz'), path.resolve(here, '../../../shared/data/cifar10-jpeg.tar.gz')].find(existsSync);
if (!archive || !existsSync(archive)) {
  console.error('no archive: pass --archive FILE (the shared CIFAR-10 JPEG archive was not found)');
  process.exit(2);
}
const python = args.get('python') ?? '/usr/bin/python3';

interface Stats {
  decoder: string;
  images: number;
  identicalImages: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  worstImage: string;
  decodeSeconds: number;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'jpeg-vs-pil-'));
  try {
    const t0 = performance.now();
    execFileSync(python, [path.join(here, 'jpeg_vs_pil.py'), archive!, path.join(tmp, 'pil')], { stdio: 'inherit' });
    const pilSeconds = (performance.now() - t0) / 1000;
    const pil = JSON.parse(readFileSync(path.join(tmp, 'pil.json'), 'utf8')) as { pil: string; libjpeg_turbo: string; images: [string, number, number][] };
    const pixels = readFileSync(path.join(tmp, 'pil.bin'));
    const files = new Map(readArchive(archive!).files.map((f) => [f.path, f.data]));

    const decoders: [string, (b: Uint8Array, n: string) => Promise<DecodedImage> | DecodedImage][] = [];
    const jpeg = await nodeJpegDecoder();
    decoders.push(['@jsquash/jpeg 1.6.0 (MozJPEG WASM)', (b, n) => jpeg.decode(b, n)]);
    try {
      const req = createRequire(import.meta.url);
      const jpegjs = req('jpeg-js') as { decode: (b: Uint8Array, o: object) => { width: number; height: number; data: Uint8Array } };
      const version = (req('jpeg-js/package.json') as { version: string }).version;
      decoders.push([`jpeg-js ${version} (former decoder)`, (b) => ({ ...jpegjs.decode(b, { useTArray: true, formatAsRGBA: false }), channels: 3, pixelStride: 3 })]);
    } catch {
      console.log('jpeg-js is not installed: only our decoder is compared (npm install --no-save jpeg-js@0.4.4 to compare the former one)');
    }

    const results: Stats[] = [];
    for (const [label, decode] of decoders) {
      let at = 0;
      let sum = 0;
      let count = 0;
      let max = 0;
      let worst = '';
      let identical = 0;
      let seconds = 0;
      for (const [name, w, h] of pil.images) {
        const bytes = files.get(name);
        if (!bytes) throw new Error(`${name} is in PIL's list but not in the archive`);
        const t = performance.now();
        const img = await decode(typeof bytes === 'function' ? bytes() : bytes, name);
        seconds += (performance.now() - t) / 1000;
        if (img.width !== w || img.height !== h) throw new Error(`${label}: ${name} is ${img.width}x${img.height}, PIL ${w}x${h}`);
        let imgMax = 0;
        for (let p = 0; p < w * h; p++)
          for (let c = 0; c < 3; c++) {
            const d = Math.abs(img.data[p * img.pixelStride + (img.channels === 1 ? 0 : c)]! - pixels[at + p * 3 + c]!);
            sum += d;
            if (d > imgMax) imgMax = d;
          }
        count += w * h * 3;
        at += w * h * 3;
        if (imgMax === 0) identical++;
        if (imgMax > max) {
          max = imgMax;
          worst = name;
        }
      }
      const s: Stats = { decoder: label, images: pil.images.length, identicalImages: identical, maxAbsDiff: max, meanAbsDiff: sum / count, worstImage: worst, decodeSeconds: seconds };
      results.push(s);
      console.log(`${label}: ${s.identicalImages}/${s.images} images identical to PIL, max |Δ| ${s.maxAbsDiff}, mean |Δ| ${s.meanAbsDiff.toFixed(4)}${worst ? ` (worst ${worst})` : ''}, decode ${seconds.toFixed(1)} s`);
    }
    console.log(`PIL ${pil.pil} (libjpeg-turbo ${pil.libjpeg_turbo}): decode + write ${pilSeconds.toFixed(1)} s`);
    mkdirSync(path.dirname(args.out), { recursive: true });
    writeFileSync(args.out, `${JSON.stringify({ date: new Date().toISOString(), archive: path.basename(archive!), pil: pil.pil, libjpegTurbo: pil.libjpeg_turbo, results }, null, 1)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
