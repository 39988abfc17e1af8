// The device context: owns the GPUDevice, the buffer pool, the pipeline cache and the command
// recording. Kernels are recorded into one command encoder and one compute pass and submitted
// together on flush(); reading a value back is the only thing that waits. It also owns the faults:
// allocations are checked against the device's limits before they are made, out-of-memory is
// caught by error scopes, and a lost device becomes one DeviceLostError that every later call
// (pending reads and syncs included) fails with.
// It does not know about tensors' math (kernels live in src/wgsl, autograd in src/autograd) and does
// not recover a lost device: a new context does, resuming from the caller's checkpoints.

import { BufferPool, type PoolStats } from './pool.js';
import { BufferUsage, MapMode } from './flags.js';
import { EngineError } from '../util/errors.js';

/**
 * Limits we ask the device for at the adapter's maximum when the adapter offers more than default:
 * every limit a compute kernel or a buffer allocation can hit (render and texture limits are not used).
 */
export const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindGroups',
] as const;

/** Optional features we enable when the adapter has them. */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment's maximum allowed value
const UNIFORM_ARENA = 256 * 1024; // 1024 dispatches per submit before an automatic flush

export interface DispatchSpec {
  /** Unique key of the shader source; the pipeline is compiled once per key. */
  key: string;
  /** WGSL source, produced only on a cache miss. */
  code: () => string;
  /** Storage buffers bound at @binding(0..n-1) of @group(0), in order. */
  buffers: { buffer: GPUBuffer; bytes: number }[];
  /** Optional uniform block bound at @binding(n) (after the storage buffers). At most 256 bytes. */
  uniforms?: ArrayBuffer;
  workgroups: [number, number?, number?];
  /** Name for error messages. */
  op: string;
}

export interface ContextStats extends PoolStats {
  dispatches: number;
  submits: number;
  pipelines: number;
}

/**
 * The error every call throws once the device is lost: the same message each time, naming the
 * operation that was running. The context cannot be used any more; make a new one (runs that
 * checkpoint resume from their last checkpoint).
 */
export class DeviceLostError extends EngineError {
  constructor(
    /** The last operation recorded before the loss was noticed. */
    readonly runningOp: string,
    /** GPUDeviceLostInfo.reason ('destroyed' or 'unknown') and message. */
    readonly reason: string,
    readonly detail: string,
  ) {
    super(
      'GPU device lost',
      `while '${runningOp}' was running (reason '${reason}'${detail ? `: ${detail}` : ''}). ` +
        'This context cannot be used any more and every later call fails with this error; ' +
        'create a new context (a run that checkpoints resumes from its last checkpoint)',
    );
    this.name = 'DeviceLostError';
  }
}

/** Scope frame: tensors created while it is on top are disposed when it closes. */
interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

export type LimitName = (typeof REQUESTED_LIMITS)[number];

export class GpuContext {
  readonly pool: BufferPool;
  /** The device's limits (what kernels and allocations are checked against). */
  readonly limits: Record<LimitName, number>;
  /** The adapter's limits for the same names (equal to `limits` when fromGPU requested them all). */
  adapterLimits: Record<LimitName, number>;
  readonly features: ReadonlySet<string>;
  /** Set once the device is lost; every later call throws (a copy of) it. */
  lostError: DeviceLostError | null = null;
  /** Rejects with the lost error: every wait on the GPU races it, so none can hang on a lost device. */
  private readonly lostSignal: Promise<never>;
  private rejectLost!: (e: DeviceLostError) => void;
  /** Name of the last kernel (or upload) recorded (for the device-lost message). */
  private lastOp = 'nothing yet';
  /** Out-of-memory errors reported by error scopes or uncaptured, thrown by the next call. */
  private memoryErrors: string[] = [];
  private loseAfterDispatches: number | null = null;

  private pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniformBuf: GPUBuffer;
  private uniformData = new Uint8Array(UNIFORM_ARENA);
  private uniformUsed = 0;
  private stagingFree: GPUBuffer[] = [];
  private validationErrors: string[] = [];
  private nDispatch = 0;
  private nSubmit = 0;
  private scopes: Set<Disposable>[] = [];
  private gradOff = 0;
  private destroyed = false;

  constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string },
  ) {
    const lim: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS) lim[k] = Number((device.limits as unknown as Record<string, number>)[k]);
    this.limits = lim as GpuContext['limits'];
    this.adapterLimits = { ...this.limits };
    this.pool = new BufferPool(device, {
      maxBufferSize: this.limits.maxBufferSize,
      onOutOfMemory: (_bytes, message) => {
        this.memoryErrors.push(message);
        this.pool.trim(); // give idle buffers back so the caller can retry smaller
      },
    });
    this.features = new Set([...device.features].map(String));
    this.uniformBuf = device.createBuffer({ size: UNIFORM_ARENA, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    this.lostSignal = new Promise<never>((_, reject) => (this.rejectLost = reject));
    this.lostSignal.catch(() => undefined); // observed by whoever is waiting; never unhandled
    device.lost.then((info) => {
      if (this.destroyed) return; // our own destroy()/close()
      this.lostError = new DeviceLostError(this.lastOp, String(info.reason ?? 'unknown'), info.message ?? '');
      this.rejectLost(this.lostError);
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      const msg = err?.message ?? String(ev);
      const kind = err?.constructor?.name ?? '';
      if (kind === 'GPUOutOfMemoryError') this.memoryErrors.push(`out of GPU memory: ${msg}`);
      else this.validationErrors.push(kind === 'GPUInternalError' ? `internal error: ${msg}` : msg);
    });
  }

  /**
   * Create a context from a WebGPU entry point (`navigator.gpu` in a browser, or Dawn's `create()` in
   * Node). Requests the adapter's maximum for REQUESTED_LIMITS and enables OPTIONAL_FEATURES present.
   */
  static async fromGPU(gpu: GPU | undefined | null, options: { powerPreference?: GPUPowerPreference } = {}) {
    if (!gpu) throw new EngineError('createContext', NO_ADAPTER_HELP);
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (!adapter) throw new EngineError('createContext', NO_ADAPTER_HELP);
    const requiredLimits: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[k];
      if (typeof v === 'number') requiredLimits[k] = v;
    }
    const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const info = adapter.info ?? ({} as GPUAdapterInfo);
    const ctx = new GpuContext(device, {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    });
    for (const k of REQUESTED_LIMITS) if (k in requiredLimits) ctx.adapterLimits[k] = requiredLimits[k]!;
    // Dawn in Node frees its instance when the GPU object is garbage collected, even while a device
    // made from it is alive (which corrupts memory and crashes the process): hold on to both.
    ctx.owners = [gpu, adapter];
    return ctx;
  }

  /** Objects the device depends on that must stay reachable (see fromGPU); read by nobody, held on purpose. */
  owners: readonly unknown[] = [];

  /** A short human-readable name for benchmark tables. */
  get deviceName(): string {
    const i = this.adapterInfo;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter';
  }

  // ---------------------------------------------------------------------------------------------
  // Recording

  /** The lost-device message, or null while the device works. */
  get lostReason(): string | null {
    return this.lostError?.message ?? null;
  }

  /** Throws the lost-device error (a fresh copy, same message) or a pending out-of-memory error. */
  private checkAlive(op: string) {
    if (this.destroyed) throw new EngineError(op, 'the GPU context was destroyed');
    const lost = this.lostError;
    if (lost) throw new DeviceLostError(lost.runningOp, lost.reason, lost.detail);
    this.throwMemoryErrors(op);
  }

  private throwMemoryErrors(op: string) {
    if (!this.memoryErrors.length) return;
    const errs = this.memoryErrors.splice(0);
    this.validationErrors.length = 0; // consequences of the invalid buffer, not separate faults
    const s = this.pool.stats();
    throw new EngineError(
      op,
      `${errs.slice(0, 3).join(' | ')}${errs.length > 3 ? ` (and ${errs.length - 3} more)` : ''}; ` +
        `${s.liveBytes} bytes in ${s.liveBuffers} live buffers at the time of this report. Work submitted ` +
        'with that buffer did not run; the context stays usable (free tensors, or use smaller shapes)',
    );
  }

  /**
   * Allocate a storage buffer of `bytes` for `what` (a tensor), after checking the size against the
   * device's maxBufferSize and maxStorageBufferBindingSize (every tensor is bound whole by some
   * kernel, so the smaller of the two is the real limit). The error names the tensor, the function
   * that asked for it, its size and the limit, and nothing is allocated.
   */
  allocate(bytes: number, what: { describe(): string }): GPUBuffer {
    this.checkAlive('allocate');
    const { maxBufferSize, maxStorageBufferBindingSize } = this.limits;
    const [limitName, limit] =
      maxStorageBufferBindingSize <= maxBufferSize
        ? (['maxStorageBufferBindingSize', maxStorageBufferBindingSize] as const)
        : (['maxBufferSize', maxBufferSize] as const);
    if (bytes > limit) {
      const by = callerOf(new Error());
      throw new EngineError(
        by.op,
        `cannot allocate ${what.describe()} for ${by.where}: ${formatBytes(bytes)} is over the device's ${limitName} of ` +
          `${formatBytes(limit)} on ${this.deviceName}; nothing was allocated. Use smaller shapes (e.g. a smaller batch) or an adapter with a larger limit`,
      );
    }
    return this.pool.acquire(bytes, (site) => {
      const by = callerOf(site);
      return `${what.describe()} for ${by.where}`;
    });
  }

  /**
   * Testing aid: destroy the device right after the `n`-th dispatch from now, as a driver reset or
   * GPU crash would (the context then reports the loss like a real one). null turns it off.
   */
  loseDeviceAfter(n: number | null): void {
    this.loseAfterDispatches = n === null ? null : this.nDispatch + n;
  }

  private pipeline(spec: DispatchSpec): GPUComputePipeline {
    let p = this.pipelines.get(spec.key);
    if (!p) {
      const module = this.device.createShaderModule({ code: spec.code(), label: spec.key });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: spec.key });
      this.pipelines.set(spec.key, p);
    }
    return p;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Record one kernel launch. */
  dispatch(spec: DispatchSpec): void {
    this.checkAlive(spec.op);
    const maxBind = this.limits.maxStorageBufferBindingSize;
    for (const [i, b] of spec.buffers.entries()) {
      if (b.bytes > maxBind)
        throw new EngineError(
          spec.op,
          `argument ${i} needs a ${b.bytes}-byte binding, over the device's maxStorageBufferBindingSize of ${maxBind} bytes`,
        );
    }
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new EngineError(spec.op, `dispatch of ${x}x${y}x${z} workgroups exceeds the per-dimension limit ${maxWg}`);
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = this.pipeline(spec);
    const entries: GPUBindGroupEntry[] = spec.buffers.map((b, i) => ({
      binding: i,
      resource: { buffer: b.buffer, offset: 0, size: Math.max(4, Math.ceil(b.bytes / 4) * 4) },
    }));
    if (spec.uniforms) {
      if (spec.uniforms.byteLength > UNIFORM_SLOT) throw new EngineError(spec.op, 'uniform block over 256 bytes');
      if (this.uniformUsed + UNIFORM_SLOT > UNIFORM_ARENA) this.flush();
      const off = this.uniformUsed;
      this.uniformData.set(new Uint8Array(spec.uniforms), off);
      this.uniformUsed += UNIFORM_SLOT;
      entries.push({ binding: spec.buffers.length, resource: { buffer: this.uniformBuf, offset: off, size: UNIFORM_SLOT } });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.nDispatch++;
    this.lastOp = spec.op;
    if (this.loseAfterDispatches !== null && this.nDispatch >= this.loseAfterDispatches) {
      this.loseAfterDispatches = null;
      this.flush();
      this.device.destroy(); // reported through device.lost, as a real loss would be
    }
  }

  /** Record a buffer-to-buffer copy (ordered with the kernels around it). */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.checkAlive('copy');
    if (bytes === 0) return;
    this.endPass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /**
   * Upload bytes into a buffer that no recorded or running command uses (a fresh pool buffer).
   * queue.writeBuffer runs before any not-yet-submitted commands, so never use it on a buffer
   * that recorded commands read.
   */
  upload(buffer: GPUBuffer, data: ArrayBufferView): void {
    this.checkAlive('upload');
    this.lastOp = 'upload';
    const bytes = data.byteLength;
    if (bytes % 4 === 0) {
      this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.device.queue.writeBuffer(buffer, 0, padded);
    }
  }

  /** Submit everything recorded so far. Does not wait. */
  flush(): void {
    if (this.destroyed) return;
    if (this.lostError) this.checkAlive('flush');
    if (!this.encoder && this.uniformUsed === 0) return;
    this.endPass();
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformBuf, 0, this.uniformData, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    const cmd = this.encoder!.finish();
    this.encoder = null;
    this.device.queue.submit([cmd]);
    this.nSubmit++;
    this.pool.afterSubmit(this.device.queue.onSubmittedWorkDone());
  }

  /** Copy `bytes` from a storage buffer back to the CPU. The only call that waits for the GPU. */
  async readBuffer(src: GPUBuffer, bytes: number, srcOffset = 0): Promise<ArrayBuffer> {
    this.checkAlive('read');
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const idx = this.stagingFree.findIndex((b) => b.size >= size && b.size <= size * 4);
    const staging =
      idx >= 0
        ? this.stagingFree.splice(idx, 1)[0]!
        : this.device.createBuffer({ size: Math.max(256, size), usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.copyBuffer(src, srcOffset, staging, 0, size);
    this.flush();
    const mapped = staging.mapAsync(MapMode.READ, 0, size);
    try {
      // a lost device rejects the race even if the driver never settles the mapping
      await Promise.race([mapped, this.lostSignal]);
    } catch (e) {
      mapped.catch(() => undefined);
      // Dawn rejects a mapping in flight on destroy/loss (an AbortError, sometimes before
      // device.lost resolves): give the loss a moment to arrive so the one lost error is thrown
      await this.settleLoss();
      this.checkAlive('read');
      throw new EngineError('read', `mapping the read-back buffer failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    if (this.stagingFree.length < 8) this.stagingFree.push(staging);
    else staging.destroy();
    // a failed allocation makes the data read garbage: report it instead
    await Promise.race([this.pool.settled(), this.lostSignal]);
    this.throwMemoryErrors('read');
    this.throwValidationErrors();
    return out;
  }

  /** Wait until the GPU has finished all submitted work (rejects instead of hanging on a lost device). */
  async sync(): Promise<void> {
    this.checkAlive('sync');
    this.flush();
    await this.workDone();
    await Promise.race([this.pool.settled(), this.lostSignal]);
    this.throwMemoryErrors('sync');
    this.throwValidationErrors();
  }

  /**
   * A promise for the completion of everything submitted so far (onSubmittedWorkDone, raced against
   * the device loss so it cannot hang). Does not flush.
   */
  async workDone(): Promise<void> {
    this.checkAlive('workDone');
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lostSignal]);
    // Dawn settles onSubmittedWorkDone normally on a destroyed device: the loss follows just after
    if (this.lostError) this.checkAlive('workDone');
  }

  /** Wait (at most `ms`) for device.lost to be delivered if the device is going away. */
  private async settleLoss(ms = 1000): Promise<void> {
    if (this.lostError || this.destroyed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.lostSignal.catch(() => undefined),
      new Promise((r) => (timer = setTimeout(r, ms))),
    ]);
    clearTimeout(timer);
  }

  private throwValidationErrors() {
    if (this.validationErrors.length) {
      const errs = this.validationErrors.splice(0);
      throw new EngineError('gpu', `WebGPU reported ${errs.length} error(s): ${errs.slice(0, 3).join(' | ')}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Lifetime scopes and the no-grad switch (explicit state on the context, no globals)

  /** Called by every tensor at creation. */
  track(t: Disposable): void {
    const top = this.scopes[this.scopes.length - 1];
    if (top) top.add(t);
  }

  /** Remove a tensor from the enclosing scopes so it outlives them. */
  keep<T extends Disposable>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  /**
   * Run `fn`; every tensor created inside and not returned (directly, or in an array or a plain
   * object) is disposed when it finishes. Works with async functions, but scopes must not be
   * interleaved across concurrent async tasks.
   */
  scope<T>(fn: () => T): T {
    const frame = new Set<Disposable>();
    this.scopes.push(frame);
    const close = (result: unknown) => {
      const i = this.scopes.lastIndexOf(frame);
      if (i >= 0) this.scopes.splice(i, 1);
      const kept = new Set<unknown>();
      collectResults(result, kept);
      const parent = this.scopes[this.scopes.length - 1];
      for (const t of frame) {
        if (kept.has(t)) parent?.add(t);
        else if (!t.disposed) t.dispose();
      }
    };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      close(undefined);
      throw e;
    }
    if (result instanceof Promise) {
      return result.then(
        (r) => {
          close(r);
          return r;
        },
        (e) => {
          close(undefined);
          throw e;
        },
      ) as T;
    }
    close(result);
    return result;
  }

  /** True while gradients are recorded (outside any noGrad block). */
  get gradEnabled(): boolean {
    return this.gradOff === 0;
  }

  /** Run `fn` without recording the autograd graph. */
  noGrad<T>(fn: () => T): T {
    this.gradOff++;
    let async = false;
    try {
      const r = fn();
      if (r instanceof Promise) {
        async = true;
        return r.finally(() => this.gradOff--) as T;
      }
      return r;
    } finally {
      if (!async) this.gradOff--;
    }
  }

  // ---------------------------------------------------------------------------------------------

  stats(): ContextStats {
    return { ...this.pool.stats(), dispatches: this.nDispatch, submits: this.nSubmit, pipelines: this.pipelines.size };
  }

  /** Release the device so a Node process can exit. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* ignore: destroying anyway */
    }
    this.destroyed = true;
    this.pool.trim();
    for (const b of this.stagingFree) b.destroy();
    this.uniformBuf.destroy();
    this.device.destroy();
  }

  /**
   * Destroy the device and wait until its teardown has settled. In Node, call this (not just
   * destroy()) before process.exit(): exiting while Dawn's driver threads are still tearing down
   * can crash the process on CPU Vulkan (lavapipe).
   */
  async close(): Promise<void> {
    if (!this.destroyed) this.destroy();
    await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 500))]);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `n` bytes with a binary unit, e.g. "134217728 bytes (128.0 MiB)". */
