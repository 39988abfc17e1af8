// Node file output of an unlearning report: report.md, report.csv, report.json and report.html in
// one directory, each written atomically. Node-only; the content is built by report.ts.

import { join } from 'node:path';
import { toCsv, toHtml, toJson, toMarkdown, type MethodResult, type ReportOptions } from './report.js';
import { writeFileAtomic } from '../../io/atomic-node.js';

/** Paths of the files writeReport produced. */
export interface ReportFiles {
  markdown: string;
  csv: string;
  json: string;
  html: string;
}

/**
 * Write the four report files into `dir` (created if missing), named `${basename}.{md,csv,json,html}`
 * (basename defaults to 'report'). Each file is replaced atomically.
 */
export async function writeReport(dir: string, results: readonly MethodResult[], opts: ReportOptions & { basename?: string } = {}): Promise<ReportFiles> {
  const base = opts.basename ?? 'report';
  // build everything first so a bad input writes nothing
  const content = { markdown: toMarkdown(results, opts), csv: toCsv(results), json: toJson(results, opts), html: toHtml(results, opts) };
  const files: ReportFiles = {
    markdown: join(dir, `${base}.md`),
    csv: join(dir, `${base}.csv`),
    json: join(dir, `${base}.json`),
    html: join(dir, `${base}.html`),
  };
  for (const k of Object.keys(files) as (keyof ReportFiles)[]) await writeFileAtomic(files[k], content[k]);
  return files;
}
