// JPEG/PNG decoding against PIL, bit for bit: the committed fixtures of scripts/make_image_fixtures.py
// (PIL-written JPEGs at several qualities and subsamplings, greyscale, progressive; PNGs) and PIL's own
// decoded pixels, checked in Node and (when Chromium is installed) in the browser with the WASM decoder
// bundled by esbuild. Plus the clear errors for unsupported and corrupt files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { jpegInfo, pngInfo, type DecodedImage } from '../src/data/image-decode.js';
import { jpegWasmFile, nodeImageDecoder, nodeJpegDecoder } from '../src/data/image-folder-node.js';
import { requirePrereq, skipWithout } from './prereq.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'images');
const expected = JSON.parse(readFileSync(path.join(FIX, 'pil_pixels.json'), 'utf8')) as {
  files: Record<string, { mode: 'L' | 'RGB'; width: number; height: number; pixels: string }>;
};
const names = Object.keys(expected.files);
const read = (f: string) => new Uint8Array(readFileSync(path.join(FIX, f)));

/** The first pixel/channel where `img` differs from PIL's pixels, or null when identical. */
function firstDifference(name: string, img: { width: number; height: number; channels: number; pixelStride: number; data: ArrayLike<number> }): string | null {
  const e = expected.files[name]!;
  const C = e.mode === 'L' ? 1 : 3;
  if (img.width !== e.width || img.height !== e.height || img.channels !== C)
    return `${name}: ${img.width}x${img.height}x${img.channels}, PIL ${e.width}x${e.height}x${C}`;
  const px = Buffer.from(e.pixels, 'base64');
  for (let p = 0; p < e.width * e.height; p++)
    for (let c = 0; c < C; c++)
      if (img.data[p * img.pixelStride + c] !== px[p * C + c]) return `${name}: pixel ${p} channel ${c}: ${img.data[p * img.pixelStride + c]}, PIL ${px[p * C + c]}`;
  return null;
}

