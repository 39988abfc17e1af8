// The normalisation family: batch norm 2d, layer norm and group norm as one set of kernels over a
// tensor seen as [N, G, K, S]. The forward computes per-group statistics (mean and rstd, saved for the
// backward), then y = act((x - mean) * rstd * weight + bias) with an optional fused relu or silu;
// the backward gives dx, dweight and dbias. Cross-invocation sums go through reduce_wg.ts.
// It does not do batch norm without affine or without running statistics, momentum=None (cumulative
// average), instance norm, or layer norm over dimensions other than the trailing ones.
//
// Letters: N batch (layer norm: rows), G groups (batch norm: channels), K channels per group
// (layer norm: normalised features), S spatial positions (H·W or L; 1 for layer norm),
// C = G·K affine channels, M values per statistic (batch norm N·S, layer/group norm K·S).
//   batch norm [N, C, H, W]:   N, G = C, K = 1, S = H·W; statistics per channel (over N and S)
//   layer norm [..., D...]:    N = rows, G = 1, K = D, S = 1; statistics per row
//   group norm [N, C, *]:      N, G, K = C / G, S = prod(*); statistics per (n, g)
// Two views of x drive the reductions: the channel view keeps c and sums over (n, s) (batch norm
// statistics; dweight and dbias of every kind), the row view keeps r = n·G + g and sums over (k, s)
// (layer/group norm statistics and their dx terms).

import { Tensor } from '../autograd/tensor.js';
import { record } from '../autograd/graph.js';
import { numel, shapeStr } from '../autograd/shape.js';
import { grid1d, LINEAR_INDEX, packUniforms } from './util.js';
import { EngineError } from '../util/errors.js';
import { planReduction, planKey, planEnable, planBuiltins, planArgs, wgReduceFn, type ReducePlan, type ReduceChoice } from './reduce_wg.js';

const WG = 64;
/** Invocations per statistic on the workgroup paths of GPUs (CPU devices use one subgroup). */
const WG_WIDE = 256;

/** Activation fused as the forward's epilogue (and folded into the backward). */
export type NormActivation = 'none' | 'relu' | 'silu';

export interface NormOptions {
  /** Applied to the normalised, affine-transformed value (default 'none'). */
  activation?: NormActivation;
  /** Forces how statistics and gradient sums are reduced (tests and benchmarks). */
  strategy?: ReduceChoice;
}

export interface BatchNorm2dOptions extends NormOptions {
  /** Batch statistics (and running-stat update) when true, running statistics when false. */
  training: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch default 0.1). */
  momentum?: number;
  /** Added to the variance (PyTorch default 1e-5). */
  eps?: number;
}

/** One normalisation call, as the kernels see it. */
interface NormGeom {
  N: number;
  G: number;
  K: number;
  S: number;
  /** statistics per row (n, g) (layer/group norm) rather than per channel (batch norm, K = 1) */
  perRow: boolean;
}

const PARAMS = /* wgsl */ `struct Params {
  N: u32, G: u32, K: u32, S: u32, C: u32, nStats: u32, nKept: u32, lbShift: u32,
  M: f32, eps: f32, momentum: f32, unbias: f32,
}`;

type View = 'channel' | 'row';

/**
 * WGSL loop over the values of kept index `q` in `view`, running `body` with `i` (flat index),
 * `k` (statistic index) and `c` (affine channel) defined. On workgroup plans the invocations split
 * as [WG / Lb, Lb] over (outer, S) with Lb = 2^lbShift, so short spatial rows still fill the lanes.
 */
