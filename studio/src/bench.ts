// The kernel-benchmark worker: matmul and conv2d of this engine against tfjs-backend-webgpu on the
// same adapter, same inputs. Outputs are compared (max relative difference), then each side is timed
// with a read-back per repeat (median of 3). It is the only bundle that carries tfjs.
// Attention is the engine's `attention()` against tfjs's composition (batched matMul, softmax, matMul).
//
// Letters: M, K, N matmul sizes (C[M,N] = A[M,K] B[K,N]); N batch, C in / O out channels, H, W, KS kernel;
// attention: B batch (windows), NH heads, L tokens, D head width.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { GpuContext, Generator, tensor, matmul, conv2d, attention, type Tensor } from '../../src/index.js';

export interface BenchRow {
  kernel: 'matmul' | 'conv2d' | 'attention';
  shape: string;
  flops: number;
  oursMs: number;
  tfjsMs: number;
  /** max |ours − tfjs| / max |tfjs| */
  relDiff: number;
}

export type BenchEvent =
  | { kind: 'adapter'; name: string }
  | { kind: 'progress'; phase: string; done: number; total: number }
  | { kind: 'row'; row: BenchRow }
  | { kind: 'done' }
  | { kind: 'error'; message: string };

type Case =
  | { kernel: 'matmul'; M: number; K: number; N: number }
  | { kernel: 'conv2d'; N: number; C: number; O: number; H: number; W: number; KS: number }
  | { kernel: 'attention'; B: number; NH: number; L: number; D: number };

const SIZES: Record<string, Case[]> = {
  // the test's size: seconds on a software adapter
  small: [
    { kernel: 'matmul', M: 128, K: 128, N: 128 },
    { kernel: 'conv2d', N: 4, C: 16, O: 16, H: 16, W: 16, KS: 3 },
    { kernel: 'attention', B: 16, NH: 3, L: 49, D: 32 },
  ],
  medium: [
    { kernel: 'matmul', M: 256, K: 256, N: 256 },
    { kernel: 'matmul', M: 512, K: 512, N: 512 },
    { kernel: 'matmul', M: 2048, K: 576, N: 64 },
    { kernel: 'conv2d', N: 8, C: 16, O: 16, H: 32, W: 32, KS: 3 },
    { kernel: 'conv2d', N: 8, C: 64, O: 64, H: 16, W: 16, KS: 3 },
    { kernel: 'attention', B: 64, NH: 3, L: 49, D: 32 },
    { kernel: 'attention', B: 2, NH: 4, L: 197, D: 64 },
  ],
  large: [
    { kernel: 'matmul', M: 1024, K: 1024, N: 1024 },
    { kernel: 'matmul', M: 2048, K: 2048, N: 2048 },
    { kernel: 'matmul', M: 32768, K: 576, N: 64 },
    { kernel: 'conv2d', N: 32, C: 64, O: 64, H: 32, W: 32, KS: 3 },
    { kernel: 'conv2d', N: 32, C: 128, O: 128, H: 16, W: 16, KS: 3 },
    { kernel: 'conv2d', N: 32, C: 256, O: 256, H: 8, W: 8, KS: 3 },
    { kernel: 'attention', B: 256, NH: 3, L: 49, D: 32 },
    { kernel: 'attention', B: 8, NH: 12, L: 197, D: 64 },
  ],
};

const post = (m: BenchEvent) => (self as unknown as { postMessage(m: BenchEvent): void }).postMessage(m);

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

/** median milliseconds per call over 3 repeats of `iters` calls, each ending in a read-back */
async function time(run: (iters: number) => Promise<void>): Promise<number> {
  await run(1); // warm-up: pipelines compiled
  const t0 = performance.now();
  await run(1);
  const one = performance.now() - t0;
  const iters = Math.max(1, Math.min(50, Math.round(150 / Math.max(one, 0.01))));
  const ms: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    await run(iters);
    ms.push((performance.now() - t) / iters);
  }
  return ms.sort((x, y) => x - y)[1]!;
}

/** Milliseconds per call of an engine op (outputs freed, one read-back per repeat). */
const timeOurs = (op: () => Tensor) =>
  time(async (n) => {
    let y: Tensor | null = null;
    for (let i = 0; i < n; i++) {
      y?.dispose();
      y = op();
    }
    await y!.read();
    y!.dispose();
  });

/** The same for a tfjs op. */
const timeTfjs = (op: () => tf.Tensor) =>
  time(async (n) => {
    let y: tf.Tensor | null = null;
    for (let i = 0; i < n; i++) {
      y?.dispose();
      y = op();
    }
    await y!.data();
    y!.dispose();
  });

