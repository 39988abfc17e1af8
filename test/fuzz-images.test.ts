// Fuzzing the image decoders (issue 11): JPEGs (MozJPEG WASM behind our header checks) and PNGs
// (pngjs behind ours) from the committed PIL fixtures, with generic byte mutations and structural
// ones: JPEG frame/scan/table segments rewritten (sizes, components, sampling factors, lengths), PNG
// chunks rewritten with valid CRCs (sizes, bit depths, colour types, compressed data, lengths).
// Each case must decode or give an EngineError naming the file; memory and time bounded. Seeded.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeImageDecoder } from '../src/data/image-folder-node.js';
import { PNG_MAX_EXPANSION, type DecodedImage } from '../src/data/image-decode.js';
import { Fuzz, fuzz, mutate, type Mutation } from './fuzz.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'images');
const read = (f: string) => new Uint8Array(readFileSync(path.join(FIX, f)));

/** Marker segments of a JPEG up to its first scan: [offset of the 0xff, marker, length]. */
function segments(b: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const m = b[i + 1]!;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    out.push([i, m, len]);
    if (m === 0xda) break;
    i += 2 + len;
  }
  return out;
}

function mutateJpeg(f: Fuzz, b: Uint8Array): Mutation {
  const c = new Uint8Array(b);
  const segs = segments(c);
  const [at, m, len] = f.pick(segs);
  const sof = segs.find((s) => s[1] >= 0xc0 && s[1] <= 0xc2)!;
  switch (f.int(6)) {
    case 0: {
      const h = f.pick([0, 1, 7, 255, 4096, 0xffff, f.int(1 << 16)]);
      const w = f.pick([0, 1, 9, 255, 4096, 0xffff, f.int(1 << 16)]);
      c.set([h >> 8, h & 255, w >> 8, w & 255], sof[0] + 5);
      return { bytes: c, what: `frame size ${w}x${h}` };
    }
    case 1: {
      const n = f.pick([0, 1, 2, 3, 4, 5, 255]);
      c[sof[0] + 9] = n;
      return { bytes: c, what: `frame components ${n}` };
    }
    case 2: {
      // sampling factors / quant table of one component
      const k = f.int(c[sof[0] + 9]!);
      const v = f.pick([0x00, 0x11, 0x22, 0x44, 0x55, 0xff, 0x41, 0x14]);
      c[sof[0] + 11 + 3 * k] = v;
      if (f.chance(0.3)) c[sof[0] + 12 + 3 * k] = f.int(8);
      return { bytes: c, what: `component ${k} sampling 0x${v.toString(16)}` };
    }
    case 3: {
      const l = f.pick([0, 1, 2, 3, len + 1, len - 1, 0xffff]);
      c.set([l >> 8, l & 255], at + 2);
      return { bytes: c, what: `segment 0x${m.toString(16)} at ${at}: length ${l}` };
    }
    case 4: {
      // a random byte inside a table / frame / scan header segment
      const p = at + 4 + f.int(Math.max(1, len - 2));
      c[p] = f.u32() & 255;
      return { bytes: c, what: `segment 0x${m.toString(16)} byte ${p} = ${c[p]}` };
    }
    default: {
      // corrupt the entropy-coded data after the scan header, or cut it
      const sos = segs[segs.length - 1]!;
      const start = sos[0] + 2 + sos[2];
      if (f.chance(0.5)) {
        const n = start + f.int(c.length - start);
        return { bytes: c.subarray(0, n), what: `cut in the scan data at ${n}` };
      }
      const p = start + f.int(c.length - start - 2);
      c[p] = f.pick([0xff, 0x00, f.int(256)]);
      return { bytes: c, what: `scan data byte ${p} = ${c[p]}` };
    }
  }
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (b: Uint8Array) => {
  let c = 0xffffffff;
  for (const x of b) c = crcTable[(c ^ x) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

function mutatePng(f: Fuzz, b: Uint8Array): Mutation {
  const c = new Uint8Array(b);
  const dv = new DataView(c.buffer);
  const chunks: [number, string, number][] = [];
  for (let i = 8; i + 12 <= c.length; ) {
    const len = dv.getUint32(i);
    chunks.push([i, String.fromCharCode(...c.subarray(i + 4, i + 8)), len]);
    i += 12 + len;
  }
  const [at, type, len] = f.pick(chunks);
  let what: string;
  switch (f.int(5)) {
    case 0: {
      const w = f.u32();
      const h = f.pick([0, 1, 3, 1 << 15, f.u32()]);
      dv.setUint32(16, w);
      dv.setUint32(20, h);
      what = `IHDR ${w}x${h}`;
      break;
    }
    case 1:
      c[24] = f.pick([0, 1, 2, 4, 8, 16, 3, 255]);
      c[25] = f.pick([0, 2, 3, 4, 6, 1, 7]);
      c[28] = f.pick([0, 1, 2]);
      what = `IHDR depth ${c[24]} colour ${c[25]} interlace ${c[28]}`;
      break;
    case 2: {
      const p = at + 8 + f.int(Math.max(1, len));
      c[p]! ^= 1 + f.int(255);
      what = `${type} byte ${p} flipped`;
      break;
    }
    case 3: {
      const l = f.u32();
      dv.setUint32(at, l);
      what = `${type} length ${l}`;
      break;
    }
    default:
      c.set([0x49, 0x45, 0x4e, 0x44], at + 4); // rename the chunk to IEND
      what = `${type} renamed IEND`;
  }
  // re-seal every chunk's CRC so that the decoder looks past it
  for (const [i, , l] of chunks) if (i + 12 + l <= c.length) dv.setUint32(i + 8 + l, crc32(c.subarray(i + 4, i + 8 + l)));
  return { bytes: c, what };
}

const sane = (img: DecodedImage) => {
  if (img.width < 1 || img.height < 1 || img.data.length < img.width * img.height * img.pixelStride || (img.channels !== 1 && img.channels !== 3))
    throw new Error(`${img.width}x${img.height}x${img.channels} with ${img.data.length} bytes`);
};

describe('fuzz: image decoders', () => {
  it('JPEG (4:2:0, 4:4:4, greyscale, progressive)', async () => {
    const files = ['q75-420.jpg', 'q95-444.jpg', 'q85-grey.jpg', 'q80-420-progressive.jpg', 'q50-422.jpg'].map(read);
    const decode = await nodeImageDecoder();
    const r = await fuzz({
      reader: 'JPEG decoder',
      cases: 300,
      make: (f, i) => (i % 3 ? mutateJpeg(f, files[i % files.length]!) : mutate(f, f.pick(files))),
      run: (bytes, name) => decode(bytes, name),
      check: sane,
      maxGrowth: () => 96 << 20, // a new WebAssembly instance (its own memory) after each libjpeg error
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(60);
    expect(r.ok, `seed ${r.seed}`).toBeGreaterThan(30);
    // the decoder still decodes correctly afterwards
    const img = await decode(files[0]!, 'q75-420.jpg');
    expect([img.width, img.height, img.channels]).toEqual([19, 13, 3]);
  });

  it('PNG (RGB, grey, palette, RGBA)', async () => {
    const files = ['rgb.png', 'grey.png', 'palette.png', 'rgba.png'].map(read);
    const decode = await nodeImageDecoder();
    const r = await fuzz({
      reader: 'PNG decoder',
      cases: 400,
      make: (f, i) => (i % 3 ? mutatePng(f, files[i % files.length]!) : mutate(f, f.pick(files))),
      run: (bytes, name) => decode(bytes, name),
      check: sane,
      // deflate legitimately expands up to PNG_MAX_EXPANSION (1032) times, a 1-bit pixel becomes 4 RGBA
      // bytes, and pngjs keeps two copies: the bound scales with the file's size, as the guard does
      maxGrowth: (bytes) => (1 << 20) + 2 * 4 * 8 * PNG_MAX_EXPANSION * bytes.length,
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
    expect(r.ok, `seed ${r.seed}`).toBeGreaterThan(10);
  });
});
