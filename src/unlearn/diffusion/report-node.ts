// Node file output of the generation report: grids as PNG (pngjs) and report.{md,csv,json,html},
// each written atomically. The content is built by report.ts.

import { join } from 'node:path';
import pngjs from 'pngjs';
import { writeFileAtomic } from '../../io/atomic-node.js';
import { generationCsv, generationHtml, generationJson, generationMarkdown, gridRaster, type GenerationReport } from './report.js';

/** Encode an image grid ([−1, 1] values, rows × cols) as PNG bytes. */
export function gridPng(images: Float32Array, image: readonly [number, number, number], rows: number, cols: number, scale = 2): Uint8Array {
  const r = gridRaster(images, image, rows, cols, scale);
  const png = new pngjs.PNG({ width: r.width, height: r.height });
  png.data = Buffer.from(r.rgba.buffer, r.rgba.byteOffset, r.rgba.byteLength);
  return new Uint8Array(pngjs.PNG.sync.write(png));
}

export async function writeGridPng(path: string, images: Float32Array, image: readonly [number, number, number], rows: number, cols: number, scale = 2): Promise<void> {
  await writeFileAtomic(path, gridPng(images, image, rows, cols, scale));
}

/** Write report.{md,csv,json,html} into `dir`; returns the HTML path. */
export async function writeGenerationReport(dir: string, rep: GenerationReport): Promise<string> {
  const content = { md: generationMarkdown(rep), csv: generationCsv(rep), json: generationJson(rep), html: generationHtml(rep) };
  for (const [ext, text] of Object.entries(content)) await writeFileAtomic(join(dir, `report.${ext}`), text);
  return join(dir, 'report.html');
}
