// Optimizers against PyTorch's update formulas written out in float64 (several steps, momentum,
// weight decay, bias correction, a skipped parameter), parameter groups (per-group lr multiplier and
// weight decay, as torch's param_groups; the references agree with torch.optim to 1e-16, see
// scripts/check_optim_reference.py), paramGroups' no-decay split, the strict update mask
// (bit-identical parameters and state where mask = 0), state save/load, clipGradNorm, schedules.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, f32, viaF32, expectClose } from './helpers.js';
import { tensor } from '../src/wgsl/fill.js';
import { requireGrad, view } from '../src/autograd/graph.js';
import { SGD, Adam, AdamW, Optimizer, clipGradNorm, paramGroups, defaultNoDecay } from '../src/nn/optim.js';
import { Module } from '../src/nn/module.js';
import { MLP } from '../src/models/mlp.js';
import { BatchNorm2d } from '../src/nn/layers/index.js';
import { randn } from '../src/wgsl/fill.js';
import { Generator } from '../src/util/rng.js';
import { constantLr, cosineLr, linearLr, warmup } from '../src/nn/schedule.js';
import type { GpuContext } from '../src/gpu/context.js';
import type { Tensor } from '../src/autograd/tensor.js';

const gpu = useGpu();
const SHAPES = [[7], [3, 5], [2, 3, 4]];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function makeParams(ctx: GpuContext, rng: Rng) {
  const init = SHAPES.map((s) => viaF32(rng.uniform(size(s), -1, 1)));
  const params = init.map((d, k) => ctx.keep(requireGrad(tensor(ctx, f32(d), SHAPES[k]))));
  return { init, params };
}
function setGrad(ctx: GpuContext, p: Tensor, g: Float64Array) {
  p.grad?.dispose();
  p.grad = ctx.keep(tensor(ctx, f32(g), p.shape));
}

/** float64 torch.optim.SGD (dampening 0, nesterov off). */
function sgdRef(p: Float64Array, g: Float64Array, buf: Float64Array | null, o: { lr: number; momentum: number; wd: number }) {
  const newBuf = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    let d = g[i]! + o.wd * p[i]!;
    if (o.momentum !== 0) {
      d = buf ? o.momentum * buf[i]! + d : d;
      newBuf[i] = d;
    }
    p[i] = p[i]! - o.lr * d;
  }
  return newBuf;
}
/** float64 torch.optim.Adam / AdamW at step t (1-based). */
function adamRef(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, t: number, o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean }) {
  const bc1 = 1 - o.b1 ** t, bc2 = 1 - o.b2 ** t;
  for (let i = 0; i < p.length; i++) {
    let d = g[i]!;
    if (o.decoupled) p[i] = p[i]! * (1 - o.lr * o.wd);
    else d += o.wd * p[i]!;
    m[i] = o.b1 * m[i]! + (1 - o.b1) * d;
    v[i] = o.b2 * v[i]! + (1 - o.b2) * d * d;
    p[i] = p[i]! - ((o.lr / bc1) * m[i]!) / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + o.eps);
  }
}

async function disposeAll(opt: Optimizer, params: Tensor[]) {
  opt.dispose();
  params.forEach((p) => p.dispose());
}

