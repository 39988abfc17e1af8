// Result tables and plots for an unlearning comparison (spec §6, §8): the paper-layout table as
// Markdown / CSV / JSON, and a self-contained HTML page (inline SVG line and bar charts, no scripts,
// no external assets). Pure string building, browser-safe; writing files is in report-node.ts.

import { EngineError } from '../../util/errors.js';

/** One row of the comparison; percentages for FA/RA/TA/MIA, nats for kl/js, minutes for RTE. */
export interface MethodResult {
  method: string;
  FA: number;
  RA: number;
  TA: number;
  /** MIA, SFR-on form (entropy + logistic regression): % of D_f predicted member */
  MIA_entropy: number;
  /** MIA-efficacy, SalUn form (confidence + RBF SVC): % of D_f predicted non-member */
  MIA_svc: number;
  /** Avg.D (see metrics.avgGap); the optional numbers show as '-' when absent (e.g. kl of RT itself) */
  avgGap?: number;
  kl?: number;
  js?: number;
  rteMinutes: number;
  // Any further own properties (numbers or short strings; e.g. steps, maskDensity) become extra
  // columns in first-seen order. No index signature, so plain interfaces extending this fit.
}

/** FA, RA, TA and D_KL of SFR-on for each λ, with RT's values as the reference (spec §8). */
export interface LambdaSweep {
  lambdas: number[];
  FA: number[];
  RA: number[];
  TA: number[];
  kl: number[];
  rt: { FA: number; RA: number; TA: number; kl?: number };
}

export interface ReportOptions {
  title?: string;
  /** free-text lines shown under the title (device, dataset, seeds ...) */
  notes?: string[];
  sweep?: LambdaSweep;
}

const BASE_COLUMNS = ['method', 'FA', 'RA', 'TA', 'MIA_entropy', 'MIA_svc', 'avgGap', 'kl', 'js', 'rteMinutes'] as const;
/** the columns shown as "value (|gap to RT|)" */
const GAP_COLUMNS = ['FA', 'RA', 'TA', 'MIA_entropy', 'MIA_svc'] as const;
const HEADERS: Record<string, string> = {
  method: 'Method',
  FA: 'FA',
  RA: 'RA',
  TA: 'TA',
  MIA_entropy: 'MIA (entropy)',
  MIA_svc: 'MIA-eff. (SVC)',
  avgGap: 'Avg.D',
  kl: 'D_KL',
  js: 'JS',
  rteMinutes: 'RTE (min)',
};
const DIGITS: Record<string, number> = { kl: 4, js: 4 };
const OPTIONAL = new Set(['avgGap', 'kl', 'js']);

/** |value − RT| for each gap column, per row. RT (row 0) gets zeros. */
export function gapsToReference(results: readonly MethodResult[]): Record<string, number>[] {
  checkResults(results);
  const rt = results[0]!;
  return results.map((r) => Object.fromEntries(GAP_COLUMNS.map((k) => [k, Math.abs(r[k] - rt[k])])));
}

/** The paper-layout table (RT first; metric cells "value (gap)") as GitHub Markdown. */
export function toMarkdown(results: readonly MethodResult[], opts: ReportOptions = {}): string {
  const { header, rows } = displayTable(results);
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const out: string[] = [];
  if (opts.title) out.push(`## ${opts.title}`, '');
  for (const n of opts.notes ?? []) out.push(`${n}  `);
  if (opts.notes?.length) out.push('');
  out.push(line(header), `| ${header.map((_, i) => (i === 0 ? ':---' : '---:')).join(' | ')} |`);
  for (const r of rows) out.push(line(r));
  out.push('', `Gaps in parentheses are |method − ${results[0]!.method}|. MIA (entropy): % of D_f predicted member; MIA-eff. (SVC): % predicted non-member. D_KL, JS in nats.`);
  return out.join('\n') + '\n';
}

