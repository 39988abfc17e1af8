// Device faults on the real adapter: a device destroyed in the middle of trainClassifier (one
// DeviceLostError naming the running operation; a read pending at the loss and every later call
// fail with the same message instead of hanging; a new context resumes from the checkpoint to the
// same weights as an uninterrupted run), allocations over the device's limits (refused before
// anything is allocated, the context usable afterwards), out-of-memory reported by the pool's error
// scope (injected through a wrapped device: lavapipe cannot be driven out of memory safely), and the
// device getting the adapter's limits. It does not test the command line (fault-cli.test.ts).

import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGpu } from './helpers.js';
import { createNodeContext } from '../src/gpu/node.js';
import { GpuContext, DeviceLostError, REQUESTED_LIMITS } from '../src/gpu/context.js';
import { ByteImageDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { MLP } from '../src/models/mlp.js';
import { SGD } from '../src/nn/optim.js';
import { cosineLr } from '../src/nn/schedule.js';
import { trainClassifier, type TrainProgress } from '../src/nn/train.js';
import { nodeCheckpointIO } from '../src/nn/checkpoint-node.js';
import { loadSafetensorsFile } from '../src/io/safetensors-node.js';
import { Generator } from '../src/util/rng.js';
import { EngineError } from '../src/util/errors.js';
import { add, matmul, tensor, zeros, mulScalar } from '../src/ops/index.js';
import type { Tensor } from '../src/autograd/tensor.js';

const gpu = useGpu();
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fault-device-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Resolves or rejects like `p`, or rejects with "<what> hung" after `ms` (a hang detector, not a timing check). */
function settles<T>(p: Promise<T> | T, what: string, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms)));
  return Promise.race([Promise.resolve(p), hang]).finally(() => clearTimeout(timer));
}

/** The error `f` throws or rejects with (fails the test if it succeeds or hangs). */
async function errorOf(f: () => unknown, what: string): Promise<Error> {
  try {
    await settles(Promise.resolve().then(f), what);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`${what} succeeded`);
}

/** n images [1, S, S] of `classes` classes: a class-specific bright row band plus noise. */
function synthetic(n: number, S: number, classes: number, seed: number): ByteImageDataset {
  const g = new Generator(seed);
  const images = new Uint8Array(n * S * S);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = g.cpuInt(classes);
    labels[i] = c;
    for (let p = 0; p < S * S; p++) {
      const inBand = Math.floor((Math.floor(p / S) * classes) / S) === c;
      images[i * S * S + p] = Math.min(255, Math.floor((inBand ? 150 : 40) + 100 * g.cpuUniform()));
    }
  }
  return new ByteImageDataset(images, labels, [1, S, S], classes);
}