describe('optimizers vs float64 PyTorch formulas', () => {
  for (const momentum of [0, 0.9]) {
    it(`SGD momentum ${momentum}, weight decay, 4 steps, lr change, a skipped parameter`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const { init, params } = makeParams(ctx, rng);
      const o = { lr: 0.1, momentum, wd: 0.05 };
      const opt = new SGD(params, { lr: o.lr, momentum, weightDecay: o.wd });
      const ref = init.map((d) => Float64Array.from(d));
      const bufs: (Float64Array | null)[] = init.map(() => null);
      for (let step = 0; step < 4; step++) {
        if (step === 2) opt.lr = o.lr = 0.03;
        params.forEach((p, k) => {
          if (step === 1 && k === 1) {
            p.grad?.dispose();
            p.grad = null; // skipped: no update, no momentum change
            return;
          }
          const g = viaF32(rng.normal(p.size));
          setGrad(ctx, p, g);
          bufs[k] = sgdRef(ref[k]!, g, bufs[k]!, o);
        });
        opt.step();
      }
      for (const [k, p] of params.entries()) expectClose(await p.read(), ref[k]!, 2e-5, 2e-6, `SGD p${k}`);
      if (momentum) {
        const sd = opt.stateDict();
        const tensors = sd.tensors as Map<string, Tensor>;
        expect([...tensors.keys()].sort()).toEqual(['state.0.momentum_buffer', 'state.1.momentum_buffer', 'state.2.momentum_buffer']);
        expect(sd.paramSteps).toEqual([4, 3, 4]);
        for (const [k] of params.entries()) expectClose(await tensors.get(`state.${k}.momentum_buffer`)!.read(), bufs[k]!, 2e-5, 2e-6, `buf${k}`);
      } else expect((opt.stateDict().tensors as Map<string, Tensor>).size).toBe(0);
      opt.zeroGrad();
      expect(params.every((p) => p.grad === null)).toBe(true);
      await disposeAll(opt, params);
    });
  }

  for (const decoupled of [false, true]) {
    const name = decoupled ? 'AdamW' : 'Adam';
    it(`${name}: bias correction over 4 steps, weight decay, per-parameter step counts`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const { init, params } = makeParams(ctx, rng);
      const o = { lr: 0.01, b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.1, decoupled };
      const opts = { lr: o.lr, betas: [o.b1, o.b2] as [number, number], eps: o.eps, weightDecay: o.wd };
      const opt = decoupled ? new AdamW(params, opts) : new Adam(params, opts);
      const ref = init.map((d) => Float64Array.from(d));
      const m = init.map((d) => new Float64Array(d.length));
      const v = init.map((d) => new Float64Array(d.length));
      const t = [0, 0, 0];
      for (let step = 0; step < 4; step++) {
        params.forEach((p, k) => {
          if (step === 0 && k === 2) return; // first step skipped: its bias correction lags one step
          const g = viaF32(rng.normal(p.size));
          setGrad(ctx, p, g);
          adamRef(ref[k]!, g, m[k]!, v[k]!, ++t[k]!, o);
        });
        opt.step();
      }
      expect(opt.stateDict().paramSteps).toEqual([4, 4, 3]);
      for (const [k, p] of params.entries()) expectClose(await p.read(), ref[k]!, 2e-5, 2e-6, `${name} p${k}`);
      const tensors = opt.stateDict().tensors as Map<string, Tensor>;
      for (const [k] of params.entries()) {
        expectClose(await tensors.get(`state.${k}.exp_avg`)!.read(), m[k]!, 2e-5, 2e-6, `exp_avg${k}`);
        expectClose(await tensors.get(`state.${k}.exp_avg_sq`)!.read(), v[k]!, 2e-5, 2e-7, `exp_avg_sq${k}`);
      }
      await disposeAll(opt, params);
    });
  }
});