function forEachValue(view: View, perRow: boolean, plan: ReducePlan, body: string): string {
  const wide = plan.strategy !== 'loop';
  const a0 = wide ? '(li >> P.lbShift)' : '0u';
  const aStep = wide ? `(${plan.wg}u >> P.lbShift)` : '1u';
  const b0 = wide ? '(li & ((1u << P.lbShift) - 1u))' : '0u';
  const bStep = wide ? '(1u << P.lbShift)' : '1u';
  if (view === 'channel')
    return /* wgsl */ `{
    let c = q;
    let kc = c / P.K;
    for (var a = ${a0}; a < P.N; a += ${aStep}) {
      let base = (a * P.C + c) * P.S;
      let k = ${perRow ? 'a * P.G + kc' : 'c'};
      for (var b = ${b0}; b < P.S; b += ${bStep}) {
        let i = base + b;
        ${body}
      }
    }
  }`;
  return /* wgsl */ `{
    let k = q;
    let g = q % P.G;
    for (var a = ${a0}; a < P.K; a += ${aStep}) {
      let base = (q * P.K + a) * P.S;
      let c = g * P.K + a;
      for (var b = ${b0}; b < P.S; b += ${bStep}) {
        let i = base + b;
        ${body}
      }
    }
  }`;
}

/** main() of a reduction kernel: `q` the kept index, `valid`, `lead` (the invocation that stores). */
function reduceMain(plan: ReducePlan): string {
  if (plan.strategy === 'loop')
    return /* wgsl */ `@compute @workgroup_size(${plan.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>${planBuiltins(plan)}) {
  let q = ${LINEAR_INDEX(plan.wg)};
  let valid = q < P.nKept;
  let lead = true;`;
  return /* wgsl */ `@compute @workgroup_size(${plan.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>${planBuiltins(plan)}) {
  let q = wid.x + wid.y * nwg.x;
  let valid = q < P.nKept;
  let lead = li == 0u;`;
}

const SUM = { type: 'f32', identity: '0.0' };
const SUM2 = { type: 'vec2<f32>', identity: 'vec2<f32>(0.0)' };

/** WGSL of act(z) and of d act / dz over the shader's value type T (f32 or vec4<f32>). */
const ACT: Record<NormActivation, { f: (z: string) => string; df: (z: string) => string }> = {
  none: { f: (z) => z, df: () => 'T(1.0)' },
  relu: { f: (z) => `max(${z}, T(0.0))`, df: (z) => `select(T(0.0), T(1.0), ${z} > T(0.0))` },
  // silu(z) = z·σ(z), silu'(z) = σ(z)·(1 + z·(1 - σ(z)))
  silu: { f: (z) => `(${z} / (T(1.0) + exp(-${z})))`, df: (z) => `silu_grad(${z})` },
};
/** The value type T and the activation's helper. */
const prelude = (vec: boolean, act: NormActivation) =>
  `alias T = ${vec ? 'vec4<f32>' : 'f32'};\n${act === 'silu' ? 'fn silu_grad(z: T) -> T { let s = T(1.0) / (T(1.0) + exp(-z)); return s * (T(1.0) + z * (T(1.0) - s)); }' : ''}`;

/**
 * Storage declarations: the read_write ones, then the read-only ones, bindings numbered in order,
 * then the uniforms P. `type` gives each array's element type (f32 unless told).
 */
function bindings(rw: string[], ro: string[], type: (name: string) => string = () => 'f32'): string {
  const all = [...rw.map((n) => [n, 'read_write'] as const), ...ro.map((n) => [n, 'read'] as const)];
  return [...all.map(([n, m], k) => `@group(0) @binding(${k}) var<storage, ${m}> ${n}: array<${type(n)}>;`), `@group(0) @binding(${all.length}) var<uniform> P: Params;`].join('\n');
}

/**
 * Statistics: stats = [mean; rstd] as [2, nStats], two passes over each group (mean, then the mean
 * of squared deviations: the biased variance). Batch norm in training also updates runningMean and
 * runningVar in place with momentum and the unbiased variance (× M / (M - 1)).
 */
