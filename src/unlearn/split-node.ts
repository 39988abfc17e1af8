// Node file I/O for forget splits (JSON next to the results, spec §5) and the atomic text write the
// unlearning reports share. Node-only: the browser entry does not import this file.

import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { splitFromJson, splitToJson, type ForgetSplit } from './split.js';

/**
 * Write `text` to `path` atomically (temp file in the same directory, fsync, rename): readers see
 * the old file or the complete new one. Creates the directory if needed.
 */
export async function writeFileAtomic(path: string, text: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new Error(`writing ${path}: ${(e as Error).message}`);
  }
}

/** Save a split as JSON (atomic). */
export async function saveSplit(path: string, split: ForgetSplit): Promise<void> {
  await writeFileAtomic(path, splitToJson(split));
}

/** Load and validate a split saved by saveSplit; errors start with the file name. */
export async function loadSplit(path: string): Promise<ForgetSplit> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  try {
    return splitFromJson(text);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
