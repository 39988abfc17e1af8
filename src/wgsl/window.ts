// Swin's data movement: cyclic roll (torch.roll over chosen dims) and window partition / reverse
// ([B, H, W, C] <-> [B * nW, wsH * wsW, C]) with an optional cyclic shift folded into the same gather,
// so a shifted-window block costs one copy instead of roll + permute. Each is a pure index map, so
// its backward is the inverse map (roll by -shift; partition <-> reverse). No padding here: the
// caller pads H and W to multiples of the window first (torchvision pads before shifting).
//
// Letters: B batch, H W spatial size, C channels, wsH wsW window size, nW = (H / wsH) * (W / wsW)
// windows per image, sH sW the shift (the rolled map is torch.roll(x, (-sH, -sW), (1, 2))).

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { normAxis, shapeStr } from '../autograd/shape.js';
import { DIM_FN, grid1d, LINEAR_INDEX, MAX_RANK, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

/** out[c] = x[c'] with c'_d = (c_d + size_d - shift_d) % size_d (shift_d already in [0, size_d)). */
export function rollShader(): string {
  return /* wgsl */ `
struct Params { n: u32, rank: u32, shape: array<vec4<u32>, 2>, shift: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
${DIM_FN}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }
  var rem = e;
  var src = 0u;
  var stride = 1u;
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let size = dim(P.shape, du);
    let c = rem % size;
    rem = rem / size;
    src += ((c + size - dim(P.shift, du)) % size) * stride;
    stride *= size;
  }
  out[e] = x[src];
}`;
}

function rollRaw(op: string, x: Tensor, shifts: number[]): Tensor {
  const out = new Tensor(x.ctx, x.shape, 'f32');
  if (out.size === 0) return out;
  x.ctx.dispatch({
    op,
    key: 'roll',
    code: rollShader,
    buffers: [out.binding(op), x.binding(op)],
    uniforms: packUniforms([out.size, x.rank, { u32x4: x.shape, pad: 8 }, { u32x4: shifts, pad: 8 }]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

/**
 * torch.roll(x, shifts, dims): elements shifted cyclically by shifts[i] along dims[i] (negative
 * shifts roll backwards; a dim may repeat, its shifts add). Same shape as x. Backward: roll by -shifts.
 */
export function roll(x: Tensor, shifts: number | readonly number[], dims: number | readonly number[]): Tensor {
  const op = 'roll';
  const sh = typeof shifts === 'number' ? [shifts] : [...shifts];
  const ds = typeof dims === 'number' ? [dims] : [...dims];
  if (x.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${x.describe()}`);
  if (sh.length !== ds.length || sh.length === 0)
    throw new EngineError(op, `shifts [${sh.join(', ')}] and dims [${ds.join(', ')}] must be non-empty and of equal length`);
  if (x.rank > MAX_RANK) throw new EngineError(op, `rank ${x.rank} of ${x.describe()} exceeds ${MAX_RANK}`);
  const total = x.shape.map(() => 0);
  sh.forEach((s, i) => {
    if (!Number.isInteger(s)) throw new EngineError(op, `shift ${s} is not an integer`);
    total[normAxis(op, ds[i]!, x.rank)]! += s;
  });
  const norm = (t: number[]) => t.map((s, d) => { const n = x.shape[d]!; return n === 0 ? 0 : ((s % n) + n) % n; });
  const y = rollRaw(op, x, norm(total));
  return record(y, op, [x], (g) => [rollRaw('roll.backward', g, norm(total.map((s) => -s)))]);
}

// ------------------------------------------------------------------------------------------------
// Window partition / reverse

/**
 * partition: e runs over [B * nW, wsH * wsW, C] and reads the rolled map;
 * reverse:   e runs over [B, H, W, C] and reads the windows (un-rolling by the same shift).
 */
export function windowShader(mode: 'partition' | 'reverse'): string {
  const body =
    mode === 'partition'
      ? `
  let c = e % P.C;
  let t = (e / P.C) % (P.wsH * P.wsW);
  let bw = e / (P.C * P.wsH * P.wsW);
  let nWx = P.W / P.wsW;
  let nW = (P.H / P.wsH) * nWx;
  let b = bw / nW;
  let w = bw % nW;
  let y = ((w / nWx) * P.wsH + t / P.wsW + P.sH) % P.H;
  let x = ((w % nWx) * P.wsW + t % P.wsW + P.sW) % P.W;
  out[e] = src[((b * P.H + y) * P.W + x) * P.C + c];`
      : `
  let c = e % P.C;
  let x = (e / P.C) % P.W;
  let y = (e / (P.C * P.W)) % P.H;
  let b = e / (P.C * P.W * P.H);
  let yr = (y + P.H - P.sH) % P.H;
  let xr = (x + P.W - P.sW) % P.W;
  let nWx = P.W / P.wsW;
  let w = (yr / P.wsH) * nWx + xr / P.wsW;
  let t = (yr % P.wsH) * P.wsW + xr % P.wsW;
  let nW = (P.H / P.wsH) * nWx;
  out[e] = src[((b * nW + w) * P.wsH * P.wsW + t) * P.C + c];`;
  return /* wgsl */ `
struct Params { n: u32, H: u32, W: u32, C: u32, wsH: u32, wsW: u32, sH: u32, sW: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = ${LINEAR_INDEX(WG)};
  if (e >= P.n) { return; }${body}
}`;
}

interface WindowGeom { B: number; H: number; W: number; C: number; wsH: number; wsW: number; sH: number; sW: number }

function windowRaw(mode: 'partition' | 'reverse', op: string, src: Tensor, g: WindowGeom): Tensor {
  const nW = (g.H / g.wsH) * (g.W / g.wsW);
  const shape = mode === 'partition' ? [g.B * nW, g.wsH * g.wsW, g.C] : [g.B, g.H, g.W, g.C];
  const out = new Tensor(src.ctx, shape, 'f32');
  if (out.size === 0) return out;
  src.ctx.dispatch({
    op,
    key: `window:${mode}`,
    code: () => windowShader(mode),
    buffers: [out.binding(op), src.binding(op)],
    uniforms: packUniforms([out.size, g.H, g.W, g.C, g.wsH, g.wsW, g.sH, g.sW]),
    workgroups: grid1d(out.size, WG),
  });
  return out;
}

const pair = (v: number | readonly number[]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0]!, v[1]!]);

function checkWindow(op: string, H: number, W: number, ws: number | readonly number[], shift: number | readonly number[], what: string) {
  const [wsH, wsW] = pair(ws);
  const [sH, sW] = pair(shift);
  if (![wsH, wsW].every((n) => Number.isInteger(n) && n >= 1)) throw new EngineError(op, `window size ${shapeStr([wsH, wsW])} must be positive integers`);
  if (wsH > H || wsW > W) throw new EngineError(op, `window ${shapeStr([wsH, wsW])} is larger than the ${H}x${W} map of ${what} (pad the map or shrink the window)`);
  if (H % wsH || W % wsW) throw new EngineError(op, `the ${H}x${W} map of ${what} is not a multiple of the window ${shapeStr([wsH, wsW])} (pad it first)`);
  if (![sH, sW].every((n) => Number.isInteger(n))) throw new EngineError(op, `shift ${shapeStr([sH, sW])} must be integers`);
  return { wsH, wsW, sH: ((sH % H) + H) % H, sW: ((sW % W) + W) % W };
}

/**
 * Swin's window partition: x [B, H, W, C] -> [B * nW, wsH * wsW, C], windows in row-major order
 * per image, tokens row-major inside a window. With `shift` the map is first rolled by -shift
 * (torch.roll(x, (-sH, -sW), (1, 2)), the shifted-window step) in the same pass.
 */
export function windowPartition(x: Tensor, windowSize: number | readonly number[], shift: number | readonly number[] = 0): Tensor {
  const op = 'windowPartition';
  if (x.dtype !== 'f32' || x.rank !== 4) throw new EngineError(op, `x must be f32 [B, H, W, C], got ${x.describe()}`);
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const geom = { B, H, W, C, ...checkWindow(op, H, W, windowSize, shift, `x ${shapeStr(x.shape)}`) };
  const y = windowRaw('partition', op, x, geom);
  return record(y, op, [x], (g) => [windowRaw('reverse', 'windowPartition.backward', g, geom)]);
}

/**
 * Inverse of windowPartition: windows [B * nW, wsH * wsW, C] -> [B, H, W, C] (then rolled back by
 * +shift when `shift` is given, undoing the shifted partition).
 */
export function windowReverse(
  windows: Tensor,
  windowSize: number | readonly number[],
  H: number,
  W: number,
  shift: number | readonly number[] = 0,
): Tensor {
  const op = 'windowReverse';
  if (windows.dtype !== 'f32' || windows.rank !== 3) throw new EngineError(op, `windows must be f32 [B * nW, wsH * wsW, C], got ${windows.describe()}`);
  if (![H, W].every((n) => Number.isInteger(n) && n >= 1)) throw new EngineError(op, `map size ${H}x${W} must be positive integers`);
  const [BW, T, C] = windows.shape as [number, number, number];
  const g0 = checkWindow(op, H, W, windowSize, shift, `the output`);
  const nW = (H / g0.wsH) * (W / g0.wsW);
  if (T !== g0.wsH * g0.wsW || BW % nW !== 0)
    throw new EngineError(op, `windows ${shapeStr(windows.shape)} do not tile a ${H}x${W} map with window ${shapeStr([g0.wsH, g0.wsW])} (expected [B * ${nW}, ${g0.wsH * g0.wsW}, C])`);
  const geom = { B: BW / nW, H, W, C, ...g0 };
  const y = windowRaw('reverse', op, windows, geom);
  return record(y, op, [windows], (g) => [windowRaw('partition', 'windowReverse.backward', g, geom)]);
}
