// Counter-based random numbers on the CPU: Threefry-2x32-20 (Random123, JAX) and the seeded
// Generator every random draw of the library takes explicitly (no global RNG). The GPU form of the
// same function is in src/wgsl/fill.ts; both give the same numbers for the same (key, counter).

import { EngineError } from './errors.js';

export const THREEFRY_ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];

/** Threefry-2x32 with 20 rounds on the CPU (the reference for the WGSL version). */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]!) >>> 0;
  let x1 = (c1 + ks[1]!) >>> 0;
  for (let r = 0; r < 20; r++) {
    x0 = (x0 + x1) >>> 0;
    const s = THREEFRY_ROTATIONS[r % 8]!;
    x1 = ((x1 << s) | (x1 >>> (32 - s))) >>> 0;
    x1 = (x1 ^ x0) >>> 0;
    if (r % 4 === 3) {
      const j = (r + 1) / 4;
      x0 = (x0 + ks[j % 3]!) >>> 0;
      x1 = (x1 + ks[(j + 1) % 3]! + j) >>> 0;
    }
  }
  return [x0, x1];
}

/** Uniform in [0, 1) from 24 high bits; used identically by the GPU and the CPU reference. */
export const u32ToUnit = (x: number) => (x >>> 8) * 5.960464477539063e-8;

/**
 * A seeded stream of random numbers. Each draw uses a fresh 32-bit stream id as the second counter
 * word, so successive calls give independent numbers and the sequence depends only on the seed.
 */
export class Generator {
  private stream = 0;
  readonly k0: number;
  readonly k1: number;
  constructor(readonly seed: number) {
    this.k0 = seed >>> 0;
    this.k1 = Math.floor(seed / 4294967296) >>> 0;
  }
  /** Next stream id (advances the generator). */
  nextStream(): number {
    return this.stream++ >>> 0;
  }
  /** Uniform [0,1) on the CPU (for shuffles and sampling), from the same counter scheme. */
  cpuUniform(): number {
    return u32ToUnit(threefry2x32(this.k0, this.k1, 0, this.nextStream())[0]);
  }
  /** Integer in [0, n). */
  cpuInt(n: number): number {
    return Math.floor(this.cpuUniform() * n);
  }
  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.cpuInt(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
  state(): { seed: number; stream: number } {
    return { seed: this.seed, stream: this.stream };
  }
  setState(s: { seed: number; stream: number }): void {
    if (s.seed !== this.seed) throw new EngineError('Generator.setState', `seed ${s.seed} differs from ${this.seed}`);
    this.stream = s.stream;
  }
}

