// Seeded fuzzing of file readers (used by test/fuzz-*.test.ts): a valid input is mutated (truncation,
// flipped bytes, overwritten fields with extreme values, insertions, deletions, garbage, plus
// reader-specific structural mutations), and every case must either parse or throw an EngineError
// naming the file: never another exception, never more than a bounded allocation, never a hang (each
// case is timed). A failure names the seed (FUZZ_SEED=<seed> replays it), the case and its mutation.

import { EngineError } from '../src/util/errors.js';
import { Generator } from '../src/util/rng.js';

/** Seeded random choices for mutations. */
export class Fuzz {
  private g: Generator;
  constructor(readonly seed: number) {
    this.g = new Generator(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.g.cpuInt(Math.max(1, n));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.g.cpuUniform() < p;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
  /** An extreme or random unsigned 32-bit value. */
  u32(): number {
    return this.pick([0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, this.int(2 ** 32), this.int(1 << 16)]);
  }
}

export interface Mutation {
  bytes: Uint8Array;
  what: string;
}

/** One generic mutation of `b` (a fresh copy; `b` is not modified). */
export function mutate(f: Fuzz, b: Uint8Array): Mutation {
  const c = new Uint8Array(b);
  switch (f.int(7)) {
    case 0: {
      const n = f.int(b.length);
      return { bytes: c.subarray(0, n), what: `truncated to ${n} of ${b.length} bytes` };
    }
    case 1: {
      const k = 1 + f.int(8);
      const at: number[] = [];
      for (let i = 0; i < k; i++) {
        const p = f.int(c.length);
        c[p]! ^= 1 + f.int(255);
        at.push(p);
      }
      return { bytes: c, what: `flipped bytes at ${at.join(', ')}` };
    }
    case 2: {
      const p = f.int(Math.max(1, c.length - 3));
      const v = f.u32();
      new DataView(c.buffer).setUint32(Math.min(p, Math.max(0, c.length - 4)), v, f.chance(0.5));
      return { bytes: c, what: `u32 ${v} written at ${p}` };
    }
    case 3: {
      const p = f.int(c.length);
      const ins = f.bytes(1 + f.int(16));
      const out = new Uint8Array(c.length + ins.length);
      out.set(c.subarray(0, p));
      out.set(ins, p);
      out.set(c.subarray(p), p + ins.length);
      return { bytes: out, what: `${ins.length} random bytes inserted at ${p}` };
    }
    case 4: {
      const p = f.int(c.length);
      const n = 1 + f.int(32);
      const out = new Uint8Array([...c.subarray(0, p), ...c.subarray(p + n)]);
      return { bytes: out, what: `${n} bytes deleted at ${p}` };
    }
    case 5: {
      const n = f.int(64);
      return { bytes: new Uint8Array([...c, ...f.bytes(n)]), what: `${n} bytes appended` };
    }
    default: {
      const n = f.int(600);
      return { bytes: f.bytes(n), what: `${n} random bytes` };
    }
  }
}

export interface FuzzSpec<R> {
  /** Names the reader in failure messages. */
  reader: string;
  cases: number;
  /** Produces the input of case i (a mutated valid file). */
  make: (f: Fuzz, i: number) => Mutation;
  /** Runs the reader on the bytes; `name` must appear in any error it throws. */
  run: (bytes: Uint8Array, name: string) => R | Promise<R>;
  /** Checks a successful result (throw to fail). */
  check?: (result: R, bytes: Uint8Array) => void;
  /** Largest allowed growth of ArrayBuffer memory during one case (default 1 MiB + 64x the input). */
  maxGrowth?: (bytes: Uint8Array) => number;
  /** Longest allowed time for one case in ms (default 2000). */
  maxMs?: number;
}

/** The seed: FUZZ_SEED when set, else fresh. */
export const fuzzSeed = (): number => (process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32));

/** Runs the cases; resolves to counts of parsed and rejected inputs; rejects naming seed and case. */
export async function fuzz<R>(spec: FuzzSpec<R>, seed = fuzzSeed()): Promise<{ ok: number; rejected: number; seed: number }> {
  const f = new Fuzz(seed);
  let ok = 0;
  let rejected = 0;
  for (let i = 0; i < spec.cases; i++) {
    const { bytes, what } = spec.make(f, i);
    const name = `fuzz-case-${i}.bin`;
    const fail = (why: string): never => {
      const head = Array.from(bytes.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new Error(`${spec.reader}: seed ${seed} (FUZZ_SEED=${seed} replays it), case ${i} (${what}; ${bytes.length} bytes: ${head}...): ${why}`);
    };
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    let result: R | undefined;
    let threw: unknown;
    try {
      result = await spec.run(bytes, name);
    } catch (e) {
      threw = e;
    }
    const ms = performance.now() - t0;
    const grown = process.memoryUsage().arrayBuffers - before;
    const limit = spec.maxGrowth ? spec.maxGrowth(bytes) : (1 << 20) + 64 * bytes.length;
    if (grown > limit) fail(`ArrayBuffer memory grew by ${grown} bytes (limit ${limit})`);
    if (ms > (spec.maxMs ?? 2000)) fail(`took ${ms.toFixed(0)} ms`);
    if (threw !== undefined) {
      const err = threw as Error;
      if (!(err instanceof EngineError)) fail(`threw ${err?.constructor?.name}: ${err?.stack ?? String(err)}`);
      if (!err.message.includes(name)) fail(`error does not name the file: ${err.message}`);
      rejected++;
    } else {
      try {
        spec.check?.(result as R, bytes);
      } catch (e) {
        fail(`parsed, but the result is wrong: ${(e as Error).message}`);
      }
      ok++;
    }
  }
  return { ok, rejected, seed };
}
