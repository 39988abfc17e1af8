// Runs every benchmark script in bench/ one after another (a script is a bench/*.ts file with no
// top-level `export`; helpers such as common.ts export something and are skipped), then rewrites
// their sections of bench/RESULTS.md from what each run printed. It never edits numbers by hand.
//
//   tsx bench/run-all.ts [--quick] [--only matmul,submit] [--no-results]
// Extra flags after `--` are passed to every script.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from './common.js';

const dir = 'bench';
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const args = parseArgs('', dash >= 0 ? argv.slice(0, dash) : argv);
const passThrough = dash >= 0 ? argv.slice(dash + 1) : [];
const only = args.get('only')?.split(',');

const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run-all.ts')
  .filter((f) => !/^export\s/m.test(readFileSync(join(dir, f), 'utf8')))
  .map((f) => basename(f, '.ts'))
  .filter((name) => !only || only.includes(name))
  .sort();
console.log(`benchmarks: ${scripts.join(', ')}`);

const tsx = existsSync('node_modules/.bin/tsx') ? 'node_modules/.bin/tsx' : 'tsx';
const sections = new Map<string, string>();
let failed = 0;
for (const name of scripts) {
  const out = `bench/results/${name}.json`;
  const flags = [...(args.quick ? ['--quick'] : []), '--out', out, ...passThrough];
  const command = `npx tsx bench/${name}.ts ${flags.join(' ')}`;
  console.log(`\n=== ${command}`);
  const date = execFileSync('date', ['-u'], { encoding: 'utf8' }).trim();
  const r = spawnSync(tsx, [join(dir, `${name}.ts`), ...flags], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const stdout = r.stdout ?? '';
  process.stdout.write(stdout);
  if (r.status !== 0) {
    failed++;
    process.stdout.write(r.stderr ?? '');
    console.log(`!!! ${name} exited with ${r.status}`);
    continue;
  }
  const lines = stdout.split('\n');
  const device = lines.find((l) => l.startsWith('device: '))?.slice(8) ?? 'unknown';
  const table = lines.filter((l) => l.startsWith('|')).join('\n');
  sections.set(name, `## ${name}\n\n- date: ${date}\n- device: ${device}\n- command: \`${command}\`\n\n${table}\n`);
}

if (!args.has('no-results') && sections.size) {
  const path = join(dir, 'RESULTS.md');
  const intro =
    '# Benchmark results\n\nWritten by `npx tsx bench/run-all.ts` from what each run printed (one benchmark at a time).\n' +
    'The development machine is shared with other jobs (2 CPU cores, lavapipe): wall-clock figures there\n' +
    'vary from run to run with the load. Raw data: bench/results/*.json.\n';
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '';
  // keep sections of benchmarks not run this time
  const kept = new Map<string, string>();
  for (const part of old.split(/^(?=## )/m).slice(1)) kept.set(part.slice(3, part.indexOf('\n')).trim(), part.trimEnd() + '\n');
  for (const [k, v] of sections) kept.set(k, v);
  writeFileSync(path, `${intro}\n${[...kept.values()].join('\n')}`);
  console.log(`\nwrote ${path}`);
}
process.exit(failed ? 1 : 0);
