// Checkpoint I/O through Node's file system: atomic safetensors writes (saveSafetensorsFile writes a
// temporary file and renames it), parent folders created on save. Node only (exported from
// src/node.ts); the browser-safe loop takes any CheckpointIO.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadSafetensorsFile, saveSafetensorsFile } from '../io/safetensors-node.js';
import type { CheckpointIO } from './checkpoint.js';

/** Checkpoints as files on disk (paths as node:fs takes them). */
export function nodeCheckpointIO(): CheckpointIO {
  return {
    async save(path, tensors, metadata) {
      mkdirSync(dirname(path), { recursive: true });
      await saveSafetensorsFile(path, tensors, metadata);
    },
    async load(path) {
      return existsSync(path) ? loadSafetensorsFile(path) : null;
    },
  };
}
