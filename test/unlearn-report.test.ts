// Report output: paper-layout Markdown table, parseable CSV, JSON, self-contained HTML with inline
// SVG plots holding the numbers, nice ticks, and the atomic file writer. CPU only.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { barChart, gapsToReference, linePlot, niceTicks, toCsv, toHtml, toJson, toMarkdown, type MethodResult } from '../src/unlearn/classification/report.js';
import { writeReport } from '../src/unlearn/classification/report-node.js';

const results: (MethodResult & { note?: string })[] = [
  { method: 'RT', FA: 94.52, RA: 100, TA: 94.39, MIA_entropy: 12.76, MIA_svc: 13.2, avgGap: 0, kl: 0, js: 0, rteMinutes: 95.3 },
  { method: 'FT', FA: 98.97, RA: 99.81, TA: 93.82, MIA_entropy: 3.2, MIA_svc: 4.5, avgGap: 3.75, kl: 0.1234, js: 0.021, rteMinutes: 2.4 },
  { method: 'SFR-on, λ=0.5', FA: 94.9, RA: 99.9, TA: 93.9, MIA_entropy: 11.9, MIA_svc: 12.5, avgGap: 0.45, kl: 0.031, js: 0.007, rteMinutes: 1.2, note: 'say "hi" <b>' },
];
const lambdas = [0, 0.25, 0.5, 1];
const sweep = { lambdas, FA: [99, 97.5, 96, 94.2], RA: [99.9, 99.8, 99.8, 99.7], TA: [94, 93.9, 93.8, 93.5], kl: [0.1, 0.07, 0.05, 0.06], rt: { FA: 94.52, RA: 100, TA: 94.39 } };