function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${n} bytes (${v.toFixed(v < 10 ? 2 : 1)} ${units[u]})`;
}

// frames of the engine's own allocation path, skipped when naming who asked for a buffer
const ALLOCATION_FRAMES = /[\\/](gpu[\\/](context|pool)|autograd[\\/]tensor)\.[cm]?[jt]s[:?]/;

/**
 * The function that asked for an allocation, from a captured stack: the first frame outside the
 * context, the pool and the Tensor constructor, e.g. { op: 'matmul', where: "matmul (src/wgsl/matmul.ts:238)" }.
 */
export function callerOf(site: Error): { op: string; where: string } {
  for (const line of (site.stack ?? '').split('\n').slice(1)) {
    if (ALLOCATION_FRAMES.test(line)) continue;
    const m = /^\s*at (?:new |async )?(.*?) \((.*)\)\s*$/.exec(line) ?? /^\s*at ()(.*?)\s*$/.exec(line);
    if (!m) continue;
    const fn = m[1] ?? '';
    const file = (m[2] ?? '').replace(/^file:\/\//, '').replace(/^.*?[\\/](src|test|bench)[\\/]/, '$1/').replace(/:\d+$/, '');
    const op = fn.replace(/^.*\./, '') || 'allocate';
    return { op, where: fn ? `${fn} (${file})` : file };
  }
  return { op: 'allocate', where: 'an unknown caller' };
}

function collectResults(r: unknown, out: Set<unknown>, depth = 0): void {
  if (r == null || depth > 4) return;
  if (typeof r !== 'object') return;
  out.add(r);
  if (Array.isArray(r)) for (const x of r) collectResults(x, out, depth + 1);
  else if (Object.getPrototypeOf(r) === Object.prototype || r instanceof Map)
    for (const x of r instanceof Map ? r.values() : Object.values(r)) collectResults(x, out, depth + 1);
}

export const NO_ADAPTER_HELP =
  'no WebGPU adapter is available. In Node on Linux this needs a Vulkan driver: on Debian 12 run ' +
  '`bash scripts/setup-system.sh` (as root; installs mesa-vulkan-drivers >= 25 and libvulkan1 from ' +
  'bookworm-backports), or install your GPU vendor\'s Vulkan driver. In a browser, use one with WebGPU ' +
  'enabled (Chromium: --enable-unsafe-webgpu).';