describe('parameter groups', () => {
  for (const decoupled of [true, false]) {
    const name = decoupled ? 'AdamW' : 'Adam';
    it(`${name}: a decayed group and a no-decay group at half the lr, 4 steps, lr changed, vs float64`, async () => {
      const { ctx } = gpu;
      const seed = Math.floor(Math.random() * 2 ** 32);
      const rng = new Rng(seed);
      const { init, params } = makeParams(ctx, rng);
      const base = { lr: 0.01, b1: 0.8, b2: 0.95, eps: 1e-6, decoupled };
      // group 0 keeps the optimizer's weight decay (0.1); group 1 has none and half the lr
      const groups = [
        { params: [params[0]!, params[1]!] },
        { params: [params[2]!], weightDecay: 0, lrScale: 0.5, name: 'no_decay' },
      ];
      const opts = { lr: base.lr, betas: [base.b1, base.b2] as [number, number], eps: base.eps, weightDecay: 0.1 };
      const opt = decoupled ? new AdamW(groups, opts) : new Adam(groups, opts);
      expect(opt.groups.map((g) => [g.name, g.params.length, g.lrScale, g.weightDecay])).toEqual([['group 0', 2, 1, undefined], ['no_decay', 1, 0.5, 0]]);
      const ref = init.map((d) => Float64Array.from(d));
      const m = init.map((d) => new Float64Array(d.length));
      const v = init.map((d) => new Float64Array(d.length));
      let lr = base.lr;
      const grads2: Float64Array[] = [];
      for (let t = 1; t <= 4; t++) {
        if (t === 3) opt.lr = lr = 0.004; // a schedule sets the base lr; groups keep their multiplier
        params.forEach((p, k) => {
          const g = viaF32(rng.normal(p.size));
          if (k === 2) grads2.push(g);
          setGrad(ctx, p, g);
          adamRef(ref[k]!, g, m[k]!, v[k]!, t, { ...base, lr: k === 2 ? lr * 0.5 : lr, wd: k === 2 ? 0 : 0.1 });
        });
        opt.step();
      }
      for (const [k, p] of params.entries()) expectClose(await p.read(), ref[k]!, 2e-5, 2e-6, `${name} p${k} (seed ${seed})`);
      // the no-decay group really differs from what the decayed group's settings would have given it
      const decayed = Float64Array.from(init[2]!);
      const [mm, vv] = [new Float64Array(decayed.length), new Float64Array(decayed.length)];
      grads2.forEach((g, i) => adamRef(decayed, g, mm, vv, i + 1, { ...base, lr: i >= 2 ? 0.004 : 0.01, wd: 0.1 }));
      const got = await params[2]!.read();
      expect(Math.max(...decayed.map((x, i) => Math.abs(x - got[i]!))), 'group 0 settings would have moved p2').toBeGreaterThan(1e-4);
      await disposeAll(opt, params);
    });
  }

  it('SGD with momentum: per-group weight decay (coupled) and lr multiplier vs float64', async () => {
    const { ctx } = gpu;
    const seed = Math.floor(Math.random() * 2 ** 32);
    const rng = new Rng(seed);
    const { init, params } = makeParams(ctx, rng);
    const opt = new SGD(
      [
        { params: [params[0]!], weightDecay: 0.05 },
        { params: [params[1]!, params[2]!], weightDecay: 0, lrScale: 2 },
      ],
      { lr: 0.1, momentum: 0.9, weightDecay: 0.3 },
    );
    const ref = init.map((d) => Float64Array.from(d));
    const bufs: (Float64Array | null)[] = [null, null, null];
    for (let s = 0; s < 3; s++) {
      params.forEach((p, k) => {
        const g = viaF32(rng.normal(p.size));
        setGrad(ctx, p, g);
        bufs[k] = sgdRef(ref[k]!, g, bufs[k]!, { lr: k === 0 ? 0.1 : 0.2, momentum: 0.9, wd: k === 0 ? 0.05 : 0 });
      });
      opt.step();
    }
    // state indices run over the groups in order; loading the optimizer's own live state keeps it
    expect([...(opt.stateDict().tensors as Map<string, Tensor>).keys()]).toEqual(['state.0.momentum_buffer', 'state.1.momentum_buffer', 'state.2.momentum_buffer']);
    opt.loadStateDict(opt.stateDict());
    params.forEach((p, k) => {
      const g = viaF32(rng.normal(p.size));
      setGrad(ctx, p, g);
      bufs[k] = sgdRef(ref[k]!, g, bufs[k]!, { lr: k === 0 ? 0.1 : 0.2, momentum: 0.9, wd: k === 0 ? 0.05 : 0 });
    });
    opt.step();
    for (const [k, p] of params.entries()) expectClose(await p.read(), ref[k]!, 2e-5, 2e-6, `SGD p${k} (seed ${seed})`);
    await disposeAll(opt, params);
  });

  it('paramGroups: weights decay; biases, norm parameters and position tables do not; a custom rule', () => {
    const { ctx } = gpu;
    class Tiny extends Module<[Tensor], Tensor, object> {
      constructor() {
        super(ctx, {});
        const g = new Generator(1);
        this.registerParameter('pos_embed', randn(ctx, [4, 3], g));
        this.registerParameter('tok_emb', randn(ctx, [5, 3], g));
        this.registerModule('mlp', new MLP(ctx, { sizes: [3, 2], seed: 1 }));
        this.registerModule('norm', new BatchNorm2d(ctx, { numFeatures: 2 }));
      }
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    const m = new Tiny();
    const names = new Map(m.namedParameters().map(([n, p]) => [p, n]));
    const split = (gs: ReturnType<typeof paramGroups>) => gs.map((g) => [g.name, g.weightDecay, g.params.map((p) => names.get(p))]);
    expect(split(paramGroups(m))).toEqual([
      ['decay', undefined, ['tok_emb', 'mlp.layers.0.weight']],
      ['no_decay', 0, ['pos_embed', 'mlp.layers.0.bias', 'norm.weight', 'norm.bias']],
    ]);
    expect(['position_embedding.weight', 'blocks.0.pos_emb', 'wpe_table'].map((n) => defaultNoDecay(n, m.parameters()[1]!))).toEqual([true, true, false]);
    // a custom rule, frozen parameters left out, and an AdamW built from the groups
    m.parameters()[1]!.requiresGrad = false;
    const custom = paramGroups(m, { noDecay: (n) => n.startsWith('norm.'), lrScale: 0.1 });
    expect(split(custom)).toEqual([
      ['decay', undefined, ['pos_embed', 'mlp.layers.0.weight', 'mlp.layers.0.bias']],
      ['no_decay', 0, ['norm.weight', 'norm.bias']],
    ]);
    const opt = new AdamW(custom, { lr: 1e-3, weightDecay: 0.1 });
    expect(opt.params.length).toBe(5);
    expect(opt.groups.map((g) => g.lrScale)).toEqual([0.1, 0.1]);
    // bad groups are named
    const p = m.parameters()[0]!;
    expect(() => new AdamW([p, { params: [p] }] as never)).toThrow(/entry 1 is a parameter group but entry 0 is not/);
    expect(() => new AdamW([{ params: [p] }, { params: [p] }])).toThrow(/appears twice/);
    expect(() => new SGD([{ params: [p], lrScale: -1, name: 'heads' }], { lr: 0.1 })).toThrow(/heads: invalid lrScale -1/);
    expect(() => new SGD([{ params: [p], weightDecay: NaN }], { lr: 0.1 })).toThrow(/group 0: invalid weightDecay NaN/);
    expect(() => new SGD([{ params: [] }], { lr: 0.1 })).toThrow(/non-empty array of parameters/);
    opt.dispose();
    m.dispose();
  });
});

describe('strict update mask', () => {
  const kinds = ['SGD', 'Adam', 'AdamW'] as const;
  for (const kind of kinds) {
    it(`${kind}: masked weights and state are bit-identical, the rest follows the formula`, async () => {
      const { ctx } = gpu;
      const rng = new Rng();
      const { params } = makeParams(ctx, rng);
      const opt =
        kind === 'SGD'
          ? new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 })
          : kind === 'Adam'
            ? new Adam(params, { lr: 0.01, weightDecay: 0.1 })
            : new AdamW(params, { lr: 0.01, weightDecay: 0.1 });
      const grads = () => params.forEach((p) => setGrad(ctx, p, viaF32(rng.normal(p.size))));
      // step 1 unmasked, so the state is nonzero under the mask; then steps 2, 3 masked
      grads();
      opt.step();
      const before = await Promise.all(params.map(async (p) => new Uint32Array((await p.read()).buffer)));
      const stateOf = async () => {
        const tensors = opt.stateDict().tensors as Map<string, Tensor>;
        const out = new Map<string, Uint32Array>();
        for (const [k, t] of tensors) out.set(k, new Uint32Array((await t.read()).buffer));
        return out;
      };
      const stateBefore = await stateOf();
      const masks = params.map((p) => Float64Array.from(rng.uniform(p.size), (u) => (u < 0 ? 0 : 1)));
      masks[0]![0] = 0;
      masks[0]![1] = 1;
      params.forEach((p, k) => ctx.scope(() => opt.setUpdateMask(p, tensor(ctx, f32(masks[k]!), p.shape)))); // our mask disposed: the optimizer keeps a view
      for (let s = 0; s < 2; s++) {
        grads();
        opt.step();
      }
      const after = await Promise.all(params.map(async (p) => new Uint32Array((await p.read()).buffer)));
      const stateAfter = await stateOf();
      expect(stateAfter.size, 'state tensors compared').toBe(kind === 'SGD' ? 3 : 6);
      params.forEach((p, k) => {
        for (let i = 0; i < p.size; i++) {
          const frozen = masks[k]![i] === 0;
          if (frozen) expect(after[k]![i], `p${k}[${i}] bits`).toBe(before[k]![i]);
          else expect(after[k]![i], `p${k}[${i}] moved`).not.toBe(before[k]![i]);
          for (const [name, bits] of stateAfter) {
            if (!name.startsWith(`state.${k}.`)) continue;
            if (frozen) expect(bits[i], `${name}[${i}] bits`).toBe(stateBefore.get(name)![i]);
            else expect(bits[i], `${name}[${i}] moved`).not.toBe(stateBefore.get(name)![i]);
          }
        }
      });
      // removing the mask lets everything move again
      opt.setUpdateMask(params[0]!, null);
      grads();
      opt.step();
      const freed = new Uint32Array((await params[0]!.read()).buffer);
      expect(freed[0]).not.toBe(after[0]![0]);
      await disposeAll(opt, params);
    });
  }

  it('mask set before the first step: frozen weights never move, first-step state defined (scalar and vec4 paths)', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const { init, params } = makeParams(ctx, rng);
    const o = { lr: 0.5, momentum: 0.9, wd: 0.2 };
    const opt = new SGD(params, { lr: o.lr, momentum: o.momentum, weightDecay: o.wd });
    // param 1 [3,5] runs the scalar kernel, param 2 [2,3,4] the vec4 one (lanes 0-7: two fully frozen vec4s)
    const masks = [1, 2].map((k) => Float64Array.from({ length: params[k]!.size }, (_, i) => (k === 2 && i < 8 ? 0 : i % 2)));
    [1, 2].forEach((k, j) => {
      const maskT = tensor(ctx, f32(masks[j]!), params[k]!.shape);
      opt.setUpdateMask(params[k]!, maskT);
      maskT.dispose();
    });
    const ref = [1, 2].map((k) => Float64Array.from(init[k]!));
    const bufs: (Float64Array | null)[] = [null, null];
    for (let s = 0; s < 3; s++) {
      params.forEach((p, k) => {
        const g = viaF32(rng.normal(p.size));
        setGrad(ctx, p, g);
        if (k > 0) bufs[k - 1] = sgdRef(ref[k - 1]!, g, bufs[k - 1]!, o);
      });
      opt.step();
    }
    for (const [j, k] of [1, 2].entries()) {
      const got = await params[k]!.read();
      const b = await (opt.stateDict().tensors as Map<string, Tensor>).get(`state.${k}.momentum_buffer`)!.read();
      for (let i = 0; i < got.length; i++) {
        if (masks[j]![i] === 0) {
          expect(got[i], `p${k}[${i}]`).toBe(Math.fround(init[k]![i]!));
          expect(b[i], `buf${k}[${i}]`).toBe(0);
        } else expectClose([got[i]!], [ref[j]![i]!], 2e-5, 2e-6, `p${k}[${i}]`);
      }
    }
    expect(() => opt.setUpdateMask(params[0]!, tensor(ctx, [1, 0], [2]))).toThrow(/does not match parameter 0/);
    await disposeAll(opt, params);
  });
});

