// The one place where invocations of a workgroup combine their partial results (sum, max, argmax...):
// a WGSL function generator plus the policy that picks, per launch, between one invocation per
// output (a plain loop, no barrier), a shared-memory tree, and subgroup operations. Used by the
// workgroup path of reduce.ts and by the normalisation family (norm.ts). It launches nothing itself.
//
// Strategies (all return the combined value to every invocation of the workgroup):
//   loop      one invocation owns an output and loops over its row: no cross-invocation step at all
//             (the caller writes the loop; `wgReduceFn` returns the value unchanged).
//   tree      partials in workgroup memory, halved log2(WG) times with a barrier after each step.
//   subgroup  subgroupAdd (or a shuffle-xor butterfly for other combiners) inside each subgroup. When
//             the workgroup is exactly one subgroup that is all (no barrier, no workgroup memory: what
//             lavapipe prefers); otherwise each subgroup's first invocation stores its result, one
//             barrier, and every subgroup combines the stored results again. It never assumes which
//             local indices form a subgroup, but it needs full subgroups of one size, so it is only
//             planned on devices whose subgroup size is fixed (subgroupMinSize == subgroupMaxSize).

import type { GpuContext } from '../gpu/context.js';

export type ReduceStrategy = 'loop' | 'tree' | 'subgroup';
/** A forced choice (tests and benchmarks): a strategy, or a strategy with its workgroup width. */
export type ReduceChoice = ReduceStrategy | { strategy: ReduceStrategy; wg: number };

/** How one launch reduces: the strategy and the workgroup width (invocations per output for tree/subgroup). */
export interface ReducePlan {
  strategy: ReduceStrategy;
  wg: number;
  /** subgroup strategy with a workgroup of exactly one subgroup (no barrier) */
  oneSubgroup?: boolean;
}

/** A combinable partial: its WGSL type, identity value and combine function. */
export interface Combiner {
  /** WGSL type of a partial: f32, vecN<f32>, or a struct whose members are scalars or vectors. */
  type: string;
  /** WGSL expression of the identity element (combine(identity, v) == v). */
  identity: string;
  /**
   * Name of a WGSL function `(a: T, b: T) -> T` the caller defines; it must be commutative and
   * associative. Omitted: addition (subgroupAdd on the subgroup path).
   */
  combine?: string;
  /** Members of a struct `type`, shuffled one by one on the subgroup path. */
  fields?: readonly string[];
}

/**
 * The device's subgroup size when it has the 'subgroups' feature and one fixed size (lavapipe 8,
 * NVIDIA 32); 0 otherwise, and then no subgroup plan is made.
 */