describe('device loss', () => {
  const EPOCHS = 3;
  const data = synthetic(96, 6, 4, 11);
  /** A tiny MLP trained with checkpoints in `dir` (6 steps per epoch). */
  async function train(ctx: GpuContext, dir: string, opts: { resume?: boolean; onProgress?: (p: TrainProgress, model: MLP) => void } = {}) {
    const model = new MLP(ctx, { sizes: [36, 16, 4], seed: 7 });
    const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    const res = await trainClassifier({
      ctx, model, optimizer, epochs: EPOCHS, checkpointDir: dir, checkpointIO: nodeCheckpointIO(), resume: opts.resume ?? false,
      trainLoader: new DataLoader(data, { batchSize: 16, shuffle: true, seed: 9 }),
      schedule: cosineLr(0.05, EPOCHS), progress: false, readEvery: 2,
      onProgress: (p) => opts.onProgress?.(p, model),
    });
    const weights = new Map<string, Float32Array>();
    for (const [n, t] of model.stateDict()) weights.set(n, (await t.read()) as Float32Array);
    optimizer.dispose();
    model.dispose();
    return { res, weights };
  }

  it('a device destroyed mid-training: one DeviceLostError, fail-fast afterwards, resume on a new context gives the same weights', async () => {
    const reference = await train(gpu.ctx, tmp());
    expect(reference.res.epochsDone).toBe(EPOCHS);

    const lossCtx = await createNodeContext();
    const dir = tmp();
    const before = tensor(lossCtx, new Float32Array([1, 2, 3, 4]), [2, 2]); // made before the loss
    let pendingRead: Promise<Float32Array> | null = null;
    const trainErr = await errorOf(
      () =>
        train(lossCtx, dir, {
          onProgress: (p, model) => {
            // in epoch 2, after epoch 1's checkpoint: start a read-back, then lose the device under it
            if (p.kind === 'step' && p.epoch === 1 && !pendingRead) {
              pendingRead = model.parameters()[0]!.read() as Promise<Float32Array>;
              lossCtx.device.destroy();
            }
          },
        }),
      'trainClassifier on a lost device',
    );
    expect(pendingRead, 'the device was destroyed during epoch 2').not.toBeNull();
    expect(trainErr).toBeInstanceOf(DeviceLostError);
    expect(trainErr).toBeInstanceOf(EngineError);
    const message = trainErr.message;
    expect(message).toMatch(/^GPU device lost: while '[^']+' was running \(reason 'destroyed'/);
    expect((trainErr as DeviceLostError).runningOp).not.toBe('nothing yet');
    expect(lossCtx.lostReason).toBe(message);

    // the read in flight when the device went away rejects with the same error (Dawn aborts the mapping)
    const pendingErr = await errorOf(() => pendingRead!, 'a read pending at the loss');
    expect(pendingErr.message).toBe(message);
    // every later call fails with the same message instead of hanging or computing garbage
    const later: [string, () => unknown][] = [
      ['tensor upload', () => tensor(lossCtx, new Float32Array(4), [4])],
      ['zeros', () => zeros(lossCtx, [3])],
      ['matmul', () => matmul(before, before)],
      ['read', () => before.read()],
      ['sync', () => lossCtx.sync()],
      ['flush', () => lossCtx.flush()],
      ['trainClassifier', () => train(lossCtx, tmp())],
    ];
    for (const [what, f] of later) {
      const e = await errorOf(f, what);
      expect(e, what).toBeInstanceOf(DeviceLostError);
      expect(e.message, what).toBe(message);
    }
    await lossCtx.close();

    // the checkpoint on disk is the one written at the end of epoch 1 (6 steps), complete; a new context resumes from it
    const ckpt = await loadSafetensorsFile(join(dir, 'checkpoint.safetensors'));
    expect(JSON.parse(ckpt.metadata.state!).globalStep).toBe(6);
    const freshCtx = await createNodeContext();
    try {
      const resumed = await train(freshCtx, dir, { resume: true });
      expect(resumed.res.resumedAt).toBe(1);
      expect(resumed.res.epochsDone).toBe(EPOCHS);
      expect(resumed.res.history.map((h) => h.trainLoss)).toEqual(reference.res.history.map((h) => h.trainLoss));
      for (const [n, w] of reference.weights)
        expect(Buffer.from(resumed.weights.get(n)!.buffer).equals(Buffer.from(w.buffer)), `${n} bit-identical`).toBe(true);
    } finally {
      await freshCtx.close();
    }
  }, 120_000);

  it('loseDeviceAfter(n) loses the device after exactly n more dispatches and names the last kernel', async () => {
    const ctx = await createNodeContext();
    try {
      const a = tensor(ctx, new Float32Array([1, 2, 3, 4]), [2, 2]);
      await a.read();
      ctx.loseDeviceAfter(2);
      const d0 = ctx.stats().dispatches;
      const b = matmul(a, a); // dispatch 1
      mulScalar(b, 2); // dispatch 2: the device is destroyed right after it
      expect(ctx.stats().dispatches - d0).toBe(2);
      const e = await errorOf(() => b.read(), 'read after an injected loss');
      expect(e).toBeInstanceOf(DeviceLostError);
      expect((e as DeviceLostError).runningOp).toMatch(/mul|map|scalar/i);
      expect(e.message).toMatch(/^GPU device lost: while '[^']+' was running/);
    } finally {
      await ctx.close();
    }
  }, 60_000);
});

