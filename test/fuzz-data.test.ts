// Fuzzing the data-set readers (issue 11): IDX (MNIST), the CIFAR-10 binary batches, tar (headers
// rewritten with valid checksums: gigantic sizes, odd type flags, link targets, names), gzip and
// .tar.gz image-folder archives, and the decoded-data-set cache. Each mutated input must parse or
// give an EngineError naming the file, with bounded memory and time. Seeded: failures print FUZZ_SEED.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import pngjs from 'pngjs';
import { parseCifar10Batch } from '../src/data/cifar.js';
import { loadByteDataset, saveByteDataset } from '../src/data/cache-node.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { gunzip, mnistFromIdx } from '../src/data/idx.js';
import { imageFolderFromArchive } from '../src/data/image-folder.js';
import { nodeImageDecoder } from '../src/data/image-folder-node.js';
import { gunzipNode } from '../src/data/mnist-node.js';
import { readTar } from '../src/data/tar.js';
import { Fuzz, fuzz, mutate, type Mutation } from './fuzz.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fuzz-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'images');

function idx(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 + dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(Array.from(data), 4 + 4 * dims.length);
  return out;
}

/** A mutation of the IDX header: dims, rank or type set to extreme values. */
function mutateIdx(f: Fuzz, b: Uint8Array): Mutation {
  const c = new Uint8Array(b);
  const v = new DataView(c.buffer);
  const rank = c[3]!;
  if (f.chance(0.3)) {
    c[f.pick([2, 3])] = f.int(256);
    return { bytes: c, what: `type/rank bytes ${c[2]} ${c[3]}` };
  }
  const d = f.int(rank);
  const x = f.u32();
  v.setUint32(4 + 4 * d, x, false);
  return { bytes: c, what: `dim ${d} = ${x}` };
}

