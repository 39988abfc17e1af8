// Node file I/O for safetensors: an atomic save (temp file in the same directory, fsync, rename)
// and a load whose errors name the file. Node-only: the browser entry does not import this file.
// Parsing and serialization live in ./safetensors.ts.

import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-node.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type SafetensorsTensor } from './safetensors.js';

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

/** Read and parse a safetensors file; errors start with the file name. */
export async function loadSafetensorsFile(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  try {
    return parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
