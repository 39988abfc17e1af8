// Node file I/O for safetensors: an atomic save (temp file in the same directory, fsync, rename),
// a load whose errors name the file, and a load of a model split into shards (a list of files, a
// comma-separated list, or a Hugging Face model.safetensors.index.json). Node-only: the browser entry
// does not import this file. Parsing, merging and index checks live in ./safetensors.ts.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../util/errors.js';
import { writeFileAtomic } from './atomic-node.js';
import {
  checkAgainstIndex,
  mergeSafetensors,
  parseSafetensors,
  parseSafetensorsIndex,
  serializeSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './safetensors.js';

/**
 * Write `tensors` to `path` atomically: readers see either the old file or the complete new one,
 * never a partial file (a failed write removes its temp file).
 */
export async function saveSafetensorsFile(
  path: string,
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = serializeSafetensors(tensors, metadata);
  } catch (e) {
    throw new Error(`saving ${path}: ${(e as Error).message}`);
  }
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`saving ${path}: ${(e as Error).message.replace(`writing ${path}: `, '')}`);
  }
}

async function readBytes(file: string, what = ''): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new EngineError('safetensors', `${file}${what}: cannot read: ${(e as Error).message}`);
  }
}

/** Read and parse a safetensors file (an EngineError naming the file on any problem). */
export async function loadSafetensorsFile(file: string, opts: { checkFinite?: boolean } = {}): Promise<SafetensorsFile> {
  return parseSafetensors(await readBytes(file), { name: file, checkFinite: opts.checkFinite });
}

/**
 * A model's weights from one file or several shards merged into one name -> tensor record. `source`:
 * a path, a comma-separated list of paths, an array of paths, or one `*.index.json` (Hugging Face
 * layout: shard files named by its weight_map, relative to its folder, checked against it). Every
 * file is checked to exist before any is read; then each is parsed (see parseSafetensors) and the
 * shards merged (a tensor name in two shards is an error). `checkFinite` rejects NaN / ±Inf weights,
 * naming the tensor and the first bad index: turn it on for checkpoints users bring.
 */
export async function loadSafetensorsShards(source: string | readonly string[], opts: { checkFinite?: boolean } = {}): Promise<SafetensorsFile> {
  const list = (typeof source === 'string' ? source.split(',') : [...source]).map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new EngineError('safetensors', 'no safetensors file given');
  const indexFile = list.length === 1 && list[0]!.endsWith('.index.json') ? list[0]! : undefined;
  if (list.some((f) => f.endsWith('.index.json')) && !indexFile)
    throw new EngineError('safetensors', `an .index.json must be given alone, not with other files: ${list.join(', ')}`);
  const index = indexFile ? parseSafetensorsIndex(new TextDecoder().decode(await readBytes(indexFile)), indexFile) : undefined;
  const files = index ? index.shards.map((s) => ({ shard: s, file: path.join(path.dirname(indexFile!), s) })) : list.map((f) => ({ shard: f, file: f }));
  const dup = files.find((f, i) => files.findIndex((g) => path.resolve(g.file) === path.resolve(f.file)) !== i);
  if (dup) throw new EngineError('safetensors', `shard ${dup.file} is given twice`);
  for (const { file } of files) {
    const st = await stat(file).catch(() => null);
    if (!st?.isFile())
      throw new EngineError('safetensors', `shard file ${file}${index ? ` (named by ${indexFile})` : ''} ${st ? 'is not a file' : 'does not exist'}`);
  }
  const shards: { name: string; shard: string; file: SafetensorsFile }[] = [];
  for (const { shard, file } of files) shards.push({ name: file, shard, file: await loadSafetensorsFile(file, opts) });
  if (index) checkAgainstIndex(index, shards, indexFile);
  return mergeSafetensors(shards);
}
