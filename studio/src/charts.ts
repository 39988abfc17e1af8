// Inline SVG charts for the page: a line chart redrawn as training points arrive, and a grouped bar
// chart (gaps to RT, kernel throughput). Pure string building, no DOM access and no library; the
// report's static charts (src/unlearn/report.ts) stay separate because they draw markers per point.

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

const f1 = (v: number) => v.toFixed(1);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** short label text: up to 3 significant decimals */
export function short(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return Number(v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3)).toString();
}

/** "nice" ticks (steps 1, 2, 2.5, 5 x 10^k) covering [lo, hi] */
export function ticks(lo: number, hi: number, count = 4): number[] {
  if (!(hi > lo)) [lo, hi] = [lo - 1, lo + 1];
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

export interface Series {
  name: string;
  x: number[];
  y: number[];
  color?: string;
  dashed?: boolean;
  /** false: drawn without a legend entry (reference lines) */
  legend?: boolean;
}

/** A line chart; y range from the data unless `yRange` is given. */
export function lineChart(spec: { title: string; xLabel: string; series: Series[]; yRange?: [number, number]; width?: number; height?: number }): string {
  const W = spec.width ?? 420;
  const H = spec.height ?? 220;
  const m = { l: 48, r: 12, t: 26, b: 36 };
  const xs = spec.series.flatMap((s) => s.x);
  const ys = spec.series.flatMap((s) => s.y).filter(Number.isFinite);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">`];
  out.push(`<text x="${W / 2}" y="16" class="ct" text-anchor="middle">${esc(spec.title)}</text>`);
  if (xs.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" class="cm" text-anchor="middle">no data yet</text></svg>`);
    return out.join('');
  }
  const xt = ticks(0, Math.max(...xs, 1e-9));
  const yt = spec.yRange ? ticks(...spec.yRange) : ticks(Math.min(...ys), Math.max(...ys));
  const X = (v: number) => m.l + ((v - xt[0]!) / (xt.at(-1)! - xt[0]! || 1)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((v - yt[0]!) / (yt.at(-1)! - yt[0]! || 1)) * (H - m.t - m.b);
  for (const v of yt) out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" class="cg"/><text x="${m.l - 5}" y="${f1(Y(v) + 4)}" class="ck" text-anchor="end">${short(v)}</text>`);
  for (const v of xt) out.push(`<text x="${f1(X(v))}" y="${H - m.b + 14}" class="ck" text-anchor="middle">${short(v)}</text>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" class="ck" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  let slot = 0;
  spec.series.forEach((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length]!;
    const pts = s.x.map((x, k) => (Number.isFinite(s.y[k]) ? `${f1(X(x))},${f1(Y(s.y[k]!))}` : '')).filter(Boolean).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    if (s.x.length === 1) out.push(`<circle cx="${f1(X(s.x[0]!))}" cy="${f1(Y(s.y[0]!))}" r="3" fill="${color}"/>`);
    if (s.legend === false) return;
    out.push(`<rect x="${m.l + 8 + slot * 110}" y="${m.t + 2}" width="10" height="3" fill="${color}"/><text x="${m.l + 22 + slot * 110}" y="${m.t + 7}" class="ck">${esc(s.name)}</text>`);
    slot++;
  });
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" class="ca"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" class="ca"/></svg>`);
  return out.join('');
}

/** Grouped bars, one group per category, one bar per series; negative values grow downwards. */
export function barChart(spec: { title: string; categories: string[]; series: { name: string; values: number[]; color?: string }[]; yLabel: string; width?: number; height?: number }): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 260;
  const m = { l: 52, r: 12, t: 40, b: 48 };
  const vals = spec.series.flatMap((s) => s.values).filter(Number.isFinite);
  const yt = ticks(Math.min(0, ...vals), Math.max(0, ...vals, 1e-9));
  const Y = (v: number) => H - m.b - ((v - yt[0]!) / (yt.at(-1)! - yt[0]! || 1)) * (H - m.t - m.b);
  const band = (W - m.l - m.r) / Math.max(1, spec.categories.length);
  const bw = (band * 0.8) / Math.max(1, spec.series.length);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">`];
  out.push(`<text x="${W / 2}" y="16" class="ct" text-anchor="middle">${esc(spec.title)}</text>`);
  for (const v of yt) out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" class="cg"/><text x="${m.l - 5}" y="${f1(Y(v) + 4)}" class="ck" text-anchor="end">${short(v)}</text>`);
  out.push(`<text x="14" y="${(m.t + H - m.b) / 2}" class="ck" text-anchor="middle" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">${esc(spec.yLabel)}</text>`);
  spec.categories.forEach((c, i) => out.push(`<text x="${f1(m.l + band * (i + 0.5))}" y="${H - m.b + 15}" class="ck" text-anchor="middle">${esc(c)}</text>`));
  spec.series.forEach((s, j) => {
    const color = s.color ?? COLORS[j % COLORS.length]!;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const x = m.l + band * i + band * 0.1 + bw * j;
      const y0 = Y(0);
      const y1 = Y(v);
      out.push(`<rect x="${f1(x)}" y="${f1(Math.min(y0, y1))}" width="${f1(Math.max(1, bw - 1))}" height="${f1(Math.max(0.5, Math.abs(y1 - y0)))}" fill="${color}"><title>${esc(s.name)}, ${esc(spec.categories[i]!)}: ${short(v)}</title></rect>`);
    });
    out.push(`<rect x="${m.l + 4 + j * 96}" y="${24}" width="10" height="10" fill="${color}"/><text x="${m.l + 18 + j * 96}" y="${33}" class="ck">${esc(s.name)}</text>`);
  });
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f1(Y(0))}" y2="${f1(Y(0))}" class="ca"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" class="ca"/></svg>`);
  return out.join('');
}