export function fixedSubgroupSize(ctx: GpuContext): number {
  if (!ctx.features.has('subgroups')) return 0;
  const info = (ctx.device as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const lo = info?.subgroupMinSize ?? 0;
  return lo >= 4 && lo === info?.subgroupMaxSize ? lo : 0;
}

/** CPU implementations of WebGPU (lavapipe, SwiftShader): barriers are costly, two to a few cores. */
function cpuDevice(ctx: GpuContext): boolean {
  const a = ctx.adapterInfo;
  return a.architecture === 'software' || a.architecture === 'swiftshader' || /llvmpipe|lavapipe|swiftshader/i.test(`${a.vendor} ${a.device} ${a.description}`);
}

/** Rows at least this long get a workgroup each when there are few of them. */
export const WG_ROW_MIN = 128;
/** With this many outputs or more, one invocation per output already fills the device. */
export const WG_OUTPUTS_MAX = 512;

/** What a launch reduces, for planReduction. */
export interface ReduceShape {
  /** number of outputs (rows) */
  nOut: number;
  /** values per row */
  len: number;
  /** invocations per output on the workgroup paths of GPUs */
  wide: number;
  /**
   * Consecutive outputs read consecutive addresses at each step of their rows (e.g. column sums of a
   * row-major matrix): one invocation per output then gives contiguous vector loads on CPU devices.
   */
  adjacentOutputs?: boolean;
  /** Overrides the choice (tests and benchmarks). */
  force?: ReduceChoice;
}

/**
 * The plan for reducing `nOut` rows of `len` values each. Many outputs or short rows: `loop`; on CPU
 * devices also at least 64 adjacent outputs (lavapipe, shared machine: layer norm [2048, 384]
 * forward+backward took 24-53 ms CPU with its dweight/dbias column sums one invocation per column,
 * 51-66 ms with a subgroup per column, four interleaved runs each). Otherwise a workgroup per output: on
 * a CPU device with subgroups, one subgroup wide (no barrier); on other devices with subgroups,
 * `wide` invocations with the subgroup step; else the tree. A forced subgroup plan on a device
 * without a fixed subgroup size, or with a width that is not a multiple of it, falls back to the tree.
 */
export function planReduction(ctx: GpuContext, r: ReduceShape): ReducePlan {
  const sg = fixedSubgroupSize(ctx);
  const cpu = cpuDevice(ctx);
  const forced = typeof r.force === 'string' ? { strategy: r.force, wg: 0 } : r.force;
  const loop = r.nOut >= WG_OUTPUTS_MAX || r.len < WG_ROW_MIN || (cpu && !!r.adjacentOutputs && r.nOut >= 64);
  const strategy = forced?.strategy ?? (loop ? 'loop' : sg > 0 ? 'subgroup' : 'tree');
  const width = forced?.wg || 0;
  if (width && (width & (width - 1) || width > 1024)) throw new Error(`planReduction: workgroup width ${width} is not a power of two <= 1024`);
  if (strategy === 'loop') return { strategy, wg: width || 64 };
  if (strategy === 'subgroup' && sg > 0 && (!width || width % sg === 0)) {
    const wg = width || (cpu ? sg : Math.ceil(r.wide / sg) * sg);
    return { strategy, wg, oneSubgroup: wg === sg };
  }
  return { strategy: 'tree', wg: width || r.wide };
}

/** Cache-key fragment that identifies the plan's generated code. */
export const planKey = (p: ReducePlan) => `${p.strategy}${p.wg}${p.oneSubgroup ? 'x1' : ''}`;

/** `enable subgroups;` when the plan uses subgroup operations. */
export const planEnable = (p: ReducePlan) => (p.strategy === 'subgroup' ? 'enable subgroups;' : '');

/**
 * Builtin parameters main() declares for the plan (appended to its parameter list, leading comma
 * included); they define `li` (local index) and, on the subgroup path, `sgid` and `sgSize`.
 */
export const planBuiltins = (p: ReducePlan) =>
  p.strategy === 'subgroup'
    ? ', @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sgid: u32, @builtin(subgroup_size) sgSize: u32'
    : ', @builtin(local_invocation_index) li: u32';

/** Arguments a call of a generated reduce function passes after the value. */
export const planArgs = (p: ReducePlan) => (p.strategy === 'subgroup' ? 'li, sgid, sgSize' : 'li');

/**
 * WGSL for `fn <name>(v: T, <lane args>) -> T`: the combination of `v` over the workgroup, returned to
 * every invocation. Call it from uniform control flow (every invocation of the workgroup, no early
 * return), once per call site: each function owns its workgroup memory, so consecutive calls need no
 * barrier between them. For the loop plan it returns `v`.
 */
export function wgReduceFn(name: string, c: Combiner, p: ReducePlan): string {
  const T = c.type;
  const comb = (a: string, b: string) => (c.combine ? `${c.combine}(${a}, ${b})` : `(${a} + ${b})`);
  if (p.strategy === 'loop') return `fn ${name}(v: ${T}, li: u32) -> ${T} { return v; }`;
  if (p.strategy === 'tree') {
    if (p.wg & (p.wg - 1)) throw new Error(`wgReduceFn: tree width ${p.wg} is not a power of two`);
    return /* wgsl */ `
var<workgroup> ${name}_part: array<${T}, ${p.wg}>;
fn ${name}(v: ${T}, li: u32) -> ${T} {
  ${name}_part[li] = v;
  workgroupBarrier();
  for (var s = ${p.wg / 2}u; s > 0u; s = s / 2u) {
    if (li < s) { ${name}_part[li] = ${comb(`${name}_part[li]`, `${name}_part[li + s]`)}; }
    workgroupBarrier();
  }
  return ${name}_part[0];
}`;
  }
  // subgroup: reduce within the subgroup first
  const shuffle = c.fields
    ? `var o: ${T};\n    ${c.fields.map((f) => `o.${f} = subgroupShuffleXor(r.${f}, m);`).join(' ')}`
    : `let o = subgroupShuffleXor(r, m);`;
  const inSubgroup = c.combine
    ? /* wgsl */ `fn ${name}_sg(v: ${T}, sgSize: u32) -> ${T} {
  var r = v;
  for (var m = sgSize / 2u; m > 0u; m = m / 2u) {
    ${shuffle}
    r = ${comb('r', 'o')};
  }
  return r;
}`
    : `fn ${name}_sg(v: ${T}, sgSize: u32) -> ${T} { return subgroupAdd(v); }`;
  if (p.oneSubgroup)
    return `${inSubgroup}\nfn ${name}(v: ${T}, li: u32, sgid: u32, sgSize: u32) -> ${T} { return ${name}_sg(v, sgSize); }`;
  // Each subgroup's first invocation leaves its result at its own local index (the other slots keep
  // the identity); after one barrier every subgroup folds all slots, lane l taking l, l + sgSize, ...
  return /* wgsl */ `${inSubgroup}
var<workgroup> ${name}_part: array<${T}, ${p.wg}>;
fn ${name}(v: ${T}, li: u32, sgid: u32, sgSize: u32) -> ${T} {
  let s = ${name}_sg(v, sgSize);
  var w: ${T} = ${c.identity};
  if (sgid == 0u) { w = s; }
  ${name}_part[li] = w;
  workgroupBarrier();
  var r: ${T} = ${c.identity};
  for (var k = sgid; k < ${p.wg}u; k += sgSize) { r = ${comb('r', `${name}_part[k]`)}; }
  return ${name}_sg(r, sgSize);
}`;
}