function statsShader(view: View, perRow: boolean, running: boolean, plan: ReducePlan): string {
  return /* wgsl */ `${planEnable(plan)}
${PARAMS}
${bindings(running ? ['stats', 'runningMean', 'runningVar'] : ['stats'], ['x'])}
${wgReduceFn('sumMean', SUM, plan)}
${wgReduceFn('sumVar', SUM, plan)}
${reduceMain(plan)}
  var s = 0.0;
  if (valid) ${forEachValue(view, perRow, plan, 's += x[i];')}
  let mean = sumMean(s, ${planArgs(plan)}) / P.M;
  var d2 = 0.0;
  if (valid) ${forEachValue(view, perRow, plan, 'let d = x[i] - mean; d2 += d * d;')}
  let variance = sumVar(d2, ${planArgs(plan)}) / P.M;
  if (valid && lead) {
    stats[q] = mean;
    stats[P.nStats + q] = inverseSqrt(variance + P.eps);
    ${
      running
        ? `runningMean[q] = (1.0 - P.momentum) * runningMean[q] + P.momentum * mean;
    runningVar[q] = (1.0 - P.momentum) * runningVar[q] + P.momentum * variance * P.unbias;`
        : ''
    }
  }
}`;
}

/** Batch norm in eval: stats = [runningMean; 1 / sqrt(runningVar + eps)]. */
const STATS_EVAL = /* wgsl */ `
${PARAMS}
${bindings(['stats'], ['runningMean', 'runningVar'])}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= P.C) { return; }
  stats[c] = runningMean[c];
  stats[P.nStats + c] = inverseSqrt(runningVar[c] + P.eps);
}`;

/** Which affine tensors are present and which the activation needs. */
interface Variant {
  hasW: boolean;
  hasB: boolean;
  act: NormActivation;
  perRow: boolean;
}
const variantKey = (v: Variant) => `${v.hasW ? 'w' : ''}${v.hasB ? 'b' : ''}:${v.act}:${v.perRow ? 'row' : 'ch'}`;

/** How a shader reads one value of x / dy and its weight / bias. */
interface Access {
  x: string;
  dy: string;
  w: string;
  b: string;
}
/** Reductions: one value at flat index i, channel c. */
const SCALAR: Access = { x: 'x[i]', dy: 'dy[i]', w: 'weight[c]', b: 'bias[c]' };

/**
 * Elementwise kernels handle 4 consecutive values at once (vec4 loads, one index computation) when
 * they share their statistic and either their channel (S % 4 == 0) or run over 4 consecutive
 * channels of one group (S == 1 and K % 4 == 0: layer norm's rows); else one value per invocation.
 */
type Layout = 'scalar' | 'vec4' | 'vec4-channels';
function elemLayout(g: NormGeom): Layout {
  if (g.S % 4 === 0) return 'vec4';
  if (g.perRow && g.S === 1 && g.K % 4 === 0) return 'vec4-channels';
  return 'scalar';
}
/** Values per invocation of the elementwise kernels. */
const layoutWidth = (l: Layout) => (l === 'scalar' ? 1 : 4);
function elemAccess(l: Layout): Access {
  if (l === 'scalar') return SCALAR;
  const ch = l === 'vec4-channels' ? 'c / 4u' : 'c';
  return { x: 'x[e]', dy: 'dy[e]', w: `weight[${ch}]`, b: `bias[${ch}]` };
}

/** WGSL lets for one value: xhat, and z = xhat·w + b (the activation's input). */
function valueLets(v: Variant, needZ: boolean, a: Access): string {
  const w = v.hasW ? ` * ${a.w}` : '';
  const b = v.hasB ? ` + ${a.b}` : '';
  return `let xhat = (${a.x} - stats[k]) * stats[P.nStats + k];${needZ ? ` let z = xhat${w}${b};` : ''}`;
}

/** Elementwise prologue: e the invocation's vector index, i its first flat index, c, k. */
function elemIndex(v: Variant, l: Layout): string {
  const n = layoutWidth(l);
  return `let e = ${LINEAR_INDEX(WG)};
  if (e >= P.N * P.C * P.S / ${n}u) { return; }
  let i = e * ${n}u;
  let c = (i / P.S) % P.C;
  let k = ${v.perRow ? 'i / (P.K * P.S)' : 'c'};`;
}

