// Atomic file writes for Node (temp file in the same directory, fsync, rename, then a best-effort
// fsync of the directory): readers see the old file or the complete new one, never a partial file.
// A process killed mid-write leaves its temp file behind; the next write of the same file removes
// the temp files of writers that no longer run. Shared by checkpoints, splits, results and reports.
// Node-only.

import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Write `data` to `path` atomically, creating the directory if needed; a failed write leaves no temp file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  await removeStaleTemps(dir, basename(path));
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
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
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix) || !e.endsWith('.tmp')) continue;
    const pid = Number(e.slice(prefix.length).split('.')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !running(pid)) await unlink(join(dir, e)).catch(() => undefined);
  }
}
