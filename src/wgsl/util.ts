// Small helpers shared by the kernel files: launch grids, uniform packing, WGSL literals.
// No kernels here.

/** Invocation index for a 1-D launch spread over a 2-D grid (x is capped at 65535 workgroups). */
export const LINEAR_INDEX = (wg: number) =>
  `gid.x + gid.y * (nwg.x * ${wg}u)`;

/** Workgroup counts covering `n` invocations of a 1-D kernel with workgroup size `wg`. */
export function grid1d(n: number, wg: number): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/** Full-precision WGSL f32 literal (STYLE.md rule 9). */
export function f32lit(x: number): string {
  if (Number.isNaN(x)) throw new Error('f32lit: NaN');
  if (!Number.isFinite(x)) return x > 0 ? 'bitcast<f32>(0x7f800000u)' : 'bitcast<f32>(0xff800000u)';
  const s = Math.fround(x).toPrecision(9);
  return s.includes('e') || s.includes('.') ? s : `${s}.0`;
}

/**
 * Pack a uniform block: each entry is a u32 (number), an i32 ({ i: n }) or an f32 ({ f: x }),
 * 4 bytes each in order; arrays of numbers are packed as u32 runs padded to 16 bytes (vec4<u32>).
 */
export type UniformValue = number | { f: number } | { i: number } | { u32x4: readonly number[]; pad?: number };
export function packUniforms(values: UniformValue[]): ArrayBuffer {
  const words: { t: 'u' | 'i' | 'f'; v: number }[] = [];
  for (const v of values) {
    if (typeof v === 'number') words.push({ t: 'u', v });
    else if ('f' in v) words.push({ t: 'f', v: v.f });
    else if ('i' in v) words.push({ t: 'i', v: v.i });
    else {
      while (words.length % 4) words.push({ t: 'u', v: 0 });
      const len = Math.ceil((v.pad ?? v.u32x4.length) / 4) * 4;
      for (let k = 0; k < len; k++) words.push({ t: 'u', v: v.u32x4[k] ?? 0 });
    }
  }
  const n = Math.max(4, Math.ceil(words.length / 4) * 4);
  const buf = new ArrayBuffer(n * 4);
  const dv = new DataView(buf);
  words.forEach((w, k) => {
    if (w.t === 'f') dv.setFloat32(k * 4, w.v, true);
    else if (w.t === 'i') dv.setInt32(k * 4, w.v, true);
    else dv.setUint32(k * 4, w.v >>> 0, true);
  });
  return buf;
}

/** Maximum tensor rank supported by the generic strided kernels (shape passed as 2 x vec4<u32>). */
export const MAX_RANK = 8;

/** WGSL to read dimension d of a shape/stride packed as array<vec4<u32>, 2>. */
export const DIM_FN = `fn dim(a: array<vec4<u32>, 2>, d: u32) -> u32 { return a[d / 4u][d % 4u]; }`;