/** Storage declarations of an elementwise kernel: values (x, y, dx, dy) and, across channels, weight / bias as vec4. */
function elemBindings(l: Layout, rw: string[], ro: string[]): string {
  const vec = (n: string) => (['y', 'x', 'dx', 'dy'].includes(n) && l !== 'scalar') || (['weight', 'bias'].includes(n) && l === 'vec4-channels');
  return bindings(rw, ro, (n) => (vec(n) ? 'vec4<f32>' : 'f32'));
}

/** y = act((x - mean) * rstd * weight + bias). */
function applyShader(v: Variant, l: Layout): string {
  const ro = ['x', 'stats', ...(v.hasW ? ['weight'] : []), ...(v.hasB ? ['bias'] : [])];
  return /* wgsl */ `
${PARAMS}
${elemBindings(l, ['y'], ro)}
${prelude(l !== 'scalar', v.act)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${elemIndex(v, l)}
  ${valueLets(v, true, elemAccess(l))}
  y[e] = ${ACT[v.act].f('z')};
}`;
}

/** g = dy · act'(z), the gradient reaching the affine output. */
const gradIn = (v: Variant, a: Access) => (v.act === 'none' ? `let g = ${a.dy};` : `let g = ${a.dy} * ${ACT[v.act].df('z')};`);

/**
 * Per-channel sums over (n, s): sumGx[c] = Σ g·xhat (= dweight), sumG[c] = Σ g (= dbias). For batch
 * norm these also give dx's batch-statistic terms (weight[c] times each).
 */
function paramSumsShader(v: Variant, plan: ReducePlan): string {
  const ro = ['dy', 'x', 'stats', ...(v.act !== 'none' && v.hasW ? ['weight'] : []), ...(v.act !== 'none' && v.hasB ? ['bias'] : [])];
  return /* wgsl */ `${planEnable(plan)}
${PARAMS}
${bindings(['sumGx', 'sumG'], ro)}
${prelude(false, v.act)}
${wgReduceFn('sumPair', SUM2, plan)}
${reduceMain(plan)}
  var acc = vec2<f32>(0.0);
  if (valid) ${forEachValue('channel', v.perRow, plan, `${valueLets(v, v.act !== 'none', SCALAR)} ${gradIn(v, SCALAR)} acc += vec2<f32>(g * xhat, g);`)}
  let tot = sumPair(acc, ${planArgs(plan)});
  if (valid && lead) {
    sumGx[q] = tot.x;
    sumG[q] = tot.y;
  }
}`;
}

/**
 * Per-row sums over (k, s) for layer/group norm's dx: rowSums = [Σ dxhat; Σ dxhat·xhat] as
 * [2, nStats], with dxhat = g · weight[c] the gradient reaching xhat.
 */
function rowSumsShader(v: Variant, plan: ReducePlan): string {
  const ro = ['dy', 'x', 'stats', ...(v.hasW ? ['weight'] : []), ...(v.act !== 'none' && v.hasB ? ['bias'] : [])];
  return /* wgsl */ `${planEnable(plan)}
${PARAMS}
${bindings(['rowSums'], ro)}
${prelude(false, v.act)}
${wgReduceFn('sumPair', SUM2, plan)}
${reduceMain(plan)}
  var acc = vec2<f32>(0.0);
  if (valid) ${forEachValue('row', true, plan, `${valueLets(v, v.act !== 'none', SCALAR)} ${gradIn(v, SCALAR)} let dxhat = g${v.hasW ? ' * weight[c]' : ''}; acc += vec2<f32>(dxhat, dxhat * xhat);`)}
  let tot = sumPair(acc, ${planArgs(plan)});
  if (valid && lead) {
    rowSums[q] = tot.x;
    rowSums[P.nStats + q] = tot.y;
  }
}`;
}