/** Machine-readable CSV (RFC 4180 quoting): raw numbers at full precision, then gap_* columns. */
export function toCsv(results: readonly MethodResult[]): string {
  const extras = extraColumns(results);
  const gaps = gapsToReference(results);
  const header = [...BASE_COLUMNS, ...GAP_COLUMNS.map((k) => `gap_${k}`), ...extras];
  const lines = [header.map(csvCell).join(',')];
  results.forEach((r, i) => {
    const cells = [...BASE_COLUMNS.map((k) => r[k]), ...GAP_COLUMNS.map((k) => gaps[i]![k]), ...extras.map((k) => extra(r, k))];
    lines.push(cells.map((v) => csvCell(v ?? '')).join(','));
  });
  return lines.join('\n') + '\n';
}

/** JSON: { title, reference, columns, rows (each with its gaps), sweep }. */
export function toJson(results: readonly MethodResult[], opts: ReportOptions = {}): string {
  const gaps = gapsToReference(results);
  const obj = {
    title: opts.title ?? null,
    notes: opts.notes ?? [],
    reference: results[0]!.method,
    columns: [...BASE_COLUMNS, ...extraColumns(results)],
    rows: results.map((r, i) => ({ ...r, gaps: gaps[i] })),
    sweep: opts.sweep ?? null,
  };
  return JSON.stringify(obj, null, 2) + '\n';
}

/**
 * A self-contained HTML page: the table, the λ sweep (if given: accuracies and D_KL against λ with
 * RT as dashed reference lines) and, per method, a bar chart of its signed gap to RT per metric.
 */