describe('image decoding matches PIL bit for bit', () => {
  it('fixtures cover 4:4:4, 4:2:2, 4:2:0, greyscale, progressive JPEGs and grey/RGB/palette/RGBA PNGs', () => {
    const kinds = names.map((n) => {
      const b = read(n);
      return n.endsWith('.png') ? `png${pngInfo(b, n).colorType}` : `jpeg${jpegInfo(b, n).components}-${jpegInfo(b, n).sof.toString(16)}`;
    });
    expect(new Set(kinds)).toEqual(new Set(['png0', 'png2', 'png3', 'png6', 'jpeg1-c0', 'jpeg1-c2', 'jpeg3-c0', 'jpeg3-c2']));
    // each file on disk is in the expected pixels, and vice versa
    expect(readdirSync(FIX).filter((f) => f !== 'pil_pixels.json' && f !== 'cmyk.jpg').sort()).toEqual([...names].sort());
  });

  it('Node: every fixture decodes to exactly PIL\'s pixels', async () => {
    const decode = await nodeImageDecoder();
    for (const n of names) expect(firstDifference(n, await decode(read(n), n)), n).toBeNull();
  });

  it('clear errors: CMYK, truncated, corrupt, not an image, other formats, absurd sizes; the decoder recovers', async () => {
    const jpeg = await nodeJpegDecoder();
    const decode = await nodeImageDecoder();
    await expect(jpeg.decode(read('cmyk.jpg'), 'c.jpg')).rejects.toThrow('c.jpg: CMYK/YCCK (4-component) JPEGs are not supported');
    const good = read('q75-420.jpg');
    await expect(jpeg.decode(good.subarray(0, good.length - 40), 't.jpg')).rejects.toThrow('t.jpg: corrupt image (truncated JPEG');
    await expect(jpeg.decode(good.subarray(0, 300), 't.jpg')).rejects.toThrow(/t.jpg: corrupt image \(libjpeg: /);
    // after a fatal libjpeg error the same decoder still decodes correctly
    expect(firstDifference('q75-420.jpg', await jpeg.decode(good, 'q75-420.jpg'))).toBeNull();
    await expect(Promise.resolve().then(() => decode(new TextEncoder().encode('hello world'), 'h.png'))).rejects.toThrow('h.png: neither PNG nor JPEG (starts with 68 65 6c 6c)');
    const bmp = new Uint8Array(64);
    bmp.set([0x42, 0x4d]);
    await expect(Promise.resolve().then(() => decode(bmp, 'x.bmp'))).rejects.toThrow('x.bmp: BMP images are not supported (only JPEG and PNG)');
    // a frame header claiming 60000 x 60000 pixels: rejected before any allocation
    const huge = new Uint8Array(good);
    const sof = huge.findIndex((b, i) => b === 0xff && huge[i + 1] === 0xc0);
    huge.set([60000 >> 8, 60000 & 255, 60000 >> 8, 60000 & 255], sof + 5);
    await expect(jpeg.decode(huge, 'h.jpg')).rejects.toThrow('h.jpg: 60000x60000 pixels is over the 178956970-pixel limit');
    const png = read('rgb.png');
    const bigPng = new Uint8Array(png);
    new DataView(bigPng.buffer).setUint32(16, 1 << 30);
    await expect(Promise.resolve().then(() => decode(bigPng, 'b.png'))).rejects.toThrow(/b.png: 1073741824x13 pixels is over/);
    await expect(Promise.resolve().then(() => decode(png.subarray(0, png.length - 30), 'c.png'))).rejects.toThrow(/c.png: corrupt image/);
  });
});

// ------------------------------------------------------------------------------------------------
// The same in headless Chromium: the browser-safe decoder bundled by esbuild, the .wasm served by URL.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

const PAGE_SCRIPT = `
import { createJpegDecoder } from './src/data/jpeg.ts';
import { browserImageDecoder } from './src/data/image-decode.ts';
window.decodeAll = async (names) => {
  const jpeg = await createJpegDecoder(new URL('/wasm', location.href));
  const wasm = browserImageDecoder({ jpeg });
  const canvas = browserImageDecoder();
  const out = {};
  for (const n of names) {
    const bytes = new Uint8Array(await (await fetch('/fixture/' + n)).arrayBuffer());
    for (const [kind, decode] of [['wasm', wasm], ['canvas', canvas]]) {
      try {
        const img = await decode(bytes, n);
        out[kind + ':' + n] = { width: img.width, height: img.height, channels: img.channels, pixelStride: img.pixelStride, data: Array.from(img.data) };
      } catch (e) { out[kind + ':' + n] = String(e.message); }
    }
  }
  try { await jpeg.decode(bytes0(), 'cut.jpg'); out.cut = 'decoded'; } catch (e) { out.cut = String(e.message); }
  return out;
  function bytes0() { return new Uint8Array([0xff, 0xd8, 0xff, 0xdb, 0, 3]); }
};
`;

describe('image decoding in headless Chromium', () => {
  let server: Server | undefined;
  let close = async () => {};
  let results: Record<string, (DecodedImage & { data: number[] }) | string> = {};
  beforeAll(async () => {
    if (!haveChromium) return;
    const root = path.resolve(FIX, '..', '..', '..');
    const bundle = await build({
      stdin: { contents: PAGE_SCRIPT, resolveDir: root, sourcefile: 'page.ts', loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    server = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else if (url === '/wasm') res.writeHead(200, { 'content-type': 'application/wasm' }).end(readFileSync(jpegWasmFile()));
      else if (url.startsWith('/fixture/')) res.writeHead(200).end(readFileSync(path.join(FIX, path.basename(url))));
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/bundle.js"></script>');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    close = async () => {
      await browser.close();
      server?.close();
    };
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    await page.waitForFunction(() => typeof (window as unknown as { decodeAll?: unknown }).decodeAll === 'function', undefined, { timeout: 60_000 });
    results = await page.evaluate((n) => (window as unknown as { decodeAll: (n: string[]) => Promise<typeof results> }).decodeAll(n), names);
    if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
  }, 120_000);
  afterAll(() => close());

  it.skipIf(skipWithout(haveChromium))('WASM JPEG decoder and canvas PNG decoder give PIL\'s pixels; canvas JPEGs report the file\'s channels', () => {
    requirePrereq(haveChromium, `Chromium at ${CHROMIUM}`);
    const img = (key: string) => {
      const r = results[key];
      if (typeof r !== 'object') expect.fail(`${key}: ${r}`);
      return r;
    };
    for (const n of names) {
      if (n === 'rgba.png') {
        // premultiplied canvas storage: exact colours are not available, so this is an error
        for (const k of ['wasm', 'canvas']) expect(results[`${k}:${n}`]).toMatch(/rgba.png: PNG pixel 0 is not opaque \(alpha 6\)/);
        continue;
      }
      expect(firstDifference(n, img(`wasm:${n}`)), `wasm ${n}`).toBeNull();
      if (n.endsWith('.png')) expect(firstDifference(n, img(`canvas:${n}`)), `canvas ${n}`).toBeNull();
      else expect(img(`canvas:${n}`).channels, n).toBe(expected.files[n]!.mode === 'L' ? 1 : 3);
    }
    expect(results.cut).toMatch(/cut.jpg: corrupt image/);
  });
});