/**
 * dx. With batch statistics (training batch norm, layer and group norm):
 *   dx = rstd · (dxhat - (Σ dxhat + xhat · Σ dxhat·xhat) / M), sums over the value's group;
 * with fixed statistics (batch norm in eval): dx = rstd · dxhat.
 */
function dxShader(v: Variant, batchStats: boolean, l: Layout): string {
  const sums = !batchStats ? [] : v.perRow ? ['rowSums'] : ['sumGx', 'sumG'];
  const ro = ['dy', 'x', 'stats', ...(v.hasW ? ['weight'] : []), ...(v.act !== 'none' && v.hasB ? ['bias'] : []), ...sums];
  const a = elemAccess(l);
  const w = v.hasW ? a.w : '1.0';
  const terms = v.perRow
    ? 'let sumD = rowSums[k]; let sumDX = rowSums[P.nStats + k];'
    : `let sumD = ${w} * sumG[c]; let sumDX = ${w} * sumGx[c];`;
  return /* wgsl */ `
${PARAMS}
${elemBindings(l, ['dx'], ro)}
${prelude(l !== 'scalar', v.act)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${elemIndex(v, l)}
  ${valueLets(v, v.act !== 'none', a)}
  ${gradIn(v, a)}
  let dxhat = g * ${w};
  let rstd = stats[P.nStats + k];
  ${batchStats ? `${terms}\n  dx[e] = rstd * (dxhat - (sumD + xhat * sumDX) / P.M);` : 'dx[e] = rstd * dxhat;'}
}`;
}

/** log2 of the lane split Lb = min(wg, next power of two >= S) (see forEachValue). */
function lbShift(plan: ReducePlan, S: number): number {
  if (plan.strategy === 'loop') return 0;
  let sh = 0;
  while (1 << sh < S && 1 << sh < plan.wg) sh++;
  return sh;
}

/** Running statistics of batch norm. */
interface Running {
  runningMean: Tensor;
  runningVar: Tensor;
  training: boolean;
  momentum: number;
}

interface NormCall {
  op: string;
  x: Tensor;
  weight: Tensor | null;
  bias: Tensor | null;
  geom: NormGeom;
  eps: number;
  act: NormActivation;
  running: Running | null;
  strategy?: ReduceChoice;
}

