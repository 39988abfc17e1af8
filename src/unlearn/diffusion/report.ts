// The generation report (spec §7-8), browser-safe: one row per model (RT first, then the original
// and each method) with FA, the share of the forgotten class's samples labelled "none of the classes", the in-domain FID, the unlearning steps and the time; image grids
// (rows = classes with the forgotten one first, columns = seeds) as RGBA rasters; the table as
// Markdown, CSV, JSON and an HTML page that shows each model's grid next to the table.
// PNG encoding and files are in report-node.ts.

import { EngineError } from '../../util/errors.js';
import { FID_LABEL } from './metrics.js';
import { linePlot } from '../classification/report.js';

export interface GenerationRow {
  /** RT, Original, SFR-on, SalUn, SA */
  method: string;
  /** FA in percent (lower = more forgotten) */
  fa: number;
  /** % of the forgotten class's generated images that the classifier labels "none of the classes" (absent: no reject output) */
  none?: number;
  /** Fréchet distance in the evaluation classifier's features, kept classes */
  fid: number;
  /** unlearning iterations (the paper's "steps"); null for RT and the original */
  steps: number | null;
  /** optimizer updates (SFR-on: two per iteration) */
  updates: number | null;
  /** wall-clock seconds of the unlearning call (masks, replay, Fisher included), or of training for RT */
  seconds: number;
  maskDensity?: number;
  /** the grid's file name, relative to the report */
  grid?: string;
  /** SFR-on's λ (rows of a λ sweep) */
  lambda?: number;
  /** FID of the same kept-class samples in the features of a user-supplied model (config fidModel) */
  extraFid?: { label: string; value: number };
}

/** FA, none and FID against λ from the SFR-on rows (two or more distinct λ), with RT's values. */
export interface GenerationSweep {
  lambdas: number[];
  fa: number[];
  none: (number | null)[];
  fid: number[];
  rt: { fa: number; fid: number } | null;
}

/** The λ sweep in the rows (SFR-on rows carrying λ), sorted by λ; null with fewer than two λ. */
export function generationSweep(rows: readonly GenerationRow[]): GenerationSweep | null {
  // the base SFR-on row and its "(λ=x)" variants only: other labelled SFR-on rows may differ in more than λ
  const pts = rows.filter((r) => r.lambda !== undefined && Number.isFinite(r.lambda) && (r.method === 'SFR-on' || r.method.startsWith('SFR-on (λ='))).sort((a, b) => a.lambda! - b.lambda!);
  if (new Set(pts.map((r) => r.lambda)).size < 2) return null;
  const rt = rows.find((r) => r.method === 'RT');
  return { lambdas: pts.map((r) => r.lambda!), fa: pts.map((r) => r.fa), none: pts.map((r) => r.none ?? null), fid: pts.map((r) => r.fid), rt: rt ? { fa: rt.fa, fid: rt.fid } : null };
}

export interface GenerationReport {
  title: string;
  forgetClass: number;
  /** settings said plainly (reduced sizes, steps, model) */
  notes: string[];
  device: string;
  date: string;
  rows: GenerationRow[];
}

/** A grid of images in [−1, 1] ([N·C·H·W], row-major rows × cols) as an RGBA raster, each pixel `scale`×, `pad` px apart. */
export function gridRaster(images: Float32Array, image: readonly [number, number, number], rows: number, cols: number, scale = 2, pad = 2): { width: number; height: number; rgba: Uint8Array } {
  const [C, H, W] = image;
  const d = C * H * W;
  if (images.length !== rows * cols * d) throw new EngineError('gridRaster', `${images.length} values are not ${rows}×${cols} images of [${image.join(', ')}]`);
  if (C !== 1 && C !== 3) throw new EngineError('gridRaster', `images with ${C} channels cannot be shown (1 or 3)`);
  const width = cols * (W * scale + pad) + pad;
  const height = rows * (H * scale + pad) + pad;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255; // opaque black background
  const byte = (v: number) => Math.round(Math.max(0, Math.min(1, (v + 1) / 2)) * 255);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const base = (r * cols + c) * d;
      for (let y = 0; y < H * scale; y++)
        for (let x = 0; x < W * scale; x++) {
          const px = pad + c * (W * scale + pad) + x;
          const py = pad + r * (H * scale + pad) + y;
          const o = (py * width + px) * 4;
          const sy = Math.floor(y / scale);
          const sx = Math.floor(x / scale);
          for (let ch = 0; ch < 3; ch++) rgba[o + ch] = byte(images[base + (C === 1 ? 0 : ch) * H * W + sy * W + sx]!);
        }
    }
  return { width, height, rgba };
}