describe('state dict', () => {
  it('save, load into a fresh optimizer, continue identically; errors name every problem', async () => {
    const { ctx } = gpu;
    const rng = new Rng();
    const { init, params } = makeParams(ctx, rng);
    const twins = init.map((d, k) => ctx.keep(requireGrad(tensor(ctx, f32(d), SHAPES[k]))));
    const a = new AdamW(params, { lr: 0.02 });
    const b = new AdamW(twins, { lr: 0.5 });
    for (let s = 0; s < 2; s++) {
      params.forEach((p) => setGrad(ctx, p, viaF32(rng.normal(p.size))));
      a.step();
    }
    // the twins take a's parameter values and state
    params.forEach((p, k) => ctx.copyBuffer(p.buffer('t'), 0, twins[k]!.buffer('t'), 0, p.bytes));
    b.loadStateDict(a.stateDict());
    expect(b.lr).toBe(0.02);
    expect(b.stepCount).toBe(2);
    const g = params.map((p) => viaF32(rng.normal(p.size)));
    params.forEach((p, k) => setGrad(ctx, p, g[k]!));
    twins.forEach((p, k) => setGrad(ctx, p, g[k]!));
    a.step();
    b.step();
    for (const k of [0, 1, 2]) expect(new Uint32Array((await twins[k]!.read()).buffer)).toEqual(new Uint32Array((await params[k]!.read()).buffer));

    const sd = a.stateDict();
    const tensors = new Map(sd.tensors as Map<string, Tensor>);
    tensors.delete('state.1.exp_avg');
    const wrong = ctx.keep(tensor(ctx, [1, 2], [2]));
    tensors.set('state.2.exp_avg_sq', wrong);
    tensors.set('state.9.exp_avg', wrong);
    let msg = '';
    try {
      b.loadStateDict({ ...sd, tensors });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/missing state\.1\.exp_avg\b/);
    expect(msg).toMatch(/state\.2\.exp_avg_sq is f32\[2\], expected f32\[2,3,4\]/);
    expect(msg).toMatch(/unexpected state\.9\.exp_avg/);
    wrong.dispose();
    a.dispose();
    await disposeAll(b, [...params, ...twins]);
  });

  it('rejects bad parameters and hyperparameters', () => {
    const { ctx } = gpu;
    const p = ctx.keep(tensor(ctx, [1, 2, 3]));
    expect(() => new SGD([p], { lr: 0.1 })).toThrow(/does not require grad/);
    requireGrad(p);
    expect(() => new SGD([p, p], { lr: 0.1 })).toThrow(/appears twice/);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/invalid learning rate/);
    expect(() => new Adam([p], { betas: [1, 0.9] })).toThrow(/beta1/);
    // torch defaults: Adam lr 1e-3, wd 0; AdamW wd 1e-2
    expect([new Adam([p]).lr, new Adam([p]).weightDecay, new AdamW([p]).weightDecay, new AdamW([p]).opName]).toEqual([1e-3, 0, 1e-2, 'AdamW']);
    p.dispose();
  });
});