/** The family's forward and backward for one validated call. */
function normCore(call: NormCall): Tensor {
  const { op, x, weight, bias, geom, eps, act, running, strategy } = call;
  const ctx = x.ctx;
  const { N, G, K, S, perRow } = geom;
  const C = G * K;
  const nStats = perRow ? N * G : C;
  const M = perRow ? K * S : N * S;
  const v: Variant = { hasW: !!weight, hasB: !!bias, act, perRow };
  const uniforms = (nKept: number, plan: ReducePlan | null) =>
    packUniforms([N, G, K, S, C, nStats, nKept, plan ? lbShift(plan, S) : 0, { f: M }, { f: eps }, { f: running?.momentum ?? 0 }, { f: M > 1 ? M / (M - 1) : 1 }]);
  const y = new Tensor(ctx, x.shape, 'f32');
  if (x.size === 0) return y;
  const batchStats = !running || running.training;
  const stats = new Tensor(ctx, [2, nStats], 'f32');
  const view: View = perRow ? 'row' : 'channel';
  const layout = elemLayout(geom);
  const elemGrid = grid1d(x.size / layoutWidth(layout), WG);
  if (batchStats) {
    const plan = planReduction(ctx, { nOut: nStats, len: M, wide: WG_WIDE, adjacentOutputs: !perRow && S === 1, force: strategy });
    const upd = running ? [running.runningMean.binding(op), running.runningVar.binding(op)] : [];
    ctx.dispatch({
      op,
      key: `norm:stats:${view}:${!!running}:${planKey(plan)}`,
      code: () => statsShader(view, perRow, !!running, plan),
      buffers: [stats.binding(op), ...upd, x.binding(op)],
      uniforms: uniforms(nStats, plan),
      workgroups: plan.strategy === 'loop' ? grid1d(nStats, plan.wg) : grid1d(nStats, 1),
    });
  } else
    ctx.dispatch({
      op,
      key: 'norm:stats:eval',
      code: () => STATS_EVAL,
      buffers: [stats.binding(op), running!.runningMean.binding(op), running!.runningVar.binding(op)],
      uniforms: uniforms(C, null),
      workgroups: [Math.ceil(C / WG)],
    });
  const affine = [...(weight ? [weight.binding(op)] : []), ...(bias ? [bias.binding(op)] : [])];
  ctx.dispatch({
    op,
    key: `norm:apply:${variantKey(v)}:${layout}`,
    code: () => applyShader(v, layout),
    buffers: [y.binding(op), x.binding(op), stats.binding(op), ...affine],
    uniforms: uniforms(0, null),
    workgroups: elemGrid,
  });
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  if (!ctx.gradEnabled || !inputs.some((t) => t.requiresGrad)) {
    stats.dispose();
    return y;
  }
  return record(y, op, inputs, (dy) => {
    const bop = `${op}.backward`;
    const needParams = !!weight?.requiresGrad || !!bias?.requiresGrad;
    // batch norm's dx with batch statistics needs the per-channel sums even when no parameter does
    const paramSums = needParams || (!perRow && batchStats && x.requiresGrad);
    let sumGx: Tensor | null = null;
    let sumG: Tensor | null = null;
    const wIf = (cond: boolean) => (cond && weight ? [weight.binding(bop)] : []);
    const bIf = (cond: boolean) => (cond && bias ? [bias.binding(bop)] : []);
    if (paramSums) {
      const affineShape = weight?.shape ?? bias?.shape ?? [C];
      sumGx = new Tensor(ctx, affineShape, 'f32');
      sumG = new Tensor(ctx, affineShape, 'f32');
      const plan = planReduction(ctx, { nOut: C, len: N * S, wide: WG_WIDE, adjacentOutputs: S === 1, force: strategy });
      ctx.dispatch({
        op: bop,
        key: `norm:paramSums:${variantKey(v)}:${planKey(plan)}`,
        code: () => paramSumsShader(v, plan),
        buffers: [sumGx.binding(bop), sumG.binding(bop), dy.binding(bop), x.binding(bop), stats.binding(bop), ...wIf(act !== 'none'), ...bIf(act !== 'none')],
        uniforms: uniforms(C, plan),
        workgroups: plan.strategy === 'loop' ? grid1d(C, plan.wg) : grid1d(C, 1),
      });
    }
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const sums: { buffer: GPUBuffer; bytes: number }[] = [];
      let rowSums: Tensor | null = null;
      if (batchStats && perRow) {
        rowSums = new Tensor(ctx, [2, nStats], 'f32');
        const plan = planReduction(ctx, { nOut: nStats, len: M, wide: WG_WIDE, force: strategy });
        ctx.dispatch({
          op: bop,
          key: `norm:rowSums:${variantKey(v)}:${planKey(plan)}`,
          code: () => rowSumsShader(v, plan),
          buffers: [rowSums.binding(bop), dy.binding(bop), x.binding(bop), stats.binding(bop), ...wIf(true), ...bIf(act !== 'none')],
          uniforms: uniforms(nStats, plan),
          workgroups: plan.strategy === 'loop' ? grid1d(nStats, plan.wg) : grid1d(nStats, 1),
        });
        sums.push(rowSums.binding(bop));
      } else if (batchStats) sums.push(sumGx!.binding(bop), sumG!.binding(bop));
      dx = new Tensor(ctx, x.shape, 'f32');
      ctx.dispatch({
        op: bop,
        key: `norm:dx:${variantKey(v)}:${batchStats}:${layout}`,
        code: () => dxShader(v, batchStats, layout),
        buffers: [dx.binding(bop), dy.binding(bop), x.binding(bop), stats.binding(bop), ...wIf(true), ...bIf(act !== 'none'), ...sums],
        uniforms: uniforms(0, null),
        workgroups: elemGrid,
      });
      rowSums?.dispose();
    }
    const grads: (Tensor | null)[] = [dx];
    if (weight) grads.push(weight.requiresGrad ? sumGx : null);
    if (bias) grads.push(bias.requiresGrad ? sumG : null);
    if (!weight?.requiresGrad) sumGx?.dispose(); // sums only dx needed
    if (!bias?.requiresGrad) sumG?.dispose();
    return grads;
  });
}

