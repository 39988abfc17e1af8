// Atomic file writes for Node (temp file in the same directory, fsync, rename, then a best-effort
// fsync of the directory): readers see the old file or the complete new one, never a partial file.
// A process killed mid-write leaves its temp file behind; the next write of the same file removes
// the temp files of writers that no longer run. Shared by checkpoints, splits, results and reports.
// Node-only.

import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Write `data` to `path` atomically, creating the directory if needed; a failed write leaves no temp file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  await removeStaleTemps(dir, basename(path));
  const tmp = tempName(path);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new Error(`writing ${path}: ${(e as Error).message}`);
  }
  // make the rename itself durable (not every platform can open a directory)
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

/** `.${name}.<pid>.<suffix>.tmp` beside `path`: the pid lets a later writer tell a dead writer's file. */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
}

/** Stale temp files of `name` in `dir`, given the directory's entries. */
function staleTemps(entries: readonly string[], name: string): string[] {
  const prefix = `.${name}.`;
  return entries.filter((e) => {
    if (!e.startsWith(prefix) || !e.endsWith('.tmp')) return false;
    const pid = Number(e.slice(prefix.length).split('.')[0]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !running(pid);
  });
}

/** writeFileAtomic for synchronous callers (same temp naming, clean-up and fsync). */
export function writeFileAtomicSync(path: string, data: Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  try {
    for (const e of staleTemps(readdirSync(dir), basename(path))) {
      try {
        unlinkSync(join(dir, e));
      } catch {
        /* another writer removed it */
      }
    }
  } catch {
    /* unreadable directory: the write below reports it */
  }
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new Error(`writing ${path}: ${(e as Error).message}`);
  }
}

/** True while process `pid` exists (EPERM: it exists but belongs to someone else). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete `.${name}.<pid>.<suffix>.tmp` files in `dir` left by writers that were killed mid-write. */
async function removeStaleTemps(dir: string, name: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const e of staleTemps(entries, name)) await unlink(join(dir, e)).catch(() => undefined);
}
