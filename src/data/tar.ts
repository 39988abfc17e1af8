import { EngineError } from '../util/errors.js';
// A small reader for uncompressed tar archives (browser-safe): 512-byte headers, the ustar prefix
// field, GNU long names ('L') and pax 'path' records. It returns regular files only (as views into
// the archive bytes); links, directories and devices are skipped. It does not write archives.


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

function octal(h: Uint8Array, at: number, len: number, archive: string, offset: number): number {
  if (h[at]! & 0x80) {
    // GNU base-256 encoding for large sizes
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + h[at + i]!;
    return v;
  }
  const s = field(h, at, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new EngineError('readTar', `${archive}: corrupt header at byte ${offset} (numeric field '${s}')`);
  return parseInt(s, 8);
}

/** Lists the regular files (and, when asked, directories) of a tar archive in archive order. */
export function readTar(bytes: Uint8Array, archive = 'archive', opts: { directories?: boolean } = {}): TarEntry[] {
  const out: TarEntry[] = [];
  let longName: string | null = null;
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + BLOCK > bytes.length)
      throw new EngineError('readTar', `${archive}: truncated: partial header at byte ${offset} (archive has ${bytes.length} bytes)`);
    const h = bytes.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) break; // end-of-archive marker
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const stored = octal(h, 148, 8, archive, offset);
    if (sum !== stored) throw new EngineError('readTar', `${archive}: corrupt header at byte ${offset} (checksum ${stored}, computed ${sum})`);
    const size = octal(h, 124, 12, archive, offset);
    const type = String.fromCharCode(h[156]!);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > bytes.length)
      throw new EngineError('readTar', `${archive}: truncated: entry at byte ${offset} needs ${dataEnd} bytes, archive has ${bytes.length}`);
    const data = bytes.subarray(dataStart, dataEnd);
    if (type === 'L') {
      longName = field(data, 0, data.length);
    } else if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(decoder.decode(data));
      if (m) longName = m[1]!;
    } else {
      let name = longName ?? field(h, 0, 100);
      if (longName === null && field(h, 257, 6) === 'ustar') {
        const prefix = field(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      longName = null;
      name = name.replace(/^(\.\/)+/, '');
      if (type === '0' || type === '\0' || type === '7') out.push({ name, data });
      else if (type === '5' && opts.directories) out.push({ name: name.replace(/\/+$/, ''), data, directory: true });
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
