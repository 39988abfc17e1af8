// Fused optimizer updates (SGD with momentum, Adam, AdamW), one dispatch per parameter per step,
// updating the parameter and its state buffers in place, with an optional strict update mask; plus
// the in-place gradient scaling of clip-grad-norm. No autograd: these run outside the graph.
// It does not keep state or count steps: src/nn/optim.ts does, and passes bias corrections in.
//
// Shapes: every tensor of one launch has the parameter's shape, N elements in all.

import type { Tensor } from '../autograd/tensor.js';
import { sameShape } from '../autograd/shape.js';
import { f32lit, grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';

const WG = 64;

export type UpdateRule = 'sgd' | 'sgd-momentum' | 'adam' | 'adamw';

/** Uniform values of one update; unused ones are ignored by the rule. */
export interface UpdateParams {
  lr: number;
  weightDecay: number;
  /** SGD momentum factor. */
  momentum?: number;
  /** 1 on the first step of this parameter: the state starts from zero (Adam) or from g (SGD). */
  first: boolean;
  /** Adam: lr / (1 - beta1^t), computed in float64 by the caller. */
  stepSize?: number;
  /** Adam: sqrt(1 - beta2^t). */
  bc2Sqrt?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/**
 * WGSL of one update rule over T = f32 or vec4<f32> (`vec4` when N % 4 == 0). Bindings: p,
 * state..., g, [mask], uniforms P. Strict mask: an invocation whose mask lanes are all 0 returns
 * without writing p or the state; a partly masked vec4 writes the old bits back on its masked lanes
 * through an integer select (no float operation touches them). On a parameter's first step the
 * state is defined as zero on masked lanes.
 */
export function updateShader(rule: UpdateRule, masked: boolean, vec4: boolean): string {
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const U = vec4 ? 'vec4<u32>' : 'u32';
  const state = rule === 'sgd' ? [] : rule === 'sgd-momentum' ? ['buf'] : ['m', 'v'];
  const decl = [
    `@group(0) @binding(0) var<storage, read_write> p: array<T>;`,
    ...state.map((s, k) => `@group(0) @binding(${k + 1}) var<storage, read_write> ${s}: array<T>;`),
    `@group(0) @binding(${state.length + 1}) var<storage, read> g: array<T>;`,
    masked ? `@group(0) @binding(${state.length + 2}) var<storage, read> mask: array<T>;` : '',
    `@group(0) @binding(${state.length + (masked ? 3 : 2)}) var<uniform> P: Params;`,
  ].join('\n');
  // old state values: zero on the first step (torch creates the state then)
  const loadState = state
    .map((s) => `var ${s}0 = T(0.0);\n  if (P.first == 0u) { ${s}0 = ${s}[i]; }`)
    .join('\n  ');
  const maskCheck = masked
    ? `let frozen = mask[i] == T(0.0);
  if (all(frozen)) {
    if (P.first != 0u) { ${state.map((s) => `${s}[i] = T(0.0);`).join(' ')} }
    return;
  }`
    : '';
  let update: string;
  switch (rule) {
    case 'sgd':
      // torch.optim.SGD, momentum 0: g += wd p; p -= lr g
      update = `let d = g[i] + T(P.wd) * p0;
  let p1 = p0 - T(P.lr) * d;`;
      break;
    case 'sgd-momentum':
      // buf = g on the first step, else momentum buf + g (dampening 0); p -= lr buf
      update = `let d = g[i] + T(P.wd) * p0;
  var buf1 = d;
  if (P.first == 0u) { buf1 = T(P.momentum) * buf0 + d; }
  let p1 = p0 - T(P.lr) * buf1;`;
      break;
    case 'adam':
    case 'adamw': {
      // torch.optim.Adam / AdamW: m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
      // p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps). Adam adds wd p to g; AdamW scales p by
      // 1 - lr wd first.
      const decay =
        rule === 'adam' ? 'let d = g[i] + T(P.wd) * p0;\n  let q = p0;' : 'let d = g[i];\n  let q = p0 * T(1.0 - P.lr * P.wd);';
      update = `${decay}
  let m1 = m0 + T(1.0 - P.beta1) * (d - m0);
  let v1 = T(P.beta2) * v0 + T(1.0 - P.beta2) * d * d;
  let p1 = q - T(P.stepSize) * m1 / (sqrt(v1) / T(P.bc2Sqrt) + T(P.eps));`;
      break;
    }
  }
  // masked lanes keep their old bits (first step: state 0)
  const keep = (neu: string, old: string) =>
    masked ? `bitcast<T>(select(bitcast<U>(${neu}), bitcast<U>(${old}), frozen))` : neu;
  const stores = [`p[i] = ${keep('p1', 'p0')};`, ...state.map((s) => `${s}[i] = ${keep(`${s}1`, `${s}0`)};`)].join('\n  ');
  return /* wgsl */ `
alias T = ${T};
alias U = ${U};
struct Params { n: u32, first: u32, lr: f32, wd: f32, momentum: f32, stepSize: f32, bc2Sqrt: f32, beta1: f32, beta2: f32, eps: f32 }
${decl}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  ${maskCheck}
  let p0 = p[i];
  ${loadState}
  ${update}
  ${stores}
}`;
}

/**
 * One fused optimizer update in place: p [N], state [N] each (none for plain SGD, the momentum
 * buffer for SGD with momentum, exp_avg and exp_avg_sq for Adam/AdamW), gradient g [N], optional
 * mask [N] (0 = frozen: p and state untouched).
 */
export function optimizerUpdate(
  rule: UpdateRule,
  p: Tensor,
  state: Tensor[],
  g: Tensor,
  mask: Tensor | null,
  u: UpdateParams,
): void {
  const op = `optim.${rule}`;
  const nState = rule === 'sgd' ? 0 : rule === 'sgd-momentum' ? 1 : 2;
  if (state.length !== nState) throw new EngineError(op, `expected ${nState} state tensors, got ${state.length}`);
  const all: [string, Tensor][] = [
    ['param', p],
    ...state.map((s, k) => [`state ${k}`, s] as [string, Tensor]),
    ['grad', g],
    ...(mask ? [['mask', mask] as [string, Tensor]] : []),
  ];
  for (const [what, t] of all) {
    if (t.dtype !== 'f32') throw new EngineError(op, `${what} is ${t.describe()}; updates take f32`);
    if (!sameShape(t.shape, p.shape)) throw new EngineError(op, `${what} ${t.describe()} does not match parameter ${p.describe()}`);
    if (t.ctx !== p.ctx) throw new EngineError(op, `${what} lives on another GPU context`);
  }
  const n = p.size;
  if (n === 0) return;
  const masked = mask !== null;
  const vec4 = n % 4 === 0;
  const threads = vec4 ? n / 4 : n;
  p.ctx.dispatch({
    op,
    key: `optim:${rule}:${masked ? 'mask' : 'nomask'}:${vec4 ? 'v4' : 's'}`,
    code: () => updateShader(rule, masked, vec4),
    buffers: all.map(([, t]) => t.binding(op)),
    uniforms: packUniforms([
      threads,
      u.first ? 1 : 0,
      { f: u.lr },
      { f: u.weightDecay },
      { f: u.momentum ?? 0 },
      { f: u.stepSize ?? 0 },
      { f: u.bc2Sqrt ?? 1 },
      { f: u.beta1 ?? 0 },
      { f: u.beta2 ?? 0 },
      { f: u.eps ?? 0 },
    ]),
    workgroups: grid1d(threads, WG),
  });
}

const CLIP_SHADER = /* wgsl */ `
struct Params { n: u32, maxNorm: f32 }
@group(0) @binding(0) var<storage, read_write> g: array<f32>;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${LINEAR_INDEX(WG)};
  if (i >= P.n) { return; }
  // torch.nn.utils.clip_grad_norm_: coef = min(1, maxNorm / (norm + 1e-6))
  let coef = min(1.0, P.maxNorm / (norm[0] + ${f32lit(1e-6)}));
  g[i] = g[i] * coef;
}`;

/** g [N] *= min(1, maxNorm / (norm + 1e-6)) in place, the norm read from a one-element tensor on the GPU. */
export function clipScale(g: Tensor, norm: Tensor, maxNorm: number): void {
  const op = 'clipGradNorm';
  if (g.dtype !== 'f32' || norm.dtype !== 'f32') throw new EngineError(op, `expected f32, got ${g.describe()} and ${norm.describe()}`);
  if (norm.size !== 1) throw new EngineError(op, `the norm must have one element, got ${norm.describe()}`);
  if (g.size === 0) return;
  g.ctx.dispatch({
    op,
    key: 'optim:clipScale',
    code: () => CLIP_SHADER,
    buffers: [g.binding(op), norm.binding(op)],
    uniforms: packUniforms([g.size, { f: maxNorm }]),
    workgroups: grid1d(g.size, WG),
  });
}
