import { EngineError } from '../util/errors.js';
// A small reader for uncompressed tar archives (browser-safe): 512-byte headers, the ustar prefix
// field, GNU long names and link names ('L', 'K') and pax 'path' / 'linkpath' records. It returns
// regular files (as views into the archive bytes); hard links and symbolic links to files or
// directories inside the archive become copies of their target, as a folder on disk read with links
// followed (torchvision's ImageFolder does) would show. Devices and FIFOs are skipped. It does not write archives.


export interface TarEntry {
  /** Path inside the archive, '/'-separated, without a leading './'. */
  name: string;
  /** File contents (a view into the archive). */
  data: Uint8Array;
  /** Only with { directories: true }: true for a directory entry (empty data, no trailing '/'). */
  directory?: boolean;
}

const BLOCK = 512;
const decoder = new TextDecoder();

function field(h: Uint8Array, at: number, len: number): string {
  let end = at;
  while (end < at + len && h[end] !== 0) end++;
  return decoder.decode(h.subarray(at, end));
}

function octal(h: Uint8Array, at: number, len: number, archive: string, offset: number, what: string): number {
  if (h[at]! & 0x80) {
    // GNU base-256 encoding for large sizes (a negative number has the 0x40 bit set too)
    if (h[at]! & 0x40) throw new EngineError('readTar', `${archive}: corrupt header at byte ${offset} (negative ${what})`);
    let v = h[at]! & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + h[at + i]!;
    return v;
  }
  const s = field(h, at, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new EngineError('readTar', `${archive}: corrupt header at byte ${offset} (${what} field '${s}')`);
  return parseInt(s, 8);
}

/** The value of `key` in pax extended-header records ("<len> <key>=<value>\n"), or null. */
function paxValue(data: Uint8Array, key: string): string | null {
  const text = decoder.decode(data);
  let at = 0;
  let found: string | null = null;
  while (at < text.length) {
    const m = /^(\d+) /.exec(text.slice(at, at + 24));
    if (!m) break;
    const len = Number(m[1]);
    if (len <= m[0].length) break;
    const rec = text.slice(at + m[0].length, at + len).replace(/\n$/, '');
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === key) found = rec.slice(eq + 1);
    at += len;
  }
  return found;
}

/** '/'-joins and normalises ('.', '..', repeated '/'); null when the path climbs above the root. */
function normalise(p: string): string | null {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

/**
 * Lists the regular files (and, when asked, directories) of a tar archive in archive order, links
 * resolved to copies of their targets. Errors name the archive and the byte offset: bad checksum,
 * non-octal numbers, an entry whose size runs beyond the archive, a partial header.
 */
export function readTar(bytes: Uint8Array, archive = 'archive', opts: { directories?: boolean } = {}): TarEntry[] {
  const out: TarEntry[] = [];
  const links: { name: string; target: string; hard: boolean }[] = [];
  let longName: string | null = null;
  let longLink: string | null = null;
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + BLOCK > bytes.length)
      throw new EngineError('readTar', `${archive}: truncated: partial header at byte ${offset} (archive has ${bytes.length} bytes)`);
    const h = bytes.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) break; // end-of-archive marker
    let sum = 0;
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 32 : h[i]!;
      sum += b;
      signed += b > 127 ? b - 256 : b; // some old tars summed signed bytes
    }
    const stored = octal(h, 148, 8, archive, offset, 'checksum');
    if (sum !== stored && signed !== stored)
      throw new EngineError('readTar', `${archive}: corrupt header at byte ${offset} (checksum ${stored}, computed ${sum})`);
    const size = octal(h, 124, 12, archive, offset, 'size');
    const type = String.fromCharCode(h[156]!);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > bytes.length)
      throw new EngineError('readTar', `${archive}: truncated: entry at byte ${offset} needs ${dataEnd} bytes, archive has ${bytes.length}`);
    const data = bytes.subarray(dataStart, dataEnd);
    if (type === 'L') longName = field(data, 0, data.length);
    else if (type === 'K') longLink = field(data, 0, data.length);
    else if (type === 'x') {
      longName = paxValue(data, 'path') ?? longName;
      longLink = paxValue(data, 'linkpath') ?? longLink;
    } else if (type !== 'g') {
      let name = longName ?? field(h, 0, 100);
      if (longName === null && field(h, 257, 6) === 'ustar') {
        const prefix = field(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      const link = longLink ?? field(h, 157, 100);
      longName = null;
      longLink = null;
      name = name.replace(/^(\.\/)+/, '');
      if (type === '0' || type === '\0' || type === '7') out.push({ name, data });
      else if (type === '5' && opts.directories) out.push({ name: name.replace(/\/+$/, ''), data, directory: true });
      else if (type === '1' || type === '2') links.push({ name, target: link, hard: type === '1' });
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return links.length ? resolveLinks(out, links, archive, Math.floor(bytes.length / BLOCK)) : out;
}

/**
 * Hard links name an earlier entry (archive-relative); symbolic links are relative to their own
 * directory. A link to a file becomes a copy of it; a symbolic link to a directory copies the regular
 * files below it (targets that are themselves links are not followed further). Links whose target is
 * outside the archive are dropped, as a dangling link on disk would be skipped. The copies may not
 * outnumber the archive's 512-byte blocks (many links to a big directory would multiply the listing).
 */
function resolveLinks(entries: TarEntry[], links: { name: string; target: string; hard: boolean }[], archive: string, maxCopies: number): TarEntry[] {
  const files = new Map(entries.filter((e) => !e.directory).map((e) => [normalise(e.name) ?? e.name, e]));
  const out = [...entries];
  for (const l of links) {
    const dir = l.name.includes('/') ? l.name.slice(0, l.name.lastIndexOf('/')) : '';
    const target = normalise(l.hard || l.target.startsWith('/') ? l.target.replace(/^(\.\/)+/, '') : `${dir}/${l.target}`);
    if (target === null || (!l.hard && l.target.startsWith('/'))) continue;
    const file = files.get(target);
    if (file) {
      out.push({ name: l.name, data: file.data });
      continue;
    }
    const under = `${target}/`;
    for (const [n, e] of files) if (n.startsWith(under)) out.push({ name: `${l.name.replace(/\/+$/, '')}/${n.slice(under.length)}`, data: e.data });
    if (out.length - entries.length > maxCopies)
      throw new EngineError('readTar', `${archive}: links expand to more than ${maxCopies} file copies (link ${l.name} -> ${l.target})`);
  }
  return out;
}
