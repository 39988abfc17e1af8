// Shared by the golden tests (ResNet, Swin, ViT, UNet, DiT, the forward verb): the relative error
// they compare with, and a by-name lookup into a PyTorch fixture that names a missing tensor.

import type { SafetensorsFile, SafetensorsTensor } from '../src/io/safetensors.js';

/** max|a - b| / max|b| (b the golden value); Infinity on a length mismatch or a NaN. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return Number.isNaN(d) || a.length !== b.length ? Infinity : d / Math.max(m, 1e-30);
}

/** `name` (after `prefix`) from a fixture file, or an error naming it. */
export const goldenLookup =
  (file: SafetensorsFile, prefix = '') =>
  (name: string): SafetensorsTensor => {
    const t = file.tensors.get(prefix + name);
    if (!t) throw new Error(`fixture has no '${prefix}${name}'`);
    return t;
  };
