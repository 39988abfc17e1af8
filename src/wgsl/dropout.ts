// Inverted dropout: y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p) drawn from the Threefry
// generator exactly as fill.ts's bernoulli() draws it (same bits, so a CPU reference can rebuild it).
// The backward regenerates the same mask from (seed, stream) instead of storing it. No p = 1 (the
// scale would be infinite) and no per-channel (spatial) dropout.

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { THREEFRY_WGSL } from './fill.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

const WG = 64;

/** out[i] = a[i] * keep(i) * scale, keep(i) = bernoulli(1 - p) of element i of stream `stream`. */
export function dropoutShader(): string {
  return /* wgsl */ `
${THREEFRY_WGSL}
fn unit(x: u32) -> f32 { return f32(x >> 8u) * 5.960464477539063e-8; }
struct Params { n: u32, k0: u32, k1: u32, stream: u32, keep: f32, scale: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  let r = threefry(P.k0, P.k1, i, P.stream);
  out[i] = select(0.0, a[i] * P.scale, unit(r.x) < P.keep);
}`;
}

function launch(op: string, a: Tensor, k0: number, k1: number, stream: number, keep: number): Tensor {
  const out = new Tensor(a.ctx, a.shape, 'f32');
  if (out.size === 0) return out;
  a.ctx.dispatch({
    op,
    key: 'dropout',
    code: dropoutShader,
    buffers: [out.binding(op), a.binding(op)],
    uniforms: packUniforms([out.size, k0, k1, stream, { f: keep }, { f: 1 / keep }]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * Dropout of any-shaped f32 x with drop probability p in [0, 1). Identity (a view of x, same graph)
 * when !training or p = 0; otherwise takes one stream from `gen`. Gradient: dx = mask * g / (1 - p).
 */
export function dropout(x: Tensor, p: number, gen: Generator, training: boolean): Tensor {
  const op = 'dropout';
  if (!(p >= 0 && p < 1)) throw new EngineError(op, `drop probability ${p} is outside [0, 1)`);
  if (x.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${x.describe()}`);
  if (!training || p === 0) return record(view(x), op, [x], (g) => [view(g)]);
  if (x.size > 0xffffffff) throw new EngineError(op, 'too many elements for one 32-bit counter');
  const stream = gen.nextStream();
  const keep = 1 - p;
  const y = launch(op, x, gen.k0, gen.k1, stream, keep);
  return record(y, op, [x], (g) => [launch('dropout.backward', g, gen.k0, gen.k1, stream, keep)]);
}