// ------------------------------------------------------------------------------------------------
// Validation and the three public ops.

function checkEps(op: string, eps: number) {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || !(eps > 0)) throw new EngineError(op, `eps must be a finite number > 0, got ${eps}`);
}

function checkActivation(op: string, act: unknown): NormActivation {
  const a = act ?? 'none';
  if (a !== 'none' && a !== 'relu' && a !== 'silu') throw new EngineError(op, `activation must be 'none', 'relu' or 'silu', got ${String(act)}`);
  return a;
}

/** Input checks shared by the ops: f32, same context, and affine tensors of the expected shape. */
function checkTensors(op: string, x: Tensor, affineShape: readonly number[], named: [string, Tensor | null | undefined][]) {
  if (x.dtype !== 'f32') throw new EngineError(op, `input must be f32, got ${x.describe()}`);
  for (const [name, t] of named) {
    if (!t) continue;
    if (t.dtype !== 'f32') throw new EngineError(op, `${name} must be f32, got ${t.describe()}`);
    if (t.ctx !== x.ctx) throw new EngineError(op, `${name} lives on another GPU context`);
    if (t.rank !== affineShape.length || t.shape.some((d, i) => d !== affineShape[i]))
      throw new EngineError(op, `${name} must be ${shapeStr(affineShape)} for input ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
  }
}

function batchNormCall(op: string, x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNorm2dOptions, act: NormActivation): Tensor {
  if (x.rank !== 4) throw new EngineError(op, `input must be 4-D [N,C,H,W], got ${x.describe()}`);
  if (!weight || !bias || !runningMean || !runningVar) throw new EngineError(op, 'weight, bias, runningMean and runningVar are all required');
  const C = x.shape[1]!;
  checkTensors(op, x, [C], [['weight', weight], ['bias', bias], ['runningMean', runningMean], ['runningVar', runningVar]]);
  if (runningMean.requiresGrad || runningVar.requiresGrad)
    throw new EngineError(op, 'runningMean/runningVar are statistics updated in place and must not require grad');
  const m = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  if (typeof m !== 'number' || !(m >= 0 && m <= 1)) throw new EngineError(op, `momentum must be in [0, 1], got ${m}`);
  checkEps(op, eps);
  const [N, , H, W] = x.shape as [number, number, number, number];
  if (opts.training && N * H * W < 2)
    throw new EngineError(op, `training needs more than one value per channel, got input ${shapeStr(x.shape)}`);
  return normCore({
    op,
    x,
    weight,
    bias,
    geom: { N, G: C, K: 1, S: H * W, perRow: false },
    eps,
    act,
    running: { runningMean, runningVar, training: !!opts.training, momentum: m },
    strategy: opts.strategy,
  });
}

/**
 * Batch normalisation over N, H, W for each channel (PyTorch BatchNorm2d, affine, tracking stats),
 * optionally followed by a fused activation (`opts.activation`).
 * Training: normalises with the batch mean and biased variance and updates, in place on the GPU,
 * runningMean = (1-momentum)*runningMean + momentum*mean and
 * runningVar = (1-momentum)*runningVar + momentum*var*M/(M-1). Eval: uses the running statistics.
 * @param x [N, C, H, W]
 * @param weight [C], bias [C] (gradients flow to both)
 * @param runningMean [C], runningVar [C] (updated in place in training; no gradient)
 * @returns [N, C, H, W]
 */
export function batchNorm2d(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNorm2dOptions): Tensor {
  const act = checkActivation('batchNorm2d', opts.activation);
  return batchNormCall('batchNorm2d', x, weight, bias, runningMean, runningVar, opts, act);
}

/** relu(batchNorm2d(...)) in one pass each way (same arguments and running-stat update). */
export function batchNorm2dRelu(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNorm2dOptions): Tensor {
  return batchNormCall('batchNorm2dRelu', x, weight, bias, runningMean, runningVar, opts, 'relu');
}

/**
 * Layer normalisation over the trailing dimensions `normalizedShape` (PyTorch F.layer_norm): each
 * row's mean and biased variance, y = (x - mean) / sqrt(var + eps) * weight + bias, then the
 * optional activation. Weight and bias are each optional (LayerNorm(elementwise_affine=False)).
 * @param x [..., *normalizedShape]
 * @param normalizedShape D... (a number for one dimension)
 * @param weight [*normalizedShape] or omitted (1); bias [*normalizedShape] or omitted (0)
 * @returns the shape of x
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
  opts: NormOptions = {},
): Tensor {
  const op = 'layerNorm';
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  if (ns.length === 0 || ns.some((d) => !Number.isInteger(d) || d < 1))
    throw new EngineError(op, `normalizedShape must be a non-empty list of positive integers, got ${shapeStr(ns)}`);
  const tail = x.shape.slice(x.rank - ns.length);
  if (x.rank < ns.length || tail.some((d, i) => d !== ns[i]))
    throw new EngineError(op, `input ${shapeStr(x.shape)} does not end with normalizedShape ${shapeStr(ns)}`);
  checkTensors(op, x, ns, [['weight', weight], ['bias', bias]]);
  checkEps(op, eps);
  const act = checkActivation(op, opts.activation);
  const D = numel(ns);
  return normCore({
    op,
    x,
    weight: weight ?? null,
    bias: bias ?? null,
    geom: { N: x.size / D, G: 1, K: D, S: 1, perRow: true },
    eps,
    act,
    running: null,
    strategy: opts.strategy,
  });
}

/**
 * Group normalisation (PyTorch F.group_norm): channels split into `numGroups` groups of C/G; each
 * (sample, group) normalised with its mean and biased variance over (C/G)·S values, then a
 * per-channel affine and the optional activation (GroupNorm + SiLU: `{ activation: 'silu' }`).
 * @param x [N, C, *] (any number of trailing spatial dimensions, including none)
 * @param numGroups G, dividing C
 * @param weight [C] or omitted (1); bias [C] or omitted (0)
 * @returns the shape of x
 */
export function groupNorm(x: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5, opts: NormOptions = {}): Tensor {
  const op = 'groupNorm';
  if (x.rank < 2) throw new EngineError(op, `input must be [N, C, *], got ${x.describe()}`);
  const [N, C] = x.shape as [number, number];
  if (!Number.isInteger(numGroups) || numGroups < 1 || C % numGroups !== 0)
    throw new EngineError(op, `numGroups must be a positive integer dividing the ${C} channels of input ${shapeStr(x.shape)}, got ${numGroups}`);
  checkTensors(op, x, [C], [['weight', weight], ['bias', bias]]);
  checkEps(op, eps);
  const act = checkActivation(op, opts.activation);
  return normCore({
    op,
    x,
    weight: weight ?? null,
    bias: bias ?? null,
    geom: { N, G: numGroups, K: C / numGroups, S: numel(x.shape.slice(2)), perRow: true },
    eps,
    act,
    running: null,
    strategy: opts.strategy,
  });
}