const fmt = (v: number | null | undefined, digits: number) => (v == null || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** The label of the user-supplied feature model's FID column, if any row has one. */
const extraLabel = (rows: readonly GenerationRow[]) => rows.find((r) => r.extraFid)?.extraFid!.label;
const header = (rows: readonly GenerationRow[]) => {
  const x = extraLabel(rows);
  return ['Method', 'FA (%)', 'none (%)', FID_LABEL, ...(x === undefined ? [] : [`FID (${x} features)`]), 'Steps', 'Updates', 'Time (s)', 'Mask density'];
};
const cells = (r: GenerationRow, rows: readonly GenerationRow[]) => [
  r.method,
  fmt(r.fa, 1),
  fmt(r.none, 1),
  fmt(r.fid, 2),
  ...(extraLabel(rows) === undefined ? [] : [fmt(r.extraFid?.value, 2)]),
  r.steps == null ? '—' : String(r.steps),
  r.updates == null ? '—' : String(r.updates),
  fmt(r.seconds, 1),
  r.maskDensity == null ? '—' : fmt(r.maskDensity, 3),
];

export function generationMarkdown(rep: GenerationReport): string {
  const head = header(rep.rows);
  const lines = [`# ${rep.title}`, '', `Forgotten class: ${rep.forgetClass}. Device: ${rep.device}. Date: ${rep.date}.`, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rep.rows) lines.push(`| ${cells(r, rep.rows).join(' | ')} |`);
  const sw = generationSweep(rep.rows);
  if (sw) {
    lines.push('', `λ sweep (SFR-on)${sw.rt ? `; RT: FA ${fmt(sw.rt.fa, 1)}, FID ${fmt(sw.rt.fid, 2)}` : ''}:`, '', '| λ | FA (%) | none (%) | FID (in-domain) |', '|---|---|---|---|');
    sw.lambdas.forEach((l, i) => lines.push(`| ${l} | ${fmt(sw.fa[i], 1)} | ${fmt(sw.none[i], 1)} | ${fmt(sw.fid[i], 2)} |`));
  }
  lines.push('', ...rep.notes.map((n) => `- ${n}`), '');
  for (const r of rep.rows) if (r.grid) lines.push(`![${r.method}](${r.grid})`);
  return lines.join('\n') + '\n';
}

export function generationCsv(rep: GenerationReport): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [header(rep.rows).map(q).join(','), ...rep.rows.map((r) => cells(r, rep.rows).map((c) => q(c === '—' ? '' : c)).join(','))].join('\n') + '\n';
}

export function generationJson(rep: GenerationReport): string {
  return JSON.stringify(rep, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function generationHtml(rep: GenerationReport): string {
  const table = `<table><thead><tr>${header(rep.rows).map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rep.rows
    .map((r) => `<tr>${cells(r, rep.rows).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const grids = rep.rows
    .filter((r) => r.grid)
    .map((r) => `<figure><img src="${esc(r.grid!)}" alt="${esc(r.method)} samples"><figcaption>${esc(r.method)}</figcaption></figure>`)
    .join('');
  const sw = generationSweep(rep.rows);
  const ref = (name: string, y: number | undefined) => (y === undefined ? [] : [{ name, y, color: '#444' }]);
  const sweep = sw
    ? `<h2>λ sweep (SFR-on; dashed: RT)</h2><div class="wrap">${linePlot({
        title: 'Forgetting against λ',
        xLabel: 'λ',
        yLabel: '% of generated forgotten-class images',
        series: [
          { name: 'FA', x: sw.lambdas, y: sw.fa },
          ...(sw.none.every((v) => v !== null) ? [{ name: 'none', x: sw.lambdas, y: sw.none as number[] }] : []),
        ],
        refLines: ref('RT FA', sw.rt?.fa),
      })}${linePlot({ title: 'Kept classes against λ', xLabel: 'λ', yLabel: FID_LABEL, series: [{ name: 'FID', x: sw.lambdas, y: sw.fid }], refLines: ref('RT FID', sw.rt?.fid) })}</div>`
    : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(rep.title)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em}img{image-rendering:pixelated;width:200px}
.wrap{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}</style></head><body>
<h1>${esc(rep.title)}</h1><p>Forgotten class: <b>${rep.forgetClass}</b>. Device: ${esc(rep.device)}. Date: ${esc(rep.date)}.</p>
<div class="wrap"><div>${table}<ul>${rep.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></div>
<div><p>Samples: rows = classes, the forgotten class first; columns = seeds (the same seeds for every model).</p>${grids}</div></div>${sweep}</body></html>
`;
}