describe('fuzz: IDX and CIFAR-10 binary', () => {
  it('IDX images and labels', async () => {
    const images = idx([3, 4, 5], Array.from({ length: 60 }, (_, i) => i * 3));
    const labels = idx([3], [7, 0, 9]);
    const r = await fuzz({
      reader: 'mnistFromIdx',
      cases: 400,
      make: (f, i) => {
        const which = i % 2 ? 'images' : 'labels';
        const m = f.chance(0.4) ? mutateIdx(f, which === 'images' ? images : labels) : mutate(f, which === 'images' ? images : labels);
        return { ...m, what: `${which}: ${m.what}` };
      },
      run: (bytes, name) => {
        // the mutated file is the one named `name`
        const imgs = bytes.length !== labels.length || bytes[3] !== 1 ? bytes : images;
        return mnistFromIdx(imgs === bytes ? bytes : images, imgs === bytes ? labels : bytes, { images: imgs === bytes ? name : 'img', labels: imgs === bytes ? 'lab' : name });
      },
      check: (ds) => {
        if (ds.images.length !== ds.length * ds.shape[0] * ds.shape[1] * ds.shape[2]) throw new Error('pixel count');
      },
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
  });

  it('CIFAR-10 batches', async () => {
    const rec = (y: number) => [y, ...Array.from({ length: 3072 }, (_, i) => (i * 7 + y) % 256)];
    const batch = Uint8Array.from([...rec(3), ...rec(9), ...rec(0)]);
    const r = await fuzz({
      reader: 'parseCifar10Batch',
      cases: 300,
      make: (f) => {
        if (f.chance(0.3)) {
          const c = new Uint8Array(batch);
          const at = 3073 * f.int(3);
          c[at] = 10 + f.int(246);
          return { bytes: c, what: `label byte at ${at} = ${c[at]}` };
        }
        return mutate(f, batch);
      },
      run: (bytes, name) => parseCifar10Batch(bytes, name),
      check: (res) => {
        if (res.images.length !== res.labels.length * 3072 || res.labels.some((y) => y > 9)) throw new Error('bad result');
      },
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
  });
});

// ------------------------------------------------------------------------------------------------
// tar, gzip, .tar.gz image folders

function png(seed: number): Buffer {
  const p = new pngjs.PNG({ width: 4, height: 3 });
  for (let i = 0; i < 12; i++) p.data.set([seed * 20, i * 9, 100, 255], i * 4);
  return pngjs.PNG.sync.write(p, { colorType: 2 });
}
const tarOf = (format: string) => {
  const root = path.join(tmp, `src-${format}`);
  for (const [f, d] of [['a/0.png', png(1)], ['a/1.png', png(2)], [`b/${'long'.repeat(20)}/${'x'.repeat(60)}.png`, png(3)]] as const) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), d);
  }
  copyFileSync(path.join(FIX, 'q85-grey.jpg'), path.join(root, 'c.jpg'));
  execFileSync('ln', ['-sf', '../a/0.png', path.join(root, 'b', 'link.png')]);
  execFileSync('ln', ['-sfn', 'a', path.join(root, 'alink')]);
  const out = path.join(tmp, `${format}.tar`);
  execFileSync('tar', [`--format=${format}`, '-cf', out, '-C', root, '.']);
  return new Uint8Array(readFileSync(out));
};

/** Rewrites one header field of a random entry, then fixes the header checksum (so parsing goes on). */
function mutateTarHeader(f: Fuzz, b: Uint8Array): Mutation {
  const c = new Uint8Array(b);
  const headers: number[] = [];
  for (let at = 0; at + 512 <= c.length; ) {
    if (c.subarray(at, at + 512).every((x) => x === 0)) break;
    headers.push(at);
    const size = parseInt(new TextDecoder().decode(c.subarray(at + 124, at + 136)).replace(/\0.*$/, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  const h = f.pick(headers);
  const put = (off: number, len: number, s: string | Uint8Array) => {
    const bytes = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    c.fill(0, h + off, h + off + len);
    c.set(bytes.subarray(0, len), h + off);
  };
  let what: string;
  switch (f.int(6)) {
    case 0: {
      const s = f.pick(['77777777777', '7777777777\0', '99', '-1', ' 12 ', '', '00000001000']);
      put(124, 12, s);
      what = `size field '${s}'`;
      break;
    }
    case 1: {
      const big = new Uint8Array(12).fill(0xff);
      big[0] = f.pick([0x80, 0xff, 0xc0]);
      put(124, 12, big);
      what = `base-256 size field ${big[0]!.toString(16)} ff...`;
      break;
    }
    case 2: {
      const t = f.pick(['0', '1', '2', '5', 'L', 'K', 'x', 'g', '3', '7', 'S', '\0']);
      put(156, 1, t);
      what = `type flag '${t}'`;
      break;
    }
    case 3: {
      const l = f.pick(['a/0.png', '../../etc/passwd', '/abs', '.', '..', 'alink', 'b/link.png', 'missing', 'a']);
      put(157, 100, l);
      what = `link name '${l}'`;
      break;
    }
    case 4: {
      const n = f.pick(['', '/', './', 'a//b.png', '../x.png', 'a/.png', '\u00e9.png', 'x'.repeat(100)]);
      put(0, 100, n);
      what = `name '${n}'`;
      break;
    }
    default: {
      const p = f.pick(['ustar\0', 'ustar ', 'xxxxxx']);
      put(257, 6, p);
      put(345, 155, f.pick(['pre', '', '../..']));
      what = `magic '${p}' and prefix`;
    }
  }
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : c[h + i]!;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return { bytes: c, what: `header at ${h}: ${what}` };
}

describe('fuzz: tar and gzip', () => {
  it('tar archives (GNU, pax, ustar), headers rewritten with valid checksums', async () => {
    const tars = ['gnu', 'pax', 'ustar'].map(tarOf);
    expect(readTar(tars[0]!).map((e) => e.name).sort()).toEqual(['a/0.png', 'a/1.png', 'alink/0.png', 'alink/1.png', `b/${'long'.repeat(20)}/${'x'.repeat(60)}.png`, 'b/link.png', 'c.jpg'].sort());
    const r = await fuzz({
      reader: 'readTar',
      cases: 600,
      make: (f, i) => (i % 3 ? mutateTarHeader(f, tars[i % 3]!) : mutate(f, f.pick(tars))),
      run: (bytes, name) => readTar(bytes, name, { directories: true }),
      check: (entries, bytes) => {
        for (const e of entries) if (e.data.buffer !== bytes.buffer || e.data.byteOffset + e.data.length > bytes.byteOffset + bytes.length) throw new Error(`${e.name}: data outside the archive`);
        if (entries.length > bytes.length / 512 + 8) throw new Error(`${entries.length} entries from ${bytes.length} bytes`);
      },
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
    expect(r.ok, `seed ${r.seed}`).toBeGreaterThan(50);
  });

  it('links multiplying the listing are capped by the archive size', () => {
    const root = path.join(tmp, 'links');
    for (let i = 0; i < 20; i++) {
      mkdirSync(path.join(root, 'd'), { recursive: true });
      writeFileSync(path.join(root, 'd', `${i}.png`), 'x');
    }
    for (let i = 0; i < 40; i++) execFileSync('ln', ['-sfn', 'd', path.join(root, `l${i}`)]);
    const out = path.join(tmp, 'links.tar');
    execFileSync('tar', ['-cf', out, '-C', root, '.']);
    const bytes = new Uint8Array(readFileSync(out));
    // 20 files + 40 links (+ directories) in ~110 blocks; the links would add 800 copies
    expect(() => readTar(bytes, 'links.tar')).toThrow(/links.tar: links expand to more than \d+ file copies/);
    rmSync(path.join(root, 'l39'));
    for (let i = 2; i < 39; i++) rmSync(path.join(root, `l${i}`));
    execFileSync('tar', ['-cf', out, '-C', root, '.']);
    expect(readTar(new Uint8Array(readFileSync(out)), 'links.tar').filter((e) => e.name.startsWith('l')).length).toBe(40);
  });

  it('gzip: corrupt streams are errors, bombs stop at the cap (web and zlib paths)', async () => {
    const gz = gzipSync(tarOf('gnu'));
    const r = await fuzz({
      reader: 'gunzip',
      cases: 300,
      make: (f) => mutate(f, gz),
      run: async (bytes, name) => {
        let web: Uint8Array | undefined;
        let zlib: Uint8Array | undefined;
        let webErr: unknown;
        let zlibErr: unknown;
        await gunzip(bytes, name, 1 << 20).then((x) => (web = x), (e) => (webErr = e));
        try {
          zlib = gunzipNode(bytes, name, 1 << 20);
        } catch (e) {
          zlibErr = e;
        }
        // both decoders must agree on success (zlib tolerates trailing garbage after the stream; the web one may not)
        if (web && zlib && Buffer.compare(web, zlib) !== 0) throw new Error('web and zlib gunzip disagree');
        if (webErr) throw webErr;
        if (zlibErr) throw zlibErr;
        return web!;
      },
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
    const bomb = gzipSync(new Uint8Array(8 << 20));
    await expect(gunzip(bomb, 'bomb.gz', 1 << 20)).rejects.toThrow('bomb.gz: decompresses to more than 1048576 bytes');
    expect(() => gunzipNode(bomb, 'bomb.gz', 1 << 20)).toThrow('bomb.gz: decompresses to more than 1048576 bytes');
  });

  it('.tar.gz image folders: decoded end to end (tar, gzip, PNG and JPEG decoders)', async () => {
    const tar = tarOf('pax');
    const gz = gzipSync(tar);
    const decode = await nodeImageDecoder();
    const r = await fuzz({
      reader: 'imageFolderFromArchive',
      cases: 200,
      make: (f, i) => {
        const m = i % 2 ? mutate(f, gz) : mutateTarHeader(f, tar);
        return i % 2 ? { bytes: m.bytes, what: `gz: ${m.what}` } : { bytes: gzipSync(m.bytes), what: `tar then gzip: ${m.what}` };
      },
      run: (bytes, name) => imageFolderFromArchive(bytes, decode, { source: name, prefix: '.', extensions: ['.png'] }),
      check: (ds) => {
        if (ds.length === 0 || ds.shape.join() !== '3,3,4') throw new Error(`unexpected ${ds.length} x [${ds.shape}]`);
      },
      maxGrowth: () => 64 << 20, // the JPEG decoder's WebAssembly memory is re-created after a libjpeg error
    });
    expect(r.rejected + r.ok).toBe(200);
  });
});

describe('fuzz: decoded data-set cache', () => {
  it('cache files', async () => {
    const ds = new ByteImageDataset(Uint8Array.from({ length: 2 * 12 }, (_, i) => i), Int32Array.from([1, 0]), [1, 3, 4], 2, ['x', 'y']);
    const file = path.join(tmp, 'cache.bin');
    saveByteDataset(ds, file);
    const good = new Uint8Array(readFileSync(file));
    const header = (f: Fuzz): Mutation => {
      const len = new DataView(good.buffer).getUint32(4, true);
      const h = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + len))) as Record<string, unknown>;
      const key = f.pick(['version', 'n', 'shape', 'numClasses', 'classes']);
      h[key] = f.pick([null, -1, 0, 1.5, 2 ** 40, 'x', [], [1], [1, 3, 4], [0, 3, 4], [2 ** 20, 2 ** 20, 2 ** 20], ['a'], {}]);
      const js = new TextEncoder().encode(JSON.stringify(h));
      const pre = 8 + js.length;
      const pad = (4 - (pre % 4)) % 4;
      const rest = good.subarray(8 + len + ((4 - ((8 + len) % 4)) % 4));
      const out = new Uint8Array(pre + pad + rest.length);
      out.set(good.subarray(0, 4));
      new DataView(out.buffer).setUint32(4, js.length, true);
      out.set(js, 8);
      out.set(rest, pre + pad);
      return { bytes: out, what: `header ${key} = ${JSON.stringify(h[key])}` };
    };
    const r = await fuzz({
      reader: 'loadByteDataset',
      cases: 300,
      make: (f, i) => (i % 2 ? header(f) : mutate(f, good)),
      run: (bytes, name) => {
        const p = path.join(tmp, name);
        writeFileSync(p, bytes);
        return loadByteDataset(p);
      },
      check: (d) => {
        if (d.images.length !== d.length * d.shape[0] * d.shape[1] * d.shape[2]) throw new Error('pixel count');
      },
    });
    expect(r.rejected, `seed ${r.seed}`).toBeGreaterThan(100);
  });
});
