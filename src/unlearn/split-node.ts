// Node file I/O for forget splits (JSON next to the results, spec §5); re-exports the atomic write
// the unlearning reports use. Node-only: the browser entry does not import this file.

import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-node.js';
import { splitFromJson, splitToJson, type ForgetSplit } from './split.js';

export { writeFileAtomic };

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