describe('clipGradNorm', () => {
  for (const normType of [2, 1, Infinity, 3]) {
    for (const maxNorm of [0.5, 1e6]) {
      it(`norm ${normType}, maxNorm ${maxNorm}: total norm and scaled gradients vs float64`, async () => {
        const { ctx } = gpu;
        const rng = new Rng();
        const { params } = makeParams(ctx, rng);
        const grads = params.map((p) => viaF32(rng.normal(p.size)));
        params.forEach((p, k) => (k === 1 ? null : setGrad(ctx, p, grads[k]!)));
        // float64 reference over the gradients present (params 0 and 2)
        const all = [...grads[0]!, ...grads[2]!].map(Math.abs);
        const norm = normType === Infinity ? Math.max(...all) : Math.pow(all.reduce((s, x) => s + x ** normType, 0), 1 / normType);
        const coef = Math.min(1, maxNorm / (norm + 1e-6));
        const total = clipGradNorm(params, maxNorm, normType);
        expect(total.shape).toEqual([]);
        expectClose([await total.item()], [norm], 1e-5, 1e-6, 'total norm');
        expect(params[1]!.grad).toBeNull();
        for (const k of [0, 2]) expectClose(await params[k]!.grad!.read(), grads[k]!.map((x) => x * coef), 1e-5, 1e-6, `grad${k}`);
        total.dispose();
        params.forEach((p) => p.dispose());
      });
    }
  }

  it('gradients sharing one buffer are scaled once', async () => {
    const { ctx } = gpu;
    const a = ctx.keep(requireGrad(tensor(ctx, [0, 0, 0])));
    const b = ctx.keep(requireGrad(tensor(ctx, [0, 0, 0])));
    a.grad = ctx.keep(tensor(ctx, [3, 0, 4]));
    b.grad = ctx.keep(view(a.grad));
    const total = clipGradNorm([a, b], 1);
    const norm = Math.sqrt(50);
    expectClose([await total.item()], [norm], 1e-6, 0, 'norm');
    const c = 1 / (norm + 1e-6);
    expectClose(await b.grad.read(), [3 * c, 0, 4 * c], 1e-6, 1e-7, 'shared grad');
    total.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('schedules', () => {
  it('match hand-computed values', () => {
    expect(constantLr(0.1)(1234)).toBe(0.1);
    const cos = cosineLr(1, 4, 0.2);
    const cosWant = [1, 0.2 + (0.8 * (1 + Math.SQRT1_2)) / 2, 0.6, 0.2 + (0.8 * (1 - Math.SQRT1_2)) / 2, 0.2, 0.2];
    [0, 1, 2, 3, 4, 9].forEach((s, k) => expect(cos(s)).toBeCloseTo(cosWant[k]!, 12));
    const lin = linearLr(0.5, 5, 0.1);
    [0.5, 0.42, 0.34, 0.26, 0.18, 0.1, 0.1].forEach((x, s) => expect(lin(s)).toBeCloseTo(x, 12));
    const w = warmup(4, constantLr(0.8));
    [0.2, 0.4, 0.6, 0.8, 0.8].forEach((x, s) => expect(w(s)).toBeCloseTo(x, 12));
    const wc = warmup(2, cosineLr(1, 2));
    [0.5, 1, 1, 0.5, 0, 0].forEach((x, s) => expect(wc(s)).toBeCloseTo(x, 12));
    expect(() => cosineLr(1, 0)).toThrow(/totalSteps/);
  });
});