async function benchOne(ctx: GpuContext, c: Case, gen: Generator): Promise<BenchRow> {
  const rand = (n: number) => Float32Array.from({ length: n }, () => gen.cpuUniform() * 2 - 1);
  if (c.kernel === 'matmul') {
    const a = rand(c.M * c.K);
    const b = rand(c.K * c.N);
    const A = tensor(ctx, a, [c.M, c.K]);
    const B = tensor(ctx, b, [c.K, c.N]);
    const tA = tf.tensor2d(a, [c.M, c.K]);
    const tB = tf.tensor2d(b, [c.K, c.N]);
    const ours = (() => {
      const y = ctx.noGrad(() => matmul(A, B));
      return y;
    })();
    const oursOut = await ours.read();
    ours.dispose();
    const ty = tf.matMul(tA, tB);
    const tfOut = await ty.data();
    ty.dispose();
    const row: BenchRow = {
      kernel: 'matmul',
      shape: `${c.M}×${c.K}×${c.N}`,
      flops: 2 * c.M * c.K * c.N,
      relDiff: relDiff(oursOut as Float32Array, tfOut as Float32Array),
      oursMs: await timeOurs(() => ctx.noGrad(() => matmul(A, B))),
      tfjsMs: await timeTfjs(() => tf.matMul(tA, tB)),
    };
    A.dispose();
    B.dispose();
    tA.dispose();
    tB.dispose();
    return row;
  }
  if (c.kernel === 'attention') return benchAttention(ctx, c, rand);
  // conv2d, stride 1, 'same' padding; ours NCHW / [O, C, KS, KS], tfjs NHWC / [KS, KS, C, O]
  const { N, C, O, H, W, KS } = c;
  const x = rand(N * C * H * W);
  const w = rand(O * C * KS * KS);
  const xNhwc = new Float32Array(x.length);
  for (let n = 0; n < N; n++) for (let ch = 0; ch < C; ch++) for (let p = 0; p < H * W; p++) xNhwc[(n * H * W + p) * C + ch] = x[(n * C + ch) * H * W + p]!;
  const wHwio = new Float32Array(w.length);
  for (let o = 0; o < O; o++) for (let ch = 0; ch < C; ch++) for (let k = 0; k < KS * KS; k++) wHwio[(k * C + ch) * O + o] = w[(o * C + ch) * KS * KS + k]!;
  const X = tensor(ctx, x, [N, C, H, W]);
  const Wt = tensor(ctx, w, [O, C, KS, KS]);
  const tX = tf.tensor4d(xNhwc, [N, H, W, C]);
  const tW = tf.tensor4d(wHwio, [KS, KS, C, O]);
  const pad = (KS - 1) / 2;
  const oursConv = () => ctx.noGrad(() => conv2d(X, Wt, undefined, { padding: pad }));
  const y0 = oursConv();
  const oursOut = (await y0.read()) as Float32Array;
  y0.dispose();
  const ty0 = tf.conv2d(tX, tW, 1, 'same');
  const tfOut = (await ty0.data()) as Float32Array;
  ty0.dispose();
  // ours back to NHWC for the comparison
  const oursNhwc = new Float32Array(oursOut.length);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let p = 0; p < H * W; p++) oursNhwc[(n * H * W + p) * O + o] = oursOut[(n * O + o) * H * W + p]!;
  const row: BenchRow = {
    kernel: 'conv2d',
    shape: `${N}×${C}×${H}×${W} → ${O}, ${KS}×${KS}`,
    flops: 2 * N * O * H * W * C * KS * KS,
    relDiff: relDiff(oursNhwc, tfOut),
    oursMs: await timeOurs(oursConv),
    tfjsMs: await timeTfjs(() => tf.conv2d(tX, tW, 1, 'same')),
  };
  X.dispose();
  Wt.dispose();
  tX.dispose();
  tW.dispose();
  return row;
}

async function benchAttention(ctx: GpuContext, c: Extract<Case, { kernel: 'attention' }>, rand: (n: number) => Float32Array): Promise<BenchRow> {
  const { B, NH, L, D } = c;
  const shape = [B, NH, L, D];
  const host = [rand(B * NH * L * D), rand(B * NH * L * D), rand(B * NH * L * D)];
  const [q, k, v] = host.map((a) => tensor(ctx, a, shape)) as [Tensor, Tensor, Tensor];
  const [tq, tk, tv] = host.map((a) => tf.tensor3d(a, [B * NH, L, D]));
  const scale = 1 / Math.sqrt(D);
  const ours = () => ctx.noGrad(() => attention(q, k, v));
  const theirs = () => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(tq!, tk!, false, true), scale)), tv!));
  const y0 = ours();
  const oursOut = (await y0.read()) as Float32Array;
  y0.dispose();
  const t0 = theirs();
  const tfOut = (await t0.data()) as Float32Array;
  t0.dispose();
  const row: BenchRow = {
    kernel: 'attention',
    shape: `${B}×${NH} heads, ${L} tokens, d ${D}`,
    flops: 4 * B * NH * L * L * D,
    relDiff: relDiff(oursOut, tfOut),
    oursMs: await timeOurs(ours),
    tfjsMs: await timeTfjs(theirs),
  };
  for (const t of [q, k, v]) t.dispose();
  for (const t of [tq, tk, tv]) t!.dispose();
  return row;
}

let ctx: GpuContext | null = null;

self.onmessage = async (ev: MessageEvent<{ size: string }>) => {
  try {
    const cases = SIZES[ev.data.size];
    if (!cases) throw new Error(`unknown size '${ev.data.size}' (small, medium, large)`);
    ctx ??= await GpuContext.fromGPU((self as unknown as { navigator: { gpu?: GPU } }).navigator.gpu);
    if (tf.getBackend() !== 'webgpu') {
      const ok = await tf.setBackend('webgpu');
      if (!ok || tf.getBackend() !== 'webgpu') throw new Error('tfjs-backend-webgpu failed to initialise on this adapter');
      await tf.ready();
    }
    post({ kind: 'adapter', name: ctx.deviceName });
    const gen = new Generator(1234);
    for (const [k, c] of cases.entries()) {
      post({ kind: 'progress', phase: `${c.kernel} ${k + 1}/${cases.length}`, done: k, total: cases.length });
      post({ kind: 'row', row: await benchOne(ctx, c, gen) });
    }
    post({ kind: 'progress', phase: 'done', done: cases.length, total: cases.length });
    post({ kind: 'done' });
  } catch (e) {
    post({ kind: 'error', message: `benchmark: ${(e as Error).message ?? String(e)}` });
  }
};
