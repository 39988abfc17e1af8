// ExponentialMovingAverage against its float64 reference: shadow <- shadow - (1 - d)(shadow - p) over
// several updates with the weights changing in between (vec4 and scalar kernel paths), with and
// without the num_updates warm-up; copyTo, reset, the checkpoint state round trip and bad input.
import { describe, it, expect } from 'vitest';
import { useGpu, Rng, viaF32, f32, expectClose } from './helpers.js';
import { MLP } from '../src/models/mlp.js';
import { ExponentialMovingAverage } from '../src/nn/ema.js';
import type { Tensor } from '../src/autograd/tensor.js';

const gpu = useGpu();

/** New random weights for every parameter of `m` (float64 values exactly representable in f32). */
function setWeights(m: MLP, rng: Rng): Map<string, Float64Array> {
  const values = new Map<string, Float64Array>();
  const record = new Map<string, { dtype: string; shape: readonly number[]; data: Float32Array }>();
  for (const [name, p] of m.namedParameters()) {
    const v = viaF32(rng.uniform(p.size, -2, 2));
    values.set(name, v);
    record.set(name, { dtype: 'F32', shape: p.shape, data: f32(v) });
  }
  m.loadStateDict(record);
  return values;
}

describe('ExponentialMovingAverage', () => {
  for (const warmup of [false, true]) {
    it(`matches the float64 update over 5 steps (warmup ${warmup})`, async () => {
      const { ctx } = gpu;
      const seed = Math.floor(Math.random() * 2 ** 32);
      const rng = new Rng(seed);
      // [4,4] and [4] run the vec4 kernel, [2,4] too, [2] the scalar one
      const model = new MLP(ctx, { sizes: [4, 4, 2], seed: 1 });
      const init = setWeights(model, rng);
      const decay = 0.9;
      const ema = new ExponentialMovingAverage(model, { decay, warmup });
      const ref = new Map([...init].map(([n, v]) => [n, Float64Array.from(v)]));
      const decays: number[] = [];
      for (let t = 0; t < 5; t++) {
        const d = warmup ? Math.min(decay, (1 + t) / (10 + t)) : decay;
        expect(ema.currentDecay()).toBe(d);
        decays.push(d);
        const w = setWeights(model, rng);
        ema.update();
        for (const [n, s] of ref) {
          const p = w.get(n)!;
          for (let i = 0; i < s.length; i++) s[i] = s[i]! - (1 - d) * (s[i]! - p[i]!);
        }
      }
      expect(ema.numUpdates).toBe(5);
      if (warmup) expect(decays.slice(0, 3)).toEqual([0.1, 2 / 11, 0.25]);
      for (const [n, s] of ref) expectClose(await ema.shadow.get(n)!.read(), s, 1e-6, 1e-6, `shadow ${n} (seed ${seed})`);
      // and the average differs from the last weights (the test would pass for a copy otherwise)
      const last = model.namedParameters()[0]!;
      expect([...(await ema.shadow.get(last[0])!.read())]).not.toEqual([...(await last[1].read())]);

      // copyTo writes the averages into another module's parameters, bit for bit
      const target = model.spawn();
      ema.copyTo(target);
      for (const [n, t] of target.namedParameters())
        expect(new Uint32Array((await t.read()).buffer), n).toEqual(new Uint32Array((await ema.shadow.get(n)!.read()).buffer));
      // reset restarts at the module's weights
      ema.reset();
      expect(ema.numUpdates).toBe(0);
      for (const [n, t] of model.namedParameters()) expect([...(await ema.shadow.get(n)!.read())], n).toEqual([...(await t.read())]);
      ema.dispose();
      target.dispose();
      model.dispose();
    });
  }

  it('checkpoint state: live tensors by parameter name and the update count; bad input is named', async () => {
    const { ctx } = gpu;
    const model = new MLP(ctx, { sizes: [3, 2], seed: 2 });
    const ema = new ExponentialMovingAverage(model, { decay: 0.5 });
    ema.update();
    const st = ema.checkpointState();
    expect([...st.tensors.keys()]).toEqual(['layers.0.weight', 'layers.0.bias']);
    expect(st.tensors.get('layers.0.weight')).toBe(ema.shadow.get('layers.0.weight') as Tensor);
    expect(st.meta).toEqual({ numUpdates: 1, decay: 0.5 });
    const other = new ExponentialMovingAverage(model, { decay: 0.5 });
    other.restoreCheckpointState(st.meta);
    expect(other.numUpdates).toBe(1);
    expect(() => other.restoreCheckpointState({})).toThrow(/no update count/);
    expect(() => new ExponentialMovingAverage(model, { decay: 1.5 })).toThrow(/decay must lie in \[0, 1\], got 1\.5/);
    const wider = new MLP(ctx, { sizes: [3, 4], seed: 2 });
    expect(() => ema.copyTo(wider)).toThrow(/'layers\.0\.weight' has shape \[2,3\] in the source, expected \[4,3\]/);
    [ema, other].forEach((e) => e.dispose());
    [model, wider].forEach((m) => m.dispose());
  });
});