describe('limits and memory', () => {
  it('allocations over maxStorageBufferBindingSize are refused before anything is allocated, naming tensor, op and limit', async () => {
    const { ctx } = gpu;
    const limit = ctx.limits.maxStorageBufferBindingSize;
    const n = limit / 4 + 1;
    const a = tensor(ctx, new Float32Array(5800).fill(1), [5800, 1]);
    const b = tensor(ctx, new Float32Array(5800).fill(2), [1, 5800]);
    const s0 = ctx.stats();
    const e1 = await errorOf(() => zeros(ctx, [n]), 'zeros over the limit');
    expect(e1).toBeInstanceOf(EngineError);
    expect(e1.message).toContain(`f32[${n}]`);
    expect(e1.message).toContain(`maxStorageBufferBindingSize of ${limit} bytes`);
    expect(e1.message).toContain('src/wgsl/fill.ts');
    // [5800, 1] x [1, 5800]: small inputs, a 134.6 MB output
    const e2 = await errorOf(() => matmul(a, b), 'matmul over the limit');
    expect(e2.message).toContain('f32[5800,5800]');
    expect(e2.message).toContain(`${5800 * 5800 * 4} bytes`);
    expect(e2.message).toMatch(/matmul/);
    const s1 = ctx.stats();
    expect([s1.created, s1.liveBuffers, s1.liveBytes], 'nothing allocated').toEqual([s0.created, s0.liveBuffers, s0.liveBytes]);
    // still usable
    const c = matmul(tensor(ctx, new Float32Array([1, 2, 3, 4]), [2, 2]), tensor(ctx, new Float32Array([5, 6, 7, 8]), [2, 2]));
    expect([...(await c.read())]).toEqual([19, 22, 43, 50]);
    for (const t of [a, b, c]) t.dispose();
  }, 30_000);

  /** `real` seen through a proxy: `limits` overridden, and the next createBuffer failing with out-of-memory when armed. */
  function wrapDevice(real: GPUDevice, overrides: Record<string, number>) {
    const state = { failNextCreate: false, injectOnPop: false, created: 0 };
    const limits: Record<string, number> = {};
    for (const k in real.limits) limits[k] = (real.limits as unknown as Record<string, number>)[k]!;
    Object.assign(limits, overrides);
    const device = new Proxy(real, {
      get(target, prop) {
        if (prop === 'limits') return limits;
        if (prop === 'createBuffer')
          return (desc: GPUBufferDescriptor) => {
            state.created++;
            if (!state.failNextCreate) return target.createBuffer(desc);
            state.failNextCreate = false;
            state.injectOnPop = true;
            // an invalid buffer, as a failed allocation leaves: every use of it is a validation error
            return target.createBuffer({ size: desc.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
          };
        if (prop === 'popErrorScope')
          return () =>
            target.popErrorScope().then((err) => {
              if (!state.injectOnPop) return err;
              state.injectOnPop = false;
              return { message: 'injected: not enough device memory' } as GPUError;
            });
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { device, state };
  }

  it('maxBufferSize: refused over it, and size classes never round a buffer past it', async () => {
    const base = await createNodeContext();
    const { device } = wrapDevice(base.device, { maxBufferSize: 300_000 });
    const ctx = new GpuContext(device, base.adapterInfo);
    try {
      expect(ctx.limits.maxBufferSize).toBe(300_000);
      const before = ctx.stats().liveBytes;
      const t = zeros(ctx, [74_000]); // 296,000 bytes: its size class (311,744) would be over the limit
      expect(ctx.stats().liveBytes - before).toBe(296_000);
      expect((await t.read())[73_999]).toBe(0);
      const e = await errorOf(() => zeros(ctx, [75_001]), 'over maxBufferSize');
      expect(e.message).toContain('f32[75001]');
      expect(e.message).toContain("maxBufferSize of 300000 bytes");
      t.dispose();
    } finally {
      await ctx.close();
      await base.close();
    }
  }, 30_000);

  it('out-of-memory from the error scope names the tensor and op; the context stays usable', async () => {
    const base = await createNodeContext();
    const { device, state } = wrapDevice(base.device, {});
    const ctx = new GpuContext(device, base.adapterInfo);
    try {
      const values = Float32Array.from({ length: 1000 }, (_, i) => i - 500);
      const x = tensor(ctx, values, [1000]);
      await x.read();
      const created = state.created;
      state.failNextCreate = true;
      const y = add(x, x); // its output needs a new buffer: the one that fails
      expect(state.created).toBe(created + 1);
      const e = await errorOf(() => y.read(), 'read of a tensor whose allocation failed');
      expect(e).toBeInstanceOf(EngineError);
      expect(e.message).toMatch(/out of GPU memory allocating f32\[1000\] for .*src\/wgsl\//);
      expect(e.message).toContain('injected: not enough device memory');
      expect(ctx.stats().outOfMemory).toBe(1);
      y.dispose(); // the invalid buffer is destroyed, never recycled
      // usable afterwards: new work computes the right values and reports no stale errors
      const z: Tensor = add(x, x);
      expect([...(await z.read())]).toEqual([...values].map((v) => 2 * v));
      await ctx.sync();
      z.dispose();
      x.dispose();
    } finally {
      await ctx.close();
      await base.close();
    }
  }, 30_000);

  it('the device gets the adapter limits for every requested limit (above the WebGPU defaults where the adapter allows)', async () => {
    const { ctx } = gpu;
    const { create } = await import('webgpu');
    const g = create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia']);
    const adapter = (await g.requestAdapter({ powerPreference: 'high-performance' }))!;
    const adapterLimits = adapter.limits as unknown as Record<string, number>;
    const deviceLimits = ctx.device.limits as unknown as Record<string, number>;
    for (const k of REQUESTED_LIMITS) {
      expect(deviceLimits[k], k).toBe(adapterLimits[k]);
      expect(ctx.limits[k], k).toBe(adapterLimits[k]);
      expect(ctx.adapterLimits[k], k).toBe(adapterLimits[k]);
    }
    // the WebGPU specification's defaults: a device made without requiredLimits gets these
    const DEFAULTS: Record<string, number> = {
      maxStorageBufferBindingSize: 134217728, maxBufferSize: 268435456, maxComputeWorkgroupStorageSize: 16384,
      maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256,
      maxComputeWorkgroupSizeZ: 64, maxComputeWorkgroupsPerDimension: 65535, maxStorageBuffersPerShaderStage: 8,
      maxUniformBufferBindingSize: 65536, maxBindGroups: 4,
    };
    expect(Object.keys(DEFAULTS).sort()).toEqual([...REQUESTED_LIMITS].sort());
    const raised = REQUESTED_LIMITS.filter((k) => adapterLimits[k]! > DEFAULTS[k]!);
    expect(raised.length, 'this adapter offers more than the defaults somewhere').toBeGreaterThan(0);
    for (const k of raised) expect(deviceLimits[k], k).toBeGreaterThan(DEFAULTS[k]!);
    void g; // keep the instance alive until here (see GpuContext.fromGPU)
  });
});