export function toHtml(results: readonly MethodResult[], opts: ReportOptions = {}): string {
  const { header, rows } = displayTable(results);
  const title = opts.title ?? 'Unlearning results';
  const rt = results[0]!;
  const parts: string[] = [];
  parts.push(`<h1>${esc(title)}</h1>`);
  for (const n of opts.notes ?? []) parts.push(`<p class="note">${esc(n)}</p>`);
  parts.push('<table>', `<tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`);
  for (const r of rows) parts.push(`<tr>${r.map((c, i) => (i === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`);
  parts.push('</table>');
  parts.push(`<p class="note">Gaps in parentheses are |method − ${esc(rt.method)}|. MIA (entropy): % of D_f predicted member; MIA-eff. (SVC): % predicted non-member. D_KL, JS in nats.</p>`);

  if (opts.sweep) {
    const s = opts.sweep;
    checkSweep(s);
    parts.push('<h2>λ sweep (dashed: RT)</h2>', '<div class="row">');
    const acc = (['FA', 'RA', 'TA'] as const).map((k, i) => ({ name: k, x: s.lambdas, y: s[k], color: PALETTE[i]! }));
    parts.push(
      linePlot({
        title: 'Accuracy vs λ',
        xLabel: 'λ',
        yLabel: 'accuracy (%)',
        series: acc,
        refLines: (['FA', 'RA', 'TA'] as const).map((k, i) => ({ name: `RT ${k}`, y: s.rt[k], color: PALETTE[i]! })),
      }),
    );
    parts.push(
      linePlot({
        title: 'D_KL to RT vs λ',
        xLabel: 'λ',
        yLabel: 'D_KL (nats)',
        series: [{ name: 'D_KL', x: s.lambdas, y: s.kl, color: PALETTE[3]! }],
        refLines: [{ name: 'RT', y: s.rt.kl ?? 0, color: PALETTE[3]! }],
      }),
    );
    parts.push('</div>');
  }

  if (results.length > 1) {
    parts.push(`<h2>Gap to ${esc(rt.method)} per metric (method − ${esc(rt.method)}, percentage points)</h2>`, '<div class="row">');
    const labels = GAP_COLUMNS.map((k) => HEADERS[k]!);
    // a method that failed (NaN metrics) keeps its table row but gets no chart
    const charted = results.slice(1).filter((r) => GAP_COLUMNS.every((k) => Number.isFinite(r[k] - rt[k])));
    const lim = Math.max(1, ...charted.flatMap((r) => GAP_COLUMNS.map((k) => Math.abs(r[k] - rt[k]))));
    for (const r of charted) {
      parts.push(
        barChart({
          title: r.method,
          categories: labels,
          series: [{ name: r.method, values: GAP_COLUMNS.map((k) => r[k] - rt[k]) }],
          yLabel: 'gap (pp)',
          yRange: [-lim, lim],
          width: 380,
          height: 280,
        }),
      );
    }
    parts.push('</div>');
  }

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: right; white-space: nowrap; }
tr:first-child th { background: #eee; text-align: center; }
tr:nth-child(2) { background: #f4f8ff; }
.note { color: #555; font-size: 13px; margin: 4px 0; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
svg { background: #fff; border: 1px solid #ddd; }
</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}

// ---------------------------------------------------------------- SVG plots

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

export interface LinePlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; x: number[]; y: number[]; color?: string }[];
  /** horizontal dashed reference lines (e.g. RT's value) */
  refLines?: { name: string; y: number; color?: string }[];
  width?: number;
  height?: number;
}

/** An SVG line chart with markers, axes, nice ticks, axis labels, legend and dashed reference lines. */
export function linePlot(spec: LinePlotSpec): string {
  const W = spec.width ?? 520;
  const H = spec.height ?? 340;
  const m = { l: 64, r: 130, t: 34, b: 52 };
  const xs = spec.series.flatMap((s) => s.x);
  const ys = [...spec.series.flatMap((s) => s.y), ...(spec.refLines ?? []).map((r) => r.y)].filter(Number.isFinite);
  if (xs.length === 0) throw new EngineError('linePlot', 'no data');
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  const yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const X = scale(xt[0]!, xt[xt.length - 1]!, m.l, W - m.r);
  const Y = scale(yt[0]!, yt[yt.length - 1]!, H - m.b, m.t);
  const out: string[] = [svgOpen(W, H, spec.title), axes(W, H, m, xt, yt, X, Y, spec.xLabel, spec.yLabel)];
  const legend: { name: string; color: string; dashed: boolean }[] = [];
  (spec.refLines ?? []).forEach((r, i) => {
    const color = r.color ?? PALETTE[i % PALETTE.length]!;
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f(Y(r.y))}" y2="${f(Y(r.y))}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4" opacity="0.8"><title>${esc(r.name)}: ${fmt(r.y)}</title></line>`);
    legend.push({ name: r.name, color, dashed: true });
  });
  spec.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    if (s.x.length !== s.y.length) throw new EngineError('linePlot', `series ${s.name}: ${s.x.length} x values, ${s.y.length} y values`);
    const pts = s.x.map((x, k) => `${f(X(x))},${f(Y(s.y[k]!))}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    s.x.forEach((x, k) => out.push(`<circle cx="${f(X(x))}" cy="${f(Y(s.y[k]!))}" r="3.5" fill="${color}"><title>${esc(s.name)} λ=${fmt(x)}: ${fmt(s.y[k]!)}</title></circle>`));
    legend.push({ name: s.name, color, dashed: false });
  });
  // legend: series first, then reference lines
  legend.sort((a, b) => Number(a.dashed) - Number(b.dashed));
  legend.forEach((e, i) => {
    const y = m.t + 8 + i * 18;
    const x = W - m.r + 14;
    out.push(`<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${e.color}" stroke-width="2"${e.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 28}" y="${y + 4}" font-size="12">${esc(e.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface BarChartSpec {
  title: string;
  categories: string[];
  /** one bar per category per series (grouped); values may be negative */
  series: { name: string; values: number[]; color?: string }[];
  yLabel: string;
  /** fixed value range (e.g. to share a scale across charts); default from the data, including 0 */
  yRange?: [number, number];
  width?: number;
  height?: number;
}

/** An SVG grouped bar chart with a zero line, value labels on the bars, axes and ticks. */
export function barChart(spec: BarChartSpec): string {
  const W = spec.width ?? 480;
  const H = spec.height ?? 300;
  const m = { l: 58, r: 16, t: 34, b: 56 };
  const nC = spec.categories.length;
  const nS = spec.series.length;
  if (nC === 0 || nS === 0) throw new EngineError('barChart', 'no data');
  for (const s of spec.series) if (s.values.length !== nC) throw new EngineError('barChart', `series ${s.name} has ${s.values.length} values for ${nC} categories`);
  const vals = spec.series.flatMap((s) => s.values).filter(Number.isFinite);
  const [lo, hi] = spec.yRange ?? [Math.min(0, ...vals), Math.max(0, ...vals)];
  const yt = niceTicks(Math.min(lo, 0), Math.max(hi, 0));
  const Y = scale(yt[0]!, yt[yt.length - 1]!, H - m.b, m.t);
  const band = (W - m.l - m.r) / nC;
  const barW = (band * 0.7) / nS;
  const out: string[] = [svgOpen(W, H, spec.title)];
  out.push(axes(W, H, m, null, yt, null, Y, '', spec.yLabel));
  // category labels, broken at spaces onto a second line when wider than their band (~6.5 px/char)
  spec.categories.forEach((c, i) => {
    const x = f(m.l + band * (i + 0.5));
    const lines = c.length * 6.5 > band * 0.95 && c.includes(' ') ? [c.slice(0, c.indexOf(' ')), c.slice(c.indexOf(' ') + 1)] : [c];
    lines.forEach((t, k) => out.push(`<text x="${x}" y="${H - m.b + 18 + 14 * k}" font-size="12" text-anchor="middle">${esc(t)}</text>`));
  });
  spec.series.forEach((s, j) => {
    const color = s.color ?? PALETTE[j % PALETTE.length]!;
    s.values.forEach((v, i) => {
      const x = m.l + band * i + band * 0.15 + barW * j;
      const y0 = Y(0);
      const y1 = Y(v);
      const neg = v < 0;
      out.push(`<rect x="${f(x)}" y="${f(Math.min(y0, y1))}" width="${f(barW)}" height="${f(Math.abs(y1 - y0))}" fill="${neg ? shade(color) : color}"><title>${esc(s.name)} ${esc(spec.categories[i]!)}: ${fmt(v)}</title></rect>`);
      out.push(`<text x="${f(x + barW / 2)}" y="${f(neg ? y1 + 13 : y1 - 4)}" font-size="11" text-anchor="middle">${fmt(v)}</text>`);
    });
  });
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f(Y(0))}" y2="${f(Y(0))}" stroke="#333" stroke-width="1"/>`);
  if (nS > 1) {
    spec.series.forEach((s, j) => {
      const x = m.l + 8 + j * 110;
      out.push(`<rect x="${x}" y="${H - 18}" width="12" height="10" fill="${s.color ?? PALETTE[j % PALETTE.length]!}"/><text x="${x + 16}" y="${H - 9}" font-size="12">${esc(s.name)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Evenly spaced "nice" ticks (steps 1, 2, 2.5, 5 × 10^k) covering [lo, hi]; about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new EngineError('niceTicks', `range [${lo}, ${hi}] is not finite`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * p).find((s) => s >= raw)!;
  const start = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v < hi + step * (1 - 1e-9); v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

// ---------------------------------------------------------------- helpers

function checkResults(results: readonly MethodResult[]): void {
  if (results.length === 0) throw new EngineError('report', 'no results');
  results.forEach((r, i) => {
    if (typeof r.method !== 'string' || r.method.length === 0) throw new EngineError('report', `row ${i} has no method name`);
    for (const k of BASE_COLUMNS) {
      if (OPTIONAL.has(k) && (r[k] === undefined || r[k] === null)) continue;
      if (k !== 'method' && typeof r[k] !== 'number') throw new EngineError('report', `row ${i} (${r.method}): ${k} is ${String(r[k])}, expected a number`);
    }
  });
}

function checkSweep(s: LambdaSweep): void {
  for (const k of ['FA', 'RA', 'TA', 'kl'] as const) {
    if (s[k].length !== s.lambdas.length) throw new EngineError('report', `sweep.${k} has ${s[k].length} values for ${s.lambdas.length} lambdas`);
  }
}

function extraColumns(results: readonly MethodResult[]): string[] {
  const base = new Set<string>(BASE_COLUMNS);
  const seen: string[] = [];
  for (const r of results) for (const k of Object.keys(r)) if (!base.has(k) && !seen.includes(k)) seen.push(k);
  return seen;
}

/** header and formatted cells of the paper-layout table */
function displayTable(results: readonly MethodResult[]): { header: string[]; rows: string[][] } {
  checkResults(results);
  const extras = extraColumns(results);
  const gaps = gapsToReference(results);
  const header = [...BASE_COLUMNS.map((k) => HEADERS[k]!), ...extras];
  const rows = results.map((r, i) => [
    ...BASE_COLUMNS.map((k) => {
      if (k === 'method') return r.method;
      const v = r[k];
      if (v === undefined || v === null || Number.isNaN(v)) return '-';
      const text = v.toFixed(DIGITS[k] ?? 2);
      return i > 0 && (GAP_COLUMNS as readonly string[]).includes(k) ? `${text} (${gaps[i]![k]!.toFixed(2)})` : text;
    }),
    ...extras.map((k) => {
      const v = extra(r, k);
      return v === undefined || v === null ? '' : typeof v === 'number' ? fmt(v) : String(v);
    }),
  ]);
  return { header, rows };
}

function extra(r: MethodResult, k: string): unknown {
  return (r as unknown as Record<string, unknown>)[k];
}

function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** short number text for labels: up to 4 significant decimals, no trailing zeros */
function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  const d = a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 2 : a >= 0.01 ? 3 : 4;
  return Number(v.toFixed(d)).toString();
}

function f(v: number): string {
  return v.toFixed(1);
}

function scale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  return (v) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0);
}

/** a darker variant of a #rrggbb colour, for negative bars */
function shade(hex: string): string {
  const n = parseInt(hex.slice(1), 16);
  const c = (s: number) => Math.round(((n >> s) & 255) * 0.6);
  return `rgb(${c(16)},${c(8)},${c(0)})`;
}

function svgOpen(W: number, H: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" role="img" aria-label="${esc(title)}">
<text x="${W / 2}" y="20" font-size="15" font-weight="600" text-anchor="middle">${esc(title)}</text>`;
}

/** frame, grid, ticks and labels; xt/X null for a categorical x axis */
function axes(
  W: number,
  H: number,
  m: { l: number; r: number; t: number; b: number },
  xt: number[] | null,
  yt: number[],
  X: ((v: number) => number) | null,
  Y: (v: number) => number,
  xLabel: string,
  yLabel: string,
): string {
  const out: string[] = [];
  for (const v of yt) {
    const y = f(Y(v));
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<line x1="${m.l - 5}" x2="${m.l}" y1="${y}" y2="${y}" stroke="#333"/>`);
    out.push(`<text x="${m.l - 8}" y="${Number(y) + 4}" font-size="11" text-anchor="end">${fmt(v)}</text>`);
  }
  if (xt && X) {
    for (const v of xt) {
      const x = f(X(v));
      out.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${H - m.b}" stroke="#f0f0f0"/>`);
      out.push(`<line x1="${x}" x2="${x}" y1="${H - m.b}" y2="${H - m.b + 5}" stroke="#333"/>`);
      out.push(`<text x="${x}" y="${H - m.b + 18}" font-size="11" text-anchor="middle">${fmt(v)}</text>`);
    }
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  if (xLabel) out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" font-size="13" text-anchor="middle">${esc(xLabel)}</text>`);
  const cy = (m.t + H - m.b) / 2;
  out.push(`<text x="16" y="${cy}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${cy})">${esc(yLabel)}</text>`);
  return out.join('\n');
}
