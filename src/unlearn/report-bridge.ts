// placeholder until report.ts lands
import type { ExperimentResult } from './experiment-node.js';
export function markdownTable(r: ExperimentResult): string {
  const f = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
  const rows = r.rows.map((m) => `| ${m.method} | ${f(m.FA)} | ${f(m.RA)} | ${f(m.TA)} | ${f(m.MIA_entropy)} | ${f(m.MIA_svc)} | ${f(m.avgGap)} | ${f(m.kl, 4)} | ${f(m.rteMinutes, 2)} |`);
  return ['| method | FA | RA | TA | MIA | MIA-eff | Avg.D | D_KL | RTE |', '|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}
export async function writeReport(_r: ExperimentResult, _out: string): Promise<string[]> { return []; }
