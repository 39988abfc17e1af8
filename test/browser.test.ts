// Runs the portable kernel checks (ALL_CHECKS of test/portable/index.ts) in headless Chromium through
// playwright-core: the library is bundled for the browser with esbuild (which also proves the
// browser entry has no Node-only imports), served on 127.0.0.1, and each check becomes a test here.
// TEST_SEED and TEST_CHECK pass to the page as URL parameters (replay a seed, pick checks by name);
// the page's time per check is printed, slowest first (SwiftShader compiles are the cost).
// Skips cleanly when no Chromium is installed (the README's test command installs it on Debian),
// except under CI=true, where a missing Chromium fails.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { ALL_CHECKS } from './portable/index.js';
import { selectChecks } from './portable/harness.js';
import type { CheckResult } from './browser/entry.js';
import { requirePrereq, skipWithout } from './prereq.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

let server: Server | undefined;
let browser: Browser | undefined;
let adapter = '';
const results = new Map<string, CheckResult>();
const CHECKS = selectChecks(ALL_CHECKS, process.env.TEST_CHECK);
const query = new URLSearchParams(
  Object.entries({ TEST_SEED: process.env.TEST_SEED, TEST_CHECK: process.env.TEST_CHECK }).filter((e): e is [string, string] => !!e[1]),
).toString();

describe.skipIf(skipWithout(haveChromium))('portable kernel checks (headless Chromium, WebGPU)', () => {
  beforeAll(async () => {
    requirePrereq(haveChromium, `Chromium at ${CHROMIUM}`);
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL('./browser/entry.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    server = createServer((req, res) => {
      if (req.url === '/bundle.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(js);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><meta charset="utf-8"><title>checks</title><script type="module" src="/bundle.js"></script>');
      }
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/${query ? `?${query}` : ''}`);
    await page.waitForFunction(() => typeof window.runChecks === 'function', undefined, { timeout: 60_000 });
    const out = await page.evaluate(() => window.runChecks());
    adapter = out.adapter;
    for (const r of out.results) results.set(r.name, r);
    const total = out.results.reduce((s, r) => s + r.ms, 0);
    const slowest = [...out.results].sort((a, b) => b.ms - a.ms).slice(0, 15);
    console.log(
      `Chromium (${adapter}): ${out.results.length} checks in ${(total / 1000).toFixed(1)} s; slowest:\n` +
        slowest.map((r) => `  ${(r.ms / 1000).toFixed(2).padStart(7)} s  ${r.name}`).join('\n'),
    );
    if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  for (const c of CHECKS) {
    it(c.name, () => {
      const r = results.get(c.name);
      expect(r, `no result for ${c.name} (adapter ${adapter})`).toBeDefined();
      if (!r!.ok) expect.fail(`${c.name} failed in Chromium (${adapter}): ${r!.error}`);
    });
  }
});