/** minimal RFC 4180 parser (quotes, doubled quotes, commas and newlines inside quotes) */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (q) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else cell += c;
  }
  expect(q).toBe(false);
  return rows;
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('report', () => {
  it('gaps are |method − RT| with RT as row 0', () => {
    const g = gapsToReference(results);
    expect(g[0]).toEqual({ FA: 0, RA: 0, TA: 0, MIA_entropy: 0, MIA_svc: 0 });
    expect(g[1]!.FA).toBeCloseTo(4.45, 10);
    expect(g[1]!.MIA_entropy).toBeCloseTo(9.56, 10);
  });

  it('Markdown: paper layout, RT first, "value (gap)" cells, extras appended, pipes escaped', () => {
    const md = toMarkdown(results, { title: 'CIFAR-10', notes: ['seed 1'] });
    const lines = md.split('\n').filter((l) => l.startsWith('|'));
    expect(lines[0]).toBe('| Method | FA | RA | TA | MIA (entropy) | MIA-eff. (SVC) | Avg.D | D_KL | JS | RTE (min) | note |');
    expect(lines[1]).toMatch(/^\| :--- \| ---: /);
    expect(lines[2]).toBe('| RT | 94.52 | 100.00 | 94.39 | 12.76 | 13.20 | 0.00 | 0.0000 | 0.0000 | 95.30 |  |');
    expect(lines[3]).toBe('| FT | 98.97 (4.45) | 99.81 (0.19) | 93.82 (0.57) | 3.20 (9.56) | 4.50 (8.70) | 3.75 | 0.1234 | 0.0210 | 2.40 |  |');
    expect(lines[4]).toContain('| SFR-on, λ=0.5 | 94.90 (0.38) |');
    expect(lines[4]).toContain('say "hi" <b>');
    expect(md).toMatch(/^## CIFAR-10/);
    expect(toMarkdown([{ ...results[0]!, method: 'a|b' }])).toContain('| a\\|b |');
    // optional numbers (e.g. D_KL of RT to itself) may be absent: '-' in the table, empty in CSV
    const noKl = [{ ...results[0]!, kl: undefined, js: undefined, avgGap: undefined }, results[1]!];
    expect(toMarkdown(noKl).split('\n')[2]).toBe('| RT | 94.52 | 100.00 | 94.39 | 12.76 | 13.20 | - | - | - | 95.30 |');
    expect(parseCsv(toCsv(noKl))[1]!.slice(6, 9)).toEqual(['', '', '']);
  });

  it('CSV parses back to the full-precision numbers, with quoting', () => {
    const rows = parseCsv(toCsv(results));
    expect(rows.length).toBe(4);
    expect(rows[0]!.slice(0, 10)).toEqual(['method', 'FA', 'RA', 'TA', 'MIA_entropy', 'MIA_svc', 'avgGap', 'kl', 'js', 'rteMinutes']);
    expect(rows[0]).toContain('gap_FA');
    expect(rows[0]![rows[0]!.length - 1]).toBe('note');
    expect(rows.every((r) => r.length === rows[0]!.length)).toBe(true);
    expect(rows[3]![0]).toBe('SFR-on, λ=0.5');
    expect(rows[3]![rows[3]!.length - 1]).toBe('say "hi" <b>');
    expect(Number(rows[2]![rows[0]!.indexOf('kl')])).toBe(0.1234);
    expect(Number(rows[2]![rows[0]!.indexOf('gap_FA')])).toBeCloseTo(4.45, 10);
  });

  it('JSON holds the rows, gaps and sweep', () => {
    const j = JSON.parse(toJson(results, { sweep, title: 't' }));
    expect(j.reference).toBe('RT');
    expect(j.rows[1].FA).toBe(98.97);
    expect(j.rows[1].gaps.FA).toBeCloseTo(4.45, 10);
    expect(j.sweep.lambdas).toEqual(lambdas);
    expect(j.columns).toContain('note');
  });

  it('HTML: self-contained, table numbers, escaped text, sweep and gap SVGs', () => {
    const html = toHtml(results, { title: 'Results <1>', sweep });
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script|<link|src=|href=|url\(/);
    expect(html).toContain('<title>Results &lt;1&gt;</title>');
    expect(html).toContain('<td>98.97 (4.45)</td>');
    expect(html).toContain('say &quot;hi&quot; &lt;b&gt;');
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g)!;
    expect(svgs.length).toBe(2 + 2); // two sweep plots, one gap chart per non-RT method
    expect(svgs[0]).toContain('Accuracy vs λ');
    expect(svgs[0]).toContain('stroke-dasharray'); // RT reference lines
    expect(svgs[0]).toContain('RT FA');
    expect(svgs[1]).toContain('D_KL');
    expect(svgs[2]).toContain('>FT<');
    expect(svgs[2]).toContain('>4.45<'); // FT's FA gap as a bar label
    expect(svgs[2]).toContain('>-9.56<');
    expect(toHtml(results)).not.toContain('λ sweep'); // no sweep given
    expect(() => toHtml(results, { sweep: { ...sweep, kl: [1] } })).toThrow(/sweep.kl has 1 values/);
  });

  it('plots: ticks are nice and cover the data; bad input throws', () => {
    expect(niceTicks(92, 100)).toEqual([92, 94, 96, 98, 100]);
    expect(niceTicks(0, 0.1)).toEqual([0, 0.02, 0.04, 0.06, 0.08, 0.1]);
    expect(niceTicks(-11.66, 4.7)).toEqual([-15, -10, -5, 0, 5]);
    const t = niceTicks(3, 3);
    expect(t[0]!).toBeLessThan(3);
    expect(t[t.length - 1]!).toBeGreaterThan(3);
    const svg = linePlot({ title: 'x', xLabel: 'a', yLabel: 'b', series: [{ name: 's', x: [0, 1], y: [1, 2] }] });
    expect(svg.match(/<circle/g)!.length).toBe(2);
    expect(() => linePlot({ title: 'x', xLabel: 'a', yLabel: 'b', series: [{ name: 's', x: [0, 1], y: [1] }] })).toThrow(/series s/);
    const bars = barChart({ title: 'g', categories: ['a', 'b'], series: [{ name: 'm', values: [1, -2] }, { name: 'n', values: [0.5, 3] }], yLabel: 'v' });
    expect(bars.match(/<rect/g)!.length).toBe(4 + 2); // bars + legend swatches
    expect(() => barChart({ title: 'g', categories: ['a'], series: [{ name: 'm', values: [1, 2] }], yLabel: 'v' })).toThrow(/2 values for 1/);
    expect(() => toMarkdown([])).toThrow(/no results/);
    expect(() => toMarkdown([{ ...results[0]!, FA: undefined as unknown as number }])).toThrow(/FA is undefined/);
  });

  it('writeReport writes the four files atomically into a new directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'report-'));
    dirs.push(dir);
    const out = join(dir, 'run1');
    const files = await writeReport(out, results, { sweep, title: 'run1' });
    await writeReport(out, results, { sweep, title: 'run1' }); // overwrite leaves no temp files
    expect((await readdir(out)).sort()).toEqual(['report.csv', 'report.html', 'report.json', 'report.md']);
    expect(await readFile(files.markdown, 'utf8')).toBe(toMarkdown(results, { sweep, title: 'run1' }));
    expect(await readFile(files.html, 'utf8')).toContain('<svg');
    await expect(writeReport(join(dir, 'bad'), [])).rejects.toThrow(/no results/);
    await expect(readdir(join(dir, 'bad'))).rejects.toThrow(); // nothing written on bad input
  });
});
