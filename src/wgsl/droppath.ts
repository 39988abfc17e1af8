// Drop path (stochastic depth, torchvision.ops.stochastic_depth mode "row"): each sample of the batch
// is zeroed with probability p and the survivors are scaled by 1 / (1 - p). The per-sample keep bit
// is Threefry(seed, stream) at counter = sample index (the bits fill.ts's bernoulli() would draw for
// a [N] tensor), regenerated in the backward instead of stored. No "batch" mode (one bit for all).

import { Tensor } from '../autograd/tensor.js';
import { record, view } from '../autograd/graph.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { THREEFRY_WGSL } from './fill.js';
import { EngineError } from '../util/errors.js';
import type { Generator } from '../util/rng.js';

const WG = 64;

/** out[i] = a[i] * scale where sample i / per is kept, else 0. */
export function dropPathShader(): string {
  return /* wgsl */ `
${THREEFRY_WGSL}
fn unit(x: u32) -> f32 { return f32(x >> 8u) * 5.960464477539063e-8; }
struct Params { n: u32, per: u32, k0: u32, k1: u32, stream: u32, keep: f32, scale: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  let r = threefry(P.k0, P.k1, i / P.per, P.stream);
  out[i] = select(0.0, a[i] * P.scale, unit(r.x) < P.keep);
}`;
}

function launch(op: string, a: Tensor, k0: number, k1: number, stream: number, keep: number): Tensor {
  const out = new Tensor(a.ctx, a.shape, 'f32');
  if (out.size === 0) return out;
  a.ctx.dispatch({
    op,
    key: 'dropPath',
    code: dropPathShader,
    buffers: [out.binding(op), a.binding(op)],
    uniforms: packUniforms([out.size, out.size / a.shape[0]!, k0, k1, stream, { f: keep }, { f: keep > 0 ? 1 / keep : 0 }]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * Stochastic depth of x [N, ...] with drop probability p in [0, 1]: y[n] = x[n] * keep_n / (1 - p),
 * keep_n ~ Bernoulli(1 - p) (p = 1 gives zeros, as torchvision). Identity (a view, same graph) when
 * !training or p = 0; otherwise takes one stream from `gen`. Gradient: the same mask and scale.
 */
export function dropPath(x: Tensor, p: number, gen: Generator, training: boolean): Tensor {
  const op = 'dropPath';
  if (!(p >= 0 && p <= 1)) throw new EngineError(op, `drop probability ${p} is outside [0, 1]`);
  if (x.dtype !== 'f32' || x.rank < 1) throw new EngineError(op, `expected f32 [N, ...], got ${x.describe()}`);
  if (!training || p === 0) return record(view(x), op, [x], (g) => [view(g)]);
  const stream = gen.nextStream();
  const keep = 1 - p;
  const y = launch(op, x, gen.k0, gen.k1, stream, keep);
  return record(y, op, [x], (g) => [launch('dropPath.backward', g, gen.k0, gen.k1, stream, keep)]);
}
